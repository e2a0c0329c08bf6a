// The TUN device layer against the real kernel: batched reads of real UDP packets, echo replies
// reaching sockets, open/close without leaks, multi-queue spreading flows over worker threads,
// device removal reaching JS. The TUN-owning code runs in a child inside a namespace this test
// creates (test/e2e/fixtures/tun-echo-child.mjs, using the compiled dist/shared/tun).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeTunNode } from '../../lab/least-privilege.js';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NetnsSet, isRoot, sh, waitFor } from '../helpers/netns.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const child = fileURLToPath(new URL('./fixtures/tun-echo-child.mjs', import.meta.url));
const client = fileURLToPath(new URL('./fixtures/udp-echo-client.py', import.meta.url));

/** A process speaking JSON lines on stdout. */
class JsonProc {
  readonly msgs: Record<string, unknown>[] = [];
  stderr = '';
  constructor(readonly p: ChildProcess) {
    let buf = '';
    p.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        try {
          this.msgs.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          /* non-JSON chatter */
        }
      }
    });
    p.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
  }
  async next(key: string, timeoutMs = 10_000): Promise<Record<string, unknown>> {
    await waitFor(() => this.msgs.some((m) => key in m) || this.p.exitCode !== null, timeoutMs, `"${key}" from child (stderr: ${this.stderr})`);
    const i = this.msgs.findIndex((m) => key in m);
    if (i < 0) throw new Error(`child exited (${this.p.exitCode}) before "${key}": ${this.stderr}`);
    return this.msgs.splice(i, 1)[0];
  }
  send(cmd: string): void {
    this.p.stdin!.write(cmd + '\n');
  }
  async exited(timeoutMs = 10_000): Promise<number | null> {
    await waitFor(() => this.p.exitCode !== null || this.p.signalCode !== null, timeoutMs, 'child exit');
    return this.p.exitCode;
  }
}

interface FwdStats {
  packets: number;
  echoed: number;
  batches: number;
  maxBatch: number;
  hist: Record<string, number>;
  writeDrops: number;
  error: string | null;
}
interface ClientResult {
  sent: number;
  received: number;
  unexpected: number;
  wrongFrom: number;
}

describe.skipIf(!isRoot())('TUN device (root, namespaces)', () => {
  const nets = new NetnsSet();
  let ns = '';

  beforeAll(() => {
    // The child runs compiled code; tsc emits even if someone else's file has type errors.
    try {
      sh('npx', ['tsc', '-p', 'tsconfig.json'], { timeoutMs: 120_000 });
    } catch {
      /* errors elsewhere in the tree: the emitted files are checked below */
    }
    expect(existsSync(`${root}dist/shared/tun/native-tun.js`)).toBe(true);
    expect(existsSync(`${root}build/Release/mslb_tun.node`)).toBe(true);
    ns = nets.add('tun');
  }, 150_000);

  afterAll(async () => {
    await nets.cleanup();
  });

  function startChild(mode: string, opts: object, nodeArgs: string[] = []): JsonProc {
    const p = nets.spawn(ns, process.execPath, [...nodeArgs, child, mode, JSON.stringify({ deadlineMs: 60_000, ...opts })], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    return new JsonProc(p);
  }

  function startClient(opts: object): JsonProc {
    const p = nets.spawn(ns, 'python3', [client, JSON.stringify({ port: 7, timeout: 10, ...opts })], { stdio: ['ignore', 'pipe', 'pipe'] });
    return new JsonProc(p);
  }

  function setupTun(dev: string, v4: boolean, v6: boolean): void {
    nets.ip(ns, `link set ${dev} up`);
    if (v4) {
      nets.ip(ns, `addr add 203.0.113.1/32 dev ${dev}`);
      nets.ip(ns, `route add 192.0.2.0/24 dev ${dev}`);
    }
    if (v6) {
      nets.ip(ns, `addr add 2001:db8:ff::1/128 dev ${dev} nodad`);
      nets.ip(ns, `route add 2001:db8:9::/64 dev ${dev}`);
    }
  }

  it('reads real UDP packets in batches and the echoed replies reach the sockets (IPv4 + IPv6)', async () => {
    const c = startChild('echo', { name: 'mtun0', waitGo: true, batchSize: 64 });
    const ready = await c.next('ready');
    expect(ready.name).toBe('mtun0');
    setupTun('mtun0', true, true);

    // Queue 100 packets while nobody reads, so the first read must return a full batch.
    const v4 = startClient({ family: 4, src: '203.0.113.1', dst: '192.0.2.9', flows: 4, perFlow: 25 });
    expect((await v4.next('sent')).sent).toBe(100);
    c.send('go');
    const r4 = (await v4.next('done', 15_000)) as unknown as ClientResult;
    expect(r4).toMatchObject({ sent: 100, received: 100, unexpected: 0, wrongFrom: 0 });

    const v6 = startClient({ family: 6, src: '2001:db8:ff::1', dst: '2001:db8:9::9', flows: 4, perFlow: 25 });
    const r6 = (await v6.next('done', 15_000)) as unknown as ClientResult;
    expect(r6).toMatchObject({ sent: 100, received: 100, unexpected: 0, wrongFrom: 0 });

    c.send('stats');
    const s = (await c.next('stats')).stats as FwdStats;
    console.log(`echo: ${s.packets} packets in ${s.batches} reads, max batch ${s.maxBatch}, batch sizes ${JSON.stringify(s.hist)}`);
    expect(s.maxBatch).toBe(64); // the 100 queued packets came back 64 + 36 (+ any later ones)
    expect(s.batches).toBeLessThan(s.packets);
    expect(s.packets).toBeGreaterThanOrEqual(200); // IPv6 may add a router solicitation or MLD report
    expect(s.echoed).toBe(s.packets);
    expect(s.writeDrops).toBe(0);
    expect(s.error).toBeNull();
    c.send('quit');
    expect((await c.next('closed')).fd).toBe(-1);
    expect(await c.exited()).toBe(0);
  }, 60_000);

  it('deleting the device reaches JS as a poll error', async () => {
    const c = startChild('echo', { name: 'mtun1' });
    await c.next('ready');
    nets.ip(ns, 'link set mtun1 up');
    nets.ip(ns, 'link del mtun1');
    let s: FwdStats | null = null;
    await waitFor(
      async () => {
        c.send('stats');
        s = (await c.next('stats')).stats as FwdStats;
        return s.error !== null;
      },
      5_000,
      'poll error after link del',
    );
    expect(s!.error).toMatch(/TUN poll error/);
    c.send('quit');
    expect(await c.exited()).toBe(0);
  }, 30_000);

  it('opens and closes a queue 100 times without fd or RSS growth', async () => {
    const c = startChild('openclose', { name: 'mtun2', count: 100, warmup: 20 }, ['--expose-gc']);
    const r = (await c.next('before', 30_000)) as { before: { fds: number; rss: number }; after: { fds: number; rss: number }; gone: boolean };
    console.log(`open/close x100: fds ${r.before.fds} -> ${r.after.fds}, rss ${(r.before.rss / 1e6).toFixed(1)} -> ${(r.after.rss / 1e6).toFixed(1)} MB`);
    expect(r.after.fds).toBe(r.before.fds);
    expect(r.after.rss - r.before.rss).toBeLessThan(4 * 1024 * 1024); // 100 leaked slabs would be > 6 MB
    expect(r.gone).toBe(true); // closing the last queue removed the device
    expect(await c.exited()).toBe(0);
  }, 60_000);

  it('vnet hdr: offloads are accepted, a UDP GSO send arrives as one super-packet with its header and echoes back', async () => {
    const c = startChild('vnet', { name: 'mtun4' });
    const ready = await c.next('ready');
    expect(ready.vnetHdr).toBe(true);
    expect((ready.offloads as number) & 0x07).toBe(0x07); // CSUM|TSO4|TSO6 (USO4/6 too on >= 6.2)
    setupTun('mtun4', true, false);
    const udpGso = `
import json, socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("203.0.113.1", 0)); s.settimeout(2)
s.setsockopt(17, 103, 1000)  # UDP_SEGMENT: one 8000-byte send = 8 datagrams of 1000
s.sendto(b"y" * 8000, ("192.0.2.9", 7))
got = []
try:
    while len(got) < 8: got.append(len(s.recvfrom(65535)[0]))
except OSError: pass
print(json.dumps({"got": got}), flush=True)`;
    const cl = new JsonProc(nets.spawn(ns, 'python3', ['-c', udpGso], { stdio: ['ignore', 'pipe', 'pipe'] }));
    const got = (await cl.next('got', 10_000)).got as number[];
    c.send('stats');
    const s = (await c.next('stats')).stats as { seen: { len: number; off: number; proto: number; flags: number; gsoType: number; gsoSize: number; csumStart: number; csumOffset: number }[] };
    const udp = s.seen.filter((p) => p.proto === 17);
    console.log(`vnet: offloads 0x${(ready.offloads as number).toString(16)}, UDP reads ${JSON.stringify(udp)}, client got ${JSON.stringify(got)}`);
    if (((ready.offloads as number) & 0x20) !== 0) {
      // USO4 accepted: the 8000-byte send is one read larger than the MTU, at the fixed headroom.
      expect(udp[0]).toMatchObject({ len: 8028, off: 128, flags: 1, gsoType: 5, gsoSize: 1000, csumStart: 20, csumOffset: 6 });
    } else {
      expect(udp.length).toBe(8);
      expect(udp[0].flags & 1).toBe(1); // still a partial checksum (CSUM offload)
    }
    expect(got).toEqual([1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000]);
    c.send('quit');
    expect(await c.exited()).toBe(0);
  }, 30_000);

  it('multi-queue: 2 queues in 2 worker threads both carry traffic of different flows', async () => {
    const c = startChild('mq', { name: 'mtun3', queues: 2 });
    const ready = await c.next('ready');
    expect((ready.fds as number[]).length).toBe(2);
    // Owner root: a uid without CAP_NET_ADMIN cannot attach a third queue to read a share of the
    // traffic, even through a 0666 clone device (a TUN without owner would let it).
    const tunNode = makeTunNode(mkdtempSync(join(tmpdir(), 'mslb-tun-node-')), 0o666);
    const attach = await nets.run(ns, 'unshare', ['--mount', '--', 'sh', '-c',
      `mount --bind '${tunNode}' /dev/net/tun && exec setpriv --reuid=nobody --regid=nogroup --init-groups --inh-caps=-all --bounding-set=-all /usr/bin/python3 -c "$0"`,
      `import fcntl,os,struct
fd=os.open('/dev/net/tun',os.O_RDWR)
try:
 fcntl.ioctl(fd,0x400454ca,struct.pack('16sH',b'mtun3',0x1101)); print('attached')
except OSError as e: print('refused',e.errno)`]);
    expect(attach.stdout.trim(), attach.stderr).toBe('refused 1');
    setupTun('mtun3', true, false);
    const cl = startClient({ family: 4, src: '203.0.113.1', dst: '192.0.2.9', flows: 16, perFlow: 10 });
    const r = (await cl.next('done', 15_000)) as unknown as ClientResult;
    expect(r).toMatchObject({ sent: 160, received: 160, unexpected: 0 });
    c.send('stats');
    const per = (await c.next('stats')).stats as (FwdStats & { queue: number })[];
    console.log(`multi-queue: ${per.map((q) => `queue ${q.queue}: ${q.packets} packets, max batch ${q.maxBatch}`).join('; ')}`);
    expect(per).toHaveLength(2);
    expect(per[0].packets).toBeGreaterThan(0);
    expect(per[1].packets).toBeGreaterThan(0);
    expect(per[0].packets + per[1].packets).toBeGreaterThanOrEqual(160);
    c.send('quit');
    await c.next('closed');
    expect(await c.exited()).toBe(0);
  }, 60_000);
});

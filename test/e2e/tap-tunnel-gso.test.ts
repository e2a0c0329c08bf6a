// The addon's TAP + 24-byte vnet header path against the real kernel (Linux >= 6.16): a child in a
// test namespace (fixtures/tap-tunnel-child.mjs, compiled dist/shared/tun) opens a TAP with UDP-tunnel
// GSO offloads, runs the start-up probe, and writes one 2-segment TCP-in-UDP super-packet per family
// pair (6in6, 4in4, 4in6, 6in4) through a NativeTun queue whose JS side keeps the 12-byte vnet
// stride (the addon adds the tunnel offsets). The kernel forwards what the TAP "receives" out of a
// veth, where tshark (checksum validation on, the tunnel port decoded as IP) must see every
// super-packet as two wire segments: outer UDP and inner TCP checksums valid, sequence numbers
// continuous, outer IPv4 IDs incrementing. Needs root.
import { existsSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NetnsSet, isRoot, sh, waitFor, waitForOutput } from '../helpers/netns.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const child = fileURLToPath(new URL('./fixtures/tap-tunnel-child.mjs', import.meta.url));
const PORT = 6080;
const GSO = 1000;

const PAIRS = [
  { name: '6in6', outer: 6, inner: 6, osrc: '2001:db8::1', odst: '2001:db8::2', isrc: '2001:db8:c::1', idst: '2001:db8:5::1', port: PORT },
  { name: '4in4', outer: 4, inner: 4, osrc: '192.0.2.1', odst: '192.0.2.2', isrc: '198.51.100.1', idst: '203.0.113.5', port: PORT },
  { name: '4in6', outer: 6, inner: 4, osrc: '2001:db8::1', odst: '2001:db8::2', isrc: '198.51.100.1', idst: '203.0.113.5', port: PORT },
  { name: '6in4', outer: 4, inner: 6, osrc: '192.0.2.1', odst: '192.0.2.2', isrc: '2001:db8:c::1', idst: '2001:db8:5::1', port: PORT },
];

describe.skipIf(!isRoot())('TAP with UDP-tunnel GSO (root, namespaces)', () => {
  const nets = new NetnsSet();
  let a = '';
  let b = '';
  let dir = '';

  beforeAll(() => {
    try {
      sh('npx', ['tsc', '-p', 'tsconfig.json'], { timeoutMs: 120_000 });
    } catch {
      /* errors elsewhere in the tree: the emitted files are checked below */
    }
    expect(existsSync(`${root}dist/shared/tun/native-tun.js`)).toBe(true);
    a = nets.add('tapa');
    b = nets.add('tapb');
    dir = mkdtempSync(join(tmpdir(), 'mslb-tap-'));
    nets.veth(a, 'va', b, 'vb');
    nets.ip(a, 'addr add 192.0.2.1/24 dev va');
    nets.ip(b, 'addr add 192.0.2.2/24 dev vb');
    nets.ip(a, 'addr add 2001:db8::1/64 dev va nodad');
    nets.ip(b, 'addr add 2001:db8::2/64 dev vb nodad');
    nets.sysctl(a, 'net.ipv4.ip_forward', 1);
    nets.sysctl(a, 'net.ipv6.conf.all.forwarding', 1);
    nets.sysctl(a, 'net.ipv4.conf.all.rp_filter', 0);
    // the kernel fills real checksums on the wire instead of leaving partial sums for the peer
    nets.exec(a, 'ethtool', ['-K', 'va', 'tx', 'off']);
    const mac = (JSON.parse(sh('ip', ['-n', b, '-j', 'link', 'show', 'vb'])) as { address: string }[])[0]!.address;
    nets.ip(a, `neigh add 192.0.2.2 lladdr ${mac} dev va`);
    nets.ip(a, `neigh add 2001:db8::2 lladdr ${mac} dev va`);
  }, 150_000);

  afterAll(async () => {
    await nets.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('a 2-segment TCP-in-UDP super-packet of each family pair is accepted and leaves as correct wire segments', async () => {
    const p = nets.spawn(a, process.execPath, [child, JSON.stringify({ name: 'mtap0', deadlineMs: 30_000 })], { stdio: ['pipe', 'pipe', 'pipe'] });
    let outText = '';
    let errText = '';
    p.stdout!.on('data', (d: Buffer) => (outText += d.toString()));
    p.stderr!.on('data', (d: Buffer) => (errText += d.toString()));
    const line = (key: string): Record<string, unknown> | undefined =>
      outText
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .find((m) => key in m);
    await waitFor(() => line('ready') !== undefined || p.exitCode !== null, 10_000, `ready from child (${errText})`);
    const ready = line('ready')!;
    expect(ready, errText).toBeDefined();
    expect(ready.offloads as number).toBe(0x187); // CSUM|TSO4|TSO6|UDP_TUNNEL_GSO|UDP_TUNNEL_GSO_CSUM
    expect(ready.mac as string).toMatch(/^[0-9a-f]{12}$/);
    // what the front does with its TAP: frames to its own MAC are "received" and forwarded
    nets.sysctl(a, 'net.ipv4.conf.mtap0.rp_filter', 0);
    nets.sysctl(a, 'net.ipv4.conf.mtap0.accept_local', 1);
    nets.ip(a, 'link set mtap0 addrgenmode none');
    nets.ip(a, 'link set mtap0 up');
    const file = join(dir, 'tap.pcap');
    const cap = nets.spawn(b, 'tshark', ['-n', '-i', 'vb', '-F', 'pcap', '-w', file, '-f', `udp port ${PORT}`]);
    await waitForOutput(cap, /Capturing on/, 10_000, 'tshark');
    await new Promise((r) => setTimeout(r, 500)); // "Capturing on" comes before the capture really starts
    p.stdin!.write(`go ${JSON.stringify({ pairs: PAIRS, gso: GSO })}\n`);
    await waitFor(() => line('done') !== undefined || p.exitCode !== null, 10_000, `done from child (${errText})`);
    const done = line('done')!;
    expect(done.probe, 'start-up probe errno').toBe(0);
    expect(done.results).toEqual(PAIRS.map(() => expect.objectContaining({ written: 1 })));
    expect(done.writeDrops).toBe(0);
    const rx = (JSON.parse(sh('ip', ['-n', a, '-s', '-j', 'link', 'show', 'mtap0'])) as { stats64: { rx: { packets: number } } }[])[0]!.stats64.rx.packets;
    expect(rx, 'TAP rx: the probe and the super-packets, one packet each').toBe(1 + PAIRS.length);
    p.stdin!.write('quit\n');
    await new Promise((r) => setTimeout(r, 500));
    cap.kill('SIGINT');
    await new Promise<void>((r) => (cap.exitCode !== null ? r() : cap.once('exit', () => r())));
    const out = nets.exec(b, 'tshark', [
      '-n', '-r', file, '-d', `udp.port==${PORT},ip`,
      '-o', 'ip.check_checksum:TRUE', '-o', 'tcp.check_checksum:TRUE', '-o', 'udp.check_checksum:TRUE',
      '-T', 'fields', '-E', 'separator=\t', '-E', 'occurrence=a', '-E', 'aggregator=,',
      '-e', 'udp.srcport', '-e', 'udp.checksum.status', '-e', 'tcp.checksum.status', '-e', 'ip.checksum.status', '-e', 'tcp.seq_raw', '-e', 'tcp.len', '-e', 'ip.id', '-e', 'frame.protocols',
    ]);
    const rows = out.split('\n').filter(Boolean).map((l) => l.split('\t'));
    console.log(`tap wire: ${rows.length} segments\n${out}`);
    expect(rows).toHaveLength(2 * PAIRS.length);
    PAIRS.forEach((pair, k) => {
      const segs = rows.filter((r) => Number(r[0]) === 50000 + k);
      expect(segs, pair.name).toHaveLength(2);
      for (const s of segs) {
        expect(s[1], `${pair.name} outer UDP checksum`).toBe('1');
        expect(s[2], `${pair.name} inner TCP checksum`).toBe('1');
        for (const st of s[3] ? s[3].split(',') : []) expect(st, `${pair.name} IPv4 header checksum`).toBe('1');
        expect(Number(s[5]), `${pair.name} segment payload`).toBe(GSO);
        expect(s[7], pair.name).toMatch(pair.outer === 6 ? (pair.inner === 6 ? /ipv6:udp:ip:ipv6:tcp/ : /ipv6:udp:ip:tcp/) : pair.inner === 6 ? /:ip:udp:ip:ipv6:tcp/ : /:ip:udp:ip:tcp/);
      }
      expect(Number(segs[1]![4]) - Number(segs[0]![4]), `${pair.name} sequence numbers continue`).toBe(GSO);
      if (pair.outer === 4) {
        const id = (s: string[]): number => parseInt(s[6]!.split(',')[0]!, 16);
        expect(id(segs[1]!) - id(segs[0]!), `${pair.name} outer IPv4 ID increments`).toBe(1);
      }
    });
  }, 60_000);
});

// Offloads on the wire: front and back open their TUNs with IFF_VNET_HDR and TSO/USO, so
// bulk TCP arrives as GSO super-packets whose L4 field is a partial (pseudo-header) sum, and
// same-flow packets are merged again before each TUN write (write-side GRO).
//   translate: the super-packet is rewritten as a whole (partial sum updated as fold(P + d)) and
//              handed back to the kernel, which segments it later;
//   encap:     the front cuts it into wire segments natively (complete checksums) and wraps each.
// Judged on the wire with transmit checksum offload off on the captured link (the kernel then
// writes real checksums computed from what mslb left there) by tshark, and end to end by the
// SHA-256 of multi-MB uploads the lab server reports (a wrong TCP sequence number keeps checksums
// valid but corrupts the stream). Needs root and `npm run build`.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isRoot } from '../helpers/netns.js';
import { CLIENTS, FRONT_CONFIGS, Lab, PORTS, hostPart, serviceFor, type CaptureSummary, type ClientName } from '../helpers/lab.js';
import { setBackLinksMtu, writeUploadFile } from '../helpers/bulk-upload.js';
import { repoRoot } from '../../lab/paths.js';

const UPLOAD_BYTES = 12 << 20;
/** Encap adds 40 bytes: the front-back links and the backs' TUNs get room for a full-size inner packet. */
const TUNNEL_MTU = 1600;

describe.skipIf(!isRoot())('offloads on the wire (translate and encap)', () => {
  let lab: Lab;
  let file: string;
  let sha: string;

  beforeAll(async () => {
    lab = await Lab.start({ mode: 'translate' });
    ({ file, sha } = writeUploadFile(lab, UPLOAD_BYTES));
    setBackLinksMtu(lab, TUNNEL_MTU);
  }, 90_000);
  afterAll(async () => {
    await lab?.stop();
  }, 30_000);

  /** curl upload of the test file from a client address; returns the server's answer lines. */
  async function upload(client: ClientName): Promise<{ server: string; bytes: number; sha: string }> {
    const c = CLIENTS[client];
    const url = `http://${hostPart(serviceFor(c.family))}:${PORTS.http}/upload`;
    const r = await lab.set.run(
      lab.ns.client,
      'curl',
      ['-sS', '--max-time', '40', '--interface', c.address, '-H', 'Expect:', '--data-binary', `@${file}`, url],
      { timeoutMs: 45_000 },
    );
    expect(r.code, `curl ${client}: ${r.stderr}`).toBe(0);
    const lines = r.stdout.trim().split('\n');
    const [bytes, digest] = (lines[3] ?? '').split(' ');
    return { server: lines[0] ?? '', bytes: Number(bytes), sha: digest ?? '' };
  }

  /**
   * Packets the kernel handed to a TUN (its TX counter) and took from it (RX: the service's writes),
   * and what the service counted as wire packets in and out.
   */
  async function tunReads(svc: 'front' | 'back1'): Promise<{ reads: number; wire: number; writes: number; wireOut: number }> {
    const ns = svc === 'front' ? lab.ns.front : lab.ns.back1;
    const dev = svc === 'front' ? 'mslbf0' : 'mslbb0';
    const j = JSON.parse(lab.set.exec(ns, 'ip', ['-s', '-j', 'link', 'show', dev])) as { stats64: { tx: { packets: number }; rx: { packets: number } } }[];
    return {
      reads: j[0]!.stats64.tx.packets,
      writes: j[0]!.stats64.rx.packets,
      wire: await lab.metric(svc, 'mslb_rx_packets_total'),
      wireOut: await lab.metric(svc, 'mslb_tx_packets_total'),
    };
  }

  /**
   * No bad checksum, and the capture really saw the transfer: at least half as many packets as MSS
   * segments (a receiving veth may coalesce what it captures), each with its checksums checked.
   */
  function judge(s: CaptureSummary, segments: number, what: string): void {
    expect(s.badChecksums, `${what}: bad checksums ${JSON.stringify(s.badChecksums.slice(0, 5))}`).toEqual([]);
    expect(s.count, what).toBeGreaterThanOrEqual(segments / 2);
    expect(s.goodChecksums, what).toBeGreaterThanOrEqual(s.count);
  }

  const segmentsPerUpload = Math.floor(UPLOAD_BYTES / 1460);

  it('both services probed and enabled offloads (TUNSETOFFLOAD + GSO write probe), logged and exported', async () => {
    for (const s of ['front', 'back1', 'back2'] as const) {
      expect(await lab.metric(s, 'mslb_offload_enabled'), s).toBe(1);
      const line = lab.serviceLog(s).split('\n').find((l) => l.includes('"tun_offload"'));
      expect(line, `${s} log`).toBeDefined();
      expect(JSON.parse(line!)).toMatchObject({ enabled: true });
      expect(JSON.parse(line!).offloads).toEqual(expect.arrayContaining(['csum', 'tso4', 'tso6']));
    }
  });

  it('translate: uploads over IPv6 and IPv4 arrive intact as super-packets; the back\'s partial sums are right at the server link', async () => {
    const before = await tunReads('front');
    const back0 = await tunReads('back1');
    const cap = await lab.capture('server1-link', { filter: 'tcp port 80' });
    for (const c of ['c1v6', 'c1v4'] as const) {
      expect(await upload(c), c).toEqual({ server: 'server1', bytes: UPLOAD_BYTES, sha });
    }
    const s = await cap.stop();
    judge(s, 2 * segmentsPerUpload, 'server1-link');
    const after = await tunReads('front');
    const back1 = await tunReads('back1');
    const reads = after.reads - before.reads;
    const wire = after.wire - before.wire;
    // GSO: far fewer TUN reads than wire packets (each read a super-packet of several segments)
    expect(wire, 'front wire packets').toBeGreaterThanOrEqual(2 * segmentsPerUpload);
    expect(reads * 3, `front: ${reads} reads for ${wire} wire packets`).toBeLessThan(wire);
    expect((back1.reads - back0.reads) * 3, 'back1 reads super-packets too').toBeLessThan(back1.wire - back0.wire);
    for (const r of ['malformed', 'too_big', 'write_error']) expect(await lab.metric('front', 'mslb_drops_total', { reason: r }), r).toBe(0);
  }, 120_000);

  it('translate: the front\'s partial-sum updates are right on the front-back link', async () => {
    // Only what the front wrote (toward B): the answers on this link never pass through mslb in
    // translate mode (kernel routing back to the client), so they judge the kernel, not us.
    const cap = await lab.capture('back1-link', { filter: 'tcp dst port 80' });
    for (const c of ['c1v6', 'c1v4'] as const) {
      expect(await upload(c), c).toEqual({ server: 'server1', bytes: UPLOAD_BYTES, sha });
    }
    judge(await cap.stop(), 2 * segmentsPerUpload, 'back1-link');
  }, 120_000);

  it('translate: a UDP GSO (USO) send passes as one super-packet and reaches the server as datagrams', async () => {
    expect(await usoEcho('c1v6', 3000, 1000)).toEqual([1000, 1000, 1000]);
    expect(await usoEcho('c1v4', 2500, 1000)).toEqual([1000, 1000, 500]);
  }, 60_000);

  it('translate: a burst of small UDP datagrams (merged into USO writes where they queue up) all arrive with valid checksums', async () => {
    const cap = await lab.capture('server1-link', { filter: 'udp port 7' });
    for (const c of ['c1v6', 'c1v4'] as const) expect(await udpBurst(c, 300, 64), c).toBe(300);
    const s = await cap.stop();
    expect(s.badChecksums).toEqual([]);
    expect(s.count).toBeGreaterThanOrEqual(1200); // 2 x 300 datagrams and 2 x 300 answers
  }, 60_000);

  it('encap 6in6 and 4in4: super-packets split natively, every inner and outer checksum valid on both links, data intact', async () => {
    await lab.restartFront('encap');
    expect(await lab.metric('front', 'mslb_offload_enabled')).toBe(1);
    const before = await tunReads('front');
    const backBefore = await tunReads('back1');
    const atBack = await lab.capture('back1-link', { filter: 'ip proto 4 or ip6 proto 41 or ip proto 41 or ip6 proto 4' });
    const atServer = await lab.capture('server1-link', { filter: 'tcp port 80' });
    for (const c of ['c1v6', 'c1v4'] as const) {
      expect(await upload(c), c).toEqual({ server: 'server1', bytes: UPLOAD_BYTES, sha });
    }
    const b = await atBack.stop();
    const sv = await atServer.stop();
    judge(b, 2 * segmentsPerUpload, 'back1-link (tunnel)');
    judge(sv, 2 * segmentsPerUpload, 'server1-link');
    // outer + inner headers: 6in6 and 4in4 both seen
    const protos = Object.keys(b.protocols).join(' ');
    expect(protos).toMatch(/ipv6:ipv6:tcp/);
    expect(protos).toMatch(/ip:ip:tcp/);
    const after = await tunReads('front');
    expect((after.reads - before.reads) * 3, 'front read super-packets').toBeLessThan(after.wire - before.wire);
    // the back reads one tunnel packet per wire packet, but writes the decapsulated TCP segments
    // merged again (write-side GRO): far fewer writes than wire packets out
    const backAfter = await tunReads('back1');
    const wireOut = backAfter.wireOut - backBefore.wireOut;
    expect(wireOut).toBeGreaterThanOrEqual(2 * segmentsPerUpload);
    expect((backAfter.writes - backBefore.writes) * 2, `back1: ${backAfter.writes - backBefore.writes} writes for ${wireOut} wire packets`).toBeLessThan(wireOut);
    for (const r of ['malformed', 'too_big', 'write_error']) expect(await lab.metric('front', 'mslb_drops_total', { reason: r }), r).toBe(0);
  }, 150_000);

  it('encap: a UDP GSO (USO) super-packet is split into datagrams with valid checksums', async () => {
    const cap = await lab.capture('back1-link', { filter: 'ip proto 4 or ip6 proto 41' });
    expect(await usoEcho('c1v6', 3000, 1000)).toEqual([1000, 1000, 1000]);
    expect(await usoEcho('c1v4', 2500, 1000)).toEqual([1000, 1000, 500]);
    const s = await cap.stop();
    expect(s.badChecksums).toEqual([]);
    expect(s.count).toBeGreaterThanOrEqual(6);
  }, 60_000);

  it('kill switch: offload.enabled false opens the queues without offloads; traffic still flows, packet by packet', async () => {
    const cfg = join(lab.workDir, 'front-no-offload.yaml');
    const base = readFileSync(join(repoRoot(), FRONT_CONFIGS.translate), 'utf8');
    writeFileSync(cfg, `${base.replace(/^table: \.\//m, `table: ${join(repoRoot(), 'deploy/lab')}/`)}\noffload: { enabled: false }\n`);
    await lab.restartFront(cfg);
    expect(await lab.metric('front', 'mslb_offload_enabled')).toBe(0);
    expect(lab.serviceLog('front')).toMatch(/"tun_offload".*"enabled":false/);
    const before = await tunReads('front');
    expect(await upload('c1v6')).toEqual({ server: 'server1', bytes: UPLOAD_BYTES, sha });
    const after = await tunReads('front');
    // without offloads every TUN read is one wire packet (give or take one in flight between the two reads)
    const reads = after.reads - before.reads;
    expect(reads).toBeGreaterThanOrEqual(segmentsPerUpload);
    expect(Math.abs(after.wire - before.wire - reads)).toBeLessThanOrEqual(3);
  }, 90_000);

  /** Send n datagrams of `size` bytes back to back to the UDP echo on S; answers received. */
  async function udpBurst(client: ClientName, n: number, size: number): Promise<number> {
    const c = CLIENTS[client];
    const py = `
import socket
fam = socket.AF_INET6 if ${c.family === 'ipv6' ? 'True' : 'False'} else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
s.bind(('${c.address}', 0))
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
s.settimeout(3)
import time
for i in range(${n}):
    s.sendto(b'b' * ${size}, ('${serviceFor(c.family)}', ${PORTS.udpEcho}))
    # Bursts of 50 still queue up at the TUN (the merge case); the pause keeps the lab echo
    # server's default-sized socket buffer from overflowing on a loaded machine (not mslb's loss).
    if i % 50 == 49:
        time.sleep(0.005)
got = 0
try:
    while got < ${n}:
        s.recv(2000)
        got += 1
except socket.timeout:
    pass
print(got)
`;
    const r = await lab.set.run(lab.ns.client, '/usr/bin/python3', ['-c', py], { timeoutMs: 15_000 });
    expect(r.code, r.stderr).toBe(0);
    return Number(r.stdout.trim());
  }

  /** Send `total` bytes in one sendmsg with UDP_SEGMENT = seg to the UDP echo on S; sizes the server saw. */
  async function usoEcho(client: ClientName, total: number, seg: number): Promise<number[]> {
    const c = CLIENTS[client];
    const v6 = c.family === 'ipv6';
    const py = `
import socket, sys
fam = socket.AF_INET6 if ${v6 ? 'True' : 'False'} else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
s.bind(('${c.address}', 0))
s.setsockopt(socket.SOL_UDP, 103, ${seg})  # UDP_SEGMENT
s.settimeout(3)
s.sendto(b'u' * ${total}, ('${serviceFor(c.family)}', ${PORTS.udpEcho}))
got = []
try:
    while len(got) < ${Math.ceil(total / seg)}:
        d = s.recv(2000).decode().split('\\n')
        got.append(int(d[2]))
except socket.timeout:
    pass
print(' '.join(map(str, got)))
`;
    const r = await lab.set.run(lab.ns.client, '/usr/bin/python3', ['-c', py], { timeoutMs: 10_000 });
    expect(r.code, r.stderr).toBe(0);
    return r.stdout.trim().split(' ').filter(Boolean).map(Number).sort((x, y) => y - x);
  }
});

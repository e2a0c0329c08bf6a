// Tunnel MTU discovery on real kernel stacks (routed lab: client -- net -- front (one arm),
// net -- back1/back2 -- servers; front in encap mode, deploy/lab/draft/front-encap.yaml):
// - IPv4 without DF (a 3000-byte UDP datagram sent with IP_PMTUDISC_DONT) is fragmented by the
//   front before wrapping and reassembled by the server (its echo answers); the same for 1500-byte
//   datagrams sent as one UDP GSO super-packet (UDP_SEGMENT): cut into datagrams, each fragmented;
// - a 1 MB TCP upload with 1500-byte packets over the 1500-byte fabric completes because the client
//   received Packet Too Big / Fragmentation Needed from the front (seen in the capture) and lowered
//   its path MTU (`ip route get` in the client namespace shows mtu 1460 / 1480);
// - a 1400-byte link in the middle (net -- back1): the router's PTB / Frag Needed to S reaches the
//   front, which learns it and relays it: the client's cached MTU becomes 1360 / 1380;
// - a 1300-byte middle link: IPv6 clients stay at 1280 and their 1280-byte packets are carried in
//   outer fragments, which back1 reassembles.
// Needs root and `npm run build`.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isRoot } from '../helpers/netns.js';
import { Lab, PORTS, S4, S6, hostPart, type Capture } from '../helpers/lab.js';
import { setLinkMtu } from '../../lab/topology-variants.js';
import { PYTHON } from '../../lab/paths.js';

const C6 = '2001:db8:c1::10';
const C4 = '203.0.113.10';

/** Fields of every packet in a stopped capture matching a display filter (tshark). */
function fields(lab: Lab, cap: Capture, filter: string, f: string[]): string[][] {
  const out = lab.set.exec(cap.end.ns, 'tshark', ['-n', '-r', cap.file, '-Y', filter, '-T', 'fields', '-E', 'separator=\t', '-E', 'occurrence=f', ...f.flatMap((x) => ['-e', x])], { timeoutMs: 60_000 });
  return out.split('\n').filter((l) => l.trim() !== '').map((l) => l.split('\t'));
}

/** The path MTU the client's kernel has cached toward S (0 when none). */
function cachedMtu(lab: Lab, dst: string, src: string): number {
  const out = lab.set.exec(lab.ns.client, 'ip', [dst.includes(':') ? '-6' : '-4', 'route', 'get', dst, 'from', src]);
  const m = /\bmtu (\d+)/.exec(out);
  return m ? Number(m[1]) : 0;
}

const UDP_NO_DF = `
import socket, sys
src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, 10, 0)  # IP_MTU_DISCOVER = IP_PMTUDISC_DONT: no DF, the kernel fragments
s.bind((src, 0))
s.settimeout(1.0)
for attempt in range(3):
    s.sendto(b'f' * n, (dst, 7))
    try:
        print(s.recv(65535).decode(), end='')
        sys.exit(0)
    except socket.timeout:
        pass
sys.exit(3)
`;

// n datagrams of `seg` bytes in ONE sendmsg with UDP_SEGMENT (the kernel hands the front a UDP GSO
// super-packet), without DF; prints the size the echo server saw of each datagram it answered.
const USO_NO_DF = `
import socket, sys
src, dst, n, seg = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, 10, 0)  # IP_MTU_DISCOVER = IP_PMTUDISC_DONT: no DF
s.setsockopt(socket.SOL_UDP, 103, seg)  # UDP_SEGMENT
s.bind((src, 0))
s.settimeout(3.0)
s.sendto(b'g' * (n * seg), (dst, 7))
got = []
try:
    while len(got) < n:
        got.append(s.recv(2000).decode().split('\\n')[2])
except socket.timeout:
    pass
print(' '.join(got))
`;

describe.skipIf(!isRoot())('tunnel MTU discovery (encap, routed lab)', () => {
  let lab: Lab;
  let file: string;

  beforeAll(async () => {
    lab = await Lab.start({ mode: 'encap', variant: 'routed', frontConfig: 'deploy/lab/draft/front-encap.yaml' });
    file = join(lab.workDir, 'upload.bin');
    writeFileSync(file, Buffer.alloc(1 << 20, 'mslb-pmtu-upload.'));
  }, 90_000);
  afterAll(async () => {
    await lab?.stop();
  }, 30_000);

  const metric = (svc: 'front' | 'back1', name: string, labels: Record<string, string> = {}) => lab.metric(svc, name, labels);

  async function upload(src: string, dst: string): Promise<string[]> {
    const url = `http://${hostPart(dst)}:${PORTS.http}/upload`;
    const r = await lab.set.run(lab.ns.client, 'curl', ['-sS', '--max-time', '30', '--interface', src, '--data-binary', `@${file}`, url], { timeoutMs: 35_000 });
    expect(r.code, `upload ${src} -> ${dst}: ${r.stderr}`).toBe(0);
    return r.stdout.split('\n');
  }

  it('IPv4 without DF: a 3000-byte UDP datagram is fragmented by the front (4in4 pieces <= 1500) and reassembled by the server', async () => {
    lab.set.exec(lab.ns.client, 'ip', ['-4', 'route', 'flush', 'cache']);
    const before = await metric('front', 'mslb_fragmented_total');
    const cap = await lab.capture('back1-link', { filter: 'ip proto 4' });
    const r = await lab.set.run(lab.ns.client, PYTHON, ['-c', UDP_NO_DF, C4, S4, '3000'], { timeoutMs: 10_000 });
    await cap.stop();
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.split('\n')[0]).toBe('server1'); // the echo answered: the server had the whole datagram
    const rows = fields(lab, cap, 'ip.proto == 4', ['frame.len', 'ip.len', 'ip.flags.mf', 'ip.frag_offset']);
    expect(rows.length).toBeGreaterThanOrEqual(4); // 1500-byte client fragments, each cut again
    for (const [, len] of rows) expect(Number(len!.split(',')[0])).toBeLessThanOrEqual(1500); // outer IPv4 total length
    expect(await metric('front', 'mslb_fragmented_total')).toBeGreaterThan(before);
  }, 60_000);

  it('IPv4 without DF sent as one UDP GSO super-packet: the front cuts it into its 1500-byte datagrams and fragments each (4in4 pieces <= 1500); the server gets every datagram whole', async () => {
    const N = 20;
    const tunStats = (): { reads: number } => {
      const j = JSON.parse(lab.set.exec(lab.ns.front, 'ip', ['-s', '-j', 'link', 'show', 'mslbf0'])) as { stats64: { tx: { packets: number } } }[];
      return { reads: j[0]!.stats64.tx.packets };
    };
    expect(await metric('front', 'mslb_offload_enabled')).toBe(1);
    const frag0 = await metric('front', 'mslb_fragmented_total');
    const tooBig0 = await metric('front', 'mslb_drops_total', { reason: 'too_big' });
    const wire0 = await metric('front', 'mslb_rx_packets_total');
    const reads0 = tunStats().reads;
    const cap = await lab.capture('back1-link', { filter: 'ip proto 4' });
    const r = await lab.set.run(lab.ns.client, PYTHON, ['-c', USO_NO_DF, C4, S4, String(N), '1472'], { timeoutMs: 15_000 });
    const sum = await cap.stop();
    expect(r.code, r.stderr).toBe(0);
    // every datagram reached the server whole (the echo reports its size) and was answered
    expect(r.stdout.trim().split(' ')).toEqual(new Array(N).fill('1472'));
    // the kernel handed the datagrams over as super-packets: fewer TUN reads than wire packets
    const reads = tunStats().reads - reads0;
    const wire = (await metric('front', 'mslb_rx_packets_total')) - wire0;
    expect(wire).toBeGreaterThanOrEqual(N);
    expect(reads * 2, `${reads} TUN reads for ${wire} wire packets`).toBeLessThan(wire);
    expect(await metric('front', 'mslb_drops_total', { reason: 'too_big' })).toBe(tooBig0);
    expect((await metric('front', 'mslb_fragmented_total')) - frag0).toBe(N);
    // on the tunnel: outer 4in4 packets of at most 1500 bytes, each carrying one inner fragment,
    // two per datagram, every checksum right (tshark reassembles the inner datagrams to check UDP)
    expect(sum.badChecksums).toEqual([]);
    const out = lab.set.exec(cap.end.ns, 'tshark', ['-n', '-r', cap.file, '-o', 'ip.defragment:FALSE', '-Y', 'ip.proto == 4 && ip.src == 192.0.2.80',
      '-T', 'fields', '-E', 'separator=\t', '-E', 'occurrence=a', '-E', 'aggregator=,', '-e', 'ip.len', '-e', 'ip.flags.mf', '-e', 'ip.frag_offset'], { timeoutMs: 60_000 });
    const rows = out.split('\n').filter((l) => l.trim() !== '').map((l) => l.split('\t').map((c) => c.split(',')));
    let first = 0;
    let later = 0;
    for (const [len, mf, fo] of rows) {
      expect(Number(len![0])).toBeLessThanOrEqual(1500); // outer total length
      if (mf![1] === '1' || mf![1] === 'True') first++; // inner: more fragments follow
      if (Number(fo![1]) > 0) later++;
    }
    expect([first, later]).toEqual([N, N]);
  }, 60_000);

  it('a 1 MB TCP upload over a 1500-byte fabric completes: the client got PTB 1460 / Frag Needed 1480 from the front and caches that MTU', async () => {
    const cap = await lab.capture('client-link', { filter: 'icmp6 or icmp' });
    const up6 = await upload(C6, S6);
    const up4 = await upload(C4, S4);
    await cap.stop();
    for (const up of [up6, up4]) {
      expect(up[0]).toBe('server1');
      expect(up[3]).toMatch(/^1048576 [0-9a-f]{64}$/);
    }
    const ptb = fields(lab, cap, 'icmpv6.type == 2', ['ipv6.src', 'ipv6.dst', 'icmpv6.mtu']);
    expect(ptb.length).toBeGreaterThan(0);
    expect(ptb[0]).toEqual([S6, C6, '1460']);
    const fn = fields(lab, cap, 'icmp.type == 3 && icmp.code == 4', ['ip.src', 'ip.dst', 'icmp.mtu']);
    expect(fn.length).toBeGreaterThan(0);
    expect(fn[0]!.slice(0, 2)).toEqual([S4, C4]);
    expect(fn[0]![2]).toBe('1480');
    expect(cachedMtu(lab, S6, C6)).toBe(1460);
    expect(cachedMtu(lab, S4, C4)).toBe(1480);
    expect(await metric('front', 'mslb_icmp_sent_total', { type: 'packet_too_big' })).toBeGreaterThan(0);
    expect(await metric('front', 'mslb_icmp_sent_total', { type: 'frag_needed' })).toBeGreaterThan(0);
    expect(await metric('front', 'mslb_drops_total', { reason: 'too_big' })).toBeGreaterThan(0);
  }, 90_000);

  it('a 1400-byte link in the middle: the router\'s errors to S are learned by the front and relayed (client caches 1360 / 1380)', async () => {
    setLinkMtu(lab.topo, 'back1-link', 1400);
    const learned = await metric('front', 'mslb_pmtu_learned_total');
    const cap = await lab.capture('front-link', { filter: 'icmp6 or icmp' });
    const up6 = await upload(C6, S6);
    const up4 = await upload(C4, S4);
    await cap.stop();
    expect(up6[3]).toMatch(/^1048576 /);
    expect(up4[3]).toMatch(/^1048576 /);
    // the router (net, address on back1's link) tells S: 1400
    const fromNet = fields(lab, cap, 'icmpv6.type == 2 && ipv6.dst == 2001:db8:5::80', ['ipv6.src', 'icmpv6.mtu']);
    expect(fromNet.length).toBeGreaterThan(0);
    expect(fromNet[0]![1]).toBe('1400');
    const fromNet4 = fields(lab, cap, 'icmp.type == 3 && icmp.code == 4 && ip.dst == 192.0.2.80', ['ip.src', 'icmp.mtu']);
    expect(fromNet4.length).toBeGreaterThan(0);
    expect(fromNet4[0]![1]).toBe('1400');
    expect(cachedMtu(lab, S6, C6)).toBe(1360);
    expect(cachedMtu(lab, S4, C4)).toBe(1380);
    expect(await metric('front', 'mslb_pmtu_learned_total')).toBeGreaterThanOrEqual(learned + 2);
    // GET /table shows what the front uses toward each back
    const view = JSON.parse((await lab.adminGet('front', '/table')).body) as { pathMtu: Record<string, Record<string, { base: number; learned: number; expiresInS: number }>> };
    expect(view.pathMtu.b1).toMatchObject({ ipv6: { base: 1500, learned: 1400 }, ipv4: { base: 1500, learned: 1400 } });
    expect(view.pathMtu.b1!.ipv6!.expiresInS).toBeGreaterThan(500);
    expect(view.pathMtu.b2).toMatchObject({ ipv6: { base: 1500, learned: 0 } });
  }, 90_000);

  it('a 1300-byte middle link: IPv6 clients keep 1280 and their 1280-byte packets travel in outer fragments that back1 reassembles', async () => {
    setLinkMtu(lab.topo, 'back1-link', 1300);
    const frag = await metric('front', 'mslb_fragmented_total');
    const reasm = await metric('back1', 'mslb_tunnel_reassembled_total');
    const cap = await lab.capture('back1-link', { filter: 'ip6 and src host 2001:db8:5::80' });
    const up6 = await upload(C6, S6);
    await cap.stop();
    expect(up6[3]).toMatch(/^1048576 [0-9a-f]{64}$/);
    expect(cachedMtu(lab, S6, C6)).toBe(1280);
    const frags = fields(lab, cap, 'ipv6.fragment', ['frame.len', 'ipv6.plen']);
    expect(frags.length).toBeGreaterThan(0);
    for (const [, plen] of frags) expect(40 + Number(plen)).toBeLessThanOrEqual(1300);
    expect(await metric('front', 'mslb_fragmented_total')).toBeGreaterThan(frag);
    expect(await metric('back1', 'mslb_tunnel_reassembled_total')).toBeGreaterThan(reasm);
    setLinkMtu(lab.topo, 'back1-link', 1500);
  }, 90_000);
});

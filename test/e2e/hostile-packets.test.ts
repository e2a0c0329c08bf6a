// Hostile input through the real services: malformed packets built by scapy
// (fixtures/hostile-packets.py) are sent as whole Ethernet frames (AF_PACKET, so the sending host
// rewrites nothing) at the front (to S, from a routed client) and at back1 (to B, outer source S,
// an allowed front; back1 also takes IP-in-UDP tunnels on port 6080), kind by kind, in the encap
// lab. UDP super-packets (USO) of tunnel packets go with a virtio header through a packet
// socket, so the kernels carry them whole into back1's TUN, which cuts them and counts every
// segment. For each kind the front's / back's /metrics say how many packets reached the TUN (mslb_rx_packets_total: the kernel of the receiving
// namespace itself drops some malformed packets first, e.g. a bad IPv4 header or an IPv6 payload
// length past the frame, and those never reach mslb), how many were forwarded and how many were
// dropped by which reason. Every packet that reached the TUN must be accounted for: dropped and
// counted by the SPEC 5 reason, or forwarded where the SPEC leaves it to the receiver. Then a
// barrage of every kind runs while valid HTTP/UDP traffic flows: every valid request succeeds, the
// services never exit, and the totals still add up.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { isRoot } from '../helpers/netns.js';
import { Lab, sumMetric, type ServiceName } from '../helpers/lab.js';
import { repoRoot, PYTHON } from '../../lab/paths.js';

type Outcome = 'malformed' | 'not_service' | 'unauthorized_source' | 'forward' | 'fabric';
/** wire: a kind of GSO super-packets (sent with a virtio header) is that many packets on the wire. */
interface Kind { to: 'front' | 'back1'; eth: 4 | 6; packets: string[]; wire?: number }
/** reach: every packet reaches the TUN ('all') or the receiving kernel drops them all first ('none'). */
interface Expect { reach: 'all' | 'none'; outcome?: Outcome }

// What must happen to each kind (SPEC 5; reasons of SPEC 8).
const EXPECT: Record<string, Expect> = {
  'v6 TCP header truncated at every length (0-19 bytes)': { reach: 'all', outcome: 'malformed' },
  'v6 UDP header truncated at every length (0-7 bytes)': { reach: 'all', outcome: 'malformed' },
  'v6 ICMPv6 header truncated at every length (0-7 bytes)': { reach: 'all', outcome: 'malformed' },
  'v4 TCP header truncated at every length (0-19 bytes)': { reach: 'all', outcome: 'malformed' },
  'v4 UDP header truncated at every length (0-7 bytes)': { reach: 'all', outcome: 'malformed' },
  'v4 ICMP header truncated at every length (0-7 bytes)': { reach: 'all', outcome: 'malformed' },
  'v6 TCP data offset < 5 or past the segment': { reach: 'all', outcome: 'malformed' },
  // The front host's kernel validates the IP header itself (ip_rcv / ipv6_rcv): never reach mslb.
  'IPv6 header truncated at every length (1-39 bytes)': { reach: 'none' },
  'IPv4 header truncated at every length (1-19 bytes)': { reach: 'none' },
  'IPv4 IHL < 5 (0-4)': { reach: 'none' },
  'bad IP versions on IPv4 frames (0-3, 5-8, 15)': { reach: 'none' },
  'bad IP versions on IPv6 frames (0, 1, 4, 5, 7, 15)': { reach: 'none' },
  'IPv4 total length past the frame / below the header': { reach: 'none' },
  'IPv6 payload length past the frame': { reach: 'none' },
  'extension header longer than the packet': { reach: 'all', outcome: 'malformed' },
  'extension-header chains: 17 headers, and a 60->60 loop running off the packet': { reach: 'all', outcome: 'malformed' },
  'Hop-by-Hop not first': { reach: 'all', outcome: 'malformed' },
  // A router parses the Hop-by-Hop header (ip6_parse_tlv): the kernel drops this one.
  'Hop-by-Hop first with a malformed option': { reach: 'none' },
  'options running past their header': { reach: 'all', outcome: 'malformed' },
  'bad padding and too many options': { reach: 'all', outcome: 'malformed' },
  // SPEC 5: an LBSP option of the wrong length is ignored (counted) and the packet balanced.
  'LBSP option of a wrong length (ignored, packet balanced)': { reach: 'all', outcome: 'forward' },
  'LBSP option running past its header': { reach: 'all', outcome: 'malformed' },
  'tiny first fragments (RFC 7112 / RFC 1858)': { reach: 'all', outcome: 'malformed' },
  'tiny first IPv4 fragment (8 bytes of TCP)': { reach: 'all', outcome: 'malformed' },
  // SPEC 5: overlapping fragments are left to the reassembling host.
  'overlapping and tiny-offset fragments (left to the receiver)': { reach: 'all', outcome: 'forward' },
  'overlapping IPv4 fragments (offset 1 over the TCP header)': { reach: 'all', outcome: 'forward' },
  'ICMP errors to S quoting garbage': { reach: 'all' },
  'ICMPv4 errors to S quoting garbage': { reach: 'all' },
  // Quoting what looks like the front's own tunnel packet: taken in as fabric feedback (counted in
  // mslb_fabric_icmp_handled_total), never forwarded; a forged MTU is floored (RFC 5927).
  "forged ICMP errors about the front's own tunnel packets": { reach: 'all', outcome: 'fabric' },
  "forged ICMPv6 errors about the front's own tunnel packets": { reach: 'all', outcome: 'fabric' },
  'nested encapsulation toward the back itself': { reach: 'all', outcome: 'malformed' },
  'nested IPv4 encapsulation toward the back itself': { reach: 'all', outcome: 'malformed' },
  'tunnel with inner IPv4 IHL < 5': { reach: 'all', outcome: 'malformed' },
  'tunnel with the wrong inner version': { reach: 'all', outcome: 'malformed' },
  'tunnel with inner header truncated at every length': { reach: 'all', outcome: 'malformed' },
  'tunnel with inner length past the outer payload': { reach: 'all', outcome: 'malformed' },
  'tunnel with inner IPv6 payload length past the outer payload': { reach: 'all', outcome: 'malformed' },
  'tunnel with a bad inner IPv4 header checksum': { reach: 'all', outcome: 'malformed' },
  'tunnel with a malformed inner extension-header chain': { reach: 'all', outcome: 'malformed' },
  // back1 is `mode: auto`: a tunnel packet from outside allowedFronts is translated like any packet
  // (SPEC 6), never unwrapped; `mode: encap` refuses it (datapath-back-refusals.test.ts).
  'tunnel from an unauthorized outer source': { reach: 'all', outcome: 'forward' },
  'tunnel whose inner destination is not a service': { reach: 'all', outcome: 'not_service' },
  'truncated upper-layer headers to B': { reach: 'all', outcome: 'malformed' },
  // IP-in-UDP (back1-udp.yaml: udpPort 6080); the UDP checks are the back's: a router does none
  'UDP tunnel with a bad UDP checksum': { reach: 'all', outcome: 'malformed' },
  'IPv4 UDP tunnel with a bad UDP checksum': { reach: 'all', outcome: 'malformed' },
  'UDP tunnel with a zero checksum over IPv6': { reach: 'all', outcome: 'malformed' },
  'UDP tunnel with a UDP length past the packet or below 8': { reach: 'all', outcome: 'malformed' },
  'UDP tunnel whose UDP length cuts the inner packet': { reach: 'all', outcome: 'malformed' },
  'UDP tunnel without an IP packet (GUE variant 0, bad first nibble, empty)': { reach: 'all', outcome: 'malformed' },
  'UDP tunnel with inner header truncated at every length': { reach: 'all', outcome: 'malformed' },
  'UDP tunnel with a bad inner IPv4 header checksum': { reach: 'all', outcome: 'malformed' },
  'nested UDP tunnel toward the back itself': { reach: 'all', outcome: 'malformed' },
  'UDP tunnel whose inner destination is not a service': { reach: 'all', outcome: 'not_service' },
  'UDP tunnel from an unauthorized outer source': { reach: 'all', outcome: 'forward' },
  'UDP tunnel to another port': { reach: 'all', outcome: 'forward' },
  // the checks of the inner packet are those of IP-in-IP, after the UDP header
  'UDP tunnel with the inner TCP header truncated': { reach: 'all', outcome: 'malformed' },
  'IPv4 UDP tunnel with inner length past the outer payload': { reach: 'all', outcome: 'malformed' },
  'UDP tunnel with a malformed inner extension-header chain': { reach: 'all', outcome: 'malformed' },
  'nested IPv4 UDP tunnel toward the back itself': { reach: 'all', outcome: 'malformed' },
  'IPv4 UDP tunnel to another port or from an unauthorized outer source': { reach: 'all', outcome: 'forward' },
  // UDP super-packets (virtio UDP_L4 GSO) of tunnel packets, as a host's GRO makes them: the back
  // cuts them and judges every segment alone (each counted; the read counts the wire packets)
  'UDP super-packet (USO) of tunnel packets with bad inner IPv4 checksums': { reach: 'all', outcome: 'malformed' },
  'IPv4 UDP super-packet (USO) of tunnel packets to a non-service': { reach: 'all', outcome: 'not_service' },
};

interface Snap { rx: number; tx: number; icmp: number; mcast: number; fabric: number; held: number; lbspIgnored: number; drops: Record<string, number> }

function snap(text: string): Snap {
  const drops: Record<string, number> = {};
  for (const m of text.matchAll(/^mslb_drops_total\{reason="(\w+)"\}\s+(\S+)/gm)) drops[m[1]!] = Number(m[2]);
  const n = (name: string, labels: Record<string, string> = {}) => {
    const v = sumMetric(text, name, labels);
    return Number.isNaN(v) ? 0 : v;
  };
  return {
    rx: n('mslb_rx_packets_total'),
    tx: n('mslb_tx_packets_total'),
    icmp: n('mslb_icmp_sent_total'),
    mcast: n('mslb_multicast_ignored_total'),
    fabric: n('mslb_fabric_icmp_handled_total'),
    held: n('mslb_tunnel_fragments_held_total') + n('mslb_tunnel_reassembled_total'),
    lbspIgnored: n('mslb_lbsp_ignored_total'),
    drops,
  };
}

interface Delta { rx: number; fwd: number; lbspIgnored: number; drops: Record<string, number>; dropSum: number; mcast: number; fabric: number; held: number }

/** Packets read that were not forwarded and not dropped, but taken in and counted as such. */
function takenIn(d: Delta): number {
  return d.mcast + d.fabric + d.held;
}

function delta(a: Snap, b: Snap): Delta {
  const drops: Record<string, number> = {};
  let dropSum = 0;
  for (const [k, v] of Object.entries(b.drops)) {
    const d = v - (a.drops[k] ?? 0);
    if (d !== 0) drops[k] = d;
    dropSum += d;
  }
  return { rx: b.rx - a.rx, fwd: b.tx - a.tx - (b.icmp - a.icmp), lbspIgnored: b.lbspIgnored - a.lbspIgnored, drops, dropSum, mcast: b.mcast - a.mcast, fabric: b.fabric - a.fabric, held: b.held - a.held };
}

describe.skipIf(!isRoot())('hostile packets through the real front and back (encap lab)', () => {
  let lab: Lab;
  let kinds: Record<string, Kind>;
  const via: Record<'front' | 'back1', { ns: string; iface: string; dst: string; src: string }> = {} as never;

  let backNs = '';
  /** Packets back1's kernel handed to its TUN (a super-packet handed over whole counts once). */
  function tunHandedOver(): number {
    const j = JSON.parse(lab.set.exec(backNs, 'ip', ['-s', '-j', 'link', 'show', 'dev', 'mslbb0'])) as { stats64: { tx: { packets: number } } }[];
    return j[0]!.stats64.tx.packets;
  }

  function mac(ns: string, iface: string): string {
    const j = JSON.parse(lab.set.exec(ns, 'ip', ['-j', 'link', 'show', 'dev', iface])) as { address: string }[];
    return j[0]!.address;
  }

  async function send(to: 'front' | 'back1', frames: { eth: number; hex: string }[], gapMs = 0): Promise<number> {
    const v = via[to];
    const r = await lab.set.run(v.ns, PYTHON, [join(repoRoot(), 'test/e2e/fixtures/send-frames.py'), v.iface, v.dst, v.src, String(gapMs)], {
      input: frames.map((f) => `${f.eth} ${f.hex}`).join('\n') + '\n',
      timeoutMs: 60_000,
    });
    if (r.code !== 0) throw new Error(`send-frames: ${r.stderr}`);
    return Number(r.stdout.trim());
  }

  /** /metrics once the service has stopped reading (rx unchanged over two reads 150 ms apart). */
  async function settled(svc: ServiceName): Promise<Snap> {
    let last = snap(await lab.metrics(svc));
    for (let i = 0; i < 20; i++) {
      await new Promise((r) => setTimeout(r, 150));
      const s = snap(await lab.metrics(svc));
      if (s.rx === last.rx && s.tx === last.tx) return s;
      last = s;
    }
    return last;
  }

  beforeAll(async () => {
    kinds = JSON.parse(execFileSync(PYTHON, [join(repoRoot(), 'test/e2e/fixtures/hostile-packets.py')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })) as Record<string, Kind>;
    // back1 also accepts IP-in-UDP tunnels (udpPort) for the UDP tunnel kinds; IP-in-IP is unchanged
    lab = await Lab.start({ mode: 'encap', backConfigs: { back1: 'deploy/lab/back1-udp.yaml' } });
    const cl = lab.topo.linkOf('client-link');
    const b1 = lab.topo.linkOf('back1-link');
    via.front = { ns: cl.near.ns, iface: cl.near.iface, dst: mac(cl.far.ns, cl.far.iface), src: mac(cl.near.ns, cl.near.iface) };
    backNs = b1.far.ns;
    via.back1 = { ns: b1.near.ns, iface: b1.near.iface, dst: mac(b1.far.ns, b1.far.iface), src: mac(b1.near.ns, b1.near.iface) };
  }, 120_000);

  afterAll(async () => {
    await lab?.stop();
  }, 60_000);

  it('the table of kinds and expectations covers every kind the generator builds', () => {
    expect(Object.keys(kinds).sort()).toEqual(Object.keys(EXPECT).sort());
  });

  it('kind by kind: what reached the TUN is dropped and counted by its reason, or forwarded where the SPEC says so', async () => {
    const rows: string[] = [];
    const failures: string[] = [];
    let reachedTotal = 0;
    const backOffload = sumMetric(await lab.metrics('back1'), 'mslb_offload_enabled', {}) === 1;
    for (const [name, k] of Object.entries(kinds)) {
      const svc: ServiceName = k.to;
      const before = await settled(svc);
      const tun0 = k.wire !== undefined ? tunHandedOver() : 0;
      const sent = await send(k.to, k.packets.map((hex) => ({ eth: k.eth, hex })));
      const after = await settled(svc);
      const d = delta(before, after);
      // the host's own MLD reports into the TUN (multicast_ignored) may land in any window
      const reached = d.rx - d.mcast;
      reachedTotal += reached;
      const wire = k.wire !== undefined ? sent * k.wire : sent;
      const handed = k.wire !== undefined ? tunHandedOver() - tun0 : 0;
      const gso = k.wire !== undefined ? `  (${wire} wire packets, the TUN handed over ${handed})` : '';
      const reasons = Object.entries(d.drops).map(([r, n]) => `${r} ${n}`).join(', ') || '-';
      rows.push(`${name.padEnd(80)} ${String(sent).padStart(3)} sent ${String(reached).padStart(3)} reached ${svc} TUN  forwarded ${d.fwd}  dropped: ${reasons}${gso}${d.fabric ? `  fabric ICMP taken in ${d.fabric}` : ''}`);
      const e = EXPECT[name]!;
      const fail = (m: string) => failures.push(`${name}: ${m} (sent ${sent}, reached ${reached}, forwarded ${d.fwd}, dropped ${reasons})`);
      if (sent !== k.packets.length) fail('not every frame was sent');
      // every packet read is accounted for: forwarded, or dropped with exactly one reason
      if (d.rx !== d.fwd + d.dropSum + takenIn(d)) fail('packets read != forwarded + dropped + taken in');
      // with offloads the back's TUN takes USO: each super-packet is handed over whole, cut by the back
      if (k.wire !== undefined && backOffload && handed !== sent) fail(`expected the TUN to hand over each super-packet whole (${handed})`);
      if (e.reach === 'all' && reached !== wire) fail('expected every packet to reach the TUN');
      if (e.reach === 'none' && reached !== 0) fail('expected the kernel to drop them before the TUN');
      if (e.outcome === 'forward' && d.fwd !== reached) fail('expected every packet forwarded');
      if (e.outcome === 'fabric' && (d.fabric !== reached || d.fwd !== 0)) fail('expected every packet taken in as fabric feedback');
      if (e.outcome !== undefined && e.outcome !== 'forward' && e.outcome !== 'fabric' && (d.drops[e.outcome] ?? 0) !== reached) fail(`expected all dropped as ${e.outcome}`);
      if (name.startsWith('LBSP option of a wrong length') && d.lbspIgnored !== sent) fail(`lbsp ignored counted ${d.lbspIgnored}`);
    }
    console.log(`hostile packets, kind by kind (encap lab):\n${rows.join('\n')}`);
    expect(failures).toEqual([]);
    expect(reachedTotal).toBeGreaterThan(150); // the suite really exercised mslb, not only the kernel
    for (const s of ['front', 'back1', 'back2'] as const) expect(lab.serviceProcess(s)?.exitCode, `${s} still running`).toBeNull();
  }, 180_000);

  it('a barrage of every kind alongside valid HTTP and UDP traffic: every valid request succeeds, the services stay up, the counts add up', async () => {
    const fb = { front: await settled('front'), back1: await settled('back1') };
    const rounds = 8;
    const frames = { front: [] as { eth: number; hex: string }[], back1: [] as { eth: number; hex: string }[] };
    for (let r = 0; r < rounds; r++) for (const k of Object.values(kinds)) for (const hex of k.packets) frames[k.to].push({ eth: k.eth, hex });
    const barrage = Promise.all([send('front', frames.front, 1), send('back1', frames.back1, 1)]);
    const valid: string[] = [];
    const t0 = Date.now();
    let requests = 0;
    // valid traffic for as long as the barrage lasts (bounded: at most 60 rounds)
    let done = false;
    void barrage.then(() => (done = true));
    for (let i = 0; i < 60 && (!done || i < 10); i++) {
      const rs = await Promise.all([lab.curl('c1v6'), lab.curl('c1v4'), lab.udp('c1v6'), lab.udp('c1v4')]);
      requests += rs.length;
      for (const r of rs) if (!r.ok || r.server !== 'server1') valid.push(`round ${i}: ${r.detail}`);
    }
    const [sentFront, sentBack] = await barrage;
    const ms = Date.now() - t0;
    const fa = await settled('front');
    const ba = await settled('back1');
    const df = delta(fb.front, fa);
    const db = delta(fb.back1, ba);
    console.log(`barrage: ${sentFront} frames at the front, ${sentBack} at back1 in ${ms} ms; ${requests} valid requests alongside, ${valid.length} failed`);
    console.log(`front: read ${df.rx}, forwarded ${df.fwd}, dropped ${JSON.stringify(df.drops)}; back1: read ${db.rx}, forwarded ${db.fwd}, dropped ${JSON.stringify(db.drops)}`);
    expect(valid).toEqual([]);
    expect(requests).toBeGreaterThanOrEqual(40);
    expect(sentFront + sentBack).toBe(frames.front.length + frames.back1.length);
    for (const s of ['front', 'back1', 'back2'] as const) {
      expect(lab.serviceProcess(s)?.exitCode, `${s} exited`).toBeNull();
      const h = await lab.adminGet(s, '/healthz');
      expect(h.status, `${s} /healthz`).toBe(200);
    }
    // every packet read (hostile and valid) was forwarded or dropped with one reason
    expect(df.rx).toBe(df.fwd + df.dropSum + takenIn(df));
    expect(db.rx).toBe(db.fwd + db.dropSum + takenIn(db));
    expect(df.drops.malformed ?? 0).toBeGreaterThan(0);
    expect(db.drops.malformed ?? 0).toBeGreaterThan(0);
  }, 240_000);
});

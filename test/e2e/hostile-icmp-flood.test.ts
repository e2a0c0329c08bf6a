// ICMP generation cannot be turned into an amplifier: a flood of oversize packets (IPv6
// and IPv4 with DF, 1500 bytes, from many client addresses) at the front of the encap lab, whose
// tunnel MTU is 1460 / 1480. Every oversize packet is dropped as too_big; the Packet Too Big /
// Fragmentation Needed errors the front sends are bounded by its token buckets: the global one
// (icmp.burst plus icmp.ratePerSecond per second of flood) and, tighter here, the one per source
// prefix (the flood comes from one IPv6 /48 and one IPv4 /24: twice icmp.perSourceBurst plus
// icmp.perSourceRate per second), the rest are counted as rate limited, and what the
// client receives is what the front says it sent. Counted, not timed: the bound uses the flood's
// measured duration.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isRoot } from '../helpers/netns.js';
import { Lab, sumMetric } from '../helpers/lab.js';
import { repoRoot, PYTHON } from '../../lab/paths.js';

const RATE = 50;
const BURST = 20;
const PS_RATE = 10;
const PS_BURST = 5;
/** Source prefixes of the flood: 2001:db8:c1::/48 and 203.0.113.0/24. */
const PREFIXES = 2;
const PPS = 2000;
const SECONDS = 3;

// Oversize frames from 64 addresses of each client prefix, sent at PPS for SECONDS.
const FLOOD = `
import socket, struct, sys, time
from scapy.all import IP, IPv6, UDP, Raw
iface, dst, src, pps, secs = sys.argv[1], bytes.fromhex(sys.argv[2].replace(':', '')), bytes.fromhex(sys.argv[3].replace(':', '')), float(sys.argv[4]), float(sys.argv[5])
frames = []
for i in range(64):
    p6 = IPv6(src='2001:db8:c1::%x' % (0x100 + i), dst='2001:db8:5::80', hlim=64) / UDP(sport=40000 + i, dport=9) / Raw(b'x' * (1500 - 48))
    p4 = IP(src='203.0.113.%d' % (1 + i % 60), dst='192.0.2.80', ttl=64, flags='DF') / UDP(sport=40000 + i, dport=9) / Raw(b'x' * (1500 - 28))
    frames.append(dst + src + b'\\x86\\xdd' + bytes(p6))
    frames.append(dst + src + b'\\x08\\x00' + bytes(p4))
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((iface, 0))
n = 0; t0 = time.monotonic(); nxt = t0; last = t0
while time.monotonic() - t0 < secs:
    now = time.monotonic()
    if now < nxt:
        time.sleep(min(0.01, nxt - now)); continue
    s.send(frames[n % len(frames)]); n += 1; nxt += 1.0 / pps; last = time.monotonic()
print(n, round(last - t0, 3))
`;

function nstat(text: string, name: string): number {
  const m = new RegExp(`^${name}\\s+(\\d+)`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

describe.skipIf(!isRoot())('ICMP errors under a flood of oversize packets stay within the rate limit', () => {
  let lab: Lab;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mslb-icmpflood-'));
    const root = repoRoot();
    writeFileSync(join(dir, 'table-encap.yaml'), readFileSync(join(root, 'deploy/lab/table-encap.yaml'), 'utf8'));
    writeFileSync(join(dir, 'front.yaml'), `${readFileSync(join(root, 'deploy/lab/front-encap.yaml'), 'utf8')}\nicmp: { ratePerSecond: ${RATE}, burst: ${BURST}, perSourceRate: ${PS_RATE}, perSourceBurst: ${PS_BURST} }\n`);
    lab = await Lab.start({ mode: 'encap', frontConfig: join(dir, 'front.yaml') });
  }, 120_000);

  afterAll(async () => {
    await lab?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it(`a ${SECONDS} s flood at ${PPS} pps: every oversize packet dropped as too_big, ICMP sent within the per-prefix (and global) budget, the rest rate-limited, the client receives what was sent`, async () => {
    const cl = lab.topo.linkOf('client-link');
    const mac = (ns: string, iface: string) => (JSON.parse(lab.set.exec(ns, 'ip', ['-j', 'link', 'show', 'dev', iface])) as { address: string }[])[0]!.address;
    // the client namespace must accept the errors for the flood's sources (they are on its lo)
    for (let i = 0; i < 64; i++) lab.set.ip(lab.ns.client, `addr add 2001:db8:c1::${(0x100 + i).toString(16)}/128 dev lo`);
    for (let i = 0; i < 60; i++) if (i + 1 !== 10) lab.set.ip(lab.ns.client, `addr add 203.0.113.${i + 1}/32 dev lo`);
    const before = await lab.metrics('front');
    const cBefore = lab.set.exec(lab.ns.client, 'nstat', ['-az']);
    const r = await lab.set.run(cl.near.ns, PYTHON, ['-c', FLOOD, cl.near.iface, mac(cl.far.ns, cl.far.iface), mac(cl.near.ns, cl.near.iface), String(PPS), String(SECONDS)], { timeoutMs: (SECONDS + 30) * 1000 });
    expect(r.code, r.stderr).toBe(0);
    const [sentS, durS] = r.stdout.trim().split(/\s+/);
    const sent = Number(sentS);
    const duration = Number(durS);
    await new Promise((res) => setTimeout(res, 1000));
    const after = await lab.metrics('front');
    const cAfter = lab.set.exec(lab.ns.client, 'nstat', ['-az']);
    const d = (name: string, labels: Record<string, string> = {}) => (sumMetric(after, name, labels) || 0) - (sumMetric(before, name, labels) || 0);
    const rx = d('mslb_rx_packets_total');
    const tooBig = d('mslb_drops_total', { reason: 'too_big' });
    const icmpSent = d('mslb_icmp_sent_total', { type: 'packet_too_big' }) + d('mslb_icmp_sent_total', { type: 'frag_needed' });
    const limited = d('mslb_icmp_rate_limited_total');
    const received = nstat(cAfter, 'Icmp6InPktTooBigs') - nstat(cBefore, 'Icmp6InPktTooBigs') + (nstat(cAfter, 'IcmpInDestUnreachs') - nstat(cBefore, 'IcmpInDestUnreachs'));
    const globalBound = BURST + RATE * (duration + 1);
    const bound = Math.min(globalBound, PREFIXES * (PS_BURST + PS_RATE * (duration + 1)));
    const bytesIn = sent * 1500;
    console.log(
      `flood: ${sent} oversize packets in ${duration} s (${Math.round(sent / duration)} pps, ${bytesIn} bytes); reached the front ${rx}; dropped too_big ${tooBig}; ` +
        `ICMP sent ${icmpSent} (bound: ${PREFIXES} prefixes x (${PS_BURST} + ${PS_RATE}/s x (${duration} + 1) s) = ${bound}; global ${globalBound}), rate-limited ${limited}; ICMP received by the client ${received}; ` +
        `amplification: ${(icmpSent / sent).toFixed(4)} errors per oversize packet`,
    );
    expect(sent).toBeGreaterThan(PPS * SECONDS * 0.8);
    expect(rx).toBeGreaterThanOrEqual(sent); // (+ the host's own MLD, if any)
    expect(tooBig).toBe(sent);
    expect(icmpSent).toBeLessThanOrEqual(bound);
    expect(icmpSent).toBeGreaterThanOrEqual(PREFIXES * (PS_BURST + PS_RATE * Math.floor(duration) * 0.5)); // the limit, not a wall: errors keep flowing
    expect(icmpSent + limited).toBe(tooBig); // every dropped packet: one error, or one rate-limit count
    expect(received).toBe(icmpSent);
    expect(lab.serviceProcess('front')?.exitCode).toBeNull();
  }, 120_000);
});

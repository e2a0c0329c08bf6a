// Fragmenter (shared/packet/ipv4-fragment.ts, ipv6-fragment.ts) and bounded reassembly
// (shared/packet/reassembly.ts), judged by scapy: scapy builds the datagrams, our code cuts them,
// scapy's defragment()/defragment6() must give back the original bytes; and the reverse — scapy's
// fragment()/fragment6() pieces, shuffled, must come out of our Reassembler byte-identical.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ScapyWorker } from '../helpers/scapy-worker.js';
import { PacketInfo } from '../../shared/packet/packet-info.js';
import { parsePacket, ParseError } from '../../shared/packet/parse.js';
import { ipv4FragmentCount, ipv4FragmentStep, writeIpv4Fragment, ipv4LaterFragmentHeaderLen } from '../../shared/packet/ipv4-fragment.js';
import { ipv6FragmentCount, ipv6FragmentStep, writeIpv6Fragment } from '../../shared/packet/ipv6-fragment.js';
import { Reassembler, REASM_COMPLETE, REASM_DROP, REASM_STORED } from '../../shared/packet/reassembly.js';
import { ipv4HeaderChecksumValid } from '../../shared/packet/checksum.js';

const sc = new ScapyWorker();
afterAll(() => sc.close());
const scapy = <T>(script: string, input: unknown): Promise<T> => sc.run<T>(script, input);

const BUILD = `
def run(inp):
    out = []
    for c in inp:
        if c['v'] == 4:
            opts = [IPOption_Router_Alert(), IPOption_RR()] if c.get('opts') else []
            ff = c.get('flags', 0)
            p = IP(src='203.0.113.10', dst='192.0.2.80', id=c['id'], flags=ff, frag=c.get('frag', 0), ttl=61, tos=0xb8, options=opts)/UDP(sport=4000, dport=7)/Raw(bytes((i * 7) & 255 for i in range(c['n'])))
        else:
            inner = IPv6(src='2001:db8:c1::10', dst='2001:db8:5::80', hlim=63)/UDP(sport=4000, dport=7)/Raw(bytes((i * 5) & 255 for i in range(c['n'])))
            p = IPv6(src='2001:db8:5::80', dst='2001:db8:b::1', nh=41, hlim=64, fl=0x12345)/inner
        out.append(bytes(p).hex())
    return out
`;

const DEFRAG = `
def run(inp):
    out = []
    for c in inp:
        frags = [(IP if c['v'] == 4 else IPv6)(bytes.fromhex(h)) for h in c['frags']]
        if c['v'] == 4:
            d = defragment(frags)
            out.append([bytes(x).hex() for x in d])
        else:
            d = defragment6(frags)
            out.append([bytes(d).hex()] if d is not None else [])
    return out
`;

const SCAPY_FRAGMENT = `
def run(inp):
    out = []
    for c in inp:
        if c['v'] == 4:
            p = IP(src='198.51.100.7', dst='198.51.100.1', id=c['id'], proto=4)/IP(src='203.0.113.10', dst='192.0.2.80')/UDP(sport=1, dport=2)/Raw(b'q' * c['n'])
            fr = fragment(p, fragsize=c['size'])
        else:
            p = IPv6(src='2001:db8:5::80', dst='2001:db8:b::1')/IPv6ExtHdrFragment(id=c['id'])/IPv6(src='2001:db8:c1::10', dst='2001:db8:5::80')/UDP(sport=1, dport=2)/Raw(b'q' * c['n'])
            fr = fragment6(p, c['size'])
            p = IPv6(src='2001:db8:5::80', dst='2001:db8:b::1')/IPv6(src='2001:db8:c1::10', dst='2001:db8:5::80')/UDP(sport=1, dport=2)/Raw(b'q' * c['n'])
        out.append({'whole': bytes(p).hex(), 'frags': [bytes(f).hex() for f in fr]})
    return out
`;

const hex = (b: Uint8Array, o: number, n: number) => Buffer.from(b.subarray(o, o + n)).toString('hex');

function slabOf(h: string, head = 128): [Uint8Array, number, number] {
  const b = Buffer.from(h, 'hex');
  const buf = new Uint8Array(head + b.length + 64).fill(0xa5);
  buf.set(b, head);
  return [buf, head, b.length];
}

interface V4Case { v: 4; id: number; n: number; mtu: number; opts?: boolean; flags?: number; frag?: number }

describe('IPv4 fragmenter, judged by scapy defragment()', async () => {
  const cases: V4Case[] = [];
  let id = 100;
  for (const n of [1, 100, 1472, 1473, 2999, 8000]) for (const mtu of [68, 576, 1006, 1280, 1480]) cases.push({ v: 4, id: id++, n, mtu });
  for (const mtu of [96, 600, 1400]) cases.push({ v: 4, id: id++, n: 3000, mtu, opts: true });
  let built: string[] = [];
  beforeAll(async () => {
    built = await scapy<string[]>(BUILD, cases);
  }, 60_000);

  it('every fragment fits, offsets are multiples of 8, MF on all but the last, header checksums valid; scapy reassembles the original', async () => {
    const toJudge: { v: 4; frags: string[] }[] = [];
    for (let ci = 0; ci < cases.length; ci++) {
      const c = cases[ci]!;
      const [buf, off, len] = slabOf(built[ci]!);
      const info = new PacketInfo();
      expect(parsePacket(buf, off, len, info, -1)).toBe(ParseError.OK);
      const count = ipv4FragmentCount(info, c.mtu);
      if (info.totalLen <= c.mtu) expect(count).toBe(1);
      const step = ipv4FragmentStep(c.mtu, info.hdrLen);
      expect(step % 8).toBe(0);
      const frags: string[] = [];
      const out = new Uint8Array(4096);
      let covered = 0;
      // later fragments first, then fragment 0 in place (as the front does)
      for (let k = count - 1; k >= 0; k--) {
        const inPlace = k === 0;
        const n = inPlace ? writeIpv4Fragment(buf, off, info, step, 0, buf, off) : writeIpv4Fragment(buf, off, info, step, k, out, 0);
        const b = inPlace ? buf : out;
        const o = inPlace ? off : 0;
        expect(n, `case ${ci} frag ${k}`).toBeLessThanOrEqual(c.mtu);
        expect(ipv4HeaderChecksumValid(b, o, (b[o]! & 15) * 4)).toBe(true);
        const ff = (b[o + 6]! << 8) | b[o + 7]!;
        expect((ff & 0x1fff) * 8).toBe(k * step);
        expect((ff & 0x2000) !== 0).toBe(k < count - 1);
        expect(ff & 0x4000).toBe(0);
        if (k > 0) expect((b[o]! & 15) * 4).toBe(ipv4LaterFragmentHeaderLen(buf, off, info));
        covered += n - (b[o]! & 15) * 4;
        frags.unshift(hex(b, o, n));
      }
      expect(covered).toBe(info.totalLen - info.hdrLen);
      toJudge.push({ v: 4, frags });
    }
    const judged = await scapy<string[][]>(DEFRAG, toJudge);
    for (let ci = 0; ci < cases.length; ci++) {
      expect(judged[ci], `case ${JSON.stringify(cases[ci])}`).toEqual([built[ci]]);
    }
  });

  it('options: fragment 0 keeps all, later fragments only the copied ones (Router Alert yes, Record Route no)', async () => {
    const ci = cases.findIndex((c) => c.opts);
    const [buf, off, len] = slabOf(built[ci]!);
    const info = new PacketInfo();
    parsePacket(buf, off, len, info, -1);
    expect(info.hdrLen).toBeGreaterThan(24); // RA (4) + RR (39 padded)
    expect(ipv4LaterFragmentHeaderLen(buf, off, info)).toBe(24);
    const out = new Uint8Array(2048);
    writeIpv4Fragment(buf, off, info, ipv4FragmentStep(cases[ci]!.mtu, info.hdrLen), 1, out, 0);
    expect(Array.from(out.subarray(20, 24))).toEqual([0x94, 0x04, 0, 0]);
  });

  it('a packet that is itself a fragment is cut further: offsets continue, the last piece keeps MF', async () => {
    const [b0] = await scapy<string[]>(BUILD, [{ v: 4, id: 9, n: 1500, flags: 1, frag: 100 }]);
    const [buf, off, len] = slabOf(b0!);
    const info = new PacketInfo();
    expect(parsePacket(buf, off, len, info, -1)).toBe(ParseError.OK);
    expect(info.fragOffset).toBe(800);
    const count = ipv4FragmentCount(info, 600);
    const step = ipv4FragmentStep(600, info.hdrLen);
    const out = new Uint8Array(2048);
    for (let k = 0; k < count; k++) {
      writeIpv4Fragment(buf, off, info, step, k, out, 0);
      const ff = (out[6]! << 8) | out[7]!;
      expect((ff & 0x1fff) * 8).toBe(800 + k * step);
      expect(ff & 0x2000).toBe(0x2000); // MF everywhere: the original had more after it
    }
  });
});

describe('IPv6 outer fragmentation (RFC 2473 7.1), judged by scapy defragment6()', async () => {
  it('an outer IPv6 tunnel packet cut to 1280 / 1300 / 1350: fragments fit and reassemble to the original', async () => {
    const cases = [1000, 1232, 1240, 2000].map((n) => ({ v: 6, n }));
    const built = await scapy<string[]>(BUILD, cases);
    const toJudge: { v: 6; frags: string[] }[] = [];
    const mtus = [1280, 1300, 1350, 1280];
    built.forEach((h, ci) => {
      const [buf, off, len] = slabOf(h);
      const mtu = mtus[ci]!;
      const step = ipv6FragmentStep(mtu);
      const count = ipv6FragmentCount(len, step);
      const frags: string[] = [];
      const out = new Uint8Array(2048);
      for (let k = count - 1; k >= 0; k--) {
        const inPlace = k === 0;
        const n = inPlace ? writeIpv6Fragment(buf, off, len, step, 0, 0xabcd1234, buf, off - 8) : writeIpv6Fragment(buf, off, len, step, k, 0xabcd1234, out, 0);
        const b = inPlace ? buf : out;
        const o = inPlace ? off - 8 : 0;
        expect(n).toBeLessThanOrEqual(mtu);
        expect(b[o + 6]).toBe(44);
        frags.unshift(hex(b, o, n));
      }
      expect(frags.length).toBeGreaterThanOrEqual(len > mtu ? 2 : 1);
      toJudge.push({ v: 6, frags });
    });
    const judged = await scapy<string[][]>(DEFRAG, toJudge);
    judged.forEach((j, ci) => expect(j, `case ${ci}`).toEqual([built[ci]]));
  });
});

describe('Reassembler over scapy fragment()/fragment6() pieces', async () => {
  const cases = [
    { v: 4, id: 1, n: 1400, size: 576 },
    { v: 4, id: 2, n: 1800, size: 1000 },
    { v: 6, id: 3, n: 1200, size: 600 },
    { v: 6, id: 4, n: 1300, size: 1280 },
  ];
  let made: { whole: string; frags: string[] }[] = [];
  beforeAll(async () => {
    made = await scapy<{ whole: string; frags: string[] }[]>(SCAPY_FRAGMENT, cases);
  }, 60_000);

  function feed(r: Reassembler, frags: string[], order: number[], now = 0): { last: number; out?: string } {
    let last = REASM_STORED;
    let out: string | undefined;
    const info = new PacketInfo();
    for (const i of order) {
      const [buf, off, len] = slabOf(frags[i]!);
      expect(parsePacket(buf, off, len, info, -1)).toBe(ParseError.OK);
      expect(info.isFragment).toBe(true);
      last = r.add(buf, off, info, now);
      if (last === REASM_COMPLETE) out = hex(r.buf, r.outOff, r.outLen);
    }
    return { last, out };
  }

  it('in order, reversed and interleaved with another datagram: byte-identical to the original (checksum recomputed)', async () => {
    const r = new Reassembler({ slots: 4, maxDatagram: 2048 });
    for (const [ci, m] of made.entries()) {
      expect(m.frags.length, `case ${ci}`).toBeGreaterThan(1);
      const n = m.frags.length;
      for (const order of [[...Array(n).keys()], [...Array(n).keys()].reverse()]) {
        const got = feed(r, m.frags, order);
        expect(got.last).toBe(REASM_COMPLETE);
        expect(got.out, `case ${ci} order ${order}`).toBe(m.whole);
      }
    }
    // two datagrams interleaved
    const a = made[0]!.frags, b = made[2]!.frags;
    const info = new PacketInfo();
    const done: string[] = [];
    for (let i = 0; i < Math.max(a.length, b.length); i++) {
      for (const f of [a[i], b[i]]) {
        if (!f) continue;
        const [buf, off, len] = slabOf(f);
        parsePacket(buf, off, len, info, -1);
        if (r.add(buf, off, info, 0) === REASM_COMPLETE) done.push(hex(r.buf, r.outOff, r.outLen));
      }
    }
    expect(done.sort()).toEqual([made[0]!.whole, made[2]!.whole].sort());
    expect(r.inProgress).toBe(0);
  });

  it('an overlapping fragment drops its datagram (RFC 5722); a duplicate last fragment too', async () => {
    const r = new Reassembler();
    const f = made[0]!.frags;
    const got = feed(r, f, [0, 0]);
    expect(got.last).toBe(REASM_DROP);
    expect(r.rejected).toBe(1);
    expect(r.inProgress).toBe(0);
  });

  it('bounded: a datagram larger than maxDatagram is refused; the oldest is evicted when slots run out; an old one times out', async () => {
    const small = new Reassembler({ slots: 2, maxDatagram: 1000, timeoutMs: 100 });
    expect(feed(small, made[1]!.frags, [0, 1]).last).toBe(REASM_DROP); // 1800 bytes > 1000
    const big = new Reassembler({ slots: 2, maxDatagram: 2048, timeoutMs: 100 });
    feed(big, made[0]!.frags, [0], 0);
    feed(big, made[1]!.frags, [0], 1);
    feed(big, made[2]!.frags, [0], 2); // third datagram: evicts the oldest
    expect(big.evicted).toBe(1);
    expect(big.inProgress).toBe(2);
    // the rest of datagram 0 arrives after it was evicted: never completes
    const rest0 = feed(big, made[0]!.frags, made[0]!.frags.map((_, i) => i).slice(1), 3);
    expect(rest0.last).toBe(REASM_STORED);
    // after the timeout everything is gone
    feed(big, made[3]!.frags, [0], 500);
    expect(big.timedOut).toBeGreaterThanOrEqual(2);
    expect(big.inProgress).toBe(1);
  });
});

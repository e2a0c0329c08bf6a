// Fragmenter (shared/packet/ipv4-fragment.ts, ipv6-fragment.ts) and bounded reassembly
// (shared/packet/reassembly.ts) against scapy vectors (test/vectors/make_fragment_vectors.py): our
// fragments must equal, byte for byte, the ones the RFC rules give (built by scapy, which checked
// that its defragment()/defragment6() gives the datagram back); and scapy's own fragment() /
// fragment6() pieces, in any order, must come out of our Reassembler byte-identical to the whole.
import { describe, expect, it } from 'vitest';
import { PacketInfo } from '../../shared/packet/packet-info.js';
import { parsePacket, ParseError } from '../../shared/packet/parse.js';
import { ipv4FragmentCount, ipv4FragmentStep, writeIpv4Fragment, ipv4LaterFragmentHeaderLen } from '../../shared/packet/ipv4-fragment.js';
import { ipv6FragmentCount, ipv6FragmentStep, writeIpv6Fragment } from '../../shared/packet/ipv6-fragment.js';
import { Reassembler, REASM_COMPLETE, REASM_DROP, REASM_STORED } from '../../shared/packet/reassembly.js';
import { ipv4HeaderChecksumValid } from '../../shared/packet/checksum.js';
import { loadVectors } from '../vectors/load.js';

interface FragVector { desc: string; mtu: number; opts?: boolean; isFragment?: boolean; id?: number; input: string; fragments: string[] }
interface ReasmVector { desc: string; whole: string; fragments: string[] }
const V = loadVectors<{ ipv4: FragVector[]; ipv6: FragVector[]; reassembly: ReasmVector[] }>('fragment.json');

const hex = (b: Uint8Array, o: number, n: number) => Buffer.from(b.subarray(o, o + n)).toString('hex');

function slabOf(h: string, head = 128): [Uint8Array, number, number] {
  const b = Buffer.from(h, 'hex');
  const buf = new Uint8Array(head + b.length + 64).fill(0xa5);
  buf.set(b, head);
  return [buf, head, b.length];
}

describe('IPv4 fragmenter against the RFC 791 fragments scapy built', () => {
  const cases = V.ipv4.filter((c) => !c.isFragment);

  it.each(cases.map((c) => [c.desc, c] as const))('%s: every fragment fits, offsets are multiples of 8, MF on all but the last, header checksums valid, bytes as expected', (_d, c) => {
    const [buf, off, len] = slabOf(c.input);
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
      expect(n, `frag ${k}`).toBeLessThanOrEqual(c.mtu);
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
    expect(frags).toEqual(c.fragments);
  });

  it('options: fragment 0 keeps all, later fragments only the copied ones (Router Alert yes, Record Route no)', () => {
    const c = V.ipv4.find((x) => x.opts)!;
    const [buf, off, len] = slabOf(c.input);
    const info = new PacketInfo();
    parsePacket(buf, off, len, info, -1);
    expect(info.hdrLen).toBeGreaterThan(24); // RA (4) + RR (39 padded)
    expect(ipv4LaterFragmentHeaderLen(buf, off, info)).toBe(24);
    const out = new Uint8Array(2048);
    writeIpv4Fragment(buf, off, info, ipv4FragmentStep(c.mtu, info.hdrLen), 1, out, 0);
    expect(Array.from(out.subarray(20, 24))).toEqual([0x94, 0x04, 0, 0]);
  });

  it('a packet that is itself a fragment is cut further: offsets continue, the last piece keeps MF', () => {
    const c = V.ipv4.find((x) => x.isFragment)!;
    const [buf, off, len] = slabOf(c.input);
    const info = new PacketInfo();
    expect(parsePacket(buf, off, len, info, -1)).toBe(ParseError.OK);
    expect(info.fragOffset).toBe(800);
    const count = ipv4FragmentCount(info, c.mtu);
    const step = ipv4FragmentStep(c.mtu, info.hdrLen);
    const out = new Uint8Array(2048);
    const frags: string[] = [];
    for (let k = 0; k < count; k++) {
      const n = writeIpv4Fragment(buf, off, info, step, k, out, 0);
      const ff = (out[6]! << 8) | out[7]!;
      expect((ff & 0x1fff) * 8).toBe(800 + k * step);
      expect(ff & 0x2000).toBe(0x2000); // MF everywhere: the original had more after it
      frags.push(hex(out, 0, n));
    }
    expect(frags).toEqual(c.fragments);
  });
});

describe('IPv6 outer fragmentation (RFC 2473 7.1) against scapy fragment6()', () => {
  it.each(V.ipv6.map((c) => [c.desc, c] as const))('%s: fragments fit and equal scapy\'s', (_d, c) => {
    const [buf, off, len] = slabOf(c.input);
    const step = ipv6FragmentStep(c.mtu);
    const count = ipv6FragmentCount(len, step);
    const frags: string[] = [];
    const out = new Uint8Array(2048);
    for (let k = count - 1; k >= 0; k--) {
      const inPlace = k === 0;
      const n = inPlace ? writeIpv6Fragment(buf, off, len, step, 0, c.id!, buf, off - 8) : writeIpv6Fragment(buf, off, len, step, k, c.id!, out, 0);
      const b = inPlace ? buf : out;
      const o = inPlace ? off - 8 : 0;
      expect(n).toBeLessThanOrEqual(c.mtu);
      expect(b[o + 6]).toBe(44);
      frags.unshift(hex(b, o, n));
    }
    expect(frags.length).toBeGreaterThanOrEqual(len > c.mtu ? 2 : 1);
    expect(frags).toEqual(c.fragments);
  });
});

describe('Reassembler over scapy fragment()/fragment6() pieces', () => {
  const made = V.reassembly.map((v) => ({ whole: v.whole, frags: v.fragments }));

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

  it('in order, reversed and interleaved with another datagram: byte-identical to the original (checksum recomputed)', () => {
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

  it('an overlapping fragment drops its datagram (RFC 5722); a duplicate last fragment too', () => {
    const r = new Reassembler();
    const f = made[0]!.frags;
    const got = feed(r, f, [0, 0]);
    expect(got.last).toBe(REASM_DROP);
    expect(r.rejected).toBe(1);
    expect(r.inProgress).toBe(0);
  });

  it('bounded: a datagram larger than maxDatagram is refused; the oldest is evicted when slots run out; an old one times out', () => {
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

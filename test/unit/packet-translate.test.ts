import { describe, it, expect } from 'vitest';
import { PacketInfo } from '../../shared/packet/packet-info.js';
import { parsePacket } from '../../shared/packet/parse.js';
import { LBSP_DEFAULT_TYPE } from '../../shared/packet/constants.js';
import { addrDelta, completePartialChecksum, computeL4Checksum, partialPseudoSum } from '../../shared/packet/checksum.js';
import { rewriteDst, rewriteSrc, decrementHopLimit } from '../../shared/packet/translate.js';
import { loadVectors, slab, hexOf, words } from '../vectors/load.js';

interface TranslateVector {
  desc: string;
  input: string;
  newDst?: string;
  newSrc?: string;
  output: string;
  partialInput?: string;
  partialOutput?: string;
}

const vectors = loadVectors<TranslateVector[]>('translate.json');

function parse(hex: string): [Uint8Array, number, number, PacketInfo] {
  const [buf, off, len] = slab(hex);
  const info = new PacketInfo();
  const r = parsePacket(buf, off, len, info, LBSP_DEFAULT_TYPE);
  expect(r).toBe(0);
  return [buf, off, len, info];
}

function translate(v: TranslateVector, hex: string, partial: boolean): [Uint8Array, number, number, PacketInfo] {
  const [buf, off, len, info] = parse(hex);
  const w = info.version === 4 ? 1 : 4;
  if (v.newDst) {
    const nw = words(v.newDst);
    rewriteDst(buf, off, info, nw, addrDelta(info.dst, nw, w), partial);
  } else {
    const nw = words(v.newSrc!);
    rewriteSrc(buf, off, info, nw, addrDelta(info.src, nw, w), partial);
  }
  return [buf, off, len, info];
}

describe('rewriteDst / rewriteSrc: incremental == scapy full recomputation', () => {
  it.each(vectors.map((v) => [v.desc, v] as const))('%s', (_d, v) => {
    const before = slab(v.input);
    const [buf, off, len] = translate(v, v.input, false);
    expect(hexOf(buf, off, len)).toBe(v.output);
    // nothing outside the packet was touched
    expect(hexOf(buf, 0, off)).toBe(hexOf(before[0], 0, off));
    expect(hexOf(buf, off + len, buf.length - off - len)).toBe(hexOf(before[0], off + len, buf.length - off - len));
  });

  it.each(vectors.filter((v) => v.newDst).map((v) => [v.desc, v] as const))('round trip back to the original: %s', (_d, v) => {
    const [buf, off, len, info] = parse(v.output);
    const orig = new PacketInfo();
    const [ob, oo, ol] = slab(v.input);
    parsePacket(ob, oo, ol, orig, LBSP_DEFAULT_TYPE);
    const w = info.version === 4 ? 1 : 4;
    rewriteDst(buf, off, info, orig.dst, addrDelta(info.dst, orig.dst, w), false);
    expect(hexOf(buf, off, len)).toBe(v.input);
  });
});

describe('NEEDS_CSUM partial sums (applyPartial)', () => {
  const pv = vectors.filter((v) => v.partialInput);
  it('covers TCP and UDP over both families', () => expect(pv.length).toBeGreaterThanOrEqual(8));
  it.each(pv.map((v) => [v.desc, v] as const))('%s', (_d, v) => {
    // the vector's field holds the pseudo-header sum python computed; check our view of it agrees
    const [, , , info0] = parse(v.partialInput!);
    const [b0, o0] = slab(v.partialInput!);
    const f = o0 + info0.l4Off + (info0.proto === 6 ? 16 : 6);
    expect((b0[f] << 8) | b0[f + 1]).toBe(partialPseudoSum(info0));
    const [buf, off, len, info] = translate(v, v.partialInput!, true);
    // still a valid partial sum for the rewritten addresses
    expect(hexOf(buf, off, len)).toBe(v.partialOutput);
    // completing it over the L4 segment gives scapy's checksum of the rewritten packet
    completePartialChecksum(buf, off, info);
    expect(hexOf(buf, off, len)).toBe(v.output);
  });
});

describe('decrementHopLimit', () => {
  const hv = loadVectors<{ desc: string; input: string; result: number; output: string }[]>('hoplimit.json');
  it.each(hv.map((v) => [v.desc, v] as const))('%s', (_d, v) => {
    const [buf, off, len, info] = parse(v.input);
    expect(decrementHopLimit(buf, off, info)).toBe(v.result);
    expect(hexOf(buf, off, len)).toBe(v.output);
  });
});

describe('property: incremental update == full recomputation', () => {
  // deterministic PRNG so a failure is reproducible
  let seed = 0x2545f491;
  const r32 = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return seed >>> 0;
  };

  function build(v6: boolean, proto: number, payload: number, src: Uint32Array, dst: Uint32Array): [Uint8Array, number, number, PacketInfo] {
    const ipLen = v6 ? 40 : 20;
    const l4h = proto === 6 ? 20 : 8;
    const total = ipLen + l4h + payload;
    const buf = new Uint8Array(128 + total);
    const off = 128;
    for (let i = off; i < buf.length; i++) buf[i] = r32() & 0xff;
    if (v6) {
      buf[off] = 0x60; buf[off + 1] = 0; buf[off + 2] = 0; buf[off + 3] = 0;
      buf[off + 4] = (total - 40) >> 8; buf[off + 5] = (total - 40) & 0xff; buf[off + 6] = proto; buf[off + 7] = 64;
      for (let i = 0; i < 4; i++) for (let j = 0; j < 4; j++) {
        buf[off + 8 + 4 * i + j] = (src[i] >>> (24 - 8 * j)) & 0xff;
        buf[off + 24 + 4 * i + j] = (dst[i] >>> (24 - 8 * j)) & 0xff;
      }
    } else {
      buf[off] = 0x45; buf[off + 2] = total >> 8; buf[off + 3] = total & 0xff; buf[off + 6] = 0; buf[off + 7] = 0;
      buf[off + 8] = 64; buf[off + 9] = proto; buf[off + 10] = 0; buf[off + 11] = 0;
      for (let j = 0; j < 4; j++) {
        buf[off + 12 + j] = (src[0] >>> (24 - 8 * j)) & 0xff;
        buf[off + 16 + j] = (dst[0] >>> (24 - 8 * j)) & 0xff;
      }
    }
    const l4 = off + ipLen;
    if (proto === 6) buf[l4 + 12] = 0x50;
    else { buf[l4 + 4] = (l4h + payload) >> 8; buf[l4 + 5] = (l4h + payload) & 0xff; }
    const info = new PacketInfo();
    expect(parsePacket(buf, off, total, info, -1)).toBe(0);
    if (!v6) {
      // fill the IPv4 header checksum
      let s = 0;
      for (let i = 0; i < 20; i += 2) s += (buf[off + i] << 8) | buf[off + i + 1];
      while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
      const c = ~s & 0xffff;
      buf[off + 10] = c >> 8; buf[off + 11] = c & 0xff;
    }
    const c = computeL4Checksum(buf, off, info);
    const f = l4 + (proto === 6 ? 16 : 6);
    buf[f] = c >> 8; buf[f + 1] = c & 0xff;
    return [buf, off, total, info];
  }

  function randAddr(v6: boolean): Uint32Array {
    const w = new Uint32Array(4);
    w[0] = r32();
    if (v6) { w[1] = r32(); w[2] = r32(); w[3] = r32(); }
    // sprinkle all-ones / all-zero halves, where ones' complement edge cases live
    if ((r32() & 7) === 0) w[0] = r32() & 1 ? 0xffffffff : 0;
    return w;
  }

  it('random addresses and payloads, TCP and UDP, IPv4 and IPv6 (3000 cases)', () => {
    let udpFfff = 0;
    for (let i = 0; i < 3000; i++) {
      const v6 = (i & 1) === 1;
      const proto = i & 2 ? 6 : 17;
      const [buf, off, len, info] = build(v6, proto, r32() % 200, randAddr(v6), randAddr(v6));
      const nw = randAddr(v6);
      const w = v6 ? 4 : 1;
      rewriteDst(buf, off, info, nw, addrDelta(info.dst, nw, w), false);
      const f = off + info.l4Off + (proto === 6 ? 16 : 6);
      const got = (buf[f] << 8) | buf[f + 1];
      const want = computeL4Checksum(buf, off, info);
      expect(got).toBe(want);
      if (proto === 17 && got === 0xffff) udpFfff++;
      if (!v6) {
        let s = 0;
        for (let k = 0; k < 20; k += 2) s += (buf[off + k] << 8) | buf[off + k + 1];
        while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
        expect(s).toBe(0xffff);
      }
      void len;
    }
    void udpFfff;
  });

  it('UDP edge cases: a result of 0 is sent as 0xFFFF; an IPv4 zero checksum stays zero', () => {
    let found = 0;
    for (let i = 0; i < 200000 && found < 20; i++) {
      const v6 = (i & 1) === 1;
      const [buf, off, , info] = build(v6, 17, 2, randAddr(v6), randAddr(v6));
      const f = off + info.l4Off + 6;
      // choose the new address so that the full checksum comes out 0xFFFF (computed 0): adjust
      // the last 16 bits of the new address to cancel the sum
      const nw = randAddr(v6);
      const last = v6 ? 3 : 0;
      nw[last] = (nw[last] & 0xffff0000) >>> 0;
      const tmp = new PacketInfo();
      const copy = buf.slice();
      parsePacket(copy, off, info.totalLen, tmp, -1);
      rewriteDst(copy, off, tmp, nw, addrDelta(tmp.dst, nw, v6 ? 4 : 1), false);
      const c = (copy[f] << 8) | copy[f + 1];
      // setting the low word to x changes the sum by x: pick x making the result 0 (= 0xFFFF sent)
      const x = c === 0xffff ? 0 : (0xffff - (~c & 0xffff)) & 0xffff;
      nw[last] = (nw[last] | x) >>> 0;
      const before = (buf[f] << 8) | buf[f + 1];
      rewriteDst(buf, off, info, nw, addrDelta(info.dst, nw, v6 ? 4 : 1), false);
      const got = (buf[f] << 8) | buf[f + 1];
      expect(got).toBe(computeL4Checksum(buf, off, info));
      expect(got).not.toBe(0);
      if (got === 0xffff) found++;
      void before;
    }
    expect(found).toBeGreaterThanOrEqual(20);

    // IPv4 UDP checksum 0 (disabled by the sender) stays 0
    const [buf, off, , info] = build(false, 17, 10, randAddr(false), randAddr(false));
    const f = off + 20 + 6;
    buf[f] = 0; buf[f + 1] = 0;
    const nw = randAddr(false);
    rewriteDst(buf, off, info, nw, addrDelta(info.dst, nw, 1), false);
    expect(buf[f] | buf[f + 1]).toBe(0);
  });

  it('TCP edge case: a checksum that must come out 0x0000 does (RFC 1624 eqn 3, not eqn 2)', () => {
    let zeros = 0;
    for (let i = 0; i < 200; i++) {
      const v6 = (i & 1) === 1;
      const [buf, off, , info] = build(v6, 6, 2 + (i % 5), randAddr(v6), randAddr(v6));
      const f = off + info.l4Off + 16;
      const nw = randAddr(v6);
      const last = v6 ? 3 : 0;
      nw[last] = (nw[last] & 0xffff0000) >>> 0;
      const copy = buf.slice();
      const tmp = new PacketInfo();
      parsePacket(copy, off, info.totalLen, tmp, -1);
      rewriteDst(copy, off, tmp, nw, addrDelta(tmp.dst, nw, v6 ? 4 : 1), false);
      const c = (copy[f] << 8) | copy[f + 1];
      // low 16 bits x of the new address add x to the sum: choose x so the sum folds to 0xFFFF
      nw[last] = (nw[last] | ((0xffff - (~c & 0xffff)) & 0xffff)) >>> 0;
      rewriteDst(buf, off, info, nw, addrDelta(info.dst, nw, v6 ? 4 : 1), false);
      const got = (buf[f] << 8) | buf[f + 1];
      expect(got).toBe(computeL4Checksum(buf, off, info));
      if (got === 0) zeros++;
    }
    expect(zeros).toBeGreaterThan(150);
  });

  it('partial sums stay pseudo-header sums under random rewrites (1000 cases)', () => {
    for (let i = 0; i < 1000; i++) {
      const v6 = (i & 1) === 1;
      const proto = i & 2 ? 6 : 17;
      const [buf, off, , info] = build(v6, proto, r32() % 100, randAddr(v6), randAddr(v6));
      const f = off + info.l4Off + (proto === 6 ? 16 : 6);
      let p = partialPseudoSum(info);
      buf[f] = p >> 8; buf[f + 1] = p & 0xff;
      const nw = randAddr(v6);
      rewriteSrc(buf, off, info, nw, addrDelta(info.src, nw, v6 ? 4 : 1), true);
      p = (buf[f] << 8) | buf[f + 1];
      // ones' complement: 0 and 0xFFFF are the same value
      const want = partialPseudoSum(info);
      expect(p === want || (p % 0xffff) === (want % 0xffff)).toBe(true);
      completePartialChecksum(buf, off, info);
      expect((buf[f] << 8) | buf[f + 1]).toBe(computeL4Checksum(buf, off, info));
    }
  });
});

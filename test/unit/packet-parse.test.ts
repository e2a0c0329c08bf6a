import { describe, it, expect } from 'vitest';
import { PacketInfo } from '../../shared/packet/packet-info.js';
import { parsePacket, ParseError } from '../../shared/packet/parse.js';
import { LBSP_DEFAULT_TYPE } from '../../shared/packet/constants.js';
import { loadVectors, slab } from '../vectors/load.js';

interface ParseVector {
  desc: string;
  hex: string;
  verdict: keyof typeof ParseError;
  lbspType?: number;
  expect: Record<string, number | boolean>;
}

const vectors = loadVectors<ParseVector[]>('parse.json');

describe('parsePacket against scapy vectors', () => {
  it('has vectors of every kind', () => {
    expect(vectors.length).toBeGreaterThan(60);
    expect(vectors.filter((v) => v.verdict !== 'OK').length).toBeGreaterThan(25);
  });

  it.each(vectors.map((v) => [v.desc, v] as const))('%s', (_d, v) => {
    const [buf, off, len] = slab(v.hex);
    const info = new PacketInfo();
    const r = parsePacket(buf, off, len, info, v.lbspType ?? LBSP_DEFAULT_TYPE);
    expect(r).toBe(ParseError[v.verdict]);
    for (const [k, want] of Object.entries(v.expect)) {
      expect((info as unknown as Record<string, unknown>)[k], k).toBe(want);
    }
    if (r === 0 && info.l4Off >= 0) {
      expect(info.l4Len).toBe(info.totalLen - info.l4Off);
      expect(buf[off + info.protoFieldOff]).toBe(info.proto);
    }
  });
});

describe('parsePacket bounds', () => {
  it('never reads past len: every truncation of every valid vector gives a verdict, not a throw', () => {
    const info = new PacketInfo();
    let n = 0;
    for (const v of vectors.filter((x) => x.verdict === 'OK')) {
      const [buf, off, len] = slab(v.hex);
      for (let cut = 0; cut < len; cut++) {
        // bytes after the cut are poisoned (0xa5); the result must not depend on them
        const r1 = parsePacket(buf, off, cut, info, LBSP_DEFAULT_TYPE);
        const copy = buf.slice();
        copy.fill(0x00, off + cut);
        const r2 = parsePacket(copy, off, cut, info, LBSP_DEFAULT_TYPE);
        expect(r1).toBe(r2);
        n++;
      }
    }
    expect(n).toBeGreaterThan(1000);
  });

  it('reads addresses as network-order words', () => {
    const v = vectors.find((x) => x.desc === 'v4 UDP')!;
    const [buf, off, len] = slab(v.hex);
    const info = new PacketInfo();
    expect(parsePacket(buf, off, len, info, LBSP_DEFAULT_TYPE)).toBe(0);
    expect(info.dst[0]).toBe(0xc0000250);
    expect(info.src[0]).toBe(0xcb00710a);
  });

  it('random bytes never throw (bounded fuzz)', () => {
    const info = new PacketInfo();
    let seed = 12345;
    const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 16) & 0xff;
    const buf = new Uint8Array(300);
    for (let i = 0; i < 20000; i++) {
      const len = rnd() + 1;
      for (let j = 0; j < len; j++) buf[j] = rnd();
      buf[0] = (buf[0] & 0x0f) | (i & 1 ? 0x60 : 0x40);
      if (i & 1 && len >= 40) buf[6] = [0, 43, 44, 51, 60, 6, 17][i % 7];
      const r = parsePacket(buf, 0, len, info, LBSP_DEFAULT_TYPE);
      expect(r >= 0 && r <= 8).toBe(true);
      if (r === 0) expect(info.hdrLen).toBeLessThanOrEqual(len);
    }
  });
});

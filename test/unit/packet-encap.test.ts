import { describe, it, expect } from 'vitest';
import { PacketInfo } from '../../shared/packet/packet-info.js';
import { parsePacket } from '../../shared/packet/parse.js';
import { encapsulate, decapsulate, innerFlowHash, DecapResult, DecapVerdict, decapEcn, OUTER_HDR_LEN4, OUTER_HDR_LEN6 } from '../../shared/packet/encap.js';
import { loadVectors, slab, hexOf, words } from '../vectors/load.js';

interface EncapVector { desc: string; input: string; outerVersion: number; src: string; dst: string; hopLimit: number; ipId: number; output: string }
interface DecapVector { desc: string; input: string; verdict: keyof typeof DecapVerdict; output?: string }

const ev = loadVectors<EncapVector[]>('encap.json');
const dv = loadVectors<DecapVector[]>('decap.json');

describe('encapsulate (4in4, 6in4, 6in6, 4in6) against scapy', () => {
  it('covers the four family pairs', () => {
    for (const k of ['4in4', '6in4', '6in6', '4in6']) expect(ev.some((v) => v.desc.startsWith(k))).toBe(true);
  });
  it.each(ev.map((v) => [v.desc, v] as const))('%s', (_d, v) => {
    const [buf, off, len] = slab(v.input);
    const info = new PacketInfo();
    expect(parsePacket(buf, off, len, info, -1)).toBe(0);
    const n = encapsulate(buf, off, info, v.outerVersion, words(v.src), words(v.dst), v.hopLimit, v.ipId);
    const hl = v.outerVersion === 4 ? OUTER_HDR_LEN4 : OUTER_HDR_LEN6;
    expect(n).toBe(off - hl);
    const got = Buffer.from(buf.subarray(n, n + len + hl));
    const want = Buffer.from(v.output, 'hex');
    if (v.outerVersion === 6) {
      // the outer flow label is ours (RFC 6438 hash); scapy wrote 0 there
      const fl = ((got[1] & 0x0f) << 16) | (got[2] << 8) | got[3];
      expect(fl).toBe(innerFlowHash(info));
      expect(fl).not.toBe(0);
      got[1] &= 0xf0; got[2] = 0; got[3] = 0;
    }
    expect(got.toString('hex')).toBe(want.toString('hex'));
  });
});

describe('innerFlowHash (RFC 6438)', () => {
  const info = new PacketInfo();
  it('is 20 bits, never 0, and spreads', () => {
    info.version = 6; info.proto = 6; info.l4Off = 40;
    const seen = new Set<number>();
    for (let i = 0; i < 5000; i++) {
      info.src[3] = i; info.srcPort = 1000 + (i % 7);
      const h = innerFlowHash(info);
      expect(h).toBeGreaterThan(0);
      expect(h).toBeLessThan(1 << 20);
      seen.add(h);
    }
    expect(seen.size).toBeGreaterThan(4980);
  });
  it('depends on ports only for unfragmented packets, on the inner label always', () => {
    info.reset(); info.version = 4; info.proto = 17; info.l4Off = 20; info.src[0] = 1; info.dst[0] = 2; info.srcPort = 5;
    const a = innerFlowHash(info);
    info.srcPort = 6;
    expect(innerFlowHash(info)).not.toBe(a);
    info.isFragment = true; info.moreFragments = true;
    const f1 = innerFlowHash(info);
    info.srcPort = 0; info.l4Off = -1; info.fragOffset = 800;
    expect(innerFlowHash(info)).toBe(f1); // every fragment of a datagram: same outer label
    info.flowLabel = 7;
    expect(innerFlowHash(info)).not.toBe(f1);
  });
});

describe('decapsulate: RFC 6040 table and validation against scapy', () => {
  it('has all 16 ECN combinations for each family pair', () => {
    expect(dv.filter((v) => v.desc.includes('ECN')).length).toBe(64);
  });
  it.each(dv.map((v) => [v.desc, v] as const))('%s', (_d, v) => {
    const [buf, off, len] = slab(v.input);
    const info = new PacketInfo();
    expect(parsePacket(buf, off, len, info, -1)).toBe(0);
    const out = new DecapResult();
    const r = decapsulate(buf, off, info, out);
    expect(r).toBe(DecapVerdict[v.verdict]);
    if (v.output) {
      expect(hexOf(buf, out.off, out.len)).toBe(v.output);
      const inner = new PacketInfo();
      expect(parsePacket(buf, out.off, out.len, inner, -1)).toBe(0);
      expect(out.version).toBe(inner.version);
    }
  });
  it('decapEcn: drop only for Not-ECT inner with CE outer', () => {
    let drops = 0;
    for (let i = 0; i < 4; i++) for (let o = 0; o < 4; o++) if (decapEcn(i, o) < 0) { drops++; expect([i, o]).toEqual([0, 3]); }
    expect(drops).toBe(1);
  });
});

describe('encapsulate then decapsulate restores the inner packet', () => {
  it.each(ev.map((v) => [v.desc, v] as const))('%s', (_d, v) => {
    const [buf, off, len] = slab(v.input);
    const info = new PacketInfo();
    parsePacket(buf, off, len, info, -1);
    const n = encapsulate(buf, off, info, v.outerVersion, words(v.src), words(v.dst), v.hopLimit, v.ipId);
    const outer = new PacketInfo();
    const nl = len + (v.outerVersion === 4 ? 20 : 40);
    expect(parsePacket(buf, n, nl, outer, -1)).toBe(0);
    const res = new DecapResult();
    // CE inner + copied CE outer -> CE; everything copied decaps to itself
    expect(decapsulate(buf, n, outer, res)).toBe(DecapVerdict.OK);
    expect(res.off).toBe(off);
    expect(hexOf(buf, res.off, res.len)).toBe(v.input);
  });
});

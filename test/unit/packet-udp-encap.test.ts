import { describe, it, expect } from 'vitest';
import { PacketInfo } from '../../shared/packet/packet-info.js';
import { parsePacket } from '../../shared/packet/parse.js';
import { DecapResult, DecapVerdict } from '../../shared/packet/encap.js';
import { decapsulateUdp, encapsulateUdp, udpOuterLen, udpSourcePort } from '../../shared/packet/udp-encap.js';
import { fold, sum16 } from '../../shared/packet/checksum.js';
import { loadVectors, slab, hexOf, words } from '../vectors/load.js';

interface EncapVector { desc: string; input: string; outerVersion: number; src: string; dst: string; hopLimit: number; ipId: number; port: number; sport: number; output: string }
interface DecapVector { desc: string; input: string; verdict: keyof typeof DecapVerdict; output?: string }

const vec = loadVectors<{ encap: EncapVector[]; decap: DecapVector[] }>('udp-encap.json');

/** Complete a partial (pseudo-header) UDP checksum over [u, u+ulen) as the native path does. */
function complete(buf: Uint8Array, u: number, ulen: number): void {
  let c = ~fold(sum16(buf, u, u + ulen, 0)) & 0xffff;
  if (c === 0) c = 0xffff;
  buf[u + 6] = c >> 8;
  buf[u + 7] = c & 0xff;
}

describe('encapsulateUdp (4in4, 6in6, 4in6, 6in4 over UDP) against scapy', () => {
  it('covers the four family pairs', () => {
    for (const k of ['4in4', '6in4', '6in6', '4in6']) expect(vec.encap.some((v) => v.desc.startsWith(k))).toBe(true);
  });
  it.each(vec.encap.map((v) => [v.desc, v] as const))('%s', (_d, v) => {
    for (const partial of [false, true]) {
      const [buf, off, len] = slab(v.input);
      const info = new PacketInfo();
      expect(parsePacket(buf, off, len, info, -1)).toBe(0);
      expect(udpSourcePort(info)).toBe(v.sport);
      const o = encapsulateUdp(buf, off, info, v.outerVersion, words(v.src), words(v.dst), v.hopLimit, v.ipId, v.port, partial);
      const hl = udpOuterLen(v.outerVersion);
      expect(o).toBe(off - hl);
      if (partial) complete(buf, o + hl - 8, len + 8);
      expect(hexOf(buf, o, len + hl)).toBe(v.output);
    }
  });
  it('source ports spread over 49152-65535 across flows and stay put within one', () => {
    const info = new PacketInfo();
    const seen = new Set<number>();
    info.version = 6; info.proto = 6; info.l4Off = 40; info.dstPort = 443;
    for (let i = 0; i < 4000; i++) {
      info.srcPort = 1024 + i;
      const p = udpSourcePort(info);
      expect(p).toBeGreaterThanOrEqual(49152);
      expect(p).toBeLessThanOrEqual(65535);
      expect(udpSourcePort(info)).toBe(p);
      seen.add(p);
    }
    // 4000 flows into 16384 ports: a uniform hash leaves about 3540 distinct
    expect(seen.size).toBeGreaterThan(3400);
  });
});

describe('decapsulateUdp: UDP checks, GUE variant 1, RFC 6040', () => {
  it.each(vec.decap.map((v) => [v.desc, v] as const))('%s', (_d, v) => {
    const [buf, off, len] = slab(v.input);
    const info = new PacketInfo();
    expect(parsePacket(buf, off, len, info, -1)).toBe(0);
    const out = new DecapResult();
    expect(decapsulateUdp(buf, off, info, out)).toBe(DecapVerdict[v.verdict]);
    if (v.output !== undefined) expect(hexOf(buf, out.off, out.len)).toBe(v.output);
  });
  it('unwraps what encapsulateUdp wrote, for every vector', () => {
    for (const v of vec.encap) {
      const [buf, off, len] = slab(v.input);
      const info = new PacketInfo();
      parsePacket(buf, off, len, info, -1);
      const o = encapsulateUdp(buf, off, info, v.outerVersion, words(v.src), words(v.dst), v.hopLimit, v.ipId, v.port, false);
      const outer = new PacketInfo();
      expect(parsePacket(buf, o, len + udpOuterLen(v.outerVersion), outer, -1)).toBe(0);
      expect(outer.dstPort).toBe(v.port);
      const out = new DecapResult();
      expect(decapsulateUdp(buf, o, outer, out)).toBe(DecapVerdict.OK);
      expect(hexOf(buf, out.off, out.len)).toBe(v.input);
    }
  });
});

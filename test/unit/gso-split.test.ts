// The native GSO splitter (shared/tun/native/gso_split.c via shared/tun/gso.ts) against scapy's
// segments (test/vectors/gso.json) and against our own full checksum computation on random
// super-packets; checksum completion of NEEDS_CSUM packets; the segment counting of vnet-header.ts.
import { describe, expect, it } from 'vitest';
import {
  gsoAddon,
  GSO_E_ARGS,
  GSO_E_MALFORMED,
  GSO_E_TOO_BIG,
  GSO_E_UNSUPPORTED,
} from '../../shared/tun/gso.js';
import { prepareRxVnet, vnetHdrLen, vnetSegments } from '../../shared/tun/vnet-header.js';
import { PacketInfo } from '../../shared/packet/packet-info.js';
import { parsePacket, ParseError } from '../../shared/packet/parse.js';
import { computeL4Checksum, ipv4HeaderChecksumValid, partialPseudoSum } from '../../shared/packet/checksum.js';
import { hexOf, loadVectors, slab } from '../vectors/load.js';

interface SplitVector {
  desc: string;
  super: string;
  vnet: string;
  segments: string[];
}
interface CompleteVector {
  desc: string;
  partial: string;
  vnet: string;
  complete: string;
}
const V = loadVectors<{ split: SplitVector[]; complete: CompleteVector[] }>('gso.json');

const SLOT = 2048;
const HEAD = 128;
const CAP = 64;
const a = gsoAddon();

function outArea(cap = CAP, slot = SLOT) {
  const out = new Uint8Array(cap * slot);
  out.fill(0xa5);
  return { out, offs: new Int32Array(cap), lens: new Int32Array(cap) };
}

function hdr(hex: string): Uint8Array {
  return Uint8Array.from(Buffer.from(hex, 'hex'));
}

function splitAll(buf: Uint8Array, off: number, len: number, vh: Uint8Array, max = CAP, slot = SLOT) {
  const o = outArea(CAP, slot);
  let count = 0;
  for (let guard = 0; guard < 100; guard++) {
    const n = a.gsoSplit(buf, off, len, vh, 0, o.out, o.offs, o.lens, slot, HEAD, count, Math.min(max, CAP - count), count);
    if (n < 0) return { ...o, count, err: n };
    count += n;
    if (n === 0 || count === CAP) break;
  }
  return { ...o, count, err: 0 };
}

describe('gsoSplit vs scapy segments', () => {
  it.each(V.split.map((v) => [v.desc, v] as const))('%s', (_d, v) => {
    const [buf, off, len] = slab(v.super);
    const before = hexOf(buf, 0, buf.length);
    const r = splitAll(buf, off, len, hdr(v.vnet));
    expect(r.err).toBe(0);
    expect(r.count).toBe(v.segments.length);
    for (let k = 0; k < r.count; k++) {
      expect(r.offs[k]).toBe(k * SLOT + HEAD);
      expect(hexOf(r.out, r.offs[k], r.lens[k])).toBe(v.segments[k]);
    }
    // input untouched, nothing written outside the segments' slots
    expect(hexOf(buf, 0, buf.length)).toBe(before);
    expect(r.out[r.count * SLOT]).toBe(0xa5);
    expect(r.out[HEAD - 1]).toBe(0xa5);
  });

  it.each(V.split.map((v) => [v.desc, v] as const))('one segment per call (continuation) gives the same: %s', (_d, v) => {
    const [buf, off, len] = slab(v.super);
    const r = splitAll(buf, off, len, hdr(v.vnet), 1);
    expect(r.err).toBe(0);
    expect(r.count).toBe(v.segments.length);
    for (let k = 0; k < r.count; k++) expect(hexOf(r.out, r.offs[k], r.lens[k])).toBe(v.segments[k]);
  });

  it('prepareRxVnet: segment count and hdr_len recomputed from the packet, not from the kernel hint', () => {
    for (const v of V.split) {
      const [buf, off, len] = slab(v.super);
      const vh = hdr(v.vnet);
      const want = vnetHdrLen(vh, 0);
      vh[2] = len & 0xff; // the forward path may report the whole packet as hdr_len
      vh[3] = len >> 8;
      expect(prepareRxVnet(buf, off, len, vh, 0)).toBe(v.segments.length);
      expect(vnetSegments(vh, 0)).toBe(v.segments.length);
      expect(vnetHdrLen(vh, 0)).toBe(want);
    }
    const plain = new Uint8Array(12);
    const [buf, off, len] = slab(V.complete[0].partial);
    expect(prepareRxVnet(buf, off, len, plain, 0)).toBe(1);
  });
});

describe('gsoSplit: refusals are error codes, never a crash or a write outside the output', () => {
  const tcp4 = V.split[0];
  const tcp6 = V.split[3];
  it('gso type that does not match the packet', () => {
    const [buf, off, len] = slab(tcp6.super);
    const vh = hdr(tcp6.vnet);
    vh[1] = 1; // TCPV4 on an IPv6 packet
    expect(splitAll(buf, off, len, vh).err).toBe(GSO_E_UNSUPPORTED);
    vh[1] = 3; // legacy UFO: never requested
    expect(splitAll(buf, off, len, vh).err).toBe(GSO_E_UNSUPPORTED);
  });
  it('csum_start not at the L4 header, truncated packet, gso_size 0', () => {
    const [buf, off, len] = slab(tcp4.super);
    const vh = hdr(tcp4.vnet);
    vh[6] = 24;
    expect(splitAll(buf, off, len, vh).err).toBe(GSO_E_MALFORMED);
    expect(splitAll(buf, off, len - 1, hdr(tcp4.vnet)).err).toBe(GSO_E_MALFORMED); // IP total length > read length
    expect(splitAll(buf, off, 30, hdr(tcp4.vnet)).err).toBe(GSO_E_MALFORMED);
    const z = hdr(tcp4.vnet);
    z[4] = 0;
    z[5] = 0;
    expect(splitAll(buf, off, len, z).err).toBe(GSO_E_MALFORMED);
    const bad = buf.slice();
    bad[off + 20 + 12] = 0x30; // TCP data offset 12 bytes
    expect(splitAll(bad, off, len, hdr(tcp4.vnet)).err).toBe(GSO_E_MALFORMED);
  });
  it('segments larger than a slot, output range checks', () => {
    const [buf, off, len] = slab(tcp4.super);
    expect(splitAll(buf, off, len, hdr(tcp4.vnet), CAP, HEAD + 1000).err).toBe(GSO_E_TOO_BIG);
    const o = outArea(2);
    expect(a.gsoSplit(buf, off, len, hdr(tcp4.vnet), 0, o.out, o.offs, o.lens, SLOT, HEAD, 0, 2, 0)).toBe(2);
    // a slab smaller than first+max slots: refused before writing
    expect(a.gsoSplit(buf, off, len, hdr(tcp4.vnet), 0, o.out.subarray(0, SLOT), o.offs, o.lens, SLOT, HEAD, 0, 2, 0)).toBe(GSO_E_ARGS);
    expect(() => a.gsoSplit(buf, off, len, hdr(tcp4.vnet), 0, o.out, o.offs, o.lens, SLOT, HEAD, 1, 2, 0)).toThrow(RangeError);
    expect(() => a.gsoSplit(buf, off, buf.length, hdr(tcp4.vnet), 0, o.out, o.offs, o.lens, SLOT, HEAD, 0, 1, 0)).toThrow(RangeError);
  });
  it('random garbage with random virtio headers (2000 cases)', () => {
    let seed = 7;
    const r8 = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed >>> 24;
    };
    const o = outArea(8);
    for (let i = 0; i < 2000; i++) {
      const [buf, off, len] = slab(V.split[i % V.split.length].super);
      for (let k = 0; k < 6; k++) buf[off + (r8() % 64)] = r8();
      const vh = hdr(V.split[i % V.split.length].vnet);
      vh[r8() % 10] = r8();
      const n = a.gsoSplit(buf, off, len - (r8() & 3), vh, 0, o.out, o.offs, o.lens, SLOT, HEAD, 0, 8, 0);
      expect(n).toBeGreaterThanOrEqual(-4);
      expect(n).toBeLessThanOrEqual(8);
    }
  });
});

describe('property: segments of random super-packets carry valid checksums and the original payload', () => {
  let seed = 0x1234567;
  const r32 = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return seed >>> 0;
  };
  function build(v6: boolean, tcp: boolean, payload: number, gso: number): [Uint8Array, number, number, Uint8Array] {
    const ip = v6 ? 40 : 20;
    const l4h = tcp ? 20 + 4 * (r32() % 11) : 8;
    const total = ip + l4h + payload;
    const buf = new Uint8Array(HEAD + total);
    for (let i = HEAD; i < buf.length; i++) buf[i] = r32() & 0xff;
    const o = HEAD;
    if (v6) {
      buf[o] = 0x60;
      buf[o + 4] = (total - 40) >> 8;
      buf[o + 5] = (total - 40) & 0xff;
      buf[o + 6] = tcp ? 6 : 17;
    } else {
      buf[o] = 0x45;
      buf[o + 2] = total >> 8;
      buf[o + 3] = total & 0xff;
      buf[o + 6] = 0x40;
      buf[o + 7] = 0;
      buf[o + 9] = tcp ? 6 : 17;
    }
    if (tcp) buf[o + ip + 12] = (l4h / 4) << 4;
    else {
      buf[o + ip + 4] = (total - ip) >> 8;
      buf[o + ip + 5] = (total - ip) & 0xff;
    }
    const info = new PacketInfo();
    expect(parsePacket(buf, o, total, info, -1)).toBe(ParseError.OK);
    const f = o + ip + (tcp ? 16 : 6);
    const p = partialPseudoSum(info);
    buf[f] = p >> 8;
    buf[f + 1] = p & 0xff;
    const vh = new Uint8Array(12);
    vh[0] = 1;
    vh[1] = tcp ? (v6 ? 4 : 1) : 5;
    vh[2] = (ip + l4h) & 0xff;
    vh[4] = gso & 0xff;
    vh[5] = gso >> 8;
    vh[6] = ip;
    vh[8] = tcp ? 16 : 6;
    return [buf, o, total, vh];
  }

  it('300 random TCP/UDP super-packets over both families', () => {
    const info = new PacketInfo();
    for (let i = 0; i < 300; i++) {
      const v6 = (i & 1) === 1;
      const tcp = (i & 2) === 0;
      const gso = 1 + (r32() % 1460);
      const payload = r32() % Math.min(60000, gso * 40);
      const [buf, off, len, vh] = build(v6, tcp, payload, gso);
      const hdrs = v6 ? 40 : 20;
      const l4h = tcp ? (buf[off + hdrs + 12] >> 4) * 4 : 8;
      const r = splitAll(buf, off, len, vh);
      expect(r.err).toBe(0);
      expect(r.count).toBe(Math.max(1, Math.ceil(payload / gso)));
      let got = 0;
      const seq0 = tcp ? ((buf[off + hdrs + 4] << 24) | (buf[off + hdrs + 5] << 16) | (buf[off + hdrs + 6] << 8) | buf[off + hdrs + 7]) >>> 0 : 0;
      for (let k = 0; k < r.count; k++) {
        const so = r.offs[k];
        expect(parsePacket(r.out, so, r.lens[k], info, -1)).toBe(ParseError.OK);
        expect(info.totalLen).toBe(r.lens[k]);
        if (!v6) expect(ipv4HeaderChecksumValid(r.out, so, 20)).toBe(true);
        const c = (r.out[so + info.l4Off + (tcp ? 16 : 6)] << 8) | r.out[so + info.l4Off + (tcp ? 17 : 7)];
        const want = computeL4Checksum(r.out, so, info);
        expect(c === want || (c === 0 && want === 0xffff) || (c === 0xffff && want === 0)).toBe(true);
        if (tcp) {
          const seq = ((r.out[so + hdrs + 4] << 24) | (r.out[so + hdrs + 5] << 16) | (r.out[so + hdrs + 6] << 8) | r.out[so + hdrs + 7]) >>> 0;
          expect(seq).toBe((seq0 + got) >>> 0);
        }
        const pl = r.lens[k] - hdrs - l4h;
        expect(hexOf(r.out, so + hdrs + l4h, pl)).toBe(hexOf(buf, off + hdrs + l4h + got, pl));
        got += pl;
      }
      expect(got).toBe(payload);
    }
  });
});

describe('completeChecksum of non-GSO NEEDS_CSUM packets', () => {
  it.each(V.complete.map((v) => [v.desc, v] as const))('matches scapy: %s', (_d, v) => {
    const [buf, off, len] = slab(v.partial);
    const vh = hdr(v.vnet);
    const start = vh[6] | (vh[7] << 8);
    const field = vh[8] | (vh[9] << 8);
    expect(a.completeChecksum(buf, off, len, start, field)).toBe(0);
    expect(hexOf(buf, off, len)).toBe(v.complete);
  });
  it('field outside the packet is refused without writing', () => {
    const [buf, off, len] = slab(V.complete[0].partial);
    const before = hexOf(buf, 0, buf.length);
    expect(a.completeChecksum(buf, off, len, len - 1, 6)).toBe(GSO_E_MALFORMED);
    expect(a.completeChecksum(buf, off, len, len + 5, 0)).toBe(GSO_E_MALFORMED);
    expect(hexOf(buf, 0, buf.length)).toBe(before);
  });
});

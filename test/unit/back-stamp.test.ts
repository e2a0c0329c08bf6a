// The back's LBSP stamping of return traffic and MSS clamp (SPEC 4): crafted packets through
// BackProcessor.process() (no TUN).
import { describe, it, expect, beforeEach } from 'vitest';
import { BackProcessor } from '../../back/back-processor.js';
import { STAMP_OVERHEAD, type BackRole } from '../../back/back-role.js';
import { ClientSegments } from '../../back/client-segments.js';
import { PacketInfo } from '../../shared/packet/packet-info.js';
import { parsePacket } from '../../shared/packet/parse.js';
import { buildLbspHeader, readLbspClient, readLbspServer } from '../../shared/packet/lbsp.js';
import { computeL4Checksum, l4ChecksumFieldOff, writeL4Checksum } from '../../shared/packet/checksum.js';
import { dropIndex, eventIndex, newCounterBlock } from '../../shared/metrics/counter-layout.js';
import { newTxQueue } from '../helpers/tx-queue.js';
import { hexOf, loadVectors, slab, words } from '../vectors/load.js';

const S6 = '2001:db8:5::80', B6 = '2001:db8:b::1', S4 = '192.0.2.80', B4 = '198.51.100.1';
const CLIENT = '2001:db8:c1::10', PROXY = '2001:db8:c2::10', C_SEG = '2001:db8:cc::1', SERVER_ID = '2001:db8:5::1';
const tx = newTxQueue(0);
let outLen = 0;

/** Run p over one packet: the offset of the packet it queued (length in outLen), or -1. */
function proc(p: BackProcessor, buf: Uint8Array, off: number, len: number, vnet: Uint8Array): number {
  tx.reset();
  const v = p.process(buf, off, len, vnet, 0, tx);
  if (v < 0 || tx.count !== 1) return -1;
  outLen = tx.lens[0]!;
  return tx.offs[0]!;
}
const w = (a: string) => Array.from(words(a));

function role(extra: Partial<BackRole> = {}): BackRole {
  return {
    lbspType: 0x1e,
    own: [{ family: 6, b: w(B6), s: w(S6), mode: 2 }, { family: 4, b: w(B4), s: w(S4), mode: 2 }],
    services: [{ family: 6, words: w(S6) }, { family: 4, words: w(S4) }],
    allowedFronts: [{ family: 6, words: w(S6), len: 128 }],
    returnPath: true, stamp: true, stampAlways: true, serverId: w(SERVER_ID), mssClamp: 1500 - STAMP_OVERHEAD, mtu: 1500,
    ...extra,
  };
}

interface Pkt { src: string; dst: string; sport: number; dport: number; flags?: number; mss?: number; payload?: number; lbsp?: { client: string; server: string }; dstopts?: number[] }

/** IPv6 TCP with a valid checksum (optional MSS option and LBSP header). */
function tcp6(p: Pkt): [Uint8Array, number, number] {
  const buf = new Uint8Array(128 + 1600 + 64);
  const off = 128;
  let q = off + 40;
  if (p.lbsp) { buildLbspHeader(buf, q, 6, 0x1e, words(p.lbsp.client), words(p.lbsp.server)); q += 40; }
  if (p.dstopts) { buf.set(p.dstopts, q); buf[q] = 6; q += p.dstopts.length; } // the server's own header
  const t = q;
  buf[t] = p.sport >> 8; buf[t + 1] = p.sport & 0xff; buf[t + 2] = p.dport >> 8; buf[t + 3] = p.dport & 0xff;
  const hl = p.mss ? 24 : 20;
  buf[t + 12] = (hl / 4) << 4; buf[t + 13] = p.flags ?? 0x10; buf[t + 14] = 0xff; buf[t + 15] = 0xff;
  if (p.mss) { buf[t + 20] = 2; buf[t + 21] = 4; buf[t + 22] = p.mss >> 8; buf[t + 23] = p.mss & 0xff; }
  q += hl;
  for (let i = 0; i < (p.payload ?? 0); i++) buf[q + i] = i & 0xff;
  q += p.payload ?? 0;
  const pl = q - off - 40;
  buf[off] = 0x60; buf[off + 4] = pl >> 8; buf[off + 5] = pl & 0xff; buf[off + 6] = p.lbsp || p.dstopts ? 60 : 6; buf[off + 7] = 64;
  const put = (at: number, a: string) => { const x = words(a); for (let i = 0; i < 4; i++) { buf[at + 4 * i] = x[i]! >>> 24; buf[at + 4 * i + 1] = (x[i]! >>> 16) & 0xff; buf[at + 4 * i + 2] = (x[i]! >>> 8) & 0xff; buf[at + 4 * i + 3] = x[i]! & 0xff; } };
  put(off + 8, p.src); put(off + 24, p.dst);
  const info = new PacketInfo();
  expect(parsePacket(buf, off, q - off, info, 0x1e)).toBe(0);
  writeL4Checksum(buf, off, info);
  return [buf, off, q - off];
}

function udp4(src: string, dst: string): [Uint8Array, number, number] {
  const buf = new Uint8Array(128 + 64);
  const off = 128;
  const v4 = (a: string) => a.split('.').map(Number);
  const b = [0x45, 0, 0, 36, 0, 1, 0x40, 0, 64, 17, 0, 0, ...v4(src), ...v4(dst), 0, 7, 0x9c, 0x40, 0, 16, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8];
  buf.set(b, off);
  return [buf, off, b.length];
}

interface Out { off: number; len: number; info: PacketInfo; buf: Uint8Array }
function parsed(buf: Uint8Array, off: number, len: number): Out {
  const info = new PacketInfo();
  expect(parsePacket(buf, off, len, info, 0x1e)).toBe(0);
  return { off, len, info, buf };
}
const hex = (x: Uint32Array) => Array.from(x).join(',');
function checksumOk(o: Out): boolean {
  const f = o.off + o.info.l4Off + l4ChecksumFieldOff(o.info.proto);
  return computeL4Checksum(o.buf, o.off, o.info) === ((o.buf[f]! << 8) | o.buf[f + 1]!);
}
function mssOf(o: Out): number {
  const t = o.off + o.info.l4Off;
  return (o.buf[t + 22]! << 8) | o.buf[t + 23]!;
}

describe('back: LBSP stamping of return traffic and MSS clamp', () => {
  let counters: Float64Array;
  let bp: BackProcessor;
  const run = (p: [Uint8Array, number, number]): Out | null => {
    const [buf, off, len] = p;
    const o = proc(bp, buf, off, len, new Uint8Array(0));
    return o < 0 ? null : parsed(buf, o, outLen);
  };
  const ev = (n: Parameters<typeof eventIndex>[0]) => counters[eventIndex(n)]!;

  beforeEach(() => {
    counters = newCounterBlock();
    bp = new BackProcessor(role(), counters);
  });

  it('the request SYN is translated B -> S with its MSS clamped; the SYN-ACK back gets the option with serverId and the client segment', () => {
    const req = run(tcp6({ src: PROXY, dst: B6, sport: 40000, dport: 443, flags: 0x02, mss: 1460, lbsp: { client: C_SEG, server: '::' } }))!;
    expect(hex(req.info.dst)).toBe(hex(words(S6)));
    expect(mssOf(req)).toBe(1400);
    expect(checksumOk(req)).toBe(true);
    expect(ev('mss_clamped')).toBe(1);

    const [buf, off, len] = tcp6({ src: S6, dst: PROXY, sport: 443, dport: 40000, flags: 0x12, mss: 1440 });
    const ret = run([buf, off, len])!;
    expect(ret.off).toBe(off - 40);
    expect(ret.len).toBe(len + 40);
    expect(ret.info.lbspStatus).toBe(1);
    const c = new Uint32Array(4), s = new Uint32Array(4);
    readLbspClient(ret.buf, ret.off, ret.info, c);
    readLbspServer(ret.buf, ret.off, ret.info, s);
    expect(hex(c)).toBe(hex(words(C_SEG)));
    expect(hex(s)).toBe(hex(words(SERVER_ID)));
    expect(hex(ret.info.src)).toBe(hex(words(S6))); // addresses untouched
    expect(hex(ret.info.dst)).toBe(hex(words(PROXY)));
    expect(mssOf({ ...ret, info: ret.info })).toBe(1440); // the return SYN-ACK's MSS is not clamped
    expect(checksumOk(ret)).toBe(true);
    expect(ev('lbsp_stamped')).toBe(1);
  });

  it('a return packet of a flow the back has no client segment for carries an all-zero client segment', () => {
    const ret = run(tcp6({ src: S6, dst: CLIENT, sport: 80, dport: 41000, payload: 100 }))!;
    const c = new Uint32Array(4), s = new Uint32Array(4);
    readLbspClient(ret.buf, ret.off, ret.info, c);
    readLbspServer(ret.buf, ret.off, ret.info, s);
    expect(hex(c)).toBe('0,0,0,0');
    expect(hex(s)).toBe(hex(words(SERVER_ID)));
    expect(checksumOk(ret)).toBe(true);
  });

  it('a return packet that already has the option gets its server segment filled in place', () => {
    const [buf, off, len] = tcp6({ src: S6, dst: CLIENT, sport: 80, dport: 41000, payload: 10, lbsp: { client: C_SEG, server: '::' } });
    const ret = run([buf, off, len])!;
    expect([ret.off, ret.len]).toEqual([off, len]);
    const s = new Uint32Array(4);
    readLbspServer(ret.buf, ret.off, ret.info, s);
    expect(hex(s)).toBe(hex(words(SERVER_ID)));
    expect(checksumOk(ret)).toBe(true);
  });

  it('a full-size return packet is forwarded unstamped (it would exceed the MTU), counted', () => {
    const [buf, off, len] = tcp6({ src: S6, dst: CLIENT, sport: 80, dport: 41000, payload: 1500 - 60 });
    expect(len).toBe(1500);
    const ret = run([buf, off, len])!;
    expect([ret.off, ret.len, ret.info.lbspStatus]).toEqual([off, len, 0]);
    expect(ev('lbsp_stamp_skipped')).toBe(1);
    expect(ev('lbsp_stamped')).toBe(0);
    // with the clamp, the server's segments are at most 1400 bytes: 40 + 20 + 1400 + 40 = 1500
    const fits = run(tcp6({ src: S6, dst: CLIENT, sport: 80, dport: 41000, payload: 1400 }))!;
    expect(fits.len).toBe(1500);
    expect(ev('lbsp_stamped')).toBe(1);
  });

  it('a GSO return super-packet is judged by its segment size (hdr_len + gso_size) and its vnet header follows the insert', () => {
    const vnet = new Uint8Array(12);
    const mk = (gsoSize: number) => {
      const p = tcp6({ src: S6, dst: CLIENT, sport: 80, dport: 41000, payload: 2 * gsoSize });
      // flags NEEDS_CSUM, gso TCPV6, hdr_len 60, gso_size, csum_start 40, csum_offset 16 (little-endian)
      vnet.set([1, 4, 60, 0, gsoSize & 255, gsoSize >> 8, 40, 0, 16, 0, 0, 0]);
      return p;
    };
    const [buf, off, len] = mk(1400);
    const o = proc(bp, buf, off, len, vnet);
    expect(o).toBe(off - 40);
    expect(outLen).toBe(len + 40);
    expect(Array.from(vnet.subarray(0, 10))).toEqual([1, 4, 100, 0, 1400 & 255, 1400 >> 8, 80, 0, 16, 0]);
    expect(ev('lbsp_stamped')).toBe(1);
    const [b2, off2, len2] = mk(1440); // 60 + 1440 + 40 > 1500: not stamped
    expect(proc(bp, b2, off2, len2, vnet)).toBe(off2);
    expect(vnet[2]).toBe(60);
    expect(ev('lbsp_stamp_skipped')).toBe(1);
  });

  it('a reply with the server\'s own Destination Options header gets the option merged: at exactly tun.mtu stamped, one octet over forwarded as it is (scapy vectors)', () => {
    const vs = loadVectors<{ desc: string; input: string; server: string; mtu?: number; output?: string }[]>('lbsp-merge.json').filter((v) => v.mtu === 1500);
    expect(vs.filter((v) => v.output).length).toBeGreaterThanOrEqual(2);
    expect(vs.filter((v) => !v.output).length).toBeGreaterThanOrEqual(2);
    for (const v of vs) {
      counters = newCounterBlock();
      bp = new BackProcessor(role({ serverId: w(v.server) }), counters);
      const [buf, off, len] = slab(v.input);
      const o = proc(bp, buf, off, len, new Uint8Array(0));
      if (v.output) {
        expect(outLen, v.desc).toBe(1500);
        expect(hexOf(buf, o, outLen), v.desc).toBe(v.output);
        expect([ev('lbsp_stamped'), ev('lbsp_stamp_skipped')], v.desc).toEqual([1, 0]);
      } else {
        expect([o, outLen], v.desc).toEqual([off, len]);
        expect(hexOf(buf, o, len), v.desc).toBe(v.input);
        expect([ev('lbsp_stamped'), ev('lbsp_stamp_skipped')], v.desc).toEqual([0, 1]);
      }
    }
  });

  it('a GSO super-packet with the server\'s own Destination Options header: judged per segment with the merge\'s growth (32 here), vnet header shifted by it', () => {
    const vnet = new Uint8Array(12);
    const PADN_ONLY = [0, 0, 1, 4, 0, 0, 0, 0];
    const mk = (gsoSize: number) => {
      const p = tcp6({ src: S6, dst: CLIENT, sport: 80, dport: 41000, payload: 2 * gsoSize, dstopts: PADN_ONLY });
      // NEEDS_CSUM, gso TCPV6, hdr_len 40 + 8 + 20, gso_size, csum_start 48, csum_offset 16
      vnet.set([1, 4, 68, 0, gsoSize & 255, gsoSize >> 8, 48, 0, 16, 0, 0, 0]);
      return p;
    };
    const [buf, off, len] = mk(1400); // 68 + 1400 + 32 = 1500: fits
    const o = proc(bp, buf, off, len, vnet);
    expect(o).toBe(off - 32);
    expect(outLen).toBe(len + 32);
    expect(Array.from(vnet.subarray(0, 10))).toEqual([1, 4, 100, 0, 1400 & 255, 1400 >> 8, 80, 0, 16, 0]);
    const out = parsed(buf, o, outLen);
    expect([out.info.destOptsOff, out.info.destOptsLen, out.info.lbspStatus, out.info.l4Off]).toEqual([40, 40, 1, 80]);
    const s = new Uint32Array(4);
    readLbspServer(buf, o, out.info, s);
    expect(hex(s)).toBe(hex(words(SERVER_ID)));
    expect(checksumOk(out)).toBe(true);
    expect(ev('lbsp_stamped')).toBe(1);
    const [b2, off2, len2] = mk(1401); // one octet over per segment: not stamped
    expect(proc(bp, b2, off2, len2, vnet)).toBe(off2);
    expect(vnet[2]).toBe(68);
    expect(ev('lbsp_stamp_skipped')).toBe(1);
  });

  it('IPv4 return traffic passes unchanged; SYNs already below the clamp keep their MSS', () => {
    const [buf, off, len] = udp4(S4, '203.0.113.10');
    const before = Buffer.from(buf.subarray(off, off + len)).toString('hex');
    const o = proc(bp, buf, off, len, new Uint8Array(0));
    expect(o).toBe(off);
    expect(Buffer.from(buf.subarray(o, o + outLen)).toString('hex')).toBe(before);
    const req = run(tcp6({ src: CLIENT, dst: B6, sport: 40001, dport: 80, flags: 0x02, mss: 1220 }))!;
    expect(mssOf(req)).toBe(1220);
    expect(ev('mss_clamped')).toBe(0);
  });

  it('without returnPath, packets from S are not the back\'s: dropped as not_service', () => {
    bp = new BackProcessor(role({ returnPath: false, stamp: false }), counters);
    expect(run(tcp6({ src: S6, dst: CLIENT, sport: 80, dport: 41000 }))).toBeNull();
    expect(counters[dropIndex('not_service')]).toBe(1);
  });

  it('returnPath without stamping forwards return packets as they are, and leaves MSS alone', () => {
    bp = new BackProcessor(role({ stamp: false }), counters);
    const [buf, off, len] = tcp6({ src: S6, dst: CLIENT, sport: 80, dport: 41000, payload: 20 });
    const ret = run([buf, off, len])!;
    expect([ret.off, ret.len, ret.info.lbspStatus]).toEqual([off, len, 0]);
    const req = run(tcp6({ src: CLIENT, dst: B6, sport: 40001, dport: 80, flags: 0x02, mss: 1460 }))!;
    expect(mssOf(req)).toBe(1460);
  });

  it('packets from elsewhere that are not for the back are still dropped', () => {
    expect(run(tcp6({ src: CLIENT, dst: '2001:db8:c2::99', sport: 1, dport: 2 }))).toBeNull();
    expect(counters[dropIndex('not_service')]).toBe(1);
  });
});

describe('ClientSegments', () => {
  it('records per flow and finds it from the return direction only', () => {
    const cs = new ClientSegments(64, 1);
    const seg = words(C_SEG), out = new Uint32Array(4);
    cs.record(6, words(PROXY), 40000, words(S6), 443, seg);
    expect(cs.find(6, words(S6), 443, words(PROXY), 40000, out)).toBe(true);
    expect(hex(out)).toBe(hex(seg));
    expect(cs.find(6, words(S6), 443, words(PROXY), 40001, out)).toBe(false);
    expect(cs.find(17, words(S6), 443, words(PROXY), 40000, out)).toBe(false);
    expect(cs.find(6, words(S6), 80, words(PROXY), 40000, out)).toBe(false);
  });

  it('is bounded: a newer flow replaces an older one in its slot', () => {
    const cs = new ClientSegments(1, 2);
    const out = new Uint32Array(4);
    cs.record(6, words(PROXY), 1, words(S6), 80, words('2001:db8:cc::1'));
    cs.record(6, words(PROXY), 2, words(S6), 80, words('2001:db8:cc::2'));
    expect(cs.find(6, words(S6), 80, words(PROXY), 1, out)).toBe(false);
    expect(cs.find(6, words(S6), 80, words(PROXY), 2, out)).toBe(true);
    expect(hex(out)).toBe(hex(words('2001:db8:cc::2')));
  });
});

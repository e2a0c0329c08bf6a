// lbsp.stamp: false | true | always on the back (SPEC 4): `true` answers the option only for
// flows whose client sent it (echo), `always` stamps every IPv6 reply, neither under AH.
import { describe, it, expect } from 'vitest';
import { BackProcessor } from '../../back/back-processor.js';
import { backRoleFromConfig, STAMP_OVERHEAD, type BackRole } from '../../back/back-role.js';
import { backConfigFromValue } from '../../back/back-config.js';
import { PacketInfo } from '../../shared/packet/packet-info.js';
import { parsePacket } from '../../shared/packet/parse.js';
import { buildLbspHeader, readLbspClient, readLbspServer } from '../../shared/packet/lbsp.js';
import { writeL4Checksum } from '../../shared/packet/checksum.js';
import { eventIndex, newCounterBlock } from '../../shared/metrics/counter-layout.js';
import { newTxQueue } from '../helpers/tx-queue.js';
import { words } from '../vectors/load.js';

const S6 = '2001:db8:5::80', B6 = '2001:db8:b::1', CLIENT = '2001:db8:c1::10', OTHER = '2001:db8:c1::20';
const C_SEG = '2001:db8:cc::1', SERVER_ID = '2001:db8:5::1';
const tx = newTxQueue(0);
const w = (a: string) => Array.from(words(a));

function role(always: boolean, stamp = true): BackRole {
  return {
    lbspType: 0x1e,
    own: [{ family: 6, b: w(B6), s: w(S6), mode: 2 }],
    services: [{ family: 6, words: w(S6) }],
    allowedFronts: [{ family: 6, words: w(S6), len: 128 }],
    returnPath: true, stamp, stampAlways: always, serverId: w(SERVER_ID), mssClamp: 1500 - STAMP_OVERHEAD, mtu: 1500,
  };
}

/** IPv6 TCP, optionally with an LBSP header (client segment `seg`) or an AH header before TCP. */
function tcp6(src: string, dst: string, sport: number, dport: number, o: { seg?: string; ah?: boolean } = {}): [Uint8Array, number, number] {
  const buf = new Uint8Array(128 + 200);
  const off = 128;
  let q = off + 40;
  let first = 6;
  if (o.seg !== undefined) { buildLbspHeader(buf, q, 6, 0x1e, words(o.seg), words('::')); q += 40; first = 60; }
  if (o.ah) { buf.set([6, 4, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], q); q += 24; first = 51; }
  const t = q;
  buf[t] = sport >> 8; buf[t + 1] = sport & 0xff; buf[t + 2] = dport >> 8; buf[t + 3] = dport & 0xff;
  buf[t + 12] = 5 << 4; buf[t + 13] = 0x18; buf[t + 14] = 0xff; buf[t + 15] = 0xff;
  q += 20 + 8;
  const pl = q - off - 40;
  buf[off] = 0x60; buf[off + 4] = pl >> 8; buf[off + 5] = pl & 0xff; buf[off + 6] = first; buf[off + 7] = 64;
  buf.set(new Uint8Array(new Uint32Array(words(src)).map((x) => ((x & 0xff) << 24) | ((x >>> 8 & 0xff) << 16) | ((x >>> 16 & 0xff) << 8) | (x >>> 24)).buffer), off + 8);
  buf.set(new Uint8Array(new Uint32Array(words(dst)).map((x) => ((x & 0xff) << 24) | ((x >>> 8 & 0xff) << 16) | ((x >>> 16 & 0xff) << 8) | (x >>> 24)).buffer), off + 24);
  const info = new PacketInfo();
  expect(parsePacket(buf, off, q - off, info, 0x1e)).toBe(0);
  writeL4Checksum(buf, off, info);
  return [buf, off, q - off];
}

function through(bp: BackProcessor, p: [Uint8Array, number, number]): PacketInfo & { at: number; buf: Uint8Array } {
  tx.reset();
  expect(bp.process(p[0], p[1], p[2], new Uint8Array(0), 0, tx)).toBeGreaterThanOrEqual(0);
  expect(tx.count).toBe(1);
  const o = tx.offs[0]!;
  const info = new PacketInfo() as PacketInfo & { at: number; buf: Uint8Array };
  expect(parsePacket(p[0], o, tx.lens[0]!, info, 0x1e)).toBe(0);
  info.at = o; info.buf = p[0];
  return info;
}

const hex = (x: Uint32Array) => Array.from(x).join(',');

describe('back lbsp.stamp modes', () => {
  it('true (echo): a client that sent the option gets every reply stamped with its segment; one that did not gets none', () => {
    const counters = newCounterBlock();
    const bp = new BackProcessor(role(false), counters);
    through(bp, tcp6(CLIENT, B6, 40000, 443, { seg: C_SEG }));
    through(bp, tcp6(OTHER, B6, 40001, 443));
    for (let i = 0; i < 3; i++) {
      const r = through(bp, tcp6(S6, CLIENT, 443, 40000));
      expect(r.lbspStatus).toBe(1);
      const c = new Uint32Array(4), s = new Uint32Array(4);
      readLbspClient(r.buf, r.at, r, c); readLbspServer(r.buf, r.at, r, s);
      expect(hex(c)).toBe(hex(words(C_SEG)));
      expect(hex(s)).toBe(hex(words(SERVER_ID)));
      const plain = through(bp, tcp6(S6, OTHER, 443, 40001));
      expect(plain.destOptsOff).toBe(-1); // no Destination Options header at all
      expect(plain.totalLen).toBe(68); // 40 + TCP 20 + 8 bytes: nothing inserted
    }
    expect(counters[eventIndex('lbsp_stamped')]).toBe(3);
    expect(counters[eventIndex('lbsp_stamp_skipped')]).toBe(0);
  });

  it('true (echo): an option with an all-zero client segment is answered too (zero kept)', () => {
    const bp = new BackProcessor(role(false), newCounterBlock());
    through(bp, tcp6(CLIENT, B6, 40002, 443, { seg: '::' }));
    const r = through(bp, tcp6(S6, CLIENT, 443, 40002));
    expect(r.lbspStatus).toBe(1);
    const c = new Uint32Array(4);
    readLbspClient(r.buf, r.at, r, c);
    expect(hex(c)).toBe('0,0,0,0');
  });

  it('always: replies to both clients are stamped (the one without the option gets a zero client segment)', () => {
    const counters = newCounterBlock();
    const bp = new BackProcessor(role(true), counters);
    through(bp, tcp6(CLIENT, B6, 40000, 443, { seg: C_SEG }));
    const a = through(bp, tcp6(S6, CLIENT, 443, 40000));
    const b = through(bp, tcp6(S6, OTHER, 443, 40001));
    expect([a.lbspStatus, b.lbspStatus]).toEqual([1, 1]);
    const c = new Uint32Array(4);
    readLbspClient(b.buf, b.at, b, c);
    expect(hex(c)).toBe('0,0,0,0');
    expect(counters[eventIndex('lbsp_stamped')]).toBe(2);
  });

  it('never under AH, in either mode: forwarded as it is and counted as skipped', () => {
    for (const always of [false, true]) {
      const counters = newCounterBlock();
      const bp = new BackProcessor(role(always), counters);
      through(bp, tcp6(CLIENT, B6, 40000, 443, { seg: C_SEG }));
      const [buf, off, len] = tcp6(S6, CLIENT, 443, 40000, { ah: true });
      const before = buf.slice(off, off + len);
      const r = through(bp, [buf, off, len]);
      expect(r.at).toBe(off);
      expect(buf.slice(off, off + len)).toEqual(before);
      expect(counters[eventIndex('lbsp_stamp_skipped')], `always=${always}`).toBe(1);
      expect(counters[eventIndex('lbsp_stamped')]).toBe(0);
    }
  });

  it('config: false | true | always (true is echo), env strings, anything else rejected', () => {
    const base = { addresses: [{ address: B6, service: S6 }], returnPath: { interface: 'srv0' } };
    const mode = (stamp: unknown) => {
      const r = backConfigFromValue({ ...base, lbsp: { stamp } }, 'back.yaml');
      if (!r.config) return r.errors.map((e) => `${e.entry}: ${e.reason}`).join('; ');
      const ro = backRoleFromConfig(r.config);
      return `${ro.stamp ? 'stamp' : 'off'}${ro.stampAlways ? ' always' : ''}`;
    };
    expect(mode(false)).toBe('off');
    expect(mode(true)).toBe('stamp');
    expect(mode('always')).toBe('stamp always');
    expect(mode('sometimes')).toMatch(/^lbsp\.stamp: .*must be false, true or always/);
    const old = process.env.MSLB_LBSP_STAMP;
    try {
      process.env.MSLB_LBSP_STAMP = 'always';
      expect(mode(undefined)).toBe('stamp always');
      process.env.MSLB_LBSP_STAMP = 'true';
      expect(mode(undefined)).toBe('stamp');
    } finally {
      if (old === undefined) delete process.env.MSLB_LBSP_STAMP; else process.env.MSLB_LBSP_STAMP = old;
    }
  });
});

import { describe, it, expect } from 'vitest';
import { PacketInfo } from '../../shared/packet/packet-info.js';
import { parsePacket } from '../../shared/packet/parse.js';
import { LBSP_DEFAULT_TYPE } from '../../shared/packet/constants.js';
import { insertOrFillServerSegment, LbspError, readLbspClient, readLbspServer, isV4Mapped, isZeroWords, buildLbspHeader } from '../../shared/packet/lbsp.js';
import { clampMss } from '../../shared/packet/tcp-mss.js';
import { computeL4Checksum } from '../../shared/packet/checksum.js';
import { loadVectors, slab, hexOf, words } from '../vectors/load.js';

interface StampVector { desc: string; input: string; server: string; client: string | null; output?: string; error?: keyof typeof LbspError; mtu?: number; lbspOff?: number }
interface MssVector { desc: string; input: string; maxMss: number; result: number; output: string }

const sv = loadVectors<StampVector[]>('lbsp.json');
const merge = loadVectors<StampVector[]>('lbsp-merge.json');
const mv = loadVectors<MssVector[]>('mss.json');

/** Stamp the vector's input in a poisoned slab and judge the result against scapy's bytes. */
function stampCase(v: StampVector): void {
  const [buf, off, len] = slab(v.input);
  const info = new PacketInfo();
  expect(parsePacket(buf, off, len, info, LBSP_DEFAULT_TYPE)).toBe(0);
  const before = hexOf(buf, 0, buf.length);
  const room = v.mtu === undefined ? undefined : v.mtu - len;
  const r = insertOrFillServerSegment(buf, off, len, info, LBSP_DEFAULT_TYPE, words(v.server), v.client ? words(v.client) : null, room);
  if (v.error) {
    expect(r).toBe(LbspError[v.error]);
    expect(hexOf(buf, 0, buf.length)).toBe(before); // not a byte of the slot changed
    return;
  }
  expect(r).toBeGreaterThanOrEqual(0);
  const nl = info.totalLen;
  expect(nl - len).toBe(off - r); // grown at the front only: the upper layer did not move
  expect(hexOf(buf, r, nl)).toBe(v.output);
  // nothing outside [r, old end) was written (the slab is poisoned 0xa5 around the packet)
  expect(hexOf(buf, 0, r)).toBe(before.slice(0, 2 * r));
  expect(hexOf(buf, off + len, buf.length - off - len)).toBe(before.slice(2 * (off + len)));
  // info was updated to describe the new packet exactly as a fresh parse does
  const again = new PacketInfo();
  expect(parsePacket(buf, r, nl, again, LBSP_DEFAULT_TYPE)).toBe(0);
  for (const k of ['l4Off', 'l4Len', 'hdrLen', 'totalLen', 'destOptsOff', 'destOptsLen', 'lbspOff', 'lbspStatus', 'protoFieldOff', 'proto', 'extHeaders'] as const) {
    expect(info[k], k).toBe(again[k]);
  }
  if (v.lbspOff !== undefined) expect(again.lbspOff).toBe(v.lbspOff); // where scapy found the option's data
  const s = new Uint32Array(4);
  expect(readLbspServer(buf, r, again, s)).toBe(true);
  expect(Array.from(s)).toEqual(Array.from(words(v.server)));
  if (again.l4Off >= 0 && again.proto !== 59) expect(computeL4Checksum(buf, r, again)).toBe((buf[r + again.l4Off + (again.proto === 6 ? 16 : again.proto === 17 ? 6 : 2)] << 8) | buf[r + again.l4Off + (again.proto === 6 ? 16 : again.proto === 17 ? 6 : 2) + 1]);
}

describe('LBSP stamping (insert or fill) against scapy', () => {
  it.each(sv.map((v) => [v.desc, v] as const))('%s', (_d, v) => {
    stampCase(v);
  });

  it('no headroom is refused', () => {
    const v = sv.find((x) => x.desc.startsWith('insert'))!;
    const b = Buffer.from(v.input, 'hex');
    const buf = new Uint8Array(b.length);
    buf.set(b);
    const info = new PacketInfo();
    parsePacket(buf, 0, b.length, info, LBSP_DEFAULT_TYPE);
    expect(insertOrFillServerSegment(buf, 0, b.length, info, LBSP_DEFAULT_TYPE, words('2001:db8::1'), null)).toBe(LbspError.NO_HEADROOM);
  });
});

describe('LBSP merged into a server\'s own final Destination Options header, against scapy', () => {
  it('covers every shape the vectors promise', () => {
    const d = merge.map((v) => v.desc).join('\n');
    for (const want of ['PadN-only', 'unknown option', '8-aligned', 'HBH +', 'Routing', 'exactly tun.mtu', 'one octet over']) expect(d).toContain(want);
  });

  it.each(merge.map((v) => [v.desc, v] as const))('%s', (_d, v) => {
    stampCase(v);
  });

  it.each(merge.filter((v) => v.output).map((v) => [v.desc, v] as const))('the front reads the merged option back: %s', (_d, v) => {
    const [buf, off, len] = slab(v.output!);
    const info = new PacketInfo();
    expect(parsePacket(buf, off, len, info, LBSP_DEFAULT_TYPE)).toBe(0);
    expect([info.lbspStatus, info.lbspOff]).toEqual([1, v.lbspOff]);
    const c = new Uint32Array(4), s = new Uint32Array(4);
    expect(readLbspClient(buf, off, info, c)).toBe(true);
    expect(readLbspServer(buf, off, info, s)).toBe(true);
    expect(Array.from(c)).toEqual(Array.from(words(v.client ?? '::')));
    expect(Array.from(s)).toEqual(Array.from(words(v.server)));
    // stamping it again only fills the server segment in place (no second option, no growth)
    expect(insertOrFillServerSegment(buf, off, len, info, LBSP_DEFAULT_TYPE, words('2001:db8:b::9'), null, 0)).toBe(off);
    expect(info.totalLen).toBe(len);
    expect(readLbspServer(buf, off, info, s)).toBe(true);
    expect(Array.from(s)).toEqual(Array.from(words('2001:db8:b::9')));
  });

  it('no headroom for the growth is refused, the packet untouched', () => {
    const v = merge.find((x) => x.desc.startsWith('merge: PadN-only'))!;
    const b = Buffer.from(v.input, 'hex');
    for (const head of [0, 31]) {
      const buf = new Uint8Array(head + b.length);
      buf.set(b, head);
      const info = new PacketInfo();
      expect(parsePacket(buf, head, b.length, info, LBSP_DEFAULT_TYPE)).toBe(0);
      expect(insertOrFillServerSegment(buf, head, b.length, info, LBSP_DEFAULT_TYPE, words('2001:db8::1'), null)).toBe(LbspError.NO_HEADROOM);
      expect(Buffer.from(buf.subarray(head)).equals(b)).toBe(true);
    }
  });
});

describe('LBSP segment helpers', () => {
  it('reads the client and server segments as words and detects IPv4-mapped clients', () => {
    const buf = new Uint8Array(128 + 40 + 40 + 8);
    const off = 128;
    buf[off] = 0x60; buf[off + 5] = 48; buf[off + 6] = 60; buf[off + 7] = 64;
    const client = words('::ffff:0:0');
    client[3] = 0xcb00710a; // ::ffff:203.0.113.10
    buildLbspHeader(buf, off + 40, 17, LBSP_DEFAULT_TYPE, client, null);
    buf[off + 80 + 5] = 8;
    const info = new PacketInfo();
    expect(parsePacket(buf, off, 88, info, LBSP_DEFAULT_TYPE)).toBe(0);
    expect(info.lbspStatus).toBe(1);
    expect(info.lbspOff).toBe(48);
    const c = new Uint32Array(4);
    const s = new Uint32Array(4);
    expect(readLbspClient(buf, off, info, c)).toBe(true);
    expect(readLbspServer(buf, off, info, s)).toBe(true);
    expect(isV4Mapped(c)).toBe(true);
    expect(c[3]).toBe(0xcb00710a);
    expect(isZeroWords(s)).toBe(true);
    expect(isV4Mapped(words('2001:db8:c1::10'))).toBe(false);
    expect(hexOf(buf, off + 40, 8)).toBe('110401020000' + '1e20');
  });
});

describe('clampMss against scapy', () => {
  it.each(mv.map((v) => [v.desc, v] as const))('%s', (_d, v) => {
    const [buf, off, len] = slab(v.input);
    const info = new PacketInfo();
    expect(parsePacket(buf, off, len, info, -1)).toBe(0);
    expect(clampMss(buf, off, info, v.maxMss, false)).toBe(v.result);
    expect(hexOf(buf, off, len)).toBe(v.output);
  });
});

// Checks on what parsePacket reported, shared by the fuzz targets.
import { PacketInfo } from '../../../shared/packet/packet-info.js';
import { ParseError } from '../../../shared/packet/parse.js';
import { Proto, LBSP_DATA_LEN, MAX_EXT_HEADERS } from '../../../shared/packet/constants.js';
import { fail } from './slab.js';

const CODES = new Set<number>(Object.values(ParseError));

/** Field-by-field equality of two PacketInfo (the two-poison determinism check). */
export function sameInfo(a: PacketInfo, b: PacketInfo): string | null {
  for (const k of Object.keys(a) as (keyof PacketInfo)[]) {
    const x = a[k];
    const y = b[k];
    if (x instanceof Uint32Array && y instanceof Uint32Array) {
      for (let i = 0; i < 4; i++) if (x[i] !== y[i]) return `${k}[${i}]`;
    } else if (typeof x !== 'function' && x !== y) return k;
  }
  return null;
}

/**
 * What must hold of a parse of buf[off, off+len): a known verdict; on OK, every offset the
 * processors use lies inside the packet and agrees with the bytes.
 */
export function checkParse(verdict: number, info: PacketInfo, buf: Uint8Array, off: number, len: number, lbspType: number): void {
  if (!CODES.has(verdict)) fail(`parsePacket returned unknown verdict ${verdict}`);
  if (verdict !== ParseError.OK) return;
  const v = info.version;
  if (v !== 4 && v !== 6) fail(`OK with version ${v}`);
  if (v !== buf[off] >> 4) fail(`version ${v} but the first nibble is ${buf[off] >> 4}`);
  const t = info.totalLen;
  if (t > len || t < (v === 4 ? 20 : 40)) fail(`totalLen ${t} outside [header, ${len}]`);
  if (info.hdrLen < (v === 4 ? 20 : 40) || info.hdrLen > t) fail(`hdrLen ${info.hdrLen} outside [header, totalLen ${t}]`);
  if (info.protoFieldOff < 0 || info.protoFieldOff >= info.hdrLen) fail(`protoFieldOff ${info.protoFieldOff} outside the headers (${info.hdrLen})`);
  if (v === 6 && buf[off + info.protoFieldOff] !== info.proto) fail(`proto ${info.proto} but the byte at protoFieldOff is ${buf[off + info.protoFieldOff]}`);
  if (v === 4 && (info.protoFieldOff !== 9 || buf[off + 9] !== info.proto)) fail('IPv4 proto field');
  if (info.l4Off >= 0) {
    if (info.l4Off !== info.hdrLen) fail(`l4Off ${info.l4Off} != hdrLen ${info.hdrLen}`);
    if (info.l4Off + info.l4Len !== t) fail(`l4Off ${info.l4Off} + l4Len ${info.l4Len} != totalLen ${t}`);
    if (info.fragOffset !== 0) fail('upper-layer header reported for a non-first fragment');
    if (info.proto === Proto.TCP && !info.moreFragments && info.l4Len < 20) fail(`complete TCP segment of ${info.l4Len} bytes accepted`);
    if (info.proto === Proto.UDP && !info.moreFragments && info.l4Len < 8) fail(`complete UDP datagram of ${info.l4Len} bytes accepted`);
  } else if (info.l4Len !== 0) fail(`l4Len ${info.l4Len} without l4Off`);
  if (info.destOptsOff >= 0) {
    if (v !== 6) fail('destination options on IPv4');
    if (info.destOptsOff < 40 || info.destOptsOff + info.destOptsLen > info.hdrLen) fail(`destOpts [${info.destOptsOff}, +${info.destOptsLen}) outside the headers`);
    if (info.destOptsOff + info.destOptsLen !== info.hdrLen) fail('destination options header reported that does not precede the upper layer');
  }
  if (info.lbspStatus !== 0 && info.lbspStatus !== 1 && info.lbspStatus !== 2) fail(`lbspStatus ${info.lbspStatus}`);
  if (lbspType < 0 && info.lbspStatus !== 0) fail('LBSP reported with LBSP detection off');
  if (info.lbspStatus === 1) {
    if (info.destOptsOff < 0) fail('LBSP outside a destination options header');
    const o = info.lbspOff;
    if (o < info.destOptsOff + 4 || o + LBSP_DATA_LEN > info.destOptsOff + info.destOptsLen) fail(`LBSP data [${o}, +32) outside its header`);
    if (buf[off + o - 2] !== lbspType || buf[off + o - 1] !== LBSP_DATA_LEN) fail('LBSP offset does not point after an option of the LBSP type and length 32');
  } else if (info.lbspOff !== -1) fail(`lbspOff ${info.lbspOff} with status ${info.lbspStatus}`);
  if (info.fragOffset < 0 || info.fragOffset > 65535) fail(`fragOffset ${info.fragOffset}`);
  if (v === 4 && (info.src[1] | info.src[2] | info.src[3] | info.dst[1] | info.dst[2] | info.dst[3]) !== 0) fail('IPv4 address words 1..3 not zero');
}

/**
 * An independent, plain IPv6 extension-header walk (RFC 8200 lengths only, no option checks):
 * where parsePacket accepted a packet, it must stop at the same header with the same protocol.
 */
export function referenceWalk6(buf: Uint8Array, off: number, total: number): { proto: number; hdrLen: number; headers: number } | null {
  let nh = buf[off + 6];
  let p = 40;
  let headers = 0;
  for (;;) {
    if (nh === Proto.HOPOPTS || nh === Proto.ROUTING || nh === Proto.DSTOPTS) {
      if (p + 2 > total) return null;
      const l = 8 * (buf[off + p + 1] + 1);
      if (p + l > total) return null;
      headers++;
      nh = buf[off + p];
      p += l;
    } else if (nh === Proto.AH) {
      if (p + 2 > total) return null;
      const l = 4 * (buf[off + p + 1] + 2);
      if (p + l > total) return null;
      headers++;
      nh = buf[off + p];
      p += l;
    } else if (nh === Proto.FRAGMENT) {
      if (p + 8 > total) return null;
      headers++;
      const nonFirst = ((buf[off + p + 2] << 8) | buf[off + p + 3]) & 0xfff8;
      nh = buf[off + p];
      p += 8;
      if (nonFirst !== 0) break;
    } else break;
    if (headers > MAX_EXT_HEADERS) return null;
  }
  return { proto: nh, hdrLen: p, headers };
}

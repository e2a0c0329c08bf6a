import { PacketInfo } from './packet-info.js';
import { Proto } from './constants.js';
import { fold, pseudoHeaderSum, sum16, writeIpv4HeaderChecksum } from './checksum.js';
import { get32, put32 } from './bytes.js';

/** Hop limit / TTL of the ICMP errors we originate. */
export const ICMP_ERROR_HOP_LIMIT = 64;
/** Largest ICMPv6 error (RFC 4443 2.4(c): must not exceed the minimum IPv6 MTU). */
export const ICMP6_ERROR_MAX = 1280;
/** Largest ICMPv4 error (RFC 1812 4.3.2.3: at most 576 bytes). */
export const ICMP4_ERROR_MAX = 576;

function isV4Special(a: number): boolean {
  // unspecified, multicast 224/4 (and reserved 240/4), limited broadcast
  return a === 0 || a >>> 28 >= 0xe;
}

function isV6Special(w: Uint32Array): boolean {
  return (w[0] | w[1] | w[2] | w[3]) === 0 || w[0] >>> 24 === 0xff;
}

/**
 * RFC 1122 3.2.2 / RFC 4443 2.4(e): false when no ICMP error may be sent about this packet —
 * it is itself an ICMP error (or its type is unknown because the header is not here), a non-first
 * fragment, or its source or destination is unspecified/multicast/broadcast.
 */
export function mayGenerateIcmpError(info: PacketInfo, buf: Uint8Array, off: number): boolean {
  void buf;
  void off;
  if (info.fragOffset !== 0) return false;
  if (info.version === 4) {
    if (isV4Special(info.src[0]) || isV4Special(info.dst[0])) return false;
    if (info.proto === Proto.ICMP) {
      const t = info.icmpType;
      // errors: 3 unreachable, 4 source quench, 5 redirect, 11 time exceeded, 12 parameter problem
      if (t < 0 || t === 3 || t === 4 || t === 5 || t === 11 || t === 12) return false;
    }
    return true;
  }
  if (isV6Special(info.src) || isV6Special(info.dst)) return false;
  if (info.proto === Proto.ICMPV6 && info.icmpType < 128) return false; // errors are types 0-127
  return true;
}

function copyBytes(out: Uint8Array, to: number, buf: Uint8Array, from: number, n: number): void {
  if (out === buf) {
    out.copyWithin(to, from, from + n);
    return;
  }
  for (let i = 0; i < n; i++) out[to + i] = buf[from + i];
}

/**
 * The ICMP / ICMPv6 error message at t: type, code, a zero checksum (summed over later), the
 * type's 32-bit parameter (MTU, pointer or unused), then the first q bytes of the offending packet.
 */
function writeErrorBody(out: Uint8Array, t: number, type: number, code: number, param: number, buf: Uint8Array, off: number, q: number): void {
  out[t] = type;
  out[t + 1] = code;
  out[t + 2] = 0;
  out[t + 3] = 0;
  put32(out, t + 4, param);
  copyBytes(out, t + 8, buf, off, q);
}

/** Store the one's-complement of a folded sum at p. */
function writeChecksum(out: Uint8Array, p: number, sum: number): void {
  const s = ~fold(sum) & 0xffff;
  out[p] = s >> 8;
  out[p + 1] = s & 0xff;
}

function build6(out: Uint8Array, o: number, buf: Uint8Array, off: number, info: PacketInfo, src: Uint32Array, type: number, code: number, param: number): number {
  let q = info.totalLen;
  if (q > ICMP6_ERROR_MAX - 48) q = ICMP6_ERROR_MAX - 48;
  const pl = 8 + q;
  put32(out, o, 0x60000000);
  out[o + 4] = pl >> 8;
  out[o + 5] = pl & 0xff;
  out[o + 6] = Proto.ICMPV6;
  out[o + 7] = ICMP_ERROR_HOP_LIMIT;
  for (let i = 0; i < 4; i++) {
    put32(out, o + 8 + 4 * i, src[i]);
    put32(out, o + 24 + 4 * i, info.src[i]); // back to the offender's source
  }
  const t = o + 40;
  writeErrorBody(out, t, type, code, param, buf, off, q);
  writeChecksum(out, t + 2, sum16(out, t, t + pl, 0) + pseudoHeaderSum(src, info.src, 4, Proto.ICMPV6, pl));
  return 40 + pl;
}

function build4(out: Uint8Array, o: number, buf: Uint8Array, off: number, info: PacketInfo, src: Uint32Array, type: number, code: number, param: number, ipId: number): number {
  let q = info.totalLen;
  if (q > ICMP4_ERROR_MAX - 28) q = ICMP4_ERROR_MAX - 28;
  const total = 28 + q;
  out[o] = 0x45;
  out[o + 1] = 0xc0; // precedence internetwork control, as Linux sends its ICMP errors
  out[o + 2] = total >> 8;
  out[o + 3] = total & 0xff;
  out[o + 4] = (ipId >> 8) & 0xff;
  out[o + 5] = ipId & 0xff;
  out[o + 6] = 0;
  out[o + 7] = 0;
  out[o + 8] = ICMP_ERROR_HOP_LIMIT;
  out[o + 9] = Proto.ICMP;
  out[o + 10] = 0;
  out[o + 11] = 0;
  put32(out, o + 12, src[0]);
  put32(out, o + 16, info.src[0]);
  writeIpv4HeaderChecksum(out, o);
  const t = o + 20;
  writeErrorBody(out, t, type, code, param, buf, off, q);
  writeChecksum(out, t + 2, sum16(out, t, t + 8 + q, 0));
  return total;
}

/**
 * ICMPv6 Packet Too Big (type 2) about the parsed packet at buf[off] into out[outOff]: source
 * srcWords, destination the offender's source, MTU max(mtu, 1280), quoting as much of the offender
 * as fits in 1280 bytes. Returns the length written. out may be buf only if the regions do not overlap.
 */
export function buildPacketTooBig6(out: Uint8Array, outOff: number, buf: Uint8Array, off: number, info: PacketInfo, srcWords: Uint32Array, mtu: number): number {
  return build6(out, outOff, buf, off, info, srcWords, 2, 0, mtu < 1280 ? 1280 : mtu);
}

/** ICMPv6 Time Exceeded, hop limit exceeded in transit (3/0). See buildPacketTooBig6. */
export function buildTimeExceeded6(out: Uint8Array, outOff: number, buf: Uint8Array, off: number, info: PacketInfo, srcWords: Uint32Array): number {
  return build6(out, outOff, buf, off, info, srcWords, 3, 0, 0);
}

/**
 * ICMPv4 Destination Unreachable, Fragmentation Needed and DF set (3/4) with the next-hop MTU
 * (RFC 1191), quoting as much as fits in 576 bytes. ipId: the IPv4 ID of the error packet.
 */
export function buildFragNeeded4(out: Uint8Array, outOff: number, buf: Uint8Array, off: number, info: PacketInfo, srcWords: Uint32Array, mtu: number, ipId: number): number {
  return build4(out, outOff, buf, off, info, srcWords, 3, 4, mtu & 0xffff, ipId);
}

/** ICMPv4 Time Exceeded, TTL exceeded in transit (11/0). See buildFragNeeded4. */
export function buildTimeExceeded4(out: Uint8Array, outOff: number, buf: Uint8Array, off: number, info: PacketInfo, srcWords: Uint32Array, ipId: number): number {
  return build4(out, outOff, buf, off, info, srcWords, 11, 0, 0, ipId);
}

/** What parseIcmpError found. Allocate once, reuse. */
export class IcmpErrorInfo {
  type = 0;
  code = 0;
  /** PTB MTU (v6) or next-hop MTU of 3/4 (v4), else 0. */
  mtu = 0;
  /** Quoted packet: offset into the buffer and the bytes present (may be truncated). */
  innerOff = 0;
  innerLen = 0;
  /** From the quoted IP header. */
  innerVersion = 0;
  innerProto = 0;
  readonly innerSrc = new Uint32Array(4);
  readonly innerDst = new Uint32Array(4);
}

/**
 * For an ICMP/ICMPv6 error received (packet parsed into info): locate the quoted packet and read
 * its IP header (version, protocol / first next header, addresses) so the caller can match it
 * against what it sent. Returns true when this is an error quoting at least a full IP header.
 */
export function parseIcmpError(buf: Uint8Array, off: number, info: PacketInfo, out: IcmpErrorInfo): boolean {
  if (info.l4Off < 0 || info.l4Len < 8) return false;
  const t = off + info.l4Off;
  const type = buf[t];
  if (info.version === 4) {
    if (info.proto !== Proto.ICMP || !(type === 3 || type === 11 || type === 12)) return false;
  } else if (info.proto !== Proto.ICMPV6 || type < 1 || type > 4) {
    return false;
  }
  const p = t + 8;
  const n = info.l4Len - 8;
  if (n < 20) return false;
  const v = buf[p] >> 4;
  out.type = type;
  out.code = buf[t + 1];
  out.mtu = 0;
  if (info.version === 6 && type === 2) out.mtu = get32(buf, t + 4);
  if (info.version === 4 && type === 3 && out.code === 4) out.mtu = (buf[t + 6] << 8) | buf[t + 7];
  out.innerOff = p;
  out.innerLen = n;
  out.innerSrc.fill(0);
  out.innerDst.fill(0);
  if (v === 4) {
    out.innerVersion = 4;
    out.innerProto = buf[p + 9];
    out.innerSrc[0] = get32(buf, p + 12);
    out.innerDst[0] = get32(buf, p + 16);
    return true;
  }
  if (v === 6 && n >= 40) {
    out.innerVersion = 6;
    out.innerProto = buf[p + 6];
    for (let i = 0; i < 4; i++) {
      out.innerSrc[i] = get32(buf, p + 8 + 4 * i);
      out.innerDst[i] = get32(buf, p + 24 + 4 * i);
    }
    return true;
  }
  return false;
}

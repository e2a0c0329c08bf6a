import { PacketInfo } from './packet-info.js';
import { Proto } from './constants.js';
import { applyComplete, applyPartial, fold, l4ChecksumFieldOff } from './checksum.js';

function writeAddr(buf: Uint8Array, p: number, w: Uint32Array, words: number, keep: Uint32Array): void {
  for (let i = 0; i < words; i++) {
    const v = w[i];
    buf[p] = v >>> 24;
    buf[p + 1] = (v >>> 16) & 0xff;
    buf[p + 2] = (v >>> 8) & 0xff;
    buf[p + 3] = v & 0xff;
    keep[i] = v;
    p += 4;
  }
}

/**
 * Fix the checksums after an address change whose delta is d: the IPv4 header checksum, and the
 * L4 checksum when the pseudo-header covers the addresses (TCP, UDP, ICMPv6) and the upper-layer
 * header is here (unfragmented or first fragment). partial: the L4 field holds a NEEDS_CSUM
 * pseudo-header sum (P' = fold(P + d), no UDP zero rules).
 */
function fixChecksums(buf: Uint8Array, off: number, info: PacketInfo, d: number, partial: boolean): void {
  if (info.version === 4) {
    const hc = (buf[off + 10] << 8) | buf[off + 11];
    const n = applyComplete(hc, d);
    buf[off + 10] = n >> 8;
    buf[off + 11] = n & 0xff;
  }
  if (info.l4Off < 0) return;
  const proto = info.proto;
  if (proto !== Proto.TCP && proto !== Proto.UDP && !(proto === Proto.ICMPV6 && info.version === 6)) return;
  const p = off + info.l4Off + l4ChecksumFieldOff(proto);
  if (p + 2 > off + info.totalLen) return; // not in this (first) fragment: nothing to fix
  const c = (buf[p] << 8) | buf[p + 1];
  let n: number;
  if (partial) {
    n = applyPartial(c, d);
  } else {
    if (proto === Proto.UDP && c === 0 && info.version === 4) return; // sender disabled the checksum
    n = applyComplete(c, d);
    if (n === 0 && proto === Proto.UDP) n = 0xffff;
  }
  buf[p] = n >> 8;
  buf[p + 1] = n & 0xff;
}

/**
 * Rewrite the destination address of the parsed packet at off to newAddr (1 word IPv4, 4 IPv6),
 * delta = addrDelta(oldDst, newAddr, words) precomputed per mapping. Fixes the IPv4 header checksum
 * and the TCP/UDP/ICMPv6 checksum (first fragment / unfragmented only). Updates info.dst.
 */
export function rewriteDst(buf: Uint8Array, off: number, info: PacketInfo, newAddr: Uint32Array, delta: number, partial: boolean): void {
  if (info.version === 4) writeAddr(buf, off + 16, newAddr, 1, info.dst);
  else writeAddr(buf, off + 24, newAddr, 4, info.dst);
  fixChecksums(buf, off, info, delta, partial);
}

/** Same as rewriteDst for the source address. Updates info.src. */
export function rewriteSrc(buf: Uint8Array, off: number, info: PacketInfo, newAddr: Uint32Array, delta: number, partial: boolean): void {
  if (info.version === 4) writeAddr(buf, off + 12, newAddr, 1, info.src);
  else writeAddr(buf, off + 8, newAddr, 4, info.src);
  fixChecksums(buf, off, info, delta, partial);
}

/**
 * Forwarding decrement of TTL / hop limit. When the value is <= 1 nothing is written and 0 or -1 is
 * returned: the caller drops the packet (and may send Time Exceeded quoting it unmodified).
 * Otherwise writes value-1 (IPv4 header checksum updated incrementally), updates info, returns it.
 */
export function decrementHopLimit(buf: Uint8Array, off: number, info: PacketInfo): number {
  const hp = info.version === 4 ? off + 8 : off + 7;
  const h = buf[hp];
  if (h <= 1) return h - 1;
  buf[hp] = h - 1;
  info.hopLimit = h - 1;
  if (info.version === 4) {
    // word 8..9 is TTL<<8 | protocol; only its high byte changes
    const oldW = (h << 8) | buf[off + 9];
    const d = fold((~oldW & 0xffff) + (oldW - 0x100));
    const hc = (buf[off + 10] << 8) | buf[off + 11];
    const n = applyComplete(hc, d);
    buf[off + 10] = n >> 8;
    buf[off + 11] = n & 0xff;
  }
  return h - 1;
}

import { PacketInfo } from './packet-info.js';
import { Proto } from './constants.js';

/**
 * Ones' complement arithmetic (RFC 1071, RFC 1624). Sums are plain numbers; every helper keeps them
 * below 2^32 so `>>> 16` folding is exact (ranges up to 65535 bytes plus a folded initial value).
 */

/** Unfolded sum of big-endian 16-bit words over buf[start, end) (odd last byte padded with 0), plus initial. */
export function sum16(buf: Uint8Array, start: number, end: number, initial: number): number {
  let s = initial;
  let p = start;
  const even = end - ((end - start) & 1);
  for (; p < even; p += 2) s += (buf[p] << 8) | buf[p + 1];
  if (p < end) s += buf[p] << 8;
  return s;
}

/** Fold a sum to 16 bits (end-around carry). Input must be < 2^32. */
export function fold(s: number): number {
  s = (s & 0xffff) + (s >>> 16);
  s = (s & 0xffff) + (s >>> 16);
  return s;
}

/** Sum of the two 16-bit halves of a 32-bit word. */
function wordSum(w: number): number {
  return (w >>> 16) + (w & 0xffff);
}

/**
 * Checksum delta for an address change, computed once per mapping: fold(Σ~old + Σnew) over
 * `words` 32-bit words (1 for IPv4, 4 for IPv6).
 */
export function addrDelta(oldWords: Uint32Array, newWords: Uint32Array, words: number): number {
  let s = 0;
  for (let i = 0; i < words; i++) {
    const o = oldWords[i];
    s += (~o >>> 16) & 0xffff;
    s += ~o & 0xffff;
    s += wordSum(newWords[i]);
  }
  return fold(s);
}

/** Delta for one 16-bit field changing from oldV to newV: fold(~old + new). */
export function wordDelta(oldV: number, newV: number): number {
  return fold((~oldV & 0xffff) + newV);
}

/** RFC 1624 eqn 3 on a finished checksum: HC' = ~fold(~HC + d). */
export function applyComplete(hc: number, d: number): number {
  return ~fold((~hc & 0xffff) + d) & 0xffff;
}

/** Update an uncomplemented partial sum (virtio NEEDS_CSUM): P' = fold(P + d). */
export function applyPartial(p: number, d: number): number {
  return fold(p + d);
}

/** IPv4 header checksum over buf[off, off+ihl) with the checksum field taken as zero. */
export function ipv4HeaderChecksum(buf: Uint8Array, off: number, ihl: number): number {
  const s = sum16(buf, off, off + ihl, 0) - ((buf[off + 10] << 8) | buf[off + 11]);
  return ~fold(s) & 0xffff;
}

/** Compute and store the IPv4 header checksum of the header at off. */
export function writeIpv4HeaderChecksum(buf: Uint8Array, off: number): void {
  const c = ipv4HeaderChecksum(buf, off, (buf[off] & 15) * 4);
  buf[off + 10] = c >> 8;
  buf[off + 11] = c & 0xff;
}

/** True when the IPv4 header at off (ihl bytes) has a valid checksum. */
export function ipv4HeaderChecksumValid(buf: Uint8Array, off: number, ihl: number): boolean {
  return fold(sum16(buf, off, off + ihl, 0)) === 0xffff;
}

/** Offset of the checksum field inside the upper-layer header, -1 when the protocol has none we handle. */
export function l4ChecksumFieldOff(proto: number): number {
  if (proto === Proto.TCP) return 16;
  if (proto === Proto.UDP) return 6;
  if (proto === Proto.ICMPV6 || proto === Proto.ICMP) return 2;
  return -1;
}

/** True when the L4 checksum covers the IP addresses (pseudo-header): TCP, UDP, ICMPv6. */
export function l4HasPseudoHeader(proto: number): boolean {
  return proto === Proto.TCP || proto === Proto.UDP || proto === Proto.ICMPV6;
}

/** Unfolded pseudo-header sum from address words (1 or 4), protocol and upper-layer length. */
export function pseudoHeaderSum(src: Uint32Array, dst: Uint32Array, words: number, proto: number, l4Len: number): number {
  let s = proto + (l4Len >>> 16) + (l4Len & 0xffff);
  for (let i = 0; i < words; i++) s += wordSum(src[i]) + wordSum(dst[i]);
  return s;
}

/** Folded, uncomplemented pseudo-header sum: what a NEEDS_CSUM packet holds in its L4 field. */
export function partialPseudoSum(info: PacketInfo): number {
  return fold(pseudoHeaderSum(info.src, info.dst, info.version === 4 ? 1 : 4, info.proto, info.l4Len));
}

/**
 * Full L4 checksum of the parsed packet at off (whole upper-layer segment must be present, i.e. an
 * unfragmented packet), as it must be stored: field taken as zero, pseudo-header when the protocol
 * has one, UDP's computed 0 sent as 0xFFFF. Returns -1 when the protocol has no checksum we handle.
 * For tests and for packets we originate; not for the per-packet path.
 */
export function computeL4Checksum(buf: Uint8Array, off: number, info: PacketInfo): number {
  const fo = l4ChecksumFieldOff(info.proto);
  if (fo < 0 || info.l4Off < 0) return -1;
  if (info.proto === Proto.ICMP && info.version !== 4) return -1;
  const start = off + info.l4Off;
  let s = sum16(buf, start, start + info.l4Len, 0) - ((buf[start + fo] << 8) | buf[start + fo + 1]);
  if (l4HasPseudoHeader(info.proto)) s += pseudoHeaderSum(info.src, info.dst, info.version === 4 ? 1 : 4, info.proto, info.l4Len);
  let c = ~fold(s) & 0xffff;
  if (c === 0 && info.proto === Proto.UDP) c = 0xffff;
  return c;
}

/** Compute and store the full L4 checksum (see computeL4Checksum). */
export function writeL4Checksum(buf: Uint8Array, off: number, info: PacketInfo): void {
  const c = computeL4Checksum(buf, off, info);
  if (c < 0) return;
  const p = off + info.l4Off + l4ChecksumFieldOff(info.proto);
  buf[p] = c >> 8;
  buf[p + 1] = c & 0xff;
}

/**
 * Finish a NEEDS_CSUM packet: the field holds the pseudo-header partial sum, so the checksum is
 * ~fold(Σ over the L4 segment, field included) (UDP: 0 becomes 0xFFFF). Writes it and returns it.
 */
export function completePartialChecksum(buf: Uint8Array, off: number, info: PacketInfo): number {
  const fo = l4ChecksumFieldOff(info.proto);
  if (fo < 0 || info.l4Off < 0) return -1;
  const start = off + info.l4Off;
  let c = ~fold(sum16(buf, start, start + info.l4Len, 0)) & 0xffff;
  if (c === 0 && info.proto === Proto.UDP) c = 0xffff;
  buf[start + fo] = c >> 8;
  buf[start + fo + 1] = c & 0xff;
  return c;
}

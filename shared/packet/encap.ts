import { PacketInfo } from './packet-info.js';
import { Proto } from './constants.js';
import { fmix32, mixWords } from './hash32.js';
import { applyComplete, fold, ipv4HeaderChecksumValid, writeIpv4HeaderChecksum } from './checksum.js';
import { put32 } from './bytes.js';

export const OUTER_HDR_LEN4 = 20;
export const OUTER_HDR_LEN6 = 40;

/** innerFlowHash's key words (inner addresses interleaved, ports, protocol and label). */
const FLOW_WORDS = new Uint32Array(10);

/**
 * RFC 6438 outer flow label from the inner flow: inner addresses, protocol, inner flow label, and
 * the ports when the packet carries them and is not a fragment (so every fragment of a datagram
 * gets the same label). 20 bits, never 0.
 */
export function innerFlowHash(info: PacketInfo): number {
  // the words in mixing order, then one call-free mixWords: this runs per wrapped packet, and ten
  // mix32 call sites overran the inlining budget of the header writer that calls it
  const k = FLOW_WORDS;
  const src = info.src, dst = info.dst;
  let n: number;
  if (info.version === 4) {
    k[0] = src[0]!; k[1] = dst[0]!;
    n = 2;
  } else {
    k[0] = src[0]!; k[1] = dst[0]!; k[2] = src[1]!; k[3] = dst[1]!;
    k[4] = src[2]!; k[5] = dst[2]!; k[6] = src[3]!; k[7] = dst[3]!;
    n = 8;
  }
  let ports = 0;
  if (!info.isFragment && info.l4Off >= 0 && (info.proto === Proto.TCP || info.proto === Proto.UDP)) {
    ports = ((info.srcPort << 16) | info.dstPort) >>> 0;
  }
  k[n] = ports;
  k[n + 1] = (info.proto << 20) | info.flowLabel;
  const h = fmix32(mixWords(0x9747b28c, k, n + 2));
  const l = (h ^ (h >>> 20)) & 0xfffff;
  return l === 0 ? 1 : l;
}

/**
 * Wrap the parsed inner packet at off (length info.totalLen; trailing bytes are dropped) in an
 * outer header written into the headroom just before off (caller guarantees 20/40 bytes).
 * Outer IPv4: protocol 4/41, TOS = inner TOS/traffic class (DSCP copied, ECN copied: RFC 6040
 * normal mode), DF copied from inner IPv4 (set for inner IPv6), ID = ipId, header checksum.
 * Outer IPv6: next header 4/41, same traffic class, flow label = innerFlowHash(info).
 * Returns the new offset; the new length is info.totalLen + OUTER_HDR_LEN4/6.
 */
export function encapsulate(
  buf: Uint8Array,
  off: number,
  info: PacketInfo,
  outerVersion: number,
  outerSrc: Uint32Array,
  outerDst: Uint32Array,
  hopLimit: number,
  ipId: number,
): number {
  const o = off - (outerVersion === 4 ? OUTER_HDR_LEN4 : OUTER_HDR_LEN6);
  writeOuterHeader(buf, o, info, outerVersion, info.totalLen, info.version === 4 ? Proto.IPIP : Proto.IPV6, outerSrc, outerDst, hopLimit, ipId);
  return o;
}

/**
 * The outer IP header of a tunnel packet at buf[o] (20/40 bytes), carrying `payloadLen` bytes of
 * next header `nh`, its DSCP/ECN/DF/flow label taken from the inner packet parsed into info as
 * encapsulate() documents. Shared by IP-in-IP and IP-in-UDP (udp-encap.ts) so both look alike.
 */
export function writeOuterHeader(
  buf: Uint8Array,
  o: number,
  info: PacketInfo,
  outerVersion: number,
  payloadLen: number,
  nh: number,
  outerSrc: Uint32Array,
  outerDst: Uint32Array,
  hopLimit: number,
  ipId: number,
): void {
  if (outerVersion === 4) {
    const total = payloadLen + OUTER_HDR_LEN4;
    buf[o] = 0x45;
    buf[o + 1] = info.tclass;
    buf[o + 2] = total >> 8;
    buf[o + 3] = total & 0xff;
    buf[o + 4] = (ipId >> 8) & 0xff;
    buf[o + 5] = ipId & 0xff;
    buf[o + 6] = info.version === 6 || info.df ? 0x40 : 0;
    buf[o + 7] = 0;
    buf[o + 8] = hopLimit;
    buf[o + 9] = nh;
    buf[o + 10] = 0;
    buf[o + 11] = 0;
    put32(buf, o + 12, outerSrc[0]);
    put32(buf, o + 16, outerDst[0]);
    writeIpv4HeaderChecksum(buf, o);
    return;
  }
  put32(buf, o, ((6 << 28) | (info.tclass << 20) | innerFlowHash(info)) >>> 0);
  buf[o + 4] = payloadLen >> 8;
  buf[o + 5] = payloadLen & 0xff;
  buf[o + 6] = nh;
  buf[o + 7] = hopLimit;
  for (let i = 0; i < 4; i++) {
    put32(buf, o + 8 + 4 * i, outerSrc[i]);
    put32(buf, o + 24 + 4 * i, outerDst[i]);
  }
}

/** Where decapsulate found the inner packet. Allocate once, reuse. */
export class DecapResult {
  off = 0;
  len = 0;
  /** Inner IP version (4/6). */
  version = 0;
}

export const DecapVerdict = {
  OK: 0,
  /** Outer protocol is not 4/41, or there is no upper-layer header (fragment, ESP, 59). */
  NOT_TUNNEL: 1,
  /** Inner version does not match the outer protocol, inner lengths do not fit, bad inner IPv4 checksum. */
  MALFORMED: 2,
  /** RFC 6040: Not-ECT inner with CE outer must be dropped. */
  ECN_DROP: 3,
  /** Outer packet is a fragment: reassembly is not done here (RFC 4459), drop. */
  FRAGMENT: 4,
} as const;

/**
 * RFC 6040 section 4.2 decapsulated ECN from inner and outer ECN codepoints (0 Not-ECT, 1 ECT(1),
 * 2 ECT(0), 3 CE). Returns -1 for "drop" (Not-ECT inner, CE outer).
 */
export function decapEcn(inner: number, outer: number): number {
  if (inner === 0) return outer === 3 ? -1 : 0;
  if (outer === 3) return 3;
  if (outer === 1 && inner === 2) return 1; // ECT(0) inner, ECT(1) outer -> ECT(1)
  return inner;
}

/**
 * Validate the tunnel packet parsed into info (outer header at off) and expose the inner packet.
 * Checks: outer protocol 4 <-> inner IPv4, 41 <-> inner IPv6; inner header and lengths fit in the
 * outer payload; inner IPv4 header checksum valid. Applies RFC 6040 decap ECN to the inner header
 * (inner IPv4 checksum fixed). On OK, out.off/out.len is the inner packet (its own total length).
 * Source/destination policy is the caller's.
 */
export function decapsulate(buf: Uint8Array, off: number, info: PacketInfo, out: DecapResult): number {
  if (info.proto !== Proto.IPIP && info.proto !== Proto.IPV6) return DecapVerdict.NOT_TUNNEL;
  if (info.isFragment && (info.moreFragments || info.fragOffset !== 0)) return DecapVerdict.FRAGMENT;
  if (info.l4Off < 0) return DecapVerdict.NOT_TUNNEL;
  return unwrapInner(buf, off + info.l4Off, info.l4Len, info.proto === Proto.IPIP ? 4 : 6, info.tclass & 3, out);
}

/**
 * The inner packet of a tunnel starts at buf[p] with `avail` bytes of outer payload: check it is an
 * IP packet of version `want` (0: either, as GUE variant 1 says by the first nibble) whose header
 * and lengths fit and, for IPv4, whose header checksum is valid; apply RFC 6040 decap ECN against
 * the outer ECN `ecnOut` (inner IPv4 checksum fixed). Returns a DecapVerdict; on OK out is set.
 */
export function unwrapInner(buf: Uint8Array, p: number, avail: number, want: number, ecnOut: number, out: DecapResult): number {
  if (avail < 1) return DecapVerdict.MALFORMED;
  const v = buf[p] >> 4;
  if (want !== 0 && v !== want) return DecapVerdict.MALFORMED;
  let innerLen: number;
  let ecnIn: number;
  if (v === 4) {
    if (avail < 20) return DecapVerdict.MALFORMED;
    const ihl = (buf[p] & 15) * 4;
    innerLen = (buf[p + 2] << 8) | buf[p + 3];
    if (ihl < 20 || innerLen < ihl || innerLen > avail) return DecapVerdict.MALFORMED;
    if (!ipv4HeaderChecksumValid(buf, p, ihl)) return DecapVerdict.MALFORMED;
    ecnIn = buf[p + 1] & 3;
  } else if (v === 6) {
    if (avail < 40) return DecapVerdict.MALFORMED;
    innerLen = 40 + ((buf[p + 4] << 8) | buf[p + 5]);
    if (innerLen > avail) return DecapVerdict.MALFORMED;
    ecnIn = (buf[p + 1] >> 4) & 3;
  } else {
    return DecapVerdict.MALFORMED;
  }
  const ecn = decapEcn(ecnIn, ecnOut);
  if (ecn < 0) return DecapVerdict.ECN_DROP;
  if (ecn !== ecnIn) {
    if (v === 4) {
      const oldW = (buf[p] << 8) | buf[p + 1];
      buf[p + 1] = (buf[p + 1] & 0xfc) | ecn;
      const newW = (buf[p] << 8) | buf[p + 1];
      const hc = (buf[p + 10] << 8) | buf[p + 11];
      const n = applyComplete(hc, fold((~oldW & 0xffff) + newW));
      buf[p + 10] = n >> 8;
      buf[p + 11] = n & 0xff;
    } else {
      buf[p + 1] = (buf[p + 1] & 0xcf) | (ecn << 4);
    }
  }
  out.off = p;
  out.len = innerLen;
  out.version = v;
  return DecapVerdict.OK;
}

// IP-in-UDP tunnels (SPEC 3, `encap.udpPort`): the inner IP packet directly after an 8-byte UDP
// header, which is GUE variant 1 (draft-ietf-intarea-gue: the first nibble of the payload, 4 or 6,
// is the inner version) and what Linux's FOU/GUE receive decapsulates. The outer IP header is the
// one IP-in-IP writes (writeOuterHeader: hop limit, DSCP, ECN, DF, flow label), with protocol 17.
// The source port comes from the inner flow, so ECMP in the fabric and receive-side scaling at the
// back spread tunnels the way they spread the flows inside; the outer UDP checksum is always on
// (IPv6 requires it, RFC 8200 8.1, and receive-side GRO of UDP tunnels needs it).
import { PacketInfo } from './packet-info.js';
import { Proto } from './constants.js';
import { fold, pseudoHeaderSum, sum16 } from './checksum.js';
import { DecapResult, DecapVerdict, innerFlowHash, unwrapInner, writeOuterHeader, OUTER_HDR_LEN4, OUTER_HDR_LEN6 } from './encap.js';

export const UDP_HDR_LEN = 8;
export const UDP_OUTER_LEN4 = OUTER_HDR_LEN4 + UDP_HDR_LEN;
export const UDP_OUTER_LEN6 = OUTER_HDR_LEN6 + UDP_HDR_LEN;

/** Source ports are taken from the IANA dynamic range 49152-65535 (RFC 6335), 14 bits of hash. */
export const UDP_TUNNEL_PORT_BASE = 0xc000;

/**
 * Outer UDP source port for the inner flow parsed into info: the RFC 6438 flow hash (addresses,
 * protocol, ports unless a fragment, flow label) folded into 49152-65535. Every packet of a flow
 * gets the same port; fronts configured alike agree (fixed seed).
 */
export function udpSourcePort(info: PacketInfo): number {
  const h = innerFlowHash(info);
  return UDP_TUNNEL_PORT_BASE | ((h ^ (h >>> 14)) & 0x3fff);
}

/** Bytes an IP-in-UDP outer header adds: 28 (IPv4) or 48 (IPv6). */
export function udpOuterLen(outerVersion: number): number {
  return outerVersion === 4 ? UDP_OUTER_LEN4 : UDP_OUTER_LEN6;
}

/**
 * Wrap the parsed inner packet at off (length info.totalLen) in outer IP + UDP headers written into
 * the headroom before off (caller guarantees 28/48 bytes), destination port `dstPort`. The UDP
 * checksum is computed in full when `partial` is false; with `partial` true the field holds the
 * folded pseudo-header sum (virtio NEEDS_CSUM convention: csum_start = the UDP header, offset 6)
 * for the caller to complete over the UDP header and payload, natively for big packets.
 * Returns the new offset; the new length is info.totalLen + udpOuterLen(outerVersion).
 */
export function encapsulateUdp(
  buf: Uint8Array,
  off: number,
  info: PacketInfo,
  outerVersion: number,
  outerSrc: Uint32Array,
  outerDst: Uint32Array,
  hopLimit: number,
  ipId: number,
  dstPort: number,
  partial: boolean,
): number {
  const ulen = info.totalLen + UDP_HDR_LEN;
  const u = off - UDP_HDR_LEN;
  const sport = udpSourcePort(info);
  buf[u] = sport >> 8;
  buf[u + 1] = sport & 0xff;
  buf[u + 2] = dstPort >> 8;
  buf[u + 3] = dstPort & 0xff;
  buf[u + 4] = ulen >> 8;
  buf[u + 5] = ulen & 0xff;
  const ps = pseudoHeaderSum(outerSrc, outerDst, outerVersion === 4 ? 1 : 4, Proto.UDP, ulen);
  if (partial) {
    const p = fold(ps);
    buf[u + 6] = p >> 8;
    buf[u + 7] = p & 0xff;
  } else {
    buf[u + 6] = 0;
    buf[u + 7] = 0;
    let c = ~fold(sum16(buf, u, u + ulen, fold(ps))) & 0xffff;
    if (c === 0) c = 0xffff; // RFC 768: a computed 0 is sent as all ones (0 means "no checksum")
    buf[u + 6] = c >> 8;
    buf[u + 7] = c & 0xff;
  }
  const o = u - (outerVersion === 4 ? OUTER_HDR_LEN4 : OUTER_HDR_LEN6);
  writeOuterHeader(buf, o, info, outerVersion, ulen, Proto.UDP, outerSrc, outerDst, hopLimit, ipId);
  return o;
}

/**
 * Validate the IP-in-UDP packet parsed into info (outer header at off; the caller matched the
 * destination address and port) and expose the inner packet. Checks, as the Linux UDP receive path
 * would refuse: UDP length at least 8 and within the outer payload; checksum valid (a zero checksum
 * is "none" and accepted over IPv4 only, RFC 768 / RFC 8200 8.1); then GUE variant 1: the payload is
 * an IPv4 or IPv6 packet (first nibble) that fits the UDP payload, IPv4 header checksum valid.
 * Applies RFC 6040 decap ECN as decapsulate() does. MALFORMED for any failure, NOT_TUNNEL when the
 * packet is not UDP with its header present, FRAGMENT for an outer fragment. `checksumVerified`:
 * the caller has checked a non-zero checksum already (natively, for big packets): not summed again.
 */
export function decapsulateUdp(buf: Uint8Array, off: number, info: PacketInfo, out: DecapResult, checksumVerified = false): number {
  if (info.proto !== Proto.UDP) return DecapVerdict.NOT_TUNNEL;
  if (info.isFragment && (info.moreFragments || info.fragOffset !== 0)) return DecapVerdict.FRAGMENT;
  if (info.l4Off < 0) return DecapVerdict.NOT_TUNNEL;
  const u = off + info.l4Off;
  const avail = info.l4Len;
  if (avail < UDP_HDR_LEN) return DecapVerdict.MALFORMED;
  const ulen = (buf[u + 4] << 8) | buf[u + 5];
  if (ulen < UDP_HDR_LEN || ulen > avail) return DecapVerdict.MALFORMED;
  const ck = (buf[u + 6] << 8) | buf[u + 7];
  if (ck === 0) {
    if (info.version !== 4) return DecapVerdict.MALFORMED;
  } else if (!checksumVerified) {
    const ps = pseudoHeaderSum(info.src, info.dst, info.version === 4 ? 1 : 4, Proto.UDP, ulen);
    if (fold(sum16(buf, u, u + ulen, fold(ps))) !== 0xffff) return DecapVerdict.MALFORMED;
  }
  return unwrapInner(buf, u + UDP_HDR_LEN, ulen - UDP_HDR_LEN, 0, info.tclass & 3, out);
}

// The packet quoted by an ICMP / ICMPv6 error (SPEC 2 step 6): which flow it belongs to, read from
// the quoted IP header (IPv6: its extension headers walked) and the first 8 bytes of its upper
// layer. A quote is taken as the server's stack would take it: Linux delivers an error to a socket
// only when the quote holds the IP header, its extension headers and 8 bytes beyond them
// (icmp_socket_deliver, icmpv6_notify), so a quote cut shorter is refused here too — nothing is
// carried to a server only to be dropped there. Never reads past the bytes given.
import { Proto, MAX_EXT_HEADERS } from './constants.js';
import { get32 } from './bytes.js';
import type { PacketInfo } from './packet-info.js';

/** The quote holds an IP header, its chain and 8 bytes of upper layer. */
export const QUOTE_OK = 0;
/** Cut before that (anywhere: inside the IP header, an extension header or the first 8 L4 bytes). */
export const QUOTE_TRUNCATED = 1;
/** Not an IP header of the error's family, IPv4 IHL < 5, Hop-by-Hop not first, chain too long. */
export const QUOTE_INVALID = 2;

/** What readQuote found. Allocate once, reuse. */
export class QuotedFlow {
  version = 0;
  /** Upper-layer protocol after the chain (ESP and 59 included). */
  proto = 0;
  readonly src = new Uint32Array(4);
  readonly dst = new Uint32Array(4);
  /** TCP / UDP ports (0 for other protocols, as the flow table keys them). */
  srcPort = 0;
  dstPort = 0;
  /** A non-first fragment: no upper-layer header, so no flow to look up (the addresses still tell). */
  nonFirst = false;
  /** Offset of the quoted upper-layer header from the quote's start (-1 for a non-first fragment). */
  l4Off = -1;
}

/**
 * True when the parsed packet is an error whose quote mslb steers: ICMPv6 types 1-4 (unreachable,
 * packet too big, time exceeded, parameter problem), ICMPv4 types 3, 11, 12.
 */
export function isSteerableError(info: PacketInfo): boolean {
  const t = info.icmpType;
  if (t < 0) return false;
  if (info.version === 6) return info.proto === Proto.ICMPV6 && t >= 1 && t <= 4;
  return info.proto === Proto.ICMP && (t === 3 || t === 11 || t === 12);
}

/**
 * Read the quoted packet at buf[p, p+n) of an error of family `family` into out. Returns QUOTE_OK,
 * QUOTE_TRUNCATED or QUOTE_INVALID; out is meaningful only on QUOTE_OK.
 */
export function readQuote(buf: Uint8Array, p: number, n: number, family: number, out: QuotedFlow): number {
  out.srcPort = 0;
  out.dstPort = 0;
  out.nonFirst = false;
  out.l4Off = -1;
  if (n < 1) return QUOTE_TRUNCATED;
  const v = buf[p]! >> 4;
  if (v !== family) return QUOTE_INVALID;
  out.version = v;
  const end = p + n;
  let l4: number;
  let proto: number;
  if (v === 4) {
    const ihl = (buf[p]! & 15) * 4;
    if (ihl < 20) return QUOTE_INVALID;
    if (n < 20) return QUOTE_TRUNCATED;
    proto = buf[p + 9]!;
    out.src[0] = get32(buf, p + 12);
    out.dst[0] = get32(buf, p + 16);
    out.src[1] = 0; out.src[2] = 0; out.src[3] = 0;
    out.dst[1] = 0; out.dst[2] = 0; out.dst[3] = 0;
    out.nonFirst = (((buf[p + 6]! & 0x1f) << 8) | buf[p + 7]!) !== 0;
    l4 = p + ihl;
  } else {
    if (n < 40) return QUOTE_TRUNCATED;
    for (let i = 0; i < 4; i++) {
      out.src[i] = get32(buf, p + 8 + 4 * i);
      out.dst[i] = get32(buf, p + 24 + 4 * i);
    }
    proto = buf[p + 6]!;
    let q = p + 40;
    let k = 0;
    for (;;) {
      if (proto === Proto.HOPOPTS || proto === Proto.DSTOPTS || proto === Proto.ROUTING || proto === Proto.AH) {
        if (proto === Proto.HOPOPTS && q !== p + 40) return QUOTE_INVALID;
        if (++k > MAX_EXT_HEADERS) return QUOTE_INVALID;
        if (q + 2 > end) return QUOTE_TRUNCATED;
        const hl = proto === Proto.AH ? (buf[q + 1]! + 2) * 4 : (buf[q + 1]! + 1) * 8;
        if (q + hl > end) return QUOTE_TRUNCATED;
        proto = buf[q]!;
        q += hl;
      } else if (proto === Proto.FRAGMENT) {
        if (++k > MAX_EXT_HEADERS) return QUOTE_INVALID;
        if (q + 8 > end) return QUOTE_TRUNCATED;
        const first = (((buf[q + 2]! << 8) | buf[q + 3]!) & 0xfff8) === 0;
        proto = buf[q]!;
        q += 8;
        if (!first) {
          out.nonFirst = true;
          break;
        }
      } else break;
    }
    l4 = q;
  }
  // the 8 bytes the RFCs ask an error to quote beyond the headers (RFC 792, RFC 4443 2.4(c) quotes more)
  if (l4 + 8 > end) return QUOTE_TRUNCATED;
  out.proto = proto;
  if (out.nonFirst) return QUOTE_OK;
  out.l4Off = l4 - p;
  if (proto === Proto.TCP || proto === Proto.UDP) {
    out.srcPort = (buf[l4]! << 8) | buf[l4 + 1]!;
    out.dstPort = (buf[l4 + 2]! << 8) | buf[l4 + 3]!;
  }
  return QUOTE_OK;
}

import { PacketInfo } from './packet-info.js';
import { Proto, LBSP_DATA_LEN, MAX_EXT_HEADERS, MAX_TLV_OPTIONS } from './constants.js';
import { get32 } from './bytes.js';

/**
 * parsePacket verdicts. Every non-zero code is a drop with reason `malformed` (SPEC section 5);
 * the distinct codes exist for tests and debugging.
 */
export const ParseError = {
  OK: 0,
  /** Generic: IPv4 IHL < 5, total length < IHL, bad TCP data offset. */
  MALFORMED: 1,
  /** Empty packet or version nibble not 4/6. */
  NOT_IP: 2,
  /** A length field (IHL, total/payload length, extension header) runs past the packet. */
  TRUNCATED: 3,
  /** TLV options: past their header, PadN > 5 data bytes or non-zero, > 7 pad octets, > 8 options. */
  BAD_OPTIONS: 4,
  /** More than 16 extension headers. */
  CHAIN_TOO_LONG: 5,
  /** Hop-by-Hop header anywhere but right after the IPv6 header. */
  HBH_NOT_FIRST: 6,
  /** First fragment without the whole chain + upper-layer header (RFC 7112), or IPv4 first
   * fragment too short for the L4 checksum field (RFC 1858). */
  TINY_FRAGMENT: 7,
  /** Unfragmented TCP/UDP/ICMP/ICMPv6 shorter than its header. */
  SHORT_L4: 8,
} as const;

// Minimum upper-layer bytes that must be present (Linux ipv6frag_thdr_truncated / L4 receive).
function minL4(proto: number): number {
  if (proto === Proto.TCP) return 20;
  if (proto === Proto.UDP) return 8;
  if (proto === Proto.ICMP || proto === Proto.ICMPV6) return 8;
  return 0;
}

// Results of validateTlv beyond its verdict, module-level so the call allocates nothing.
let tlvLbspOff = -1;
let tlvLbspStatus = 0;

/**
 * Validate the TLV options of a Hop-by-Hop / Destination Options header at [start, end) the way
 * Linux ip6_parse_tlv does, and note the first option of type lbspType (lbspType < 0: none).
 */
function validateTlv(buf: Uint8Array, start: number, end: number, lbspType: number, pktOff: number): number {
  let p = start + 2;
  let padLen = 0;
  let count = 0;
  tlvLbspOff = -1;
  tlvLbspStatus = 0;
  while (p < end) {
    const t = buf[p];
    if (t === 0) {
      // Pad1
      if (++padLen > 7) return ParseError.BAD_OPTIONS;
      p++;
      continue;
    }
    if (p + 2 > end) return ParseError.BAD_OPTIONS;
    const optLen = buf[p + 1] + 2;
    if (p + optLen > end) return ParseError.BAD_OPTIONS;
    if (t === 1) {
      // PadN: at most 7 pad octets in a row, data all zero (RFC 4942 2.1.9.5)
      padLen += optLen;
      if (padLen > 7) return ParseError.BAD_OPTIONS;
      for (let i = p + 2; i < p + optLen; i++) if (buf[i] !== 0) return ParseError.BAD_OPTIONS;
    } else {
      if (++count > MAX_TLV_OPTIONS) return ParseError.BAD_OPTIONS;
      padLen = 0;
      if (t === lbspType && tlvLbspStatus === 0) {
        if (optLen - 2 === LBSP_DATA_LEN) {
          tlvLbspStatus = 1;
          tlvLbspOff = p + 2 - pktOff;
        } else {
          tlvLbspStatus = 2;
        }
      }
    }
    p += optLen;
  }
  return ParseError.OK;
}

/**
 * Parse the IPv4/IPv6 packet at buf[off, off+len) into info. Never reads past off+len nor past the
 * IP total length; never walks into ESP, past 59 or past a non-first fragment's Fragment header.
 * Bytes beyond the IP total length are allowed and ignored.
 * lbspType: the LBSP option type to look for (default 0x1E); -1 disables LBSP detection.
 * Returns ParseError.OK (0) or a ParseError code.
 */
export function parsePacket(buf: Uint8Array, off: number, len: number, info: PacketInfo, lbspType: number): number {
  info.reset();
  if (len < 1) return ParseError.NOT_IP;
  const v = buf[off] >> 4;
  if (v === 4) return parse4(buf, off, len, info);
  if (v === 6) return parse6(buf, off, len, info, lbspType);
  return ParseError.NOT_IP;
}

function parse4(buf: Uint8Array, off: number, len: number, info: PacketInfo): number {
  info.version = 4;
  if (len < 20) return ParseError.TRUNCATED;
  const ihl = (buf[off] & 15) * 4;
  if (ihl < 20) return ParseError.MALFORMED;
  if (ihl > len) return ParseError.TRUNCATED;
  const total = (buf[off + 2] << 8) | buf[off + 3];
  if (total < ihl) return ParseError.MALFORMED;
  if (total > len) return ParseError.TRUNCATED;
  info.totalLen = total;
  info.tclass = buf[off + 1];
  info.fragId = (buf[off + 4] << 8) | buf[off + 5];
  const ff = (buf[off + 6] << 8) | buf[off + 7];
  info.df = (ff & 0x4000) !== 0;
  info.moreFragments = (ff & 0x2000) !== 0;
  info.fragOffset = (ff & 0x1fff) * 8;
  info.isFragment = info.moreFragments || info.fragOffset !== 0;
  info.hopLimit = buf[off + 8];
  const proto = buf[off + 9];
  info.proto = proto;
  info.protoFieldOff = 9;
  info.src[0] = get32(buf, off + 12);
  info.dst[0] = get32(buf, off + 16);
  info.hdrLen = ihl;
  if (info.fragOffset !== 0) return ParseError.OK; // no upper-layer header here
  info.l4Off = ihl;
  info.l4Len = total - ihl;
  if (info.moreFragments) {
    // first fragment: must hold the field whose checksum an address rewrite changes
    if ((proto === Proto.TCP || proto === Proto.UDP) && info.l4Len < minL4(proto)) return ParseError.TINY_FRAGMENT;
  } else if (info.l4Len < minL4(proto)) {
    return ParseError.SHORT_L4;
  }
  return readL4(buf, off, info, proto === Proto.ICMP);
}

function parse6(buf: Uint8Array, off: number, len: number, info: PacketInfo, lbspType: number): number {
  info.version = 6;
  if (len < 40) return ParseError.TRUNCATED;
  const w0 = get32(buf, off);
  info.tclass = (w0 >>> 20) & 0xff;
  info.flowLabel = w0 & 0xfffff;
  const total = 40 + ((buf[off + 4] << 8) | buf[off + 5]);
  if (total > len) return ParseError.TRUNCATED;
  info.totalLen = total;
  info.hopLimit = buf[off + 7];
  for (let i = 0; i < 4; i++) {
    info.src[i] = get32(buf, off + 8 + 4 * i);
    info.dst[i] = get32(buf, off + 24 + 4 * i);
  }
  const end = off + total;
  let nh = buf[off + 6];
  let nhField = off + 6;
  let p = off + 40;
  let n = 0;
  // Offset/length of the last Destination Options header and its LBSP, kept only while it is the
  // header right before where the walk stops.
  let dOff = -1;
  let dLen = 0;
  let lOff = -1;
  let lStatus = 0;
  let nonFirst = false;
  for (;;) {
    if (nh === Proto.HOPOPTS || nh === Proto.DSTOPTS || nh === Proto.ROUTING) {
      if (nh === Proto.HOPOPTS && p !== off + 40) return ParseError.HBH_NOT_FIRST;
      if (++n > MAX_EXT_HEADERS) return ParseError.CHAIN_TOO_LONG;
      if (p + 2 > end) return ParseError.TRUNCATED;
      const hl = (buf[p + 1] + 1) * 8;
      if (p + hl > end) return ParseError.TRUNCATED;
      if (nh === Proto.ROUTING) {
        if (hl < 8) return ParseError.TRUNCATED;
        info.rtSegLeft = buf[p + 3];
        dOff = -1;
        lOff = -1;
        lStatus = 0;
      } else {
        const r = validateTlv(buf, p, p + hl, nh === Proto.DSTOPTS ? lbspType : -1, off);
        if (r !== 0) return r;
        if (nh === Proto.DSTOPTS) {
          dOff = p - off;
          dLen = hl;
          lOff = tlvLbspOff;
          lStatus = tlvLbspStatus;
        } else {
          dOff = -1;
          lOff = -1;
          lStatus = 0;
        }
      }
      nhField = p;
      nh = buf[p];
      p += hl;
    } else if (nh === Proto.FRAGMENT) {
      if (++n > MAX_EXT_HEADERS) return ParseError.CHAIN_TOO_LONG;
      if (p + 8 > end) return ParseError.TRUNCATED;
      const fo = (buf[p + 2] << 8) | buf[p + 3];
      info.isFragment = true;
      info.fragOffset = fo & 0xfff8;
      info.moreFragments = (fo & 1) !== 0;
      info.fragId = get32(buf, p + 4);
      dOff = -1;
      lOff = -1;
      lStatus = 0;
      nhField = p;
      nh = buf[p];
      p += 8;
      if (info.fragOffset !== 0) {
        nonFirst = true;
        break;
      }
    } else if (nh === Proto.AH) {
      if (++n > MAX_EXT_HEADERS) return ParseError.CHAIN_TOO_LONG;
      if (p + 2 > end) return ParseError.TRUNCATED;
      const hl = (buf[p + 1] + 2) * 4; // AH counts 4-octet units
      if (p + hl > end) return ParseError.TRUNCATED;
      info.hasAh = true;
      dOff = -1;
      lOff = -1;
      lStatus = 0;
      nhField = p;
      nh = buf[p];
      p += hl;
    } else {
      // upper layer, ESP (opaque) or 59; unknown values are upper layers too (RFC 7045)
      break;
    }
  }
  info.proto = nh;
  info.extHeaders = n;
  info.protoFieldOff = nhField - off;
  info.hdrLen = p - off;
  info.destOptsOff = dOff;
  info.destOptsLen = dOff >= 0 ? dLen : 0;
  info.lbspOff = lOff;
  info.lbspStatus = lStatus;
  if (nonFirst) return ParseError.OK;
  const avail = end - p;
  if (info.isFragment && info.moreFragments) {
    // RFC 7112: the first fragment holds the chain and the upper-layer header (at least 1 byte)
    const need = minL4(nh);
    if (avail < (need > 0 ? need : nh === Proto.NONE ? 0 : 1)) return ParseError.TINY_FRAGMENT;
  } else if (avail < minL4(nh)) {
    return ParseError.SHORT_L4;
  }
  if (nh === Proto.ESP || nh === Proto.NONE) return ParseError.OK;
  info.l4Off = p - off;
  info.l4Len = avail;
  return readL4(buf, off, info, nh === Proto.ICMPV6);
}

/** Ports / TCP flags / ICMP type+code from the upper-layer header, as far as the bytes are there. */
function readL4(buf: Uint8Array, off: number, info: PacketInfo, icmp: boolean): number {
  const p = off + info.l4Off;
  const l = info.l4Len;
  const proto = info.proto;
  if (proto === Proto.TCP || proto === Proto.UDP) {
    if (l >= 4) {
      info.srcPort = (buf[p] << 8) | buf[p + 1];
      info.dstPort = (buf[p + 2] << 8) | buf[p + 3];
    }
    if (proto === Proto.TCP && l >= 14) {
      info.tcpFlags = buf[p + 13];
      // a complete (unfragmented) segment must hold its own header
      if (!info.moreFragments && l >= 20) {
        const doff = (buf[p + 12] >> 4) * 4;
        if (doff < 20 || doff > l) return ParseError.MALFORMED;
      }
    }
  } else if (icmp && l >= 2) {
    info.icmpType = buf[p];
    info.icmpCode = buf[p + 1];
  }
  return ParseError.OK;
}

import { PacketInfo } from './packet-info.js';
import { LBSP_HDR_LEN, MAX_EXT_HEADERS } from './constants.js';

/**
 * LBSP Destination Option (SPEC section 5): type configurable (default 0x1E), Opt Data Len 32,
 * data bytes 0-15 the client segment, 16-31 the server segment. parsePacket finds it (info.lbspOff,
 * info.lbspStatus) in the Destination Options header that precedes the upper layer.
 */

function get32(buf: Uint8Array, p: number): number {
  return ((buf[p] << 24) | (buf[p + 1] << 16) | (buf[p + 2] << 8) | buf[p + 3]) >>> 0;
}

function put32(buf: Uint8Array, p: number, v: number): void {
  buf[p] = v >>> 24;
  buf[p + 1] = (v >>> 16) & 0xff;
  buf[p + 2] = (v >>> 8) & 0xff;
  buf[p + 3] = v & 0xff;
}

/** Copy the client segment (4 words) into out. False (out untouched) when no valid LBSP option. */
export function readLbspClient(buf: Uint8Array, off: number, info: PacketInfo, out: Uint32Array): boolean {
  if (info.lbspStatus !== 1) return false;
  const p = off + info.lbspOff;
  for (let i = 0; i < 4; i++) out[i] = get32(buf, p + 4 * i);
  return true;
}

/** Copy the server segment (4 words) into out. False (out untouched) when no valid LBSP option. */
export function readLbspServer(buf: Uint8Array, off: number, info: PacketInfo, out: Uint32Array): boolean {
  if (info.lbspStatus !== 1) return false;
  const p = off + info.lbspOff + 16;
  for (let i = 0; i < 4; i++) out[i] = get32(buf, p + 4 * i);
  return true;
}

/** True when the 4 words are all zero (a first packet's server segment). */
export function isZeroWords(w: Uint32Array): boolean {
  return (w[0] | w[1] | w[2] | w[3]) === 0;
}

/** True when the 4 words are an IPv4-mapped IPv6 address ::ffff:a.b.c.d (the IPv4 address is w[3]). */
export function isV4Mapped(w: Uint32Array): boolean {
  return w[0] === 0 && w[1] === 0 && w[2] === 0xffff;
}

/**
 * Write the canonical 40-byte LBSP Destination Options header at buf[at]: NH, Hdr Ext Len 4,
 * PadN(2) 01 02 00 00, type, 0x20, client (zeros if null), server (zeros if null) — option type at
 * 8n+6 so both segments are 8-byte aligned (protocol-notes section 2).
 */
export function buildLbspHeader(buf: Uint8Array, at: number, nextHeader: number, type: number, client: Uint32Array | null, server: Uint32Array | null): void {
  buf[at] = nextHeader;
  buf[at + 1] = 4;
  buf[at + 2] = 1;
  buf[at + 3] = 2;
  buf[at + 4] = 0;
  buf[at + 5] = 0;
  buf[at + 6] = type;
  buf[at + 7] = 32;
  for (let i = 0; i < 4; i++) {
    put32(buf, at + 8 + 4 * i, client === null ? 0 : client[i]);
    put32(buf, at + 24 + 4 * i, server === null ? 0 : server[i]);
  }
}

/** insertOrFillServerSegment failures (negative). */
export const LbspError = {
  NOT_IPV6: -1,
  /** Fragmented packet: inserting would shift the offsets of the later fragments. */
  FRAGMENT: -2,
  /** No upper-layer header to insert before (ESP, 59). */
  NO_UPPER_LAYER: -3,
  /** A final Destination Options header exists without a valid LBSP option (merging not supported). */
  EXISTING_DESTOPTS: -4,
  /** Payload Length would exceed 65535. */
  TOO_BIG: -5,
  /** Less than 40 bytes of headroom before off. */
  NO_HEADROOM: -6,
  /** The chain already holds MAX_EXT_HEADERS headers: one more makes the packet malformed (SPEC 5). */
  CHAIN_FULL: -7,
} as const;

/**
 * Back's stamping of a return packet (parsed into info). If the LBSP option exists, write
 * serverWords into its server segment in place and return off. Otherwise insert the canonical
 * 40-byte header (client segment = clientWords or zeros) right before the upper-layer header by
 * moving the IPv6 header and existing extension headers down 40 bytes into the headroom (the payload
 * does not move), fixing Payload Length and the Next Header chain; the L4 checksum is unchanged (the
 * pseudo-header counts only the upper-layer length). Returns the new offset (new length = len + 40)
 * and updates info to match, or a negative LbspError.
 */
export function insertOrFillServerSegment(
  buf: Uint8Array,
  off: number,
  len: number,
  info: PacketInfo,
  type: number,
  serverWords: Uint32Array,
  clientWords: Uint32Array | null,
): number {
  if (info.version !== 6) return LbspError.NOT_IPV6;
  if (info.lbspStatus === 1) {
    const p = off + info.lbspOff + 16;
    for (let i = 0; i < 4; i++) put32(buf, p + 4 * i, serverWords[i]);
    return off;
  }
  if (info.isFragment) return LbspError.FRAGMENT;
  if (info.l4Off < 0) return LbspError.NO_UPPER_LAYER;
  if (info.destOptsOff >= 0) return LbspError.EXISTING_DESTOPTS;
  if (info.extHeaders >= MAX_EXT_HEADERS) return LbspError.CHAIN_FULL;
  if (info.totalLen - 40 + LBSP_HDR_LEN > 0xffff) return LbspError.TOO_BIG;
  if (off < LBSP_HDR_LEN) return LbspError.NO_HEADROOM;
  const l4 = info.l4Off;
  const n = off - LBSP_HDR_LEN;
  buf.copyWithin(n, off, off + l4);
  buildLbspHeader(buf, n + l4, info.proto, type, clientWords, serverWords);
  buf[n + info.protoFieldOff] = 60;
  const pl = info.totalLen - 40 + LBSP_HDR_LEN;
  buf[n + 4] = pl >> 8;
  buf[n + 5] = pl & 0xff;
  info.protoFieldOff = l4;
  info.destOptsOff = l4;
  info.destOptsLen = LBSP_HDR_LEN;
  info.lbspOff = l4 + 8;
  info.lbspStatus = 1;
  info.l4Off = l4 + LBSP_HDR_LEN;
  info.hdrLen += LBSP_HDR_LEN;
  info.totalLen += LBSP_HDR_LEN;
  void len;
  return n;
}

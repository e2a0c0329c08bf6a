import { PacketInfo } from './packet-info.js';
import { LBSP_DATA_LEN, LBSP_HDR_LEN, MAX_EXT_HEADERS, MAX_TLV_OPTIONS } from './constants.js';
import { get32, put32 } from './bytes.js';

/**
 * LBSP Destination Option (SPEC section 5): type configurable (default 0x1E), Opt Data Len 32,
 * data bytes 0-15 the client segment, 16-31 the server segment. parsePacket finds it (info.lbspOff,
 * info.lbspStatus) in the Destination Options header that precedes the upper layer.
 */

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
  /**
   * The final Destination Options header holds an option of the LBSP type with another length: the
   * front reads the first option of that type, so a second one would never be read.
   */
  WRONG_LENGTH_OPTION: -4,
  /** Payload Length would exceed 65535. */
  TOO_BIG: -5,
  /** Less headroom before off than the packet grows by. */
  NO_HEADROOM: -6,
  /** The chain already holds MAX_EXT_HEADERS headers: one more makes the packet malformed (SPEC 5). */
  CHAIN_FULL: -7,
  /** The final Destination Options header already holds MAX_TLV_OPTIONS options: a receiver drops a ninth. */
  OPTIONS_FULL: -8,
  /** The packet would grow by more than the caller's room (tun.mtu minus its size on the wire). */
  NO_ROOM: -9,
} as const;

/**
 * Back's stamping of a return packet (parsed into info by parsePacket with the same type). Three cases:
 * - the LBSP option exists: write serverWords into its server segment in place, return off;
 * - no final Destination Options header: insert the canonical 40-byte header (client segment =
 *   clientWords or zeros) right before the upper-layer header;
 * - a final Destination Options header without the option (a server that sets its own options):
 *   merge the option into it (mergeIntoDestOpts).
 * Inserting and merging move the IPv6 header and the extension headers down into the headroom (the
 * payload does not move) and fix Payload Length and the chain; the L4 checksum is unchanged (the
 * pseudo-header counts only the upper-layer length, and no upper-layer byte changes). They refuse
 * when the packet would grow by more than `room` octets (the caller's MTU budget; filling in place
 * grows nothing). Returns the new offset (new length = info.totalLen, updated as info is to describe
 * the new packet exactly as a fresh parse does), or a negative LbspError with the packet untouched.
 */
export function insertOrFillServerSegment(
  buf: Uint8Array,
  off: number,
  len: number,
  info: PacketInfo,
  type: number,
  serverWords: Uint32Array,
  clientWords: Uint32Array | null,
  room = 0xffff,
): number {
  if (info.version !== 6) return LbspError.NOT_IPV6;
  if (info.lbspStatus === 1) {
    const p = off + info.lbspOff + 16;
    for (let i = 0; i < 4; i++) put32(buf, p + 4 * i, serverWords[i]);
    return off;
  }
  if (info.isFragment) return LbspError.FRAGMENT;
  if (info.l4Off < 0) return LbspError.NO_UPPER_LAYER;
  if (info.destOptsOff >= 0) return mergeIntoDestOpts(buf, off, info, type, serverWords, clientWords, room);
  if (info.extHeaders >= MAX_EXT_HEADERS) return LbspError.CHAIN_FULL;
  if (info.totalLen - 40 + LBSP_HDR_LEN > 0xffff) return LbspError.TOO_BIG;
  if (LBSP_HDR_LEN > room) return LbspError.NO_ROOM;
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
  info.extHeaders++;
  info.hdrLen += LBSP_HDR_LEN;
  info.totalLen += LBSP_HDR_LEN;
  void len;
  return n;
}

/**
 * Add the LBSP option to the final Destination Options header at info.destOptsOff, which has none.
 * Every option of it stays, byte for byte and at the same offset in the header (their own alignment
 * holds); its trailing padding is dropped (RFC 8200 4.2: padding only aligns the next option or ends
 * the header), then Pad1/PadN put the LBSP option type at 8n+6 like the canonical header
 * (protocol-notes section 2: both segments 8-octet aligned), so the header ends right after the
 * option (8n+6 + 34 is a multiple of 8) and Hdr Ext Len counts whole 8-octet units. The new pad run
 * follows a non-padding option (or the header start) and is at most 7 octets, which is what Linux
 * and parsePacket accept. The header grows by newLen - oldLen octets (32 or 40: a multiple of 8):
 * the IPv6 header, the headers before it and its existing options move down that much into the
 * headroom; the option is written where the old header ended, so the upper layer does not move.
 * The chain's Next Header fields do not change (the header is already there), the header count
 * neither (CHAIN_FULL does not apply); Payload Length and Hdr Ext Len are fixed. The L4 checksum
 * stays valid without an update: its pseudo-header holds the addresses, the upper-layer length
 * and protocol, none of which changes, and the upper-layer bytes are not touched.
 * At most 7 options of at most 257 octets before ours: the header stays far below the 2048 octets
 * Hdr Ext Len can say. Writes only inside [returned offset, old start of the upper layer).
 */
function mergeIntoDestOpts(
  buf: Uint8Array,
  off: number,
  info: PacketInfo,
  type: number,
  serverWords: Uint32Array,
  clientWords: Uint32Array | null,
  room: number,
): number {
  if (info.lbspStatus === 2) return LbspError.WRONG_LENGTH_OPTION;
  const dOff = info.destOptsOff;
  const d = off + dOff;
  const end = d + info.destOptsLen;
  // Where the last non-padding option ends (2: there is none) and how many there are. parsePacket
  // validated these TLVs, so every option lies inside the header.
  let used = 2;
  let count = 0;
  let p = d + 2;
  while (p < end) {
    if (buf[p] === 0) {
      p++;
      continue;
    }
    const next = p + 2 + buf[p + 1];
    if (buf[p] !== 1) {
      count++;
      used = next - d;
    }
    p = next;
  }
  if (count >= MAX_TLV_OPTIONS) return LbspError.OPTIONS_FULL;
  const q = used + ((6 - used) & 7); // the first offset >= used that is 8n+6
  const newLen = q + 2 + LBSP_DATA_LEN;
  const grow = newLen - info.destOptsLen;
  if (info.totalLen - 40 + grow > 0xffff) return LbspError.TOO_BIG;
  if (grow > room) return LbspError.NO_ROOM;
  if (off < grow) return LbspError.NO_HEADROOM;
  const n = off - grow;
  buf.copyWithin(n, off, d + used);
  let w = n + dOff + used;
  const pad = q - used;
  if (pad === 1) {
    buf[w] = 0; // Pad1
  } else if (pad > 1) {
    buf[w] = 1; // PadN, zero data
    buf[w + 1] = pad - 2;
    for (let i = 2; i < pad; i++) buf[w + i] = 0;
  }
  w += pad;
  buf[w] = type;
  buf[w + 1] = LBSP_DATA_LEN;
  for (let i = 0; i < 4; i++) {
    put32(buf, w + 2 + 4 * i, clientWords === null ? 0 : clientWords[i]);
    put32(buf, w + 18 + 4 * i, serverWords[i]);
  }
  buf[n + dOff + 1] = newLen / 8 - 1;
  const pl = info.totalLen - 40 + grow;
  buf[n + 4] = pl >> 8;
  buf[n + 5] = pl & 0xff;
  info.destOptsLen = newLen;
  info.lbspOff = dOff + q + 2;
  info.lbspStatus = 1;
  info.l4Off += grow;
  info.hdrLen += grow;
  info.totalLen += grow;
  return n;
}

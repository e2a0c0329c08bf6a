// IPv6 fragmentation of a packet the front itself originates as a tunnel entry point: an outer
// IPv6 header (no extension headers: the whole payload, i.e. the inner packet, is fragmentable)
// carrying an inner IPv6 packet of at most 1280 bytes when the tunnel MTU is lower (RFC 2473
// section 7.1: the entry point fragments the tunnel packet as its source). Allocation free.
import { Proto } from './constants.js';
import { put32 } from './bytes.js';

/** Fragment header length. */
export const FRAG_HDR_LEN = 8;

/** Payload bytes per fragment for fragments of at most `mtu` bytes (40 + 8 header each): multiple of 8. */
export function ipv6FragmentStep(mtu: number): number {
  const s = (mtu - 40 - FRAG_HDR_LEN) & ~7;
  return s > 0 ? s : 0;
}

/** Fragments a packet of `totalLen` bytes (40-byte header + payload) needs with this step. */
export function ipv6FragmentCount(totalLen: number, step: number): number {
  if (step <= 0) return 0;
  return (((totalLen - 40) + step - 1) / step) | 0;
}

/**
 * Write fragment k of the IPv6 packet at buf[off] (40-byte header whose next header is the upper
 * layer, total length totalLen) into out[outOff]: the base header with next header 44 and the
 * fragment's payload length, a Fragment header (next header = the original, offset, M, id), then
 * `step` payload bytes (the last fragment the rest). Fragment 0 may be written in place 8 bytes
 * earlier (out === buf, outOff === off - 8: its payload stays where it is), but that overwrites the
 * original header, so write every later fragment first. Returns the fragment's length.
 */
export function writeIpv6Fragment(buf: Uint8Array, off: number, totalLen: number, step: number, k: number, id: number, out: Uint8Array, outOff: number): number {
  const payload = totalLen - 40;
  const start = k * step;
  let n = payload - start;
  const last = n <= step;
  if (!last) n = step;
  const nh = buf[off + 6]; // read before the header copy: in place, the copy overwrites it
  for (let i = 0; i < 40; i++) out[outOff + i] = buf[off + i];
  const pl = FRAG_HDR_LEN + n;
  out[outOff + 4] = pl >> 8;
  out[outOff + 5] = pl & 0xff;
  out[outOff + 6] = Proto.FRAGMENT;
  const f = outOff + 40;
  out[f] = nh;
  out[f + 1] = 0;
  const fo = start | (last ? 0 : 1); // offset in bytes is a multiple of 8: the low 3 bits carry M
  out[f + 2] = (fo >> 8) & 0xff;
  out[f + 3] = fo & 0xff;
  put32(out, f + 4, id >>> 0);
  const src = off + 40 + start;
  const dst = f + FRAG_HDR_LEN;
  if (out === buf) out.copyWithin(dst, src, src + n);
  else for (let i = 0; i < n; i++) out[dst + i] = buf[src + i];
  return 40 + pl;
}

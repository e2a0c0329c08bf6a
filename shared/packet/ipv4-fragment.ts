// IPv4 fragmentation (RFC 791 section 3.2, RFC 815 fragment layout) of one parsed packet, allocation
// free: the caller asks how many fragments a packet needs for a given MTU, then writes fragment k
// wherever it wants it (fragment 0 may stay in place). Used by the front for an inner IPv4 packet
// without DF that does not fit the tunnel (fragmented before encapsulation) and for an outer IPv4
// header whose inner IPv6 packet (<= 1280 bytes) must be carried anyway (RFC 2473 section 7).
import { PacketInfo } from './packet-info.js';
import { writeIpv4HeaderChecksum } from './checksum.js';

/** Smallest MTU every IPv4 link carries unfragmented (RFC 791): 68 = 60-byte header + 8 data. */
export const IPV4_MIN_MTU = 68;

/**
 * Payload bytes per fragment (the last one may carry fewer) when fragments may be `mtu` bytes
 * and the largest header (the first fragment's) is `ihl` bytes: a multiple of 8. 0 when nothing fits.
 */
export function ipv4FragmentStep(mtu: number, ihl: number): number {
  const s = (mtu - ihl) & ~7;
  return s > 0 ? s : 0;
}

/**
 * Fragments the parsed packet needs for `mtu`: 1 when it fits, 0 when it cannot be fragmented at
 * that MTU (step 0). DF is the caller's to check.
 */
export function ipv4FragmentCount(info: PacketInfo, mtu: number): number {
  if (info.totalLen <= mtu) return 1;
  const step = ipv4FragmentStep(mtu, info.hdrLen);
  if (step === 0) return 0;
  const payload = info.totalLen - info.hdrLen;
  return ((payload + step - 1) / step) | 0;
}

/**
 * Length of the options of a non-first fragment: only options whose copied flag (0x80) is set
 * (RFC 791), padded with End-of-Options to a multiple of 4. Writes them at out[o] when out !== null.
 */
function copiedOptions(buf: Uint8Array, p: number, end: number, out: Uint8Array | null, o: number): number {
  let n = 0;
  while (p < end) {
    const t = buf[p];
    if (t === 0) break; // End of Options List
    if (t === 1) {
      p++; // NOP: not copied
      continue;
    }
    if (p + 1 >= end) break;
    const l = buf[p + 1];
    if (l < 2 || p + l > end) break; // malformed option: stop copying (fragment 0 keeps them as sent)
    if ((t & 0x80) !== 0) {
      if (out !== null) for (let i = 0; i < l; i++) out[o + n + i] = buf[p + i];
      n += l;
    }
    p += l;
  }
  const padded = (n + 3) & ~3;
  if (out !== null) for (let i = n; i < padded; i++) out[o + i] = 0;
  return padded;
}

/**
 * Write fragment k (0-based) of the parsed IPv4 packet at buf[off] into out[outOff], each fragment
 * carrying `step` payload bytes (ipv4FragmentStep) and the last one the rest. Fragment 0 keeps the
 * header and its options; later ones keep only copied options. The packet may itself be a fragment:
 * offsets continue from its own and only the last piece keeps its MF flag. The ID, TOS, TTL and
 * protocol are kept, DF is cleared, the header checksum is recomputed. Fragment 0 may be written in
 * place (out === buf, outOff === off); any k may be written in any order, because the original
 * total length, offset and MF come from `info`, not from buf. Returns the fragment's length.
 */
export function writeIpv4Fragment(buf: Uint8Array, off: number, info: PacketInfo, step: number, k: number, out: Uint8Array, outOff: number): number {
  const ihl = info.hdrLen;
  const payload = info.totalLen - ihl;
  const start = k * step;
  let n = payload - start;
  const last = n <= step;
  if (!last) n = step;
  let hl: number;
  if (k === 0) {
    hl = ihl;
    if (out !== buf || outOff !== off) for (let i = 0; i < ihl; i++) out[outOff + i] = buf[off + i];
  } else {
    for (let i = 0; i < 20; i++) out[outOff + i] = buf[off + i];
    hl = 20 + copiedOptions(buf, off + 20, off + ihl, out, outOff + 20);
    out[outOff] = 0x40 | (hl >> 2);
  }
  const src = off + ihl + start;
  const dst = outOff + hl;
  if (out !== buf || dst !== src) {
    if (out === buf) out.copyWithin(dst, src, src + n);
    else for (let i = 0; i < n; i++) out[dst + i] = buf[src + i];
  }
  const total = hl + n;
  out[outOff + 2] = total >> 8;
  out[outOff + 3] = total & 0xff;
  const fo = (info.fragOffset + start) >> 3;
  const mf = !last || info.moreFragments;
  out[outOff + 6] = (mf ? 0x20 : 0) | ((fo >> 8) & 0x1f);
  out[outOff + 7] = fo & 0xff;
  writeIpv4HeaderChecksum(out, outOff);
  return total;
}

/** Header length a non-first fragment of this packet gets (for sizing buffers). */
export function ipv4LaterFragmentHeaderLen(buf: Uint8Array, off: number, info: PacketInfo): number {
  return 20 + copiedOptions(buf, off + 20, off + info.hdrLen, null, 0);
}

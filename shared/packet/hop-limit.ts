// Raising the TTL / hop limit by one (the counterpart of translate.ts decrementHopLimit). A service
// behind a TUN sees every packet the kernel forwarded into the TUN already decremented (that is the
// host's router hop), and what it writes back is forwarded — and decremented — once more. A
// translating front or back adds that second decrement back, so the host counts as one hop, as a
// router does and as the encap path already does (the inner header is not touched on the way out).
import { PacketInfo } from './packet-info.js';
import { applyComplete, fold } from './checksum.js';

/**
 * TTL / hop limit + 1 in place (IPv4 header checksum updated incrementally, RFC 1624); 255 stays
 * 255. Updates info.hopLimit. Returns the new value.
 */
export function incrementHopLimit(buf: Uint8Array, off: number, info: PacketInfo): number {
  const hp = info.version === 4 ? off + 8 : off + 7;
  const h = buf[hp];
  if (h >= 255) return h;
  buf[hp] = h + 1;
  info.hopLimit = h + 1;
  if (info.version === 4) {
    const oldW = (h << 8) | buf[off + 9];
    const d = fold((~oldW & 0xffff) + (oldW + 0x100));
    const hc = (buf[off + 10] << 8) | buf[off + 11];
    const n = applyComplete(hc, d);
    buf[off + 10] = n >> 8;
    buf[off + 11] = n & 0xff;
  }
  return h + 1;
}

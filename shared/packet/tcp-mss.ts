import { PacketInfo } from './packet-info.js';
import { Proto } from './constants.js';
import { applyComplete, applyPartial, wordDelta } from './checksum.js';

/**
 * Clamp the MSS option of a TCP SYN (parsed into info) to maxMss, fixing the TCP checksum
 * incrementally (partial: the field holds a NEEDS_CSUM pseudo-header sum, which an option change
 * does not touch — the option bytes are summed when the checksum is completed).
 * Returns the MSS now in the packet, or 0 when the packet is not a SYN with an MSS option.
 * Option walk is bounded by the TCP header length and never reads past it.
 */
export function clampMss(buf: Uint8Array, off: number, info: PacketInfo, maxMss: number, partial: boolean): number {
  if (info.proto !== Proto.TCP || info.l4Off < 0 || (info.tcpFlags & 0x02) === 0) return 0;
  if (info.l4Len < 20) return 0;
  const t = off + info.l4Off;
  let hl = (buf[t + 12] >> 4) * 4;
  if (hl > info.l4Len) hl = info.l4Len;
  let p = t + 20;
  const end = t + hl;
  while (p < end) {
    const kind = buf[p];
    if (kind === 0) break;
    if (kind === 1) {
      p++;
      continue;
    }
    if (p + 2 > end) break;
    const ol = buf[p + 1];
    if (ol < 2 || p + ol > end) break;
    if (kind === 2 && ol === 4) {
      const mss = (buf[p + 2] << 8) | buf[p + 3];
      if (mss <= maxMss) return mss;
      buf[p + 2] = maxMss >> 8;
      buf[p + 3] = maxMss & 0xff;
      if (!partial) {
        // the MSS value is 16-bit aligned only when p - t is even; the delta must use the word
        // that the value's bytes belong to
        let d: number;
        if (((p + 2 - t) & 1) === 0) {
          d = wordDelta(mss, maxMss);
        } else {
          // bytes straddle two words: (x, hi) and (lo, y)
          const w1o = (buf[p + 1] << 8) | (mss >> 8);
          const w1n = (buf[p + 1] << 8) | (maxMss >> 8);
          const w2o = ((mss & 0xff) << 8) | buf[p + 4];
          const w2n = ((maxMss & 0xff) << 8) | buf[p + 4];
          d = applyPartial(wordDelta(w1o, w1n), wordDelta(w2o, w2n));
        }
        const c = t + 16;
        const n = applyComplete((buf[c] << 8) | buf[c + 1], d);
        buf[c] = n >> 8;
        buf[c + 1] = n & 0xff;
      }
      return maxMss;
    }
    p += ol;
  }
  return 0;
}

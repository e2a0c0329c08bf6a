// Outer-fragment reassembly for tunnel endpoints (the back's decap, a front's acceptTunnelFrom):
// fragments go into a bounded Reassembler; a completed tunnel packet is copied into an aux slot,
// with headroom for a new outer header, where the caller unwraps it and sends what it becomes.
// Shared by front and back so both count and bound it the same way.
import type { AuxBatch } from './packet-processor.js';
import type { PacketInfo } from '../packet/packet-info.js';
import { Reassembler, REASM_DROP, REASM_STORED } from '../packet/reassembly.js';
import { dropIndex, eventIndex } from '../metrics/counter-layout.js';

const E_FRAGMENTS_HELD = eventIndex('fragments_held');
const E_REASSEMBLED = eventIndex('tunnel_reassembled');
const D_MALFORMED = dropIndex('malformed');
const D_TOO_BIG = dropIndex('too_big');

/** Bytes free before a reassembled tunnel packet in its aux slot (room for a new outer header). */
export const AUX_HEADROOM = 64;
/** Largest datagram reassembled: an aux slot (2048) less its headroom. */
export const MAX_REASSEMBLED = 2048 - AUX_HEADROOM;

/** Outcomes of TunnelReassembly.add() other than a completed packet (>= 0: its aux offset). */
export const REASM_HELD = -1;
export const REASM_MALFORMED = -2;
export const REASM_NO_SLOT = -3;

export class TunnelReassembly {
  private readonly r = new Reassembler({ maxDatagram: MAX_REASSEMBLED });
  /** Aux slot index and length of the packet the last add() completed. */
  slot = -1;
  len = 0;

  /**
   * Add the fragment parsed into info. When it completes a datagram, the datagram is copied into
   * the next aux slot, which is reserved (aux.count moves on, so packets the caller emits while
   * unwrapping go after it), and its offset in aux.buf is returned; give the slot back with
   * release() if nothing is sent from it. Counts what happened to the fragment in `c` (held,
   * malformed, reassembled, and too_big when no aux slot is left).
   */
  add(buf: Uint8Array, off: number, info: PacketInfo, nowMs: number, aux: AuxBatch, c: Float64Array): number {
    const r = this.r;
    const v = r.add(buf, off, info, nowMs);
    if (v === REASM_STORED) {
      c[E_FRAGMENTS_HELD]++;
      return REASM_HELD;
    }
    if (v === REASM_DROP) {
      c[D_MALFORMED]++;
      return REASM_MALFORMED;
    }
    c[E_REASSEMBLED]++;
    const i = aux.count;
    if (i >= aux.capacity) {
      c[D_TOO_BIG]++;
      return REASM_NO_SLOT;
    }
    aux.count = i + 1;
    aux.lens[i] = 0;
    const base = i * aux.slotSize + AUX_HEADROOM;
    const ab = aux.buf;
    const rb = r.buf;
    const n = r.outLen;
    for (let k = 0, s = r.outOff; k < n; k++) ab[base + k] = rb[s + k];
    this.slot = i;
    this.len = n;
    return base;
  }

  /** Send the completed packet from its slot at [off, off + len). */
  commit(aux: AuxBatch, off: number, len: number): void {
    aux.offs[this.slot] = off;
    aux.lens[this.slot] = len;
  }

  /** Nothing is sent from the reserved slot: move the last aux packet into it. */
  release(aux: AuxBatch): void {
    const i = this.slot;
    const last = aux.count - 1;
    if (last !== i) {
      aux.offs[i] = aux.offs[last];
      aux.lens[i] = aux.lens[last];
    }
    aux.count = last;
  }
}

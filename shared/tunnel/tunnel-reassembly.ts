// Outer-fragment reassembly for tunnel endpoints (the back's decap, a front's acceptTunnelFrom):
// fragments go into a bounded Reassembler; a completed tunnel packet is copied into an aux slot of
// its own, with headroom for a new outer header, and parsed there, so the caller unwraps it in that
// slot and queues what it becomes. The slot stays the packet's until the loop has written the
// transmit queue: nothing generated later can overwrite it. Shared by front and back so both count
// and bound it the same way.
import type { TxQueue } from '../engine/tx-queue.js';
import { dropVerdict } from '../engine/packet-processor.js';
import type { PacketInfo } from '../packet/packet-info.js';
import { parsePacket, ParseError } from '../packet/parse.js';
import { Reassembler, REASM_DROP, REASM_STORED } from '../packet/reassembly.js';
import { dropIndex, eventIndex } from '../metrics/counter-layout.js';

const E_FRAGMENTS_HELD = eventIndex('fragments_held');
const E_REASSEMBLED = eventIndex('tunnel_reassembled');
const D_MALFORMED = dropIndex('malformed');
const D_TOO_BIG = dropIndex('too_big');

/** Headroom the reassembled packet gets in its aux slot (room for a new outer header). */
export const REASM_HEADROOM = 64;
/** Largest datagram reassembled: an aux slot (2048) less that headroom. */
export const MAX_REASSEMBLED = 2048 - REASM_HEADROOM;

/** add(): the fragment was stored, the datagram is not complete yet. */
export const REASM_HELD = -1;

export class TunnelReassembly {
  private readonly r = new Reassembler({ maxDatagram: MAX_REASSEMBLED });

  constructor(private readonly counters: Float64Array) {}

  /**
   * Add the outer fragment at buf[off] (parsed into info). When it completes a tunnel packet, the
   * packet is copied into an aux slot of tx and parsed into info (a complete, unfragmented packet);
   * its offset in tx.aux.buf is returned. Otherwise REASM_HELD, or a drop verdict (counted): a bad
   * fragment or result (malformed), no aux slot left (too_big).
   */
  add(buf: Uint8Array, off: number, info: PacketInfo, lbspType: number, nowMs: number, tx: TxQueue): number {
    const c = this.counters;
    const r = this.r;
    const v = r.add(buf, off, info, nowMs);
    if (v === REASM_STORED) {
      c[E_FRAGMENTS_HELD]++;
      return REASM_HELD;
    }
    if (v === REASM_DROP) {
      c[D_MALFORMED]++;
      return dropVerdict(D_MALFORMED);
    }
    c[E_REASSEMBLED]++;
    const aux = tx.aux;
    const slot = aux.claim();
    if (slot < 0) {
      c[D_TOO_BIG]++;
      return dropVerdict(D_TOO_BIG);
    }
    const base = slot + REASM_HEADROOM;
    const n = r.outLen;
    const ab = aux.buf;
    const rb = r.buf;
    for (let k = 0, s = r.outOff; k < n; k++) ab[base + k] = rb[s + k]!;
    if (parsePacket(aux.buf, base, n, info, lbspType) !== ParseError.OK || info.isFragment) {
      c[D_MALFORMED]++;
      return dropVerdict(D_MALFORMED);
    }
    return base;
  }
}

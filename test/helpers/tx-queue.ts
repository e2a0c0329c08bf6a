// A transmit queue for tests that call a processor's process() directly (no batch loop), and a
// reader of what the processor queued.
import { TxQueue } from '../../shared/engine/tx-queue.js';
import { PacketSlab } from '../../shared/engine/packet-slab.js';
import { SegmentSlab } from '../../shared/engine/segment-slab.js';
import { AUX_HEADROOM, AUX_SLOT } from '../../shared/engine/batch-loop.js';
import { HEADROOM } from '../../shared/tun/tun-device.js';

/** A queue with `auxSlots` aux slots, and a segment slab (virtio headers kept) when `offloads`. */
export function newTxQueue(auxSlots = 64, offloads = false): TxQueue {
  const aux = new PacketSlab(auxSlots, AUX_SLOT, AUX_HEADROOM);
  const seg = offloads ? new SegmentSlab(HEADROOM) : undefined;
  return new TxQueue(64 + auxSlots + (seg?.capacity ?? 0), offloads, aux, seg);
}

export interface Queued {
  buf: Uint8Array;
  off: number;
  len: number;
  /** The packet's bytes as hex. */
  hex: string;
  /** A copy of the packet's bytes. */
  bytes: Buffer;
}

/** Entries queued since the last reset, in order. */
export function queued(tx: TxQueue): Queued[] {
  const out: Queued[] = [];
  for (let i = 0; i < tx.count; i++) {
    const buf = tx.bufs[i]!;
    const off = tx.offs[i]!;
    const len = tx.lens[i]!;
    const bytes = Buffer.from(buf.subarray(off, off + len));
    out.push({ buf, off, len, hex: bytes.toString('hex'), bytes });
  }
  return out;
}

/**
 * What one process() call queued, split the way the tests read it: the entry in the input buffer
 * (the packet forwarded in place, or the first fragment) and the generated ones (aux and segment
 * slabs: ICMP errors, later fragments, reassembled packets, segments), each as hex.
 */
export function split(tx: TxQueue, input: Uint8Array): { fwd?: string; fwdOff?: number; aux: string[] } {
  const r: { fwd?: string; fwdOff?: number; aux: string[] } = { aux: [] };
  for (const q of queued(tx)) {
    if (q.buf === input && r.fwd === undefined) {
      r.fwd = q.hex;
      r.fwdOff = q.off;
    } else r.aux.push(q.hex);
  }
  return r;
}

// The seam between the batch loop and a role's per-packet logic (front or back).
// A processor works in place on one packet of the receive slab and reports where the packet to
// send now starts and how long it is (it may have prepended a header into the headroom).
// It may also emit extra packets (ICMP errors) into an aux batch owned by the loop.

import type { SegmentBatch } from './segment-batch.js';

export const VERDICT_DROP = -1;
/** The packet was replaced by segments the processor put in aux.seg (GSO split for a tunnel). */
export const VERDICT_SEGMENTS = -2;

export interface AuxBatch {
  /** Slab for generated packets (ICMP errors, fragments); slot i at i * slotSize. */
  readonly buf: Uint8Array;
  readonly slotSize: number;
  readonly offs: Int32Array;
  readonly lens: Int32Array;
  /** Packets queued so far in this batch. */
  count: number;
  readonly capacity: number;
  /** Segment slab for GSO splits (only when the queue has vnet headers; see segment-batch.ts). */
  readonly seg?: SegmentBatch;
}

export interface PacketProcessor {
  /**
   * Process the packet at buf[off .. off+len). vnet is the packet's virtio_net_hdr (12 bytes at
   * vnetOff) when offloads are on, else an empty array. Returns the new offset of the packet to
   * forward (>= 0) with its length in `outLen`, or VERDICT_DROP. Must not allocate.
   */
  process(buf: Uint8Array, off: number, len: number, vnet: Uint8Array, vnetOff: number, aux: AuxBatch): number;
  /** Length of the packet to forward, valid after process() returned >= 0. */
  outLen: number;
  /** Called once per batch after all its packets were processed (flush per-batch state). */
  endBatch?(nowMs: number): void;
}

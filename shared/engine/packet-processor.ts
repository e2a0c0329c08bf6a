// The seam between the batch loop and a role's per-packet logic (front or back). A processor works
// in place on one packet of the receive slab and appends everything it sends to the worker's
// transmit queue (tx-queue.ts): the packet itself (it may have prepended a header into the
// headroom), and any packet it generates. It returns what happened and nothing else.
import type { TxQueue } from './tx-queue.js';

/** What the packet became is in the transmit queue (forwarded, wrapped, fragmented, segmented...). */
export const VERDICT_QUEUED = 0;
/** Taken without sending anything and not a drop (a fragment held for reassembly, an ICMP error
 * about our own tunnel, the host's multicast): counted as an event by the processor. */
export const VERDICT_CONSUMED = 1;

/** A drop verdict: -1 - the counter index of its drop reason (shared/metrics/counter-layout.ts). */
export function dropVerdict(counterIndex: number): number {
  return -1 - counterIndex;
}

/** The drop reason's counter index of a drop verdict (< 0). */
export function dropReasonOf(verdict: number): number {
  return -1 - verdict;
}

export interface PacketProcessor {
  /**
   * Process the packet at buf[off .. off+len). vnet is the packet's virtio_net_hdr (12 bytes at
   * vnetOff) when offloads are on, else an empty array. Appends what is sent to tx and returns
   * VERDICT_QUEUED, VERDICT_CONSUMED, or a dropVerdict() whose reason it counted. Must not allocate.
   */
  process(buf: Uint8Array, off: number, len: number, vnet: Uint8Array, vnetOff: number, tx: TxQueue): number;
  /** Called once per batch after all its packets were processed (flush per-batch state). */
  endBatch?(nowMs: number): void;
}

// One worker's ordered transmit queue: every packet a processor sends, in the order it decided to
// send them — the received packet forwarded in place (rx slab), and what it generated: ICMP errors,
// fragments and reassembled packets (aux slab), GSO segments (segment slab), several packets for
// one input. An entry names its slab by reference, so the batch loop writes consecutive entries of
// one slab with one write call (write-side GRO on the rx slab). Preallocated; a push allocates
// nothing. Capacity covers one entry per rx slot and per slot of the aux and segment slabs, which
// bounds what a batch can queue between two flushes.
import { VNET_HDR_LEN } from '../tun/tun-device.js';
import type { PacketSlab } from './packet-slab.js';
import type { SegmentSlab } from './segment-slab.js';
import { clearVnetHeader, copyVnetHeader } from '../tun/vnet-header.js';

export class TxQueue {
  /** Slab of entry i (the buffer its bytes are in). */
  readonly bufs: Uint8Array[];
  readonly offs: Int32Array;
  readonly lens: Int32Array;
  /** Virtio header of entry i at i * 12 (all zero for generated packets); unused without vnet. */
  readonly vnet: Uint8Array;
  count = 0;

  constructor(
    readonly capacity: number,
    /** The device exchanges virtio headers: keep one per entry. */
    readonly vnetHdr: boolean,
    /** Slots for generated packets (ICMP errors, fragments, reassembled packets). */
    readonly aux: PacketSlab,
    /** Slots for GSO segments cut before a tunnel (only with virtio headers). */
    readonly seg: SegmentSlab | undefined,
  ) {
    const none = aux.buf;
    this.bufs = new Array<Uint8Array>(capacity).fill(none);
    this.offs = new Int32Array(capacity);
    this.lens = new Int32Array(capacity);
    this.vnet = new Uint8Array(vnetHdr ? capacity * VNET_HDR_LEN : 0);
  }

  /**
   * Queue a packet that carries its virtio header (vnet[vnetOff .. +12]; an empty vnet: a plain
   * packet), e.g. the received packet forwarded in place.
   */
  forward(buf: Uint8Array, off: number, len: number, vnet: Uint8Array, vnetOff: number): void {
    const i = this.entry(buf, off, len);
    if (!this.vnetHdr) return;
    if (vnet.length === 0) clearVnetHeader(this.vnet, i);
    else copyVnetHeader(vnet, vnetOff / VNET_HDR_LEN, this.vnet, i);
  }

  /** Queue a plain packet: complete checksums, no segmentation (all-zero virtio header). */
  push(buf: Uint8Array, off: number, len: number): void {
    const i = this.entry(buf, off, len);
    if (this.vnetHdr) clearVnetHeader(this.vnet, i);
  }

  private entry(buf: Uint8Array, off: number, len: number): number {
    const i = this.count;
    // The capacity bounds every slot a batch can fill; reaching it is a bug in the engine, not input.
    if (i >= this.capacity) throw new RangeError(`transmit queue full (${this.capacity})`);
    this.bufs[i] = buf;
    this.offs[i] = off;
    this.lens[i] = len;
    this.count = i + 1;
    return i;
  }

  /** The batch loop's write of the whole queue (unset when no loop drives this queue, e.g. in tests). */
  private writer: (() => void) | undefined;

  /** Called once by the batch loop that writes this queue. */
  attachWriter(write: () => void): void {
    this.writer = write;
  }

  /**
   * Write everything queued so far now and give every aux and segment slot back, for a packet that
   * needs more room than the loop reserved before it (the segments and fragments of one super-
   * packet, known only once its tunnel MTU is). Only for a packet that has queued nothing and holds
   * no claimed slot yet. False when there was nothing to write or no loop is attached.
   */
  writeEarly(): boolean {
    if (this.writer === undefined || this.count === 0) return false;
    this.writer();
    return true;
  }

  /** Empty the queue and give every aux and segment slot back (after the loop wrote it all). */
  reset(): void {
    this.count = 0;
    this.aux.reset();
    if (this.seg !== undefined) this.seg.reset();
  }

  /** Move entries [from, count) down to index 0 (entries before `from` were written). */
  shiftDown(from: number): void {
    const n = this.count - from;
    const b = this.bufs;
    const o = this.offs;
    const l = this.lens;
    for (let k = 0; k < n; k++) {
      b[k] = b[from + k]!;
      o[k] = o[from + k]!;
      l[k] = l[from + k]!;
    }
    if (this.vnetHdr) this.vnet.copyWithin(0, from * VNET_HDR_LEN, this.count * VNET_HDR_LEN);
    this.count = n;
  }
}

// A slab of fixed-size packet slots that a worker writes generated packets into (ICMP errors,
// fragments, reassembled tunnel packets; GSO segments in a slab of their own). Slots are handed
// out in order during a batch and all given back when the loop has written the transmit queue, so
// nothing a processor queued can be overwritten before it is sent. Allocates only at construction.

export class PacketSlab {
  readonly buf: Uint8Array;
  /** Per-slot offset/length scratch (the native GSO splitter reports its segments here). */
  readonly offs: Int32Array;
  readonly lens: Int32Array;
  /** Slots handed out since the last reset. */
  used = 0;

  constructor(
    readonly capacity: number,
    readonly slotSize: number,
    /** Bytes a writer keeps free before a packet in its slot (room to prepend a header). */
    readonly headroom: number,
  ) {
    this.buf = new Uint8Array(capacity * slotSize);
    this.offs = new Int32Array(capacity);
    this.lens = new Int32Array(capacity);
  }

  get free(): number {
    return this.capacity - this.used;
  }

  /** Take the next slot: the byte offset of its start in buf, or -1 when every slot is taken. */
  claim(): number {
    const i = this.used;
    if (i >= this.capacity) return -1;
    this.used = i + 1;
    return i * this.slotSize;
  }

  reset(): void {
    this.used = 0;
  }
}

// The slab GSO segments are cut into before they go into a tunnel (shared/tunnel/tunnel-offload.ts):
// one byte arena whose slot size is chosen per super-packet (headroom + one segment, rounded up),
// so small segments take small slots and a whole 64 KiB super-packet always fits an empty slab
// (even at the smallest MSS Linux sends). The batch loop writes the queue first when the next
// super-packet might not fit. Allocates only at construction.
import { vnetGsoSize, vnetHdrLen } from '../tun/vnet-header.js';

/** Arena size: a 64 KiB super-packet in 48-byte segments with 128-byte headroom needs ~330 KB. */
const ARENA_BYTES = 448 * 1024;
/** Smallest slot handed out (headroom 128 + a minimal segment, rounded to 64). */
const MIN_SLOT = 192;

export class SegmentSlab {
  readonly buf = new Uint8Array(ARENA_BYTES);
  /** Offset / length of segment i, written by the native splitter. */
  readonly offs: Int32Array;
  readonly lens: Int32Array;
  /** Bytes handed out since the last reset. */
  used = 0;
  /** Most segments the arena can hold (the transmit queue is sized for them). */
  readonly capacity: number;

  constructor(readonly headroom: number) {
    this.capacity = Math.floor(ARENA_BYTES / MIN_SLOT);
    this.offs = new Int32Array(this.capacity);
    this.lens = new Int32Array(this.capacity);
  }

  /** Slot size for the segments of the super-packet whose virtio header is header i of vnet. */
  slotFor(vnet: Uint8Array, i: number): number {
    const s = (this.headroom + vnetHdrLen(vnet, i) + vnetGsoSize(vnet, i) + 63) & ~63;
    return s < MIN_SLOT ? MIN_SLOT : s;
  }

  /** First free slot index for slots of `slot` bytes. */
  firstSlot(slot: number): number {
    return Math.ceil(this.used / slot);
  }

  /** Slots of `slot` bytes still free. */
  freeSlots(slot: number): number {
    const n = Math.floor(ARENA_BYTES / slot) - this.firstSlot(slot);
    return n > 0 ? n : 0;
  }

  reset(): void {
    this.used = 0;
  }
}

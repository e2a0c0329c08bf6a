// The slab GSO segments are cut into before they go into a tunnel (shared/tunnel/tunnel-offload.ts):
// one byte arena whose slot size is chosen per super-packet (headroom + one segment, rounded up),
// so small segments take small slots and a whole 64 KiB super-packet always fits an empty slab
// (even at the smallest MSS Linux sends). The batch loop writes the queue first when the next
// super-packet might not fit. Allocates only at construction.
import { vnetGsoSize, vnetHdrLen, vnetSegments } from '../tun/vnet-header.js';
import { gsoAddon, GSO_E_TOO_BIG, type GsoAddon } from '../tun/gso.js';
import { VNET_HDR_LEN } from '../tun/tun-device.js';

/** Outcomes of SegmentSlab.cut(). */
export const CUT_OK = 0;
export const CUT_TOO_BIG = 1;
export const CUT_MALFORMED = 2;

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

  /**
   * Slots of `slot2` bytes still free once `n` more slots of `slot` bytes are taken: room for the
   * fragments of segments that need them (tunnel-mtu.ts), checked before the cut.
   */
  freeSlotsAfter(slot: number, n: number, slot2: number): number {
    const end = (this.firstSlot(slot) + n) * slot;
    const f = Math.floor(ARENA_BYTES / slot2) - Math.ceil(end / slot2);
    return f > 0 ? f : 0;
  }

  /** Take `n` consecutive slots of `slot` bytes (the caller checked freeSlots): the first's byte offset. */
  take(slot: number, n: number): number {
    const first = this.firstSlot(slot);
    this.used = (first + n) * slot;
    return first * slot;
  }

  /** Slots the last successful cut() wrote: [cutFirst, cutFirst + cutCount). */
  cutFirst = 0;
  cutCount = 0;
  private g: GsoAddon | undefined;

  /**
   * Cut a whole super-packet (virtio header at vnet[vnetOff]) into free slots with the native
   * splitter (each segment complete, checksums computed), for roles that handle every segment as
   * a packet read alone. CUT_TOO_BIG when its segments do not fit the free slots or the splitter
   * finds one too big; CUT_MALFORMED when the splitter refuses its headers.
   */
  cut(buf: Uint8Array, off: number, len: number, vnet: Uint8Array, vnetOff: number): number {
    if (this.g === undefined) this.g = gsoAddon();
    const vi = vnetOff / VNET_HDR_LEN;
    const slot = this.slotFor(vnet, vi);
    const free = this.freeSlots(slot);
    if (vnetSegments(vnet, vi) > free) return CUT_TOO_BIG;
    const first = this.firstSlot(slot);
    const n = this.g.gsoSplit(buf, off, len, vnet, vnetOff, this.buf, this.offs, this.lens, slot, this.headroom, first, free, 0);
    if (n < 0) return n === GSO_E_TOO_BIG ? CUT_TOO_BIG : CUT_MALFORMED;
    this.used = (first + n) * slot;
    this.cutFirst = first;
    this.cutCount = n;
    return CUT_OK;
  }

  reset(): void {
    this.used = 0;
  }
}

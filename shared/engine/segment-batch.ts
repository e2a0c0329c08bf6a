// Segments of GSO super-packets that must leave as individual packets (encap mode: the kernel
// cannot segment an IP-in-IP super-packet), cut by the native splitter into a slab of their own
// with headroom before each, so the processor can prepend the outer header in place. The batch loop
// writes them in packet order: claim() first writes what the loop already holds, flush() writes
// the segments (when the slab is full, and before the next ordinary packet is queued).
import { gsoAddon, type GsoAddon } from '../tun/gso.js';
import { VNET_HDR_LEN } from '../tun/tun-device.js';

/** Where the loop writes; implemented by BatchLoop. */
export interface SegmentSink {
  /** Write the ordinary packets queued so far (segments produced next must follow them). */
  writePending(): void;
  /** Write the segments in the batch and empty it. */
  writeSegments(): void;
}

export class SegmentBatch {
  readonly buf: Uint8Array;
  readonly offs: Int32Array;
  readonly lens: Int32Array;
  /** All-zero virtio headers: every segment is a plain packet with complete checksums. */
  readonly vnet: Uint8Array;
  count = 0;
  private readonly g: GsoAddon;

  constructor(
    readonly capacity: number,
    readonly slotSize: number,
    readonly headroom: number,
    private readonly sink: SegmentSink,
  ) {
    this.buf = new Uint8Array(capacity * slotSize);
    this.offs = new Int32Array(capacity);
    this.lens = new Int32Array(capacity);
    this.vnet = new Uint8Array(capacity * VNET_HDR_LEN);
    this.g = gsoAddon();
  }

  /** Call before adding segments: keeps them behind the packets the loop already queued. */
  claim(): void {
    this.sink.writePending();
  }

  /** Write the segments now (the slab is full). */
  flush(): void {
    this.sink.writeSegments();
  }

  /**
   * Cut the super-packet at buf[off, off+len) (virtio header at vnet[vnetOff]) into the free slots,
   * from segment number `from`. Returns segments added (count advanced; fewer than the free slots
   * means the packet is done) or a negative GSO_E_* code.
   */
  split(buf: Uint8Array, off: number, len: number, vnet: Uint8Array, vnetOff: number, from: number): number {
    const first = this.count;
    const n = this.g.gsoSplit(buf, off, len, vnet, vnetOff, this.buf, this.offs, this.lens, this.slotSize, this.headroom, first, this.capacity - first, from);
    if (n > 0) this.count = first + n;
    return n;
  }

  /** Finish a NEEDS_CSUM checksum in place (natively: a sum over the whole L4 segment). */
  complete(buf: Uint8Array, off: number, len: number, csumStart: number, csumOffset: number): number {
    return this.g.completeChecksum(buf, off, len, csumStart, csumOffset);
  }
}

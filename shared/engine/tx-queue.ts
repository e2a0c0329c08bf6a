// One worker's ordered transmit queue: every packet a processor sends, in the order it decided to
// send them — the received packet forwarded in place (rx slab), and what it generated: ICMP errors,
// fragments and reassembled packets (aux slab), GSO segments (segment slab), several packets for
// one input. An entry names its slab by reference, so the batch loop writes consecutive entries of
// one slab with one write call (write-side GRO on the rx slab). Preallocated; a push allocates
// nothing. Capacity covers one entry per rx slot and per slot of the aux and segment slabs, which
// bounds what a batch can queue between two flushes.
// An entry also names the device it goes to: the TUN (DEV_TUN), or the front's tunnel TAP
// (DEV_TAP: an Ethernet frame holding a UDP-tunnel super-packet the kernel segments). Per-flow order
// holds across the two because the loop writes the queue strictly in order, one run at a time, and
// the kernel takes a tun/tap write all the way into its forwarding path inside the write() call
// (tun_get_user -> netif_receive_skb; with RPS on, a flow's tunnel packets share one backlog, as
// they carry the same outer header on either device): what is written first is forwarded first.
import { VNET_HDR_LEN } from '../tun/tun-device.js';
import type { PacketSlab } from './packet-slab.js';
import type { SegmentSlab } from './segment-slab.js';
import { clearVnetHeader, copyVnetHeader } from '../tun/vnet-header.js';
import { gsoAddon, type GsoAddon } from '../tun/gso.js';

/** Entry goes to the TUN. */
export const DEV_TUN = 0;
/** Entry goes to the tunnel TAP (Ethernet frame, 24-byte vnet header on the device). */
export const DEV_TAP = 1;

export class TxQueue {
  /** Slab of entry i (the buffer its bytes are in). */
  readonly bufs: Uint8Array[];
  /** Device of entry i: DEV_TUN or DEV_TAP. */
  readonly devs: Uint8Array;
  /**
   * The tunnel TAP's MAC when the loop has one (frames must be addressed to it to be "received"),
   * else null: then nothing may be queued with forwardTap().
   */
  tapMac: Uint8Array | null = null;
  readonly offs: Int32Array;
  readonly lens: Int32Array;
  /** Virtio header of entry i at i * 12 (all zero for generated packets); unused without vnet. */
  readonly vnet: Uint8Array;
  count = 0;
  /**
   * The device takes TCP (groTcp 1) / UDP (groUdp 1) GSO super-packets and write-side GRO is on:
   * set by the batch loop; mergeFrom() merges only what the device can take.
   */
  groTcp = 0;
  groUdp = 0;
  private g: GsoAddon | undefined;

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
    this.devs = new Uint8Array(capacity);
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

  /**
   * Queue an Ethernet frame for the tunnel TAP with its virtio header (vnet[vnetOff .. +12], offsets
   * counted from the frame start); only when tapMac is set.
   */
  forwardTap(buf: Uint8Array, off: number, len: number, vnet: Uint8Array, vnetOff: number): void {
    const i = this.entry(buf, off, len);
    this.devs[i] = DEV_TAP;
    copyVnetHeader(vnet, vnetOff / VNET_HDR_LEN, this.vnet, i);
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
    this.devs[i] = DEV_TUN;
    this.offs[i] = off;
    this.lens[i] = len;
    this.count = i + 1;
    return i;
  }

  /**
   * Merge the entries [from, count) into GSO super-packets where they are consecutive packets of
   * one flow (native gro.c rules), in place: for packets a processor generated into one slab in
   * increasing order, such as the inner packets of one cut tunnel super-packet, which the write
   * side's GRO (receive slab only) would otherwise write one by one. Entries of another slab, or
   * a device without the offloads: left as they are.
   */
  mergeFrom(from: number): void {
    const n = this.count - from;
    if (n < 2 || this.groTcp + this.groUdp === 0 || !this.vnetHdr) return;
    const b = this.bufs[from]!;
    const d = this.devs;
    for (let k = from; k < this.count; k++) if (this.bufs[k] !== b || d[k] !== DEV_TUN) return;
    if (this.g === undefined) this.g = gsoAddon();
    this.count = from + this.g.groSequence(b, this.offs, this.lens, this.vnet, from, n, this.groTcp, this.groUdp);
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
    const d = this.devs;
    const o = this.offs;
    const l = this.lens;
    for (let k = 0; k < n; k++) {
      b[k] = b[from + k]!;
      d[k] = d[from + k]!;
      o[k] = o[from + k]!;
      l[k] = l[from + k]!;
    }
    if (this.vnetHdr) this.vnet.copyWithin(0, from * VNET_HDR_LEN, this.count * VNET_HDR_LEN);
    this.count = n;
  }
}

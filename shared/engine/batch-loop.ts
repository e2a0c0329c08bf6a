// One worker's packet loop: on readiness, read batches from its TUN queue, run the role's
// processor over each packet in place, write the forwarded packets back as one batch, then the
// generated ones (ICMP errors). Everything is preallocated here; the loop allocates nothing.
// With vnet headers (offloads), a GSO super-packet counts as the packets it is on the wire, and a
// processor may replace it by segments in the segment batch (SegmentBatch): the loop then writes
// its queued packets first and the segments after, so packet order is kept.
import type { TunDevice } from '../tun/tun-device.js';
import type { AuxBatch, PacketProcessor } from './packet-processor.js';
import { SegmentBatch, type SegmentSink } from './segment-batch.js';
import { prepareRxVnet, vnetHdrLen, vnetSegments } from '../tun/vnet-header.js';
import { gsoAddon, type GsoAddon } from '../tun/gso.js';
import { TUN_F_TSO4, TUN_F_TSO6, TUN_F_USO4, TUN_F_USO6 } from '../tun/tun-device.js';
import {
  C_RX_BYTES,
  C_RX_PACKETS,
  C_TX_BYTES,
  C_TX_PACKETS,
  dropIndex,
  eventIndex,
} from '../metrics/counter-layout.js';

/** Batches read per readiness callback before yielding to the event loop (messages, timers). */
const BATCH_BUDGET = 64;
const AUX_SLOT = 2048;
/** Segment slab: slots for this many wire packets (a 64 KiB TCP super-packet is ~45 at MSS 1448). */
const SEG_CAPACITY = 256;

export interface BatchLoopOptions {
  /** TUN MTU: sizes the segment slots (headroom + MTU). Default 1500. */
  mtu?: number;
  /**
   * Write-side GRO (default true when the device has TSO / USO): same-flow TCP segments and UDP
   * datagrams of a batch are merged into GSO super-packets before the write (gro.c), so the kernel
   * takes many wire packets per write() syscall.
   */
  gro?: boolean;
}

const I_WRITE_ERROR = dropIndex('write_error');
const I_READ_BATCHES = eventIndex('read_batches');

export class BatchLoop implements SegmentSink {
  private readonly txOffs: Int32Array;
  private readonly txLens: Int32Array;
  private readonly txVnet: Uint8Array;
  private readonly aux: AuxBatch;
  /** All-zero virtio headers for the aux packets (a vnet-hdr queue needs one per packet written). */
  private readonly auxVnet: Uint8Array | undefined;
  private readonly seg: SegmentBatch | undefined;
  private readonly emptyVnet = new Uint8Array(0);
  private stopped = false;
  private lastWriteDrops = 0;
  /** Forwarded packets queued in txOffs/txLens, not yet written; and their wire packets/bytes. */
  private pending = 0;
  private pendingWire = 0;
  private pendingBytes = 0;
  /** Write-side GRO: merge TCP (TSO4+TSO6 on the device) / UDP (USO4+USO6) before writing. */
  private readonly groTcp: number;
  private readonly groUdp: number;
  private readonly g: GsoAddon | undefined;

  constructor(
    private readonly dev: TunDevice,
    private processor: PacketProcessor,
    private readonly counters: Float64Array,
    private readonly onDeviceError: (err: Error) => void,
    o: BatchLoopOptions = {},
  ) {
    const n = dev.batchSize;
    this.txOffs = new Int32Array(n);
    this.txLens = new Int32Array(n);
    this.txVnet = new Uint8Array(n * 12);
    if (dev.vnetHdr) {
      const slot = (dev.headroom + Math.max(o.mtu ?? 1500, 1280) + 63) & ~63;
      this.seg = new SegmentBatch(SEG_CAPACITY, slot, dev.headroom, this);
    }
    const gro = dev.vnetHdr && (o.gro ?? true);
    const has = (mask: number): number => (gro && (dev.offloads & mask) === mask ? 1 : 0);
    this.groTcp = has(TUN_F_TSO4 | TUN_F_TSO6);
    this.groUdp = has(TUN_F_USO4 | TUN_F_USO6);
    this.g = this.groTcp + this.groUdp > 0 ? gsoAddon() : undefined;
    this.aux = {
      buf: new Uint8Array(n * AUX_SLOT),
      slotSize: AUX_SLOT,
      offs: new Int32Array(n),
      lens: new Int32Array(n),
      count: 0,
      capacity: n,
      seg: this.seg,
    };
    this.auxVnet = dev.vnetHdr ? new Uint8Array(n * 12) : undefined;
  }

  /** Swap the processor (e.g. after a config change); takes effect at the next batch. */
  setProcessor(p: PacketProcessor): void {
    this.processor = p;
  }

  start(): void {
    this.dev.onReadable(() => this.drain(), (err) => this.onDeviceError(err));
  }

  stop(): void {
    this.stopped = true;
  }

  /** Read and process until the queue is empty or the budget is spent. Returns packets read. */
  drain(): number {
    let total = 0;
    for (let b = 0; b < BATCH_BUDGET && !this.stopped; b++) {
      const n = this.dev.read();
      if (n <= 0) break;
      total += n;
      this.runBatch(n);
    }
    return total;
  }

  private runBatch(n: number): void {
    const dev = this.dev;
    const rx = dev.rx;
    const c = this.counters;
    const p = this.processor;
    const aux = this.aux;
    const vnetOn = dev.vnetHdr;
    const vnet = vnetOn ? rx.vnet : this.emptyVnet;
    const txOffs = this.txOffs;
    const txLens = this.txLens;
    const txVnet = this.txVnet;
    const seg = this.seg;
    aux.count = 0;
    c[I_READ_BATCHES]++;
    this.pending = 0;
    this.pendingWire = 0;
    this.pendingBytes = 0;
    let rxPackets = 0;
    let rxBytes = 0;
    for (let i = 0; i < n; i++) {
      const len = rx.lens[i];
      const inOff = rx.offs[i];
      if (vnetOn) {
        // a GSO super-packet is `segs` packets on the wire, each with its own copy of the headers
        const segs = prepareRxVnet(rx.buf, inOff, len, vnet, i);
        rxPackets += segs;
        rxBytes += len + (segs - 1) * vnetHdrLen(vnet, i);
      } else {
        rxPackets++;
        rxBytes += len;
      }
      const off = p.process(rx.buf, inOff, len, vnet, i * 12, aux);
      if (off < 0) continue; // dropped, or replaced by segments in seg (VERDICT_SEGMENTS)
      if (seg !== undefined && seg.count > 0) this.writeSegments(); // segments go out before this packet
      const m = this.pending;
      const outLen = p.outLen;
      txOffs[m] = off;
      txLens[m] = outLen;
      if (vnetOn) {
        for (let k = 0; k < 12; k++) txVnet[m * 12 + k] = vnet[i * 12 + k];
        const segs = vnetSegments(txVnet, m);
        this.pendingWire += segs;
        this.pendingBytes += segs > 1 ? outLen + (segs - 1) * vnetHdrLen(txVnet, m) : outLen;
      } else {
        this.pendingWire++;
        this.pendingBytes += outLen;
      }
      this.pending = m + 1;
    }
    c[C_RX_PACKETS] += rxPackets;
    c[C_RX_BYTES] += rxBytes;
    if (p.endBatch !== undefined) p.endBatch(Date.now());
    this.writePending();
    if (seg !== undefined && seg.count > 0) this.writeSegments();
    if (aux.count > 0) this.send(aux.buf, aux.offs, aux.lens, aux.count, this.auxVnet, aux.count, -1);
  }

  /** SegmentSink: write the forwarded packets queued so far. */
  writePending(): void {
    let m = this.pending;
    if (m === 0) return;
    const dev = this.dev;
    // Merge same-flow segments into super-packets first: fewer write() syscalls (the wire counts stay)
    if (m > 1 && this.g !== undefined) m = this.g.groCoalesce(dev.rx.buf, this.txOffs, this.txLens, this.txVnet, m, dev.slotSize, this.groTcp, this.groUdp);
    this.send(dev.rx.buf, this.txOffs, this.txLens, m, dev.vnetHdr ? this.txVnet : undefined, this.pendingWire, this.pendingBytes);
    this.pending = 0;
    this.pendingWire = 0;
    this.pendingBytes = 0;
  }

  /** SegmentSink: write the segment batch (plain packets: all-zero virtio headers). */
  writeSegments(): void {
    const seg = this.seg;
    if (seg === undefined || seg.count === 0) return;
    this.send(seg.buf, seg.offs, seg.lens, seg.count, seg.vnet, seg.count, -1);
    seg.count = 0;
  }

  /**
   * Write count packets; `wire` is how many packets they are on the wire (GSO), `bytes` their wire
   * bytes (-1: sum of lens). A refused packet counts as one lost wire packet.
   */
  private send(buf: Uint8Array, offs: Int32Array, lens: Int32Array, count: number, vnet: Uint8Array | undefined, wire: number, bytes: number): void {
    this.dev.write(buf, offs, lens, count, vnet);
    const c = this.counters;
    if (bytes < 0) {
      bytes = 0;
      for (let i = 0; i < count; i++) bytes += lens[i];
    }
    const drops = this.dev.writeDrops - this.lastWriteDrops;
    this.lastWriteDrops = this.dev.writeDrops;
    c[C_TX_PACKETS] += wire - drops;
    c[C_TX_BYTES] += bytes;
    if (drops > 0) c[I_WRITE_ERROR] += drops;
  }
}

// One worker's packet loop: on readiness, read batches from its TUN queue, run the role's processor
// over each packet in place, and write the transmit queue (tx-queue.ts) in the order the processor
// filled it: consecutive entries of one slab go out with one write call, same-flow packets of the
// receive slab merged first (write-side GRO). Everything is preallocated; the loop allocates nothing.
// With vnet headers (offloads), a GSO super-packet counts as the packets it is on the wire (its
// segment count, kept in the virtio header by prepareRxVnet), on receive and on transmit.
// The aux and segment slabs are reused only after the queue is written: the loop writes early when
// the next packet might not find room (a super-packet's segments, or too few aux slots), and a
// processor may ask it to (TxQueue.writeEarly: a super-packet whose segments must be fragmented).
import { TunGoneError, type TunDevice } from '../tun/tun-device.js';
import type { PacketProcessor } from './packet-processor.js';
import { DEV_TAP, TxQueue } from './tx-queue.js';
import { PacketSlab } from './packet-slab.js';
import { SegmentSlab } from './segment-slab.js';
import { copyVnetHeader, prepareRxVnet, vnetHdrLen, vnetSegments } from '../tun/vnet-header.js';
import { gsoAddon, type GsoAddon } from '../tun/gso.js';
import { TUN_F_TSO4, TUN_F_TSO6, TUN_F_USO4, TUN_F_USO6 } from '../tun/tun-device.js';
import { C_RX_BYTES, C_RX_PACKETS, C_TX_BYTES, C_TX_PACKETS, dropIndex, eventIndex } from '../metrics/counter-layout.js';

/** Batches read per readiness callback before yielding to the event loop (messages, timers). */
const BATCH_BUDGET = 64;
/** Aux slot: a generated packet of up to an IPv6 minimum-MTU error plus headroom, or a reassembled one. */
export const AUX_SLOT = 2048;
/** Bytes kept free before a packet written into an aux slot (an outer header + Fragment header). */
export const AUX_HEADROOM = 64;
/**
 * Aux slots one packet may need: an ICMP error, a reassembled packet and what it becomes, or the
 * fragments of one packet (a 1500-byte packet over a 1280-byte tunnel: 2; the worst realistic
 * case, a 9000-byte jumbo over 1280: 8). Fewer free slots than this before a packet: write first.
 */
const AUX_PER_PACKET = 8;

export interface BatchLoopOptions {
  /**
   * Write-side GRO (default true when the device has TSO / USO): same-flow TCP segments and UDP
   * datagrams of a batch are merged into GSO super-packets before the write (gro.c), so the kernel
   * takes many wire packets per write() syscall.
   */
  gro?: boolean;
  /**
   * The front's tunnel TAP queue (UDP-tunnel super-packets, written only) and its MAC: entries
   * queued with TxQueue.forwardTap go there.
   */
  tap?: { dev: TunDevice; mac: Uint8Array };
}

/** Ethernet header before each TAP frame: not on the wire of the tunnel, not counted as bytes. */
const ETH_HLEN = 14;
const E_TUNNEL_GSO_WRITES = eventIndex('tunnel_gso_writes');

const I_WRITE_ERROR = dropIndex('write_error');
const I_READ_ERROR = dropIndex('read_error');
const I_READ_BATCHES = eventIndex('read_batches');

export class BatchLoop {
  /** The transmit queue processors append to. */
  readonly tx: TxQueue;
  private readonly aux: PacketSlab;
  private readonly seg: SegmentSlab | undefined;
  private readonly emptyVnet = new Uint8Array(0);
  private stopped = false;
  private lastWriteDrops = 0;
  private lastReadDrops = 0;
  private readonly tap: TunDevice | undefined;
  /** One TAP entry at index 0 (the TAP is written frame by frame). */
  private readonly one = { offs: new Int32Array(1), lens: new Int32Array(1), vnet: new Uint8Array(12) };
  /** Write-side GRO: merge TCP (TSO4+TSO6 on the device) / UDP (USO4+USO6) before writing. */
  private readonly groTcp: number;
  private readonly groUdp: number;
  private readonly g: GsoAddon | undefined;

  constructor(
    private readonly dev: TunDevice,
    private readonly processor: PacketProcessor,
    private readonly counters: Float64Array,
    private readonly onDeviceError: (err: Error) => void,
    o: BatchLoopOptions = {},
  ) {
    const n = dev.batchSize;
    this.aux = new PacketSlab(n, AUX_SLOT, AUX_HEADROOM);
    if (dev.vnetHdr) this.seg = new SegmentSlab(dev.headroom);
    this.tx = new TxQueue(n + this.aux.capacity + (this.seg?.capacity ?? 0), dev.vnetHdr, this.aux, this.seg);
    this.tx.attachWriter(() => this.flush());
    if (o.tap !== undefined && dev.vnetHdr) {
      this.tap = o.tap.dev;
      this.tx.tapMac = o.tap.mac;
    }
    const gro = dev.vnetHdr && (o.gro ?? true);
    const has = (mask: number): number => (gro && (dev.offloads & mask) === mask ? 1 : 0);
    this.groTcp = has(TUN_F_TSO4 | TUN_F_TSO6);
    this.groUdp = has(TUN_F_USO4 | TUN_F_USO6);
    this.g = this.groTcp + this.groUdp > 0 ? gsoAddon() : undefined;
    this.tx.groTcp = this.groTcp;
    this.tx.groUdp = this.groUdp;
  }

  start(): void {
    this.dev.onReadable(() => this.drain(), (err) => this.deviceError(err));
  }

  stop(): void {
    this.stopped = true;
  }

  /**
   * Read and process until the queue is empty or the budget is spent. Returns packets read. A
   * vanished device (TunGoneError from read or write) stops the loop and goes to onDeviceError.
   */
  drain(): number {
    let total = 0;
    try {
      for (let b = 0; b < BATCH_BUDGET && !this.stopped; b++) {
        const n = this.dev.read();
        if (this.dev.readDrops !== this.lastReadDrops) this.countReadDrops();
        if (n <= 0) break;
        total += n;
        this.runBatch(n);
      }
    } catch (err) {
      if (!(err instanceof TunGoneError)) throw err;
      this.tx.reset();
      this.deviceError(err);
    }
    return total;
  }

  /** Packets the device lost on read: received (rx) and dropped as read_error. */
  private countReadDrops(): void {
    const d = this.dev.readDrops - this.lastReadDrops;
    this.lastReadDrops = this.dev.readDrops;
    this.counters[C_RX_PACKETS] += d;
    this.counters[I_READ_ERROR] += d;
  }

  private deviceError(err: Error): void {
    if (this.stopped) return;
    this.stopped = true;
    this.onDeviceError(err);
  }

  private runBatch(n: number): void {
    const dev = this.dev;
    const rx = dev.rx;
    const c = this.counters;
    const p = this.processor;
    const tx = this.tx;
    const aux = this.aux;
    const seg = this.seg;
    const vnetOn = dev.vnetHdr;
    const vnet = vnetOn ? rx.vnet : this.emptyVnet;
    c[I_READ_BATCHES]++;
    let rxPackets = 0;
    let rxBytes = 0;
    for (let i = 0; i < n; i++) {
      const len = rx.lens[i];
      const inOff = rx.offs[i];
      let segs = 1;
      if (vnetOn) {
        // a GSO super-packet is `segs` packets on the wire, each with its own copy of the headers
        segs = prepareRxVnet(rx.buf, inOff, len, vnet, i);
        rxBytes += len + (segs - 1) * vnetHdrLen(vnet, i);
      } else {
        rxBytes += len;
      }
      rxPackets += segs;
      if (aux.free < AUX_PER_PACKET || (seg !== undefined && segs > 1 && seg.freeSlots(seg.slotFor(vnet, i)) < segs)) this.flush();
      p.process(rx.buf, inOff, len, vnet, i * 12, tx);
    }
    c[C_RX_PACKETS] += rxPackets;
    c[C_RX_BYTES] += rxBytes;
    if (p.endBatch !== undefined) p.endBatch(Date.now());
    this.flush();
  }

  /**
   * Write the queue in order, one write call per run of entries in the same slab for the same
   * device; then empty it.
   */
  private flush(): void {
    const tx = this.tx;
    const rxBuf = this.dev.rx.buf;
    const devs = tx.devs;
    while (tx.count > 0) {
      const buf = tx.bufs[0]!;
      const d = devs[0]!;
      let m = 1;
      while (m < tx.count && tx.bufs[m] === buf && devs[m] === d) m++;
      if (d === DEV_TAP) this.writeTapRun(buf, m);
      else this.writeRun(buf, m, buf === rxBuf);
      if (m === tx.count) break;
      tx.shiftDown(m);
    }
    tx.reset();
  }

  /**
   * Write entries [0, m) of the queue (all in `buf`, all for the TAP): UDP-tunnel super-packets.
   * Counted like writeRun, without the Ethernet header (14 bytes per frame, and in every segment's
   * hdr_len); each frame taken also counts tunnel_gso_writes.
   */
  private writeTapRun(buf: Uint8Array, m: number): void {
    const tx = this.tx;
    const tap = this.tap!;
    const lens = tx.lens;
    const v = tx.vnet;
    const one = this.one;
    const c = this.counters;
    let wire = 0;
    let bytes = 0;
    let written = 0;
    // One frame per call (each is tens of KB): a refused one is known, and all its segments are lost.
    for (let k = 0; k < m; k++) {
      const segs = vnetSegments(v, k);
      one.offs[0] = tx.offs[k]!;
      one.lens[0] = lens[k]!;
      copyVnetHeader(v, k, one.vnet, 0);
      if (tap.write(buf, one.offs, one.lens, 1, one.vnet) === 1) {
        written++;
        wire += segs;
        bytes += lens[k]! - ETH_HLEN + (segs > 1 ? (segs - 1) * (vnetHdrLen(v, k) - ETH_HLEN) : 0);
      } else {
        c[I_WRITE_ERROR] += segs;
      }
    }
    c[C_TX_PACKETS] += wire;
    c[C_TX_BYTES] += bytes;
    c[E_TUNNEL_GSO_WRITES] += written;
  }

  /**
   * Write entries [0, m) of the queue (all in `buf`). Counts their wire packets (a GSO super-packet:
   * its segments) and bytes; a refused packet counts as one lost wire packet (write_error).
   */
  private writeRun(buf: Uint8Array, m: number, rxSlab: boolean): void {
    const tx = this.tx;
    const dev = this.dev;
    const lens = tx.lens;
    let wire = 0;
    let bytes = 0;
    if (tx.vnetHdr) {
      const v = tx.vnet;
      for (let k = 0; k < m; k++) {
        const segs = vnetSegments(v, k);
        wire += segs;
        bytes += segs > 1 ? lens[k]! + (segs - 1) * vnetHdrLen(v, k) : lens[k]!;
      }
    } else {
      wire = m;
      for (let k = 0; k < m; k++) bytes += lens[k]!;
    }
    // Merge same-flow segments into super-packets first: fewer write() syscalls (the wire counts stay)
    let count = m;
    if (rxSlab && m > 1 && this.g !== undefined) count = this.g.groCoalesce(buf, tx.offs, lens, tx.vnet, m, dev.slotSize, this.groTcp, this.groUdp);
    dev.write(buf, tx.offs, lens, count, tx.vnetHdr ? tx.vnet : undefined);
    const c = this.counters;
    const drops = dev.writeDrops - this.lastWriteDrops;
    this.lastWriteDrops = dev.writeDrops;
    c[C_TX_PACKETS] += wire - drops;
    c[C_TX_BYTES] += bytes;
    if (drops > 0) c[I_WRITE_ERROR] += drops;
  }
}

// One worker's packet loop: on readiness, read batches from its TUN queue, run the role's
// processor over each packet in place, write the forwarded packets back as one batch, then the
// generated ones (ICMP errors). Everything is preallocated here; the loop allocates nothing.
import type { TunDevice } from '../tun/tun-device.js';
import type { AuxBatch, PacketProcessor } from './packet-processor.js';
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

const I_WRITE_ERROR = dropIndex('write_error');
const I_READ_BATCHES = eventIndex('read_batches');

export class BatchLoop {
  private readonly txOffs: Int32Array;
  private readonly txLens: Int32Array;
  private readonly txVnet: Uint8Array;
  private readonly aux: AuxBatch;
  private readonly emptyVnet = new Uint8Array(0);
  private stopped = false;
  private lastWriteDrops = 0;

  constructor(
    private readonly dev: TunDevice,
    private processor: PacketProcessor,
    private readonly counters: Float64Array,
    private readonly onDeviceError: (err: Error) => void,
  ) {
    const n = dev.batchSize;
    this.txOffs = new Int32Array(n);
    this.txLens = new Int32Array(n);
    this.txVnet = new Uint8Array(n * 12);
    this.aux = {
      buf: new Uint8Array(n * AUX_SLOT),
      slotSize: AUX_SLOT,
      offs: new Int32Array(n),
      lens: new Int32Array(n),
      count: 0,
      capacity: n,
    };
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
    aux.count = 0;
    c[I_READ_BATCHES]++;
    let m = 0;
    let rxBytes = 0;
    for (let i = 0; i < n; i++) {
      const len = rx.lens[i];
      rxBytes += len;
      const off = p.process(rx.buf, rx.offs[i], len, vnet, i * 12, aux);
      if (off < 0) continue;
      txOffs[m] = off;
      txLens[m] = p.outLen;
      if (vnetOn) for (let k = 0; k < 12; k++) txVnet[m * 12 + k] = vnet[i * 12 + k];
      m++;
    }
    c[C_RX_PACKETS] += n;
    c[C_RX_BYTES] += rxBytes;
    if (p.endBatch !== undefined) p.endBatch(Date.now());
    if (m > 0) this.send(rx.buf, txOffs, txLens, m, vnetOn ? txVnet : undefined);
    if (aux.count > 0) this.send(aux.buf, aux.offs, aux.lens, aux.count, undefined);
  }

  private send(buf: Uint8Array, offs: Int32Array, lens: Int32Array, count: number, vnet: Uint8Array | undefined): void {
    const written = this.dev.write(buf, offs, lens, count, vnet);
    const c = this.counters;
    let bytes = 0;
    for (let i = 0; i < count; i++) bytes += lens[i];
    const drops = this.dev.writeDrops - this.lastWriteDrops;
    this.lastWriteDrops = this.dev.writeDrops;
    c[C_TX_PACKETS] += written;
    c[C_TX_BYTES] += bytes;
    if (drops > 0) c[I_WRITE_ERROR] += drops;
  }
}

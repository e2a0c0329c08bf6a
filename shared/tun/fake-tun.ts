// FakeTun: an in-memory TunDevice for tests and engine logic without a kernel. Same slab geometry
// and call pattern as NativeTun: inject() queues a packet (copied) and signals readiness, read()
// copies queued packets into rx at the headroom offset, write() copies each written packet into
// `written` for inspection. Readiness is level-triggered like uv_poll: the callback fires again
// on a later macrotask while packets remain queued. Test-only code: allocation here is fine.
import {
  TunGoneError,
  VNET_HDR_LEN,
  allocRx,
  slabGeometry,
  type TunDevice,
  type TunQueueOptions,
  type TunRx,
} from './tun-device.js';

export interface FakeTunOptions extends TunQueueOptions {
  name?: string;
  /** Packets the fake kernel queue holds before inject() drops (like txqueuelen). */
  queueLimit?: number;
}

export interface FakeWritten {
  /** Copy of buf[off .. off + len). */
  data: Uint8Array;
  /** Copy of the packet's 12-byte vnet header, or null without vnetHdr. */
  vnet: Uint8Array | null;
}

export class FakeTun implements TunDevice {
  readonly name: string;
  readonly batchSize: number;
  readonly headroom: number;
  readonly slotSize: number;
  readonly vnetHdr: boolean;
  readonly offloads: number;
  readonly rx: TunRx;
  readonly queueLimit: number;
  /** Every packet written, in order. */
  readonly written: FakeWritten[] = [];
  /** Packet counts of every read() that returned > 0. */
  readonly readBatches: number[] = [];
  /** inject() calls refused because the queue was full. */
  injectDrops = 0;
  /** The next failWrites packets are refused by the "kernel" (counted in writeDrops). */
  failWrites = 0;
  private _writeDrops = 0;
  private _readDrops = 0;
  private readonly queue: { data: Uint8Array; vnet: Uint8Array | null }[] = [];
  private cb: (() => void) | null = null;
  private errCb: ((err: Error) => void) | null = null;
  private scheduled = false;
  private closed = false;
  private gone = false;

  constructor(o: FakeTunOptions = {}) {
    this.vnetHdr = o.vnetHdr ?? false;
    const g = slabGeometry(this.vnetHdr, o);
    this.name = o.name ?? 'faketun0';
    this.batchSize = g.batchSize;
    this.headroom = g.headroom;
    this.slotSize = g.slotSize;
    this.offloads = o.offloads ?? 0;
    this.queueLimit = o.queueLimit ?? 500;
    this.rx = allocRx(g, this.vnetHdr);
  }

  /** Queue a packet as if the kernel routed it into the device; false when the queue is full. */
  inject(packet: Uint8Array, vnet?: Uint8Array): boolean {
    if (this.closed || this.gone) return false;
    if (this.queue.length >= this.queueLimit) {
      this.injectDrops++;
      return false;
    }
    if (vnet !== undefined && vnet.length !== VNET_HDR_LEN) throw new RangeError(`vnet header must be ${VNET_HDR_LEN} bytes`);
    this.queue.push({ data: packet.slice(), vnet: this.vnetHdr ? (vnet ? vnet.slice() : new Uint8Array(VNET_HDR_LEN)) : null });
    this.schedule();
    return true;
  }

  /** Packets waiting to be read. */
  get pending(): number {
    return this.queue.length;
  }

  /** Remove and return everything written so far. */
  takeWritten(): FakeWritten[] {
    return this.written.splice(0, this.written.length);
  }

  /** Make the device vanish: reads/writes throw TunGoneError and onError fires once. */
  simulateGone(): void {
    if (this.gone || this.closed) return;
    this.gone = true;
    const e = this.errCb;
    this.cb = null;
    this.errCb = null;
    if (e) setImmediate(() => e(new Error('TUN poll error: device gone (fake)')));
  }

  read(): number {
    if (this.gone) throw new TunGoneError(77, 'read');
    if (this.closed) return 0;
    const rx = this.rx;
    const room = this.slotSize - this.headroom;
    let n = 0;
    while (n < this.batchSize && this.queue.length > 0) {
      const p = this.queue.shift()!;
      if (p.data.length > room) {
        this._readDrops++;
        continue;
      }
      const off = n * this.slotSize + this.headroom;
      rx.buf.set(p.data, off);
      rx.offs[n] = off;
      rx.lens[n] = p.data.length;
      if (p.vnet) rx.vnet.set(p.vnet, n * VNET_HDR_LEN);
      n++;
    }
    if (n > 0) this.readBatches.push(n);
    return n;
  }

  write(buf: Uint8Array, offs: Int32Array, lens: Int32Array, count: number, vnet?: Uint8Array): number {
    if (this.gone) throw new TunGoneError(77, 'write');
    if (this.closed) throw new Error(`write on closed TUN queue ${this.name}`);
    if (count < 0 || count > offs.length || count > lens.length) throw new TypeError('write: bad count');
    if (this.vnetHdr && (vnet === undefined || vnet.length < count * VNET_HDR_LEN)) {
      throw new RangeError('write: vnet-hdr queue needs count x 12 header bytes');
    }
    let done = 0;
    for (let i = 0; i < count; i++) {
      const off = offs[i];
      const len = lens[i];
      if (off < 0 || len <= 0 || off + len > buf.length || this.failWrites > 0) {
        if (this.failWrites > 0) this.failWrites--;
        this._writeDrops++;
        continue;
      }
      this.written.push({
        data: buf.slice(off, off + len),
        vnet: this.vnetHdr && vnet ? vnet.slice(i * VNET_HDR_LEN, (i + 1) * VNET_HDR_LEN) : null,
      });
      done++;
    }
    return done;
  }

  onReadable(cb: () => void, onError?: (err: Error) => void): void {
    if (this.closed) throw new Error(`onReadable on closed TUN queue ${this.name}`);
    this.cb = cb;
    this.errCb = onError ?? null;
    this.schedule();
  }

  get writeDrops(): number {
    return this._writeDrops;
  }

  get readDrops(): number {
    return this._readDrops;
  }

  close(): void {
    this.closed = true;
    this.cb = null;
    this.errCb = null;
    this.queue.length = 0;
  }

  private schedule(): void {
    if (this.scheduled || this.cb === null || this.queue.length === 0) return;
    this.scheduled = true;
    setImmediate(this.fire);
  }

  private readonly fire = (): void => {
    this.scheduled = false;
    const cb = this.cb;
    if (cb === null || this.queue.length === 0) return;
    cb();
    this.schedule(); // level-triggered: still readable -> another event
  };
}

// Echo forwarder: read a batch, swap source/destination addresses (and TCP/UDP ports) in place,
// write the batch back. Swapping keeps every checksum valid (the one's-complement sums are order
// independent, and a partial vnet checksum covers the same pseudo-header words), so the reply is
// a well-formed packet the sender's socket accepts. Used by tests and by bench/echo-bench.ts.
import type { TunDevice } from './tun-device.js';

const PROTO_TCP = 6;
const PROTO_UDP = 17;

function swapBytes(buf: Uint8Array, a: number, b: number, n: number): void {
  for (let k = 0; k < n; k++) {
    const t = buf[a + k];
    buf[a + k] = buf[b + k];
    buf[b + k] = t;
  }
}

/** Swap addresses and TCP/UDP ports of the IP packet at buf[off .. off+len); false if not IP. */
export function echoRewrite(buf: Uint8Array, off: number, len: number): boolean {
  if (len < 20) return false;
  const version = buf[off] >>> 4;
  if (version === 4) {
    const ihl = (buf[off] & 0x0f) * 4;
    if (ihl < 20 || len < ihl) return false;
    swapBytes(buf, off + 12, off + 16, 4);
    const proto = buf[off + 9];
    const fragOff = ((buf[off + 6] & 0x1f) << 8) | buf[off + 7];
    if ((proto === PROTO_TCP || proto === PROTO_UDP) && fragOff === 0 && len >= ihl + 4) swapBytes(buf, off + ihl, off + ihl + 2, 2);
    return true;
  }
  if (version === 6) {
    if (len < 40) return false;
    swapBytes(buf, off + 8, off + 24, 16);
    const next = buf[off + 6];
    if ((next === PROTO_TCP || next === PROTO_UDP) && len >= 44) swapBytes(buf, off + 40, off + 42, 2);
    return true;
  }
  return false;
}

export interface EchoForwarderOptions {
  /** Max batches handled per readiness event before yielding to the event loop. */
  budget?: number;
}

export class EchoForwarder {
  /** Packets read. */
  packets = 0;
  /** Packets the device accepted on write. */
  echoed = 0;
  /** read() calls that returned > 0. */
  batches = 0;
  maxBatch = 0;
  /** hist[k] = number of reads that returned k packets. */
  readonly hist: Uint32Array;
  /** Readiness callbacks. */
  wakeups = 0;
  /** Set when the device failed (poll error or TunGoneError); the forwarder has stopped. */
  error: Error | null = null;
  private readonly budget: number;

  constructor(
    readonly dev: TunDevice,
    o: EchoForwarderOptions = {},
  ) {
    this.budget = o.budget ?? 16;
    this.hist = new Uint32Array(dev.batchSize + 1);
  }

  start(): void {
    this.dev.onReadable(this.onReadable, this.onError);
  }

  /** Handle up to `budget` batches now; returns packets handled. */
  drain(): number {
    const dev = this.dev;
    const rx = dev.rx;
    let total = 0;
    for (let b = 0; b < this.budget; b++) {
      const n = dev.read();
      if (n === 0) break;
      this.batches++;
      this.hist[n]++;
      if (n > this.maxBatch) this.maxBatch = n;
      for (let i = 0; i < n; i++) echoRewrite(rx.buf, rx.offs[i], rx.lens[i]);
      this.echoed += dev.vnetHdr ? dev.write(rx.buf, rx.offs, rx.lens, n, rx.vnet) : dev.write(rx.buf, rx.offs, rx.lens, n);
      total += n;
    }
    this.packets += total;
    return total;
  }

  // Bound once: the readiness path creates no closures per event.
  private readonly onReadable = (): void => {
    this.wakeups++;
    try {
      this.drain();
    } catch (e) {
      this.onError(e as Error);
    }
  };

  private readonly onError = (err: Error): void => {
    this.error = err;
    this.dev.close();
  };
}

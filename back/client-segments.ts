// The back's memory of LBSP client segments (SPEC section 4: "keeping the client segment from the
// request direction when known"). A request that reaches the back carrying an LBSP option with a
// non-zero client segment records it under its flow (client address and port, service S and port,
// protocol); the server's return packets of that flow look it up, so the option the back inserts
// carries the client's own segment back to it. Bounded and allocation-free: a direct-mapped array
// of `size` entries over typed arrays, a newer flow taking the place of an older one on a collision
// (the older flow's replies then go unstamped with `stamp: true`, or, with `always`, carry an
// all-zero client segment, which a front reads as "not filled in" and falls back to the source
// address). One per worker.

import { fmix32Half, mixWords } from '../shared/packet/hash32.js';

const KW = 10; // proto, S x4, client x4, ports

export class ClientSegments {
  readonly size: number;
  private readonly keys: Uint32Array;
  private readonly used: Uint8Array;
  private readonly segs: Uint32Array;
  private readonly k = new Uint32Array(KW);
  private readonly seed: number;

  constructor(size = 8192, seed: number = (Math.random() * 0x100000000) >>> 0) {
    if (!Number.isInteger(size) || size < 1) throw new Error(`client segment cache size must be a positive integer, got ${size}`);
    this.size = size;
    this.keys = new Uint32Array(size * KW);
    this.used = new Uint8Array(size);
    this.segs = new Uint32Array(size * 4);
    this.seed = seed | 0;
  }

  private slotOf(proto: number, service: Uint32Array, client: Uint32Array, servicePort: number, clientPort: number): number {
    const k = this.k;
    k[0] = proto;
    k[1] = service[0]!; k[2] = service[1]!; k[3] = service[2]!; k[4] = service[3]!;
    k[5] = client[0]!; k[6] = client[1]!; k[7] = client[2]!; k[8] = client[3]!;
    k[9] = ((servicePort << 16) | clientPort) >>> 0;
    return fmix32Half(mixWords(this.seed, k, KW)) % this.size;
  }

  /** Request direction (client -> S): remember the client segment of this flow. */
  record(proto: number, client: Uint32Array, clientPort: number, service: Uint32Array, servicePort: number, seg: Uint32Array): void {
    const i = this.slotOf(proto, service, client, servicePort, clientPort);
    this.keys.set(this.k, i * KW);
    this.used[i] = 1;
    const b = i * 4;
    this.segs[b] = seg[0]!; this.segs[b + 1] = seg[1]!; this.segs[b + 2] = seg[2]!; this.segs[b + 3] = seg[3]!;
  }

  /** Return direction (S -> client): copy the flow's client segment into out; false when unknown. */
  find(proto: number, service: Uint32Array, servicePort: number, client: Uint32Array, clientPort: number, out: Uint32Array): boolean {
    const i = this.slotOf(proto, service, client, servicePort, clientPort);
    if (this.used[i] === 0) return false;
    const k = this.k, ks = this.keys, b = i * KW;
    for (let w = 0; w < KW; w++) if (ks[b + w] !== k[w]) return false;
    const s = i * 4;
    out[0] = this.segs[s]!; out[1] = this.segs[s + 1]!; out[2] = this.segs[s + 2]!; out[3] = this.segs[s + 3]!;
    return true;
  }
}

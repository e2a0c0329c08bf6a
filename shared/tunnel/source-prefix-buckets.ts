// Token buckets per source prefix for the ICMP errors a service originates (SPEC 3 "Tunnel MTU": a
// global budget, and a smaller one per source prefix so that one sender cannot use up everyone's
// errors). The prefix is the one an error goes back to: /24 for IPv4, /48 for IPv6 (an end site's
// usual allocation: a sender rotating addresses inside its site stays in one bucket; /64 would give
// a single host 65,536 buckets). Bounded memory and no allocation: a fixed table of PREFIX_BUCKETS
// buckets indexed by a keyed hash of the prefix, no keys stored. Two prefixes that share a bucket
// share its budget; the per-worker random seed keeps a sender from choosing a victim's bucket
// (the chance that a given other prefix shares the flooder's is 1 / PREFIX_BUCKETS).
import { fmix32, mix32 } from '../packet/hash32.js';

export const PREFIX_BUCKETS = 4096;

export class SourcePrefixBuckets {
  /** Tokens in thousandths per bucket (as TokenBucket), and the time of its last refill. */
  private readonly milli = new Float64Array(PREFIX_BUCKETS);
  private readonly last = new Float64Array(PREFIX_BUCKETS);
  private readonly maxMilli: number;
  private lastIdx = -1;

  constructor(
    readonly ratePerSecond: number,
    readonly burst: number,
    nowMs: number,
    private readonly seed: number = (Math.random() * 0x100000000) | 0,
  ) {
    if (!(ratePerSecond >= 0) || !(burst >= 0)) throw new RangeError(`per-source bucket rate ${ratePerSecond} / burst ${burst}: must be >= 0`);
    this.maxMilli = burst * 1000;
    this.milli.fill(this.maxMilli);
    this.last.fill(nowMs);
  }

  /** Bucket of the prefix of `src` (family fam; IPv4 in word 0). */
  indexOf(fam: number, src: Uint32Array): number {
    const h = fam === 4 ? mix32(this.seed ^ 4, src[0]! & 0xffffff00) : mix32(mix32(this.seed ^ 6, src[0]!), src[1]! & 0xffff0000);
    return fmix32(h) & (PREFIX_BUCKETS - 1);
  }

  /** Take one token from the bucket of src's prefix if it has one. */
  take(fam: number, src: Uint32Array, nowMs: number): boolean {
    const i = this.indexOf(fam, src);
    const dt = nowMs - this.last[i]!;
    if (dt > 0) {
      this.last[i] = nowMs;
      const t = this.milli[i]! + dt * this.ratePerSecond;
      this.milli[i] = t > this.maxMilli ? this.maxMilli : t;
    }
    if (this.milli[i]! < 1000) return false;
    this.milli[i] = this.milli[i]! - 1000;
    this.lastIdx = i;
    return true;
  }

  /** Give back the token the last successful take() spent (the global budget said no). */
  refund(): void {
    const i = this.lastIdx;
    if (i < 0) return;
    const t = this.milli[i]! + 1000;
    this.milli[i] = t > this.maxMilli ? this.maxMilli : t;
    this.lastIdx = -1;
  }
}

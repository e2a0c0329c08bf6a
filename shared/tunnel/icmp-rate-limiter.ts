// Token bucket for the ICMP errors a service originates (RFC 4443 section 2.4(f), RFC 1812 4.3.2.8:
// an error generator must be rate-limited, or a flood of oversized packets becomes a flood of
// errors). One bucket per worker: the service divides the configured rate and burst between its
// workers, so the host as a whole stays within the configured figures. Allocation free; the clock
// is passed in (milliseconds), so tests drive it without timers.

export class TokenBucket {
  /** Tokens in thousandths: refilling by (ms elapsed x rate per second) stays exact for integer rates. */
  private milli: number;
  private last: number;
  private readonly maxMilli: number;

  /**
   * ratePerSecond: tokens added per second (0: never any token after the initial burst is spent
   * — and with burst 0 nothing is ever sent). burst: bucket size, also the initial fill.
   */
  constructor(
    readonly ratePerSecond: number,
    readonly burst: number,
    nowMs: number,
  ) {
    if (!(ratePerSecond >= 0) || !(burst >= 0)) throw new RangeError(`token bucket rate ${ratePerSecond} / burst ${burst}: must be >= 0`);
    this.maxMilli = burst * 1000;
    this.milli = this.maxMilli;
    this.last = nowMs;
  }

  /** Tokens available now (fractional), after refilling up to nowMs. */
  available(nowMs: number): number {
    this.refill(nowMs);
    return this.milli / 1000;
  }

  /** Take one token if there is one. */
  take(nowMs: number): boolean {
    this.refill(nowMs);
    if (this.milli < 1000) return false;
    this.milli -= 1000;
    return true;
  }

  private refill(nowMs: number): void {
    const dt = nowMs - this.last;
    if (dt <= 0) return; // a clock that steps back never adds tokens
    this.last = nowMs;
    const t = this.milli + dt * this.ratePerSecond;
    this.milli = t > this.maxMilli ? this.maxMilli : t;
  }
}

/**
 * One worker's share of a service-wide rate and burst over `workers` workers: the rate is split
 * evenly; the burst too, but every worker keeps at least one token of burst when the total is not
 * zero (a burst smaller than the worker count would otherwise leave some workers mute).
 */
export function workerShare(ratePerSecond: number, burst: number, workers: number): { ratePerSecond: number; burst: number } {
  const w = workers >= 1 ? workers : 1;
  const b = burst / w;
  return { ratePerSecond: ratePerSecond / w, burst: burst > 0 && b < 1 ? 1 : b };
}

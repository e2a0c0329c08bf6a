// The front's path MTU toward each back, per outer family (SPEC 3 "Tunnel MTU", 6a `encap.mtu`).
// Two layers, in SharedArrayBuffers shared by the main thread and every worker:
//   base    — set by the main thread at start-up and on every table reload: `encap.mtu` when it is
//             configured, else the MTU of the route toward the back's address (rtnetlink);
//   learned — lowered by a worker when an ICMP Packet Too Big / Fragmentation Needed from the fabric
//             quotes one of our tunnel packets toward that back; it can only lower the base, and
//             ages out (RFC 8201 section 4 / RFC 1191 section 6.3: 10 minutes by default), after
//             which the base applies again.
// Indexed by the back's stable slot (kept per name across reloads) and the outer family. A worker
// reading an entry another worker is writing sees the old or the new value of each field; a torn
// pair (new MTU, old expiry) at worst keeps or drops a learned value one expiry early — harmless.
import { MAX_BACKEND_SLOTS } from '../metrics/counter-layout.js';

/** Learned path MTUs age out after this long (RFC 1191 / RFC 8201 suggest 10 minutes). */
export const PMTU_TIMEOUT_MS = 10 * 60 * 1000;
/** No outer IPv6 path is smaller (RFC 8200 section 5); a PTB below it is taken as 1280. */
export const MIN_PMTU6 = 1280;
/** Floor for learned IPv4 path MTUs (Linux min_pmtu): a forged tiny MTU cannot force tiny packets. */
export const MIN_PMTU4 = 552;

/** RFC 1191 section 7 plateau table, for Fragmentation Needed without a next-hop MTU (old routers). */
const PLATEAUS = [65535, 32000, 17914, 8166, 4352, 2002, 1492, 1006, 508, 296, 68];

/** Largest plateau below `len` (the size of the packet a router refused). */
export function plateauBelow(len: number): number {
  for (let i = 0; i < PLATEAUS.length; i++) if (PLATEAUS[i] < len) return PLATEAUS[i];
  return 68;
}

export interface PmtuShared {
  base: Uint16Array;
  learned: Uint16Array;
  expires: Float64Array;
  fallback: number;
}

function famIndex(slot: number, fam: number): number {
  return slot * 2 + (fam === 6 ? 1 : 0);
}

export class PmtuCache {
  private constructor(
    private readonly base: Uint16Array,
    private readonly learned: Uint16Array,
    private readonly expires: Float64Array,
    /** Path MTU used while the base of a back is not known yet (0). */
    readonly fallback: number,
  ) {}

  /** A new cache over fresh shared memory (main thread). */
  static create(fallback: number, slots = MAX_BACKEND_SLOTS): PmtuCache {
    const n = slots * 2;
    return new PmtuCache(
      new Uint16Array(new SharedArrayBuffer(n * 2)),
      new Uint16Array(new SharedArrayBuffer(n * 2)),
      new Float64Array(new SharedArrayBuffer(n * 8)),
      fallback,
    );
  }

  /** The same cache in a worker (structured clone of toShared() shares the memory). */
  static fromShared(s: PmtuShared): PmtuCache {
    return new PmtuCache(s.base, s.learned, s.expires, s.fallback);
  }

  toShared(): PmtuShared {
    return { base: this.base, learned: this.learned, expires: this.expires, fallback: this.fallback };
  }

  get slots(): number {
    return this.base.length >> 1;
  }

  /** Main thread: the path MTU from config or the route toward the back (0 = unknown). */
  setBase(slot: number, fam: number, mtu: number): void {
    if (slot < 0 || slot >= this.slots) return;
    this.base[famIndex(slot, fam)] = mtu > 65535 ? 65535 : mtu < 0 ? 0 : mtu;
  }

  getBase(slot: number, fam: number): number {
    const b = this.base[famIndex(slot, fam)];
    return b !== 0 ? b : this.fallback;
  }

  /** Path MTU toward the back now: the base, or the learned value below it while it has not expired. */
  get(slot: number, fam: number, nowMs: number): number {
    const i = famIndex(slot, fam);
    const b = this.base[i] !== 0 ? this.base[i] : this.fallback;
    const l = this.learned[i];
    if (l === 0) return b;
    if (this.expires[i] <= nowMs) {
      this.learned[i] = 0; // aged out: the base applies again
      return b;
    }
    return l < b ? l : b;
  }

  /**
   * An ICMP error reported `mtu` on the path toward this back: clamp it to the family's floor and
   * keep it when it is lower than what is in force. Returns the path MTU in force afterwards when
   * it went down, else 0 (nothing learned: not lower, or not a number).
   */
  lower(slot: number, fam: number, mtu: number, nowMs: number): number {
    if (slot < 0 || slot >= this.slots || !(mtu > 0)) return 0;
    const floor = fam === 6 ? MIN_PMTU6 : MIN_PMTU4;
    const m = mtu < floor ? floor : mtu;
    const cur = this.get(slot, fam, nowMs);
    if (m >= cur) return 0;
    const i = famIndex(slot, fam);
    this.learned[i] = m;
    this.expires[i] = nowMs + PMTU_TIMEOUT_MS;
    return m;
  }

  /** The learned value and its expiry (0 when none), for /table and tests. */
  learnedOf(slot: number, fam: number, nowMs: number): { mtu: number; expiresInMs: number } {
    const i = famIndex(slot, fam);
    const l = this.learned[i];
    if (l === 0 || this.expires[i] <= nowMs) return { mtu: 0, expiresInMs: 0 };
    return { mtu: l, expiresInMs: this.expires[i] - nowMs };
  }
}

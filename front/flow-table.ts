// The front's flow table (SPEC section 2, step 5): pins a flow to the back its first packet was
// sent to. One per worker, bounded and allocation-free:
// - set-associative open addressing over typed arrays: an entry lives in one bucket of WAYS slots
//   chosen by a seeded hash of its key; lookups compare a 32-bit hash first, then the key words;
// - LRU per bucket: every entry carries its last-seen time; a full bucket evicts its least
//   recently seen entry (bounded memory: capacity = buckets * ways, at most size + ways - 1);
// - idle timeouts per entry (set by the caller per protocol, shortened on TCP FIN/RST); an expired
//   entry is reclaimed when found, when its bucket needs room, or by the incremental sweep().
// - admission (a spoofed flood inserts one entry per packet): an entry starts probationary and is
//   confirmed by the caller when its flow shows a second packet (confirm()). A new entry that needs
//   room evicts the bucket's least recently seen probationary entry; a confirmed one only when it
//   has been idle longer than CONFIRMED_PROTECT_MS; otherwise the insert is refused (counted) and
//   the flow goes unpinned, decided afresh per packet. So one-packet flows churn among themselves.
// Keys are words: [kind|family|proto, src x4, dst x4, ports] where ports = sport << 16 | dport for
// a flow, or the fragment Identification for a datagram's non-first fragments (kind FRAGMENT).
// Values: back index, stable backend slot, table generation the index belongs to.

import { fmix32, mixWords } from '../shared/packet/hash32.js';

export const KEY_WORDS = 10;
export const KIND_FLOW = 0;
export const KIND_FRAGMENT = 1;
/** Entry flag: a FIN or RST was seen (timeout shortened; a new SYN replaces the entry). */
export const FLAG_CLOSING = 1;
/** Entry flag: the flow was seen again after its first packet (admission: protected from newcomers). */
export const FLAG_CONFIRMED = 2;
/** A confirmed entry idle longer than this may make room for a new flow (LRU again among them). */
export const CONFIRMED_PROTECT_MS = 10_000;
const MAX_WAYS = 8;

export class FlowTable {
  readonly size: number;
  readonly ways: number;
  readonly buckets: number;
  readonly capacity: number;
  /** Scratch key for find()/insert(): fill it with setFlowKey()/setFragmentKey(). */
  readonly key = new Uint32Array(KEY_WORDS);
  private keyHash = 0;
  private readonly seed: number;
  private readonly keys: Uint32Array;
  private readonly hashes: Uint32Array;
  private readonly used: Uint8Array;
  readonly flags: Uint8Array;
  readonly back: Int32Array;
  readonly slot: Int32Array;
  readonly gen: Uint32Array;
  /**
   * A number the caller keeps per entry, 0 when the entry is inserted or re-pinned (the front: the
   * sent-flow stamp of the flow's last tunnel packet, so the keyed record is not hashed per packet).
   */
  readonly tag: Float64Array;
  private readonly lastSeen: Float64Array;
  private readonly timeout: Float64Array;
  /** Entries in use. */
  count = 0;
  /**
   * Flows (not fragment pins) per backend slot, kept on insert, re-pin and removal; may be a view
   * into the worker's shared counter block, so the gauge costs no copy. Slots beyond it: not counted.
   */
  readonly slotFlows: Float64Array;
  /** Monotonic totals, read by the caller to bump its counters. */
  inserts = 0;
  /** Entries removed for room (LRU) or because they had expired. */
  evictions = 0;
  /** Inserts refused: the bucket held only confirmed entries seen within CONFIRMED_PROTECT_MS. */
  refused = 0;
  private sweepAt = 0;

  /** `size`: entries wanted (>= 1); `seed`: hash seed (random per worker by default). */
  constructor(size: number, seed: number = (Math.random() * 0x100000000) >>> 0, slotFlows: Float64Array = new Float64Array(1024)) {
    this.slotFlows = slotFlows;
    if (!Number.isInteger(size) || size < 1) throw new Error(`flow table size must be a positive integer, got ${size}`);
    this.size = size;
    this.ways = Math.min(MAX_WAYS, size);
    this.buckets = Math.ceil(size / this.ways);
    this.capacity = this.buckets * this.ways;
    this.seed = seed | 0;
    const n = this.capacity;
    this.keys = new Uint32Array(n * KEY_WORDS);
    this.hashes = new Uint32Array(n);
    this.used = new Uint8Array(n);
    this.flags = new Uint8Array(n);
    this.back = new Int32Array(n);
    this.slot = new Int32Array(n);
    this.gen = new Uint32Array(n);
    this.tag = new Float64Array(n);
    this.lastSeen = new Float64Array(n);
    this.timeout = new Float64Array(n);
  }

  /** Key of a flow: addresses (IPv4 in word 0), protocol, ports (0 when the protocol has none). */
  setFlowKey(family: number, proto: number, src: Uint32Array, dst: Uint32Array, srcPort: number, dstPort: number): void {
    this.fill(KIND_FLOW, family, proto, src, dst, ((srcPort << 16) | dstPort) >>> 0);
  }

  /** Key of a fragmented datagram: (src, dst, protocol, Identification). */
  setFragmentKey(family: number, proto: number, src: Uint32Array, dst: Uint32Array, fragId: number): void {
    this.fill(KIND_FRAGMENT, family, proto, src, dst, fragId >>> 0);
  }

  private fill(kind: number, family: number, proto: number, src: Uint32Array, dst: Uint32Array, ports: number): void {
    const k = this.key;
    k[0] = (kind << 16) | (family << 8) | proto;
    k[1] = src[0]!; k[2] = src[1]!; k[3] = src[2]!; k[4] = src[3]!;
    k[5] = dst[0]!; k[6] = dst[1]!; k[7] = dst[2]!; k[8] = dst[3]!;
    k[9] = ports;
    this.keyHash = fmix32(mixWords(this.seed, k, KEY_WORDS) ^ KEY_WORDS);
  }

  private bucketOf(h: number): number {
    // h >>> 1 fits a small integer: an int32 modulo instead of a floating-point one (4x faster)
    return ((h >>> 1) % this.buckets) * this.ways;
  }

  private sameKey(i: number): boolean {
    const k = this.key, ks = this.keys, b = i * KEY_WORDS;
    for (let w = 0; w < KEY_WORDS; w++) if (ks[b + w] !== k[w]) return false;
    return true;
  }

  private expired(i: number, now: number): boolean {
    return now - this.lastSeen[i]! > this.timeout[i]!;
  }

  /**
   * Entry of the scratch key, or -1. A live entry's last-seen time becomes `now`; an expired one
   * is removed (counted as an eviction) and reported as absent.
   */
  find(now: number): number {
    const h = this.keyHash;
    const start = this.bucketOf(h);
    for (let j = 0; j < this.ways; j++) {
      const i = start + j;
      if (this.used[i] === 0 || this.hashes[i] !== h || !this.sameKey(i)) continue;
      if (this.expired(i, now)) {
        this.drop(i);
        this.evictions++;
        return -1;
      }
      this.lastSeen[i] = now;
      return i;
    }
    return -1;
  }

  /**
   * Insert the scratch key (the caller checked with find() that it is absent), probationary. Takes
   * a free way of its bucket, else an expired one, else evicts the least recently seen probationary
   * entry, else the least recently seen confirmed one if idle longer than CONFIRMED_PROTECT_MS.
   * Returns the entry, or -1 when refused (counted in `refused`).
   */
  insert(now: number, back: number, slot: number, gen: number, timeoutMs: number): number {
    const h = this.keyHash;
    const start = this.bucketOf(h);
    let victim = -1;
    let oldest = Infinity;
    let victimC = -1;
    let oldestC = Infinity;
    let free = -1;
    for (let j = 0; j < this.ways; j++) {
      const i = start + j;
      if (this.used[i] === 0) { free = i; break; }
      if (this.expired(i, now)) { free = i; this.drop(i); this.evictions++; break; }
      const t = this.lastSeen[i]!;
      if ((this.flags[i]! & FLAG_CONFIRMED) === 0) {
        if (t < oldest) { oldest = t; victim = i; }
      } else if (t < oldestC) { oldestC = t; victimC = i; }
    }
    let i = free;
    if (i < 0) {
      i = victim >= 0 ? victim : victimC >= 0 && now - oldestC > CONFIRMED_PROTECT_MS ? victimC : -1;
      if (i < 0) {
        this.refused++;
        return -1;
      }
      this.drop(i);
      this.evictions++;
    }
    this.keys.set(this.key, i * KEY_WORDS);
    if (this.key[0]! >>> 16 === KIND_FLOW && slot >= 0 && slot < this.slotFlows.length) this.slotFlows[slot]++;
    this.hashes[i] = h;
    this.used[i] = 1;
    this.flags[i] = 0;
    this.back[i] = back;
    this.slot[i] = slot;
    this.gen[i] = gen;
    this.tag[i] = 0;
    this.lastSeen[i] = now;
    this.timeout[i] = timeoutMs;
    this.count++;
    this.inserts++;
    return i;
  }

  /** Shorten an entry's idle timeout (never lengthens) and mark it closing. */
  markClosing(i: number, timeoutMs: number): void {
    if (timeoutMs < this.timeout[i]!) this.timeout[i] = timeoutMs;
    this.flags[i] |= FLAG_CLOSING;
  }

  /** The entry's flow showed a second packet: protect it from newcomers (see the header). */
  confirm(i: number): void {
    this.flags[i] |= FLAG_CONFIRMED;
  }

  isConfirmed(i: number): boolean {
    return (this.flags[i]! & FLAG_CONFIRMED) !== 0;
  }

  isClosing(i: number): boolean {
    return (this.flags[i]! & FLAG_CLOSING) !== 0;
  }

  /** Remove an entry (released: its back went down, no longer exists, or a new SYN replaces it). */
  remove(i: number): void {
    if (this.used[i] !== 0) this.drop(i);
  }

  private drop(i: number): void {
    this.used[i] = 0;
    this.count--;
    const s = this.slot[i]!;
    if (this.keys[i * KEY_WORDS]! >>> 16 === KIND_FLOW && s >= 0 && s < this.slotFlows.length) this.slotFlows[s]--;
  }

  /** Point entry i at another back (same key): keeps the per-slot flow counts right. */
  repin(i: number, back: number, slot: number, gen: number): void {
    const old = this.slot[i]!;
    if (old !== slot && this.keys[i * KEY_WORDS]! >>> 16 === KIND_FLOW) {
      if (old >= 0 && old < this.slotFlows.length) this.slotFlows[old]--;
      if (slot >= 0 && slot < this.slotFlows.length) this.slotFlows[slot]++;
    }
    this.back[i] = back; this.slot[i] = slot; this.gen[i] = gen; this.tag[i] = 0;
  }

  /**
   * Reclaim expired entries in the next `maxBuckets` buckets (round robin), so memory held by idle
   * flows and the size gauge follow the timeouts without a full scan. Returns entries removed.
   */
  sweep(now: number, maxBuckets: number): number {
    let removed = 0;
    const n = Math.min(maxBuckets, this.buckets);
    for (let b = 0; b < n; b++) {
      const start = this.sweepAt * this.ways;
      for (let j = 0; j < this.ways; j++) {
        const i = start + j;
        if (this.used[i] !== 0 && this.expired(i, now)) {
          this.drop(i);
          this.evictions++;
          removed++;
        }
      }
      this.sweepAt = this.sweepAt + 1 === this.buckets ? 0 : this.sweepAt + 1;
    }
    return removed;
  }

  /**
   * Read-only scan (GET /flows, /lookup): live entries whose slot is `slot` (-1: any) and whose key
   * words equal `want` where `mask` is set; the first `limit` indices go to `out`. Returns how many
   * matched. One pass over the typed arrays, no call per entry.
   */
  match(now: number, slot: number, want: Uint32Array, mask: Uint32Array, limit: number, out: number[]): number {
    const used = this.used, slots = this.slot, keys = this.keys, seen = this.lastSeen, tmo = this.timeout;
    const words: number[] = [];
    for (let w = 0; w < KEY_WORDS; w++) if (mask[w] !== 0) words.push(w);
    const nw = words.length;
    let matched = 0;
    next: for (let i = 0; i < this.capacity; i++) {
      if (used[i] === 0 || (slot >= 0 && slots[i] !== slot)) continue;
      const b = i * KEY_WORDS;
      for (let j = 0; j < nw; j++) {
        const w = words[j]!;
        if (((keys[b + w]! ^ want[w]!) & mask[w]!) !== 0) continue next;
      }
      if (now - seen[i]! > tmo[i]!) continue;
      if (matched++ < limit) out.push(i);
    }
    return matched;
  }

  /** Key word w of entry i (see the key layout at the top). */
  keyWord(i: number, w: number): number {
    return this.keys[i * KEY_WORDS + w]!;
  }

  /** Milliseconds since entry i last saw a packet, and until it expires. */
  idleMs(i: number, now: number): number {
    return now - this.lastSeen[i]!;
  }

  timeoutMs(i: number): number {
    return this.timeout[i]!;
  }

  /** Drop every entry (not counted as evictions). */
  clear(): void {
    this.used.fill(0);
    this.count = 0;
    this.slotFlows.fill(0);
  }
}

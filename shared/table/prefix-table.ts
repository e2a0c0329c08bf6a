// Longest-prefix match for IPv4 and IPv6 source keys (the front's source-prefix table).
//
// Design: overlapping prefixes are flattened at build time into disjoint address ranges, each
// carrying the value of the longest prefix covering it (at most 2n+1 ranges for n prefixes).
// A lookup is then "last range start <= key": a 65536-entry index on the key's top 16 bits
// narrows the binary search to one bucket; a bucket holding many ranges (routes clustered under one
// prefix, e.g. a /32 of IPv6 customers) gets its own index block on the next 16 bits, and so on
// (at most MAX_BLOCKS blocks per family), so the final binary search stays short. A small table
// (both families at most SMALL_UP_TO ranges: no bucket could need a block of its own) indexes only
// the top 12 bits: a 32 KiB block per family instead of 512 KiB, which would be garbage at every
// reload. Its lookups are the same code with the other shift as a constant (SmallPrefixTable; 12
// bits, not 8: as fast as the full index for such tables). Everything lives in typed arrays over
// SharedArrayBuffers so a compiled table is posted to workers without a copy, and lookups allocate
// nothing. A rebuild may reuse a previous table's arrays (`reuse`): equal ranges are taken whole,
// equal starts keep their index, so an edit that only moves prefixes between targets leaves no
// index behind. A trie (stride 8/16) was rejected: at a million random IPv6 prefixes its node pools
// need gigabytes, while ranges need ~40 bytes per route.

import type { Family } from './addr.js';
import { wordMask } from './addr.js';

const BUCKETS = 65536;
/** One index block: per 16-bit digit [range containing the digit's first key, child block + 1 or 0], then the block's last range. */
const BLOCK = 2 * BUCKETS + 1;
/** A digit spanning more ranges than this gets an index block for the next 16 bits. */
const SPLIT_ABOVE = 32;
/** Index blocks per family at most (512 KiB each); beyond, the binary search just runs longer. */
const MAX_BLOCKS = 64;
/** Families of at most this many ranges get the small index (no bucket can hold more than SPLIT_ABOVE). */
const SMALL_UP_TO = SPLIT_ABOVE;
/** The small index: one block on the top SMALL_BITS bits, laid out like a level-0 block. */
const SMALL_BITS = 12;
const SMALL_BUCKETS = 1 << SMALL_BITS;
/** key >>> shift = the top-level digit. */
const FULL_SHIFT = 16;
const SMALL_SHIFT = 32 - SMALL_BITS;

export interface IndexOptions {
  splitAbove?: number;
  maxBlocks?: number;
  /** Ranges up to which both families get the small index (default SMALL_UP_TO; 0: the full index always). */
  smallUpTo?: number;
}

export interface BuildOptions extends IndexOptions {
  /** A previous table whose arrays are reused where the new ones would be equal (see top). */
  reuse?: PrefixTable;
}

/** One family's flattened ranges. `starts` has W words per range (W = 1 for IPv4, 4 for IPv6). */
export interface RangeSetShared {
  starts: Uint32Array;
  values: Int32Array;
  index: Uint32Array; // index blocks of BLOCK entries (see buildIndex), block 0 on the top 16 bits; or the small index
  topShift: number; // key >>> topShift = the top-level digit: FULL_SHIFT or SMALL_SHIFT (small index)
  routes: number; // prefixes that went in (for metrics)
}

export interface PrefixTableShared {
  v4: RangeSetShared;
  v6: RangeSetShared;
}

function sharedU32(n: number): Uint32Array {
  return new Uint32Array(new SharedArrayBuffer(Math.max(1, n) * 4));
}
function sharedI32(n: number): Int32Array {
  return new Int32Array(new SharedArrayBuffer(Math.max(1, n) * 4));
}

/** Collects routes, then builds an immutable PrefixTable. Later duplicates of a prefix win. */
export class PrefixTableBuilder {
  private w4 = new Uint32Array(1024);
  private l4 = new Uint8Array(1024);
  private v4 = new Int32Array(1024);
  private n4 = 0;
  private w6 = new Uint32Array(4096);
  private l6 = new Uint8Array(1024);
  private v6 = new Int32Array(1024);
  private n6 = 0;

  get size4(): number { return this.n4; }
  get size6(): number { return this.n6; }

  /** Add an IPv4 prefix (host bits are ignored). value >= 0. */
  addV4(addr: number, len: number, value: number): void {
    if (this.n4 === this.l4.length) {
      const c = this.l4.length * 2;
      this.w4 = grow32(this.w4, c);
      this.l4 = grow8(this.l4, c);
      this.v4 = growI32(this.v4, c);
    }
    const i = this.n4++;
    this.w4[i] = (addr & wordMask(len)) >>> 0;
    this.l4[i] = len;
    this.v4[i] = value;
  }

  /** Add an IPv6 prefix given as four words (host bits are ignored). value >= 0. */
  addV6(w0: number, w1: number, w2: number, w3: number, len: number, value: number): void {
    if (this.n6 === this.l6.length) {
      const c = this.l6.length * 2;
      this.w6 = grow32(this.w6, c * 4);
      this.l6 = grow8(this.l6, c);
      this.v6 = growI32(this.v6, c);
    }
    const i = this.n6++;
    this.w6[i * 4] = (w0 & wordMask(len)) >>> 0;
    this.w6[i * 4 + 1] = (w1 & wordMask(len - 32)) >>> 0;
    this.w6[i * 4 + 2] = (w2 & wordMask(len - 64)) >>> 0;
    this.w6[i * 4 + 3] = (w3 & wordMask(len - 96)) >>> 0;
    this.l6[i] = len;
    this.v6[i] = value;
  }

  add(family: Family, words: ArrayLike<number>, len: number, value: number): void {
    if (family === 4) this.addV4(words[0]!, len, value);
    else this.addV6(words[0]!, words[1]!, words[2]!, words[3]!, len, value);
  }

  /** Build the immutable table; `o` tunes the index (tests force deep or full indexes) and names a table to reuse. */
  build(o: BuildOptions = {}): PrefixTable {
    const r4 = flatten(this.w4, this.l4, this.v4, this.n4, 1);
    const r6 = flatten(this.w6, this.l6, this.v6, this.n6, 4);
    const upTo = o.smallUpTo ?? SMALL_UP_TO;
    const shift = r4.m <= upTo && r6.m <= upTo ? SMALL_SHIFT : FULL_SHIFT;
    return PrefixTable.fromShared({ v4: shareRanges(r4, shift, o, o.reuse?.v4), v6: shareRanges(r6, shift, o, o.reuse?.v6) });
  }
}

function grow32(a: Uint32Array, n: number): Uint32Array<ArrayBuffer> { const b = new Uint32Array(n); b.set(a); return b; }
function grow8(a: Uint8Array, n: number): Uint8Array<ArrayBuffer> { const b = new Uint8Array(n); b.set(a); return b; }
function growI32(a: Int32Array, n: number): Int32Array<ArrayBuffer> { const b = new Int32Array(n); b.set(a); return b; }

/** True when typed array `a` holds exactly the first `len` elements of `b`. */
function sameHead(a: ArrayLike<number>, b: ArrayLike<number>, len: number): boolean {
  if (a.length !== len) return false;
  for (let i = 0; i < len; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** One family's ranges before they go to shared memory: m ranges, starts (W words each) and values. */
interface Ranges {
  starts: Uint32Array;
  values: Int32Array;
  m: number;
  W: number;
  routes: number;
}

/** Sweep sorted prefixes into disjoint ranges (W words per address). */
function flatten(words: Uint32Array, lens: Uint8Array, vals: Int32Array, n: number, W: number): Ranges {
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  // Start ascending, then shorter (enclosing) first, then insertion order (later duplicate wins).
  order.sort((a, b) => {
    for (let k = 0; k < W; k++) {
      const x = words[a * W + k]!, y = words[b * W + k]!;
      if (x !== y) return x < y ? -1 : 1;
    }
    if (lens[a] !== lens[b]) return lens[a]! - lens[b]!;
    return a - b;
  });

  const cap = 2 * n + 2;
  const outS = new Uint32Array(cap * W);
  const outV = new Int32Array(cap);
  let m = 0;
  const pos = new Uint32Array(W);
  const emit = (val: number): void => {
    // Emit a range starting at `pos` with `val`; merge with an equal start or equal neighbour.
    if (m > 0) {
      let same = true;
      for (let k = 0; k < W; k++) if (outS[(m - 1) * W + k] !== pos[k]) { same = false; break; }
      if (same) {
        outV[m - 1] = val;
        if (m > 1 && outV[m - 2] === val) m--;
        return;
      }
      if (outV[m - 1] === val) return;
    }
    for (let k = 0; k < W; k++) outS[m * W + k] = pos[k]!;
    outV[m++] = val;
  };
  const bitsW = 32 * W;
  // Last address of prefix i, word k.
  const endWord = (i: number, k: number): number => (words[i * W + k]! | ~wordMask(lens[i]! - 32 * k)) >>> 0;
  // Set pos = end(i) + 1; returns false when end(i) is the last address of the space.
  const setPosAfter = (i: number): boolean => {
    let carry = 1;
    for (let k = W - 1; k >= 0; k--) {
      const s = endWord(i, k) + carry;
      pos[k] = s >>> 0;
      carry = s > 0xffffffff ? 1 : 0;
    }
    return carry === 0;
  };
  const endBeforeStart = (i: number, j: number): boolean => {
    for (let k = 0; k < W; k++) {
      const e = endWord(i, k), s = words[j * W + k]!;
      if (e !== s) return e < s;
    }
    return false;
  };

  const sameStart = (i: number, j: number): boolean => {
    for (let k = 0; k < W; k++) if (words[i * W + k] !== words[j * W + k]) return false;
    return true;
  };
  const stack = new Int32Array(bitsW + 2);
  let sp = 0;
  pos.fill(0);
  emit(-1);
  const popOne = (): void => {
    const top = stack[--sp]!;
    if (setPosAfter(top)) emit(sp > 0 ? vals[stack[sp - 1]!]! : -1);
  };
  for (let oi = 0; oi < n; oi++) {
    const p = order[oi]!;
    while (sp > 0 && endBeforeStart(stack[sp - 1]!, p)) popOne();
    if (sp > 0 && sameStart(stack[sp - 1]!, p) && lens[stack[sp - 1]!] === lens[p]) stack[sp - 1] = p; // duplicate: later wins
    else stack[sp++] = p;
    for (let k = 0; k < W; k++) pos[k] = words[p * W + k]!;
    emit(vals[p]!);
  }
  while (sp > 0) popOne();
  return { starts: outS, values: outV, m, W, routes: n };
}

/** The ranges in shared memory with their index (of the kind `shift` says), or the previous table's arrays where equal. */
function shareRanges(r: Ranges, shift: number, o: IndexOptions, prev?: RangeSetShared): RangeSetShared {
  const { m, W } = r;
  // Equal starts: the previous starts and index serve (an index depends on the starts alone).
  if (prev && prev.topShift === shift && sameHead(prev.starts, r.starts, m * W)) {
    const values = sameHead(prev.values, r.values, m) ? prev.values : sharedI32(m);
    if (values !== prev.values) values.set(r.values.subarray(0, m));
    return { starts: prev.starts, values, index: prev.index, topShift: shift, routes: r.routes };
  }
  const starts = sharedU32(m * W);
  starts.set(r.starts.subarray(0, m * W));
  const values = sharedI32(m);
  values.set(r.values.subarray(0, m));
  const index = shift === SMALL_SHIFT ? buildSmallIndex(starts, m, W) : buildIndex(starts, m, W, o.splitAbove ?? SPLIT_ABOVE, o.maxBlocks ?? MAX_BLOCKS);
  return { starts, values, index, topShift: shift, routes: r.routes };
}

/** Last range whose start <= key (W words; range 0 starts at 0). */
function floorRange(starts: Uint32Array, m: number, W: number, key: Uint32Array): number {
  let lo = 0, hi = m - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    let le = true;
    for (let k = 0; k < W; k++) {
      const x = starts[mid * W + k]!, y = key[k]!;
      if (x !== y) { le = x < y; break; }
    }
    if (le) lo = mid; else hi = mid - 1;
  }
  return lo;
}

/** The small index: entry 2d = range holding the first key of top digit d, 2d+1 = 0 (no child), 2 * SMALL_BUCKETS = the last range. */
function buildSmallIndex(starts: Uint32Array, m: number, W: number): Uint32Array {
  const blk = sharedU32(2 * SMALL_BUCKETS + 1);
  const key = new Uint32Array(W);
  for (let d = 0; d < SMALL_BUCKETS; d++) {
    key[0] = (d << SMALL_SHIFT) >>> 0;
    blk[2 * d] = floorRange(starts, m, W, key);
  }
  blk[2 * SMALL_BUCKETS] = m - 1;
  return blk;
}

/**
 * The multi-level index over m sorted range starts (W words each). Block 0 indexes the key's top 16
 * bits (digit 0); a block at level L indexes digit L (bits 16L .. 16L+15) of the keys under its
 * prefix. Entry 2d is the range containing the first key of digit d, entry 2d+1 the child block + 1
 * for that digit (0: none), entry 2 * BUCKETS the range containing the block's last key; so a key in
 * digit d lies in ranges [entry 2d, entry 2d+2].
 */
function buildIndex(starts: Uint32Array, m: number, W: number, splitAbove: number, maxBlocks: number): Uint32Array {
  const levels = 2 * W;
  const prefixes: Uint32Array[] = [new Uint32Array(W)];
  const levelOf: number[] = [0];
  const blocks: Uint32Array[] = [];
  const key = new Uint32Array(W);
  const le = (r: number): boolean => {
    for (let k = 0; k < W; k++) {
      const x = starts[r * W + k]!, y = key[k]!;
      if (x !== y) return x < y;
    }
    return true;
  };
  /** Last range whose start <= key (range 0 starts at 0). */
  const floor = (): number => {
    let lo = 0, hi = m - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (le(mid)) lo = mid; else hi = mid - 1;
    }
    return lo;
  };
  /** key = prefix with digit L = d and every lower bit = fill (0 or 1). */
  const setKey = (pre: Uint32Array, L: number, d: number, fill: number): void => {
    const wi = L >> 1;
    for (let k = 0; k < W; k++) key[k] = k < wi ? pre[k]! : k > wi ? (fill ? 0xffffffff : 0) : 0;
    key[wi] = (L & 1) === 0 ? ((d << 16) | (fill ? 0xffff : 0)) >>> 0 : ((pre[wi]! & 0xffff0000) | d) >>> 0;
  };
  for (let b = 0; b < prefixes.length; b++) {
    const blk = new Uint32Array(BLOCK);
    const pre = prefixes[b]!, L = levelOf[b]!;
    setKey(pre, L, 0, 0);
    let r = floor();
    for (let d = 0; d < BUCKETS; d++) {
      setKey(pre, L, d, 0);
      while (r + 1 < m && le(r + 1)) r++;
      blk[2 * d] = r;
    }
    setKey(pre, L, 0xffff, 1);
    blk[2 * BUCKETS] = floor();
    if (L + 1 < levels) {
      for (let d = 0; d < BUCKETS && prefixes.length < maxBlocks; d++) {
        if (blk[2 * d + 2]! - blk[2 * d]! <= splitAbove) continue;
        setKey(pre, L, d, 0);
        prefixes.push(key.slice());
        levelOf.push(L + 1);
        blk[2 * d + 1] = prefixes.length; // child block index + 1
      }
    }
    blocks.push(blk);
  }
  const index = sharedU32(blocks.length * BLOCK);
  blocks.forEach((blk, i) => index.set(blk, i * BLOCK));
  return index;
}

/** Immutable LPM table over shared memory. lookup* return the value, or -1 for no match. */
export class PrefixTable {
  readonly v4: RangeSetShared;
  readonly v6: RangeSetShared;
  protected readonly s4: Uint32Array;
  protected readonly x4: Int32Array;
  protected readonly i4: Uint32Array;
  protected readonly s6: Uint32Array;
  protected readonly x6: Int32Array;
  protected readonly i6: Uint32Array;

  /** Use fromShared (or the builder): it picks the lookups that match the index. */
  protected constructor(shared: PrefixTableShared) {
    this.v4 = shared.v4;
    this.v6 = shared.v6;
    this.s4 = shared.v4.starts; this.x4 = shared.v4.values; this.i4 = shared.v4.index;
    this.s6 = shared.v6.starts; this.x6 = shared.v6.values; this.i6 = shared.v6.index;
  }

  /** The shared-memory form; post it to a worker and rebuild with fromShared (no copy). */
  toShared(): PrefixTableShared { return { v4: this.v4, v6: this.v6 }; }
  static fromShared(s: PrefixTableShared): PrefixTable {
    return s.v4.topShift === SMALL_SHIFT ? new SmallPrefixTable(s) : new PrefixTable(s);
  }

  get routes4(): number { return this.v4.routes; }
  get routes6(): number { return this.v6.routes; }
  /** Bytes of typed-array memory held. */
  get bytes(): number {
    const f = (r: RangeSetShared) => r.starts.byteLength + r.values.byteLength + r.index.byteLength;
    return f(this.v4) + f(this.v6);
  }

  lookup4(addr: number): number {
    return find4(this.s4, this.x4, this.i4, addr >>> 0, FULL_SHIFT);
  }

  lookup6(w0: number, w1: number, w2: number, w3: number): number {
    return find6(this.s6, this.x6, this.i6, w0 >>> 0, w1 >>> 0, w2 >>> 0, w3 >>> 0, FULL_SHIFT);
  }

  /** Lookup with words in an array (IPv4: word 0). */
  lookup(family: Family, w: ArrayLike<number>): number {
    return family === 4 ? this.lookup4(w[0]!) : this.lookup6(w[0]!, w[1]!, w[2]!, w[3]!);
  }
}

/** Both families with the small index: the same lookups, the other top shift (a constant, as in the full one). */
class SmallPrefixTable extends PrefixTable {
  override lookup4(addr: number): number {
    return find4(this.s4, this.x4, this.i4, addr >>> 0, SMALL_SHIFT);
  }

  override lookup6(w0: number, w1: number, w2: number, w3: number): number {
    return find6(this.s6, this.x6, this.i6, w0 >>> 0, w1 >>> 0, w2 >>> 0, w3 >>> 0, SMALL_SHIFT);
  }
}

/** Value of the range holding IPv4 key `a`; `shift` gives the top digit (a constant at each call: inlined). */
function find4(s: Uint32Array, v: Int32Array, x: Uint32Array, a: number, shift: number): number {
  let base = 0;
  let d = a >>> shift;
  const c = x[2 * d + 1]!;
  if (c !== 0) {
    base = (c - 1) * BLOCK;
    d = a & 0xffff;
  }
  let lo = x[base + 2 * d]!;
  let hi = x[base + 2 * d + 2]!;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (s[mid]! <= a) lo = mid; else hi = mid - 1;
  }
  return v[lo]!;
}

/** Value of the range holding IPv6 key a0..a3 (see find4). */
function find6(s: Uint32Array, v: Int32Array, x: Uint32Array, a0: number, a1: number, a2: number, a3: number, shift: number): number {
  let base = 0;
  let d = a0 >>> shift;
  for (let level = 1; ; level++) {
    const c = x[base + 2 * d + 1]!;
    if (c === 0) break;
    base = (c - 1) * BLOCK;
    const w = level < 2 ? a0 : level < 4 ? a1 : level < 6 ? a2 : a3;
    d = (level & 1) === 1 ? w & 0xffff : w >>> 16;
  }
  let lo = x[base + 2 * d]!;
  let hi = x[base + 2 * d + 2]!;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    const b = mid << 2;
    let le: boolean;
    const s0 = s[b]!;
    if (s0 !== a0) le = s0 < a0;
    else {
      const s1 = s[b + 1]!;
      if (s1 !== a1) le = s1 < a1;
      else {
        const s2 = s[b + 2]!;
        le = s2 !== a2 ? s2 < a2 : s[b + 3]! <= a3;
      }
    }
    if (le) lo = mid; else hi = mid - 1;
  }
  return v[lo]!;
}

// Longest-prefix match for IPv4 and IPv6 source keys (the front's source-prefix table).
//
// Design: overlapping prefixes are flattened at build time into disjoint address ranges, each
// carrying the value of the longest prefix covering it (at most 2n+1 ranges for n prefixes).
// A lookup is then "last range start <= key": a 65536-entry index on the key's top 16 bits
// narrows the binary search to one bucket; a bucket holding many ranges (routes clustered under one
// prefix, e.g. a /32 of IPv6 customers) gets its own index block on the next 16 bits, and so on
// (at most MAX_BLOCKS blocks per family), so the final binary search stays short. Everything lives in typed arrays over
// SharedArrayBuffers so a compiled table is posted to workers without a copy, and lookups
// allocate nothing. A trie (stride 8/16) was rejected: at a million random IPv6 prefixes its
// node pools need gigabytes, while ranges need ~40 bytes per route.

import type { Family } from './addr.js';
import { wordMask } from './addr.js';

const BUCKETS = 65536;
/** One index block: per 16-bit digit [range containing the digit's first key, child block + 1 or 0], then the block's last range. */
const BLOCK = 2 * BUCKETS + 1;
/** A digit spanning more ranges than this gets an index block for the next 16 bits. */
const SPLIT_ABOVE = 32;
/** Index blocks per family at most (512 KiB each); beyond, the binary search just runs longer. */
const MAX_BLOCKS = 64;

export interface IndexOptions {
  splitAbove?: number;
  maxBlocks?: number;
}

/** One family's flattened ranges. `starts` has W words per range (W = 1 for IPv4, 4 for IPv6). */
export interface RangeSetShared {
  starts: Uint32Array;
  values: Int32Array;
  index: Uint32Array; // index blocks of BLOCK entries (see buildIndex); block 0 covers the top 16 bits
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

  /** Build the immutable table; `o` tunes the index (tests force deep indexes with small values). */
  build(o: IndexOptions = {}): PrefixTable {
    return new PrefixTable({
      v4: flatten(this.w4, this.l4, this.v4, this.n4, 1, o),
      v6: flatten(this.w6, this.l6, this.v6, this.n6, 4, o),
    });
  }
}

function grow32(a: Uint32Array, n: number): Uint32Array<ArrayBuffer> { const b = new Uint32Array(n); b.set(a); return b; }
function grow8(a: Uint8Array, n: number): Uint8Array<ArrayBuffer> { const b = new Uint8Array(n); b.set(a); return b; }
function growI32(a: Int32Array, n: number): Int32Array<ArrayBuffer> { const b = new Int32Array(n); b.set(a); return b; }

/** Sweep sorted prefixes into disjoint ranges (W words per address). */
function flatten(words: Uint32Array, lens: Uint8Array, vals: Int32Array, n: number, W: number, o: IndexOptions): RangeSetShared {
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

  const starts = sharedU32(m * W);
  starts.set(outS.subarray(0, m * W));
  const values = sharedI32(m);
  values.set(outV.subarray(0, m));
  const index = buildIndex(starts, m, W, o.splitAbove ?? SPLIT_ABOVE, o.maxBlocks ?? MAX_BLOCKS);
  return { starts, values, index, routes: n };
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
  private readonly s4: Uint32Array;
  private readonly x4: Int32Array;
  private readonly i4: Uint32Array;
  private readonly s6: Uint32Array;
  private readonly x6: Int32Array;
  private readonly i6: Uint32Array;

  constructor(shared: PrefixTableShared) {
    this.v4 = shared.v4;
    this.v6 = shared.v6;
    this.s4 = shared.v4.starts; this.x4 = shared.v4.values; this.i4 = shared.v4.index;
    this.s6 = shared.v6.starts; this.x6 = shared.v6.values; this.i6 = shared.v6.index;
  }

  /** The shared-memory form; post it to a worker and rebuild with fromShared (no copy). */
  toShared(): PrefixTableShared { return { v4: this.v4, v6: this.v6 }; }
  static fromShared(s: PrefixTableShared): PrefixTable { return new PrefixTable(s); }

  get routes4(): number { return this.v4.routes; }
  get routes6(): number { return this.v6.routes; }
  /** Bytes of typed-array memory held. */
  get bytes(): number {
    const f = (r: RangeSetShared) => r.starts.byteLength + r.values.byteLength + r.index.byteLength;
    return f(this.v4) + f(this.v6);
  }

  lookup4(addr: number): number {
    const a = addr >>> 0;
    const s = this.s4;
    const x = this.i4;
    let base = 0;
    let d = a >>> 16;
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
    return this.x4[lo]!;
  }

  lookup6(w0: number, w1: number, w2: number, w3: number): number {
    const a0 = w0 >>> 0, a1 = w1 >>> 0, a2 = w2 >>> 0, a3 = w3 >>> 0;
    const s = this.s6;
    const x = this.i6;
    let base = 0;
    let d = a0 >>> 16;
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
    return this.x6[lo]!;
  }

  /** Lookup with words in an array (IPv4: word 0). */
  lookup(family: Family, w: ArrayLike<number>): number {
    return family === 4 ? this.lookup4(w[0]!) : this.lookup6(w[0]!, w[1]!, w[2]!, w[3]!);
  }
}

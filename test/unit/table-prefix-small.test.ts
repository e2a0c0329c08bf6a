// Small prefix tables (both families at most 32 ranges) index only the top 12 bits (32 KiB instead
// of a 512 KiB block per family): they must give the same answer as the same routes with the full index forced
// (smallUpTo: 0) and as the brute-force longest-prefix match, at every route's edges (first and last
// address, one before, one past), at the edges of every top digit and at random keys; and the
// threshold is where it says.
import { describe, expect, it } from 'vitest';
import { PrefixTable, PrefixTableBuilder } from '../../shared/table/prefix-table.js';
import { wordMask } from '../../shared/table/addr.js';
import { brute, rng, type R } from '../helpers/lpm-oracle.js';

/** Add a word vector (W words) and a delta of +1 / -1 with carry, wrapping at the ends. */
function step(w: number[], delta: 1 | -1): number[] {
  const out = [...w];
  for (let k = out.length - 1; k >= 0; k--) {
    const v = out[k]! + delta;
    out[k] = v >>> 0;
    if (v >= 0 && v <= 0xffffffff) break;
  }
  return out;
}

function lookup(t: PrefixTable, key: number[]): number {
  return key.length === 1 ? t.lookup4(key[0]!) : t.lookup6(key[0]!, key[1]!, key[2]!, key[3]!);
}

/**
 * n routes in family W: from 3 on, the first three sit on index edges (a prefix starting exactly at
 * a top digit, a host one address after that start, a prefix in the very last digit); the rest are
 * random and nested often (a few bases, random lengths).
 */
function routesOf(W: 1 | 4, n: number, seed: number): R[] {
  const r = rng(seed);
  const bases = [[r(), r(), r(), r()], [r(), r(), r(), r()], [0x20010db8, r(), 0, 0]];
  const out: R[] = [];
  if (n >= 3) {
    const host = W === 1 ? [0x0a000001] : [0x0a000000, 0, 0, 1];
    out.push({ w: [0x0a000000, 0, 0, 0].slice(0, W), len: 12, v: 1000 }, { w: host, len: 32 * W, v: 1001 }, { w: [0xfff80000, 0, 0, 0].slice(0, W), len: 13, v: 1002 });
  }
  for (let i = out.length; i < n; i++) {
    const base = bases[r() % bases.length]!.slice(0, W);
    const len = r() % 5 === 0 ? r() % (32 * W + 1) : Math.min(32 * W, 8 + (r() % 24)); // mostly short: nesting
    const w = base.map((x) => (r() % 3 === 0 ? (x ^ (1 << (r() % 32))) >>> 0 : x));
    out.push({ w: w.map((x, k) => (x & wordMask(len - 32 * k)) >>> 0), len, v: i });
  }
  return out;
}

const SMALL_BITS = 12;
const FULL_BLOCK = 2 * 65536 + 1, SMALL_BLOCK = 2 * (1 << SMALL_BITS) + 1;

function build(W: 1 | 4, routes: R[], o: { smallUpTo?: number } = {}): PrefixTable {
  const b = new PrefixTableBuilder();
  for (const x of routes) {
    if (W === 1) b.addV4(x.w[0]!, x.len, x.v);
    else b.addV6(x.w[0]!, x.w[1]!, x.w[2]!, x.w[3]!, x.len, x.v);
  }
  return b.build(o);
}

/** Every route's first and last address, one before and one past, each top digit's ends, random keys. */
function keysFor(W: 1 | 4, routes: R[], seed: number): number[][] {
  const r = rng(seed);
  const keys: number[][] = [];
  for (let d = 0; d < 1 << SMALL_BITS; d++) {
    const first = [(d << (32 - SMALL_BITS)) >>> 0, 0, 0, 0].slice(0, W);
    keys.push(first, step(first, -1));
  }
  for (const x of routes) {
    const last = x.w.map((v, k) => (v | ~wordMask(x.len - 32 * k)) >>> 0);
    keys.push(x.w, last, step(x.w, -1), step(last, 1));
  }
  for (let i = 0; i < 300; i++) keys.push(Array.from({ length: W }, () => r()));
  return keys;
}

describe('PrefixTable: small families have a small index', () => {
  for (const W of [1, 4] as const) {
    for (const n of [0, 1, 2, 3, 5, 8, 15]) {
      it(`${n} IPv${W === 1 ? 4 : 6} routes: same answers with the small index as with the full one and as brute force`, () => {
        const routes = routesOf(W, n, 31 * n + W);
        const small = build(W, routes);
        const full = build(W, routes, { smallUpTo: 0 });
        const posted = PrefixTable.fromShared(structuredClone(small.toShared())); // as a worker gets it
        const fam = W === 1 ? 'v4' : 'v6';
        expect(small[fam].values.length).toBeLessThanOrEqual(2 * n + 1);
        expect(small[fam].index.length).toBe(SMALL_BLOCK);
        expect(full[fam].index.length).toBe(FULL_BLOCK);
        let matched = 0;
        for (const key of keysFor(W, routes, n + 100 * W)) {
          const exp = brute(routes, key, W);
          if (exp >= 0) matched++;
          const what = `key ${key.map((x) => x.toString(16)).join(':')}`;
          expect(lookup(small, key), what).toBe(exp);
          expect(lookup(full, key), what).toBe(exp);
          expect(lookup(posted, key), what).toBe(exp);
        }
        if (n > 0) expect(matched).toBeGreaterThan(n); // real matches, not only misses
      });
    }
  }

  it('the full index starts above 32 ranges in either family', () => {
    // k disjoint, non-adjacent /32 hosts: 2k + 1 ranges (no route, host, no route, ...).
    const hosts = (k: number): R[] => Array.from({ length: k }, (_, i) => ({ w: [0x0a000000 + 4 * i], len: 32, v: i }));
    const at = (k: number) => build(1, hosts(k));
    expect(at(15).v4.values.length).toBe(31);
    expect(at(15).v4.index.length).toBe(SMALL_BLOCK);
    expect(at(16).v4.values.length).toBe(33);
    expect(at(16).v4.index.length).toBe(FULL_BLOCK);
    // one family small, the other not: both take the full index (one top shift per table)
    const b = new PrefixTableBuilder();
    for (const h of hosts(16)) b.addV4(h.w[0]!, 32, h.v);
    b.addV6(0x20010db8, 0, 0, 0, 32, 99);
    const t = b.build();
    expect(t.v4.index.length).toBe(FULL_BLOCK);
    expect(t.v6.index.length).toBe(FULL_BLOCK);
    expect(t.lookup6(0x20010db8, 1, 2, 3)).toBe(99);
    expect(t.lookup4(0x0a000000 + 4 * 15)).toBe(15);
    expect(t.lookup4(0x0a000000 + 4 * 15 + 1)).toBe(-1);
  });

  it('a small table costs two 32 KiB index blocks, not two of 512 KiB', () => {
    const routes = routesOf(4, 3, 5);
    expect(build(4, routes).bytes).toBeLessThan(2 * 33 * 1024);
    expect(build(4, routes, { smallUpTo: 0 }).bytes).toBeGreaterThan(2 * 512 * 1024);
  });
});

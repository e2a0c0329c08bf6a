// The multi-level index of the prefix table (a bucket with many ranges gets an index block on the
// next 16 bits): lookups agree with a brute-force longest-prefix match whatever the depth of the
// index, including routes clustered under long common prefixes (all 8 levels of an IPv6 key), the
// block limit (beyond it the binary search just runs longer), and the edges of each digit.
import { describe, expect, it } from 'vitest';
import { PrefixTableBuilder } from '../../shared/table/prefix-table.js';
import { wordMask } from '../../shared/table/addr.js';
import { brute, rng, type R } from '../helpers/lpm-oracle.js';

/** Routes under a common prefix of `common` bits, varying below it; keys near them. */
function check(W: 1 | 4, common: number, seed: number, opts: { splitAbove?: number; maxBlocks?: number }): void {
  const r = rng(seed);
  const base = [r(), r(), r(), r()];
  const routes: R[] = [];
  const b = new PrefixTableBuilder();
  const bits = 32 * W;
  for (let i = 0; i < 600; i++) {
    const len = Math.min(bits, common + (r() % (bits - common + 1)));
    const w = base.map((x, k) => {
      // keep the common prefix, randomise the rest
      const keep = wordMask(common - 32 * k);
      return ((x & keep) | (r() & ~keep)) >>> 0;
    });
    const m = w.map((x, k) => (x & wordMask(len - 32 * k)) >>> 0);
    routes.push({ w: m, len, v: i });
    if (W === 1) b.addV4(m[0]!, len, i);
    else b.addV6(m[0]!, m[1]!, m[2]!, m[3]!, len, i);
  }
  // a default route under everything, so misses inside the cluster are visible too
  routes.push({ w: [0, 0, 0, 0], len: 0, v: 9999 });
  if (W === 1) b.addV4(0, 0, 9999);
  else b.addV6(0, 0, 0, 0, 0, 9999);
  const t = b.build(opts);
  let inside = 0;
  for (let q = 0; q < 4000; q++) {
    const src = routes[r() % 600]!;
    // keys: a route's start, its last address, one past it, or a random key under the common prefix
    const kind = q % 4;
    const key = src.w.map((x, k) => {
      const m = wordMask(src.len - 32 * k);
      if (kind === 0) return x;
      if (kind === 1) return (x | ~m) >>> 0;
      const keep = wordMask(common - 32 * k);
      return ((base[k]! & keep) | (r() & ~keep)) >>> 0;
    });
    if (kind === 2) {
      // one past the route's last address
      for (let k = W - 1; k >= 0; k--) {
        key[k] = ((src.w[k]! | ~wordMask(src.len - 32 * k)) + 1) >>> 0;
        if (key[k] !== 0) break;
      }
    }
    const exp = brute(routes, key, W);
    if (exp !== 9999) inside++;
    const got = W === 1 ? t.lookup4(key[0]!) : t.lookup6(key[0]!, key[1]!, key[2]!, key[3]!);
    expect(got, `key ${key.map((x) => x.toString(16)).join(':')}`).toBe(exp);
  }
  expect(inside).toBeGreaterThan(1000);
}

describe('PrefixTable multi-level index', () => {
  for (const common of [0, 16, 24, 40, 64, 100, 120]) {
    it(`IPv6 routes clustered under a /${common}, deep index (split above 2 ranges)`, () => {
      check(4, common, 100 + common, { splitAbove: 2, maxBlocks: 400 });
    });
  }
  for (const common of [0, 12, 16, 24]) {
    it(`IPv4 routes clustered under a /${common}, deep index`, () => {
      check(1, common, 200 + common, { splitAbove: 2, maxBlocks: 400 });
    });
  }
  it('the block limit leaves a correct (longer) binary search', () => {
    check(4, 32, 7, { splitAbove: 1, maxBlocks: 3 });
    check(1, 16, 8, { splitAbove: 1, maxBlocks: 2 });
  });
  it('default options: a million-route-like cluster under 2001:db8::/32 stays exact', () => {
    check(4, 32, 9, {});
  });
});

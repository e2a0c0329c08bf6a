import { describe, it, expect } from 'vitest';
import { PrefixTableBuilder, PrefixTable } from '../../shared/table/prefix-table.js';
import { parsePrefix, parseAddress, wordMask } from '../../shared/table/addr.js';
import { brute, rng, type R } from '../helpers/lpm-oracle.js';

describe('PrefixTable', () => {
  it('matches the SPEC example longest-prefix semantics', () => {
    const b = new PrefixTableBuilder();
    const add = (p: string, v: number) => { const x = parsePrefix(p)!; b.add(x.family, x.words, x.len, v); };
    add('2001:db8:c1::/48', 0);
    add('198.51.100.0/24', 1);
    add('::/0', 2);
    add('2001:db8:c1:5::/64', 3);
    add('0.0.0.0/0', 4);
    add('198.51.100.128/25', 5);
    const t = b.build();
    const look = (a: string) => { const x = parseAddress(a)!; return t.lookup(x.family, x.words); };
    expect(look('2001:db8:c1::10')).toBe(0);
    expect(look('2001:db8:c1:5::10')).toBe(3);
    expect(look('2001:db8:c1:6::10')).toBe(0);
    expect(look('2001:db8:c2::10')).toBe(2);
    expect(look('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff')).toBe(2);
    expect(look('198.51.100.1')).toBe(1);
    expect(look('198.51.100.200')).toBe(5);
    expect(look('198.51.101.1')).toBe(4);
    expect(look('255.255.255.255')).toBe(4);
    expect(t.routes4).toBe(3);
    expect(t.routes6).toBe(3);
  });

  it('returns -1 without a match and handles the edges of the space', () => {
    const b = new PrefixTableBuilder();
    b.addV4(0xffffffff, 32, 7);
    b.addV4(0, 32, 8);
    b.addV6(0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 128, 9);
    const t = b.build();
    expect(t.lookup4(0xffffffff)).toBe(7);
    expect(t.lookup4(0)).toBe(8);
    expect(t.lookup4(1)).toBe(-1);
    expect(t.lookup6(0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff)).toBe(9);
    expect(t.lookup6(0xffffffff, 0xffffffff, 0xffffffff, 0xfffffffe)).toBe(-1);
    expect(t.lookup6(0, 0, 0, 0)).toBe(-1);
    const empty = new PrefixTableBuilder().build();
    expect(empty.lookup4(123)).toBe(-1);
    expect(empty.lookup6(1, 2, 3, 4)).toBe(-1);
  });

  it('later duplicates win', () => {
    const b = new PrefixTableBuilder();
    b.addV4(0xc0000200, 24, 1);
    b.addV4(0xc0000200, 24, 2);
    expect(b.build().lookup4(0xc0000201)).toBe(2);
  });

  for (const W of [1, 4]) {
    it(`agrees with brute force on random overlapping prefixes (W=${W})`, () => {
      const r = rng(W * 1000 + 7);
      const routes: R[] = [];
      const b = new PrefixTableBuilder();
      // Clustered prefixes so nesting is frequent: a few base addresses, random lengths.
      const bases: number[][] = [];
      for (let i = 0; i < 6; i++) bases.push([r(), r(), r(), r()]);
      for (let i = 0; i < 400; i++) {
        const base = bases[r() % bases.length]!;
        const len = r() % (W * 32 + 1);
        const w = base.map((x) => (r() % 3 === 0 ? (x ^ (1 << (r() % 32))) >>> 0 : x));
        const m = w.map((x, k) => (x & wordMask(len - 32 * k)) >>> 0);
        routes.push({ w: m, len, v: i });
        if (W === 1) b.addV4(m[0]!, len, i); else b.addV6(m[0]!, m[1]!, m[2]!, m[3]!, len, i);
      }
      const t = PrefixTable.fromShared(b.build().toShared());
      let matched = 0;
      for (let q = 0; q < 3000; q++) {
        const base = bases[r() % bases.length]!;
        const key = base.map((x) => (r() % 2 === 0 ? (x ^ (1 << (r() % 32))) >>> 0 : x));
        if (q % 10 === 0) key[0] = r();
        const exp = brute(routes, key, W);
        if (exp >= 0) matched++;
        const got = W === 1 ? t.lookup4(key[0]!) : t.lookup6(key[0]!, key[1]!, key[2]!, key[3]!);
        expect(got, `key ${key.map((x) => x.toString(16)).join(':')}`).toBe(exp);
      }
      expect(matched).toBeGreaterThan(1000); // the test exercises real matches, not only misses
    });
  }

  it('lives in SharedArrayBuffers', () => {
    const b = new PrefixTableBuilder();
    b.addV4(0x0a000000, 8, 1);
    const s = b.build().toShared();
    expect(s.v4.starts.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(s.v6.index.buffer).toBeInstanceOf(SharedArrayBuffer);
  });
});

import { describe, it, expect } from 'vitest';
import { maglevTable, maglevLookup, buildMaglev, MAGLEV_DEFAULT_SIZE } from '../../front/table/maglev.js';
import { hash1, hash4, hashString, KEY_SEED } from '../../shared/packet/hash32.js';

const KEYS = 200_000;
const names = (n: number) => Array.from({ length: n }, (_, i) => ({ name: `b${i + 1}` }));

function spread(table: Int32Array, n: number): number[] {
  const c = new Array<number>(n).fill(0);
  for (let k = 0; k < KEYS; k++) c[maglevLookup(table, hash1(KEY_SEED, k))]!++;
  return c;
}

describe('hash32', () => {
  it('is deterministic (fixed values every front must agree on)', () => {
    // If these change, every front moves its keys: pin them.
    expect(hash1(KEY_SEED, 0x12345)).toBe(hash1(KEY_SEED, 0x12345));
    expect(hash4(KEY_SEED, 0x20010db8, 0, 0, 1)).not.toBe(hash4(KEY_SEED, 0x20010db8, 0, 0, 2));
    expect(hashString(1, 'b1')).not.toBe(hashString(1, 'b2'));
    const pinned = [hash1(0, 0), hash1(KEY_SEED, 1), hash4(KEY_SEED, 0x20010db8, 0xc1, 0, 0x10), hashString(7, 'web')];
    expect(pinned).toEqual([593689054, 3734443876, 1075033726, 1939639127]);
  });
});

describe('maglev', () => {
  for (const n of [2, 3, 5, 10]) {
    it(`spreads ${KEYS} keys over ${n} members within 5% of the fair share`, () => {
      const t = maglevTable(names(n));
      const c = spread(t, n);
      const fair = KEYS / n;
      const worst = Math.max(...c.map((x) => Math.abs(x - fair) / fair));
      console.log(`maglev spread n=${n}: counts=${c.join(',')} worst deviation=${(worst * 100).toFixed(2)}%`);
      expect(worst).toBeLessThan(0.05);
    });
  }

  it('does not depend on the order the members are listed in', () => {
    const a = maglevTable([{ name: 'x' }, { name: 'y' }, { name: 'z' }]);
    const b = maglevTable([{ name: 'z' }, { name: 'x' }, { name: 'y' }]);
    const nameA = ['x', 'y', 'z'], nameB = ['z', 'x', 'y'];
    for (let i = 0; i < a.length; i += 97) expect(nameA[a[i]!]).toBe(nameB[b[i]!]);
  });

  it('when one of N members leaves, about 1/N of keys move and almost none of the others', () => {
    for (const n of [3, 5, 10]) {
      const m = names(n);
      const full = maglevTable(m);
      const inc = m.map((_, i) => i !== 1);
      const less = maglevTable(m, MAGLEV_DEFAULT_SIZE, inc);
      let moved = 0, onLeaver = 0, movedOthers = 0, landedOnLeaver = 0;
      for (let k = 0; k < KEYS; k++) {
        const h = hash1(KEY_SEED, k);
        const a = maglevLookup(full, h), b = maglevLookup(less, h);
        if (b === 1) landedOnLeaver++;
        if (a === 1) onLeaver++;
        if (a !== b) { moved++; if (a !== 1) movedOthers++; }
      }
      const frac = moved / KEYS, others = movedOthers / (KEYS - onLeaver);
      console.log(`maglev disruption n=${n}: moved=${(frac * 100).toFixed(2)}% (1/N=${(100 / n).toFixed(2)}%), ` +
        `keys not on the leaver that moved=${(others * 100).toFixed(2)}%`);
      expect(landedOnLeaver).toBe(0);
      expect(Math.abs(frac - 1 / n)).toBeLessThan(0.03);
      expect(others).toBeLessThan(0.03); // plain Maglev: small, not zero; pools add a strict layer
    }
  });

  it('honours weights', () => {
    const t = maglevTable([{ name: 'a', weight: 3 }, { name: 'b', weight: 1 }]);
    const c = spread(t, 2);
    const share = c[0]! / KEYS;
    console.log(`maglev weights 3:1 -> share of a ${(share * 100).toFixed(2)}%`);
    expect(Math.abs(share - 0.75)).toBeLessThan(0.02);
  });

  it('empty member set gives -1 and non-prime sizes are refused', () => {
    const t = maglevTable([], 7);
    expect([...t]).toEqual(new Array(7).fill(-1));
    expect(() => buildMaglev([{ name: 'a' }], new Int32Array(8))).toThrow(/prime/);
  });
});

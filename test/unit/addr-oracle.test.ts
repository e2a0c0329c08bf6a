// Our address parser/formatter and longest-prefix match, judged by an independent implementation
// (ip6addr): random addresses must parse to the same bytes and our RFC 5952 text must mean them, and
// the LPM table must pick the longest prefix that ip6addr's CIDR.contains() says covers the key.
import { describe, expect, it } from 'vitest';
import { createRequire } from 'node:module';
import { formatAddress, parseAddress, parsePrefix } from '../../shared/table/addr.js';
import { PrefixTableBuilder } from '../../shared/table/prefix-table.js';

const require = createRequire(import.meta.url);
const ip6addr = require('ip6addr') as {
  parse(s: string): { toBuffer(): Buffer; toString(o?: { format?: string; zeroElide?: boolean }): string; kind(): string };
  createCIDR(s: string): { contains(a: string): boolean; prefixLength(): number };
};

// Deterministic PRNG so a failure is reproducible.
let seed = 0x5eed1234;
function rnd32(): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return seed >>> 0;
}

function randomV6(): string {
  // Runs of zero groups exercise "::" placement; avoid ::ffff:0:0/96 (ip6addr prints it as IPv4).
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push(rnd32() % 3 === 0 ? 0 : rnd32() & 0xffff);
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0) g[0] = 0x2001;
  return g.map((x) => x.toString(16)).join(':');
}
function randomV4(): string {
  const w = rnd32();
  return [w >>> 24, (w >>> 16) & 255, (w >>> 8) & 255, w & 255].join('.');
}
function wordsHex(w: Uint32Array, family: 4 | 6): string {
  const n = family === 4 ? 1 : 4;
  let s = '';
  for (let i = 0; i < n; i++) s += w[i]!.toString(16).padStart(8, '0');
  return s;
}

describe('addresses against ip6addr', () => {
  it('2000 random IPv6 and IPv4 addresses parse to the same bytes and format to text with the same meaning', () => {
    for (let i = 0; i < 2000; i++) {
      const text = i % 2 === 0 ? randomV6() : randomV4();
      const ours = parseAddress(text);
      expect(ours, text).not.toBeNull();
      const theirs = ip6addr.parse(text);
      expect(wordsHex(ours!.words, ours!.family), text).toBe(theirs.toBuffer().toString('hex').slice(ours!.family === 4 ? -8 : 0));
      // Our text must mean the same bytes to ip6addr. (Its own text is not the oracle here: it
      // elides a single zero group with "::", which RFC 5952 section 4.2.2 forbids.)
      const mine = formatAddress(ours!.family, ours!.words);
      expect(ip6addr.parse(mine).toBuffer().toString('hex'), mine).toBe(theirs.toBuffer().toString('hex'));
      if (ours!.family === 6) {
        const groups = mine.split('::');
        expect(groups.length, mine).toBeLessThanOrEqual(2);
        if (groups.length === 2) {
          const shown = groups.filter(Boolean).join(':').split(':').filter(Boolean).length;
          expect(8 - shown, `${mine}: "::" stands for at least two zero groups`).toBeGreaterThanOrEqual(2);
        }
      }
    }
  });

  it('longest-prefix match agrees with ip6addr CIDR containment on 300 random prefixes x 3000 keys', () => {
    const prefixes: string[] = [];
    const b = new PrefixTableBuilder();
    // Nested prefixes under a few roots so overlaps (the LPM case) are common.
    const roots6 = ['2001:db8::', '2001:db8:c1::', '2001:db8:c1:8000::'];
    const roots4 = ['203.0.113.0', '198.51.100.0', '192.0.2.0'];
    for (let i = 0; i < 300; i++) {
      const v6 = i % 2 === 0;
      const base = v6 ? (rnd32() % 4 === 0 ? randomV6() : roots6[rnd32() % 3]!) : rnd32() % 4 === 0 ? randomV4() : roots4[rnd32() % 3]!;
      const len = v6 ? 16 + (rnd32() % 113) : 8 + (rnd32() % 25);
      const p = parsePrefix(`${base}/${len}`)!;
      const cidr = `${formatAddress(p.family, maskedWordsOf(p.family, p.words, len))}/${len}`;
      prefixes.push(cidr);
      b.add(p.family, parsePrefix(cidr)!.words, len, prefixes.length - 1);
    }
    const t = b.build();
    const cidrs = prefixes.map((p) => ip6addr.createCIDR(p));
    let hits = 0;
    for (let k = 0; k < 3000; k++) {
      const v6 = k % 2 === 0;
      // Keys near the roots hit the nested prefixes; random keys mostly miss.
      const key = v6 ? (rnd32() % 2 ? randomV6() : roots6[rnd32() % 3]!.replace(/::$/, `:${(rnd32() & 0xffff).toString(16)}::${(rnd32() & 0xffff).toString(16)}`)) : rnd32() % 2 ? randomV4() : roots4[rnd32() % 3]!.replace(/\.0$/, `.${rnd32() & 255}`);
      const a = parseAddress(key)!;
      let best = -1;
      let bestLen = -1;
      cidrs.forEach((c, i) => {
        const family = prefixes[i]!.includes(':') ? 6 : 4;
        if (family !== a.family) return;
        // Duplicates: the later one wins in our builder; ties on length keep the later index.
        if (c.contains(key) && c.prefixLength() >= bestLen) {
          best = i;
          bestLen = c.prefixLength();
        }
      });
      expect(t.lookup(a.family, a.words), `${key}`).toBe(best);
      if (best >= 0) hits++;
    }
    // The keys must exercise matches, not only misses.
    expect(hits).toBeGreaterThan(600);
  });
});

function maskedWordsOf(family: 4 | 6, w: Uint32Array, len: number): Uint32Array {
  const out = new Uint32Array(4);
  const n = family === 4 ? 1 : 4;
  for (let i = 0; i < n; i++) {
    const bits = Math.max(0, Math.min(32, len - 32 * i));
    out[i] = bits === 0 ? 0 : bits === 32 ? w[i]! : (w[i]! & (~0 << (32 - bits))) >>> 0;
  }
  return out;
}

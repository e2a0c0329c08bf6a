// A reload compiles the new table against the one in force and keeps that table's arrays where the
// new ones would be equal (the garbage a frequent reload leaves in every isolate): prefix ranges and
// indexes, and the Maglev tables of unchanged pools. Reused or not, the new table must answer
// exactly like one compiled from scratch; and what is not equal must not be reused.
import { describe, expect, it } from 'vitest';
import { PrefixTableBuilder, type PrefixTable } from '../../shared/table/prefix-table.js';
import { validateTable, type TableContext } from '../../front/table/table-loader.js';
import { CompiledTable } from '../../front/table/compiled-table.js';
import { parseAddress, wordMask } from '../../shared/table/addr.js';
import { decide, DecisionInput, DecisionResult } from '../../front/decision.js';
import { TableManager } from '../../front/table-manager.js';
import { frontConfigFromValue } from '../../front/front-config.js';
import { createLogger } from '../../shared/log.js';
import { brute, rng, type R } from '../helpers/lpm-oracle.js';

function routesV6(n: number, seed: number): R[] {
  const r = rng(seed);
  return Array.from({ length: n }, (_, i) => {
    const len = 32 + (r() % 97);
    const w = [0x20010db8, r(), r(), r()].map((x, k) => (x & wordMask(len - 32 * k)) >>> 0);
    return { w, len, v: i }; // distinct values: no two neighbouring ranges merge
  });
}

function buildV6(routes: R[], reuse?: PrefixTable): PrefixTable {
  const b = new PrefixTableBuilder();
  for (const x of routes) b.addV6(x.w[0]!, x.w[1]!, x.w[2]!, x.w[3]!, x.len, x.v);
  return b.build({ reuse });
}

function agreesWithBrute(t: PrefixTable, routes: R[], seed: number): void {
  const r = rng(seed);
  for (let q = 0; q < 2000; q++) {
    const x = routes[r() % routes.length]!;
    const key = q % 2 ? x.w.map((v, k) => (v | (r() & ~wordMask(x.len - 32 * k))) >>> 0) : [0x20010db8, r(), r(), r()];
    expect(t.lookup6(key[0]!, key[1]!, key[2]!, key[3]!), key.map((v) => v.toString(16)).join(':')).toBe(brute(routes, key, 4));
  }
}

describe('PrefixTable reuse', () => {
  for (const n of [4, 600]) {
    it(`${n} routes moved between targets: the previous starts and index serve, with new values`, () => {
      const a = routesV6(n, n);
      const moved = a.map((x, i) => ({ ...x, v: i % 3 === 0 ? 10_000 + i : x.v }));
      const ta = buildV6(a);
      const tb = buildV6(moved, ta);
      expect(tb.v6.starts).toBe(ta.v6.starts);
      expect(tb.v6.index).toBe(ta.v6.index);
      expect(tb.v6.values).not.toBe(ta.v6.values);
      if (n > 16) expect(tb.v6.index.length).toBeGreaterThan(0); // the big case really reuses an index
      agreesWithBrute(tb, moved, 1);
      agreesWithBrute(ta, a, 2); // the table in force is untouched
      expect(buildV6(moved).v6.values).toEqual(tb.v6.values); // what a build from scratch gives
    });
  }

  it('the same routes reuse everything; other prefixes reuse nothing', () => {
    const a = routesV6(600, 9);
    const ta = buildV6(a);
    const same = buildV6(a, ta);
    expect(same.v6.values).toBe(ta.v6.values);
    expect(same.v6.starts).toBe(ta.v6.starts);
    const other = a.map((x, i) => (i === 17 ? { w: [0x20010db8, 0x12345678, 0, 0], len: 64, v: 17 } : x));
    const to = buildV6(other, ta);
    expect(to.v6.starts).not.toBe(ta.v6.starts);
    expect(to.v6.index).not.toBe(ta.v6.index);
    agreesWithBrute(to, other, 3);
  });
});

const S6 = '2001:db8:5::80', S4 = '192.0.2.80';
const ctx: TableContext = { services: [S6, S4], mode: 'translate', encap: { source: 'service', source4: '', source6: '' } };
const doc = (o: { c1?: string; web?: readonly string[]; weight3?: number } = {}) => ({
  backs: {
    b1: { addresses: { [S6]: '2001:db8:b::1', [S4]: '198.51.100.1' } },
    b2: { addresses: { [S6]: '2001:db8:b::2', [S4]: '198.51.100.2' } },
    b3: { addresses: { [S6]: '2001:db8:b::3', [S4]: '198.51.100.3' }, weight: o.weight3 ?? 1 },
    b4: { addresses: { [S6]: '2001:db8:b::4', [S4]: '198.51.100.4' } },
  },
  pools: { web: { members: o.web ?? ['b2', 'b3', 'b4'], key: 'label' }, two: { members: ['b1', 'b4'] } },
  routes: [
    { source: '2001:db8:c1::/48', to: o.c1 ?? 'b1' },
    { source: '2001:db8:c2::/48', to: 'web' },
    { source: '203.0.113.0/26', to: 'two' },
    { source: '::/0', to: 'web' },
  ],
});

function compiler() {
  const slots = new Map<string, number>();
  const up = new Uint8Array(new SharedArrayBuffer(64)).fill(1);
  return {
    up,
    compile(table: unknown, previous?: CompiledTable): CompiledTable {
      const v = validateTable(table, 't.yaml', ctx);
      expect(v.errors).toEqual([]);
      return CompiledTable.compile(v.table!, {
        services: ctx.services, flowLabelEnabled: true, lbspEnabled: false, up, previous, maglevSize: 65537,
        slotOf: (n) => { if (!slots.has(n)) slots.set(n, slots.size); return slots.get(n)!; },
      });
    },
  };
}

/** Back name per (source, label) over many keys, both families. */
function decisions(t: CompiledTable): string[] {
  const inp = new DecisionInput(), out = new DecisionResult();
  const r = rng(77);
  const res: string[] = [];
  for (let i = 0; i < 3000; i++) {
    const v4 = i % 3 === 0;
    const src = v4 ? `203.0.113.${r() % 64}` : `2001:db8:c${1 + (r() % 3)}::${(r() % 0xffff).toString(16)}`;
    const s = parseAddress(src)!;
    inp.family = s.family; inp.src.fill(0); inp.src.set(s.words);
    inp.service.fill(0); inp.service.set(parseAddress(v4 ? S4 : S6)!.words);
    inp.flowLabel = i % 2 ? r() & 0xfffff : 0;
    inp.hasLbsp = false;
    decide(t, inp, out);
    res.push(out.back >= 0 ? t.meta.backNames[out.back]! : `-${out.reason}`);
  }
  return res;
}

describe('CompiledTable reuse across reloads', () => {
  it('routes moved, pools unchanged: the Maglev tables are shared and every decision is a fresh compile\'s', () => {
    const c = compiler();
    const t1 = c.compile(doc());
    const t2 = c.compile(doc({ c1: 'b2' }), t1);
    expect(t2.a.maglevFull).toBe(t1.a.maglevFull);
    expect(t2.a.maglevAlive).toBe(t1.a.maglevAlive);
    expect(t2.prefix[0]!.v6.starts).toBe(t1.prefix[0]!.v6.starts);
    expect(decisions(t2)).toEqual(decisions(c.compile(doc({ c1: 'b2' }))));
    expect(decisions(t2)).not.toEqual(decisions(t1)); // the edit did change something
  });

  for (const [what, o] of [
    ['a pool\'s members', { web: ['b2', 'b3'] }],
    ['a member\'s weight', { weight3: 3 }],
  ] as const) {
    it(`${what} changed: nothing Maglev is reused, and the tables are a fresh compile's`, () => {
      const c = compiler();
      const t1 = c.compile(doc());
      const t2 = c.compile(doc(o), t1);
      const fresh = c.compile(doc(o));
      expect(t2.a.maglevFull).not.toBe(t1.a.maglevFull);
      expect(t2.a.maglevAlive).not.toBe(t1.a.maglevAlive);
      expect(t2.a.maglevFull).toEqual(fresh.a.maglevFull);
      expect(t2.a.maglevFull).not.toEqual(t1.a.maglevFull);
      expect(decisions(t2)).toEqual(decisions(fresh));
    });
  }

  it('the shared alive table stays right whichever table refreshes it', () => {
    const c = compiler();
    const t1 = c.compile(doc());
    const tx = c.compile(doc({ c1: 'b2' }), t1); // e.g. built, then not installed
    expect(tx.a.maglevAlive).toBe(t1.a.maglevAlive);
    const slot3 = t1.a.backSlot[t1.meta.backNames.indexOf('b3')]!;
    const aliveFresh = () => { const f = c.compile(doc()); return Array.from(f.a.maglevAlive); };
    c.up[slot3] = 0;
    expect(tx.refreshUp()).toBeGreaterThan(0); // tx writes the alive table for "b3 down"
    expect(Array.from(t1.a.maglevAlive)).toEqual(aliveFresh());
    c.up[slot3] = 1;
    expect(t1.refreshUp()).toBeGreaterThan(0); // t1 must see that the array no longer holds "all up"
    expect(Array.from(t1.a.maglevAlive)).toEqual(aliveFresh());
    expect(decisions(t1)).toEqual(decisions(c.compile(doc())));
  });

  it('TableManager compiles each reload against the table in force', async () => {
    const A = `backs:
  b1: { addresses: { "${S6}": 2001:db8:b::1, "${S4}": 198.51.100.1 } }
  b2: { addresses: { "${S6}": 2001:db8:b::2, "${S4}": 198.51.100.2 } }
  b3: { addresses: { "${S6}": 2001:db8:b::3, "${S4}": 198.51.100.3 } }
pools:
  web: { members: [b1, b2] }
routes:
  - { source: 2001:db8:c1::/48, to: b1 }
  - { source: 2001:db8:c2::/48, to: web }
  - { source: 2001:db8:c3::/48, to: b3 }
`;
    let text = A;
    const r = frontConfigFromValue({ tun: { routes: [`${S6}/128`, `${S4}/32`] }, services: [S6, S4], table: '/virtual/t.yaml', mode: 'translate' }, '');
    const m = new TableManager(r.config!, createLogger({ level: 'error', sink: () => {} }), () => {}, () => {}, { readText: () => text, pollMs: 0 });
    const first = m.build();
    m.install(first.table!, first.text);
    const t1 = m.table!;
    text = A.replace('c1::/48, to: b1', 'c1::/48, to: b3'); // the same ranges, other targets
    expect(await m.reload('SIGHUP')).toBe(true);
    const t2 = m.table!;
    expect(t2).not.toBe(t1);
    expect(t2.a.maglevFull).toBe(t1.a.maglevFull);
    expect(t2.prefix[0]!.v6.starts).toBe(t1.prefix[0]!.v6.starts);
    expect(t2.prefix[0]!.v6.values).not.toBe(t1.prefix[0]!.v6.values);
    m.close();
  });
});

// The front's hashKey and pool member weights (SPEC 2 step 4, 6a): a different key moves keys,
// the same key decides the same; weights set the share; weight 0 takes nothing new while pinned
// flows stay (and are counted per back).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { validateTable, type TableContext } from '../../front/table/table-loader.js';
import { CompiledTable } from '../../front/table/compiled-table.js';
import { BUILTIN_HASH_KEY } from '../../front/table/maglev.js';
import { decide, DecisionInput, DecisionResult } from '../../front/decision.js';
import { frontConfigFromValue } from '../../front/front-config.js';
import { FlowPinning } from '../../front/flow-pinning.js';
import { PacketInfo } from '../../shared/packet/packet-info.js';
import { backendFlowsIndex, newCounterBlock } from '../../shared/metrics/counter-layout.js';

const ctx: TableContext = { services: ['2001:db8:5::80', '192.0.2.80'], mode: 'translate', encap: { source: 'service', source4: '', source6: '' } };
const KEY_A = '000102030405060708090a0b0c0d0e0f';
const KEY_B = '8f1e2d3c4b5a69788796a5b4c3d2e1f0';
const backs = { b1: { address: '2001:db8:b::1' }, b2: { address: '2001:db8:b::2' }, b3: { address: '2001:db8:b::3' }, b4: { address: '2001:db8:b::4' } };

function compile(members: unknown[], hashKey?: string, key = 'source') {
  const v = validateTable({ backs, pools: { p: { members, key } }, routes: [{ source: '::/0', to: 'p' }] }, 't.yaml', ctx);
  expect(v.errors).toEqual([]);
  const slots = new Map<string, number>();
  return CompiledTable.compile(v.table!, {
    services: ctx.services, flowLabelEnabled: true, lbspEnabled: true, hashKey,
    slotOf: (n) => { if (!slots.has(n)) slots.set(n, slots.size); return slots.get(n)!; },
  });
}

/** Back name per key for N sources 2001:db8:77::<i> (or flow labels i when byLabel). */
function decisions(t: CompiledTable, n: number, byLabel = false): string[] {
  const inp = new DecisionInput(), out = new DecisionResult();
  inp.family = 6;
  inp.service.set([0x20010db8, 0x00050000, 0, 0x80]);
  const res: string[] = [];
  for (let i = 0; i < n; i++) {
    inp.src.set([0x20010db8, 0x00770000, byLabel ? 1 : i >>> 16, byLabel ? 1 : i & 0xffff]);
    inp.flowLabel = byLabel ? i + 1 : 0;
    decide(t, inp, out);
    res.push(t.meta.backNames[out.back]!);
  }
  return res;
}

const count = (xs: string[]) => xs.reduce<Record<string, number>>((m, x) => ((m[x] = (m[x] ?? 0) + 1), m), {});

describe('hashKey', () => {
  const four = ['b1', 'b2', 'b3', 'b4'];
  for (const [kind, byLabel] of [['source', false], ['label', true]] as const) {
    it(`a different key maps at least 20% of ${kind} keys differently in a 4-member pool; the same key identically`, () => {
      const a = decisions(compile(four, KEY_A, kind), 40_000, byLabel);
      const a2 = decisions(compile(four, KEY_A, kind), 40_000, byLabel);
      const b = decisions(compile(four, KEY_B, kind), 40_000, byLabel);
      expect(a2).toEqual(a);
      const moved = a.filter((x, i) => x !== b[i]).length / a.length;
      console.log(`hashKey ${kind}: ${(moved * 100).toFixed(1)}% of keys on another back with another key`);
      expect(moved).toBeGreaterThanOrEqual(0.2);
    });
  }

  it('no key is the built-in key, announced in the table meta', () => {
    expect(compile(four).meta.builtInHashKey).toBe(true);
    expect(decisions(compile(four), 2000)).toEqual(decisions(compile(four, BUILTIN_HASH_KEY), 2000));
    expect(compile(four, KEY_A).meta.builtInHashKey).toBe(false);
  });

  it('front config: hex, a key file (hex or 16 raw bytes), the built-in default, and errors', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mslb-key-'));
    writeFileSync(join(dir, 'hex.key'), `${KEY_B.toUpperCase()}\n`);
    writeFileSync(join(dir, 'raw.key'), Buffer.from(KEY_A, 'hex'));
    writeFileSync(join(dir, 'short.key'), 'abcd\n');
    const cfg = (hashKey?: string) => frontConfigFromValue({ services: ['2001:db8:5::80'], ...(hashKey !== undefined ? { hashKey } : {}) }, join(dir, 'front.yaml'));
    expect(cfg().config!.hashKey).toBe(BUILTIN_HASH_KEY);
    expect(cfg().config!.hashKeySource).toBe('built-in');
    expect(cfg(KEY_A).config!.hashKey).toBe(KEY_A);
    expect(cfg('./hex.key').config!.hashKey).toBe(KEY_B);
    expect(cfg('./hex.key').config!.hashKeySource).toBe(join(dir, 'hex.key'));
    expect(cfg('raw.key').config!.hashKey).toBe(KEY_A);
    expect(cfg('abcdef').errors.map((e) => `${e.entry}: ${e.reason}`)).toEqual(['hashKey: must be 16 bytes as 32 hex digits (got 6 digits) or the path of a key file']);
    expect(cfg('short.key').errors[0]!.reason).toMatch(/must hold 16 bytes/);
    expect(cfg('missing.key').errors[0]!.reason).toMatch(/cannot read key file .*ENOENT/);
  });
});

describe('pool member weights', () => {
  it('spread within 2% of the weights (3:1:0:6)', () => {
    const t = compile([{ back: 'b1', weight: 3 }, 'b2', { back: 'b3', weight: 0 }, { back: 'b4', weight: 6 }], KEY_A);
    const n = 100_000;
    const c = count(decisions(t, n));
    const want: Record<string, number> = { b1: 0.3, b2: 0.1, b4: 0.6 };
    console.log(`weighted spread 3:1:0:6 over ${n} sources: ${JSON.stringify(c)}`);
    expect(c.b3).toBeUndefined();
    for (const [b, w] of Object.entries(want)) expect(Math.abs(c[b]! / n - w), b).toBeLessThan(0.02);
  });

  it('weight 0 drains: its keys move, the others stay; the lookup data shows it', () => {
    const before = decisions(compile(four(), KEY_A), 20_000);
    const t = compile(['b1', { back: 'b2', weight: 0 }, 'b3', 'b4'], KEY_A);
    const after = decisions(t, 20_000);
    expect(after.includes('b2')).toBe(false);
    const movedOthers = before.filter((x, i) => x !== 'b2' && after[i] !== x).length;
    expect(movedOthers / before.length).toBeLessThan(0.05); // Maglev: mostly only b2's keys move
    expect(t.targetMembers(0)).toEqual([
      { name: 'b1', weight: 1, up: true, draining: false }, { name: 'b2', weight: 0, up: true, draining: true },
      { name: 'b3', weight: 1, up: true, draining: false }, { name: 'b4', weight: 1, up: true, draining: false },
    ]);
    expect((t.meta.view.pools.p as { members: unknown[] }).members).toEqual(['b1', { back: 'b2', weight: 0 }, 'b3', 'b4']);
  });

  it('a flow pinned to a back stays when the back drains, and mslb_backend_flows counts it until it ends', () => {
    const counters = newCounterBlock();
    let now = 1000;
    const fp = new FlowPinning({ size: 64, tcpTimeout: 300, udpTimeout: 30, otherTimeout: 30 }, counters, () => now, 1);
    const t1 = compile(four(), KEY_A);
    fp.setTable(t1);
    const info = new PacketInfo();
    info.version = 6; info.proto = 6; info.l4Off = 40; info.srcPort = 40000; info.dstPort = 80; info.tcpFlags = 0x02;
    info.src.set([0x20010db8, 0x00770000, 0, 5]); info.dst.set([0x20010db8, 0x00050000, 0, 0x80]);
    expect(fp.lookup(info)).toBe(false);
    const b2 = t1.meta.backNames.indexOf('b2');
    fp.remember(info, b2, t1.a.backSlot[b2]!);
    const slot2 = t1.a.backSlot[b2]!;
    expect(counters[backendFlowsIndex(slot2)]).toBe(1);
    // b2 drains: a new table with weight 0; the pinned flow keeps going to b2
    const t2 = compile(['b1', { back: 'b2', weight: 0 }, 'b3', 'b4'], KEY_A);
    fp.setTable(t2);
    info.tcpFlags = 0x10;
    expect(fp.lookup(info)).toBe(true);
    expect(t2.meta.backNames[fp.back]).toBe('b2');
    expect(counters[backendFlowsIndex(slot2)]).toBe(1);
    // it ends (FIN), idles past the closing timeout and is swept: 0 left
    info.tcpFlags = 0x11;
    expect(fp.lookup(info)).toBe(true);
    now += 11_000;
    fp.endBatch(now);
    expect(counters[backendFlowsIndex(slot2)]).toBe(0);
  });
});

function four() { return ['b1', 'b2', 'b3', 'b4']; }

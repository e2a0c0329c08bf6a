import { describe, it, expect } from 'vitest';
import { validateTable, type TableContext } from '../../front/table/table-loader.js';
import { CompiledTable, type CompiledTableTransfer } from '../../front/table/compiled-table.js';
import { parseAddress } from '../../shared/table/addr.js';
import { sip1 } from '../../shared/packet/siphash.js';
import { decide, DecisionInput, DecisionResult, LBSP_IGNORED_NAMES, REASON_NAMES } from '../../front/decision.js';

const ctx: TableContext = { services: ['2001:db8:5::80', '192.0.2.80'], mode: 'translate', encap: { source: 'service', source4: '', source6: '' } };

function compile(table: unknown, opts: Partial<{ flowLabelEnabled: boolean; lbspEnabled: boolean }> = {}) {
  const v = validateTable(table, 'fixture.yaml', ctx);
  expect(v.errors).toEqual([]);
  const slots = new Map<string, number>();
  return CompiledTable.compile(v.table!, {
    services: ctx.services, flowLabelEnabled: opts.flowLabelEnabled ?? true, lbspEnabled: opts.lbspEnabled ?? true,
    slotOf: (n) => { if (!slots.has(n)) slots.set(n, slots.size); return slots.get(n)!; }, maglevSize: 65537,
  });
}

const base = {
  backs: {
    b1: { address: '2001:db8:b::1' },
    b2: { address: '2001:db8:b::2', mode: 'encap', serverId: '2001:db8:5::2' },
    b3: { address: '2001:db8:b::3' },
    b4: { address: '198.51.100.1' },
    b5: { address: '198.51.100.5' },
  },
  pools: {
    web: { members: ['b1', 'b2', 'b3'], key: 'label' },
    mixed: { members: ['b1', 'b3'], key: 'source+label' },
    strict: { members: ['b4', 'b5'], failClosed: true },
  },
  routes: [
    { source: '2001:db8:c1::/48', to: 'b1' },
    { source: '198.51.100.0/24', to: 'b4' },
    { source: '203.0.113.0/24', to: 'strict' },
    { source: '2001:db8:c3::/48', to: 'mixed' },
    { source: '::/0', to: 'web' },
  ],
};

interface Fixture { description: string; src: string; label?: number; lbspClient?: string; lbspServer?: string; down?: string[]; expect: string; reason: string }

// Katran-style fixture table: { description, input, expected back, expected reason }.
const fixtures: Fixture[] = [
  { description: 'prefix route to a single back', src: '2001:db8:c1::10', expect: 'b1', reason: 'source_prefix' },
  { description: 'IPv4 prefix route', src: '198.51.100.77', expect: 'b4', reason: 'source_prefix' },
  { description: 'no IPv4 route', src: '192.0.2.1', expect: '-', reason: 'no_route' },
  { description: 'LBSP server segment = a back address', src: '2001:db8:c1::10', lbspServer: '2001:db8:b::3', expect: 'b3', reason: 'lbsp_server' },
  { description: 'LBSP server segment = a serverId', src: '2001:db8:c1::10', lbspServer: '2001:db8:5::2', expect: 'b2', reason: 'lbsp_server' },
  { description: 'LBSP server naming a down back is ignored', src: '2001:db8:c1::10', lbspServer: '2001:db8:b::3', down: ['b3'], expect: 'b1', reason: 'source_prefix' },
  { description: 'LBSP client segment replaces the source', src: '2001:db8:ffff::1', lbspClient: '2001:db8:c1::99', expect: 'b1', reason: 'source_prefix' },
  { description: 'pool by flow label', src: '2001:db8:ffff::1', label: 0x12345, expect: 'pool:web', reason: 'flow_label' },
  { description: 'pool, label 0 falls back to the client key', src: '2001:db8:ffff::1', label: 0, expect: 'pool:web', reason: 'source_prefix' },
  { description: 'source+label pool', src: '2001:db8:c3::1', label: 7, expect: 'pool:mixed', reason: 'flow_label' },
  { description: 'single back down: fail-open', src: '2001:db8:c1::10', down: ['b1'], expect: 'b1', reason: 'source_prefix' },
  { description: 'failClosed pool with every member down', src: '203.0.113.9', down: ['b4', 'b5'], expect: '-', reason: 'backend_down' },
  { description: 'fail-open pool with every member down keeps its full-table choice', src: '2001:db8:ffff::1', label: 99, down: ['b1', 'b2', 'b3'], expect: 'pool:web', reason: 'flow_label' },
];

function run(t: CompiledTable, f: Fixture, inp = new DecisionInput(), out = new DecisionResult()) {
  const s = parseAddress(f.src)!;
  inp.family = s.family; inp.src.fill(0); inp.src.set(s.words);
  inp.service.fill(0); inp.service.set(parseAddress(s.family === 6 ? '2001:db8:5::80' : '192.0.2.80')!.words);
  inp.flowLabel = f.label ?? 0;
  inp.hasLbsp = !!(f.lbspClient || f.lbspServer);
  inp.lbspClient.fill(0); inp.lbspServer.fill(0);
  if (f.lbspClient) inp.lbspClient.set(parseAddress(f.lbspClient)!.words);
  if (f.lbspServer) inp.lbspServer.set(parseAddress(f.lbspServer)!.words);
  decide(t, inp, out);
  return out;
}

describe('decision pipeline (SPEC 2, steps 1-4)', () => {
  for (const f of fixtures) {
    it(f.description, () => {
      const t = compile(base);
      for (const d of f.down ?? []) t.a.up[t.a.backSlot[t.meta.backNames.indexOf(d)]!] = 0;
      t.refreshUp();
      const r = run(t, f);
      expect(REASON_NAMES[r.reason]).toBe(f.reason);
      if (f.expect === '-') expect(r.back).toBe(-1);
      else if (f.expect.startsWith('pool:')) {
        expect(t.meta.targetNames[r.target]).toBe(f.expect);
        const pool = (base.pools as Record<string, { members: string[] }>)[f.expect.slice(5)]!;
        expect(pool.members).toContain(t.meta.backNames[r.back]);
      } else expect(t.meta.backNames[r.back]).toBe(f.expect);
    });
  }

  it('key: label puts every source with one label on one back, and spreads labels evenly', () => {
    const t = compile(base);
    const inp = new DecisionInput(), out = new DecisionResult();
    const backs = new Set<number>();
    for (let i = 0; i < 500; i++) backs.add(run(t, { description: '', src: `2001:db8:ffff::${(i + 1).toString(16)}`, label: 0xabcde, expect: '', reason: '' }, inp, out).back);
    expect(backs.size).toBe(1);
    const counts = [0, 0, 0, 0, 0];
    const N = 30000;
    for (let l = 1; l <= N; l++) counts[run(t, { description: '', src: '2001:db8:ffff::1', label: l, expect: '', reason: '' }, inp, out).back]!++;
    const share = counts.slice(0, 3).map((c) => c / N);
    console.log(`labels 1..${N} over pool web (b1,b2,b3): shares ${share.map((x) => (x * 100).toFixed(2) + '%').join(' ')}`);
    for (const s of share) expect(Math.abs(s - 1 / 3)).toBeLessThan(0.02);
  });

  it('a member going down moves only its own keys (strict), and they spread over the others', () => {
    const t = compile(base);
    const inp = new DecisionInput(), out = new DecisionResult();
    const N = 30000;
    const before = new Int32Array(N + 1);
    for (let l = 1; l <= N; l++) before[l] = run(t, { description: '', src: '2001:db8:ffff::1', label: l, expect: '', reason: '' }, inp, out).back;
    const b2 = t.meta.backNames.indexOf('b2');
    t.a.up[t.a.backSlot[b2]!] = 0;
    expect(t.refreshUp()).toBeGreaterThan(0);
    let moved = 0, movedOthers = 0, onB2 = 0;
    const dest = [0, 0, 0, 0, 0];
    for (let l = 1; l <= N; l++) {
      const b = run(t, { description: '', src: '2001:db8:ffff::1', label: l, expect: '', reason: '' }, inp, out).back;
      expect(b === b2).toBe(false);
      if (before[l] === b2) { onB2++; dest[b]!++; }
      if (b !== before[l]) { moved++; if (before[l] !== b2) movedOthers++; }
    }
    console.log(`b2 down: moved ${moved}/${N} (${((moved / N) * 100).toFixed(2)}%), all from b2 (${onB2}); others moved ${movedOthers}; b2's keys went b1=${dest[0]} b3=${dest[2]}`);
    expect(movedOthers).toBe(0);
    expect(moved).toBe(onB2);
    expect(Math.abs(moved / N - 1 / 3)).toBeLessThan(0.02);
    expect(Math.abs(dest[0]! / onB2 - 0.5)).toBeLessThan(0.05);
    // Back up again: everything returns to where it was.
    t.a.up[t.a.backSlot[b2]!] = 1;
    t.refreshUp();
    for (let l = 1; l <= N; l += 7) expect(run(t, { description: '', src: '2001:db8:ffff::1', label: l, expect: '', reason: '' }, inp, out).back).toBe(before[l]);
  });

  it('before refreshUp() runs a down member is still avoided (probe)', () => {
    const t = compile(base);
    const b1 = t.meta.backNames.indexOf('b1');
    t.a.up[t.a.backSlot[b1]!] = 0; // no refreshUp
    for (let l = 1; l <= 2000; l++) expect(run(t, { description: '', src: '2001:db8:ffff::1', label: l, expect: '', reason: '' }).back).not.toBe(b1);
  });

  it('flow labels are ignored when flowLabel.enabled is false', () => {
    const t = compile(base, { flowLabelEnabled: false });
    const r = run(t, { description: '', src: '2001:db8:ffff::1', label: 5, expect: '', reason: '' });
    expect(REASON_NAMES[r.reason]).toBe('source_prefix');
  });

  it('a destination that is no service is refused', () => {
    const t = compile(base);
    const inp = new DecisionInput(), out = new DecisionResult();
    inp.family = 6; inp.src.set(parseAddress('2001:db8:c1::1')!.words); inp.service.set(parseAddress('2001:db8:5::81')!.words);
    expect(REASON_NAMES[decide(t, inp, out)]).toBe('not_service');
  });

  it('is the same decision after a transfer (shared memory, not a copy)', () => {
    const t = compile(base);
    const tr: CompiledTableTransfer = structuredClone(t.toTransfer());
    const w = CompiledTable.fromTransfer(tr);
    expect(w.a.up.buffer).toBeInstanceOf(SharedArrayBuffer);
    const f: Fixture = { description: '', src: '2001:db8:ffff::1', label: 77, expect: '', reason: '' };
    expect(run(w, f).back).toBe(run(t, f).back);
    // The main thread flips up[] and rebuilds: the clone sees it without a new post.
    const b = run(t, f).back;
    t.a.up[t.a.backSlot[b]!] = 0;
    t.refreshUp();
    expect(run(w, f).back).not.toBe(b);
    expect(run(w, f).back).toBe(run(t, f).back);
  });

  it('same hash everywhere: the pool member follows the keyed sip1(label) through the full table', () => {
    const t = compile(base);
    const r = run(t, { description: '', src: '2001:db8:ffff::1', label: 4242, expect: '', reason: '' });
    const j = t.a.targetPool[r.target]! * t.maglevSize + sip1(t.a.hashKey, 4242) % t.maglevSize;
    expect(r.back).toBe(t.a.maglevFull[j]);
  });
});

// SPEC 2 steps 1-2: what an LBSP option lets a client choose, and what it does not.
describe('LBSP trust', () => {
  const S1 = '2001:db8:5::80', S2 = '2001:db8:5::81';
  const tctx: TableContext = { services: [S1, S2], mode: 'encap', encap: { source: 'service', source4: '', source6: '' } };
  const table = {
    backs: {
      a1: { address: '2001:db8:b::a1' }, a2: { address: '2001:db8:b::a2', serverId: '2001:db8:5::a2' },
      a3: { address: '2001:db8:b::a3' }, d1: { address: '2001:db8:b::d1' },
      b1: { address: '2001:db8:b::b1' }, probe: { address: '2001:db8:b::99' },
    },
    pools: { s1: { members: ['a1', 'a2', { back: 'd1', weight: 0 }], key: 'source' } },
    routes: [
      { source: '2001:db8:c1::/48', to: 'a3', service: S1 },
      { source: '2001:db8:c2::/48', to: 's1', service: S1 },
      { source: '::/0', to: 'b1', service: S2 },
    ],
  };
  function compileTrust(extraRoutes: { source: string; to: string }[] = []) {
    const v = validateTable({ ...table, routes: [...table.routes, ...extraRoutes] }, 'trust.yaml', tctx);
    expect(v.errors).toEqual([]);
    const slots = new Map<string, number>();
    return CompiledTable.compile(v.table!, {
      services: tctx.services, flowLabelEnabled: true, lbspEnabled: true, maglevSize: 251, ownRoutes: table.routes.length,
      slotOf: (n) => { if (!slots.has(n)) slots.set(n, slots.size); return slots.get(n)!; },
    });
  }
  function ask(t: CompiledTable, src: string, server?: string, client?: string, service = S1) {
    const inp = new DecisionInput(), out = new DecisionResult();
    inp.family = 6; inp.src.set(parseAddress(src)!.words); inp.service.set(parseAddress(service)!.words);
    inp.hasLbsp = server !== undefined || client !== undefined;
    if (server) inp.lbspServer.set(parseAddress(server)!.words);
    if (client) inp.lbspClient.set(parseAddress(client)!.words);
    decide(t, inp, out);
    return { back: out.back < 0 ? '-' : t.meta.backNames[out.back]!, reason: REASON_NAMES[out.reason], ignored: LBSP_IGNORED_NAMES[out.lbspIgnored], fellBack: out.lbspClientFellBack };
  }

  it('a server segment naming another back of the service is honoured', () => {
    const t = compileTrust();
    expect(ask(t, '2001:db8:c1::10', '2001:db8:b::a1')).toEqual({ back: 'a1', reason: 'lbsp_server', ignored: '', fellBack: false });
    expect(ask(t, '2001:db8:c1::10', '2001:db8:5::a2')).toEqual({ back: 'a2', reason: 'lbsp_server', ignored: '', fellBack: false }); // by serverId
  });

  it('a server segment naming a back of another service is ignored (other_service): the route decides', () => {
    const t = compileTrust();
    expect(ask(t, '2001:db8:c1::10', '2001:db8:b::b1')).toEqual({ back: 'a3', reason: 'source_prefix', ignored: 'other_service', fellBack: false });
    expect(ask(t, '2001:db8:c1::10', '2001:db8:b::a1', undefined, S2)).toEqual({ back: 'b1', reason: 'source_prefix', ignored: 'other_service', fellBack: false });
  });

  it('unknown, down and draining backs are ignored with their reason', () => {
    const t = compileTrust();
    expect(ask(t, '2001:db8:c1::10', '2001:db8:b::77').ignored).toBe('unknown_server');
    expect(ask(t, '2001:db8:c1::10', '2001:db8:b::d1')).toEqual({ back: 'a3', reason: 'source_prefix', ignored: 'draining', fellBack: false });
    t.a.up[t.a.backSlot[t.meta.backNames.indexOf('a1')]!] = 0;
    t.refreshUp();
    expect(ask(t, '2001:db8:c1::10', '2001:db8:b::a1')).toEqual({ back: 'a3', reason: 'source_prefix', ignored: 'backend_down', fellBack: false });
  });

  it('a health-probe host route does not make its back one of the service\'s', () => {
    const t = compileTrust([{ source: '2001:db8:f0::1/128', to: 'probe' }]);
    expect(ask(t, '2001:db8:c1::10', '2001:db8:b::99').ignored).toBe('other_service');
    expect(ask(t, '2001:db8:f0::1').back).toBe('probe'); // the probe route itself still works
  });

  it('a client segment no route covers falls back to the IP source; a covered one is the key', () => {
    const t = compileTrust();
    expect(ask(t, '2001:db8:c1::10', undefined, 'fd00:1234::99')).toEqual({ back: 'a3', reason: 'source_prefix', ignored: '', fellBack: true });
    expect(ask(t, '2001:db8:c1::10', undefined, '2001:db8:c2::5').back).not.toBe('a3'); // the pool of c2
    expect(ask(t, '2001:db8:c1::10', undefined, '2001:db8:c2::5').fellBack).toBe(false);
    expect(ask(t, '2001:db8:99::1', undefined, '2001:db8:c1::10')).toEqual({ back: 'a3', reason: 'source_prefix', ignored: '', fellBack: false });
  });

  it('a draining pool member gets no new key', () => {
    const t = compileTrust();
    const seen = new Set<string>();
    for (let i = 1; i < 3000; i++) seen.add(ask(t, `2001:db8:c2::${i.toString(16)}`).back);
    expect([...seen].sort()).toEqual(['a1', 'a2']);
  });
});

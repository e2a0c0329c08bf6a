// The front's live admin routes (front/front-admin.ts) on a real AdminServer: /lookup with live
// health and pinned flows, /flows bounded, POST /reload answering the reload's result; plus the
// flow-table snapshot the workers answer with, the table hash and the reload gauges.
import { afterEach, describe, expect, it } from 'vitest';
import { request } from 'node:http';
import { validateTable, type TableContext } from '../../front/table/table-loader.js';
import { CompiledTable } from '../../front/table/compiled-table.js';
import { FlowPinning } from '../../front/flow-pinning.js';
import { PacketInfo } from '../../shared/packet/packet-info.js';
import { newCounterBlock } from '../../shared/metrics/counter-layout.js';
import { AdminServer, startAdminServer, isLoopbackPeer } from '../../shared/admin/admin-server.js';
import { frontAdminRoutes, FLOWS_MAX_LIMIT, type FrontAdminDeps } from '../../front/front-admin.js';
import { tableHash } from '../../front/table/table-hash.js';
import { ServiceMetrics } from '../../shared/metrics/registry.js';
import { parseAddress } from '../../shared/table/addr.js';
import type { ReloadResult } from '../../front/table-manager.js';

const S6 = '2001:db8:5::80';
const ctx: TableContext = { services: [S6, '192.0.2.80'], mode: 'translate', encap: { source: 'service', source4: '', source6: '' } };
const TABLE = {
  backs: { b1: { address: '2001:db8:b::1' }, b2: { address: '2001:db8:b::2' }, b4: { address: '198.51.100.1' } },
  pools: { web: { members: ['b1', 'b2'], key: 'label' } },
  routes: [{ source: '2001:db8:c1::/48', to: 'b1' }, { source: '198.51.100.0/24', to: 'b4' }, { source: '0.0.0.0/0', to: 'b4' }, { source: '::/0', to: 'web' }],
};

function compile(table: unknown, up?: Uint8Array): CompiledTable {
  const v = validateTable(table, 'table.yaml', ctx);
  expect(v.errors).toEqual([]);
  const slots = new Map<string, number>();
  return CompiledTable.compile(v.table!, {
    services: ctx.services, flowLabelEnabled: true, lbspEnabled: true, up,
    slotOf: (n) => { if (!slots.has(n)) slots.set(n, slots.size); return slots.get(n)!; },
  });
}

function tcp(src: string, sport: number): PacketInfo {
  const p = new PacketInfo();
  const a = parseAddress(src)!;
  p.version = a.family;
  p.proto = 6;
  p.src.set(a.words);
  p.dst.set(parseAddress(S6)!.words);
  p.srcPort = sport;
  p.dstPort = 80;
  p.l4Off = 40;
  p.tcpFlags = 0x02;
  return p;
}

function call(port: number, path: string, method = 'GET'): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: body ? JSON.parse(body) : undefined }));
    });
    req.on('error', reject);
    req.end();
  });
}

let server: AdminServer | undefined;
afterEach(async () => { await server?.close(); server = undefined; });

async function serve(deps: FrontAdminDeps): Promise<number> {
  const metrics = new ServiceMetrics({ role: 'front', sources: { blocks: () => [] } });
  server = await startAdminServer({ listen: '127.0.0.1:0', metrics, ready: () => ({ ready: true }), table: () => ({}), routes: frontAdminRoutes(deps) });
  return server.address()!.port;
}

describe('flow-table snapshot (what a worker answers)', () => {
  it('lists live pinned flows, filtered by back slot and source, bounded by limit', () => {
    const t = compile(TABLE);
    let now = 1_000_000;
    const fp = new FlowPinning({ size: 1024, tcpTimeout: 300, udpTimeout: 30, otherTimeout: 30 }, newCounterBlock(), () => now, 7);
    fp.setTable(t);
    const b1 = t.a.backSlot[t.meta.backNames.indexOf('b1')]!, b2 = t.a.backSlot[t.meta.backNames.indexOf('b2')]!;
    for (let i = 0; i < 5; i++) fp.remember(tcp('2001:db8:c1::10', 40000 + i), t.meta.backNames.indexOf('b1'), b1);
    fp.remember(tcp('2001:db8:99::1', 50000), t.meta.backNames.indexOf('b2'), b2);
    fp.endBatch(now);
    now += 1500;
    const all = fp.snapshot({ type: 'flows', id: 1, slot: -1, limit: 100 }, 0);
    expect(all).toMatchObject({ type: 'flows', id: 1, queue: 0, total: 6, matched: 6 });
    const one = fp.snapshot({ type: 'flows', id: 2, slot: b2, limit: 100 }, 3);
    expect(one.flows).toEqual([{ kind: 'flow', family: 6, proto: 6, src: Array.from(parseAddress('2001:db8:99::1')!.words), dst: Array.from(parseAddress(S6)!.words), sport: 50000, dport: 80, fragId: 0, slot: b2, idleMs: 1500, expiresInMs: 298_500, closing: false }]);
    const bounded = fp.snapshot({ type: 'flows', id: 3, slot: b1, limit: 2 }, 0);
    expect(bounded.matched).toBe(5);
    expect(bounded.flows).toHaveLength(2);
    const bySrc = fp.snapshot({ type: 'flows', id: 4, slot: -1, family: 6, src: Array.from(parseAddress('2001:db8:c1::10')!.words), dport: 80, sport: 40003, limit: 10 }, 0);
    expect(bySrc.flows.map((f) => f.sport)).toEqual([40003]);
    now += 301_000; // past the TCP idle timeout: nothing live
    expect(fp.snapshot({ type: 'flows', id: 5, slot: -1, limit: 10 }, 0).matched).toBe(0);
  });
});

describe('front admin routes', () => {
  function deps(t: CompiledTable, fp: FlowPinning, reload?: () => { result: ReloadResult; file: string; hash: string }): FrontAdminDeps {
    return {
      table: () => t,
      // two workers answering the same table: totals are summed
      queryFlows: async (q) => [fp.snapshot({ ...q, type: 'flows', id: 1 }, 0), fp.snapshot({ ...q, type: 'flows', id: 1 }, 1)],
      reload: reload ?? (() => ({ result: { outcome: 'unchanged', errors: [] }, file: '/etc/mslb/table.yaml', hash: 'abc' })),
    };
  }

  it('GET /lookup answers with live health, the matched route and the pinned flows of that source', async () => {
    const up = new Uint8Array(new SharedArrayBuffer(8)).fill(1);
    const t = compile(TABLE, up);
    const fp = new FlowPinning({ size: 256, tcpTimeout: 300, udpTimeout: 30, otherTimeout: 30 }, newCounterBlock(), () => 5000, 1);
    fp.setTable(t);
    const b1 = t.meta.backNames.indexOf('b1');
    fp.remember(tcp('2001:db8:99::1', 41000), b1, t.a.backSlot[b1]!);
    const port = await serve(deps(t, fp));
    const r = await call(port, '/lookup?src=2001:db8:99::1&label=12345');
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ action: 'forward', reason: 'flow_label', pool: 'web', route: { source: '::/0', to: 'web' }, failOpen: false, down: [], live: true, pinsMatched: 2 });
    expect(r.body.pins[0]).toMatchObject({ kind: 'flow', proto: 6, src: '2001:db8:99::1', dst: S6, sport: 41000, dport: 80, back: 'b1' });
    // the front's health flips: the answer follows at once (up[] is the live one)
    up[t.a.backSlot[t.meta.backNames.indexOf('b1')]!] = 0;
    up[t.a.backSlot[t.meta.backNames.indexOf('b2')]!] = 0;
    t.refreshUp();
    const down = await call(port, '/lookup?src=2001:db8:99::1&label=12345&proto=tcp&dport=80&sport=1');
    expect(down.body).toMatchObject({ failOpen: true, down: ['b1', 'b2'], pinsMatched: 0 });
    const v4 = await call(port, '/lookup?src=198.51.100.7');
    expect(v4.body).toMatchObject({ back: 'b4', address: '198.51.100.1', route: { source: '198.51.100.0/24', to: 'b4' }, pool: null, service: '192.0.2.80' });
    for (const bad of ['/lookup', '/lookup?src=nope', '/lookup?src=2001:db8::1&label=2000000', '/lookup?src=2001:db8::1&proto=bogus', '/lookup?src=2001:db8::1&service=192.0.2.80']) {
      const b = await call(port, bad);
      expect(b.status, bad).toBe(400);
      expect(typeof b.body.error).toBe('string');
    }
    expect((await call(port, '/lookup?src=2001:db8::1', 'POST')).status).toBe(405);
  });

  it('GET /flows lists pinned flows, by back, bounded by limit (default 100, at most 1000)', async () => {
    const t = compile(TABLE);
    const fp = new FlowPinning({ size: 4096, tcpTimeout: 300, udpTimeout: 30, otherTimeout: 30 }, newCounterBlock(), () => 5000, 1);
    fp.setTable(t);
    const b1 = t.meta.backNames.indexOf('b1'), b2 = t.meta.backNames.indexOf('b2');
    for (let i = 0; i < 700; i++) fp.remember(tcp(`2001:db8:c1::${(i + 1).toString(16)}`, 40000), b1, t.a.backSlot[b1]!);
    fp.remember(tcp('2001:db8:99::1', 40000), b2, t.a.backSlot[b2]!);
    const port = await serve(deps(t, fp));
    const d = await call(port, '/flows');
    expect(d.status).toBe(200);
    expect(d.body).toMatchObject({ total: 1402, matched: 1402, workers: 2, limit: 100, truncated: true });
    expect(d.body.flows).toHaveLength(100);
    const max = await call(port, '/flows?limit=100000');
    expect(max.body.limit).toBe(FLOWS_MAX_LIMIT);
    expect(max.body.flows).toHaveLength(FLOWS_MAX_LIMIT);
    const byBack = await call(port, '/flows?back=b2');
    expect(byBack.body).toMatchObject({ back: 'b2', matched: 2, truncated: false });
    expect(byBack.body.flows.map((f: { back: string; src: string }) => [f.back, f.src])).toEqual([['b2', '2001:db8:99::1'], ['b2', '2001:db8:99::1']]);
    expect((await call(port, '/flows?back=nope')).status).toBe(404);
    expect((await call(port, '/flows?limit=0')).status).toBe(400);
    expect((await call(port, '/flows?limit=x')).status).toBe(400);
  });

  it('one flow-table question at a time: a second one meanwhile gets 429', async () => {
    const t = compile(TABLE);
    let release: () => void = () => undefined;
    const port = await serve({
      table: () => t,
      queryFlows: () => new Promise((resolve) => { release = () => resolve([]); }),
      reload: () => ({ result: { outcome: 'unchanged', errors: [] }, file: '', hash: '' }),
    });
    const first = call(port, '/flows');
    await new Promise((r) => setTimeout(r, 50));
    const second = await call(port, '/lookup?src=2001:db8::1');
    expect(second.status).toBe(429);
    release();
    expect((await first).status).toBe(200);
    const third = call(port, '/flows');
    await new Promise((r) => setTimeout(r, 50));
    release();
    expect((await third).status).toBe(200);
  });

  it('POST /reload answers 200 when applied or unchanged, 422 with the errors when rejected; GET is refused', async () => {
    const t = compile(TABLE);
    const fp = new FlowPinning({ size: 16, tcpTimeout: 300, udpTimeout: 30, otherTimeout: 30 }, newCounterBlock(), () => 0, 1);
    let next: ReloadResult = { outcome: 'installed', errors: [] };
    const port = await serve(deps(t, fp, () => ({ result: next, file: '/t.yaml', hash: '0123456789abcdef' })));
    expect(await call(port, '/reload', 'POST')).toEqual({ status: 200, body: { result: 'installed', file: '/t.yaml', hash: '0123456789abcdef' } });
    next = { outcome: 'rejected', errors: [{ file: '/t.yaml', entry: 'routes[0].to', reason: 'unknown back or pool "zz"' }] };
    const r = await call(port, '/reload', 'POST');
    expect(r.status).toBe(422);
    expect(r.body).toMatchObject({ result: 'rejected', errors: [{ entry: 'routes[0].to' }] });
    expect((await call(port, '/reload')).status).toBe(405);
  });

  it('reload is for loopback peers only', () => {
    for (const a of ['127.0.0.1', '::1', '::ffff:127.0.0.1', '127.8.9.1']) expect(isLoopbackPeer(a), a).toBe(true);
    for (const a of ['192.0.2.1', '2001:db8::1', '::ffff:192.0.2.1', undefined]) expect(isLoopbackPeer(a), String(a)).toBe(false);
    // a command on the host reaching a fabric admin.listen comes from that same address
    expect(isLoopbackPeer('2001:db8:e1::2', '2001:db8:e1::2')).toBe(true);
    expect(isLoopbackPeer('2001:db8:e1::9', '2001:db8:e1::2')).toBe(false);
  });
});

describe('table hash and reload gauges', () => {
  it('equal tables give equal hashes whatever the key order; a change gives another', () => {
    const a = compile(TABLE).meta.view;
    const reordered = compile({ routes: TABLE.routes, pools: TABLE.pools, backs: { b4: TABLE.backs.b4, b2: TABLE.backs.b2, b1: TABLE.backs.b1 } }).meta.view;
    expect(tableHash(a)).toMatch(/^[0-9a-f]{16}$/);
    expect(tableHash(reordered)).toBe(tableHash(a)); // loadedAt differs too: not hashed
    const changed = compile({ ...TABLE, pools: { web: { members: ['b1', 'b2'], key: 'source' } } }).meta.view;
    expect(tableHash(changed)).not.toBe(tableHash(a));
  });

  it('mslb_config_last_reload_successful follows the file in force; mslb_table_info carries the hash', async () => {
    const m = new ServiceMetrics({ role: 'front', sources: { blocks: () => [] } });
    const gauge = async () => /^mslb_config_last_reload_successful (\d)$/m.exec(await m.metrics())?.[1];
    expect(await gauge()).toBe('0');
    m.markLoaded();
    expect(await gauge()).toBe('1');
    m.recordReload(false);
    expect(await gauge()).toBe('0');
    m.markInSync();
    expect(await gauge()).toBe('1');
    m.recordReload(false);
    m.recordReload(true);
    expect(await gauge()).toBe('1');
    expect(await m.metrics()).not.toMatch(/^mslb_table_info\{/m);
    m.setTableHash('0123456789abcdef');
    expect(await m.metrics()).toMatch(/^mslb_table_info\{hash="0123456789abcdef"\} 1$/m);
    m.setTableHash('fedcba9876543210');
    const text = await m.metrics();
    expect(text.match(/^mslb_table_info\{/gm)).toHaveLength(1);
    const back = new ServiceMetrics({ role: 'back', sources: { blocks: () => [] } });
    back.markLoaded();
    expect(await back.metrics()).toMatch(/^mslb_config_last_reload_successful 1$/m);
    expect(await back.metrics()).not.toMatch(/mslb_table_info/);
  });
});

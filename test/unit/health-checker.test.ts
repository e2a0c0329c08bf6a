// Health checks: the plan from the table (defaults, overrides, probe sources and internal routes,
// errors naming the entry), rise/fall, the checker flipping up[] and rebuilding the pools' alive
// tables so only the down back's keys move, and the real HTTP/TCP probes against loopback servers.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { addressInPrefix, HealthChecker, HealthState, planHealthChecks, realProbes, type Probes, type HealthDefaults } from '../../front/health-checker.js';
import { parseTableText } from '../../front/table/table-file.js';
import type { ValidatedTable } from '../../front/table/table-loader.js';
import { CompiledTable } from '../../front/table/compiled-table.js';
import { createLogger } from '../../shared/log.js';
import { decide, DecisionInput, DecisionResult } from '../../front/decision.js';
import * as addr from '../../shared/table/addr.js';

const SERVICES = ['2001:db8:5::80', '192.0.2.80'];
const DEFAULTS: HealthDefaults = { interval: 2, timeout: 1, rise: 2, fall: 3, probePrefix6: '2001:db8:f::/112', probePrefix4: '192.0.2.192/27' };

function table(text: string): ValidatedTable {
  const r = parseTableText(text, '/t/table.yaml', { services: SERVICES, mode: 'translate', encap: { source: 'service', source4: '', source6: '' } });
  if (!r.table) throw new Error(JSON.stringify(r.errors));
  return r.table;
}

const TABLE = `backs:
  b1:
    addresses: { "2001:db8:5::80": 2001:db8:b::1, "192.0.2.80": 198.51.100.1 }
    healthCheck: { url: "http://[2001:db8:e1::2]:9102/readyz", servicePort: 80 }
  b2:
    addresses: { "2001:db8:5::80": 2001:db8:b::2 }
    healthCheck: { url: "http://[2001:db8:e2::2]:9103/readyz", servicePort: 443, interval: 1, timeout: 1, rise: 1, fall: 2 }
  b3: { address: 2001:db8:b::3 }
pools:
  web: { members: [b1, b2, b3] }
routes:
  - { source: ::/0, to: web }
  - { source: 0.0.0.0/0, to: b1 }
`;

function slots() {
  const m = new Map<string, number>();
  return (n: string) => { if (!m.has(n)) m.set(n, m.size); return m.get(n)!; };
}

describe('planHealthChecks', () => {
  it('takes defaults from the front config and overrides from the table', () => {
    const p = planHealthChecks(table(TABLE), { services: SERVICES, healthCheck: DEFAULTS }, slots());
    expect(p.errors).toEqual([]);
    expect(p.backs.map((b) => b.name)).toEqual(['b1', 'b2']); // b3 has no health check: counts as up
    expect(p.backs[0]).toMatchObject({ slot: 0, intervalMs: 2000, timeoutMs: 1000, rise: 2, fall: 3, url: 'http://[2001:db8:e1::2]:9102/readyz' });
    expect(p.backs[1]).toMatchObject({ slot: 1, intervalMs: 1000, timeoutMs: 1000, rise: 1, fall: 2 });
  });

  it('probes every service a back carries from prefix+slot+1, with an internal route per source', () => {
    const p = planHealthChecks(table(TABLE), { services: SERVICES, healthCheck: DEFAULTS }, slots());
    expect(p.backs[0]!.services).toEqual([
      { kind: 'tcp', service: '2001:db8:5::80', family: 6, port: 80, source: '2001:db8:f::1' },
      { kind: 'tcp', service: '192.0.2.80', family: 4, port: 80, source: '192.0.2.193' },
    ]);
    expect(p.backs[1]!.services).toEqual([{ kind: 'tcp', service: '2001:db8:5::80', family: 6, port: 443, source: '2001:db8:f::2' }]);
    expect(p.routes.map((r) => `${r.source} -> ${r.to}`)).toEqual(['2001:db8:f::1/128 -> b1', '192.0.2.193/32 -> b1', '2001:db8:f::2/128 -> b2']);
  });

  it('the internal routes send each probe source to its back, over any operator route', () => {
    const t = table(TABLE);
    const slotOf = slots();
    const p = planHealthChecks(t, { services: SERVICES, healthCheck: DEFAULTS }, slotOf);
    const ct = CompiledTable.compile({ ...t, routes: [...t.routes, ...p.routes] }, { services: SERVICES, flowLabelEnabled: false, lbspEnabled: false, slotOf });
    const inp = new DecisionInput();
    const out = new DecisionResult();
    for (const [src, svc, back] of [['2001:db8:f::1', SERVICES[0], 'b1'], ['2001:db8:f::2', SERVICES[0], 'b2'], ['192.0.2.193', SERVICES[1], 'b1']] as const) {
      const a = src.includes(':') ? 6 : 4;
      inp.family = a;
      inp.src.fill(0); inp.service.fill(0);
      inp.src.set(addr.parseAddress(src)!.words);
      inp.service.set(addr.parseAddress(svc)!.words);
      decide(ct, inp, out);
      expect(ct.meta.backNames[out.back], src).toBe(back);
    }
  });

  it('names the entry when a service probe cannot have a source', () => {
    const noPrefix = { ...DEFAULTS, probePrefix6: '', probePrefix4: '' };
    const p = planHealthChecks(table(TABLE), { services: SERVICES, healthCheck: noPrefix }, slots());
    expect(p.errors).toHaveLength(2);
    expect(p.errors[0]).toEqual({ file: '/t/table.yaml', entry: 'backs.b1.healthCheck.servicePort', reason: expect.stringMatching(/set healthCheck\.probePrefix6 or healthCheck\.probePrefix4 in the front config \(the back carries IPv6 service 2001:db8:5::80 and IPv4 service 192\.0\.2\.80\)/) });
    expect(p.errors[1]!.reason).toMatch(/set healthCheck\.probePrefix6 in the front config \(the back carries IPv6 service 2001:db8:5::80\)$/);
    // Only the IPv4 prefix missing: b1 is probed over IPv6 only, no error.
    const only6 = planHealthChecks(table(TABLE), { services: SERVICES, healthCheck: { ...DEFAULTS, probePrefix4: '' } }, slots());
    expect(only6.errors).toEqual([]);
    expect(only6.backs[0]!.services.map((s) => s.family)).toEqual([6]);
    // A prefix too small for the slot.
    const tiny = planHealthChecks(table(TABLE), { services: SERVICES, healthCheck: { ...DEFAULTS, probePrefix6: '2001:db8:f::/127' } }, slots());
    expect(tiny.errors).toEqual([{ file: '/t/table.yaml', entry: 'backs.b2.healthCheck.servicePort', reason: expect.stringMatching(/probePrefix6 2001:db8:f::\/127 has no room for back b2/) }]);
  });

  it('a health check with nothing to probe is an error', () => {
    const t = table('backs:\n  b1: { address: 2001:db8:b::1, healthCheck: { interval: 5 } }\nroutes:\n  - { source: ::/0, to: b1 }\n');
    const p = planHealthChecks(t, { services: SERVICES, healthCheck: DEFAULTS }, slots());
    expect(p.errors).toEqual([{ file: '/t/table.yaml', entry: 'backs.b1.healthCheck', reason: expect.stringMatching(/needs url .*, servicePort \(TCP\), udp, dns or http/) }]);
  });

  it('addressInPrefix adds with carry and refuses what does not fit', () => {
    expect(addressInPrefix('2001:db8:f::/64', 1)).toBe('2001:db8:f::1');
    expect(addressInPrefix('2001:db8:f::ffff:ffff/96', 1)).toBe('2001:db8:f::1:0:0');
    expect(addressInPrefix('192.0.2.192/27', 31)).toBe('192.0.2.223');
    expect(addressInPrefix('192.0.2.192/27', 32)).toBeNull();
  });
});

describe('HealthState', () => {
  it('goes down after fall failures in a row and up after rise successes in a row', () => {
    const s = new HealthState(2, 3);
    expect([false, false, true, false, false].map((ok) => s.record(ok))).toEqual([null, null, null, null, null]);
    expect(s.record(false)).toBe('down');
    expect(s.record(false)).toBeNull();
    expect(s.record(true)).toBeNull();
    expect(s.record(false)).toBeNull();
    expect(s.record(true)).toBeNull();
    expect(s.record(true)).toBe('up');
    expect(s.up).toBe(true);
  });
});

describe('HealthChecker', () => {
  function setup() {
    const t = table(TABLE);
    const slotOf = slots();
    const plan = planHealthChecks(t, { services: SERVICES, healthCheck: DEFAULTS }, slotOf);
    const up = new Uint8Array(new SharedArrayBuffer(16)).fill(1);
    const ct = CompiledTable.compile({ ...t, routes: [...t.routes, ...plan.routes] }, { services: SERVICES, flowLabelEnabled: false, lbspEnabled: false, slotOf, up });
    const answers = new Map<string, boolean>(); // probe key -> ok
    const calls: string[] = [];
    const probes: Probes = {
      http: async (url) => { calls.push(`http ${url}`); return answers.get(url) === false ? { ok: false, detail: 'HTTP 503', reason: 'bad_status' } : { ok: true, detail: 'HTTP 200' }; },
      tcp: async (host, port, src) => { const k = `${host}:${port}`; calls.push(`tcp ${k} from ${src}`); return answers.get(k) === false ? { ok: false, detail: 'connect ECONNREFUSED', reason: 'refused' } : { ok: true, detail: 'connected' }; },
      udp: async () => { throw new Error('no udp probe in this table'); },
      dns: async () => { throw new Error('no dns probe in this table'); },
      httpService: async () => { throw new Error('no http probe in this table'); },
    };
    const lines: Record<string, unknown>[] = [];
    const added: string[] = [];
    let refreshes = 0;
    const hc = new HealthChecker({
      log: createLogger({ level: 'debug', sink: (l) => lines.push(JSON.parse(l) as Record<string, unknown>) }),
      up,
      refresh: () => { refreshes++; ct.refreshUp(); },
      probes,
      addSource: async (cidr) => { added.push(cidr); },
      schedule: false,
    });
    hc.update(plan.backs);
    return { t, ct, plan, up, answers, calls, lines, added, hc, refreshes: () => refreshes, slotOf };
  }

  /** Back chosen for each of n IPv6 client keys. */
  function spread(ct: CompiledTable, n: number): string[] {
    const inp = new DecisionInput();
    const out = new DecisionResult();
    inp.family = 6;
    inp.service.set(addr.parseAddress(SERVICES[0])!.words);
    const res: string[] = [];
    for (let i = 0; i < n; i++) {
      inp.src.set([0x20010db8, 0xc1, 0, i + 1]);
      decide(ct, inp, out);
      res.push(ct.meta.backNames[out.back]!);
    }
    return res;
  }

  it('adds the probe sources and probes the readyz URL and every carried service', async () => {
    const h = setup();
    expect(h.added).toEqual(['2001:db8:f::1/128', '192.0.2.193/32', '2001:db8:f::2/128']);
    await h.hc.checkNow('b1');
    expect(h.calls).toEqual(['http http://[2001:db8:e1::2]:9102/readyz', 'tcp 2001:db8:5::80:80 from 2001:db8:f::1', 'tcp 192.0.2.80:80 from 192.0.2.193']);
  });

  it('a dead server behind a live back (readyz fine, service refused) takes the back down after `fall` rounds; only its keys move', async () => {
    const h = setup();
    const before = spread(h.ct, 300);
    expect(new Set(before)).toEqual(new Set(['b1', 'b2', 'b3']));
    h.answers.set('192.0.2.80:80', false);
    await h.hc.checkNow('b1');
    await h.hc.checkNow('b1');
    expect(h.up[0]).toBe(1);
    await h.hc.checkNow('b1');
    expect(h.up[0]).toBe(0);
    const down = h.lines.find((l) => l.event === 'backend_down');
    expect(down).toMatchObject({ level: 'warn', backend: 'b1', slot: 0, fall: 3, kind: 'tcp', reason: 'refused', detail: 'tcp 192.0.2.80:80 from 192.0.2.193: connect ECONNREFUSED' });
    const after = spread(h.ct, 300);
    for (let i = 0; i < before.length; i++) {
      if (before[i] === 'b1') expect(after[i]).not.toBe('b1');
      else expect(after[i], `key ${i}`).toBe(before[i]); // keys of other backs stay
    }
    // Back after `rise` good rounds: every key where it was.
    h.answers.delete('192.0.2.80:80');
    await h.hc.checkNow('b1');
    expect(h.up[0]).toBe(0);
    await h.hc.checkNow('b1');
    expect(h.up[0]).toBe(1);
    expect(h.lines.find((l) => l.event === 'backend_up')).toMatchObject({ backend: 'b1', rise: 2, kind: 'tcp', reason: 'refused' });
    expect(spread(h.ct, 300)).toEqual(before);
  });

  it('a failing readyz alone also counts; thresholds come from the table (b2: fall 2, rise 1)', async () => {
    const h = setup();
    h.answers.set('http://[2001:db8:e2::2]:9103/readyz', false);
    await h.hc.checkNow('b2');
    expect(h.up[1]).toBe(1);
    await h.hc.checkNow('b2');
    expect(h.up[1]).toBe(0);
    h.answers.clear();
    await h.hc.checkNow('b2');
    expect(h.up[1]).toBe(1);
  });

  it('a reload that drops a back\'s health check marks it up again; one that keeps it keeps its state', async () => {
    const h = setup();
    h.answers.set('http://[2001:db8:e2::2]:9103/readyz', false);
    await h.hc.checkNow('b2');
    await h.hc.checkNow('b2');
    expect(h.up[1]).toBe(0);
    h.hc.update(h.plan.backs); // same table again
    expect(h.up[1]).toBe(0);
    expect(h.hc.status().find((s) => s.name === 'b2')).toMatchObject({ up: false, failures: 2 });
    h.hc.update(h.plan.backs.filter((b) => b.name !== 'b2'));
    expect(h.up[1]).toBe(1);
    expect(h.lines.some((l) => l.event === 'health_check_stopped' && l.backend === 'b2')).toBe(true);
    await expect(h.hc.checkNow('b2')).rejects.toThrow(/no health check for b2/);
  });
});

describe('real probes (loopback)', () => {
  let http: Server;
  let httpPort = 0;
  let status = 200;
  beforeAll(async () => {
    http = createServer((_req, res) => { res.writeHead(status); res.end('x'); });
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', () => r()));
    httpPort = (http.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((r) => http.close(() => r())));

  it('HTTP: 2xx is good, 503 is not, a closed port is not', async () => {
    status = 200;
    expect(await realProbes.http(`http://127.0.0.1:${httpPort}/readyz`, 2000)).toEqual({ ok: true, detail: 'HTTP 200' });
    status = 503;
    expect(await realProbes.http(`http://127.0.0.1:${httpPort}/readyz`, 2000)).toEqual({ ok: false, detail: 'HTTP 503', reason: 'bad_status' });
    const closed = createTcpServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', () => r()));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const r = await realProbes.http(`http://127.0.0.1:${port}/`, 2000);
    expect(r.ok).toBe(false);
    expect(r.detail).toMatch(/ECONNREFUSED/);
    expect(r.reason).toBe('refused');
  });

  it('HTTP: a server that never answers times out', async () => {
    const silent = createTcpServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    const port = (silent.address() as AddressInfo).port;
    const r = await realProbes.http(`http://127.0.0.1:${port}/`, 200);
    expect(r).toEqual({ ok: false, detail: 'timeout after 200 ms', reason: 'timeout' });
    silent.close();
  });

  it('TCP: connect from the given source is good; refused is not', async () => {
    const srv = createTcpServer((s) => s.on('error', () => undefined));
    const peers: string[] = [];
    srv.on('connection', (s) => peers.push(s.remoteAddress ?? ''));
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const port = (srv.address() as AddressInfo).port;
    expect(await realProbes.tcp('127.0.0.1', port, '127.0.0.2', 2000)).toEqual({ ok: true, detail: 'connected' });
    await new Promise((r) => setTimeout(r, 50));
    expect(peers).toEqual(['127.0.0.2']);
    await new Promise<void>((r) => srv.close(() => r()));
    const r = await realProbes.tcp('127.0.0.1', port, '127.0.0.2', 2000);
    expect(r.ok).toBe(false);
    expect(r.detail).toMatch(/ECONNREFUSED/);
  });
});

// Health checks: the plan from the table (defaults, overrides, probe sources and internal routes,
// errors naming the entry), rise/fall, the checker flipping up[] and rebuilding the pools' alive
// tables so only the down back's keys move, and the real HTTP/TCP/UDP/DNS probes against loopback
// servers; the udp/dns/http keys of the table, the probe metrics and the state-change log lines.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { createSocket } from 'node:dgram';
import { Registry } from 'prom-client';
import { addressInPrefix, HealthChecker, HealthState, planHealthChecks, realProbes, type Probes, type ProbeResult, type HealthDefaults } from '../../front/health-checker.js';
import { dnsNameProblem, encodeDnsQuery, parseDnsReply } from '../../front/dns-message.js';
import { HEALTH_FAILURE_REASONS, registerHealthMetrics } from '../../shared/metrics/health-metrics.js';
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

// ---- UDP, DNS and HTTP service checks ---------------------------------------------------------

const KINDS_TABLE = `backs:
  b1:
    addresses: { "2001:db8:5::80": 2001:db8:b::1, "192.0.2.80": 198.51.100.1 }
    healthCheck:
      udp: { port: 7, send: "ping", expectHex: "70:6f:6e:67" }
      dns: { name: www.example.com., type: AAAA }
      http: { port: 8080, path: /health, host: www.example.com, status: "200-299", body: ok }
  b2:
    addresses: { "2001:db8:5::80": 2001:db8:b::2 }
    healthCheck: { servicePort: 80, udp: { port: 53, sendHex: "00ff" }, dns: { name: example.com, rcode: NXDOMAIN, port: 5353 }, http: { status: [200, 204] } }
routes:
  - { source: ::/0, to: b1 }
`;

describe('healthCheck.udp / dns / http in the table', () => {
  const ctx = { services: SERVICES, mode: 'translate' as const, encap: { source: 'service', source4: '', source6: '' } };
  const errorsOf = (hc: string) => parseTableText(`backs:\n  b1: { address: 2001:db8:b::1, healthCheck: ${hc} }\nroutes:\n  - { source: ::/0, to: b1 }\n`, '/t/table.yaml', ctx).errors.map((e) => `${e.entry}: ${e.reason}`);

  it('parses each kind with its defaults', () => {
    const t = table(KINDS_TABLE);
    expect(t.backs[0]!.healthCheck).toEqual({
      udp: { port: 7, sendHex: Buffer.from('ping').toString('hex'), expectHex: '706f6e67' },
      dns: { port: 53, name: 'www.example.com.', type: 28 },
      http: { port: 8080, path: '/health', host: 'www.example.com', status: [[200, 299]], body: 'ok' },
    });
    expect(t.backs[1]!.healthCheck).toEqual({
      servicePort: 80,
      udp: { port: 53, sendHex: '00ff' },
      dns: { port: 5353, name: 'example.com', type: 1, rcode: 3 },
      http: { port: 80, path: '/', status: [[200, 200], [204, 204]] },
    });
    // Nothing said: any reply to "mslb-health\n"; 2xx/3xx.
    expect(table('backs:\n  b1: { address: 2001:db8:b::1, healthCheck: { udp: { port: 9 }, http: {} } }\nroutes:\n  - { source: ::/0, to: b1 }\n').backs[0]!.healthCheck).toEqual({
      udp: { port: 9, sendHex: Buffer.from('mslb-health\n').toString('hex') },
      http: { port: 80, path: '/', status: [[200, 399]] },
    });
  });

  it('rejects bad entries, naming each', () => {
    expect(errorsOf('{ udp: { send: x } }')).toEqual(['backs.b1.healthCheck.udp.port: is required (the service port to probe)']);
    expect(errorsOf('{ udp: { port: 7, send: a, sendHex: "61" } }')).toEqual(['backs.b1.healthCheck.udp: give send or sendHex, not both']);
    expect(errorsOf('{ udp: { port: 7, expectHex: "abc" } }')[0]).toMatch(/^backs\.b1\.healthCheck\.udp\.expectHex: must be hex bytes/);
    expect(errorsOf('{ udp: { port: 70000 } }')).toEqual(['backs.b1.healthCheck.udp.port: must be a port, an integer from 1 to 65535']);
    expect(errorsOf('{ udp: 7 }')[0]).toMatch(/^backs\.b1\.healthCheck\.udp: must be \{ port/);
    expect(errorsOf('{ dns: { type: A } }')[0]).toMatch(/^backs\.b1\.healthCheck\.dns\.name: is required/);
    expect(errorsOf('{ dns: { name: "bad name.example" } }')[0]).toMatch(/^backs\.b1\.healthCheck\.dns\.name: not a DNS name: label "bad name"/);
    expect(errorsOf('{ dns: { name: example.com, type: BOGUS } }')[0]).toMatch(/^backs\.b1\.healthCheck\.dns\.type: must be A, NS/);
    expect(errorsOf('{ dns: { name: example.com, rcode: 16 } }')[0]).toMatch(/^backs\.b1\.healthCheck\.dns\.rcode: must be NOERROR/);
    expect(errorsOf('{ http: { status: "299-200" } }')[0]).toMatch(/^backs\.b1\.healthCheck\.http\.status: must be a status/);
    expect(errorsOf('{ http: { path: health } }')[0]).toMatch(/^backs\.b1\.healthCheck\.http\.path: must start with \//);
    expect(errorsOf('{ http: { verb: POST } }')).toEqual(['backs.b1.healthCheck.http.verb: unknown key (expected port, path, host, status, body)']);
    expect(errorsOf('{ tls: {} }')[0]).toMatch(/^backs\.b1\.healthCheck\.tls: unknown key \(expected url, servicePort, interval, timeout, rise, fall, udp, dns, http\)/);
  });

  it('plans one probe per kind and carried service, from the back\'s probe sources', () => {
    const p = planHealthChecks(table(KINDS_TABLE), { services: SERVICES, healthCheck: DEFAULTS }, slots());
    expect(p.errors).toEqual([]);
    expect(p.backs[0]!.services.map((s) => `${s.kind} ${s.service}:${s.port} from ${s.source}`)).toEqual([
      'udp 2001:db8:5::80:7 from 2001:db8:f::1', 'udp 192.0.2.80:7 from 192.0.2.193',
      'dns 2001:db8:5::80:53 from 2001:db8:f::1', 'dns 192.0.2.80:53 from 192.0.2.193',
      'http 2001:db8:5::80:8080 from 2001:db8:f::1', 'http 192.0.2.80:8080 from 192.0.2.193',
    ]);
    expect(p.backs[1]!.services.map((s) => s.kind)).toEqual(['tcp', 'udp', 'dns', 'http']);
    expect(p.routes).toHaveLength(3);
    const none = planHealthChecks(table(KINDS_TABLE), { services: SERVICES, healthCheck: { ...DEFAULTS, probePrefix6: '', probePrefix4: '' } }, slots());
    expect(none.errors.map((e) => e.entry)).toEqual(['backs.b1.healthCheck.udp', 'backs.b2.healthCheck.servicePort']);
  });
});

describe('HealthChecker with UDP, DNS and HTTP probes', () => {
  function setup() {
    const t = table(KINDS_TABLE);
    const slotOf = slots();
    const plan = planHealthChecks(t, { services: SERVICES, healthCheck: DEFAULTS }, slotOf);
    const up = new Uint8Array(16).fill(1);
    const fail = new Map<string, ProbeResult>(); // kind -> result
    const seen: { kind: string; host: string; bytes?: string; rcode?: number; req?: unknown }[] = [];
    const answer = (kind: string): Promise<ProbeResult> => new Promise((r) => setTimeout(() => r(fail.get(kind) ?? { ok: true, detail: 'fine' }), 5));
    const probes: Probes = {
      http: () => answer('readyz'),
      tcp: () => answer('tcp'),
      udp: (host, _p, _s, payload, expectBytes) => { seen.push({ kind: 'udp', host, bytes: `${payload.toString()}|${expectBytes?.toString() ?? ''}` }); return answer('udp'); },
      dns: (host, _p, _s, query, rcode) => { seen.push({ kind: 'dns', host, bytes: query.subarray(12).toString('hex'), rcode }); return answer('dns'); },
      httpService: (host, _p, _s, req) => { seen.push({ kind: 'http', host, req }); return answer('http'); },
    };
    const lines: Record<string, unknown>[] = [];
    const hc = new HealthChecker({ log: createLogger({ level: 'debug', sink: (l) => lines.push(JSON.parse(l) as Record<string, unknown>) }), up, refresh: () => undefined, probes, schedule: false });
    hc.update(plan.backs);
    return { plan, up, fail, seen, lines, hc };
  }

  it('sends the configured payload, query and request to every carried service', async () => {
    const h = setup();
    await h.hc.checkNow('b1');
    expect(h.seen.filter((c) => c.kind === 'udp')).toEqual([{ kind: 'udp', host: '2001:db8:5::80', bytes: 'ping|pong' }, { kind: 'udp', host: '192.0.2.80', bytes: 'ping|pong' }]);
    // www.example.com AAAA IN
    expect(h.seen.find((c) => c.kind === 'dns')!.bytes).toBe(`03777777076578616d706c6503636f6d00${'001c'}0001`);
    expect(h.seen.find((c) => c.kind === 'http')!.req).toEqual({ port: 8080, path: '/health', host: 'www.example.com', status: [[200, 299]], body: 'ok' });
    await h.hc.checkNow('b2');
    expect(h.seen.filter((c) => c.kind === 'dns').map((c) => c.rcode)).toEqual([undefined, undefined, 3]);
  });

  it('a failing UDP service takes the back down (kind udp, its reason) and back up; stats count per kind and reason', async () => {
    const h = setup();
    h.fail.set('udp', { ok: false, detail: 'no reply after 1000 ms', reason: 'timeout' });
    for (let i = 0; i < 3; i++) await h.hc.checkNow('b1');
    expect(h.up[0]).toBe(0);
    const down = h.lines.filter((l) => l.event === 'backend_down');
    expect(down).toHaveLength(1);
    expect(down[0]).toMatchObject({ backend: 'b1', kind: 'udp', reason: 'timeout' });
    expect(String(down[0]!.detail)).toMatch(/^udp \[2001:db8:5::80\]:7 from 2001:db8:f::1: no reply after 1000 ms; udp 192\.0\.2\.80:7/);
    const st = h.hc.probeStats().filter((s) => s.backend === 'b1');
    expect(st.map((s) => s.kind)).toEqual(['udp', 'dns', 'http']);
    const udp = st[0]!;
    expect(Array.from(udp.failures)).toEqual([6, 0, 0, 0, 0, 0, 0, 0]); // 3 rounds x 2 services, all timeouts
    expect(udp.lastFailure).toBe('timeout');
    expect(udp.durationSeconds).toBeGreaterThan(0.003);
    expect(udp.durationSeconds).toBeLessThan(1);
    expect(st[1]!.lastFailure).toBe('');
    // DNS fails too now, with another reason; UDP recovers; the back stays down until both pass.
    h.fail.set('dns', { ok: false, detail: 'NXDOMAIN', reason: 'rcode' });
    h.fail.delete('udp');
    await h.hc.checkNow('b1');
    h.fail.clear();
    await h.hc.checkNow('b1');
    expect(h.up[0]).toBe(0);
    await h.hc.checkNow('b1');
    expect(h.up[0]).toBe(1);
    expect(h.lines.filter((l) => l.event === 'backend_up')).toEqual([expect.objectContaining({ backend: 'b1', kind: 'udp', reason: 'timeout' })]);
    expect(h.hc.probeStats().find((s) => s.backend === 'b1' && s.kind === 'dns')!.failures[HEALTH_FAILURE_REASONS.indexOf('rcode')]).toBe(2);
  });

  it('the metrics: every reason at 0 from the start, latency once probed, the last failure reason', async () => {
    const h = setup();
    const reg = new Registry();
    registerHealthMetrics(reg, () => h.hc.probeStats());
    let text = await reg.metrics();
    expect(text).toContain('mslb_health_probe_failures_total{backend="b2",kind="tcp",reason="unreachable"} 0');
    expect(text.match(/^mslb_health_probe_failures_total\{/gm)).toHaveLength((3 + 4) * 8);
    expect(text).not.toMatch(/^mslb_health_probe_duration_seconds\{/m);
    h.fail.set('http', { ok: false, detail: 'HTTP 500', reason: 'bad_status' });
    await h.hc.checkNow('b2');
    text = await reg.metrics();
    expect(text).toContain('mslb_health_probe_failures_total{backend="b2",kind="http",reason="bad_status"} 1');
    expect(text).toContain('mslb_health_last_failure_info{backend="b2",kind="http",reason="bad_status"} 1');
    expect(text.match(/^mslb_health_last_failure_info\{/gm)).toHaveLength(1);
    expect(text).toMatch(/^mslb_health_probe_duration_seconds\{backend="b2",kind="dns"\} 0\.0\d+$/m);
  });
});

describe('real UDP, DNS and HTTP service probes (loopback)', () => {
  const closePort = async (type: 'udp4' | 'udp6', addrText: string) => {
    const s = createSocket(type);
    await new Promise<void>((r) => s.bind(0, addrText, () => r()));
    const port = s.address().port;
    await new Promise<void>((r) => s.close(() => r()));
    return port;
  };

  it('UDP over IPv4 and IPv6: any reply, an expected reply, a wrong reply, a closed port, silence', async () => {
    for (const [type, host] of [['udp4', '127.0.0.1'], ['udp6', '::1']] as const) {
      const from: string[] = [];
      const srv = createSocket(type);
      srv.on('message', (m, r) => { from.push(r.address); if (m.toString() !== 'quiet') srv.send(Buffer.concat([Buffer.from('pong:'), m]), r.port, r.address); });
      await new Promise<void>((r) => srv.bind(0, host, () => r()));
      const port = srv.address().port;
      expect(await realProbes.udp(host, port, host, Buffer.from('ping'), undefined, 1000)).toEqual({ ok: true, detail: 'reply of 9 bytes' });
      expect(await realProbes.udp(host, port, host, Buffer.from('ping'), Buffer.from('g:pi'), 1000)).toMatchObject({ ok: true });
      expect(await realProbes.udp(host, port, host, Buffer.from('ping'), Buffer.from('pang'), 1000)).toMatchObject({ ok: false, reason: 'bad_reply' });
      expect(await realProbes.udp(host, port, host, Buffer.from('quiet'), undefined, 150)).toEqual({ ok: false, detail: 'no reply after 150 ms', reason: 'timeout' });
      expect(from).toEqual([host, host, host, host]);
      await new Promise<void>((r) => srv.close(() => r()));
      // Nothing listens: the ICMP port unreachable comes back as ECONNREFUSED on the connected socket.
      const closed = await closePort(type, host);
      expect(await realProbes.udp(host, closed, host, Buffer.from('ping'), undefined, 1000)).toMatchObject({ ok: false, reason: 'refused' });
    }
    {
      // From another source address: the probe binds to it (IPv4 loopback has all of 127/8).
      const srv = createSocket('udp4');
      const from: string[] = [];
      srv.on('message', (m, r) => { from.push(r.address); srv.send(m, r.port, r.address); });
      await new Promise<void>((r) => srv.bind(0, '127.0.0.1', () => r()));
      expect(await realProbes.udp('127.0.0.1', srv.address().port, '127.0.0.3', Buffer.from('x'), Buffer.from('x'), 1000)).toMatchObject({ ok: true });
      expect(from).toEqual(['127.0.0.3']);
      srv.close();
    }
  });

  it('DNS: the query reaches a server as asked; NOERROR with answers, no answer, other rcodes, a wrong id, garbage', async () => {
    let mode: 'answer' | 'empty' | 'nxdomain' | 'wrongid' | 'short' = 'answer';
    const asked: string[] = [];
    const srv = createSocket('udp6');
    srv.on('message', (q, r) => {
      // Decode the question: labels, type, class.
      let o = 12;
      const labels: string[] = [];
      while (q[o]! > 0) { labels.push(q.subarray(o + 1, o + 1 + q[o]!).toString()); o += 1 + q[o]!; }
      asked.push(`${labels.join('.')} ${q.readUInt16BE(o + 1)} ${q.readUInt16BE(o + 3)} qd=${q.readUInt16BE(4)} rd=${(q[2]! & 1)}`);
      const a = Buffer.from(q);
      a[2] = 0x81; // QR, RD
      a[3] = mode === 'nxdomain' ? 0x83 : 0x80;
      a.writeUInt16BE(mode === 'answer' ? 1 : 0, 6);
      if (mode === 'wrongid') a.writeUInt16BE((q.readUInt16BE(0) + 1) & 0xffff, 0);
      srv.send(mode === 'short' ? a.subarray(0, 5) : a, r.port, r.address);
    });
    await new Promise<void>((r) => srv.bind(0, '::1', () => r()));
    const port = srv.address().port;
    const query = encodeDnsQuery('www.example.com', 28);
    const probe = (rcode?: number) => realProbes.dns('::1', port, '::1', query, rcode, 1000);
    expect(await probe()).toEqual({ ok: true, detail: 'NOERROR, 1 answers' });
    expect(asked).toEqual(['www.example.com 28 1 qd=1 rd=1']);
    mode = 'empty';
    expect(await probe()).toMatchObject({ ok: false, reason: 'bad_reply', detail: 'NOERROR, 0 answers, expected at least one' });
    mode = 'nxdomain';
    expect(await probe()).toMatchObject({ ok: false, reason: 'rcode', detail: 'NXDOMAIN, 0 answers, expected NOERROR' });
    expect(await probe(3)).toMatchObject({ ok: true });
    mode = 'answer';
    expect(await probe(3)).toMatchObject({ ok: false, reason: 'rcode' });
    mode = 'wrongid';
    expect(await probe()).toMatchObject({ ok: false, reason: 'bad_reply', detail: 'not a DNS answer: id does not match the query' });
    mode = 'short';
    expect(await probe()).toMatchObject({ ok: false, reason: 'bad_reply' });
    await new Promise<void>((r) => srv.close(() => r()));
    expect(await probe()).toMatchObject({ ok: false, reason: 'refused' });
  });

  it('DNS codec: a query per RFC 1035, reply heads parsed, names checked', () => {
    const q = encodeDnsQuery('a.bc.', 1);
    expect(q.toString('hex')).toBe('000001000001000000000000' + '0161026263' + '00' + '0001' + '0001');
    expect(encodeDnsQuery('.', 2).toString('hex')).toBe('000001000001000000000000' + '00' + '0002' + '0001');
    expect(parseDnsReply(Buffer.from('abcd8183000000020000000000', 'hex'), 0xabcd)).toEqual({ rcode: 3, answers: 2 });
    expect(parseDnsReply(Buffer.from('abcd0183000000020000000000', 'hex'), 0xabcd)).toBe('not a response (QR 0)');
    expect(dnsNameProblem('x'.repeat(64) + '.com')).toMatch(/^label/);
    expect(dnsNameProblem('-a.com')).toMatch(/^label "-a"/);
    expect(dnsNameProblem('_sip._udp.example.com')).toBeNull();
  });

  it('HTTP service: status ranges, body substring across chunks, from the source address', async () => {
    let code = 200;
    let body: string[] = ['hello ', 'wor', 'ld'];
    const hosts: string[] = [];
    const peers: string[] = [];
    const srv = createServer((req, res) => {
      hosts.push(`${req.headers.host} ${req.url}`);
      peers.push(req.socket.remoteAddress ?? '');
      res.writeHead(code);
      let i = 0;
      const next = () => { if (i < body.length) { res.write(body[i++]); setTimeout(next, 5); } else res.end(); };
      next();
    });
    await new Promise<void>((r) => srv.listen(0, '::1', () => r()));
    const port = (srv.address() as AddressInfo).port;
    const probe = (req: { status: [number, number][]; body?: string; host?: string }) => realProbes.httpService('::1', port, '::1', { path: '/health?x=1', ...req }, 1000);
    expect(await probe({ status: [[200, 399]] })).toEqual({ ok: true, detail: 'HTTP 200' });
    expect(hosts[0]).toBe(`[::1]:${port} /health?x=1`);
    expect(await probe({ status: [[200, 399]], body: 'o wor', host: 'www.example.com' })).toMatchObject({ ok: true });
    expect(hosts[1]).toBe('www.example.com /health?x=1');
    expect(await probe({ status: [[200, 399]], body: 'planet' })).toMatchObject({ ok: false, reason: 'bad_body' });
    code = 302;
    expect(await probe({ status: [[200, 399]] })).toMatchObject({ ok: true });
    expect(await probe({ status: [[200, 200], [204, 204]] })).toEqual({ ok: false, detail: 'HTTP 302', reason: 'bad_status' });
    code = 200;
    body = Array.from({ length: 20 }, () => 'x'.repeat(4096));
    expect(await probe({ status: [[200, 200]], body: 'y' })).toMatchObject({ ok: false, reason: 'bad_body', detail: expect.stringMatching(/first 65536 bytes/) });
    expect(peers.every((p) => p === '::1')).toBe(true);
    await new Promise<void>((r) => srv.close(() => r()));
  });
});

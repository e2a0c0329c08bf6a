#!/usr/bin/env node
// mslb check | lookup | flows | reload. `check` and `lookup --config` read files, not the host (no
// interface, privilege or namespace needed); `lookup --admin`, `flows` and `reload` ask a running
// service over its admin server. `main(argv, io)` is exported so tests run it in-process.

import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { readDocument } from '../shared/config/read-document.js';
import { roleOf, wrongRole } from '../shared/config/config-role.js';
import { frontConfigFromValue, loadFrontConfig, type FrontConfig } from '../front/front-config.js';
import { backConfigFromValue } from '../back/back-config.js';
import { formatError, type ConfigError } from '../shared/config/config-errors.js';
import { loadTableFile } from '../front/table/table-file.js';
import { CompiledTable } from '../front/table/compiled-table.js';
import { planHealthChecks } from '../front/health-checker.js';
import { decisionInput, explainDecision, formatDecisionReport, DecisionQueryError, type DecisionQuery, type DecisionReport } from '../front/decision-report.js';
import { usageMessage } from '../shared/engine/service-args.js';
import { adminUrl } from '../shared/admin/admin-client.js';
import { MSLB_VERSION } from '../shared/version.js';
import type { FlowView } from '../front/front-admin.js';

export interface CliIo {
  out(line: string): void;
  err(line: string): void;
}

const COMMANDS: Record<string, string[]> = {
  check: [
    'mslb check FILE                  validate a front config (and its table) or a back config',
    'mslb check --config FRONT TABLE  validate a table file against the front config that loads it',
  ],
  lookup: [
    'mslb lookup --config FRONT --src ADDR [--service ADDR] [--flow-label N]',
    '            [--lbsp-client ADDR] [--lbsp-server ADDR] [--down BACK,...] [--json]',
    '    the back a first packet would get from the files, and why',
    'mslb lookup --admin ADDRESS --src ADDR [...same...] [--proto P --sport N --dport N] [--json]',
    '    the same asked of the running front: its live health and its pinned flows',
  ],
  flows: [
    'mslb flows --admin ADDRESS [--back NAME] [--limit N] [--json]',
    '    flows pinned in the running front\'s flow tables (at most --limit, default 100, max 1000)',
  ],
  reload: [
    'mslb reload --admin ADDRESS | --config FILE [--json]',
    '    reload the running service (front: its table) and wait for the result: exit 0 when the',
    '    file on disk is now the one in force, 1 with the reasons when it was rejected',
  ],
};

function usage(cmd?: string): string[] {
  if (cmd !== undefined && COMMANDS[cmd]) return ['usage:', ...COMMANDS[cmd].map((l) => `  ${l}`), '  --help | -h, --version'];
  return [
    'usage: mslb COMMAND [OPTIONS]   (mslb COMMAND --help for one command)',
    ...Object.values(COMMANDS).flat().map((l) => `  ${l}`),
    '  mslb --help | -h, mslb --version',
    'ADDRESS is an admin.listen address, e.g. [::1]:9101 (front) or [::1]:9102 (back).',
  ];
}

type Opts = Record<string, string | boolean | undefined>;

const COMMON = { help: { type: 'boolean', short: 'h' }, version: { type: 'boolean' } } as const;
const OPTIONS = {
  check: { ...COMMON, config: { type: 'string', short: 'c' } },
  lookup: {
    ...COMMON,
    config: { type: 'string', short: 'c' }, admin: { type: 'string' }, src: { type: 'string' }, service: { type: 'string' },
    'flow-label': { type: 'string' }, 'lbsp-client': { type: 'string' }, 'lbsp-server': { type: 'string' },
    down: { type: 'string' }, json: { type: 'boolean' }, proto: { type: 'string' }, sport: { type: 'string' }, dport: { type: 'string' },
  },
  flows: { ...COMMON, admin: { type: 'string' }, back: { type: 'string' }, limit: { type: 'string' }, json: { type: 'boolean' } },
  reload: { ...COMMON, admin: { type: 'string' }, config: { type: 'string', short: 'c' }, json: { type: 'boolean' }, timeout: { type: 'string' } },
} as const;

class UsageError extends Error {}

function printErrors(io: CliIo, errs: readonly ConfigError[]): number {
  for (const e of errs) io.err(formatError(e));
  return 1;
}

function tableContext(c: FrontConfig) {
  return { services: c.services, mode: c.mode, encap: c.encap };
}

/** Table checks that need more of the front config than validation has (health-check probe sources). */
function frontTableErrors(c: FrontConfig, t: Parameters<typeof planHealthChecks>[0]): ConfigError[] {
  const slots = new Map<string, number>();
  return planHealthChecks(t, c, (n) => { if (!slots.has(n)) slots.set(n, slots.size); return slots.get(n)!; }).errors;
}

/** A front config where one is expected: a back config or a table gets one line saying what it is. */
function readFrontConfig(file: string, io: CliIo): FrontConfig | undefined {
  const doc = readDocument(file);
  if (!doc.ok) { printErrors(io, doc.errors); return undefined; }
  const wrong = wrongRole(file, doc.value, 'front');
  if (wrong !== undefined) { io.err(`${wrong} for --config`); return undefined; }
  const fc = frontConfigFromValue(doc.value, file);
  if (!fc.config) { printErrors(io, fc.errors); return undefined; }
  return fc.config;
}

function check(pos: string[], opts: Opts, io: CliIo): number {
  if (pos.length !== 1) throw new UsageError(pos.length === 0 ? 'check needs one FILE' : `check takes one FILE, got ${pos.length}: ${pos.join(' ')}`);
  const file = pos[0]!;
  const cfgFile = opts.config as string | undefined;
  if (cfgFile) {
    // A table file checked against the front config that will load it.
    const fc = readFrontConfig(cfgFile, io);
    if (!fc) return 1;
    const t = loadTableFile(file, tableContext(fc));
    if (!t.table) return printErrors(io, t.errors);
    const he = frontTableErrors(fc, t.table);
    if (he.length > 0) return printErrors(io, he);
    io.out(`OK table ${file}: ${t.table.backs.length} backs, ${t.table.pools.length} pools, ${t.table.routes.length} routes (checked against ${cfgFile})`);
    return 0;
  }
  const doc = readDocument(file);
  if (!doc.ok) return printErrors(io, doc.errors);
  const role = roleOf(doc.value);
  if (role === 'front') {
    const fc = frontConfigFromValue(doc.value, file);
    if (!fc.config) return printErrors(io, fc.errors);
    const t = loadTableFile(fc.config.table, tableContext(fc.config));
    if (!t.table) return printErrors(io, t.errors);
    const he = frontTableErrors(fc.config, t.table);
    if (he.length > 0) return printErrors(io, he);
    const r4 = t.table.routes.filter((r) => r.family === 4).length;
    io.out(`OK front ${file}: ${fc.config.services.length} services, mode ${fc.config.mode}; table ${fc.config.table}: ` +
      `${t.table.backs.length} backs, ${t.table.pools.length} pools, ${t.table.routes.length} routes (${r4} IPv4, ${t.table.routes.length - r4} IPv6)`);
    io.out(fc.config.hashKeySource === 'built-in'
      ? 'warning: no hashKey: pools use the built-in key, which anyone reading the source knows (set hashKey, the same on every front)'
      : `hashKey from ${fc.config.hashKeySource}`);
    return 0;
  }
  if (role === 'back') {
    const bc = backConfigFromValue(doc.value, file);
    if (!bc.config) return printErrors(io, bc.errors);
    io.out(`OK back ${file}: ${bc.config.addresses.length} addresses, ${bc.config.allowedFronts.length} allowed front prefixes, ` +
      `stamping ${bc.config.lbsp.stamp === 'always' ? 'always' : bc.config.lbsp.stamp ? 'on (echo)' : 'off'}`);
    return 0;
  }
  if (role === 'table') {
    io.err(`${file}: a table file is checked against its front config: mslb check --config FRONT.yaml ${file} (or mslb check FRONT.yaml, which checks the table it names)`);
    return 1;
  }
  io.err(`${file}: cannot tell the role: a front config has services/table, a back config has addresses/allowedFronts, a table has backs/routes`);
  return 1;
}

function queryOf(opts: Opts): DecisionQuery {
  const src = opts.src as string | undefined;
  if (src === undefined) throw new UsageError('lookup needs --src ADDR');
  const q: DecisionQuery = { src };
  if (opts.service !== undefined) q.service = opts.service as string;
  if (opts['lbsp-client'] !== undefined) q.lbspClient = opts['lbsp-client'] as string;
  if (opts['lbsp-server'] !== undefined) q.lbspServer = opts['lbsp-server'] as string;
  const fl = opts['flow-label'] as string | undefined;
  if (fl !== undefined) {
    const n = /^(0x[0-9a-f]+|\d+)$/i.test(fl) ? Number(fl) : NaN;
    if (!Number.isInteger(n) || n < 0 || n > 0xfffff) throw new UsageError(`--flow-label: must be 0..1048575 (0x0..0xfffff), got ${fl}`);
    q.flowLabel = n;
  }
  return q;
}

function printReport(r: DecisionReport & { pins?: unknown[] }, json: boolean, io: CliIo): void {
  if (json) { io.out(JSON.stringify(r)); return; }
  io.out(formatDecisionReport(r));
  for (const p of (r.pins ?? []) as FlowView[]) io.out(`  pinned ${formatFlow(p)}`);
}

function lookup(opts: Opts, io: CliIo): Promise<number> | number {
  const q = queryOf(opts);
  if (opts.admin !== undefined) {
    if (opts.config !== undefined) throw new UsageError('lookup takes --config FILE or --admin ADDRESS, not both');
    if (opts.down !== undefined) throw new UsageError('--down is for --config (the running front knows which backs are down)');
    return lookupLive(opts.admin as string, q, opts, io);
  }
  for (const k of ['proto', 'sport', 'dport'] as const) if (opts[k] !== undefined) throw new UsageError(`--${k} needs --admin (pinned flows live in the running front)`);
  const cfgFile = opts.config as string | undefined;
  if (!cfgFile) throw new UsageError('lookup needs --config FRONT or --admin ADDRESS');
  const cfg = readFrontConfig(cfgFile, io);
  if (!cfg) return 1;
  const t = loadTableFile(cfg.table, tableContext(cfg));
  if (!t.table) return printErrors(io, t.errors);
  const slots = new Map<string, number>();
  const ct = CompiledTable.compile(t.table, {
    services: cfg.services, flowLabelEnabled: cfg.flowLabel.enabled, lbspEnabled: cfg.lbsp.enabled, hashKey: cfg.hashKey,
    slotOf: (n) => { if (!slots.has(n)) slots.set(n, slots.size); return slots.get(n)!; },
  });
  for (const d of ((opts.down as string | undefined) ?? '').split(',').map((x) => x.trim()).filter((x) => x)) {
    if (!slots.has(d)) throw new UsageError(`--down: unknown back ${d} (backs: ${[...slots.keys()].join(', ')})`);
    ct.a.up[slots.get(d)!] = 0;
  }
  ct.refreshUp();
  let inp;
  try {
    inp = decisionInput(ct, q);
  } catch (e) {
    if (e instanceof DecisionQueryError) throw new UsageError(`--${e.message}`);
    throw e;
  }
  printReport(explainDecision(ct, inp), opts.json === true, io);
  return 0;
}

async function adminRequest(admin: string, path: string, method: 'GET' | 'POST', timeoutMs = 10_000): Promise<{ status: number; body: Record<string, unknown> }> {
  const url = adminUrl(admin, path);
  let res: Response;
  try {
    res = await fetch(url, { method, signal: AbortSignal.timeout(timeoutMs) });
  } catch (e) {
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    throw new AdminError(`${url}: ${cause?.code ?? cause?.message ?? (e as Error).message}`);
  }
  const text = await res.text();
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new AdminError(`${url}: HTTP ${res.status}, not JSON: ${text.slice(0, 200)}`);
  }
  return { status: res.status, body };
}

class AdminError extends Error {}

async function lookupLive(admin: string, q: DecisionQuery, opts: Opts, io: CliIo): Promise<number> {
  const p = new URLSearchParams({ src: q.src });
  if (q.flowLabel !== undefined) p.set('label', String(q.flowLabel));
  if (q.lbspClient !== undefined) p.set('lbspClient', q.lbspClient);
  if (q.lbspServer !== undefined) p.set('lbspServer', q.lbspServer);
  if (q.service !== undefined) p.set('service', q.service);
  for (const k of ['proto', 'sport', 'dport'] as const) if (opts[k] !== undefined) p.set(k, opts[k] as string);
  const r = await adminRequest(admin, `/lookup?${p.toString()}`, 'GET');
  if (r.status !== 200) { io.err(`mslb lookup: ${admin}: ${String(r.body.error ?? `HTTP ${r.status}`)}`); return r.status === 400 ? 2 : 1; }
  printReport(r.body as unknown as DecisionReport, opts.json === true, io);
  return 0;
}

const PROTO_NAMES: Record<number, string> = { 6: 'tcp', 17: 'udp', 1: 'icmp', 58: 'icmpv6' };

function formatFlow(f: FlowView): string {
  const p = PROTO_NAMES[f.proto] ?? `proto-${f.proto}`;
  const ep = (a: string, port?: number) => (port === undefined ? a : a.includes(':') ? `[${a}]:${port}` : `${a}:${port}`);
  const what = f.kind === 'fragment' ? `${p} ${f.src} -> ${f.dst} fragments id ${f.fragId}` : `${p} ${ep(f.src, f.sport)} -> ${ep(f.dst, f.dport)}`;
  return `${what} back ${f.back ?? '?'} idle ${(f.idleMs / 1000).toFixed(1)}s expires ${(f.expiresInMs / 1000).toFixed(1)}s${f.closing ? ' closing' : ''} queue ${f.queue}`;
}

async function flows(opts: Opts, io: CliIo): Promise<number> {
  const admin = opts.admin as string | undefined;
  if (!admin) throw new UsageError('flows needs --admin ADDRESS (the running front\'s admin.listen)');
  const p = new URLSearchParams();
  if (opts.back !== undefined) p.set('back', opts.back as string);
  if (opts.limit !== undefined) {
    if (!/^\d+$/.test(opts.limit as string) || Number(opts.limit) < 1) throw new UsageError(`--limit: a positive integer, got ${String(opts.limit)}`);
    p.set('limit', opts.limit as string);
  }
  const qs = p.toString();
  const r = await adminRequest(admin, `/flows${qs ? `?${qs}` : ''}`, 'GET');
  if (r.status !== 200) { io.err(`mslb flows: ${admin}: ${String(r.body.error ?? `HTTP ${r.status}`)}`); return r.status === 400 ? 2 : 1; }
  if (opts.json === true) { io.out(JSON.stringify(r.body)); return 0; }
  const list = r.body.flows as FlowView[];
  for (const f of list) io.out(formatFlow(f));
  io.out(`${list.length} shown of ${String(r.body.matched)} matching, ${String(r.body.total)} pinned in ${String(r.body.workers)} workers${r.body.truncated ? ` (--limit ${String(r.body.limit)})` : ''}`);
  return 0;
}

/** admin.listen of a front or back config, for `reload --config`. */
function adminOfConfig(file: string, io: CliIo): string | undefined {
  const doc = readDocument(file);
  if (!doc.ok) { printErrors(io, doc.errors); return undefined; }
  const role = roleOf(doc.value);
  if (role === 'front') {
    const fc = frontConfigFromValue(doc.value, file);
    if (!fc.config) { printErrors(io, fc.errors); return undefined; }
    return fc.config.admin.listen;
  }
  if (role === 'back') {
    const bc = backConfigFromValue(doc.value, file);
    if (!bc.config) { printErrors(io, bc.errors); return undefined; }
    return bc.config.admin.listen;
  }
  io.err(`${file}: not a front or back config (reload --config needs the service's config, to find admin.listen)`);
  return undefined;
}

async function reload(opts: Opts, io: CliIo): Promise<number> {
  let admin = opts.admin as string | undefined;
  if (admin !== undefined && opts.config !== undefined) throw new UsageError('reload takes --admin ADDRESS or --config FILE, not both');
  if (admin === undefined) {
    if (opts.config === undefined) throw new UsageError('reload needs --admin ADDRESS or --config FILE (the running service\'s config)');
    admin = adminOfConfig(opts.config as string, io);
    if (admin === undefined) return 1;
  }
  let timeoutMs = 30_000;
  if (opts.timeout !== undefined) {
    const s = Number(opts.timeout);
    if (!(s > 0 && s <= 600)) throw new UsageError(`--timeout: seconds from 1 to 600, got ${String(opts.timeout)}`);
    timeoutMs = s * 1000;
  }
  const r = await adminRequest(admin, '/reload', 'POST', timeoutMs);
  if (r.status === 404 || r.status === 403) {
    io.err(r.status === 404
      ? `mslb reload: ${admin} has no POST /reload (a service without it reloads on SIGHUP: kill -HUP PID)`
      : `mslb reload: ${admin}: ${String(r.body.error ?? 'forbidden')}: run it on the service's host`);
    return 1;
  }
  if (opts.json === true) io.out(JSON.stringify(r.body));
  if (r.status === 200) {
    if (opts.json !== true) io.out(`reload ${String(r.body.result)}: ${String(r.body.file ?? '')}${r.body.hash ? ` hash ${String(r.body.hash)}` : ''}`);
    return 0;
  }
  if (opts.json !== true) {
    const errs = (r.body.errors ?? []) as ConfigError[];
    io.err(`reload rejected (${admin}): ${String(r.body.error ?? `HTTP ${r.status}`)}; the previous one keeps serving`);
    for (const e of errs) io.err(formatError(e));
  }
  return 1;
}

export async function main(argv: string[], io: CliIo): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === '--help' || cmd === '-h' || cmd === 'help') { usage().forEach((l) => io.out(l)); return 0; }
  if (cmd === '--version') { io.out(`mslb ${MSLB_VERSION}`); return 0; }
  if (cmd === undefined || !(cmd in OPTIONS)) {
    io.err(cmd === undefined ? 'mslb: a command is needed' : cmd.startsWith('-') ? `mslb: unknown option ${cmd}` : `mslb: unknown command ${cmd}`);
    usage().forEach((l) => io.err(l));
    return 2;
  }
  const name = cmd as keyof typeof OPTIONS;
  try {
    let values: Opts;
    let positionals: string[];
    try {
      const parsed = parseArgs({ args: rest, options: OPTIONS[name] as ParseArgsConfig['options'], strict: true, allowPositionals: name === 'check' });
      values = parsed.values as Opts;
      positionals = parsed.positionals;
    } catch (e) {
      throw new UsageError(usageMessage(e));
    }
    if (values.help) { usage(name).forEach((l) => io.out(l)); return 0; }
    if (values.version) { io.out(`mslb ${MSLB_VERSION}`); return 0; }
    switch (name) {
      case 'check': return check(positionals, values, io);
      case 'lookup': return await lookup(values, io);
      case 'flows': return await flows(values, io);
      case 'reload': return await reload(values, io);
    }
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`mslb ${name}: ${e.message}`);
      usage(name).forEach((l) => io.err(l));
      return 2;
    }
    if (e instanceof AdminError) { io.err(`mslb ${name}: ${e.message}`); return 1; }
    throw e;
  }
}

function invokedDirectly(): boolean {
  try {
    return process.argv[1] !== undefined && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href;
  } catch {
    return false;
  }
}

if (invokedDirectly()) {
  main(process.argv.slice(2), { out: (l) => console.log(l), err: (l) => console.error(l) }).then(
    (code) => { process.exitCode = code; },
    (e: unknown) => { console.error(`mslb: ${(e as Error).stack ?? String(e)}`); process.exitCode = 1; },
  );
}

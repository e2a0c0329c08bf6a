#!/usr/bin/env node
// mslb check FILE | mslb lookup --config FRONT --src ADDR ...: checks files, not the host (no
// interface, privilege or namespace needed). `main(argv, io)` is exported so tests run it in-process.

import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { readDocument } from '../shared/config/read-document.js';
import { frontConfigFromValue, loadFrontConfig, type FrontConfig } from '../front/front-config.js';
import { backConfigFromValue } from '../back/back-config.js';
import { formatError, type ConfigError } from '../shared/config/config-errors.js';
import { loadTableFile } from '../front/table/table-file.js';
import { CompiledTable } from '../front/table/compiled-table.js';
import { parseAddress, formatAddress } from '../shared/table/addr.js';
import { decide, DecisionInput, DecisionResult, LBSP_IGNORED_NAMES, REASON_NAMES } from '../front/decision.js';
import { planHealthChecks } from '../front/health-checker.js';

export interface CliIo {
  out(line: string): void;
  err(line: string): void;
}

const USAGE = [
  'usage:',
  '  mslb check FILE                 validate a front config (and its table) or a back config',
  '  mslb check --config FRONT TABLE validate a table file against a front config',
  '  mslb lookup --config FRONT --src ADDR [--service ADDR] [--flow-label N]',
  '              [--lbsp-client ADDR] [--lbsp-server ADDR] [--down BACK,...]',
];

function parseArgs(argv: string[]): { pos: string[]; opts: Map<string, string>; bad?: string } {
  const pos: string[] = [];
  const opts = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      if (eq > 0) { opts.set(a.slice(2, eq), a.slice(eq + 1)); continue; }
      const v = argv[i + 1];
      if (v === undefined) return { pos, opts, bad: `${a} needs a value` };
      opts.set(a.slice(2), v);
      i++;
    } else pos.push(a);
  }
  return { pos, opts };
}

type Role = 'front' | 'back' | 'table' | 'unknown';
function roleOf(v: unknown): Role {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return 'unknown';
  const k = Object.keys(v);
  if (k.includes('services') || k.includes('table') || k.includes('acceptTunnelFrom')) return 'front';
  if (k.includes('addresses') || k.includes('allowedFronts') || k.includes('returnPath') || k.includes('returnEncap')) return 'back';
  if (k.includes('routes') || k.includes('backs') || k.includes('pools')) return 'table';
  return 'unknown';
}

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

function check(pos: string[], opts: Map<string, string>, io: CliIo): number {
  if (pos.length !== 1) { USAGE.forEach((l) => io.err(l)); return 2; }
  const file = pos[0]!;
  const cfgFile = opts.get('config');
  if (cfgFile) {
    // A table file checked against the front config that will load it.
    const fc = loadFrontConfig(cfgFile);
    if (!fc.config) return printErrors(io, fc.errors);
    const t = loadTableFile(file, tableContext(fc.config));
    if (!t.table) return printErrors(io, t.errors);
    const he = frontTableErrors(fc.config, t.table);
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

function lookup(opts: Map<string, string>, io: CliIo): number {
  const cfgFile = opts.get('config');
  const srcText = opts.get('src');
  if (!cfgFile || !srcText) { USAGE.forEach((l) => io.err(l)); return 2; }
  const fc = loadFrontConfig(cfgFile);
  if (!fc.config) return printErrors(io, fc.errors);
  const cfg = fc.config;
  const t = loadTableFile(cfg.table, tableContext(cfg));
  if (!t.table) return printErrors(io, t.errors);
  const slots = new Map<string, number>();
  const ct = CompiledTable.compile(t.table, {
    services: cfg.services, flowLabelEnabled: cfg.flowLabel.enabled, lbspEnabled: cfg.lbsp.enabled, hashKey: cfg.hashKey,
    slotOf: (n) => { if (!slots.has(n)) slots.set(n, slots.size); return slots.get(n)!; },
  });
  const inp = new DecisionInput();
  const src = parseAddress(srcText);
  if (!src) { io.err(`--src: not an address: ${srcText}`); return 2; }
  inp.family = src.family;
  inp.src.set(src.words);
  const svcText = opts.get('service') ?? cfg.services.find((s) => parseAddress(s)!.family === src.family);
  const svc = svcText ? parseAddress(svcText) : null;
  if (!svc) { io.err(`--service: no IPv${src.family} service to look up (services: ${cfg.services.join(', ')})`); return 2; }
  if (svc.family !== src.family) { io.err(`--service ${svcText} is not in the family of --src ${srcText}`); return 2; }
  inp.service.set(svc.words);
  const fl = opts.get('flow-label');
  if (fl !== undefined) {
    const n = Number(fl);
    if (!Number.isInteger(n) || n < 0 || n > 0xfffff) { io.err(`--flow-label: must be 0..1048575 (0x0..0xfffff), got ${fl}`); return 2; }
    inp.flowLabel = n;
  }
  for (const [opt, arr] of [['lbsp-client', inp.lbspClient], ['lbsp-server', inp.lbspServer]] as const) {
    const v = opts.get(opt);
    if (v === undefined) continue;
    const a = parseAddress(v);
    if (!a) { io.err(`--${opt}: not an address: ${v}`); return 2; }
    arr.set(a.family === 6 ? a.words : [0, 0, 0xffff, a.words[0]!]);
    inp.hasLbsp = true;
  }
  for (const d of (opts.get('down') ?? '').split(',').filter((x) => x)) {
    if (!slots.has(d)) { io.err(`--down: unknown back ${d}`); return 2; }
    ct.a.up[slots.get(d)!] = 0;
  }
  ct.refreshUp();
  const res = new DecisionResult();
  decide(ct, inp, res);
  const reason = REASON_NAMES[res.reason]!;
  const extra = (res.lbspIgnored !== 0 ? ` (LBSP server segment ignored: ${LBSP_IGNORED_NAMES[res.lbspIgnored]})` : '') +
    (res.lbspClientFellBack ? ' (LBSP client segment no route covers: keyed by source)' : '');
  if (res.back < 0) {
    io.out(`drop: ${reason}${extra}`);
    return 0;
  }
  const name = ct.meta.backNames[res.back]!;
  const w = new Uint32Array(4);
  const f = ct.backAddress(res.back, res.service, w);
  const mode = ct.a.backMode[res.back] === 1 ? 'encap' : 'translate';
  const via = res.target >= 0 ? ` via ${ct.meta.targetNames[res.target]}` : '';
  io.out(`back ${name} address ${formatAddress(f as 4 | 6, w)} mode ${mode} reason ${reason}${via}${extra}`);
  if (res.target >= 0 && ct.a.targetPool[res.target]! >= 0) {
    io.out(`members: ${ct.targetMembers(res.target).map((m) => `${m.name} weight ${m.weight}${m.draining ? ' draining' : ''}${m.up ? '' : ' down'}`).join(', ')}`);
  }
  return 0;
}

export async function main(argv: string[], io: CliIo): Promise<number> {
  const [cmd, ...rest] = argv;
  const { pos, opts, bad } = parseArgs(rest);
  if (bad) { io.err(bad); return 2; }
  if (cmd === 'check') return check(pos, opts, io);
  if (cmd === 'lookup') return lookup(opts, io);
  USAGE.forEach((l) => io.err(l));
  return 2;
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

// Run a document through a convict schema: defaults, MSLB_* env overrides, type checks; the
// convict messages are turned into { file, entry, reason } errors.

import convict from 'convict';
import type { ConfigError } from './config-errors.js';
import { DURATION_HINT, parseDuration } from './duration.js';

let formatsAdded = false;

/** Formats shared by both schemas; detailed checks (addresses, prefixes) are done after convict. */
export function addConvictFormats(): void {
  if (formatsAdded) return;
  formatsAdded = true;
  convict.addFormat({
    name: 'string-list',
    validate(v: unknown) {
      if (!Array.isArray(v)) throw new Error('must be a list');
    },
    coerce: (v: unknown) => (typeof v === 'string' ? v.split(',').map((s) => s.trim()).filter((s) => s) : v),
  });
  convict.addFormat({
    name: 'object-list',
    validate(v: unknown) {
      if (!Array.isArray(v)) throw new Error('must be a list');
    },
    coerce: (v: unknown) => (typeof v === 'string' ? JSON.parse(v) : v),
  });
  convict.addFormat({
    name: 'int-range',
    validate() { /* range checked by the cross-field checker with the key's own bounds */ },
    // not a number: kept as written, so the checker's error shows it ("abc", not null)
    coerce: (v: unknown) => (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v)) ? Number(v) : v),
  });
  convict.addFormat({
    name: 'duration',
    validate() { /* unit and bounds checked by the cross-field checker (Checker.duration) */ },
    // "2s", "500ms", "5m" -> seconds; anything else kept as written for the checker's error
    coerce: (v: unknown) => parseDuration(v) ?? v,
  });
}

function checkBooleans(schema: Record<string, unknown>, value: Record<string, unknown>, path: string, file: string, errors: ConfigError[]): void {
  for (const [k, spec] of Object.entries(schema)) {
    if (spec === null || typeof spec !== 'object' || !(k in value)) continue;
    const v = value[k];
    const entry = path ? `${path}.${k}` : k;
    const s = spec as Record<string, unknown>;
    if ('format' in s && 'default' in s) {
      if (s.format === Boolean && typeof v !== 'boolean') errors.push({ file, entry, reason: `must be true or false, got ${JSON.stringify(v)}` });
    } else if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
      checkBooleans(s, v as Record<string, unknown>, entry, file, errors);
    }
  }
}

/** The file name errors about an MSLB_* variable carry: the variable, not the config file. */
export function envSource(name: string): string {
  return `environment variable ${name}`;
}

/**
 * MSLB_* overrides set in `env`, checked before convict sees them: convict would read any string
 * as true for a Boolean ("sometimes") and NaN for a number, and throw on bad JSON. A bad one is an
 * error naming the variable and is not applied. Returns the good ones (convict's own spelling:
 * "true"/"false") and which entry each variable sets.
 */
function checkEnv(schema: Record<string, unknown>, env: NodeJS.ProcessEnv, errors: ConfigError[]): { good: Record<string, string>; entries: Map<string, string> } {
  const good: Record<string, string> = {};
  const entries = new Map<string, string>();
  const walk = (node: Record<string, unknown>, path: string): void => {
    for (const [k, spec] of Object.entries(node)) {
      if (spec === null || typeof spec !== 'object') continue;
      const entry = path ? `${path}.${k}` : k;
      const s = spec as Record<string, unknown>;
      if (!('format' in s && 'default' in s)) { walk(s, entry); continue; }
      const name = s.env;
      if (typeof name !== 'string') continue;
      const raw = env[name];
      if (raw === undefined) continue;
      entries.set(entry, name);
      const bad = (reason: string) => errors.push({ file: envSource(name), entry, reason: `${reason}, got ${JSON.stringify(raw)}` });
      const f = s.format;
      if (f === Boolean) {
        if (/^(true|1|yes|on)$/i.test(raw.trim())) good[name] = 'true';
        else if (/^(false|0|no|off)$/i.test(raw.trim())) good[name] = 'false';
        else bad('must be true or false (1/0, yes/no, on/off)');
        continue;
      }
      if (f === 'int-range' && !/^\s*-?(0x[0-9a-f]+|\d+)\s*$/i.test(raw)) { bad('must be an integer'); continue; }
      if (f === 'duration' && parseDuration(raw) === null) { bad(`must be ${DURATION_HINT}`); continue; }
      if (Array.isArray(f) && !f.includes(raw)) { bad(`must be one of ${f.join(', ')}`); continue; }
      if (f === 'object-list') {
        let v: unknown;
        try { v = JSON.parse(raw); } catch { v = undefined; }
        if (!Array.isArray(v)) { bad('must be a JSON list'); continue; }
      }
      good[name] = raw;
    }
  };
  walk(schema, '');
  return { good, entries };
}

/** Errors about entries an MSLB_* variable set are the variable's, not the file's. */
export function blameEnv(errors: ConfigError[], envEntries: ReadonlyMap<string, string>): ConfigError[] {
  if (envEntries.size === 0) return errors;
  return errors.map((e) => {
    for (const [entry, name] of envEntries) {
      if (e.entry === entry || e.entry.startsWith(`${entry}[`) || e.entry.startsWith(`${entry}.`)) return { ...e, file: envSource(name) };
    }
    return e;
  });
}

export function runConvict<T>(schema: convict.Schema<T>, value: unknown, file: string, env: NodeJS.ProcessEnv = process.env): { values: T; errors: ConfigError[]; envEntries: Map<string, string> } {
  addConvictFormats();
  const errors: ConfigError[] = [];
  const { good, entries } = checkEnv(schema as Record<string, unknown>, env, errors);
  const cfg = convict(schema, { env: good, args: [] });
  if (value === null || value === undefined) value = {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    errors.push({ file, entry: '', reason: 'must be a mapping of keys (YAML or JSON object)' });
    value = {};
  }
  // convict coerces any string to a Boolean ("sometimes" -> true): a document value of a Boolean
  // key must be a real true/false (MSLB_* env strings still go through convict's coercion).
  checkBooleans(schema as Record<string, unknown>, value as Record<string, unknown>, '', file, errors);
  try {
    cfg.load(value as object);
    cfg.validate({ allowed: 'strict' });
  } catch (e) {
    for (const line of String((e as Error).message).split('\n')) {
      if (!line.trim()) continue;
      const undeclared = /^configuration param '([^']+)' not declared in the schema/.exec(line);
      if (undeclared) { errors.push({ file, entry: undeclared[1]!, reason: 'unknown key' }); continue; }
      const m = /^([\w.]+): (.*)$/.exec(line);
      if (m) errors.push({ file, entry: m[1]!, reason: m[2]! });
      else errors.push({ file, entry: '', reason: line });
    }
  }
  return { values: cfg.getProperties() as T, errors: blameEnv(errors, entries), envEntries: entries };
}

// Run a document through a convict schema: defaults, MSLB_* env overrides, type checks; the
// convict messages are turned into { file, entry, reason } errors.

import convict from 'convict';
import type { ConfigError } from './config-errors.js';

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
    coerce: (v: unknown) => (typeof v === 'string' ? Number(v) : v),
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

export function runConvict<T>(schema: convict.Schema<T>, value: unknown, file: string): { values: T; errors: ConfigError[] } {
  addConvictFormats();
  const cfg = convict(schema);
  const errors: ConfigError[] = [];
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
  return { values: cfg.getProperties() as T, errors };
}

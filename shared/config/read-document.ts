// Read a YAML or JSON file (JSON is read by the YAML parser too, so both get line/column errors).

import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import type { ConfigError } from './config-errors.js';

export type DocResult = { ok: true; value: unknown } | { ok: false; errors: ConfigError[] };

export function parseDocumentText(text: string, file: string): DocResult {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    return {
      ok: false,
      errors: doc.errors.slice(0, 1).map((e) => { // the first one: later ones are usually its echoes
        const lp = e.linePos?.[0];
        const first = e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
        return { file, entry: lp ? `line ${lp.line}, column ${lp.col}` : '', reason: `syntax error: ${first}` };
      }),
    };
  }
  return { ok: true, value: doc.toJS({ maxAliasCount: 100 }) };
}

export function readDocument(file: string): DocResult {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    return { ok: false, errors: [{ file, entry: '', reason: `cannot read: ${(e as Error).message}` }] };
  }
  return parseDocumentText(text, file);
}

/** Read a document and hand it to a role's validator (front or back config). */
export function loadDocumentWith<T>(file: string, fromValue: (value: unknown, file: string) => { config?: T; errors: ConfigError[] }): { config?: T; errors: ConfigError[] } {
  const doc = readDocument(file);
  if (!doc.ok) return { errors: doc.errors };
  return fromValue(doc.value, file);
}

// Read a YAML or JSON file (JSON is read by the YAML parser too, so both get line/column errors).
// Every failure (unreadable, too big, syntax, alias limits) comes back as { file, entry, reason }:
// a bad edit is a rejected edit, never an exception.

import { readFileSync, statSync } from 'node:fs';
import { parseDocument } from 'yaml';
import type { ConfigError } from './config-errors.js';

export type DocResult = { ok: true; value: unknown } | { ok: false; errors: ConfigError[] };

/** Largest config or table file read (a table of a million routes is ~60 MB of YAML; far beyond any real one is refused). */
export const MAX_DOCUMENT_BYTES = 16 * 1024 * 1024;
/**
 * Aliases a document may use. Generators (PyYAML) emit an anchor per shared object, so real
 * tables may have many; the bound is against "billion laughs" expansion, which the yaml package
 * also checks by expanded size.
 */
export const MAX_ALIAS_COUNT = 100;

const tooBig = (bytes: number): string => `file too large: ${bytes} bytes (at most ${MAX_DOCUMENT_BYTES})`;

export function parseDocumentText(text: string, file: string): DocResult {
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > MAX_DOCUMENT_BYTES) return { ok: false, errors: [{ file, entry: '', reason: tooBig(bytes) }] };
  try {
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
    // toJS throws (ReferenceError) past the alias limit or on an alias to an unknown anchor.
    return { ok: true, value: doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT }) };
  } catch (e) {
    const msg = (e as Error).message.split('\n')[0]!;
    const reason = /alias count/i.test(msg)
      ? `more than ${MAX_ALIAS_COUNT} YAML aliases (*name): write the shared values out (e.g. PyYAML Dumper.ignore_aliases)`
      : `cannot parse: ${msg}`;
    return { ok: false, errors: [{ file, entry: '', reason }] };
  }
}

/** The file's text; throws (like readFileSync) when unreadable or larger than MAX_DOCUMENT_BYTES, before reading it. */
export function readDocumentText(file: string): string {
  const st = statSync(file);
  if (st.isFile() && st.size > MAX_DOCUMENT_BYTES) throw new Error(tooBig(st.size));
  return readFileSync(file, 'utf8');
}

export function readDocument(file: string): DocResult {
  let text: string;
  try {
    text = readDocumentText(file);
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

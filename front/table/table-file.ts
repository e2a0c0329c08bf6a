// Read a table file (YAML or JSON) and validate it; YAML syntax errors carry line and column.

import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { validateTable, type TableContext, type TableError, type ValidatedTable } from './table-loader.js';

export function parseTableText(text: string, file: string, ctx: TableContext): { table?: ValidatedTable; errors: TableError[] } {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    return {
      errors: doc.errors.slice(0, 1).map((e) => { // the first one: later ones are usually its echoes
        const lp = e.linePos?.[0];
        const first = e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
        return { file, entry: lp ? `line ${lp.line}, column ${lp.col}` : '', reason: `syntax error: ${first}` };
      }),
    };
  }
  return validateTable(doc.toJS({ maxAliasCount: 100 }), file, ctx);
}

export function loadTableFile(file: string, ctx: TableContext): { table?: ValidatedTable; errors: TableError[] } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    return { errors: [{ file, entry: '', reason: `cannot read: ${(e as Error).message}` }] };
  }
  return parseTableText(text, file, ctx);
}

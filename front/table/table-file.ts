// Read a table file (YAML or JSON) and validate it; YAML syntax errors carry line and column,
// every other parse failure (alias limit, size cap) is an error naming the file, never a throw.

import { parseDocumentText, readDocumentText } from '../../shared/config/read-document.js';
import { validateTable, type TableContext, type TableError, type ValidatedTable } from './table-loader.js';

export function parseTableText(text: string, file: string, ctx: TableContext): { table?: ValidatedTable; errors: TableError[] } {
  const doc = parseDocumentText(text, file);
  if (!doc.ok) return { errors: doc.errors };
  return validateTable(doc.value, file, ctx);
}

export function loadTableFile(file: string, ctx: TableContext): { table?: ValidatedTable; errors: TableError[] } {
  let text: string;
  try {
    text = readDocumentText(file);
  } catch (e) {
    return { errors: [{ file, entry: '', reason: `cannot read: ${(e as Error).message}` }] };
  }
  return parseTableText(text, file, ctx);
}

// Which kind of file a parsed document is, from its top-level keys: a front config, a back config or
// a front's table. Lets a command given the wrong file say so in one line instead of listing every
// key the schema does not know.
import { readDocument } from './read-document.js';

export type FileRole = 'front' | 'back' | 'table' | 'unknown';

export function roleOf(v: unknown): FileRole {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return 'unknown';
  const k = Object.keys(v);
  if (k.includes('services') || k.includes('table') || k.includes('acceptTunnelFrom')) return 'front';
  if (k.includes('addresses') || k.includes('allowedFronts') || k.includes('returnPath') || k.includes('returnEncap')) return 'back';
  if (k.includes('routes') || k.includes('backs') || k.includes('pools')) return 'table';
  return 'unknown';
}

const WHAT: Record<Exclude<FileRole, 'unknown'>, string> = {
  front: 'a front config (it has services/table)',
  back: 'a back config (it has addresses/allowedFronts)',
  table: 'a table file (it has backs/pools/routes)',
};

/** One line when `file` is plainly another kind of file than `expected`; undefined otherwise. */
export function wrongRole(file: string, value: unknown, expected: 'front' | 'back'): string | undefined {
  const r = roleOf(value);
  if (r === 'unknown' || r === expected) return undefined;
  const want = expected === 'front' ? "the front's config (services, table)" : "the back's config (addresses, allowedFronts)";
  return `${file}: this is ${WHAT[r]}; expected ${want}`;
}

/** wrongRole() for a file on disk (unreadable or unparsable: undefined, the loader says why). */
export function wrongRoleOfFile(file: string, expected: 'front' | 'back'): string | undefined {
  const doc = readDocument(file);
  return doc.ok ? wrongRole(file, doc.value, expected) : undefined;
}

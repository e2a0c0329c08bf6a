// Hash of a table's content (mslb_table_info{hash}, GET /table, mslb reload): the validated
// table as /table shows it — backs, pools, routes in canonical text — without its file name or load
// time, with object keys sorted, so fronts with equal tables show equal hashes whatever the file's
// layout, comments or key order.
import { createHash } from 'node:crypto';

function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) out[k] = canonical((v as Record<string, unknown>)[k]);
    return out;
  }
  return v;
}

/** 16 hex digits (64 bits of SHA-256) of { backs, pools, routes }. */
export function tableHash(view: { backs: unknown; pools: unknown; routes: unknown }): string {
  const text = JSON.stringify(canonical({ backs: view.backs, pools: view.pools, routes: view.routes }));
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

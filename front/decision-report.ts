// What an operator asks of a decision (mslb lookup, GET /lookup on the front's admin server): the
// back decide() chose, plus what the data path does not keep — the table route (prefix) that
// matched, the pool's members with their weights and state, and whether fail-open applied.
// Off the hot path: it parses the table view's routes per question (an admin request, a CLI run).

import { parseAddress, parsePrefix, formatAddress, wordMask, type Family } from '../shared/table/addr.js';
import { decide, DecisionInput, DecisionResult, LBSP_IGNORED_NAMES, REASON_NAMES } from './decision.js';
import type { CompiledTable } from './table/compiled-table.js';

export interface DecisionQuery {
  src: string;
  /** Service address; default: the front's first service of the source's family. */
  service?: string;
  flowLabel?: number;
  lbspClient?: string;
  lbspServer?: string;
}

export interface MemberReport {
  back: string;
  weight: number;
  /** Weight 0: kept for its pinned flows, chosen for no new one. */
  draining: boolean;
  up: boolean;
}

export interface DecisionReport {
  /** "forward" with a back, or "drop" with the reason as the drop reason. */
  action: 'forward' | 'drop';
  reason: string;
  back: string | null;
  address: string | null;
  mode: 'translate' | 'encap' | null;
  service: string;
  /** The address the table was searched with: the source, or the LBSP client segment. */
  key: { from: 'source' | 'lbsp_client'; address: string };
  /** What the route names: "pool:NAME" or "back:NAME", null when no route was used. */
  target: string | null;
  /** The table route that matched ({ source, to, service? }), null when none did. */
  route: { source: string; to: string; service?: string } | null;
  pool: string | null;
  members: MemberReport[];
  /** Every member of the matched target was down and it is not failClosed: the choice ignores health. */
  failOpen: boolean;
  /** Backs of the table that are down now. */
  down: string[];
  /** Why an LBSP server segment was ignored (unknown_server, backend_down, other_service, draining); null when it was not. */
  lbspIgnored: string | null;
  /** The LBSP client segment was covered by no route: the source was the key. */
  lbspClientFellBack: boolean;
}

export class DecisionQueryError extends Error {}

interface ViewRoute { source: string; to: string; service?: string }

/** Fill a DecisionInput from text; throws DecisionQueryError naming the bad field. */
export function decisionInput(t: CompiledTable, q: DecisionQuery): DecisionInput {
  const inp = new DecisionInput();
  const src = parseAddress(q.src);
  if (!src) throw new DecisionQueryError(`src: not an address: ${q.src}`);
  inp.family = src.family;
  inp.src.set(src.words);
  const svcText = q.service ?? t.meta.services.find((s) => parseAddress(s)!.family === src.family);
  if (svcText === undefined) throw new DecisionQueryError(`service: the front has no IPv${src.family} service (services: ${t.meta.services.join(', ')})`);
  const svc = parseAddress(svcText);
  if (!svc) throw new DecisionQueryError(`service: not an address: ${svcText}`);
  if (svc.family !== src.family) throw new DecisionQueryError(`service ${svcText} is not in the family of src ${q.src}`);
  inp.service.set(svc.words);
  if (q.flowLabel !== undefined) {
    const n = q.flowLabel;
    if (!Number.isInteger(n) || n < 0 || n > 0xfffff) throw new DecisionQueryError(`flow label: must be 0..1048575 (0x0..0xfffff), got ${n}`);
    inp.flowLabel = n;
  }
  for (const [name, text, arr] of [['lbsp client', q.lbspClient, inp.lbspClient], ['lbsp server', q.lbspServer, inp.lbspServer]] as const) {
    if (text === undefined) continue;
    const a = parseAddress(text);
    if (!a) throw new DecisionQueryError(`${name}: not an address: ${text}`);
    arr.set(a.family === 6 ? a.words : [0, 0, 0xffff, a.words[0]!]);
    inp.hasLbsp = true;
  }
  return inp;
}

/** The key decide() searched the prefix tables with (source, or LBSP client segment a route covers). */
function searchKey(t: CompiledTable, inp: DecisionInput, res: DecisionResult): { from: 'source' | 'lbsp_client'; family: Family; words: Uint32Array } {
  const c = inp.lbspClient;
  if (!res.lbspClientFellBack && inp.hasLbsp && t.meta.lbspEnabled && inp.family === 6 && (c[0]! | c[1]! | c[2]! | c[3]!) !== 0) {
    if (c[0] === 0 && c[1] === 0 && c[2] === 0xffff) return { from: 'lbsp_client', family: 4, words: Uint32Array.of(c[3]!, 0, 0, 0) };
    return { from: 'lbsp_client', family: 6, words: Uint32Array.from(c) };
  }
  return { from: 'source', family: inp.family, words: Uint32Array.from(inp.src) };
}

/** Longest route containing the key among those for this service; a route naming the service wins a tie. */
export function matchRoute(routes: readonly ViewRoute[], service: string, family: Family, words: Uint32Array): ViewRoute | null {
  let best: ViewRoute | null = null;
  let bestLen = -1;
  let bestSpecific = false;
  for (const r of routes) {
    if (r.service !== undefined && r.service !== service) continue;
    const p = parsePrefix(r.source);
    if (!p || p.family !== family) continue;
    let inside = true;
    for (let i = 0; i < (family === 4 ? 1 : 4) && inside; i++) {
      const m = wordMask(p.len - 32 * i);
      inside = ((words[i]! & m) >>> 0) === ((p.words[i]! & m) >>> 0);
    }
    if (!inside) continue;
    const specific = r.service !== undefined;
    if (p.len > bestLen || (p.len === bestLen && specific && !bestSpecific)) { best = r; bestLen = p.len; bestSpecific = specific; }
  }
  return best;
}

/** Decide `inp` over `t` with its up[] as it is now, and explain. */
export function explainDecision(t: CompiledTable, inp: DecisionInput): DecisionReport {
  const res = new DecisionResult();
  decide(t, inp, res);
  const a = t.a;
  const names = t.meta.backNames;
  const isUp = (b: number) => a.up[a.backSlot[b]!] !== 0;
  const down = names.filter((_, b) => !isUp(b));
  const service = formatAddress(inp.family, inp.service);
  const key = searchKey(t, inp, res);
  const view = t.meta.view;
  // LBSP-sticky decisions and drops before step 3 used no route.
  const route = res.target >= 0 ? matchRoute(view.routes as ViewRoute[], service, key.family, key.words) : null;
  const targetName = res.target >= 0 ? t.meta.targetNames[res.target]! : '';
  const pool = targetName.startsWith('pool:') ? targetName.slice(5) : null;
  const members: MemberReport[] = res.target >= 0
    ? t.targetMembers(res.target).map((m) => ({ back: m.name, weight: m.weight, draining: m.draining, up: m.up }))
    : [];
  const forward = res.back >= 0;
  const w = new Uint32Array(4);
  const fam = forward ? t.backAddress(res.back, res.service, w) : 0;
  return {
    action: forward ? 'forward' : 'drop',
    reason: REASON_NAMES[res.reason]!,
    back: forward ? names[res.back]! : null,
    address: forward && fam !== 0 ? formatAddress(fam as Family, w) : null,
    mode: forward ? (a.backMode[res.back] === 1 ? 'encap' : 'translate') : null,
    service,
    key: { from: key.from, address: formatAddress(key.family, key.words) },
    target: targetName === '' ? null : targetName,
    route: route ? { source: route.source, to: route.to, ...(route.service !== undefined ? { service: route.service } : {}) } : null,
    pool,
    members,
    failOpen: forward && !isUp(res.back),
    down,
    lbspIgnored: res.lbspIgnored !== 0 ? LBSP_IGNORED_NAMES[res.lbspIgnored]! : null,
    lbspClientFellBack: res.lbspClientFellBack,
  };
}

/** One line for a terminal. */
export function formatDecisionReport(r: DecisionReport): string {
  const route = r.route ? ` route ${r.route.source}${r.route.service ? ` (service ${r.route.service})` : ''}` : '';
  const extra: string[] = [];
  if (r.failOpen) extra.push(`fail-open: every member is down (${r.members.map((m) => m.back).join(', ')}), health ignored`);
  if (r.lbspIgnored !== null) extra.push(`LBSP server segment ignored: ${r.lbspIgnored}`);
  if (r.lbspClientFellBack) extra.push('LBSP client segment no route covers: keyed by source');
  if (r.members.length > 0 && r.pool !== null) {
    extra.push(`members ${r.members.map((m) => `${m.back}(weight ${m.weight}${m.draining ? ', draining' : ''}, ${m.up ? 'up' : 'down'})`).join(' ')}`);
  }
  if (r.down.length > 0) extra.push(`down: ${r.down.join(', ')}`);
  const tail = extra.length > 0 ? `; ${extra.join('; ')}` : '';
  if (r.action === 'drop') return `drop: ${r.reason}${r.target !== null ? ` via ${r.target}` : ''}${route}${tail}`;
  const via = r.target !== null ? ` via ${r.target}` : '';
  return `back ${r.back} address ${r.address} mode ${r.mode} reason ${r.reason}${via}${route}${tail}`;
}

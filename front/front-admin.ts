// The front's own admin routes (SPEC 8, beyond /metrics /healthz /readyz /table):
//   GET  /lookup?src=&label=&lbspClient=&lbspServer=&service=[&proto=&sport=&dport=]
//        the decision for a first packet with the live health (up[] as the workers see it), plus
//        the flows pinned from that source to that service in the workers' flow tables;
//   GET  /flows?back=NAME&limit=N   pinned flows (bounded: default 100, at most 1000);
//   POST /reload                    reload the table now and answer with the result (host only;
//                                   shared/admin/reload-route.ts).
// Read-only but the reload; every answer is bounded whatever the table or flow-table size.
import type { AdminReply, AdminRoute } from '../shared/admin/admin-server.js';
import type { FlowEntry, FlowQuery, FlowSnapshot } from '../shared/engine/worker-messages.js';
import { formatAddress, parseAddress } from '../shared/table/addr.js';
import { decisionInput, explainDecision, DecisionQueryError, type DecisionQuery } from './decision-report.js';
import type { CompiledTable } from './table/compiled-table.js';
import type { ReloadResult } from './table-manager.js';
import { reloadRoute } from '../shared/admin/reload-route.js';

export const FLOWS_DEFAULT_LIMIT = 100;
export const FLOWS_MAX_LIMIT = 1000;
/** Pins shown with a /lookup answer. */
export const LOOKUP_PINS_LIMIT = 20;

/** A pinned flow as the admin API shows it. */
export interface FlowView {
  kind: 'flow' | 'fragment';
  proto: number;
  src: string;
  dst: string;
  sport?: number;
  dport?: number;
  fragId?: number;
  back: string | null;
  idleMs: number;
  expiresInMs: number;
  closing: boolean;
  queue: number;
}

/** What a table reload did (POST /reload answers with it). */
export interface ReloadReply { result: ReloadResult; file: string; hash: string }

export interface FrontAdminDeps {
  table: () => CompiledTable | null;
  /** Ask the workers (ServiceHost.queryFlows). */
  queryFlows: (q: Omit<FlowQuery, 'type' | 'id'>) => Promise<FlowSnapshot[]>;
  /** Reload the table now; the result of that reload. */
  reload: () => ReloadReply | Promise<ReloadReply>;
}

const PROTOS: Record<string, number> = { tcp: 6, udp: 17, icmp: 1, icmpv6: 58, sctp: 132 };

class BadRequest extends Error {}

function bad(message: string): AdminReply {
  return { status: 400, body: { error: message } };
}

function intParam(q: URLSearchParams, name: string, lo: number, hi: number): number | undefined {
  const v = q.get(name);
  if (v === null) return undefined;
  const n = /^(0x[0-9a-f]+|\d+)$/i.test(v) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < lo || n > hi) throw new BadRequest(`${name}: an integer from ${lo} to ${hi}, got ${JSON.stringify(v)}`);
  return n;
}

function toView(e: FlowEntry, queue: number, t: CompiledTable): FlowView {
  const b = t.a.backSlot.indexOf(e.slot);
  const v: FlowView = {
    kind: e.kind, proto: e.proto, src: formatAddress(e.family, e.src), dst: formatAddress(e.family, e.dst),
    back: b >= 0 && b < t.backCount ? t.meta.backNames[b]! : null,
    idleMs: Math.round(e.idleMs), expiresInMs: Math.round(e.expiresInMs), closing: e.closing, queue,
  };
  if (e.kind === 'fragment') v.fragId = e.fragId;
  else if (e.proto === 6 || e.proto === 17 || e.proto === 132) { v.sport = e.sport; v.dport = e.dport; }
  return v;
}

/** Merge the workers' answers: totals summed, at most `limit` flows, most recently seen first. */
function merge(answers: FlowSnapshot[], limit: number, t: CompiledTable) {
  let total = 0, matched = 0;
  const flows: FlowView[] = [];
  for (const a of answers) {
    total += a.total;
    matched += a.matched;
    for (const e of a.flows) flows.push(toView(e, a.queue, t));
  }
  flows.sort((x, y) => x.idleMs - y.idleMs);
  return { total, matched, workers: answers.length, limit, truncated: matched > Math.min(limit, flows.length), flows: flows.slice(0, limit) };
}

export function frontAdminRoutes(d: FrontAdminDeps): Record<string, AdminRoute> {
  // A flow question stops each worker's packet loop for one table scan: one question at a time,
  // so a burst of admin requests cannot turn into a forwarding stall.
  let busy = false;
  const askWorkers = async (q: Omit<FlowQuery, 'type' | 'id'>): Promise<FlowSnapshot[] | null> => {
    if (busy) return null;
    busy = true;
    try {
      return await d.queryFlows(q);
    } finally {
      busy = false;
    }
  };
  const BUSY: AdminReply = { status: 429, body: { error: 'another flow-table query is running; ask again' } };
  const guarded = (f: (q: URLSearchParams) => AdminReply | Promise<AdminReply>) => async (q: URLSearchParams): Promise<AdminReply> => {
    try {
      return await f(q);
    } catch (e) {
      if (e instanceof BadRequest || e instanceof DecisionQueryError) return bad(e.message);
      throw e;
    }
  };
  return {
    '/lookup': {
      method: 'GET',
      handle: guarded(async (q) => {
        const t = d.table();
        if (!t) return { status: 503, body: { error: 'no table loaded' } };
        const src = q.get('src');
        if (src === null) throw new BadRequest('src: the client address is required (/lookup?src=ADDR[&label=N&lbspClient=&lbspServer=&service=])');
        const dq: DecisionQuery = { src };
        const label = intParam(q, 'label', 0, 0xfffff);
        if (label !== undefined) dq.flowLabel = label;
        for (const [k, f] of [['lbspClient', 'lbspClient'], ['lbspServer', 'lbspServer'], ['service', 'service']] as const) {
          const v = q.get(k);
          if (v !== null) dq[f] = v;
        }
        const inp = decisionInput(t, dq);
        const report = explainDecision(t, inp);
        const protoText = q.get('proto');
        let proto: number | undefined;
        if (protoText !== null) {
          proto = PROTOS[protoText.toLowerCase()] ?? (/^\d+$/.test(protoText) && Number(protoText) <= 255 ? Number(protoText) : undefined);
          if (proto === undefined) throw new BadRequest(`proto: tcp, udp, icmp, icmpv6, sctp or a number 0-255, got ${JSON.stringify(protoText)}`);
        }
        const sport = intParam(q, 'sport', 0, 65535);
        const dport = intParam(q, 'dport', 0, 65535);
        const answers = await askWorkers({
          slot: -1, family: inp.family, src: Array.from(inp.src), dst: Array.from(inp.service),
          ...(proto !== undefined ? { proto } : {}), ...(sport !== undefined ? { sport } : {}), ...(dport !== undefined ? { dport } : {}),
          limit: LOOKUP_PINS_LIMIT,
        });
        if (answers === null) return BUSY;
        const m = merge(answers, LOOKUP_PINS_LIMIT, t);
        return { status: 200, body: { ...report, pins: m.flows, pinsMatched: m.matched, live: true } };
      }),
    },
    '/flows': {
      method: 'GET',
      handle: guarded(async (q) => {
        const t = d.table();
        if (!t) return { status: 503, body: { error: 'no table loaded' } };
        const limit = Math.min(intParam(q, 'limit', 1, Number.MAX_SAFE_INTEGER) ?? FLOWS_DEFAULT_LIMIT, FLOWS_MAX_LIMIT);
        let slot = -1;
        const back = q.get('back');
        if (back !== null) {
          const b = t.meta.backNames.indexOf(back);
          if (b < 0) return { status: 404, body: { error: `unknown back ${JSON.stringify(back)} (backs: ${t.meta.backNames.join(', ')})` } };
          slot = t.a.backSlot[b]!;
        }
        const src = q.get('src');
        let filter: { family?: 4 | 6; src?: number[] } = {};
        if (src !== null) {
          const a = parseAddress(src);
          if (!a) throw new BadRequest(`src: not an address: ${JSON.stringify(src)}`);
          filter = { family: a.family, src: Array.from(a.words) };
        }
        const answers = await askWorkers({ slot, ...filter, limit });
        if (answers === null) return BUSY;
        return { status: 200, body: { ...(back !== null ? { back } : {}), ...merge(answers, limit, t) } };
      }),
    },
    '/reload': reloadRoute(async () => {
      const r = await d.reload();
      return { outcome: r.result.outcome, file: r.file, errors: r.result.errors, hash: r.hash };
    }),
  };
}

// The front's first-packet decision (SPEC section 2, steps 1-4) over a compiled table.
// Pure and allocation-free: the caller fills a reusable DecisionInput, decide() writes into a
// reusable DecisionResult. The flow table (step 5) sits in front of this, in the processor.

import { CompiledTable, KEY_LABEL, KEY_SOURCE_LABEL, SERVES_DRAINING, SERVES_NONE } from './table/compiled-table.js';
import { sip1, sip2, sip4, sip5 } from '../shared/packet/siphash.js';

export const REASON_LBSP_SERVER = 0;
export const REASON_SOURCE_PREFIX = 1;
export const REASON_FLOW_LABEL = 2;
export const REASON_NO_ROUTE = 3;
export const REASON_BACKEND_DOWN = 4;
export const REASON_NOT_SERVICE = 5;
/** Names in REASON_* order (decision reasons match DECISION_REASONS, drops match DROP_REASONS). */
export const REASON_NAMES = ['lbsp_server', 'source_prefix', 'flow_label', 'no_route', 'backend_down', 'not_service'] as const;

/** Why an LBSP server segment was ignored (DecisionResult.lbspIgnored); 0 = it was not. */
export const LBSP_OK = 0;
export const LBSP_UNKNOWN_SERVER = 1;
export const LBSP_BACKEND_DOWN = 2;
export const LBSP_OTHER_SERVICE = 3;
export const LBSP_DRAINING = 4;
/** Names in LBSP_* order from 1 (the `reason` label of mslb_lbsp_ignored_total). */
export const LBSP_IGNORED_NAMES = ['', 'unknown_server', 'backend_down', 'other_service', 'draining'] as const;

export class DecisionInput {
  /** Family of the packet (its source and destination). */
  family: 4 | 6 = 6;
  /** Source address words (IPv4: word 0). */
  src = new Uint32Array(4);
  /** Destination (service) address words. */
  service = new Uint32Array(4);
  /** IPv6 flow label (20 bits), 0 for none / IPv4. */
  flowLabel = 0;
  /** An LBSP option of the right length was found. */
  hasLbsp = false;
  lbspClient = new Uint32Array(4);
  lbspServer = new Uint32Array(4);
}

export class DecisionResult {
  /** Chosen back index in the compiled table, -1 when dropped. */
  back = -1;
  /** Its stable backend slot (metrics, up[]), -1 when dropped. */
  slot = -1;
  /** Service index of the destination, -1 when not a service. */
  service = -1;
  reason = REASON_NO_ROUTE;
  /** LBSP server segment was non-zero but ignored (counted): LBSP_* why, LBSP_OK when not. */
  lbspIgnored = LBSP_OK;
  /** The LBSP client segment was not used as the key (no route covers it): the source was. */
  lbspClientFellBack = false;
  /** Target index the route chose (-1 for LBSP sticky or no route). */
  target = -1;
}

/** Decide; returns out.reason. */
export function decide(t: CompiledTable, inp: DecisionInput, out: DecisionResult): number {
  const a = t.a;
  out.back = -1; out.slot = -1; out.target = -1; out.lbspIgnored = LBSP_OK; out.lbspClientFellBack = false;
  const s = t.serviceIndex(inp.family, inp.service);
  out.service = s;
  if (s < 0) { out.reason = REASON_NOT_SERVICE; return REASON_NOT_SERVICE; }
  const S = t.serviceCount;
  const lbsp = inp.hasLbsp && t.meta.lbspEnabled && inp.family === 6;

  // 1. LBSP sticky server: only a back this service has (some route for it leads there), up and
  // not draining, so a client cannot name its way to another service's back or past a drain.
  if (lbsp) {
    const v = inp.lbspServer;
    if ((v[0]! | v[1]! | v[2]! | v[3]!) !== 0) {
      const b = t.backByLbspServer(v[0]!, v[1]!, v[2]!, v[3]!);
      const serves = b >= 0 ? a.backServes[b * S + s]! : 0;
      if (b < 0) out.lbspIgnored = LBSP_UNKNOWN_SERVER;
      else if (serves === SERVES_NONE || a.backAddrFamily[b * S + s] === 0) out.lbspIgnored = LBSP_OTHER_SERVICE;
      else if (a.up[a.backSlot[b]!] === 0) out.lbspIgnored = LBSP_BACKEND_DOWN;
      else if (serves === SERVES_DRAINING) out.lbspIgnored = LBSP_DRAINING;
      else {
        out.back = b; out.slot = a.backSlot[b]!; out.reason = REASON_LBSP_SERVER;
        return REASON_LBSP_SERVER;
      }
    }
  }

  // 2. Client key: LBSP client segment (IPv4-mapped counts as IPv4) or the source address.
  const pt = t.prefix[a.tableOfService[s]!]!;
  let kf = inp.family;
  let k0 = inp.src[0]!, k1 = inp.src[1]!, k2 = inp.src[2]!, k3 = inp.src[3]!;
  let target = -1;
  if (lbsp) {
    const c = inp.lbspClient;
    if ((c[0]! | c[1]! | c[2]! | c[3]!) !== 0) { // all-zero: client segment not filled in
      const mapped = c[0] === 0 && c[1] === 0 && c[2] === 0xffff;
      target = mapped ? pt.lookup4(c[3]!) : pt.lookup6(c[0]!, c[1]!, c[2]!, c[3]!);
      if (target >= 0) {
        if (mapped) { kf = 4; k0 = c[3]!; k1 = 0; k2 = 0; k3 = 0; }
        else { kf = 6; k0 = c[0]!; k1 = c[1]!; k2 = c[2]!; k3 = c[3]!; }
      } else out.lbspClientFellBack = true; // an anonymous value no route covers: key by source
    }
  }

  // 3. Longest-prefix match -> target.
  if (target < 0) target = kf === 4 ? pt.lookup4(k0) : pt.lookup6(k0, k1, k2, k3);
  if (target < 0) { out.reason = REASON_NO_ROUTE; return REASON_NO_ROUTE; }
  out.target = target;

  // 4. Inside the pool.
  const start = a.targetStart[target]!, count = a.targetCount[target]!;
  const keyKind = a.targetKey[target]!;
  const label = t.meta.flowLabelEnabled ? inp.flowLabel & 0xfffff : 0;
  let reason = REASON_SOURCE_PREFIX;
  let back: number;
  if (count === 1) {
    back = a.members[start]!; // a pool of one: fail-open means it is used even when down
    if (a.up[a.backSlot[back]!] === 0 && a.targetFailClosed[target] !== 0) { out.reason = REASON_BACKEND_DOWN; return REASON_BACKEND_DOWN; }
  } else {
    // Keyed (the front's hashKey): who does not know it cannot pick keys that share a back.
    const hk = a.hashKey;
    let h: number;
    if (label !== 0 && keyKind === KEY_LABEL) { h = sip1(hk, label); reason = REASON_FLOW_LABEL; }
    else if (label !== 0 && keyKind === KEY_SOURCE_LABEL) {
      h = kf === 4 ? sip2(hk, k0, label) : sip5(hk, k0, k1, k2, k3, label);
      reason = REASON_FLOW_LABEL;
    } else h = kf === 4 ? sip1(hk, k0) : sip4(hk, k0, k1, k2, k3);
    const M = t.maglevSize;
    const j = a.targetPool[target]! * M + (h >>> 0) % M;
    back = a.maglevFull[j]!;
    if (a.up[a.backSlot[back]!] === 0) {
      const alt = a.maglevAlive[j]!;
      if (alt >= 0 && a.up[a.backSlot[alt]!] !== 0) back = alt;
      else {
        // `alive` not refreshed yet (or nobody up): first up member from a hashed start,
        // one that is not draining if there is one.
        let found = -1;
        for (let i = 0; i < count; i++) {
          const e = start + ((h >>> 0) + i) % count;
          const m = a.members[e]!;
          if (a.up[a.backSlot[m]!] !== 0 && (found < 0 || a.memberWeight[e] !== 0)) { found = m; if (a.memberWeight[e] !== 0) break; }
        }
        if (found >= 0) back = found;
        else if (a.targetFailClosed[target] !== 0) { out.reason = REASON_BACKEND_DOWN; return REASON_BACKEND_DOWN; }
        // else fail-open: keep the `full` choice over all configured members
      }
    }
  }
  // A back with no address for this service cannot carry it (e.g. an IPv4-mapped LBSP client
  // key routed to an IPv4 translate back for an IPv6 packet).
  if (a.backAddrFamily[back * S + s] === 0) { out.reason = REASON_NO_ROUTE; return REASON_NO_ROUTE; }
  out.back = back; out.slot = a.backSlot[back]!; out.reason = reason;
  return reason;
}

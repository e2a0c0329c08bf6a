// Where each data-path counter lives in a worker's shared counter block.
// The hot path only does `block[INDEX] += n` on a Float64Array over a SharedArrayBuffer;
// the main thread sums the blocks of all workers at scrape time (no prom-client call per packet).

export const DROP_REASONS = [
  'malformed',
  'no_route',
  'not_service',
  'hop_limit',
  'too_big',
  'unauthorized_source',
  'backend_down',
  'write_error',
  // lost on read: longer than a slot, or a read error that ended the batch (counted by the addon)
  'read_error',
] as const;
export type DropReason = (typeof DROP_REASONS)[number];

export const DECISION_REASONS = ['lbsp_server', 'source_prefix', 'flow_label', 'flow_table'] as const;
export type DecisionReason = (typeof DECISION_REASONS)[number];

export const ICMP_TYPES = ['packet_too_big', 'frag_needed', 'time_exceeded'] as const;
export type IcmpType = (typeof ICMP_TYPES)[number];

/** Other per-worker event counters (not drops: the packet is still forwarded). */
export const EVENT_COUNTERS = [
  'lbsp_ignored_bad_length',
  'lbsp_ignored_unknown_server',
  'lbsp_stamped',
  'mss_clamped',
  // tunnel MTU, fragments, tunnels a front accepts, return encapsulation
  'fragmented',
  'pmtu_learned',
  'tunnel_reassembled',
  'tunnel_unwrapped',
  'return_encapsulated',
  'flow_table_hits',
  'flow_table_misses_nonsyn',
  'flow_table_evictions',
  'flow_table_inserts',
  'read_batches',
  'icmp_rate_limited',
  'multicast_ignored',
  'lbsp_stamp_skipped',
  // packets taken in without being forwarded or dropped, so rx = tx + drops + these
  'fabric_icmp_handled',
  'fragments_held',
  // an LBSP server segment ignored because it names a back the packet's service has not, one that
  // is down, or one that drains (with bad_length and unknown_server: mslb_lbsp_ignored_total)
  'lbsp_ignored_other_service',
  'lbsp_ignored_backend_down',
  'lbsp_ignored_draining',
  'lbsp_client_fallback',
  // ICMP errors to a service about a packet it sent (SPEC 2 step 6): how each was steered, the
  // extra copies sent to a pool whose key the quote cannot give back, and why one was refused
  'icmp_steered_flow_table',
  'icmp_steered_client_key',
  'icmp_steered_copies',
  'icmp_steer_copies',
  'icmp_refused_quote_truncated',
  'icmp_refused_quote_invalid',
  'icmp_refused_not_service',
  'icmp_refused_no_route',
  'icmp_refused_backend_down',
  'icmp_refused_copy_limited',
  // hostile input: fabric errors about flows never sent, flow-table inserts refused by admission
  'pmtu_unverified',
  'flow_table_refused',
  // UDP-tunnel super-packets the front wrote to its TAP (the kernel segments each on the way out)
  'tunnel_gso_writes',
] as const;
export type EventCounter = (typeof EVENT_COUNTERS)[number];

/** Backends get a stable slot (assigned by name on the main thread, kept across reloads). */
export const MAX_BACKEND_SLOTS = 1024;

export const C_RX_PACKETS = 0;
export const C_TX_PACKETS = 1;
export const C_RX_BYTES = 2;
export const C_TX_BYTES = 3;
export const C_FLOW_TABLE_SIZE = 4; // a gauge: entries in use in this worker's flow table
export const DROP_BASE = 8;
export const DECISION_BASE = DROP_BASE + DROP_REASONS.length;
export const ICMP_BASE = DECISION_BASE + DECISION_REASONS.length;
export const EVENT_BASE = ICMP_BASE + ICMP_TYPES.length;
/** Two slots per backend: packets then bytes. */
export const BACKEND_BASE = EVENT_BASE + EVENT_COUNTERS.length;
/** One gauge per backend slot: flows pinned to that back in this worker's flow table. */
export const BACKEND_FLOWS_BASE = BACKEND_BASE + 2 * MAX_BACKEND_SLOTS;

/**
 * Services get a slot too (the `service` label): the front's is its position in `services`, the
 * back's is assigned by address on the main thread and kept across reloads. The configs refuse more
 * services than slots, so the label's values are bounded by the config, never taken from a packet.
 */
export const MAX_SERVICE_SLOTS = 256;
/** Never exported: where a processor built without slots for every service counts the rest. */
export const SERVICE_SINK_SLOT = MAX_SERVICE_SLOTS;
/** Per service slot: wire packets, wire bytes, then one decision counter per DECISION_REASONS entry. */
export const SERVICE_STRIDE = 2 + DECISION_REASONS.length;
export const SERVICE_BASE = BACKEND_FLOWS_BASE + MAX_BACKEND_SLOTS;
export const COUNTER_BLOCK_LENGTH = SERVICE_BASE + SERVICE_STRIDE * (MAX_SERVICE_SLOTS + 1);

export function dropIndex(r: DropReason): number {
  return DROP_BASE + DROP_REASONS.indexOf(r);
}
export function decisionIndex(r: DecisionReason): number {
  return DECISION_BASE + DECISION_REASONS.indexOf(r);
}
export function icmpIndex(t: IcmpType): number {
  return ICMP_BASE + ICMP_TYPES.indexOf(t);
}
export function eventIndex(e: EventCounter): number {
  return EVENT_BASE + EVENT_COUNTERS.indexOf(e);
}
export function backendPacketsIndex(slot: number): number {
  return BACKEND_BASE + 2 * slot;
}

export function backendFlowsIndex(slot: number): number {
  return BACKEND_FLOWS_BASE + slot;
}

/** Packets of service slot `slot`; its bytes are at +1, its decisions from +2 (serviceDecisionIndex). */
export function servicePacketsIndex(slot: number): number {
  return SERVICE_BASE + SERVICE_STRIDE * slot;
}

export function serviceDecisionIndex(slot: number, r: DecisionReason): number {
  return servicePacketsIndex(slot) + 2 + DECISION_REASONS.indexOf(r);
}

/** One block per worker, allocated by the main thread and handed to the worker. */
export function newCounterBlock(): Float64Array {
  return new Float64Array(new SharedArrayBuffer(COUNTER_BLOCK_LENGTH * 8));
}

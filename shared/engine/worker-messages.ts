// Messages between the main thread and the per-queue workers (structured-clone plain data;
// typed arrays inside are views on SharedArrayBuffers, so tables are shared, not copied).

import type { TunQueueOptions } from '../tun/tun-device.js';

export interface WorkerInit {
  queue: number;
  fd: number;
  tun: TunQueueOptions;
  /**
   * The front's tunnel TAP queue for this worker (offload.udpTunnel): fd, the TAP's MAC and its
   * TUN_F_* offloads; written only, 24-byte vnet header on the device.
   */
  tap?: { fd: number; mac: number[]; offloads: number };
  /** This worker's counter block (see shared/metrics/counter-layout.ts). */
  counters: SharedArrayBuffer;
  /** Role-specific settings, plain data (addresses already parsed into words). */
  role: unknown;
  /**
   * Tests only (set from MSLB_TEST_WORKER_EXIT_AFTER_MS when NODE_ENV=test): the worker ends
   * itself this many ms after start, to show what an unexpected worker exit does.
   */
  testExitAfterMs?: number;
}

/**
 * Read-only question about a worker's flow table (the front's GET /flows, /lookup): entries
 * pinned to backend slot `slot` (-1: any), from source `src` to `dst` (address words, omitted:
 * any), at most `limit`.
 */
export interface FlowQuery {
  type: 'flows';
  id: number;
  slot: number;
  family?: 4 | 6;
  src?: number[];
  dst?: number[];
  proto?: number;
  sport?: number;
  dport?: number;
  limit: number;
}

/** One pinned entry, plain data. Addresses as words; the main thread formats them. */
export interface FlowEntry {
  kind: 'flow' | 'fragment';
  family: 4 | 6;
  proto: number;
  src: number[];
  dst: number[];
  /** Ports of a flow; the Identification of a fragmented datagram. */
  sport: number;
  dport: number;
  fragId: number;
  slot: number;
  idleMs: number;
  expiresInMs: number;
  closing: boolean;
}

export interface FlowSnapshot {
  type: 'flows';
  id: number;
  queue: number;
  /** Entries in use in this worker's table. */
  total: number;
  /** Entries that matched the query (flows.length is at most limit of them). */
  matched: number;
  flows: FlowEntry[];
}

// A control message with `seq` is acknowledged ('applied' or 'apply-failed' with that seq), so the
// main thread knows every worker runs the same table / role settings.
export type ToWorker =
  | { type: 'stop' }
  | { type: 'table'; table: unknown; generation: number; seq?: number }
  | { type: 'role'; role: unknown; seq?: number }
  | FlowQuery;

export type FromWorker =
  | { type: 'ready'; queue: number }
  | { type: 'stopped'; queue: number }
  | { type: 'error'; queue: number; message: string }
  | { type: 'device-error'; queue: number; message: string }
  | FlowSnapshot
  | { type: 'applied'; queue: number; seq: number }
  | { type: 'apply-failed'; queue: number; seq: number; message: string };

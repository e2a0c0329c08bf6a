// Messages between the main thread and the per-queue workers (structured-clone plain data;
// typed arrays inside are views on SharedArrayBuffers, so tables are shared, not copied).

import type { TunQueueOptions } from '../tun/tun-device.js';

export interface WorkerInit {
  queue: number;
  fd: number;
  tun: TunQueueOptions;
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

// A control message with `seq` is acknowledged ('applied' or 'apply-failed' with that seq), so the
// main thread knows every worker runs the same table / role settings.
export type ToWorker =
  | { type: 'stop' }
  | { type: 'table'; table: unknown; generation: number; seq?: number }
  | { type: 'role'; role: unknown; seq?: number };

export type FromWorker =
  | { type: 'ready'; queue: number }
  | { type: 'stopped'; queue: number }
  | { type: 'error'; queue: number; message: string }
  | { type: 'device-error'; queue: number; message: string }
  | { type: 'applied'; queue: number; seq: number }
  | { type: 'apply-failed'; queue: number; seq: number; message: string };

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
}

export type ToWorker = { type: 'stop' } | { type: 'table'; table: unknown; generation: number };

export type FromWorker =
  | { type: 'ready'; queue: number }
  | { type: 'stopped'; queue: number }
  | { type: 'error'; queue: number; message: string }
  | { type: 'device-error'; queue: number; message: string };

// Main-thread side: one worker thread per TUN queue, each with its own counter block; broadcasts
// control messages (a new compiled table is posted once per worker and swapped in whole there).
import { Worker } from 'node:worker_threads';
import { newCounterBlock } from '../metrics/counter-layout.js';
import type { FromWorker, ToWorker, WorkerInit } from './worker-messages.js';
import type { TunQueueOptions } from '../tun/tun-device.js';

export interface WorkerPoolOptions {
  /** Compiled worker entry file (e.g. dist/front/worker.js). */
  entry: URL;
  fds: number[];
  tun: TunQueueOptions;
  role: unknown;
  onEvent: (m: FromWorker) => void;
}

export class WorkerPool {
  readonly blocks: Float64Array[] = [];
  private readonly workers: Worker[] = [];

  constructor(private readonly opts: WorkerPoolOptions) {}

  /** Start all workers and resolve when every one reported ready (or reject on the first error). */
  async start(timeoutMs = 10_000): Promise<void> {
    const ready = this.opts.fds.map((fd, queue) => {
      const block = newCounterBlock();
      this.blocks.push(block);
      const init: WorkerInit = { queue, fd, tun: this.opts.tun, counters: block.buffer as SharedArrayBuffer, role: this.opts.role };
      const w = new Worker(this.opts.entry, { workerData: init });
      this.workers.push(w);
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`worker ${queue} not ready after ${timeoutMs} ms`)), timeoutMs);
        w.on('message', (m: FromWorker) => {
          if (m.type === 'ready') {
            clearTimeout(timer);
            resolve();
          } else if (m.type === 'error') {
            clearTimeout(timer);
            reject(new Error(`worker ${queue}: ${m.message}`));
          }
          this.opts.onEvent(m);
        });
        w.on('error', (err) => {
          clearTimeout(timer);
          reject(err);
          this.opts.onEvent({ type: 'error', queue, message: err.stack ?? err.message });
        });
      });
    });
    await Promise.all(ready);
  }

  broadcast(msg: ToWorker): void {
    for (const w of this.workers) w.postMessage(msg);
  }

  /** Ask every worker to stop (it closes its queue fd), then terminate stragglers. */
  async stop(timeoutMs = 3000): Promise<void> {
    await Promise.all(
      this.workers.map(
        (w) =>
          new Promise<void>((resolve) => {
            const t = setTimeout(() => {
              void w.terminate().then(() => resolve());
            }, timeoutMs);
            w.once('exit', () => {
              clearTimeout(t);
              resolve();
            });
            w.postMessage({ type: 'stop' } satisfies ToWorker);
          }),
      ),
    );
    this.workers.length = 0;
  }
}

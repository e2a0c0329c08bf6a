// Main-thread side: one worker thread per TUN queue, each with its own counter block; broadcasts
// control messages (a new compiled table is posted once per worker and swapped in whole there).
import { Worker } from 'node:worker_threads';
import { newCounterBlock } from '../metrics/counter-layout.js';
import type { FlowQuery, FlowSnapshot, FromWorker, ToWorker, WorkerInit } from './worker-messages.js';
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
  private nextQuery = 1;
  /** Flow questions in flight: answers by worker, resolved when every worker answered. */
  private readonly pending = new Map<number, (m: FlowSnapshot) => void>();

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
          if (m.type === 'flows') {
            this.pending.get(m.id)?.(m);
            return;
          }
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

  /**
   * Ask every worker the same flow question; resolves with the answers that came within timeoutMs
   * (a worker busy past it is left out rather than holding the admin request).
   */
  queryFlows(q: Omit<FlowQuery, 'type' | 'id'>, timeoutMs: number): Promise<FlowSnapshot[]> {
    const id = this.nextQuery++;
    const answers: FlowSnapshot[] = [];
    const n = this.workers.length;
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.pending.delete(id);
        resolve(answers);
      };
      const timer = setTimeout(done, timeoutMs);
      this.pending.set(id, (m) => {
        answers.push(m);
        if (answers.length === n) done();
      });
      if (n === 0) done();
      for (const w of this.workers) w.postMessage({ ...q, type: 'flows', id } satisfies FlowQuery);
    });
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

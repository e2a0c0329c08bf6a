// Main-thread side: one worker thread per TUN queue, each with its own counter block; broadcasts
// control messages (a new compiled table is posted once per worker and swapped in whole there).
// Tracks which workers are alive: an exit the pool did not ask for is reported (the service stops,
// a supervisor restarts it), and `apply` resolves only when every worker acknowledged a message.
import { Worker } from 'node:worker_threads';
import { newCounterBlock } from '../metrics/counter-layout.js';
import type { FlowQuery, FlowSnapshot, FromWorker, ToWorker, WorkerInit } from './worker-messages.js';
import type { TunQueueOptions } from '../tun/tun-device.js';

export interface WorkerPoolOptions {
  /** Compiled worker entry file (e.g. dist/front/worker.js). */
  entry: URL;
  fds: number[];
  tun: TunQueueOptions;
  /** The tunnel TAP's queues (one per worker, same order as fds), its MAC and offloads. */
  tap?: { fds: number[]; mac: number[]; offloads: number };
  role: unknown;
  onEvent: (m: FromWorker) => void;
  /** A worker ended without being asked to (code: its exit code). */
  onExit?: (queue: number, code: number) => void;
  /** Tests only: the worker of queue `queue` ends itself `afterMs` after start. */
  testExit?: { queue: number; afterMs: number };
}

interface PendingApply {
  waiting: Set<number>;
  resolve: () => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

/** Control messages a worker may acknowledge (everything but stop). */
export type ApplyMessage = Exclude<ToWorker, { type: 'stop' }>;

/** applyOrRevert failed; `reverted`: every worker is back on the previous message of that type. */
export class ApplyFailure extends Error {
  constructor(
    message: string,
    readonly reverted: boolean,
  ) {
    super(message);
    this.name = 'ApplyFailure';
  }
}

export class WorkerPool {
  readonly blocks: Float64Array[] = [];
  private readonly workers: Worker[] = [];
  private nextQuery = 1;
  /** Flow questions in flight: answers by worker, resolved when every worker answered. */
  private readonly pendingFlows = new Map<number, (m: FlowSnapshot) => void>();
  private readonly alive: boolean[] = [];
  private stopping = false;
  private seq = 0;
  private readonly pending = new Map<number, PendingApply>();
  /** Per message type, the last one every worker applied (the workers start with the role settings). */
  private readonly applied = new Map<ApplyMessage['type'], ApplyMessage>();
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly opts: WorkerPoolOptions) {
    this.applied.set('role', { type: 'role', role: opts.role });
  }

  /** Workers running now (started and not exited). */
  get liveCount(): number {
    let n = 0;
    for (const a of this.alive) if (a) n++;
    return n;
  }

  /** Workers the pool runs when all are up (one per queue). */
  get size(): number {
    return this.opts.fds.length;
  }

  /** Queues whose worker is not running. */
  deadQueues(): number[] {
    const out: number[] = [];
    for (let q = 0; q < this.size; q++) if (!this.alive[q]) out.push(q);
    return out;
  }

  /** Start all workers and resolve when every one reported ready (or reject on the first error). */
  async start(timeoutMs = 10_000): Promise<void> {
    const ready = this.opts.fds.map((fd, queue) => {
      const block = newCounterBlock();
      this.blocks.push(block);
      const init: WorkerInit = { queue, fd, tun: this.opts.tun, counters: block.buffer as SharedArrayBuffer, role: this.opts.role };
      if (this.opts.testExit && this.opts.testExit.queue === queue) init.testExitAfterMs = this.opts.testExit.afterMs;
      const tap = this.opts.tap;
      if (tap !== undefined) init.tap = { fd: tap.fds[queue]!, mac: tap.mac, offloads: tap.offloads };
      const w = new Worker(this.opts.entry, { workerData: init });
      this.workers.push(w);
      this.alive.push(true);
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`worker ${queue} not ready after ${timeoutMs} ms`)), timeoutMs);
        w.on('message', (m: FromWorker) => {
          if (m.type === 'flows') {
            this.pendingFlows.get(m.id)?.(m);
            return;
          }
          if (m.type === 'ready') {
            clearTimeout(timer);
            resolve();
          } else if (m.type === 'error') {
            clearTimeout(timer);
            reject(new Error(`worker ${queue}: ${m.message}`));
          } else if (m.type === 'applied' || m.type === 'apply-failed') {
            this.acknowledge(m);
            return;
          }
          this.opts.onEvent(m);
        });
        w.on('error', (err) => {
          clearTimeout(timer);
          reject(err);
          this.opts.onEvent({ type: 'error', queue, message: err.stack ?? err.message });
        });
        w.on('exit', (code) => {
          clearTimeout(timer);
          this.alive[queue] = false;
          reject(new Error(`worker ${queue} exited (code ${code}) before it was ready`));
          for (const [s, p] of this.pending) if (p.waiting.has(queue)) this.settle(s, new Error(`worker ${queue} exited (code ${code})`));
          if (!this.stopping) this.opts.onExit?.(queue, code);
        });
      });
    });
    await Promise.all(ready);
  }

  private acknowledge(m: Extract<FromWorker, { type: 'applied' | 'apply-failed' }>): void {
    const p = this.pending.get(m.seq);
    if (!p) return;
    if (m.type === 'apply-failed') return this.settle(m.seq, new Error(`worker ${m.queue}: ${m.message}`));
    p.waiting.delete(m.queue);
    if (p.waiting.size === 0) this.settle(m.seq);
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
        this.pendingFlows.delete(id);
        resolve(answers);
      };
      const timer = setTimeout(done, timeoutMs);
      this.pendingFlows.set(id, (m) => {
        answers.push(m);
        if (answers.length === n) done();
      });
      if (n === 0) done();
      for (const w of this.workers) w.postMessage({ ...q, type: 'flows', id } satisfies FlowQuery);
    });
  }

  private settle(seq: number, err?: Error): void {
    const p = this.pending.get(seq);
    if (!p) return;
    this.pending.delete(seq);
    clearTimeout(p.timer);
    if (err) p.reject(err);
    else p.resolve();
  }

  /** Post without waiting (no acknowledgement asked). */
  broadcast(msg: ToWorker): void {
    for (let q = 0; q < this.workers.length; q++) if (this.alive[q]) this.workers[q]!.postMessage(msg);
  }

  /**
   * Post to every worker and resolve when all applied it; reject when one refused it, exited, or
   * did not answer within timeoutMs (the caller decides what the others, which may have taken
   * it, go back to). A pool with a worker down rejects at once.
   */
  apply(msg: ApplyMessage, timeoutMs = 5000): Promise<void> {
    const dead = this.deadQueues();
    if (dead.length > 0) return Promise.reject(new Error(`worker ${dead.join(', ')} not running`));
    if (this.stopping) return Promise.reject(new Error('workers stopping'));
    const seq = ++this.seq;
    return new Promise<void>((resolve, reject) => {
      const waiting = new Set(this.workers.map((_, q) => q));
      const timer = setTimeout(() => this.settle(seq, new Error(`worker ${[...(this.pending.get(seq)?.waiting ?? [])].join(', ')} did not answer within ${timeoutMs} ms`)), timeoutMs);
      this.pending.set(seq, { waiting, resolve, reject, timer });
      for (const w of this.workers) w.postMessage({ ...msg, seq });
    });
  }

  /**
   * apply(), one call at a time; when it fails, every worker goes back to the last message of that
   * type that all applied, so workers never run different tables. Rejects with an ApplyFailure
   * (reverted: false when there was nothing to go back to or going back failed too).
   */
  applyOrRevert(msg: ApplyMessage, timeoutMs = 5000): Promise<void> {
    const run = async (): Promise<void> => {
      try {
        await this.apply(msg, timeoutMs);
        this.applied.set(msg.type, msg);
      } catch (e) {
        const why = (e as Error).message;
        const prev = this.applied.get(msg.type);
        if (prev === undefined) throw new ApplyFailure(`${why} (no previous ${msg.type} to go back to)`, false);
        try {
          await this.apply(prev, timeoutMs);
        } catch (e2) {
          throw new ApplyFailure(`${why}; going back failed: ${(e2 as Error).message}`, false);
        }
        throw new ApplyFailure(why, true);
      }
    };
    const p = this.chain.then(run, run);
    this.chain = p.catch(() => undefined);
    return p;
  }

  /** Ask every live worker to stop (it closes its queue fd), then terminate stragglers. */
  async stop(timeoutMs = 3000): Promise<void> {
    this.stopping = true;
    for (const s of [...this.pending.keys()]) this.settle(s, new Error('workers stopping'));
    await Promise.all(
      this.workers.map((w, q) => {
        if (!this.alive[q]) return Promise.resolve();
        return new Promise<void>((resolve) => {
          const t = setTimeout(() => {
            void w.terminate().then(() => resolve());
          }, timeoutMs);
          w.once('exit', () => {
            clearTimeout(t);
            resolve();
          });
          w.postMessage({ type: 'stop' } satisfies ToWorker);
        });
      }),
    );
    this.workers.length = 0;
  }
}

// WorkerPool lifecycle over stand-in workers (test/unit/fixtures/engine/pool-worker.mjs): a
// control message resolves only when every worker applied it; a refusal, an exit or silence
// rejects it; an unexpected exit is reported and leaves liveCount/deadQueues saying so; the
// test-only exit hook is honoured only with NODE_ENV=test.
import { afterEach, describe, expect, it } from 'vitest';
import { ApplyFailure, WorkerPool } from '../../shared/engine/worker-pool.js';
import { testWorkerExit } from '../../shared/engine/service-host.js';
import type { FromWorker } from '../../shared/engine/worker-messages.js';

const entry = new URL('./fixtures/engine/pool-worker.mjs', import.meta.url);
let pool: WorkerPool | undefined;
afterEach(async () => {
  await pool?.stop(500);
  pool = undefined;
});

function makePool(role: { refuse?: number; die?: number }, queues = 3, testExit?: { queue: number; afterMs: number }) {
  const events: FromWorker[] = [];
  const exits: [number, number][] = [];
  pool = new WorkerPool({
    entry, fds: Array.from({ length: queues }, () => -1), tun: { batchSize: 1, headroom: 0, vnetHdr: false }, role,
    onEvent: (m) => events.push(m), onExit: (q, code) => exits.push([q, code]), testExit,
  });
  return { pool, events, exits };
}

const until = async (pred: () => boolean, ms = 3000) => {
  const t0 = Date.now();
  while (!pred()) {
    if (Date.now() - t0 > ms) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe('WorkerPool', () => {
  it('apply resolves when every worker applied the message', async () => {
    const { pool } = makePool({});
    await pool.start();
    expect(pool.liveCount).toBe(3);
    await expect(pool.apply({ type: 'table', table: 'good', generation: 2 })).resolves.toBeUndefined();
  });

  it('apply rejects when one worker refuses, naming it', async () => {
    const { pool } = makePool({ refuse: 1 });
    await pool.start();
    await expect(pool.apply({ type: 'table', table: 'bad', generation: 2 })).rejects.toThrow(/worker 1: cannot take it/);
    await expect(pool.apply({ type: 'table', table: 'good', generation: 3 })).resolves.toBeUndefined();
  });

  it('apply rejects when a worker does not answer in time', async () => {
    const { pool } = makePool({ refuse: 2 });
    await pool.start();
    await expect(pool.apply({ type: 'table', table: 'silent', generation: 2 }, 200)).rejects.toThrow(/worker 2 did not answer within 200 ms/);
  });

  it('a worker exiting unasked: reported, liveCount and deadQueues say so, pending and later applies reject', async () => {
    const { pool, exits } = makePool({ die: 0 });
    await pool.start();
    await expect(pool.apply({ type: 'table', table: 'die', generation: 2 })).rejects.toThrow(/worker 0 exited \(code 9\)/);
    await until(() => exits.length === 1);
    expect(exits).toEqual([[0, 9]]);
    expect(pool.liveCount).toBe(2);
    expect(pool.deadQueues()).toEqual([0]);
    await expect(pool.apply({ type: 'table', table: 'good', generation: 3 })).rejects.toThrow(/worker 0 not running/);
    await pool.stop(500); // the dead one is skipped, not waited for until the timeout
  });

  it('the test-only exit hook ends the chosen worker; stop() of the pool is not reported as an exit', async () => {
    const { pool, exits } = makePool({}, 2, { queue: 1, afterMs: 50 });
    await pool.start();
    await until(() => exits.length === 1);
    expect(exits).toEqual([[1, 70]]);
    expect(pool.liveCount).toBe(1);
    await pool.stop(500);
    expect(exits).toHaveLength(1);
  });

  /** The table each queue runs now, from the stand-in's 'took' reports. */
  const running = (events: FromWorker[]) => {
    const now = new Map<number, unknown>();
    for (const e of events as unknown as { type: string; queue: number; table?: unknown }[]) if (e.type === 'took') now.set(e.queue, e.table);
    return [...now.entries()].sort((a, b) => a[0] - b[0]).map(([, t]) => t);
  };

  it('applyOrRevert: a table one worker refuses puts every worker back on the previous one', async () => {
    const { pool, events } = makePool({ refuse: 1 });
    await pool.start();
    await pool.applyOrRevert({ type: 'table', table: 'good', generation: 1 });
    expect(running(events)).toEqual(['good', 'good', 'good']);
    const e = await pool.applyOrRevert({ type: 'table', table: 'bad', generation: 2 }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ApplyFailure);
    expect(e).toMatchObject({ reverted: true, message: expect.stringMatching(/worker 1: cannot take it/) });
    await new Promise((r) => setTimeout(r, 50));
    expect(running(events)).toEqual(['good', 'good', 'good']); // never a split
  });

  it('applyOrRevert: nothing to go back to, or going back fails: not reverted', async () => {
    const first = makePool({ refuse: 2 });
    await first.pool.start();
    await expect(first.pool.applyOrRevert({ type: 'table', table: 'bad', generation: 1 })).rejects.toMatchObject({ reverted: false });
    await first.pool.stop(500);
    const { pool } = makePool({ die: 0 });
    await pool.start();
    await pool.applyOrRevert({ type: 'table', table: 'good', generation: 1 });
    await expect(pool.applyOrRevert({ type: 'table', table: 'die', generation: 2 })).rejects.toMatchObject({ reverted: false, message: expect.stringMatching(/going back failed: worker 0 not running/) });
  });

  it('the hook needs NODE_ENV=test', () => {
    expect(testWorkerExit({ NODE_ENV: 'production', MSLB_TEST_WORKER_EXIT_AFTER_MS: '100' })).toBeUndefined();
    expect(testWorkerExit({ MSLB_TEST_WORKER_EXIT_AFTER_MS: '100' })).toBeUndefined();
    expect(testWorkerExit({ NODE_ENV: 'test' })).toBeUndefined();
    expect(testWorkerExit({ NODE_ENV: 'test', MSLB_TEST_WORKER_EXIT_AFTER_MS: '100', MSLB_TEST_WORKER_EXIT_QUEUE: '3' })).toEqual({ queue: 3, afterMs: 100 });
  });
});

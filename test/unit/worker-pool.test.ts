// WorkerPool lifecycle over stand-in workers (test/unit/fixtures/engine/pool-worker.mjs): a
// control message resolves only when every worker applied it; a refusal, an exit or silence
// rejects it; an unexpected exit is reported and leaves liveCount/deadQueues saying so; the
// test-only exit hook is honoured only with NODE_ENV=test.
import { afterEach, describe, expect, it } from 'vitest';
import { WorkerPool } from '../../shared/engine/worker-pool.js';
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

  it('the hook needs NODE_ENV=test', () => {
    expect(testWorkerExit({ NODE_ENV: 'production', MSLB_TEST_WORKER_EXIT_AFTER_MS: '100' })).toBeUndefined();
    expect(testWorkerExit({ MSLB_TEST_WORKER_EXIT_AFTER_MS: '100' })).toBeUndefined();
    expect(testWorkerExit({ NODE_ENV: 'test' })).toBeUndefined();
    expect(testWorkerExit({ NODE_ENV: 'test', MSLB_TEST_WORKER_EXIT_AFTER_MS: '100', MSLB_TEST_WORKER_EXIT_QUEUE: '3' })).toEqual({ queue: 3, afterMs: 100 });
  });
});

// Inside a worker thread: attach to the TUN queue fd the main thread opened, build the role's
// processor, run the batch loop, and apply control messages (new table, stop) between batches.
import { parentPort, workerData } from 'node:worker_threads';
import { NativeTun } from '../tun/native-tun.js';
import { VNET_TNL_HDR_LEN } from '../tun/tun-device.js';
import { BatchLoop } from './batch-loop.js';
import type { PacketProcessor } from './packet-processor.js';
import type { WorkerInit, ToWorker, FromWorker, FlowQuery, FlowSnapshot } from './worker-messages.js';

export interface RoleProcessor extends PacketProcessor {
  /** Apply a control message other than stop (a new compiled table, new role settings); roles without any omit it. */
  update?(msg: ToWorker): void;
  /** Answer a flow-table question (roles without one leave it out: empty answer). */
  flowSnapshot?(q: FlowQuery, queue: number): FlowSnapshot;
}

export function runWorker(make: (init: WorkerInit, counters: Float64Array) => RoleProcessor): void {
  const port = parentPort;
  if (port === null) throw new Error('runWorker must run inside a worker thread');
  const init = workerData as WorkerInit;
  const counters = new Float64Array(init.counters);
  const post = (m: FromWorker): void => port.postMessage(m);
  let loop: BatchLoop | undefined;
  let dev: NativeTun | undefined;
  let tap: NativeTun | undefined;
  try {
    const processor = make(init, counters);
    dev = NativeTun.attach(init.fd, init.tun);
    // written only (nothing is routed into it): the smallest receive slab the queue accepts
    if (init.tap !== undefined) {
      tap = NativeTun.attach(init.tap.fd, { vnetHdr: true, vnetHdrSize: VNET_TNL_HDR_LEN, offloads: init.tap.offloads, batchSize: 1, headroom: 0, slotSize: 128 });
    }
    loop = new BatchLoop(
      dev,
      processor,
      counters,
      (err) => {
        post({ type: 'device-error', queue: init.queue, message: err.message });
      },
      tap !== undefined ? { tap: { dev: tap, mac: Uint8Array.from(init.tap!.mac) } } : {},
    );
    port.on('message', (msg: ToWorker) => {
      if (msg.type === 'stop') {
        loop?.stop();
        dev?.close();
        tap?.close();
        post({ type: 'stopped', queue: init.queue });
        port.close();
        return;
      }
      if (msg.type === 'flows') {
        // between batches, like every control message: the table is not being written meanwhile
        post(processor.flowSnapshot?.(msg, init.queue) ?? { type: 'flows', id: msg.id, queue: init.queue, total: 0, matched: 0, flows: [] });
        return;
      }
      const seq = msg.seq;
      try {
        processor.update?.(msg);
        if (seq !== undefined) post({ type: 'applied', queue: init.queue, seq });
      } catch (err) {
        const message = (err as Error).message;
        post(seq !== undefined ? { type: 'apply-failed', queue: init.queue, seq, message } : { type: 'error', queue: init.queue, message });
      }
    });
    loop.start();
    post({ type: 'ready', queue: init.queue });
    // In a worker thread process.exit ends this thread only: the main thread sees an 'exit' event.
    if (init.testExitAfterMs !== undefined) setTimeout(() => process.exit(70), init.testExitAfterMs);
  } catch (err) {
    post({ type: 'error', queue: init.queue, message: (err as Error).stack ?? String(err) });
    dev?.close();
    tap?.close();
    port.close();
  }
}

// Worker thread entry of mslb-back: one per TUN queue.
import { runWorker } from '../shared/engine/worker-runtime.js';
import { BackProcessor } from './back-processor.js';
import type { BackRole } from './back-role.js';

runWorker((init, counters) => new BackProcessor(init.role as BackRole, counters));

// Worker thread entry of mslb-front: one per TUN queue.
import { runWorker } from '../shared/engine/worker-runtime.js';
import { FrontProcessor } from './front-processor.js';
import type { FrontRole } from './front-role.js';

runWorker((init, counters) => new FrontProcessor(init.role as FrontRole, counters));

// Entry point for the services: open the kernel TUN device behind the TunDevice interface.
// Tests that need no kernel construct FakeTun directly instead.
import { NativeTun, type OpenTunOptions } from './native-tun.js';
import type { TunDevice } from './tun-device.js';

export type { OpenTunOptions };

/** Open a single-queue TUN device (for several queues see openTunQueues + NativeTun.attach). */
export function openTun(opts: OpenTunOptions): TunDevice {
  return NativeTun.open(opts);
}

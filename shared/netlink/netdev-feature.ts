// Network device features (`ethtool -k` / `-K`) by their kernel names ("rx-gro",
// "rx-udp-gro-forwarding"), through the addon's SIOCETHTOOL call (shared/tun/native/ethtool_features.c).
// Main thread, start-up and exit only.
import { constants } from 'node:os';
import { loadAddon } from '../tun/native-tun.js';

interface FeatureAddon {
  netdevFeature(ifname: string, name: string, want: number): number;
}

/** The errno name of a negative result ("ENOENT": no such feature, "ENODEV": no such interface). */
export function featureErrno(r: number): string {
  const e = -r;
  for (const [k, v] of Object.entries(constants.errno)) if (v === e) return k;
  return `errno ${e}`;
}

/**
 * The feature's active state (0 off, 1 on) after asking for `want` (-1: only read; 0 / 1: off / on),
 * or a negative errno. A kernel that refuses a change answers with the state still in force.
 */
export function netdevFeature(ifname: string, name: string, want: -1 | 0 | 1): number {
  return (loadAddon() as unknown as FeatureAddon).netdevFeature(ifname, name, want);
}

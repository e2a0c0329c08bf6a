// Address classes the data path needs to recognise (multicast destinations are never services).
import type { PacketInfo } from './packet-info.js';

/** IPv6 ff00::/8 or IPv4 224.0.0.0/4 destination. */
export function isMulticastDst(info: PacketInfo): boolean {
  return info.version === 6 ? info.dst[0] >>> 24 === 0xff : info.dst[0] >>> 28 === 0xe;
}

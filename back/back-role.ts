// The back's per-worker settings, derived from its config on the main thread: plain data
// (addresses as words) so it crosses to workers by structured clone.
import type { BackConfig } from './back-config.js';
import { parseAddress, parsePrefix } from '../shared/table/addr.js';
import { LBSP_DEFAULT_TYPE } from '../shared/packet/constants.js';
import { workerShare } from '../shared/tunnel/icmp-rate-limiter.js';
import type { ReturnEncapRole } from './return-encap.js';

export const MODE_TRANSLATE = 0;
export const MODE_ENCAP = 1;
export const MODE_AUTO = 2;

export interface BackOwnAddress {
  family: 4 | 6;
  /** B: the address packets arrive on. */
  b: number[];
  /** S: the service address B maps to. */
  s: number[];
  mode: number;
  /** Counter slot of S (the `service` label); absent: S's position among `services`. */
  slot?: number;
}

export interface BackRole {
  lbspType: number;
  own: BackOwnAddress[];
  /** Distinct service addresses (an unwrapped packet may go to any of them); slot as in own. */
  services: { family: 4 | 6; words: number[]; slot?: number }[];
  allowedFronts: { family: 4 | 6; words: number[]; len: number }[];
  /** IP-in-UDP tunnels are accepted on this destination port too; 0 (or absent) = IP-in-IP only. */
  udpPort?: number;
  /**
   * Return traffic (SPEC 4): packets from a service S steered into the TUN by the returnPath policy
   * routing are forwarded back to the kernel (stamped when `stamp`). False: no returnPath.
   */
  returnPath?: boolean;
  /** Stamp the LBSP server segment on IPv6 return packets with serverId (words). */
  stamp?: boolean;
  /** Stamp every IPv6 reply; otherwise only those of flows whose client sent the option (echo). */
  stampAlways?: boolean;
  serverId?: number[];
  /** Largest MSS left in the IPv6 TCP SYNs forwarded toward S (0 = no clamp). */
  mssClamp?: number;
  /** Largest packet the back writes when it inserts the LBSP header (its TUN MTU). */
  mtu?: number;
  /** Return encapsulation toward a gateway (draft section 6; back/return-encap.ts). */
  returnEncap?: ReturnEncapRole;
}

/** ICMP errors of a back (return encapsulation's Packet Too Big): service-wide rate and burst. */
const BACK_ICMP = { ratePerSecond: 100, burst: 50 };
/** Outer hop limit of return-encapsulated packets. */
const RETURN_ENCAP_HOP_LIMIT = 64;

/** returnEncap.gateway -> what the workers need; null when off (config validation checked the rest). */
export function returnEncapRole(c: BackConfig, own: BackOwnAddress[]): ReturnEncapRole | null {
  if (c.returnEncap.gateway === '') return null;
  const g = words(c.returnEncap.gateway);
  const first = (f: 4 | 6) => own.find((o) => o.family === f)?.b ?? null;
  const source = first(g.family);
  if (source === null) throw new Error(`returnEncap.gateway ${c.returnEncap.gateway}: no own IPv${g.family} address for the outer source`);
  return {
    gateway: g.words,
    family: g.family,
    source,
    mtu: c.tun.mtu,
    hopLimit: RETURN_ENCAP_HOP_LIMIT,
    icmpSource4: first(4),
    icmpSource6: first(6),
    icmp: workerShare(BACK_ICMP.ratePerSecond, BACK_ICMP.burst, c.tun.queues),
  };
}

/** IPv6 header + TCP header + the inserted LBSP Destination Options header. */
export const STAMP_OVERHEAD = 40 + 20 + 40;

function words(text: string): { family: 4 | 6; words: number[] } {
  const a = parseAddress(text);
  if (a === null) throw new Error(`not an address: ${text}`); // config validation ran before
  return { family: a.family, words: Array.from(a.words) };
}

/**
 * slotOf: the counter slot of a service address (back/service-slots.ts on the service's main thread,
 * kept across reloads); by default a service's position among the distinct services.
 */
export function backRoleFromConfig(c: BackConfig, slotOf?: (service: string) => number): BackRole {
  const services = new Map<string, { family: 4 | 6; words: number[]; slot: number }>();
  const own = c.addresses.map((e) => {
    const b = words(e.address);
    let s = services.get(e.service);
    if (s === undefined) {
      s = { ...words(e.service), slot: slotOf ? slotOf(e.service) : services.size };
      services.set(e.service, s);
    }
    const mode = e.mode === 'translate' ? MODE_TRANSLATE : e.mode === 'encap' ? MODE_ENCAP : MODE_AUTO;
    return { family: b.family, b: b.words, s: s.words, mode, slot: s.slot };
  });
  const allowedFronts = c.allowedFronts.map((p) => {
    const x = parsePrefix(p);
    if (x === null) throw new Error(`not a prefix: ${p}`);
    return { family: x.family, words: Array.from(x.words), len: x.len };
  });
  return {
    lbspType: c.lbsp.optionType ?? LBSP_DEFAULT_TYPE,
    own,
    services: [...services.values()],
    allowedFronts,
    udpPort: c.udpPort,
    returnPath: c.returnPath.interface !== '',
    stamp: c.lbsp.stamp !== false,
    stampAlways: c.lbsp.stamp === 'always',
    serverId: c.lbsp.serverId !== '' ? words(c.lbsp.serverId).words : [0, 0, 0, 0],
    mssClamp: c.lbsp.stamp !== false && c.mssClamp.enabled ? c.tun.mtu - STAMP_OVERHEAD : 0,
    mtu: c.tun.mtu,
    returnEncap: returnEncapRole(c, own) ?? undefined,
  };
}

// The back's per-worker settings, derived from its config on the main thread: plain data
// (addresses as words) so it crosses to workers by structured clone.
import type { BackConfig } from '../shared/config/back-config.js';
import { parseAddress, parsePrefix } from '../shared/table/addr.js';
import { LBSP_DEFAULT_TYPE } from '../shared/packet/constants.js';

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
}

export interface BackRole {
  lbspType: number;
  own: BackOwnAddress[];
  /** Distinct service addresses (an unwrapped packet may go to any of them). */
  services: { family: 4 | 6; words: number[] }[];
  allowedFronts: { family: 4 | 6; words: number[]; len: number }[];
  /**
   * Return traffic (SPEC 4): packets from a service S steered into the TUN by the returnPath policy
   * routing are forwarded back to the kernel (stamped when `stamp`). False: no returnPath.
   */
  returnPath?: boolean;
  /** Stamp the LBSP server segment on IPv6 return packets with serverId (words). */
  stamp?: boolean;
  serverId?: number[];
  /** Largest MSS left in the IPv6 TCP SYNs forwarded toward S (0 = no clamp). */
  mssClamp?: number;
  /** Largest packet the back writes when it inserts the LBSP header (its TUN MTU). */
  mtu?: number;
}

/** IPv6 header + TCP header + the inserted LBSP Destination Options header. */
export const STAMP_OVERHEAD = 40 + 20 + 40;

function words(text: string): { family: 4 | 6; words: number[] } {
  const a = parseAddress(text);
  if (a === null) throw new Error(`not an address: ${text}`); // config validation ran before
  return { family: a.family, words: Array.from(a.words) };
}

export function backRoleFromConfig(c: BackConfig): BackRole {
  const services = new Map<string, { family: 4 | 6; words: number[] }>();
  const own = c.addresses.map((e) => {
    const b = words(e.address);
    const s = words(e.service);
    services.set(e.service, s);
    const mode = e.mode === 'translate' ? MODE_TRANSLATE : e.mode === 'encap' ? MODE_ENCAP : MODE_AUTO;
    return { family: b.family, b: b.words, s: s.words, mode };
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
    returnPath: c.returnPath.interface !== '',
    stamp: c.lbsp.stamp,
    serverId: c.lbsp.serverId !== '' ? words(c.lbsp.serverId).words : [0, 0, 0, 0],
    mssClamp: c.lbsp.stamp && c.mssClamp.enabled ? c.tun.mtu - STAMP_OVERHEAD : 0,
    mtu: c.tun.mtu,
  };
}

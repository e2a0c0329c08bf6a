// The front's per-worker settings derived from its config on the main thread (plain data).
import type { FrontConfig } from './front-config.js';
import { parseAddress } from '../shared/table/addr.js';
import { workerShare } from '../shared/tunnel/icmp-rate-limiter.js';
import type { PmtuShared } from '../shared/tunnel/path-mtu-cache.js';
import { acceptPrefixes, type AcceptPrefix } from './tunnel-accept.js';

export interface FrontRole {
  lbspType: number;
  /** Outer source per outer family for encap; `null` words = use the service address itself. */
  encapSource4: number[] | null;
  encapSource6: number[] | null;
  hopLimit: number;
  /** encap.udpPort: IP-in-UDP toward encap backs on this destination port; 0 (or absent) = IP-in-IP. */
  udpPort?: number;
  /** Flow table (SPEC 2 step 5): entries per worker, idle timeouts in seconds. */
  flowTable?: { size: number; tcpTimeout: number; udpTimeout: number; otherTimeout: number };
  /**
   * This worker's share of the ICMP error token buckets (config icmp, split over the queues): the
   * global one, and the one per source prefix (absent: no per-source budget).
   */
  icmp?: { ratePerSecond: number; burst: number; perSourceRate?: number; perSourceBurst?: number };
  /** acceptTunnelFrom (SPEC 3): outer sources whose tunnel packets the front unwraps. */
  acceptTunnelFrom?: AcceptPrefix[];
  /** TUN MTU: the path MTU toward a back until the route's is known. */
  tunMtu?: number;
  /** Path MTU per back shared with the main thread (front/pmtu-cache.ts); set by main.ts. */
  pmtu?: PmtuShared;
  /** Lower path MTUs from fabric ICMP errors (default true); false when encap.mtu is configured. */
  pmtuLearning?: boolean;
}

function wordsOf(text: string): { family: 4 | 6; words: number[] } | null {
  const a = parseAddress(text);
  return a === null ? null : { family: a.family, words: Array.from(a.words) };
}

function icmpShare(c: FrontConfig, queues: number): NonNullable<FrontRole['icmp']> {
  const g = workerShare(c.icmp.ratePerSecond, c.icmp.burst, queues);
  const p = workerShare(c.icmp.perSourceRate, c.icmp.perSourceBurst, queues);
  return { ...g, perSourceRate: p.ratePerSecond, perSourceBurst: p.burst };
}

/**
 * encap.source is "service" (the draft: outer source = S, when S has the outer family) or an
 * address; source4/source6 name the outer source for the other family (4in6, 6in4).
 */
export function frontRoleFromConfig(c: FrontConfig): FrontRole {
  let s4: number[] | null = null;
  let s6: number[] | null = null;
  if (c.encap.source !== 'service') {
    const a = wordsOf(c.encap.source);
    if (a?.family === 4) s4 = a.words;
    if (a?.family === 6) s6 = a.words;
  }
  if (c.encap.source4) s4 = wordsOf(c.encap.source4)?.words ?? s4;
  if (c.encap.source6) s6 = wordsOf(c.encap.source6)?.words ?? s6;
  return {
    lbspType: c.lbsp.optionType,
    encapSource4: s4,
    encapSource6: s6,
    hopLimit: c.encap.hopLimit,
    udpPort: c.encap.udpPort,
    flowTable: { ...c.flowTable },
    icmp: icmpShare(c, c.tun.queues),
    acceptTunnelFrom: acceptPrefixes(c.acceptTunnelFrom),
    tunMtu: c.tun.mtu,
    pmtuLearning: c.encap.mtu === 0,
  };
}

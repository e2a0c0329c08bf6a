// Main thread: the base path MTU toward every encap back (front/pmtu-cache.ts), at start-up and
// after every table reload. `encap.mtu` when configured (the operator knows the fabric), else the
// MTU of the route toward each of the back's addresses, read through rtnetlink (HostSetup.routeToward:
// the route's MTU metric when it has one, else the egress link's MTU). A back with several
// addresses of one family gets the smallest. Nothing here is on the packet path.
import type { CompiledTable } from './table/compiled-table.js';
import { MODE_ENCAP } from './table/compiled-table.js';
import { parseAddress, parsePrefix } from '../shared/table/addr.js';
import type { HostSetup } from '../shared/netlink/host-setup.js';
import type { Logger } from '../shared/log.js';
import type { PmtuCache } from '../shared/tunnel/path-mtu-cache.js';

interface BackView {
  address?: string;
  addresses?: Record<string, string>;
}

/** The addresses of each encap back, with its slot (the table's view holds them as text). */
export function encapBackAddresses(t: CompiledTable): { name: string; slot: number; address: string; family: 4 | 6 }[] {
  const out: { name: string; slot: number; address: string; family: 4 | 6 }[] = [];
  t.meta.backNames.forEach((name, i) => {
    if (t.a.backMode[i] !== MODE_ENCAP) return;
    const v = t.meta.view.backs[name] as BackView;
    const texts = new Set<string>([...(v.address ? [v.address] : []), ...Object.values(v.addresses ?? {})]);
    for (const a of texts) {
      const p = parseAddress(a);
      if (p) out.push({ name, slot: t.a.backSlot[i]!, address: a, family: p.family });
    }
  });
  return out;
}

/**
 * Set the base path MTU of every encap back of `t`. Returns what was set, per back and family
 * (logged once per call). A route lookup that fails leaves that back at the cache's fallback.
 */
export async function refreshBaseMtus(
  t: CompiledTable,
  cache: PmtuCache,
  host: HostSetup | undefined,
  encapMtu: number,
  log: Logger,
): Promise<Record<string, number>> {
  const best = new Map<string, { slot: number; family: 4 | 6; mtu: number; via: string }>();
  for (const b of encapBackAddresses(t)) {
    let mtu = encapMtu;
    let via = 'encap.mtu';
    if (mtu <= 0) {
      if (!host) continue;
      try {
        const r = await host.routeToward(b.address);
        mtu = r.mtu;
        via = r.ifname;
      } catch (e) {
        log.warn('path_mtu_unknown', { back: b.name, address: b.address, error: (e as Error).message, fallback: cache.fallback });
        continue;
      }
    }
    const key = `${b.name}/ipv${b.family}`;
    const cur = best.get(key);
    if (!cur || mtu < cur.mtu) best.set(key, { slot: b.slot, family: b.family, mtu, via });
  }
  const set: Record<string, number> = {};
  for (const [key, v] of best) {
    cache.setBase(v.slot, v.family, v.mtu);
    set[key] = v.mtu;
  }
  if (best.size > 0) log.info('path_mtu', { backs: set });
  return set;
}

function covers(prefix: string, addr: { family: 4 | 6; words: Uint32Array }): boolean {
  const p = parsePrefix(prefix);
  if (p === null || p.family !== addr.family) return false;
  let bits = p.len;
  for (let i = 0; i < 4 && bits > 0; i++) {
    const n = bits >= 32 ? 32 : bits;
    const mask = n === 32 ? 0xffffffff : ~(0xffffffff >>> n) >>> 0;
    if (((p.words[i]! ^ addr.words[i]!) & mask) >>> 0 !== 0) return false;
    bits -= n;
  }
  return true;
}

/**
 * ICMP errors from the fabric about a tunnel packet go to its outer source. With encap.source
 * "service" that is S, which tun.routes routes into the TUN already; a configured outer source
 * (encap.source / source4 / source6) that no tun.routes prefix covers is routed into the TUN too
 * (these host routes are added to the service's own), so those errors reach the front. (A source
 * that is a local address of the host is delivered locally before any route applies: the front
 * then never sees the errors; use S or an address only the TUN owns.)
 */
export function encapSourceRoutes(c: { tun: { routes: string[] }; encap: { source: string; source4: string; source6: string } }): string[] {
  const out: string[] = [];
  for (const text of [c.encap.source, c.encap.source4, c.encap.source6]) {
    if (text === '' || text === 'service') continue;
    const a = parseAddress(text);
    if (a === null) continue;
    const host = `${text}/${a.family === 4 ? 32 : 128}`;
    if (c.tun.routes.some((r) => covers(r, a)) || out.includes(host)) continue;
    out.push(host);
  }
  return out;
}

/**
 * For GET /table (`pathMtu`): per encap back and outer family, the base path MTU, the learned one
 * (0 when none) and when it ages out. Main thread, at request time.
 */
export function pathMtuView(t: CompiledTable, cache: PmtuCache, nowMs: number): Record<string, Record<string, { base: number; learned: number; expiresInS: number }>> {
  const out: Record<string, Record<string, { base: number; learned: number; expiresInS: number }>> = {};
  for (const b of encapBackAddresses(t)) {
    const fam = `ipv${b.family}`;
    const l = cache.learnedOf(b.slot, b.family, nowMs);
    (out[b.name] ??= {})[fam] = { base: cache.getBase(b.slot, b.family), learned: l.mtu, expiresInS: Math.ceil(l.expiresInMs / 1000) };
  }
  return out;
}

// The translation table file (SPEC 6a): parse and validate against the front config.
// Every error names the file, the entry (routes[3].source, backs.b2.address, ...) and the reason.

import { parseAddress, parsePrefix, formatAddress, formatPrefix, unusableAddressReason, type Family } from '../../shared/table/addr.js';
import { DURATION_HINT, formatDuration, parseDuration } from '../../shared/config/duration.js';
import { HEALTH_INTERVAL_MAX, HEALTH_INTERVAL_MIN, HEALTH_TIMEOUT_MAX, HEALTH_TIMEOUT_MIN } from '../health-check-bounds.js';
import { parseServiceCheck, SERVICE_CHECK_KEYS, type DnsCheckSpec, type HttpCheckSpec, type ServiceCheckKey, type UdpCheckSpec } from './health-check-spec.js';

export interface TableError { file: string; entry: string; reason: string }

export type BackMode = 'translate' | 'encap';
export type PoolKey = 'source' | 'label' | 'source+label';

export interface HealthCheckSpec {
  url?: string; // HTTP probe, e.g. the back's /readyz
  servicePort?: number; // TCP connect to the service through the back
  interval?: number; // seconds (the file may say "2s", "500ms")
  timeout?: number; // seconds
  rise?: number;
  fall?: number;
  udp?: UdpCheckSpec; // datagram to the service through the back (front/table/health-check-spec.ts)
  dns?: DnsCheckSpec; // DNS query to the service through the back
  http?: HttpCheckSpec; // HTTP GET of the service through the back
}

export interface TableBack {
  name: string;
  /** Canonical address per service (canonical service text -> canonical back address). */
  addressFor: Record<string, string>;
  /** What the file said: one address or a map. */
  address?: string;
  addresses?: Record<string, string>;
  mode: BackMode;
  serverId?: string;
  weight: number;
  healthCheck?: HealthCheckSpec;
}

export interface TablePool {
  name: string;
  members: string[];
  /** Per member (same order): 0..1000; 0 drains (no new key or flow, pinned flows stay). */
  weights: number[];
  key: PoolKey;
  failClosed: boolean;
}

export interface TableRoute {
  source: string; // canonical prefix
  family: Family;
  words: Uint32Array;
  len: number;
  to: string;
  service?: string; // canonical service address
}

export interface ValidatedTable {
  file: string;
  backs: TableBack[];
  pools: TablePool[];
  routes: TableRoute[];
}

/** What validation needs from the front config. */
export interface TableContext {
  services: string[];
  mode: BackMode;
  encap: { source: string; source4: string; source6: string };
}

const TOP_KEYS = new Set(['backs', 'pools', 'routes']);
const BACK_KEYS = new Set(['address', 'addresses', 'mode', 'serverId', 'healthCheck', 'weight']);
const POOL_KEYS = new Set(['members', 'key', 'failClosed']);
const ROUTE_KEYS = new Set(['source', 'to', 'service']);
const HC_KEYS = new Set(['url', 'servicePort', 'interval', 'timeout', 'rise', 'fall', ...SERVICE_CHECK_KEYS]);
const NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}$/;

function isMap(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function fam(a: string): Family { return parseAddress(a)!.family; }

export function validateTable(value: unknown, file: string, ctx: TableContext): { table?: ValidatedTable; errors: TableError[] } {
  const errors: TableError[] = [];
  const err = (entry: string, reason: string) => errors.push({ file, entry, reason });
  if (value === null || value === undefined) value = {};
  if (!isMap(value)) { err('', 'must be a mapping with backs, pools and routes'); return { errors }; }
  for (const k of Object.keys(value)) if (!TOP_KEYS.has(k)) err(k, 'unknown key (expected backs, pools, routes)');

  const services = ctx.services.map((s) => formatAddress(fam(s), parseAddress(s)!.words));
  const servicesOf = (f: Family) => services.filter((s) => fam(s) === f);

  // Backs.
  const backs: TableBack[] = [];
  const backByName = new Map<string, TableBack>();
  const badBacks = new Set<string>(); // already reported: no follow-on errors from routes
  const rawBacks = value.backs ?? {};
  if (!isMap(rawBacks)) err('backs', 'must be a mapping name -> { address | addresses, mode?, serverId?, healthCheck? }');
  else for (const [name, raw] of Object.entries(rawBacks)) {
    const e = `backs.${name}`;
    if (!NAME_RE.test(name)) err(e, 'a back name is letters, digits, _ . - (up to 63)');
    if (!isMap(raw)) { err(e, 'must be { address | addresses, mode?, serverId?, healthCheck? }'); continue; }
    for (const k of Object.keys(raw)) if (!BACK_KEYS.has(k)) err(`${e}.${k}`, `unknown key (expected ${[...BACK_KEYS].join(', ')})`);
    let mode: BackMode = ctx.mode;
    if (raw.mode !== undefined) {
      if (raw.mode !== 'translate' && raw.mode !== 'encap') err(`${e}.mode`, `must be translate or encap, got ${JSON.stringify(raw.mode)}`);
      else mode = raw.mode;
    }
    const back: TableBack = { name, addressFor: {}, mode, weight: 1 };
    let ok = true;
    if (raw.address !== undefined && raw.addresses !== undefined) { err(e, 'has both address and addresses: give one'); ok = false; }
    else if (raw.address === undefined && raw.addresses === undefined) { err(e, 'needs address (or addresses: service -> address)'); ok = false; }
    else if (raw.address !== undefined) {
      const a = parseAddress(raw.address);
      if (!a) { err(`${e}.address`, `not an IPv4 or IPv6 address: ${JSON.stringify(raw.address)}`); ok = false; }
      else if (unusableAddressReason(a.family, a.words) !== null) { err(`${e}.address`, `${formatAddress(a.family, a.words)} is ${unusableAddressReason(a.family, a.words)}: not usable as a back address`); ok = false; }
      else {
        const txt = formatAddress(a.family, a.words);
        back.address = txt;
        if (mode === 'encap') for (const s of services) back.addressFor[s] = txt;
        else {
          const same = servicesOf(a.family);
          if (same.length > 1) { err(`${e}.address`, `translate mode with ${same.length} IPv${a.family} services (${same.join(', ')}) needs addresses: a map service -> back address (the back restores S from the address a packet arrives on)`); ok = false; }
          for (const s of same) back.addressFor[s] = txt;
        }
      }
    } else if (!isMap(raw.addresses)) { err(`${e}.addresses`, 'must be a mapping service address -> back address'); ok = false; }
    else {
      back.addresses = {};
      for (const [sk, sv] of Object.entries(raw.addresses)) {
        const se = `${e}.addresses["${sk}"]`;
        const s = parseAddress(sk);
        const a = parseAddress(sv);
        if (!s) { err(se, `key is not an address: ${JSON.stringify(sk)}`); ok = false; continue; }
        const st = formatAddress(s.family, s.words);
        if (!services.includes(st)) { err(se, `${st} is not one of the front's services (${services.join(', ')})`); ok = false; continue; }
        if (!a) { err(se, `not an IPv4 or IPv6 address: ${JSON.stringify(sv)}`); ok = false; continue; }
        const why = unusableAddressReason(a.family, a.words);
        if (why !== null) { err(se, `${formatAddress(a.family, a.words)} is ${why}: not usable as a back address`); ok = false; continue; }
        if (mode === 'translate' && a.family !== s.family) { err(se, `translate mode needs the back address in the service's family (${st} is IPv${s.family})`); ok = false; continue; }
        const at = formatAddress(a.family, a.words);
        back.addresses[st] = at;
        back.addressFor[st] = at;
      }
    }
    if (raw.serverId !== undefined) {
      const a = parseAddress(raw.serverId);
      if (!a || a.family !== 6) { err(`${e}.serverId`, `must be an IPv6 address (the LBSP server segment), got ${JSON.stringify(raw.serverId)}`); ok = false; }
      else back.serverId = formatAddress(6, a.words);
    }
    if (raw.weight !== undefined) {
      if (typeof raw.weight !== 'number' || !Number.isInteger(raw.weight) || raw.weight < 0 || raw.weight > 1000) { err(`${e}.weight`, 'must be an integer from 0 to 1000 (0 drains)'); ok = false; }
      else back.weight = raw.weight;
    }
    if (raw.healthCheck !== undefined) {
      const hc = raw.healthCheck;
      if (!isMap(hc)) { err(`${e}.healthCheck`, 'must be { url?, servicePort?, udp?, dns?, http?, interval?, timeout?, rise?, fall? }'); ok = false; }
      else {
        const spec: HealthCheckSpec = {};
        for (const [k, v] of Object.entries(hc)) {
          const he = `${e}.healthCheck.${k}`;
          if (!HC_KEYS.has(k)) { err(he, `unknown key (expected ${[...HC_KEYS].join(', ')})`); ok = false; continue; }
          if (k === 'url') {
            let good = typeof v === 'string';
            if (good) { try { const u = new URL(v as string); good = u.protocol === 'http:' || u.protocol === 'https:'; } catch { good = false; } }
            if (!good) { err(he, `must be an http(s) URL, got ${JSON.stringify(v)}`); ok = false; } else spec.url = v as string;
          } else if (k === 'interval' || k === 'timeout') {
            const [lo, hi] = k === 'interval' ? [HEALTH_INTERVAL_MIN, HEALTH_INTERVAL_MAX] : [HEALTH_TIMEOUT_MIN, HEALTH_TIMEOUT_MAX];
            const sec = parseDuration(v);
            if (sec === null) { err(he, `must be ${DURATION_HINT}, got ${JSON.stringify(v)}`); ok = false; }
            else if (sec < lo || sec > hi) { err(he, `must be from ${formatDuration(lo)} to ${formatDuration(hi)}, got ${formatDuration(sec)}${typeof v === 'number' ? ' (a plain number is seconds)' : ''}`); ok = false; }
            else spec[k] = sec;
          } else if ((SERVICE_CHECK_KEYS as readonly string[]).includes(k)) {
            const c = parseServiceCheck(k as ServiceCheckKey, v, he, err);
            if (c === undefined) ok = false;
            else (spec as Record<string, unknown>)[k] = c;
          } else {
            const max = k === 'servicePort' ? 65535 : 3600;
            if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > max) { err(he, `must be an integer from 1 to ${max}`); ok = false; }
            else (spec as Record<string, number>)[k] = v;
          }
        }
        back.healthCheck = spec;
      }
    }
    backByName.set(name, back); // known name even when broken: routes naming it are not "unknown back" too
    if (ok) backs.push(back);
    else badBacks.add(name);
  }

  // Pools.
  const pools: TablePool[] = [];
  const poolByName = new Map<string, TablePool>();
  const rawPools = value.pools ?? {};
  if (!isMap(rawPools)) err('pools', 'must be a mapping name -> { members, key?, failClosed? }');
  else for (const [name, raw] of Object.entries(rawPools)) {
    const e = `pools.${name}`;
    if (!NAME_RE.test(name)) err(e, 'a pool name is letters, digits, _ . - (up to 63)');
    if (backByName.has(name)) err(e, `name ${name} is also a back: routes could not tell them apart`);
    if (!isMap(raw)) { err(e, 'must be { members, key?, failClosed? }'); continue; }
    for (const k of Object.keys(raw)) if (!POOL_KEYS.has(k)) err(`${e}.${k}`, 'unknown key (expected members, key, failClosed)');
    const pool: TablePool = { name, members: [], weights: [], key: 'source', failClosed: false };
    poolByName.set(name, pool);
    if (!Array.isArray(raw.members)) err(`${e}.members`, 'must be a list of back names or { back, weight }');
    else if (raw.members.length === 0) err(`${e}.members`, 'a pool needs at least one member');
    else raw.members.forEach((rm, i) => {
      const me = `${e}.members[${i}]`;
      let m: unknown = rm;
      let weight: number | undefined;
      if (isMap(rm)) {
        for (const k of Object.keys(rm)) if (k !== 'back' && k !== 'weight') { err(`${me}.${k}`, 'unknown key (expected back, weight)'); return; }
        m = rm.back;
        if (rm.weight !== undefined) {
          if (typeof rm.weight !== 'number' || !Number.isInteger(rm.weight) || rm.weight < 0 || rm.weight > 1000) { err(`${me}.weight`, 'must be an integer from 0 to 1000 (0 drains)'); return; }
          weight = rm.weight;
        }
      }
      if (typeof m !== 'string' || !backByName.has(m)) err(isMap(rm) ? `${me}.back` : me, `unknown back ${JSON.stringify(m)}`);
      else if (pool.members.includes(m)) err(me, `${m} listed twice`);
      else { pool.members.push(m); pool.weights.push(weight ?? backByName.get(m)!.weight); }
    });
    if (raw.key !== undefined) {
      if (raw.key !== 'label' && raw.key !== 'source+label' && raw.key !== 'source') err(`${e}.key`, `must be label | source+label | source, got ${JSON.stringify(raw.key)}`);
      else pool.key = raw.key;
    }
    if (raw.failClosed !== undefined) {
      if (typeof raw.failClosed !== 'boolean') err(`${e}.failClosed`, 'must be true or false');
      else pool.failClosed = raw.failClosed;
    }
    pools.push(pool);
  }

  // Routes.
  const routes: TableRoute[] = [];
  const rawRoutes = value.routes ?? [];
  const seen = new Map<string, number>();
  const encapReported = new Set<string>();
  if (!Array.isArray(rawRoutes)) err('routes', 'must be a list of { source: PREFIX, to: BACK_OR_POOL, service? }');
  else rawRoutes.forEach((raw, i) => {
    const e = `routes[${i}]`;
    if (!isMap(raw)) { err(e, 'must be { source: PREFIX, to: BACK_OR_POOL, service? }'); return; }
    let ok = true;
    for (const k of Object.keys(raw)) if (!ROUTE_KEYS.has(k)) { err(`${e}.${k}`, 'unknown key (expected source, to, service)'); ok = false; }
    const p = parsePrefix(raw.source);
    if (!p) { err(`${e}.source`, `not a prefix (ADDRESS/LENGTH): ${JSON.stringify(raw.source)}`); return; }
    if (p.hostBitsSet) {
      const w = new Uint32Array(4);
      const nw = p.family === 4 ? 1 : 4;
      for (let k = 0; k < nw; k++) { const b = p.len - 32 * k; w[k] = (p.words[k]! & (b <= 0 ? 0 : b >= 32 ? 0xffffffff : (0xffffffff << (32 - b)) >>> 0)) >>> 0; }
      err(`${e}.source`, `host bits set in ${String(raw.source)} (did you mean ${formatPrefix(p.family, w, p.len)}?)`);
      return;
    }
    const source = formatPrefix(p.family, p.words, p.len);
    let service: string | undefined;
    if (raw.service !== undefined) {
      const s = parseAddress(raw.service);
      const st = s ? formatAddress(s.family, s.words) : '';
      if (!s) { err(`${e}.service`, `not an address: ${JSON.stringify(raw.service)}`); ok = false; }
      else if (!services.includes(st)) { err(`${e}.service`, `${st} is not one of the front's services (${services.join(', ')})`); ok = false; }
      else if (s.family !== p.family) { err(`${e}.service`, `IPv${p.family} route for IPv${s.family} service ${st} can never match (a source is in the family of its destination)`); ok = false; }
      else service = st;
    }
    if (typeof raw.to !== 'string' || (!backByName.has(raw.to) && !poolByName.has(raw.to))) {
      err(`${e}.to`, `unknown back or pool ${JSON.stringify(raw.to)}`);
      return;
    }
    // Translate backs must hold an address of the route's family for the services it serves.
    const memberNames = poolByName.get(raw.to)?.members ?? [raw.to];
    const routeServices = service ? [service] : servicesOf(p.family);
    for (const m of memberNames) {
      const b = backByName.get(m)!;
      if (badBacks.has(m)) continue;
      if (b.mode === 'encap') {
        // Encap toward the other family needs an outer source of that family (only when a
        // route actually sends that family's traffic to the back).
        for (const s of routeServices) {
          const ba = b.addressFor[s];
          if (!ba || encapReported.has(m)) continue;
          const bf = fam(ba), sf = fam(s);
          const srcFam = ctx.encap.source === 'service' ? sf : fam(ctx.encap.source);
          if (bf !== srcFam && (bf === 4 ? ctx.encap.source4 : ctx.encap.source6) === '') {
            encapReported.add(m);
            err(`${e}.to`, `encap to IPv${bf} back ${m} (${ba}) for IPv${sf} service ${s} needs encap.${bf === 4 ? 'source4' : 'source6'} in the front config (the outer source of that family)`);
            ok = false;
          }
        }
        continue;
      }
      for (const s of routeServices) {
        if (!b.addressFor[s] && (b.address !== undefined || b.addresses !== undefined)) {
          const has = b.address ?? Object.values(b.addresses ?? {}).join(', ');
          err(`${e}.to`, `translate back ${m} has no IPv${p.family} address for service ${s} (it has ${has}): translate keeps the family`);
          ok = false;
        }
      }
    }
    const dupKey = `${source}|${service ?? '*'}`;
    if (raw.service !== undefined && !service) { /* service already reported: no duplicate echo */ }
    else if (seen.has(dupKey)) { err(`${e}.source`, `duplicate route: ${source}${service ? ` for ${service}` : ''} is already routes[${seen.get(dupKey)}]`); ok = false; }
    else seen.set(dupKey, i);
    if (ok) routes.push({ source, family: p.family, words: p.words, len: p.len, to: raw.to, service });
  });

  if (errors.length > 0) return { errors };
  return { table: { file, backs, pools, routes }, errors };
}

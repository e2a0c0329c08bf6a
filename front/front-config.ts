// mslb-front's config (SPEC 6a): convict schema (doc + default for every key, MSLB_* env
// overrides), then cross-field checks. Relative paths resolve against the config file's directory.

import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { loadDocumentWith } from '../shared/config/read-document.js';
import { blameEnv, runConvict } from '../shared/config/convict-load.js';
import { Checker } from '../shared/config/check-values.js';
import type { ConfigError } from '../shared/config/config-errors.js';
import { parseAddress } from '../shared/table/addr.js';
import { HEALTH_INTERVAL_MAX, HEALTH_INTERVAL_MIN, HEALTH_TIMEOUT_MAX, HEALTH_TIMEOUT_MIN } from './health-check-bounds.js';
import { BUILTIN_HASH_KEY } from './table/maglev.js';
import { MAX_SERVICE_SLOTS } from '../shared/metrics/counter-layout.js';

export const frontSchema = {
  tun: {
    name: { doc: 'TUN device the front creates', format: String, default: 'mslbf0', env: 'MSLB_TUN_NAME' },
    mtu: { doc: 'MTU of the TUN device (at most 1920 with offload.enabled: false, what a queue slot then holds)', format: 'int-range', default: 1500, env: 'MSLB_TUN_MTU' },
    queues: { doc: 'TUN queues (IFF_MULTI_QUEUE), one worker thread each', format: 'int-range', default: 1, env: 'MSLB_TUN_QUEUES' },
    routes: { doc: 'Prefixes the front routes into its TUN (service addresses, tunnel addresses)', format: 'string-list', default: [] as string[], env: 'MSLB_TUN_ROUTES' },
  },
  services: { doc: `Service addresses S this front balances (unicast: not unspecified, loopback or multicast; at most ${MAX_SERVICE_SLOTS})`, format: 'string-list', default: [] as string[], env: 'MSLB_SERVICES' },
  table: { doc: 'Path of the translation table file (relative to this file)', format: String, default: './table.yaml', env: 'MSLB_TABLE' },
  mode: { doc: 'Default mode for backs that do not say: translate | encap', format: ['translate', 'encap'], default: 'translate', env: 'MSLB_MODE' },
  encap: {
    source: { doc: 'Outer source address: "service" (the draft) or an address', format: String, default: 'service', env: 'MSLB_ENCAP_SOURCE' },
    source4: { doc: 'Outer IPv4 source toward IPv4 backs of IPv6 services (6in4); "" = unset', format: String, default: '', env: 'MSLB_ENCAP_SOURCE4' },
    source6: { doc: 'Outer IPv6 source toward IPv6 backs of IPv4 services (4in6); "" = unset', format: String, default: '', env: 'MSLB_ENCAP_SOURCE6' },
    hopLimit: { doc: 'Outer hop limit / TTL', format: 'int-range', default: 64, env: 'MSLB_ENCAP_HOP_LIMIT' },
    mtu: { doc: 'Tunnel path MTU toward the backs; 0 = MTU of the interface the route to each back uses', format: 'int-range', default: 0, env: 'MSLB_ENCAP_MTU' },
    udpPort: {
      doc: 'IP-in-UDP tunnels toward encap backs: UDP destination port (the backs\' udpPort); 0 = IP-in-IP (protocol 4/41). The inner packet follows an 8-byte UDP header (GUE variant 1), source port from a hash of the inner flow (49152-65535), checksum on; the tunnel MTU is 8 bytes smaller',
      format: 'int-range',
      default: 0,
      env: 'MSLB_ENCAP_UDP_PORT',
    },
  },
  lbsp: {
    enabled: { doc: 'Honour the LBSP destination option (sticky server, client key)', format: Boolean, default: true, env: 'MSLB_LBSP_ENABLED' },
    optionType: { doc: 'LBSP option type (RFC 4727 experimental 0x1E by default)', format: 'int-range', default: 0x1e, env: 'MSLB_LBSP_OPTION_TYPE' },
  },
  flowLabel: {
    enabled: { doc: 'Use the IPv6 flow label as pool hash key where a pool says key: label | source+label', format: Boolean, default: true, env: 'MSLB_FLOW_LABEL_ENABLED' },
  },
  hashKey: { doc: 'Key of every hash that chooses a back (SipHash-1-3): 16 bytes as 32 hex digits, or the path of a file holding them (hex text or 16 raw bytes); the same on every front; "" = the built-in key, which anyone reading the source knows', format: String, default: '', env: 'MSLB_HASH_KEY' },
  admin: {
    listen: { doc: 'Admin HTTP listen address (/metrics, /healthz, /readyz, /table): ADDRESS:PORT or [ADDRESS]:PORT', format: String, default: '[::1]:9101', env: 'MSLB_ADMIN_LISTEN' },
  },
  acceptTunnelFrom: { doc: 'Outer source prefixes whose tunnel packets the front unwraps (multi-stage, return encapsulation); a /0 is refused', format: 'string-list', default: [] as string[], env: 'MSLB_ACCEPT_TUNNEL_FROM' },
  offload: {
    enabled: { doc: 'TUN offloads (IFF_VNET_HDR, checksum and TCP/UDP segmentation offload); probed at start-up', format: Boolean, default: true, env: 'MSLB_OFFLOAD_ENABLED' },
    udpTunnel: { doc: 'With encap.udpPort and offload.enabled: write each TCP burst toward an encap back as one UDP-tunnel super-packet the kernel segments (a TAP named after tun.name + "tap", Linux >= 6.16), probed at start-up; false or refused = the front cuts and wraps every segment itself', format: Boolean, default: true, env: 'MSLB_OFFLOAD_UDP_TUNNEL' },
  },
  flowTable: {
    size: { doc: 'Flow table entries per worker (LRU eviction beyond)', format: 'int-range', default: 65536, env: 'MSLB_FLOW_TABLE_SIZE' },
    tcpTimeout: { doc: 'Idle timeout of TCP flows: a duration ("300s", "5m"; a plain number is seconds), 1s to 24h', format: 'duration', default: 300, env: 'MSLB_FLOW_TABLE_TCP_TIMEOUT' },
    udpTimeout: { doc: 'Idle timeout of UDP flows: a duration ("30s"; a plain number is seconds), 1s to 24h', format: 'duration', default: 30, env: 'MSLB_FLOW_TABLE_UDP_TIMEOUT' },
    otherTimeout: { doc: 'Idle timeout of other flows: a duration ("30s"; a plain number is seconds), 1s to 24h', format: 'duration', default: 30, env: 'MSLB_FLOW_TABLE_OTHER_TIMEOUT' },
  },
  icmp: {
    ratePerSecond: { doc: 'ICMP errors the front sends per second (token bucket rate)', format: 'int-range', default: 100, env: 'MSLB_ICMP_RATE' },
    burst: { doc: 'ICMP error token bucket size', format: 'int-range', default: 50, env: 'MSLB_ICMP_BURST' },
    perSourceRate: { doc: 'ICMP errors per second toward one source prefix (/24 IPv4, /48 IPv6), within the global rate: one sender cannot spend everyone\'s errors', format: 'int-range', default: 20, env: 'MSLB_ICMP_PER_SOURCE_RATE' },
    perSourceBurst: { doc: 'Token bucket size per source prefix (/24 IPv4, /48 IPv6)', format: 'int-range', default: 10, env: 'MSLB_ICMP_PER_SOURCE_BURST' },
  },
  healthCheck: {
    interval: { doc: 'Default time between health probes of a back: a duration ("2s", "500ms"; a plain number is seconds), 100ms to 5m', format: 'duration', default: 2, env: 'MSLB_HEALTH_INTERVAL' },
    timeout: { doc: 'Default probe timeout: a duration ("1s", "500ms"; a plain number is seconds), 100ms to 1m', format: 'duration', default: 1, env: 'MSLB_HEALTH_TIMEOUT' },
    rise: { doc: 'Default successes in a row to mark a back up', format: 'int-range', default: 2, env: 'MSLB_HEALTH_RISE' },
    fall: { doc: 'Default failures in a row to mark a back down', format: 'int-range', default: 3, env: 'MSLB_HEALTH_FALL' },
    probePrefix6: { doc: 'IPv6 prefix the front takes service-probe sources from (prefix + backend slot + 1, added to lo; the fabric routes it back to the front); "" = no IPv6 service probes', format: String, default: '', env: 'MSLB_HEALTH_PROBE_PREFIX6' },
    probePrefix4: { doc: 'IPv4 prefix the front takes service-probe sources from (as probePrefix6); "" = no IPv4 service probes', format: String, default: '', env: 'MSLB_HEALTH_PROBE_PREFIX4' },
  },
  log: {
    level: { doc: 'Log level', format: ['debug', 'info', 'warn', 'error'], default: 'info', env: 'MSLB_LOG_LEVEL' },
  },
};

export interface FrontConfig {
  /** Absolute path of the config file ("" when built from an object). */
  file: string;
  tun: { name: string; mtu: number; queues: number; routes: string[] };
  /** Canonical address text, in config order. */
  services: string[];
  /** Absolute path of the table file. */
  table: string;
  mode: 'translate' | 'encap';
  encap: { source: string; source4: string; source6: string; hopLimit: number; mtu: number; udpPort: number };
  lbsp: { enabled: boolean; optionType: number };
  flowLabel: { enabled: boolean };
  /** The 16 key bytes as 32 hex digits (the built-in key when the config gives none). */
  hashKey: string;
  /** Where the key came from: "config", the key file's absolute path, or "built-in". */
  hashKeySource: string;
  admin: { listen: string };
  acceptTunnelFrom: string[];
  offload: { enabled: boolean; udpTunnel: boolean };
  flowTable: { size: number; tcpTimeout: number; udpTimeout: number; otherTimeout: number };
  icmp: { ratePerSecond: number; burst: number; perSourceRate: number; perSourceBurst: number };
  healthCheck: { interval: number; timeout: number; rise: number; fall: number; probePrefix6: string; probePrefix4: string };
  log: { level: 'debug' | 'info' | 'warn' | 'error' };
}

/** Validate a parsed document as a front config. `file` names it in errors and anchors relative paths. */
export function frontConfigFromValue(value: unknown, file: string): { config?: FrontConfig; errors: ConfigError[] } {
  const { values, errors, envEntries } = runConvict(frontSchema as never, value, file);
  const v = values as unknown as FrontConfig;
  const c = new Checker(file);
  const bad = new Set(errors.map((e) => e.entry));
  const ok = (k: string) => !bad.has(k);
  if (ok('tun.mtu')) c.tunMtu('tun.mtu', v.tun.mtu, v.offload.enabled !== false);
  if (ok('tun.queues')) c.intRange('tun.queues', v.tun.queues, 1, 64);
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(v.tun.name)) c.err('tun.name', `not an interface name (1-15 of A-Z a-z 0-9 _ . -): ${JSON.stringify(v.tun.name)}`);
  const routes = ok('tun.routes') ? c.prefixList('tun.routes', v.tun.routes) : [];
  const services: string[] = [];
  if (ok('services')) {
    if (!Array.isArray(v.services)) c.err('services', 'must be a list of addresses');
    else v.services.forEach((x, i) => { const a = c.unicastAddress(`services[${i}]`, x); if (a) services.push(a); });
  }
  if (ok('services') && Array.isArray(v.services) && v.services.length === 0) c.err('services', 'at least one service address is needed');
  // each service has its own counters (the `service` label): a bounded set, preallocated per worker
  if (services.length > MAX_SERVICE_SLOTS) c.err('services', `at most ${MAX_SERVICE_SLOTS} service addresses, got ${services.length}`);
  const seen = new Set<string>();
  services.forEach((s, i) => { if (seen.has(s)) c.err(`services[${i}]`, `duplicate service ${s}`); seen.add(s); });
  if (v.encap.source !== 'service') c.address('encap.source', v.encap.source);
  if (v.encap.source4 !== '') { const a = parseAddress(v.encap.source4); if (!a || a.family !== 4) c.err('encap.source4', `must be an IPv4 address, got ${JSON.stringify(v.encap.source4)}`); }
  if (v.encap.source6 !== '') { const a = parseAddress(v.encap.source6); if (!a || a.family !== 6) c.err('encap.source6', `must be an IPv6 address, got ${JSON.stringify(v.encap.source6)}`); }
  if (ok('encap.hopLimit')) c.intRange('encap.hopLimit', v.encap.hopLimit, 1, 255);
  if (ok('encap.mtu') && v.encap.mtu !== 0) c.intRange('encap.mtu', v.encap.mtu, 576, 65535);
  if (ok('encap.udpPort') && v.encap.udpPort !== 0) c.intRange('encap.udpPort', v.encap.udpPort, 1, 65535);
  if (ok('lbsp.optionType')) c.intRange('lbsp.optionType', v.lbsp.optionType, 0, 255);
  if (ok('lbsp.optionType') && (v.lbsp.optionType === 0 || v.lbsp.optionType === 1)) c.err('lbsp.optionType', `${v.lbsp.optionType} is Pad1/PadN, not usable for LBSP (use 0x1e)`);
  c.listen('admin.listen', v.admin.listen);
  const accept = ok('acceptTunnelFrom') ? c.senderPrefixList('acceptTunnelFrom', v.acceptTunnelFrom) : [];
  if (ok('flowTable.size')) c.intRange('flowTable.size', v.flowTable.size, 1, 1 << 24);
  for (const k of ['tcpTimeout', 'udpTimeout', 'otherTimeout'] as const) if (ok(`flowTable.${k}`)) c.duration(`flowTable.${k}`, v.flowTable[k], 1, 86400);
  if (ok('icmp.ratePerSecond')) c.intRange('icmp.ratePerSecond', v.icmp.ratePerSecond, 0, 1_000_000);
  if (ok('icmp.burst')) c.intRange('icmp.burst', v.icmp.burst, 1, 1_000_000);
  if (ok('icmp.perSourceRate')) c.intRange('icmp.perSourceRate', v.icmp.perSourceRate, 0, 1_000_000);
  if (ok('icmp.perSourceBurst')) c.intRange('icmp.perSourceBurst', v.icmp.perSourceBurst, 1, 1_000_000);
  if (ok('healthCheck.interval')) c.duration('healthCheck.interval', v.healthCheck.interval, HEALTH_INTERVAL_MIN, HEALTH_INTERVAL_MAX);
  if (ok('healthCheck.timeout')) c.duration('healthCheck.timeout', v.healthCheck.timeout, HEALTH_TIMEOUT_MIN, HEALTH_TIMEOUT_MAX);
  for (const k of ['rise', 'fall'] as const) if (ok(`healthCheck.${k}`)) c.intRange(`healthCheck.${k}`, v.healthCheck[k], 1, 3600);
  const probe = { probePrefix6: '', probePrefix4: '' };
  for (const [k, f] of [['probePrefix6', 6], ['probePrefix4', 4]] as const) {
    if (v.healthCheck[k] === '') continue;
    const p = c.prefix(`healthCheck.${k}`, v.healthCheck[k]);
    if (p && parseAddress(p.split('/')[0]!)?.family !== f) c.err(`healthCheck.${k}`, `must be an IPv${f} prefix, got ${JSON.stringify(v.healthCheck[k])}`);
    else if (p) probe[k] = p;
  }
  if (typeof v.table !== 'string' || v.table === '') c.err('table', 'must be the path of the table file');
  const dir = file ? dirname(resolve(file)) : process.cwd();
  const key = ok('hashKey') ? resolveHashKey(v.hashKey, dir) : { hex: '', source: '' };
  if (key.error !== undefined) c.err('hashKey', key.error);
  const all = blameEnv([...errors, ...c.errors], envEntries);
  if (all.length > 0) return { errors: all };
  return {
    errors: [],
    config: {
      ...v,
      file: file ? resolve(file) : '',
      tun: { ...v.tun, routes },
      services,
      table: resolve(dir, v.table),
      encap: {
        ...v.encap,
        source: v.encap.source === 'service' ? 'service' : (c.address('encap.source', v.encap.source) ?? ''),
      },
      hashKey: key.hex,
      hashKeySource: key.source,
      acceptTunnelFrom: accept,
      healthCheck: { ...v.healthCheck, ...probe },
    },
  };
}

/** `hashKey`: 32 hex digits, or a file (relative to the config) holding them or 16 raw bytes. */
function resolveHashKey(v: string, dir: string): { hex: string; source: string; error?: string } {
  if (v === '') return { hex: BUILTIN_HASH_KEY, source: 'built-in' };
  if (/^(0x)?[0-9a-fA-F]{32}$/.test(v)) return { hex: v.replace(/^0x/, '').toLowerCase(), source: 'config' };
  if (/^(0x)?[0-9a-fA-F]+$/.test(v) && !v.includes('/')) return { hex: '', source: '', error: `must be 16 bytes as 32 hex digits (got ${v.replace(/^0x/, '').length} digits) or the path of a key file` };
  const path = resolve(dir, v);
  let raw: Buffer;
  try { raw = readFileSync(path); } catch (e) { return { hex: '', source: '', error: `cannot read key file ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` }; }
  const text = raw.toString('latin1').trim();
  if (/^(0x)?[0-9a-fA-F]{32}$/.test(text)) return { hex: text.replace(/^0x/, '').toLowerCase(), source: path };
  if (raw.length === 16) return { hex: raw.toString('hex'), source: path };
  return { hex: '', source: '', error: `key file ${path} must hold 16 bytes: 32 hex digits or 16 raw bytes (it has ${raw.length} bytes)` };
}

/** Read and validate a front config file (YAML or JSON). */
export function loadFrontConfig(file: string): { config?: FrontConfig; errors: ConfigError[] } {
  return loadDocumentWith(file, frontConfigFromValue);
}

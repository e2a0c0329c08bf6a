// mslb-back's config (SPEC 6a): convict schema (doc + default for every key, MSLB_* env
// overrides), then cross-field checks.

import { loadDocumentWith } from '../shared/config/read-document.js';
import { blameEnv, runConvict } from '../shared/config/convict-load.js';
import { Checker } from '../shared/config/check-values.js';
import type { ConfigError } from '../shared/config/config-errors.js';
import { parseAddress } from '../shared/table/addr.js';
import { MAX_SERVICE_SLOTS } from '../shared/metrics/counter-layout.js';
import { resolve } from 'node:path';
import convict from 'convict';

/** `lbsp.stamp`: false | true (echo: stamp replies of flows whose client sent the option) | always. */
export type StampMode = false | true | 'always';

convict.addFormat({
  name: 'stamp-mode',
  validate(v: unknown) {
    if (v !== false && v !== true && v !== 'always') throw new Error(`must be false, true or always, got ${JSON.stringify(v)}`);
  },
  // MSLB_LBSP_STAMP comes as a string
  coerce: (v: unknown) => (v === 'true' ? true : v === 'false' ? false : v),
});

export const backSchema = {
  tun: {
    name: { doc: 'TUN device the back creates', format: String, default: 'mslbb0', env: 'MSLB_TUN_NAME' },
    mtu: { doc: 'MTU of the TUN device (at most 1920 with offload.enabled: false, what a queue slot then holds)', format: 'int-range', default: 1500, env: 'MSLB_TUN_MTU' },
    queues: { doc: 'TUN queues (IFF_MULTI_QUEUE), one worker thread each', format: 'int-range', default: 1, env: 'MSLB_TUN_QUEUES' },
    routes: { doc: 'Prefixes the back routes into its TUN (its B addresses)', format: 'string-list', default: [] as string[], env: 'MSLB_TUN_ROUTES' },
  },
  addresses: {
    doc: `What this back owns: list of { address: B, service: S, mode: translate | encap | auto } (unicast addresses; at most ${MAX_SERVICE_SLOTS} distinct services); reloaded on SIGHUP`,
    format: 'object-list', default: [] as unknown[], env: 'MSLB_ADDRESSES',
  },
  allowedFronts: { doc: 'Outer source prefixes accepted for encapsulated packets (a /0 is refused); reloaded on SIGHUP', format: 'string-list', default: [] as string[], env: 'MSLB_ALLOWED_FRONTS' },
  udpPort: {
    doc: 'Also accept IP-in-UDP tunnels (the front\'s encap.udpPort): UDP to one of the addresses on this port from allowedFronts, the inner packet right after the UDP header (GUE variant 1), checksum verified; 0 = IP-in-IP only',
    format: 'int-range',
    default: 0,
    env: 'MSLB_UDP_PORT',
  },
  udpGro: {
    interface: {
      doc: 'Interface the UDP tunnels arrive on (with udpPort): at start-up the back turns on its GRO and rx-udp-gro-forwarding (ethtool features), and turns them off again on exit if they were off, so a burst of tunnel packets reaches the TUN as one super-packet instead of one packet per read; refused: logged, the back runs on; "" = leave the interface as it is',
      format: String,
      default: '',
      env: 'MSLB_UDP_GRO_INTERFACE',
    },
  },
  lbsp: {
    stamp: { doc: 'LBSP stamping of IPv6 return traffic (needs returnPath): false; true = the replies of flows whose client sent the option (echo); always = every IPv6 reply (closed networks: Internet paths drop many packets with extension headers)', format: 'stamp-mode', default: false as StampMode, env: 'MSLB_LBSP_STAMP' },
    serverId: { doc: 'Server segment value; "" = this back\'s own B address', format: String, default: '', env: 'MSLB_LBSP_SERVER_ID' },
    optionType: { doc: 'LBSP option type (RFC 4727 experimental 0x1E by default)', format: 'int-range', default: 0x1e, env: 'MSLB_LBSP_OPTION_TYPE' },
  },
  returnPath: {
    interface: { doc: 'Interface where return traffic from the services arrives, steered into the TUN by policy routing; "" = none', format: String, default: '', env: 'MSLB_RETURN_PATH_INTERFACE' },
  },
  returnEncap: {
    gateway: { doc: 'Wrap return traffic toward this address (outer source = B); "" = off. Needs returnPath', format: String, default: '', env: 'MSLB_RETURN_ENCAP_GATEWAY' },
  },
  mssClamp: {
    enabled: { doc: 'Clamp the TCP MSS of forwarded SYNs so stamped return packets fit the MTU (when stamping)', format: Boolean, default: true, env: 'MSLB_MSS_CLAMP_ENABLED' },
  },
  offload: {
    enabled: { doc: 'TUN offloads (IFF_VNET_HDR, checksum and TCP/UDP segmentation offload); probed at start-up', format: Boolean, default: true, env: 'MSLB_OFFLOAD_ENABLED' },
    udpTunnel: { doc: 'With udpPort and offload.enabled: the TUN reads UDP-tunnel super-packets whole (24-byte virtio header, TUN_F_UDP_TUNNEL_GSO, Linux >= 6.16) and the back decapsulates each once; false or refused = the kernel segments them before the TUN, one read per segment', format: Boolean, default: true, env: 'MSLB_OFFLOAD_UDP_TUNNEL' },
  },
  admin: {
    listen: { doc: 'Admin HTTP listen address (/metrics, /healthz, /readyz): ADDRESS:PORT or [ADDRESS]:PORT, never all addresses (S is local in the back\'s namespace)', format: String, default: '[::1]:9102', env: 'MSLB_ADMIN_LISTEN' },
  },
  log: {
    level: { doc: 'Log level', format: ['debug', 'info', 'warn', 'error'], default: 'info', env: 'MSLB_LOG_LEVEL' },
  },
};

export interface BackAddress {
  address: string; // canonical B
  service: string; // canonical S
  mode: 'translate' | 'encap' | 'auto';
}

export interface BackConfig {
  file: string;
  tun: { name: string; mtu: number; queues: number; routes: string[] };
  addresses: BackAddress[];
  allowedFronts: string[];
  udpPort: number;
  udpGro: { interface: string };
  lbsp: { stamp: StampMode; serverId: string; optionType: number };
  returnPath: { interface: string };
  returnEncap: { gateway: string };
  mssClamp: { enabled: boolean };
  offload: { enabled: boolean; udpTunnel: boolean };
  admin: { listen: string };
  log: { level: 'debug' | 'info' | 'warn' | 'error' };
}

const ADDRESS_KEYS = new Set(['address', 'service', 'mode']);

export function backConfigFromValue(value: unknown, file: string): { config?: BackConfig; errors: ConfigError[] } {
  const { values, errors, envEntries } = runConvict(backSchema as never, value, file);
  const v = values as unknown as Omit<BackConfig, "addresses"> & { addresses: unknown[] };
  const c = new Checker(file);
  const bad = new Set(errors.map((e) => e.entry));
  const ok = (k: string) => !bad.has(k);
  if (ok('tun.mtu')) c.tunMtu('tun.mtu', v.tun.mtu, v.offload.enabled !== false);
  if (ok('tun.queues')) c.intRange('tun.queues', v.tun.queues, 1, 64);
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(v.tun.name)) c.err('tun.name', `not an interface name: ${JSON.stringify(v.tun.name)}`);
  const routes = ok('tun.routes') ? c.prefixList('tun.routes', v.tun.routes) : [];
  const addresses: BackAddress[] = [];
  if (ok('addresses')) {
    if (v.addresses.length === 0) c.err('addresses', 'at least one { address, service } entry is needed');
    const seen = new Map<string, number>();
    v.addresses.forEach((raw, i) => {
      const e = `addresses[${i}]`;
      if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) { c.err(e, 'must be { address, service, mode? }'); return; }
      const o = raw as Record<string, unknown>;
      for (const k of Object.keys(o)) if (!ADDRESS_KEYS.has(k)) c.err(`${e}.${k}`, 'unknown key (expected address, service, mode)');
      const a = c.unicastAddress(`${e}.address`, o.address);
      const s = c.unicastAddress(`${e}.service`, o.service);
      const mode = o.mode ?? 'auto';
      if (mode !== 'translate' && mode !== 'encap' && mode !== 'auto') c.err(`${e}.mode`, `must be translate | encap | auto, got ${JSON.stringify(mode)}`);
      if (!a || !s) return;
      const fa = parseAddress(a)!.family, fs = parseAddress(s)!.family;
      if (mode === 'translate' && fa !== fs) c.err(`${e}.address`, `translate mode needs the same family as the service (${a} is IPv${fa}, ${s} is IPv${fs})`);
      if (seen.has(a)) c.err(`${e}.address`, `${a} already listed in addresses[${seen.get(a)}]`);
      seen.set(a, i);
      addresses.push({ address: a, service: s, mode: mode as BackAddress['mode'] });
    });
  }
  // each service has its own counters (the `service` label): a bounded set, preallocated per worker
  const distinct = new Set(addresses.map((x) => x.service)).size;
  if (distinct > MAX_SERVICE_SLOTS) c.err('addresses', `at most ${MAX_SERVICE_SLOTS} distinct services, got ${distinct}`);
  const allowed = ok('allowedFronts') ? c.senderPrefixList('allowedFronts', v.allowedFronts) : [];
  if (ok('udpPort') && v.udpPort !== 0) c.intRange('udpPort', v.udpPort, 1, 65535);
  if (v.udpGro.interface !== '') {
    if (!/^[A-Za-z0-9_.-]{1,15}$/.test(v.udpGro.interface)) c.err('udpGro.interface', `not an interface name: ${JSON.stringify(v.udpGro.interface)}`);
    else if (v.udpPort === 0) c.err('udpGro.interface', 'needs udpPort (receive offloads for UDP tunnels the back does not accept)');
  }
  let serverId = '';
  if (v.lbsp.serverId !== '') {
    const a = parseAddress(v.lbsp.serverId);
    if (!a || a.family !== 6) c.err('lbsp.serverId', `must be an IPv6 address (the LBSP server segment is 16 bytes), got ${JSON.stringify(v.lbsp.serverId)}`);
    else serverId = c.address('lbsp.serverId', v.lbsp.serverId)!;
  } else if (v.lbsp.stamp && addresses.length > 0 && !addresses.some((x) => parseAddress(x.address)!.family === 6)) {
    c.err('lbsp.serverId', 'stamping needs an IPv6 serverId: this back has no IPv6 address to default to');
  }
  if (ok('lbsp.optionType')) c.intRange('lbsp.optionType', v.lbsp.optionType, 2, 255);
  const needsReturn = v.lbsp.stamp || v.returnEncap.gateway !== '';
  if (needsReturn && v.returnPath.interface === '') {
    c.err(v.lbsp.stamp ? 'lbsp.stamp' : 'returnEncap.gateway', 'needs returnPath.interface (return traffic must be steered into the TUN)');
  }
  if (v.returnPath.interface !== '' && !/^[A-Za-z0-9_.-]{1,15}$/.test(v.returnPath.interface)) c.err('returnPath.interface', `not an interface name: ${JSON.stringify(v.returnPath.interface)}`);
  const gateway = v.returnEncap.gateway !== '' ? (c.address('returnEncap.gateway', v.returnEncap.gateway) ?? '') : '';
  if (gateway !== '' && addresses.length > 0) {
    const gf = parseAddress(gateway)!.family;
    if (!addresses.some((x) => parseAddress(x.address)!.family === gf)) c.err('returnEncap.gateway', `the outer source is this back's own address of the gateway's family: no IPv${gf} address in addresses`);
  }
  c.listen('admin.listen', v.admin.listen);
  const all = blameEnv([...errors, ...c.errors], envEntries);
  if (all.length > 0) return { errors: all };
  return {
    errors: [],
    config: {
      ...v,
      file: file ? resolve(file) : '',
      tun: { ...v.tun, routes },
      addresses,
      allowedFronts: allowed,
      lbsp: { ...v.lbsp, serverId: serverId || (addresses.find((x) => parseAddress(x.address)!.family === 6)?.address ?? '') },
      returnEncap: { gateway },
    },
  };
}

/** Read and validate a back config file (YAML or JSON). */
export function loadBackConfig(file: string): { config?: BackConfig; errors: ConfigError[] } {
  return loadDocumentWith(file, backConfigFromValue);
}

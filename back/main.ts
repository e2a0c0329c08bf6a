#!/usr/bin/env node
// mslb-back: the MSLB-B service. Validates its config before touching any interface, then runs
// one worker per TUN queue (see shared/engine/service-host.ts).
import { loadBackConfig } from './back-config.js';
import { formatErrors } from '../shared/config/config-errors.js';
import { wrongRoleOfFile } from '../shared/config/config-role.js';
import { ServiceHost } from '../shared/engine/service-host.js';
import { configPathFromArgs } from '../shared/engine/service-args.js';
import { createLogger } from '../shared/log.js';
import { backRoleFromConfig, type BackRole } from './back-role.js';
import { backReloadErrors, backReloadUnchanged } from './back-reload.js';
import { ServiceSlots } from './service-slots.js';
import type { BackConfig } from './back-config.js';
import type { ConfigError } from '../shared/config/config-errors.js';
import { reloadRoute, type ReloadAnswer } from '../shared/admin/reload-route.js';

/** Routing table of the returnPath rules ("MS"). */
const RETURN_PATH_TABLE = 0x4d53;

async function main(): Promise<void> {
  const file = configPathFromArgs(process.argv.slice(2), 'mslb-back');
  const loaded = loadBackConfig(file);
  if (!loaded.config || loaded.errors.length > 0) {
    const wrong = wrongRoleOfFile(file, 'back');
    process.stderr.write(wrong !== undefined ? `mslb-back: ${wrong}\n` : `mslb-back: invalid config\n${formatErrors(loaded.errors)}\n`);
    process.exit(1);
  }
  // The config and role in force: SIGHUP replaces them (addresses, allowedFronts, lbsp).
  let config: BackConfig = loaded.config;
  const log = createLogger({ level: config.log.level, base: { service: 'mslb-back' } });
  // counter slot per service address (the `service` label), kept across reloads; a slot is only
  // reused on a reload, when `host` exists
  const slots = new ServiceSlots((slot) => host.metrics.resetServiceSlot(slot));
  const servicesOf = (c: BackConfig) => c.addresses.map((a) => a.service);
  let role: BackRole = backRoleFromConfig(config, slots.slotOf);
  let loadedAt: string | null = null;
  const countsOf = (r: BackRole) => ({ ipv4: r.own.filter((o) => o.family === 4).length, ipv6: r.own.filter((o) => o.family === 6).length });
  let counts = countsOf(role);
  const host = new ServiceHost({
    role: 'back',
    log,
    workerEntry: new URL('./worker.js', import.meta.url),
    tun: config.tun,
    offload: config.offload.enabled,
    udpTunnelRead: config.offload.enabled && config.offload.udpTunnel && config.udpPort !== 0,
    acceptLocal: false,
    adminListen: config.admin.listen,
    roleData: role,
    tableRoutes: () => counts,
    services: () => slots.states(),
    // POST /reload (mslb reload): the same reload as SIGHUP, answered with its outcome.
    adminRoutes: { '/reload': reloadRoute(() => enqueue('admin')) },
    table: () => ({ addresses: config.addresses, allowedFronts: config.allowedFronts, loadedAt, source: config.file }),
    // SPEC 6a returnPath: packets from the services arriving on that interface enter the TUN
    // (policy rule per service address, default route into the TUN in a table of their own).
    setupHost: config.returnPath.interface === '' && config.udpGro.interface === ''
      ? undefined
      : async (h, tun) => {
          if (config.udpGro.interface !== '') {
            // Without GRO (and its forwarding variant for UDP) on the interface the tunnels arrive
            // on, every tunnel packet is one read of the TUN; with them, a burst is one super-packet.
            for (const feature of ['rx-gro', 'rx-udp-gro-forwarding']) {
              try {
                await h.enableFeature(config.udpGro.interface, feature);
                log.info('udp_gro', { interface: config.udpGro.interface, feature, on: true });
              } catch (e) {
                log.warn('udp_gro_refused', { interface: config.udpGro.interface, feature, error: (e as Error).message });
              }
            }
          }
          if (config.returnPath.interface === '') return;
          await h.addReturnPath({
            iif: config.returnPath.interface,
            dev: tun,
            table: RETURN_PATH_TABLE,
            from: [...new Set(config.addresses.map((a) => a.service))].map((sv) => (sv.includes(':') ? `${sv}/128` : `${sv}/32`)),
          });
          // Return encapsulation: the path MTU toward the gateway is read before the workers start,
          // so the first reply already knows what fits the tunnel.
          const re = role.returnEncap;
          if (re) {
            try {
              const r = await h.routeToward(config.returnEncap.gateway);
              re.mtu = r.mtu;
              log.info('return_encap', { gateway: config.returnEncap.gateway, mtu: r.mtu, via: r.ifname });
            } catch (e) {
              log.warn('return_encap_path_mtu_unknown', { gateway: config.returnEncap.gateway, error: (e as Error).message, mtu: re.mtu });
            }
          }
        },
  });
  // SIGHUP / POST /reload: re-read the file; a bad edit is rejected (file, entry, reason; counted)
  // and the old settings serve on.
  const reload = async (trigger: string): Promise<ReloadAnswer> => {
    const reject = (errors: readonly ConfigError[]): ReloadAnswer => {
      for (const e of errors) log.error('config_rejected', { trigger, file: e.file, entry: e.entry, reason: e.reason });
      host.metrics.recordReload(false);
      return { outcome: 'rejected', file, errors: [...errors] };
    };
    const r = loadBackConfig(file);
    if (!r.config || r.errors.length > 0) return reject(r.errors);
    const next = r.config;
    const refused = backReloadErrors(config, next);
    if (refused.length > 0) return reject(refused);
    if (backReloadUnchanged(config, next)) {
      log.info('config_unchanged', { trigger, file: next.file });
      host.metrics.recordReload(true);
      return { outcome: 'unchanged', file, errors: [] };
    }
    let nextRole: BackRole;
    try {
      nextRole = backRoleFromConfig(next, slots.slotOf);
    } catch (e) {
      slots.retain(servicesOf(config));
      return reject([{ file: next.file, entry: '', reason: (e as Error).message }]);
    }
    // The path MTU toward the return gateway was measured at start (returnEncap is not reloadable).
    if (role.returnEncap && nextRole.returnEncap) nextRole.returnEncap.mtu = role.returnEncap.mtu;
    try {
      await host.apply({ type: 'role', role: nextRole });
    } catch (e) {
      slots.retain(servicesOf(config));
      return reject([{ file: next.file, entry: '', reason: `not taken by the workers: ${(e as Error).message}` }]);
    }
    // the services this config no longer has leave /metrics; their slots may serve new ones later
    slots.retain(servicesOf(next));
    config = next;
    role = nextRole;
    counts = countsOf(role);
    loadedAt = new Date().toISOString();
    host.metrics.recordReload(true);
    log.info('config_loaded', { trigger, file: next.file, addresses: next.addresses.length, allowedFronts: next.allowedFronts.length, stamp: next.lbsp.stamp });
    return { outcome: 'installed', file, errors: [] };
  };
  // One reload at a time, in the order asked.
  let reloading: Promise<unknown> = Promise.resolve();
  function enqueue(trigger: string): Promise<ReloadAnswer> {
    const p = reloading.then(() => reload(trigger));
    reloading = p.catch(() => undefined);
    return p;
  }
  host.handleSignals(() => void enqueue('SIGHUP'));
  try {
    await host.start();
    host.metrics.markLoaded(); // the config in force is the file's (mslb_config_last_reload_successful 1)
  } catch (e) {
    log.error('start_failed', { error: (e as Error).message });
    process.exitCode = 1;
    await host.stop(1);
  }
}

void main();

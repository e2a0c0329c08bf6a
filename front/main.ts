#!/usr/bin/env node
// mslb-front: the MSLB-F service. Validates config and table before touching any interface, then
// runs one worker per TUN queue (shared/engine/service-host.ts) and keeps the table live.
import { loadFrontConfig } from './front-config.js';
import { formatErrors } from '../shared/config/config-errors.js';
import { wrongRoleOfFile } from '../shared/config/config-role.js';
import { ServiceHost } from '../shared/engine/service-host.js';
import { configPathFromArgs } from '../shared/engine/service-args.js';
import { createLogger } from '../shared/log.js';
import { frontRoleFromConfig } from './front-role.js';
import { TableManager } from './table-manager.js';
import { HealthChecker, planHealthChecks, type HealthPlan } from './health-checker.js';
import type { HostSetup } from '../shared/netlink/host-setup.js';
import { PmtuCache } from '../shared/tunnel/path-mtu-cache.js';
import { encapSourceRoutes, pathMtuView, refreshBaseMtus } from './path-mtu.js';
import type { CompiledTable } from './table/compiled-table.js';
import { tableHash } from './table/table-hash.js';
import { frontAdminRoutes } from './front-admin.js';

async function main(): Promise<void> {
  const file = configPathFromArgs(process.argv.slice(2), 'mslb-front');
  const { config, errors } = loadFrontConfig(file);
  if (!config || errors.length > 0) {
    const wrong = wrongRoleOfFile(file, 'front');
    process.stderr.write(wrong !== undefined ? `mslb-front: ${wrong}\n` : `mslb-front: invalid config\n${formatErrors(errors)}\n`);
    process.exit(1);
  }
  const log = createLogger({ level: config.log.level, base: { service: 'mslb-front' } });
  let host: ServiceHost | undefined;
  let health: HealthChecker | undefined;
  let hostSetup: HostSetup | undefined;
  let started = false;
  /** Hash of the table in force (mslb_table_info, /table, POST /reload). */
  let hash = '';
  /** The `service` label's values: a service's counter slot is its index in the compiled table. */
  const frontServices = config.services.map((name, slot) => ({ name, slot }));
  // Path MTU toward each encap back, in memory shared with the workers: this thread sets each back's
  // base from its route on every table load; a Packet Too Big one worker sees lowers it for all.
  const pmtu = PmtuCache.create(config.encap.mtu > 0 ? config.encap.mtu : config.tun.mtu);
  const refreshMtus = (t: CompiledTable): void => {
    refreshBaseMtus(t, pmtu, hostSetup, config.encap.mtu, log).catch((e: Error) => log.warn('path_mtu_failed', { error: e.message }));
  };
  const tables = new TableManager(
    config,
    log,
    async (t, generation, plan) => {
      if (!host) throw new Error('service not started');
      // Resolves once every worker took it; otherwise they all went back to the previous table.
      await host.apply({ type: 'table', table: t.toTransfer(), generation });
      hash = tableHash(t.meta.view);
      host.metrics.setTableHash(hash);
      health?.update((plan as HealthPlan | undefined)?.backs ?? []);
      refreshMtus(t);
    },
    (ok) => host?.metrics.recordReload(ok),
    {
      onSlotReuse: (slot) => host?.metrics.resetBackendSlot(slot),
      // Health checks: plan per back, plus the internal probe-source routes (front/health-checker.ts).
      augment: (t, slotOf) => {
        const p = planHealthChecks(t, config, slotOf);
        return { routes: p.routes, errors: p.errors, data: p };
      },
      onInSync: () => host?.metrics.markInSync(),
    },
  );
  const first = tables.build();
  if (!first.table) {
    process.stderr.write(`mslb-front: invalid table\n${formatErrors(first.errors)}\n`);
    process.exit(1);
  }
  health = new HealthChecker({
    log,
    up: tables.up,
    refresh: () => void tables.table?.refreshUp(),
    // Probe sources go on lo through the service's own HostSetup (undone at stop).
    addSource: async (cidr) => {
      if (!hostSetup) throw new Error('host not set up');
      await hostSetup.addAddress('lo', cidr);
    },
  });
  host = new ServiceHost({
    role: 'front',
    log,
    workerEntry: new URL('./worker.js', import.meta.url),
    // a configured encap source is routed into the TUN too: fabric ICMP errors about our tunnels come back
    tun: { ...config.tun, routes: [...config.tun.routes, ...encapSourceRoutes(config)] },
    offload: config.offload.enabled,
    udpTunnelTap: config.offload.enabled && config.offload.udpTunnel && config.encap.udpPort !== 0,
    acceptLocal: true,
    adminListen: config.admin.listen,
    roleData: { ...frontRoleFromConfig(config), pmtu: pmtu.toShared() },
    backends: () => {
      const t = tables.table;
      if (!t) return [];
      return t.meta.backNames.map((name, i) => ({ name, slot: t.a.backSlot[i]!, up: tables.up[t.a.backSlot[i]!] !== 0 }));
    },
    pools: () => {
      const t = tables.table;
      if (!t) return [];
      const slotOf = new Map(t.meta.backNames.map((name, i) => [name, t.a.backSlot[i]!]));
      // a member is a name, or { back, weight } when its weight is not 1
      return Object.entries(t.meta.view.pools as Record<string, { members: (string | { back: string })[] }>).map(([name, p]) => ({
        name,
        members: p.members.length,
        up: p.members.map((m) => (typeof m === 'string' ? m : m.back)).filter((m) => tables.up[slotOf.get(m) ?? -1] !== 0 && slotOf.has(m)).length,
      }));
    },
    healthProbes: () => health?.probeStats() ?? [],
    // a front's services are fixed for its lifetime (SIGHUP reloads the table only): slot = position
    services: () => frontServices,
    tableRoutes: () => ({ ipv4: tables.table?.meta.routes4 ?? 0, ipv6: tables.table?.meta.routes6 ?? 0 }),
    table: () => {
      const t = tables.table;
      return t ? { ...t.meta.view, hash, pathMtu: pathMtuView(t, pmtu, Date.now()) } : undefined;
    },
    adminRoutes: frontAdminRoutes({
      table: () => tables.table,
      queryFlows: (q) => host?.queryFlows(q) ?? Promise.resolve([]),
      reload: async () => {
        if (!started) return { result: { outcome: 'rejected', errors: [{ file: config.table, entry: '', reason: 'the front is still starting' }] }, file: config.table, hash };
        await tables.reload('admin');
        return { result: tables.lastReload!, file: config.table, hash };
      },
    }),
    ready: () => (tables.table ? { ready: true } : { ready: false, reason: 'no table loaded' }),
    setupHost: async (h) => {
      hostSetup = h;
    },
  });
  // Stop probing before the workers stop (no backend_down noise while draining).
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => health?.stop());
  host.handleSignals(() => (started ? tables.reload('SIGHUP') : undefined));
  try {
    await host.start();
    await tables.install(first.table, first.text);
    started = true;
    host.metrics.markLoaded();
    tables.watch();
    log.info('table_loaded', { trigger: 'start', file: config.table, routes4: first.table.meta.routes4, routes6: first.table.meta.routes6 });
    // Never the key itself: only where it came from.
    if (config.hashKeySource === 'built-in') log.warn('hash_key_builtin', { message: 'no hashKey configured: pools use the built-in key, which anyone reading the source knows; set hashKey (the same on every front)' });
    else log.info('hash_key', { source: config.hashKeySource });
  } catch (e) {
    log.error('start_failed', { error: (e as Error).message });
    health.stop();
    tables.close();
    await host.stop(1);
  }
}

void main();

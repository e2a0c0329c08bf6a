#!/usr/bin/env node
// mslb-back: the MSLB-B service. Validates its config before touching any interface, then runs
// one worker per TUN queue (see shared/engine/service-host.ts).
import { loadBackConfig } from './back-config.js';
import { formatErrors } from '../shared/config/config-errors.js';
import { wrongRoleOfFile } from '../shared/config/config-role.js';
import { ServiceHost } from '../shared/engine/service-host.js';
import { configPathFromArgs } from '../shared/engine/service-args.js';
import { createLogger } from '../shared/log.js';
import { backRoleFromConfig } from './back-role.js';

/** Routing table of the returnPath rules ("MS"). */
const RETURN_PATH_TABLE = 0x4d53;

async function main(): Promise<void> {
  const file = configPathFromArgs(process.argv.slice(2), 'mslb-back');
  const { config, errors } = loadBackConfig(file);
  if (!config || errors.length > 0) {
    const wrong = wrongRoleOfFile(file, 'back');
    process.stderr.write(wrong !== undefined ? `mslb-back: ${wrong}\n` : `mslb-back: invalid config\n${formatErrors(errors)}\n`);
    process.exit(1);
  }
  const log = createLogger({ level: config.log.level, base: { service: 'mslb-back' } });
  const role = backRoleFromConfig(config);
  const counts = { ipv4: role.own.filter((o) => o.family === 4).length, ipv6: role.own.filter((o) => o.family === 6).length };
  const host = new ServiceHost({
    role: 'back',
    log,
    workerEntry: new URL('./worker.js', import.meta.url),
    tun: config.tun,
    offload: config.offload.enabled,
    acceptLocal: false,
    adminListen: config.admin.listen,
    roleData: role,
    tableRoutes: () => counts,
    table: () => ({ addresses: config.addresses, allowedFronts: config.allowedFronts, loadedAt: null, source: config.file }),
    // SPEC 6a returnPath: packets from the services arriving on that interface enter the TUN
    // (policy rule per service address, default route into the TUN in a table of their own).
    setupHost: config.returnPath.interface === ''
      ? undefined
      : async (h, tun) => {
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
  host.handleSignals();
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

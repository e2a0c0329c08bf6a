// The main thread of a service (front or back): opens the TUN queues, sets up the host through
// rtnetlink, starts one worker per queue, the admin server and the metrics, and on SIGTERM/SIGINT
// stops the workers and undoes every host change. Config errors are the caller's to report before
// this runs, so a bad file never touches an interface.
import { openTunQueues, closeTunFds } from '../tun/native-tun.js';
import { HEADROOM, DEFAULT_BATCH } from '../tun/tun-device.js';
import { HostSetup } from '../netlink/host-setup.js';
import { ServiceMetrics, type BackendState, type TableRouteCounts } from '../metrics/registry.js';
import { startAdminServer, type AdminServer } from '../admin/admin-server.js';
import { WorkerPool } from './worker-pool.js';
import type { ToWorker } from './worker-messages.js';
import type { Logger } from '../log.js';

export interface ServiceHostOptions {
  role: 'front' | 'back';
  log: Logger;
  workerEntry: URL;
  tun: { name: string; mtu: number; queues: number; routes: string[] };
  /** accept_local on the TUN (the front's IPv4 encap source may be a local address). */
  acceptLocal: boolean;
  adminListen: string;
  /** Plain data every worker gets at start (role settings). */
  roleData: unknown;
  backends?: () => readonly BackendState[];
  tableRoutes?: () => TableRouteCounts;
  table: () => unknown;
  /** Ready beyond "TUN up and workers running" (e.g. a table is loaded). */
  ready?: () => { ready: boolean; reason?: string };
  /** Extra host setup after the TUN is configured (e.g. the back's return path). */
  setupHost?: (host: HostSetup, tunName: string) => Promise<void>;
}

/**
 * A start-up failure that is a missing privilege (EPERM/EACCES from the TUN device, rtnetlink or
 * /proc/sys) becomes one plain sentence saying what the service needs, also written to stderr;
 * any other error is returned unchanged.
 */
export function privilegeError(role: 'front' | 'back', step: string, e: unknown): unknown {
  const msg = e instanceof Error ? e.message : String(e);
  const code = (e as { code?: unknown } | null)?.code;
  const perm = code === 'EPERM' || code === 'EACCES' || /\b(EPERM|EACCES)\b|Operation not permitted|Permission denied/i.test(msg);
  if (!perm) return e;
  const device = /open \/dev\/net\/tun/.test(msg) && /EACCES|Permission denied/i.test(msg);
  const need = device
    ? 'needs read-write access to /dev/net/tun (mode 0666, as Debian ships it, or a group that may open it) and CAP_NET_ADMIN'
    : 'needs CAP_NET_ADMIN (run as root, or grant it: setpriv/capsh --ambient-caps, systemd AmbientCapabilities=CAP_NET_ADMIN, docker --cap-add NET_ADMIN)';
  const text = `mslb-${role} ${need}: ${step} failed: ${msg}`;
  process.stderr.write(`${text}\n`);
  return new Error(text, { cause: e });
}

export class ServiceHost {
  readonly metrics: ServiceMetrics;
  private pool: WorkerPool | undefined;
  private host: HostSetup | undefined;
  private admin: AdminServer | undefined;
  private running = false;
  private stopping: Promise<void> | undefined;
  private tunName = '';
  /** Counter blocks of every worker ever started: totals never go down. */
  private readonly blocks: Float64Array[] = [];

  constructor(private readonly o: ServiceHostOptions) {
    this.metrics = new ServiceMetrics({
      role: o.role,
      sources: {
        blocks: () => this.blocks,
        backends: o.backends,
        tableRoutes: o.tableRoutes,
        offloadEnabled: () => false,
      },
    });
  }

  get name(): string {
    return this.tunName;
  }

  async start(): Promise<void> {
    const { log, tun } = this.o;
    let set: ReturnType<typeof openTunQueues>;
    try {
      set = openTunQueues(tun.name, tun.queues, { vnetHdr: false });
    } catch (e) {
      throw privilegeError(this.o.role, 'opening the TUN device', e);
    }
    this.tunName = set.name;
    log.info('tun_opened', { name: set.name, queues: set.fds.length });
    let handedOver = false;
    try {
      this.host = HostSetup.open({ log });
      await this.host.configureTun({ name: set.name, mtu: tun.mtu, routes: tun.routes, acceptLocal: this.o.acceptLocal });
      if (this.o.setupHost) await this.o.setupHost(this.host, set.name);
      this.pool = new WorkerPool({
        entry: this.o.workerEntry,
        fds: set.fds,
        tun: { batchSize: DEFAULT_BATCH, headroom: HEADROOM, vnetHdr: false },
        role: this.o.roleData,
        onEvent: (m) => {
          if (m.type === 'error') log.error('worker_error', { queue: m.queue, message: m.message });
          else if (m.type === 'device-error') {
            log.error('tun_device_error', { queue: m.queue, message: m.message });
            void this.stop(1);
          }
        },
      });
      handedOver = true; // workers own the fds from here (they close them on stop)
      await this.pool.start();
      this.blocks.push(...this.pool.blocks);
      this.running = true;
      this.admin = await startAdminServer({
        listen: this.o.adminListen,
        log,
        metrics: this.metrics,
        ready: () => {
          if (!this.running) return { ready: false, reason: 'not running' };
          return this.o.ready ? this.o.ready() : { ready: true };
        },
        table: this.o.table,
      });
      log.info('service_started', { role: this.o.role, tun: set.name, admin: this.o.adminListen });
    } catch (e) {
      if (!handedOver) closeTunFds(set.fds);
      await this.stop(-1);
      throw privilegeError(this.o.role, 'configuring the host (rtnetlink, /proc/sys)', e);
    }
  }

  broadcast(msg: ToWorker): void {
    this.pool?.broadcast(msg);
  }

  /** Stop workers, close admin, undo host setup. exitCode >= 0 exits the process afterwards. */
  stop(exitCode: number): Promise<void> {
    if (!this.stopping) {
      this.stopping = (async () => {
        this.running = false;
        const { log } = this.o;
        try {
          await this.pool?.stop();
        } catch (e) {
          log.warn('worker_stop_failed', { error: (e as Error).message });
        }
        await this.admin?.close().catch(() => undefined);
        if (this.host) {
          const errs = await this.host.teardown();
          this.host.close();
          if (errs.length > 0) log.warn('host_teardown_incomplete', { errors: errs.map((e) => e.message) });
        }
        log.info('service_stopped', { role: this.o.role });
      })();
    }
    return this.stopping.then(() => {
      if (exitCode >= 0) process.exit(exitCode);
    });
  }

  /** SIGTERM/SIGINT drain and exit cleanly; SIGHUP calls onHup (reload). */
  handleSignals(onHup?: () => void): void {
    const term = (sig: string) => {
      this.o.log.info('signal', { signal: sig });
      void this.stop(0);
    };
    process.on('SIGTERM', () => term('SIGTERM'));
    process.on('SIGINT', () => term('SIGINT'));
    if (onHup) process.on('SIGHUP', onHup);
  }
}

// The main thread of a service (front or back): opens the TUN queues, sets up the host through
// rtnetlink, starts one worker per queue, the admin server and the metrics, and on SIGTERM/SIGINT
// stops the workers and undoes every host change. Config errors are the caller's to report before
// this runs, so a bad file never touches an interface. A worker that exits unasked, an uncaught
// exception or an unhandled rejection also stops the service with the same teardown, then exits
// non-zero so the supervisor restarts it (a service with a dead queue would black-hole its flows).
import { openTunQueues, closeTunFds, setOffload, setVnetHdrSize, tapHwAddr, tunnelWriteProbe, type TunQueueSet } from '../tun/native-tun.js';
import { gsoWriteProbe } from '../tun/gso.js';
import {
  HEADROOM,
  DEFAULT_BATCH,
  TUN_F_CSUM,
  TUN_F_TSO4,
  TUN_F_TSO6,
  TUN_F_USO4,
  TUN_F_USO6,
  TUN_F_UDP_TUNNEL_GSO,
  TUN_F_UDP_TUNNEL_GSO_CSUM,
  VNET_HDR_LEN,
  VNET_TNL_HDR_LEN,
} from '../tun/tun-device.js';
import { HostSetup } from '../netlink/host-setup.js';
import { ServiceMetrics, type BackendState, type PoolState, type ServiceState, type TableRouteCounts } from '../metrics/registry.js';
import type { HealthProbeState } from '../metrics/health-metrics.js';
import { startAdminServer, type AdminServer, type AdminRoute } from '../admin/admin-server.js';
import { ApplyFailure, WorkerPool, type ApplyMessage } from './worker-pool.js';
import type { FlowQuery, FlowSnapshot, ToWorker } from './worker-messages.js';
import type { Logger } from '../log.js';

export interface ServiceHostOptions {
  role: 'front' | 'back';
  log: Logger;
  workerEntry: URL;
  tun: { name: string; mtu: number; queues: number; routes: string[] };
  /**
   * TUN offloads (config offload.enabled, default true): IFF_VNET_HDR with checksum and TCP/UDP
   * segmentation offloads, probed at start-up (TUNSETOFFLOAD, then a GSO write); off when refused.
   */
  offload?: boolean;
  /**
   * The front with encap.udpPort and offload.udpTunnel: open a TAP next to the TUN (tunnelTapName)
   * for UDP-tunnel super-packets the kernel segments, if the start-up probe passes.
   */
  udpTunnelTap?: boolean;
  /**
   * The back with udpPort and offload.udpTunnel: read UDP-tunnel super-packets whole (24-byte
   * virtio header, TUN_F_UDP_TUNNEL_GSO(_CSUM), Linux >= 6.16) when the kernel accepts it.
   */
  udpTunnelRead?: boolean;
  /** accept_local on the TUN (the front's IPv4 encap source may be a local address). */
  acceptLocal: boolean;
  adminListen: string;
  /** Plain data every worker gets at start (role settings). */
  roleData: unknown;
  backends?: () => readonly BackendState[];
  /** Pools of the table in force (front): mslb_pool_members{,_up}. */
  pools?: () => readonly PoolState[];
  tableRoutes?: () => TableRouteCounts;
  /** Health probes per back and kind (front): latency and failures. */
  healthProbes?: () => readonly HealthProbeState[];
  /** Services of the config in force and their counter slots: the `service` label's values. */
  services?: () => readonly ServiceState[];
  table: () => unknown;
  /** Ready beyond "TUN up and workers running" (e.g. a table is loaded). */
  ready?: () => { ready: boolean; reason?: string };
  /** Role routes of the admin server (the front's /lookup, /flows, /reload). */
  adminRoutes?: Record<string, AdminRoute>;
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
  if (code === 'EROFS' || /setSysctl .*\bEROFS\b/.test(msg)) {
    // Containers mount /proc/sys read-only: the runtime must set the sysctls beforehand (a value
    // already in place is not written). Device keys come from `default` when the TUN is created.
    const text =
      `mslb-${role} cannot write /proc/sys (read-only, as in a container): preset net.ipv4.ip_forward=1, ` +
      'net.ipv6.conf.all.forwarding=1, net.ipv4.conf.all.rp_filter=0, net.ipv4.conf.default.rp_filter=0, ' +
      `${role === 'front' ? 'net.ipv4.conf.default.accept_local=1, ' : ''}net.ipv6.conf.default.addr_gen_mode=1 ` +
      `(docker run --sysctl, compose sysctls, Kubernetes pod sysctls; see deploy/README.md): ${step} failed: ${msg}`;
    process.stderr.write(`${text}\n`);
    return new Error(text, { cause: e });
  }
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
  /** Why the service is going down on its own (a worker exit, an uncaught error); shown by /readyz. */
  private failure: string | undefined;
  private tunName = '';
  private offloads = 0;
  /** The TUN's virtio header size: 12, or 24 when it reads UDP-tunnel super-packets. */
  private vnetHdrSize = VNET_HDR_LEN;
  /** The tunnel TAP in use (probe passed), else undefined. */
  private tap: { set: TunQueueSet; mac: number[] } | undefined;
  /** Counter blocks of every worker ever started: totals never go down. */
  private readonly blocks: Float64Array[] = [];

  constructor(private readonly o: ServiceHostOptions) {
    this.metrics = new ServiceMetrics({
      role: o.role,
      sources: {
        blocks: () => this.blocks,
        backends: o.backends,
        pools: o.pools,
        healthProbes: o.healthProbes,
        services: o.services,
        tableRoutes: o.tableRoutes,
        offloadEnabled: () => this.offloads !== 0,
        udpTunnelOffload: () => this.tap !== undefined || this.vnetHdrSize === VNET_TNL_HDR_LEN,
        liveWorkers: () => this.pool?.liveCount ?? 0,
      },
    });
  }

  get name(): string {
    return this.tunName;
  }

  async start(): Promise<void> {
    const { log, tun } = this.o;
    const offload = this.o.offload ?? true;
    let set: ReturnType<typeof openTunQueues>;
    try {
      set = openTunQueues(tun.name, tun.queues, { vnetHdr: offload });
    } catch (e) {
      throw privilegeError(this.o.role, 'opening the TUN device', e);
    }
    this.tunName = set.name;
    this.offloads = set.offloads;
    log.info('tun_opened', { name: set.name, queues: set.fds.length });
    let handedOver = false;
    try {
      this.host = HostSetup.open({ log });
      await this.host.configureTun({ name: set.name, mtu: tun.mtu, routes: tun.routes, acceptLocal: this.o.acceptLocal });
      if (offload) this.probeOffloads(set.fds[0]);
      else log.info('tun_offload', { enabled: false, reason: 'config offload.enabled: false' });
      if (this.o.udpTunnelTap) await this.openTunnelTap(set.name, set.fds.length);
      if (this.o.udpTunnelRead && offload) this.enableTunnelRead(set.fds[0]);
      if (this.o.setupHost) await this.o.setupHost(this.host, set.name);
      const tap = this.tap;
      this.pool = new WorkerPool({
        entry: this.o.workerEntry,
        fds: set.fds,
        tun: { batchSize: DEFAULT_BATCH, headroom: HEADROOM, vnetHdr: set.vnetHdr, offloads: this.offloads, vnetHdrSize: this.vnetHdrSize },
        tap: tap !== undefined ? { fds: tap.set.fds, mac: tap.mac, offloads: tap.set.offloads } : undefined,
        role: this.o.roleData,
        onEvent: (m) => {
          if (m.type === 'error') log.error('worker_error', { queue: m.queue, message: m.message });
          else if (m.type === 'device-error') {
            log.error('tun_device_error', { tun: set.name, queue: m.queue, message: m.message });
            void this.stop(1);
          }
        },
        onExit: (queue, code) => this.fail('worker_exited', `worker ${queue} exited (code ${code})`, { queue, code }),
        testExit: testWorkerExit(),
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
          if (this.failure !== undefined) return { ready: false, reason: this.failure };
          if (!this.running) return { ready: false, reason: 'not running' };
          const dead = this.pool?.deadQueues() ?? [];
          if (dead.length > 0) return { ready: false, reason: `worker ${dead.join(', ')} not running` };
          return this.o.ready ? this.o.ready() : { ready: true };
        },
        table: this.o.table,
        routes: this.o.adminRoutes,
      });
      log.info('service_started', { role: this.o.role, tun: set.name, admin: this.o.adminListen });
    } catch (e) {
      if (!handedOver) {
        closeTunFds(set.fds);
        if (this.tap !== undefined) closeTunFds(this.tap.set.fds);
      }
      await this.stop(-1);
      throw privilegeError(this.o.role, 'configuring the host (rtnetlink, /proc/sys)', e);
    }
  }

  /**
   * The device is up: check that the kernel accepts a GSO write (Linux 6.6.44 refused them with
   * EINVAL, tailscale/tailscale#13041) for TCP, then UDP when USO is on. A refusal turns that
   * offload off (TUNSETOFFLOAD is per device), so the kernel segments before the TUN instead.
   * The queues keep their virtio headers either way.
   */
  private probeOffloads(fd: number): void {
    const { log } = this.o;
    const asked = this.offloads;
    let mask = asked;
    let tcpErr = 0;
    let udpErr = 0;
    if (mask !== 0) {
      tcpErr = gsoWriteProbe(fd, false);
      if (tcpErr !== 0) mask = 0;
      else if ((mask & (TUN_F_USO4 | TUN_F_USO6)) !== 0) {
        udpErr = gsoWriteProbe(fd, true);
        if (udpErr !== 0) mask &= ~(TUN_F_USO4 | TUN_F_USO6);
      }
      if (mask !== asked && !setOffload(fd, mask)) mask = setOffload(fd, 0) ? 0 : mask;
    }
    this.offloads = mask;
    const names: string[] = [];
    for (const [bit, name] of [[TUN_F_CSUM, 'csum'], [TUN_F_TSO4, 'tso4'], [TUN_F_TSO6, 'tso6'], [TUN_F_USO4, 'uso4'], [TUN_F_USO6, 'uso6']] as const) {
      if ((mask & bit) !== 0) names.push(name);
    }
    const fields: Record<string, unknown> = { enabled: mask !== 0, offloads: names, mask };
    if (asked === 0) fields.reason = 'TUNSETOFFLOAD refused';
    if (tcpErr !== 0) fields.reason = `GSO write probe refused (errno ${tcpErr})`;
    if (udpErr !== 0) fields.udpProbeErrno = udpErr;
    if (mask === 0) log.warn('tun_offload', fields);
    else log.info('tun_offload', fields);
  }

  /**
   * After the GSO probes (12-byte header): ask the kernel to hand over UDP-tunnel super-packets
   * whole (TUNSETVNETHDRSZ 24 and TUN_F_UDP_TUNNEL_GSO | _CSUM on top of TSO; both per device).
   * Without it the kernel segments them in software before the TUN and the back reads one packet
   * per segment. A kernel before 6.16 refuses the offload bits: the 12-byte header is put back.
   */
  private enableTunnelRead(fd: number): void {
    const { log } = this.o;
    const off = (reason: string): void => log.warn('tun_offload_udp_tunnel_read', { enabled: false, reason });
    if ((this.offloads & (TUN_F_TSO4 | TUN_F_TSO6)) !== (TUN_F_TSO4 | TUN_F_TSO6)) return off('no TSO on the TUN');
    if (!setVnetHdrSize(fd, VNET_TNL_HDR_LEN)) return off('TUNSETVNETHDRSZ 24 refused');
    const mask = this.offloads | TUN_F_UDP_TUNNEL_GSO | TUN_F_UDP_TUNNEL_GSO_CSUM;
    if (!setOffload(fd, mask)) {
      setVnetHdrSize(fd, VNET_HDR_LEN);
      setOffload(fd, this.offloads);
      return off('TUNSETOFFLOAD UDP_TUNNEL_GSO refused (Linux >= 6.16 needed)');
    }
    this.offloads = mask;
    this.vnetHdrSize = VNET_TNL_HDR_LEN;
    log.info('tun_offload_udp_tunnel_read', { enabled: true, mask });
  }

  /**
   * UDP-tunnel super-packets (Linux >= 6.16) can only be written to a TAP (the kernel expects an
   * Ethernet header before the outer IP header): open one next to the TUN, a queue per worker, with
   * the 24-byte vnet header, configure it as the TUN is (forwarding, rp_filter off, accept_local for
   * a local IPv4 outer source, no IPv6 link-local so the kernel sends nothing out of it, up), and
   * write a 2-segment probe. Needs TSO on the TUN (else no super-packets arrive to pass on). Any
   * refusal leaves this.tap unset: the workers then cut and wrap every segment themselves.
   */
  private async openTunnelTap(tunName: string, queues: number): Promise<void> {
    const { log } = this.o;
    const off = (reason: string, extra: Record<string, unknown> = {}): void => log.warn('tun_offload_udp_tunnel', { enabled: false, reason, ...extra });
    if ((this.offloads & (TUN_F_TSO4 | TUN_F_TSO6)) === 0) return off('no TSO on the TUN');
    const name = tunnelTapName(tunName);
    let set: TunQueueSet;
    try {
      set = openTunQueues(name, queues, {
        vnetHdr: true,
        tap: true,
        vnetHdrSize: VNET_TNL_HDR_LEN,
        offloads: TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_UDP_TUNNEL_GSO | TUN_F_UDP_TUNNEL_GSO_CSUM,
      });
    } catch (e) {
      return off(`opening the TAP ${name}: ${(e as Error).message}`);
    }
    try {
      await this.host!.configureTun({ name: set.name, routes: [], acceptLocal: this.o.acceptLocal });
      const mac = tapHwAddr(set.fds[0]!);
      const err = testUdpTunnelProbeErrno() ?? tunnelWriteProbe(set.fds[0]!, mac);
      if (err !== 0) {
        closeTunFds(set.fds);
        return off(`UDP-tunnel GSO write probe refused (errno ${err})`, { tap: set.name });
      }
      this.tap = { set, mac: Array.from(mac) };
      log.info('tun_offload_udp_tunnel', { enabled: true, tap: set.name, queues: set.fds.length });
    } catch (e) {
      // an optimisation that cannot be set up must not stop the front: it segments itself instead
      closeTunFds(set.fds);
      return off(`setting up the TAP ${set.name}: ${(e as Error).message}`);
    }
  }

  broadcast(msg: ToWorker): void {
    this.pool?.broadcast(msg);
  }

  /** Ask every worker for the flows of its flow table that match (bounded by query.limit each). */
  queryFlows(query: Omit<FlowQuery, 'type' | 'id'>, timeoutMs = 2000): Promise<FlowSnapshot[]> {
    if (!this.pool || !this.running) return Promise.resolve([]);
    return this.pool.queryFlows(query, timeoutMs);
  }

  /**
   * Hand a table (or role settings) to every worker and resolve once all applied it. When one
   * could not (refused, exited, no answer), every worker goes back to the previous one of that
   * type and this rejects: the caller counts a failed reload, and workers never run different
   * tables. If even going back fails the service stops (non-zero exit). Calls run one at a time.
   */
  apply(msg: ApplyMessage): Promise<void> {
    const pool = this.pool;
    if (!pool) return Promise.reject(new Error('service not started'));
    return pool.applyOrRevert(msg).catch((e: unknown) => {
      // Not reverted: some workers may run something else than the others; only a restart is safe.
      if (e instanceof ApplyFailure && !e.reverted && this.stopping === undefined) {
        this.fail('worker_apply_failed', `workers could not take the ${msg.type} nor go back: ${e.message}`, {});
      }
      throw e;
    });
  }

  /** Stop with teardown and exit 1, after logging why; /readyz says why meanwhile. */
  fail(event: string, reason: string, fields: Record<string, unknown>): void {
    if (this.failure !== undefined) return;
    this.failure = reason;
    this.o.log.error(event, { ...fields, reason, action: 'stopping (exit 1)' });
    void this.stop(1);
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
        // The admin server answers (/readyz 503 with the reason) until the host is torn down.
        if (this.host) {
          try {
            const errs = await this.host.teardown();
            if (errs.length > 0) log.warn('host_teardown_incomplete', { errors: errs.map((e) => e.message) });
          } catch (e) {
            log.warn('host_teardown_incomplete', { errors: [(e as Error).message] });
          }
          this.host.close();
        }
        if (this.failure !== undefined && this.admin) {
          // Stopping on its own: the admin server answers a little longer (/readyz 503 with the
          // reason, mslb_workers) so a health check or an operator sees why before the restart.
          await new Promise((r) => setTimeout(r, FAILURE_REPORT_MS));
        }
        await this.admin?.close().catch(() => undefined);
        log.info('service_stopped', { role: this.o.role, ...(this.failure !== undefined ? { reason: this.failure } : {}) });
      })();
    }
    return this.stopping.then(() => {
      if (exitCode >= 0) process.exit(exitCode);
    });
  }

  /**
   * SIGTERM/SIGINT drain and exit cleanly; SIGHUP calls onHup (reload), and is always handled
   * (Node's default for SIGHUP is to exit, leaving the host changes behind). An uncaught
   * exception or unhandled rejection tears down and exits 1; a teardown that hangs is cut short.
   */
  handleSignals(onHup?: () => void | Promise<unknown>): void {
    const { log } = this.o;
    const term = (sig: string) => {
      log.info('signal', { signal: sig });
      void this.stop(0);
    };
    process.on('SIGTERM', () => term('SIGTERM'));
    process.on('SIGINT', () => term('SIGINT'));
    process.on('SIGHUP', () => {
      log.info('signal', { signal: 'SIGHUP' });
      if (!onHup) return;
      try {
        void Promise.resolve(onHup()).catch((e: unknown) => log.error('reload_failed', { trigger: 'SIGHUP', error: errorText(e) }));
      } catch (e) {
        log.error('reload_failed', { trigger: 'SIGHUP', error: errorText(e) });
      }
    });
    const fatal = (kind: string, e: unknown) => {
      if (this.failure !== undefined || this.stopping !== undefined) {
        // Already going down (perhaps this is the teardown failing): exit now.
        log.error(kind, { error: errorText(e), action: 'exit 1' });
        process.exit(1);
      }
      setTimeout(() => process.exit(1), FATAL_TEARDOWN_MS).unref();
      this.fail(kind, e instanceof Error ? e.message : String(e), { error: errorText(e) });
    };
    process.on('uncaughtException', (e) => fatal('uncaught_exception', e));
    process.on('unhandledRejection', (e) => fatal('unhandled_rejection', e));
    const t = testFault();
    if (t) {
      setTimeout(() => {
        if (t.kind === 'uncaught') throw new Error('test fault: an uncaught exception');
        void Promise.reject(new Error('test fault: an unhandled rejection'));
      }, t.afterMs);
    }
  }
}

/**
 * The front's tunnel TAP is named after its TUN: the first 12 characters of the TUN's name + "tap"
 * (at most 15, the kernel's limit), e.g. mslbf0 -> mslbf0tap.
 */
export function tunnelTapName(tunName: string): string {
  return `${tunName.slice(0, 12)}tap`;
}

/** After a failure and its teardown, how long the admin server still answers before the exit. */
const FAILURE_REPORT_MS = 1000;

/** Longest a teardown after an uncaught error may take before the process exits anyway. */
const FATAL_TEARDOWN_MS = 10_000;

function errorText(e: unknown): string {
  return e instanceof Error ? (e.stack ?? e.message) : String(e);
}

/**
 * Tests raise an uncaught exception or an unhandled rejection on the main thread with
 * MSLB_TEST_FAULT=uncaught|rejection and MSLB_TEST_FAULT_AFTER_MS; honoured only when NODE_ENV=test.
 */
export function testFault(env: NodeJS.ProcessEnv = process.env): { kind: 'uncaught' | 'rejection'; afterMs: number } | undefined {
  if (env.NODE_ENV !== 'test') return undefined;
  const kind = env.MSLB_TEST_FAULT;
  const ms = Number(env.MSLB_TEST_FAULT_AFTER_MS);
  if ((kind !== 'uncaught' && kind !== 'rejection') || !Number.isFinite(ms) || ms < 0) return undefined;
  return { kind, afterMs: ms };
}

/**
 * Tests make the tunnel TAP's start-up probe fail with MSLB_TEST_UDP_TUNNEL_PROBE_ERRNO (an errno, as
 * an older kernel would refuse the write: the fallback path); honoured only when NODE_ENV=test.
 */
export function testUdpTunnelProbeErrno(env: NodeJS.ProcessEnv = process.env): number | undefined {
  if (env.NODE_ENV !== 'test') return undefined;
  const e = Number(env.MSLB_TEST_UDP_TUNNEL_PROBE_ERRNO);
  return env.MSLB_TEST_UDP_TUNNEL_PROBE_ERRNO && Number.isInteger(e) && e > 0 ? e : undefined;
}

/**
 * Tests make a worker die with MSLB_TEST_WORKER_EXIT_AFTER_MS (and MSLB_TEST_WORKER_EXIT_QUEUE,
 * default 0); honoured only when NODE_ENV=test, so a production environment cannot trip it.
 */
export function testWorkerExit(env: NodeJS.ProcessEnv = process.env): { queue: number; afterMs: number } | undefined {
  if (env.NODE_ENV !== 'test') return undefined;
  const ms = Number(env.MSLB_TEST_WORKER_EXIT_AFTER_MS);
  if (!env.MSLB_TEST_WORKER_EXIT_AFTER_MS || !Number.isFinite(ms) || ms < 0) return undefined;
  const queue = Number(env.MSLB_TEST_WORKER_EXIT_QUEUE ?? 0);
  return { queue: Number.isInteger(queue) && queue >= 0 ? queue : 0, afterMs: ms };
}

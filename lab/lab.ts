// The lab as one object: topology + servers + (unless kernel-only) mslb-front and two mslb-backs
// started from deploy/lab configs, with client traffic, captures and metrics a call each.
//   const lab = await Lab.start({ mode: 'translate' });
//   const r = await lab.curl('c1v6');            // r.server === 'server1'
//   const cap = await lab.capture('server1-link'); ...; const sum = await cap.stop();
//   await lab.metric('front', 'mslb_drops_total', { reason: 'no_route' });
//   await lab.stop();
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { parse as parseYaml } from 'yaml';
import { expectedServer, type ClientName, type Family, type ServerName } from './address-plan.js';
import { Capture, type CaptureOptions } from './capture.js';
import { curl, opensslHandshake, sendRaw, udp, type ClientOptions, type ClientResult } from './clients.js';
import { keepLogTail, stopServiceProcess, waitServiceReady } from './service-process.js';
import { distFile, repoRoot } from './paths.js';
import { startServers } from './servers.js';
import { Topology, type LinkName } from './topology.js';
import type { TopologyVariant } from './topology-variants.js';

export type LabMode = 'kernel-only' | 'translate' | 'encap' | 'encap-mixed';
export type ServiceName = 'front' | 'back1' | 'back2' | 'front2';

/** deploy/lab config per front mode. */
export const FRONT_CONFIGS: Record<Exclude<LabMode, 'kernel-only'>, string> = {
  translate: 'deploy/lab/front-translate.yaml',
  encap: 'deploy/lab/front-encap.yaml',
  'encap-mixed': 'deploy/lab/front-encap-mixed.yaml',
};
export const BACK_CONFIGS: Record<'back1' | 'back2', string> = {
  back1: 'deploy/lab/back1.yaml',
  back2: 'deploy/lab/back2.yaml',
};

export interface LabOptions {
  /** Default 'translate'. 'kernel-only' starts no service and routes S at the front via back1. */
  mode?: LabMode;
  families?: Family[];
  /** Topology variant (lab/topology-variants.ts); default 'basic'. */
  variant?: TopologyVariant;
  /** Front config to use instead of the mode's (absolute or relative to the repository). */
  frontConfig?: string;
  /** Back configs to use instead of deploy/lab's. */
  backConfigs?: Partial<Record<'back1' | 'back2', string>>;
  /** Start the backs (default true unless kernel-only). */
  backs?: boolean;
  /** Bound for each service's /readyz (default 15 s). */
  readyTimeoutMs?: number;
  /**
   * Command every service is started through (e.g. setpriv dropping to an unprivileged user):
   * `[...wrapper, node, entry, '--config', FILE]`. startService's own `wrapper` wins.
   */
  wrapper?: string[];
}

interface Service {
  name: ServiceName;
  ns: string;
  config: string;
  admin: { host: string; port: number };
  proc: ChildProcess;
  log: string[];
}

/** `[::1]:9101` or `127.0.0.1:9101` or `:9101` -> host and port (all addresses -> the loopback to reach it). */
export function parseListen(listen: string): { host: string; port: number } {
  const m = /^\[?([^\]]*?)\]?:(\d+)$/.exec(listen.trim());
  if (!m) throw new Error(`cannot parse admin.listen "${listen}"`);
  const host = m[1] === '::' ? '::1' : m[1] === '0.0.0.0' ? '127.0.0.1' : m[1];
  return { host: host || '::1', port: Number(m[2]) };
}

/** Sum of the samples of `name` whose labels include `labels` (Prometheus text format). */
export function sumMetric(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  let found = false;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const have: Record<string, string> = {};
    for (const lm of (m[3] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) have[lm[1]!] = lm[2]!;
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) {
      sum += Number(m[4]);
      found = true;
    }
  }
  return found ? sum : NaN;
}

export class Lab {
  readonly workDir: string;
  private readonly services = new Map<ServiceName, Service>();
  private stopped = false;

  private constructor(
    readonly topo: Topology,
    readonly mode: LabMode,
    private readonly opts: LabOptions,
  ) {
    this.workDir = mkdtempSync(join(tmpdir(), `mslb-lab-${topo.tag}-`));
  }

  get set() {
    return this.topo.set;
  }
  get ns() {
    return this.topo.ns;
  }

  /** Build everything; on failure everything built so far is removed and the error rethrown. */
  static async start(opts: LabOptions = {}): Promise<Lab> {
    const mode = opts.mode ?? 'translate';
    const topo = Topology.build({ families: opts.families, kernelOnly: mode === 'kernel-only', variant: opts.variant });
    const lab = new Lab(topo, mode, opts);
    try {
      await startServers(topo, lab.workDir);
      if (mode !== 'kernel-only') {
        if (opts.backs ?? true) {
          await Promise.all((['back1', 'back2'] as const).map((b) => lab.startService(b, opts.backConfigs?.[b] ?? BACK_CONFIGS[b])));
        }
        await lab.startService('front', opts.frontConfig ?? FRONT_CONFIGS[mode]);
      }
    } catch (e) {
      const logs = [...lab.services.values()].map((s) => `--- ${s.name} log:\n${s.log.join('').slice(-2000)}`).join('\n');
      await lab.stop();
      throw new Error(`${(e as Error).message}${logs ? `\n${logs}` : ''}`);
    }
    return lab;
  }

  /** Which server `client` should land on: by the deploy/lab table, or server1 in kernel-only mode. */
  expectedServer(client: ClientName): ServerName {
    return this.mode === 'kernel-only' ? 'server1' : expectedServer(client);
  }

  /**
   * Start a service (`node dist/<front|back>/main.js --config FILE`) in its namespace; wait for /readyz.
   * `main` replaces the entry script (tests of the harness use a stand-in); `wrapper` is a command
   * prefix the service runs through (default LabOptions.wrapper).
   */
  async startService(name: ServiceName, config: string, main?: string, wrapper?: string[]): Promise<void> {
    if (this.services.has(name)) throw new Error(`${name} already running`);
    const path = config.startsWith('/') ? config : join(repoRoot(), config);
    const cfg = parseYaml(readFileSync(path, 'utf8')) as { admin?: { listen?: string } };
    const admin = parseListen(cfg.admin?.listen ?? '[::1]:9100');
    const ns = this.topo.ns[name];
    const entry = main ?? distFile(name.startsWith('front') ? 'front/main.js' : 'back/main.js');
    const wrap = wrapper ?? this.opts.wrapper ?? [];
    const argv = [...wrap, process.execPath, entry, '--config', path];
    const proc = this.set.spawn(ns, argv[0]!, argv.slice(1));
    const log = keepLogTail(proc, 400);
    const svc: Service = { name, ns, config: path, admin, proc, log };
    this.services.set(name, svc);
    const timeoutMs = this.opts.readyTimeoutMs ?? 15_000;
    await waitServiceReady(name, proc, async () => {
      const r = await this.adminGet(name, '/readyz', 2000);
      return r.code === 0 && r.status === 200;
    }, timeoutMs);
  }

  /** SIGTERM a service and wait (bounded) for it to exit; SIGKILL after graceMs. */
  async stopService(name: ServiceName, graceMs = 5000): Promise<number | null> {
    const s = this.services.get(name);
    if (!s) return null;
    this.services.delete(name);
    return stopServiceProcess(s.proc, graceMs);
  }

  /** Replace the front: stop it and start it with the config of `mode` (or a config path). */
  async restartFront(modeOrConfig: Exclude<LabMode, 'kernel-only'> | string): Promise<void> {
    await this.stopService('front');
    const cfg = modeOrConfig in FRONT_CONFIGS ? FRONT_CONFIGS[modeOrConfig as keyof typeof FRONT_CONFIGS] : modeOrConfig;
    await this.startService('front', cfg);
  }

  /** The service's recent stdout+stderr (JSON-lines logs). */
  serviceLog(name: ServiceName): string {
    return this.services.get(name)?.log.join('') ?? '';
  }

  serviceProcess(name: ServiceName): ChildProcess | undefined {
    return this.services.get(name)?.proc;
  }

  /** GET an admin path inside the service's namespace. code = curl's exit code. */
  async adminGet(name: ServiceName, path: string, timeoutMs = 5000): Promise<{ code: number; status: number; body: string }> {
    const s = this.services.get(name);
    if (!s) throw new Error(`${name} is not running`);
    const host = s.admin.host.includes(':') ? `[${s.admin.host}]` : s.admin.host;
    const r = await this.set.run(
      s.ns,
      'curl',
      ['-s', '--max-time', String(timeoutMs / 1000), '-w', '\n%{http_code}', `http://${host}:${s.admin.port}${path}`],
      { timeoutMs: timeoutMs + 2000 },
    );
    const i = r.stdout.lastIndexOf('\n');
    return { code: r.code, status: Number(r.stdout.slice(i + 1)) || 0, body: r.stdout.slice(0, Math.max(i, 0)) };
  }

  /** /metrics of a service, as text. */
  async metrics(name: ServiceName): Promise<string> {
    const r = await this.adminGet(name, '/metrics');
    if (r.code !== 0 || r.status !== 200) throw new Error(`${name} /metrics: curl ${r.code}, HTTP ${r.status}`);
    return r.body;
  }

  /** Sum of a metric's samples matching `labels` (NaN when the series does not exist). */
  async metric(name: ServiceName, metric: string, labels: Record<string, string> = {}): Promise<number> {
    return sumMetric(await this.metrics(name), metric, labels);
  }

  curl(client: ClientName, opts: ClientOptions & { tls?: boolean } = {}): Promise<ClientResult> {
    return curl(this.set, this.ns.client, client, opts);
  }
  /** HTTPS through curl (a real TLS handshake). */
  https(client: ClientName, opts: ClientOptions = {}): Promise<ClientResult> {
    return curl(this.set, this.ns.client, client, { ...opts, tls: true });
  }
  /** openssl s_client against openssl s_server -www; server = the certificate's CN. */
  tls(client: ClientName, opts: ClientOptions = {}): Promise<ClientResult> {
    return opensslHandshake(this.set, this.ns.client, client, opts);
  }
  udp(client: ClientName, opts: ClientOptions & { size?: number } = {}): Promise<ClientResult> {
    return udp(this.set, this.ns.client, client, opts);
  }
  sendRaw(client: ClientName, opts: Parameters<typeof sendRaw>[3] = {}): Promise<Uint8Array[]> {
    return sendRaw(this.set, this.ns.client, client, opts);
  }

  /** Start a capture on the server-side end of a link (tx checksum offload off on both ends by default). */
  capture(link: LinkName, opts: Partial<CaptureOptions> = {}): Promise<Capture> {
    return Capture.start(this.set, this.topo.linkOf(link), link, { dir: this.workDir, ...opts });
  }

  /** Stop services (SIGTERM, bounded), kill everything else, delete namespaces and the work dir. Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const name of ['front', 'front2', 'back1', 'back2'] as const) {
      try {
        await this.stopService(name);
      } catch {
        /* cleanup below kills it */
      }
    }
    await this.topo.cleanup();
    rmSync(this.workDir, { recursive: true, force: true });
  }
}

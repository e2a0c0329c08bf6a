// The scale-out lab (deploy/README.md "Scale-out"): two mslb-fronts behind a router's ECMP route,
// the way Maglev/Katran deployments grow, with a real routing daemon.
//
//   client --- router ---+--- front1   (BIRD: announces S over BGP while its front is ready)
//                        +--- front2   (same config, same table)
//                        +--- back1 --- server1
//                        +--- back2 --- server2
//
// The router runs BIRD (deploy/bird/router.conf) and installs ONE kernel route to S with a next hop per
// front that announces it; L4 multipath hashing (fib_multipath_hash_policy=1) spreads flows over
// the fronts. Each front host runs BIRD (deploy/bird/front.conf) and mslb-bird-watch.sh, which
// enables the BIRD protocols holding S while /readyz says ready and disables them (withdraw) when not.
// Fronts are one-armed: they receive S from the router and send the translated packet (dst B) back
// to it; backs forward to their server; servers answer the client directly via back and router.
// Services run from dist/ with deploy/lab configs (front-translate.yaml for both fronts, back1/2.yaml).
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { parse as parseYaml } from 'yaml';
import { BACKS, CLIENTS, CLIENT_NAMES, LINKS, S4, S6, expectedServer, type ClientName, type Family } from './address-plan.js';
import { parseListen, sumMetric } from './lab.js';
import { NetnsSet, waitFor, waitForOutput } from './netns.js';
import { distFile, repoRoot } from './paths.js';
import { keepLogTail, stopServiceProcess, waitServiceReady } from './service-process.js';
import type { TransferResult } from './scaleout-transfer.js';

export type FrontName = 'front1' | 'front2';
export const FRONT_NAMES: FrontName[] = ['front1', 'front2'];
type BackName = 'back1' | 'back2';
type ServiceName = FrontName | BackName;

/** Links of the scale-out lab: [router side, far side] (client link: [client, router]). */
export const SCALEOUT_LINKS = {
  client: LINKS.client,
  front1: { v6: ['2001:db8:f1::1', '2001:db8:f1::2'], v4: ['203.0.113.153', '203.0.113.154'] },
  front2: { v6: ['2001:db8:f2::1', '2001:db8:f2::2'], v4: ['203.0.113.157', '203.0.113.158'] },
  back1: LINKS.back1,
  back2: LINKS.back2,
  server1: LINKS.server1,
  server2: LINKS.server2,
} as const;
export const ROUTER_AS = 65000;
export const FRONT_AS = 65010;
export const ROUTER_ID = '203.0.113.129';
export const TRANSFER_PORT = 8080;

const FRONT_CONFIG = 'deploy/lab/front-translate.yaml';
const BACK_CONFIGS: Record<BackName, string> = { back1: 'deploy/lab/back1.yaml', back2: 'deploy/lab/back2.yaml' };

export interface ScaleoutOptions {
  /** Watcher poll interval in seconds (default 0.2). */
  watchIntervalS?: number;
  /** Bound for each wait (services ready, BGP routes in place); default 30 s. */
  timeoutMs?: number;
  /** Payload per transfer connection and how long the server spreads it over. */
  transferBytes?: number;
  transferDurationMs?: number;
}

interface Service {
  name: ServiceName;
  proc: ChildProcess;
  admin: { host: string; port: number };
  log: string[];
}

export interface TransferRun {
  /** Resolves once every connection received its server's name line (all established). */
  established: Promise<void>;
  /** Every connection's outcome. */
  results: Promise<TransferResult[]>;
}

export interface Nexthop {
  gateway: string;
  dev: string;
}

export class ScaleoutLab {
  readonly set = new NetnsSet();
  readonly ns: Record<string, string> = {};
  readonly workDir: string;
  private readonly services = new Map<ServiceName, Service>();
  private readonly watchers = new Map<FrontName, { proc: ChildProcess; log: string[] }>();
  private readonly timeoutMs: number;
  private stopped = false;

  private constructor(readonly opts: ScaleoutOptions) {
    this.workDir = mkdtempSync(join(tmpdir(), `mslb-scaleout-${this.set.tag}-`));
    this.timeoutMs = opts.timeoutMs ?? 30_000;
  }

  /** Build everything and wait until the router has an ECMP route to S over both fronts. */
  static async start(opts: ScaleoutOptions = {}): Promise<ScaleoutLab> {
    const lab = new ScaleoutLab(opts);
    try {
      lab.buildNetwork();
      await lab.startServers();
      await Promise.all((['back1', 'back2'] as const).map((b) => lab.startService(b)));
      lab.startBird('router', lab.routerBirdDir());
      for (const f of FRONT_NAMES) {
        lab.startBird(f, lab.frontBirdDir(f));
        await lab.startService(f);
        lab.startWatcher(f);
      }
      await lab.waitNexthops(2);
    } catch (e) {
      const logs = [...lab.services.values()].map((s) => `--- ${s.name}:\n${s.log.join('').slice(-1500)}`).join('\n');
      await lab.stop();
      throw new Error(`${(e as Error).message}${logs ? `\n${logs}` : ''}`);
    }
    return lab;
  }

  // ---------------------------------------------------------------- network

  private addNamespace(role: string, router: boolean): string {
    const ns = this.set.add(role);
    this.ns[role] = ns;
    this.set.sysctl(ns, 'net.ipv6.conf.all.accept_dad', 0);
    this.set.sysctl(ns, 'net.ipv6.conf.default.accept_dad', 0);
    this.set.sysctl(ns, 'net.ipv4.conf.all.rp_filter', 0);
    this.set.sysctl(ns, 'net.ipv4.conf.default.rp_filter', 0);
    if (router) {
      this.set.sysctl(ns, 'net.ipv4.ip_forward', 1);
      this.set.sysctl(ns, 'net.ipv6.conf.all.forwarding', 1);
    }
    return ns;
  }

  private link(a: string, ifA: string, b: string, ifB: string, addrs: { v6: readonly string[]; v4: readonly string[] }): void {
    this.set.veth(a, ifA, b, ifB);
    this.set.ip(a, `addr add ${addrs.v6[0]}/64 dev ${ifA} nodad`);
    this.set.ip(b, `addr add ${addrs.v6[1]}/64 dev ${ifB} nodad`);
    this.set.ip(a, `addr add ${addrs.v4[0]}/30 dev ${ifA}`);
    this.set.ip(b, `addr add ${addrs.v4[1]}/30 dev ${ifB}`);
  }

  private buildNetwork(): void {
    const L = SCALEOUT_LINKS;
    const client = this.addNamespace('client', false);
    const router = this.addNamespace('router', true);
    // L4 (5-tuple) multipath hashing: flows, not just client addresses, spread over the fronts.
    this.set.sysctl(router, 'net.ipv4.fib_multipath_hash_policy', 1);
    this.set.sysctl(router, 'net.ipv6.fib_multipath_hash_policy', 1);
    for (const f of FRONT_NAMES) this.addNamespace(f, true);
    for (const b of ['back1', 'back2'] as const) this.addNamespace(b, true);
    for (const s of ['server1', 'server2']) this.addNamespace(s, false);

    this.link(client, 'eth-router', router, 'eth-client', L.client);
    for (const f of FRONT_NAMES) this.link(router, `eth-${f}`, this.ns[f]!, 'eth-router', L[f]);
    for (const b of ['back1', 'back2'] as const) {
      this.link(router, `eth-${b}`, this.ns[b]!, 'eth-router', L[b]);
      const srv = BACKS[b].server;
      this.link(this.ns[b]!, 'eth-server', this.ns[srv]!, 'eth-back', L[srv]);
    }

    // Client: its addresses on lo, everything via the router.
    for (const c of CLIENT_NAMES) {
      const { address, family } = CLIENTS[c];
      this.set.ip(client, `addr add ${address}/${family === 'ipv6' ? 128 : 32} dev lo`);
    }
    this.set.ip(client, `-6 route add default via ${L.client.v6[1]}`);
    this.set.ip(client, `route add default via ${L.client.v4[1]}`);

    // Router: clients back over the client link, each B over its back's link; S comes from BIRD.
    for (const c of CLIENT_NAMES) {
      const { prefix, family } = CLIENTS[c];
      this.set.ip(router, `route add ${prefix} via ${family === 'ipv6' ? L.client.v6[0] : L.client.v4[0]}`);
    }
    for (const b of ['back1', 'back2'] as const) {
      this.set.ip(router, `route add ${BACKS[b].v6}/128 via ${L[b].v6[1]}`);
      this.set.ip(router, `route add ${BACKS[b].v4}/32 via ${L[b].v4[1]}`);
    }

    // Fronts: one-armed, default via the router (S is routed into the TUN by mslb-front itself).
    for (const f of FRONT_NAMES) {
      const ns = this.ns[f]!;
      this.set.ip(ns, `-6 route add default via ${L[f].v6[0]}`);
      this.set.ip(ns, `route add default via ${L[f].v4[0]}`);
      // Independent count of connections per front: TCP SYNs arriving from the router.
      this.set.exec(ns, 'nft', ['-f', '-'], {
        input:
          'table inet mslbcount {\n chain pre {\n  type filter hook prerouting priority 0;\n' +
          '  iifname "eth-router" tcp flags & (syn | ack) == syn counter\n }\n}\n',
      });
    }

    // Backs: default via the router (return traffic to clients), S via their server.
    for (const b of ['back1', 'back2'] as const) {
      const ns = this.ns[b]!;
      const srv = BACKS[b].server;
      this.set.ip(ns, `-6 route add default via ${L[b].v6[0]}`);
      this.set.ip(ns, `route add default via ${L[b].v4[0]}`);
      this.set.ip(ns, `route add ${S6}/128 via ${L[srv].v6[1]}`);
      this.set.ip(ns, `route add ${S4}/32 via ${L[srv].v4[1]}`);
    }

    // Servers: S co-addressed on lo, default via their back.
    for (const srv of ['server1', 'server2'] as const) {
      const ns = this.ns[srv]!;
      this.set.ip(ns, `addr add ${S6}/128 dev lo`);
      this.set.ip(ns, `addr add ${S4}/32 dev lo`);
      this.set.ip(ns, `-6 route add default via ${L[srv].v6[0]}`);
      this.set.ip(ns, `route add default via ${L[srv].v4[0]}`);
    }
  }

  // ---------------------------------------------------------------- processes

  private async startServers(): Promise<void> {
    const script = distFile('lab/scaleout-transfer.js');
    const waits = (['server1', 'server2'] as const).map((srv) => {
      const p = this.set.spawn(this.ns[srv]!, process.execPath, [
        script, 'server', '--name', srv, '--addr', S6, '--addr', S4, '--port', String(TRANSFER_PORT),
        '--bytes', String(this.opts.transferBytes ?? 1 << 20), '--duration-ms', String(this.opts.transferDurationMs ?? 5000),
      ]);
      return waitForOutput(p, /^ready$/m, this.timeoutMs, `${srv} transfer server`);
    });
    await Promise.all(waits);
  }

  /** Start mslb-front (front1/front2: the same config) or mslb-back in its namespace; wait for /readyz. */
  async startService(name: ServiceName): Promise<void> {
    if (this.services.has(name)) throw new Error(`${name} already running`);
    const isFront = name === 'front1' || name === 'front2';
    const config = join(repoRoot(), isFront ? FRONT_CONFIG : BACK_CONFIGS[name as BackName]);
    const cfg = parseYaml(readFileSync(config, 'utf8')) as { admin?: { listen?: string } };
    const admin = parseListen(cfg.admin?.listen ?? '[::1]:9100');
    const entry = distFile(isFront ? 'front/main.js' : 'back/main.js');
    const proc = this.set.spawn(this.ns[name]!, process.execPath, [entry, '--config', config]);
    const log = keepLogTail(proc, 300);
    this.services.set(name, { name, proc, admin, log });
    await waitServiceReady(name, proc, async () => {
      const r = await this.adminGet(name, '/readyz', 2000);
      return r.code === 0 && r.status === 200;
    }, this.timeoutMs);
  }

  /** SIGTERM a service, wait (bounded) for it to exit; returns its exit code. */
  async stopService(name: ServiceName, graceMs = 5000): Promise<number | null> {
    const s = this.services.get(name);
    if (!s) return null;
    this.services.delete(name);
    return stopServiceProcess(s.proc, graceMs);
  }

  serviceLog(name: ServiceName): string {
    return this.services.get(name)?.log.join('') ?? '';
  }

  watcherLog(name: FrontName): string {
    return this.watchers.get(name)?.log.join('') ?? '';
  }

  private birdSocket(role: string): string {
    return join(this.workDir, role, 'bird.ctl');
  }

  /** deploy/bird/router.conf with the lab's site values and the two fronts as peers. */
  private routerBirdDir(): string {
    const dir = join(this.workDir, 'router');
    mkdirSync(dir, { recursive: true });
    copyFileSync(join(repoRoot(), 'deploy/bird/router.conf'), join(dir, 'bird.conf'));
    writeFileSync(
      join(dir, 'router-site.conf'),
      `define ROUTER_ID = ${ROUTER_ID};\ndefine ROUTER_AS = ${ROUTER_AS};\n` +
        `define SERVICES6 = [ ${S6}/128 ];\ndefine SERVICES4 = [ ${S4}/32 ];\n`,
    );
    const peers = FRONT_NAMES.flatMap((f) => [
      `protocol bgp ${f}_6 from mslb_front6 { neighbor ${SCALEOUT_LINKS[f].v6[1]} as ${FRONT_AS}; }`,
      `protocol bgp ${f}_4 from mslb_front4 { neighbor ${SCALEOUT_LINKS[f].v4[1]} as ${FRONT_AS}; }`,
    ]);
    writeFileSync(join(dir, 'router-peers.conf'), `${peers.join('\n')}\n`);
    return dir;
  }

  /** deploy/bird/front.conf with this front's site values. */
  private frontBirdDir(f: FrontName): string {
    const dir = join(this.workDir, f);
    mkdirSync(dir, { recursive: true });
    copyFileSync(join(repoRoot(), 'deploy/bird/front.conf'), join(dir, 'bird.conf'));
    const L = SCALEOUT_LINKS[f];
    writeFileSync(
      join(dir, 'front-site.conf'),
      `define ROUTER_ID = ${L.v4[1]};\ndefine LOCAL_AS = ${FRONT_AS};\ndefine ROUTER_AS = ${ROUTER_AS};\n` +
        `define ROUTER6 = ${L.v6[0]};\ndefine ROUTER4 = ${L.v4[0]};\n` +
        `define SERVICE6 = ${S6}/128;\ndefine SERVICE4 = ${S4}/32;\n`,
    );
    return dir;
  }

  private startBird(role: string, dir: string): void {
    const p = this.set.spawn(this.ns[role]!, 'bird', ['-f', '-c', join(dir, 'bird.conf'), '-s', this.birdSocket(role), '-P', join(dir, 'bird.pid')]);
    p.stderr?.on('data', (d: Buffer) => this.birdErrors.push(`${role}: ${d.toString()}`));
  }
  readonly birdErrors: string[] = [];

  /** deploy/bird/mslb-bird-watch.sh for a front (polls its /readyz, drives its BIRD). */
  private startWatcher(f: FrontName): void {
    const interval = String(this.opts.watchIntervalS ?? 0.2);
    const p = this.set.spawn(this.ns[f]!, 'sh', [
      join(repoRoot(), 'deploy/bird/mslb-bird-watch.sh'), '-u', 'http://[::1]:9101/readyz', '-s', this.birdSocket(f), '-i', interval, '-r', '1', '-f', '1',
    ]);
    const log: string[] = [];
    p.stdout?.on('data', (d: Buffer) => log.push(d.toString()));
    p.stderr?.on('data', (d: Buffer) => log.push(d.toString()));
    this.watchers.set(f, { proc: p, log });
  }

  /** `birdc` against one namespace's BIRD. */
  birdc(role: string, ...args: string[]): string {
    return this.set.exec(this.ns[role]!, 'birdc', ['-s', this.birdSocket(role), ...args]);
  }

  // ---------------------------------------------------------------- observation

  /** The router's kernel next hops for S of `family` (empty when there is no route). */
  nexthops(family: Family): Nexthop[] {
    const s = family === 'ipv6' ? `${S6}/128` : `${S4}/32`;
    const out = this.set.exec(this.ns.router!, 'ip', ['-j', family === 'ipv6' ? '-6' : '-4', 'route', 'show', s]);
    const routes = JSON.parse(out || '[]') as { gateway?: string; dev?: string; nexthops?: { gateway: string; dev: string }[] }[];
    const r = routes[0];
    if (!r) return [];
    if (r.nexthops) return r.nexthops.map((n) => ({ gateway: n.gateway, dev: n.dev }));
    return r.gateway && r.dev ? [{ gateway: r.gateway, dev: r.dev }] : [];
  }

  /** Fronts the router's S routes (both families) point to now. */
  routedFronts(family: Family): FrontName[] {
    return this.nexthops(family)
      .map((n) => n.dev.replace(/^eth-/, '') as FrontName)
      .sort();
  }

  /** Wait until both families' routes to S have `n` next hops (bounded). */
  async waitNexthops(n: number, timeoutMs = this.timeoutMs): Promise<void> {
    await waitFor(() => this.nexthops('ipv6').length === n && this.nexthops('ipv4').length === n, timeoutMs, `router ECMP route to S with ${n} next hops`);
  }

  async adminGet(name: ServiceName, path: string, timeoutMs = 5000): Promise<{ code: number; status: number; body: string }> {
    const s = this.services.get(name);
    if (!s) throw new Error(`${name} is not running`);
    const host = s.admin.host.includes(':') ? `[${s.admin.host}]` : s.admin.host;
    const r = await this.set.run(this.ns[name]!, 'curl', ['-s', '--max-time', String(timeoutMs / 1000), '-w', '\n%{http_code}', `http://${host}:${s.admin.port}${path}`], {
      timeoutMs: timeoutMs + 2000,
    });
    const i = r.stdout.lastIndexOf('\n');
    return { code: r.code, status: Number(r.stdout.slice(i + 1)) || 0, body: r.stdout.slice(0, Math.max(i, 0)) };
  }

  async metric(name: ServiceName, metric: string, labels: Record<string, string> = {}): Promise<number> {
    const r = await this.adminGet(name, '/metrics');
    if (r.code !== 0 || r.status !== 200) throw new Error(`${name} /metrics: curl ${r.code}, HTTP ${r.status}`);
    return sumMetric(r.body, metric, labels);
  }

  /** TCP SYNs the front's host received from the router (nftables counter, independent of mslb). */
  synCount(f: FrontName): number {
    const out = this.set.exec(this.ns[f]!, 'nft', ['-j', 'list', 'table', 'inet', 'mslbcount']);
    const items = (JSON.parse(out) as { nftables: { rule?: { expr: { counter?: { packets: number } }[] } }[] }).nftables;
    let n = 0;
    for (const it of items) for (const e of it.rule?.expr ?? []) if (e.counter) n += e.counter.packets;
    return n;
  }

  // ---------------------------------------------------------------- traffic

  /** `perClient` transfers from each client address to S of its family, all at once. */
  transfers(perClient: number, clients: readonly ClientName[] = CLIENT_NAMES, timeoutMs = 60_000): TransferRun {
    const conns: string[] = [];
    for (let i = 0; i < perClient; i++) {
      for (const c of clients) conns.push('--conn', `${CLIENTS[c].address},${CLIENTS[c].family === 'ipv6' ? S6 : S4}`);
    }
    const p = this.set.spawn(this.ns.client!, process.execPath, [
      distFile('lab/scaleout-transfer.js'), 'client', '--port', String(TRANSFER_PORT),
      '--bytes', String(this.opts.transferBytes ?? 1 << 20), '--timeout-ms', String(timeoutMs), ...conns,
    ]);
    let out = '';
    let err = '';
    p.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    const established = waitForOutput(p, /^established \d+$/m, timeoutMs, 'transfer client').then(() => undefined);
    const results = new Promise<TransferResult[]>((resolve, reject) => {
      p.once('exit', () => {
        const line = out.split('\n').find((l) => l.startsWith('{'));
        if (!line) return reject(new Error(`transfer client gave no result: ${out.slice(-500)} ${err.slice(-500)}`));
        resolve((JSON.parse(line) as { results: TransferResult[] }).results);
      });
    });
    // A failure to establish must not leave an unhandled rejection if the caller awaits results first.
    established.catch(() => undefined);
    return { established, results };
  }

  /** Which server a client address should reach by the deploy/lab table. */
  static expectedServerOf(src: string): string {
    const c = CLIENT_NAMES.find((n) => CLIENTS[n].address === src);
    if (!c) throw new Error(`unknown client address ${src}`);
    return expectedServer(c);
  }

  // ---------------------------------------------------------------- teardown

  /** Stop services (SIGTERM, bounded), then kill BIRD, watchers, servers and delete namespaces. Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const name of [...this.services.keys()]) {
      try {
        await this.stopService(name);
      } catch {
        /* cleanup below kills it */
      }
    }
    await this.set.cleanup();
    rmSync(this.workDir, { recursive: true, force: true });
  }
}

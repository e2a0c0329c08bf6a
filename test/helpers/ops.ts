// Helpers for the operations e2e tests (test/e2e/ops-*.test.ts): config files in a temp dir, a
// steady UDP stream counted end to end, curl from any client source address, stopping and starting
// a lab server process, waiting on a metric. Everything bounded.
import { execFileSync, type ChildProcess } from 'node:child_process';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hostPart, PORTS, S4, S6, type ServerName } from '../../lab/address-plan.js';
import { distFile, PYTHON } from '../../lab/paths.js';
import { waitForOutput } from '../../lab/netns.js';
import type { Lab, ServiceName } from '../../lab/lab.js';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Poll `pred` every `everyMs` until true; throws after timeoutMs. Returns the elapsed ms. */
export async function until(pred: () => boolean | Promise<boolean>, timeoutMs: number, what: string, everyMs = 50): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    if (await pred()) return Date.now() - t0;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Replace a file the way editors do: write a temp file beside it, rename it over. */
export function writeByRename(file: string, text: string): void {
  const tmp = join(file, '..', `.${file.split('/').pop()}.${process.pid}.tmp`);
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

/** curl http://[S]/ from `src` (a client address in the client namespace); server = who answered. */
export async function curlFrom(lab: Lab, src: string, timeoutMs = 3000): Promise<{ ok: boolean; server?: string; detail: string }> {
  const dst = src.includes(':') ? S6 : S4;
  const r = await lab.set.run(lab.ns.client, 'curl', ['-sS', '--max-time', String(timeoutMs / 1000), '--interface', src, `http://${hostPart(dst)}:${PORTS.http}/`], { timeoutMs: timeoutMs + 2000 });
  if (r.code !== 0) return { ok: false, detail: `curl exit ${r.code}: ${r.stderr.trim()}` };
  return { ok: true, server: r.stdout.split('\n')[0], detail: r.stdout.trim() };
}

/** Add client source addresses (on lo of the client namespace); they are inside the plan's client prefixes. */
export function addClientAddresses(lab: Lab, addrs: string[]): void {
  for (const a of addrs) lab.set.ip(lab.ns.client, `addr add ${a}/${a.includes(':') ? 128 : 32} dev lo`);
}

const STREAM = `
import json, os, select, socket, sys, time
src, dst, port, rate, maxs, stopfile = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), sys.argv[6]
s = socket.socket(socket.AF_INET6 if ':' in dst else socket.AF_INET, socket.SOCK_DGRAM)
s.bind((src, 0)); s.connect((dst, port)); s.setblocking(False)
sent = recv = errors = 0
servers = {}
gap = 1.0 / rate
t0 = time.monotonic(); nxt = t0; last = None; maxgap = 0.0; stopped = None
def drain():
    global recv, errors, last, maxgap
    while True:
        try:
            d = s.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            errors += 1
            continue
        now = time.monotonic()
        if last is not None and now - last > maxgap: maxgap = now - last
        last = now
        recv += 1
        name = d.split(b'\\n')[0].decode()
        servers[name] = servers.get(name, 0) + 1
print('started', flush=True)
while True:
    now = time.monotonic()
    if stopped is None and (now - t0 > maxs or os.path.exists(stopfile)): stopped = now
    if stopped is not None and now - stopped > 1.0: break
    if stopped is None and now >= nxt:
        try:
            s.send(b'%d' % sent)
        except OSError:
            errors += 1
        sent += 1
        nxt += gap
    r, _, _ = select.select([s], [], [], 0.05 if stopped is not None else max(0.0, min(0.05, nxt - time.monotonic())))
    if r: drain()
print(json.dumps({'sent': sent, 'received': recv, 'errors': errors, 'servers': servers, 'maxGapMs': round(maxgap * 1000), 'seconds': round(time.monotonic() - t0, 2)}), flush=True)
`;

export interface StreamResult {
  sent: number;
  received: number;
  errors: number;
  servers: Record<string, number>;
  /** Longest time without an answer while the stream ran. */
  maxGapMs: number;
  seconds: number;
}

/** A steady UDP stream from `src` to S:7 (the lab's echo), counted end to end; stop() returns the counts. */
export class UdpStream {
  private out = '';
  private constructor(
    private readonly proc: ChildProcess,
    private readonly stopFile: string,
  ) {
    proc.stdout?.on('data', (d: Buffer) => (this.out += d.toString()));
  }

  static async start(lab: Lab, src: string, opts: { rate?: number; maxSeconds?: number } = {}): Promise<UdpStream> {
    const dst = src.includes(':') ? S6 : S4;
    const stopFile = join(lab.workDir, `stream-${src.replace(/[:.]/g, '_')}-${Date.now()}.stop`);
    const p = lab.set.spawn(lab.ns.client, PYTHON, ['-c', STREAM, src, dst, String(PORTS.udpEcho), String(opts.rate ?? 100), String(opts.maxSeconds ?? 120), stopFile]);
    const s = new UdpStream(p, stopFile);
    await waitForOutput(p, /^started$/m, 10_000, `udp stream from ${src}`);
    return s;
  }

  async stop(): Promise<StreamResult> {
    writeFileSync(this.stopFile, '');
    const p = this.proc;
    if (p.exitCode === null && p.signalCode === null) {
      await Promise.race([new Promise((r) => p.once('exit', r)), sleep(10_000)]);
    }
    const line = this.out.trim().split('\n').pop() ?? '';
    try {
      return JSON.parse(line) as StreamResult;
    } catch {
      throw new Error(`udp stream gave no result: ${this.out.slice(-300)}`);
    }
  }
}

/** Pids of the lab-server process in a server namespace (the one Lab started there). */
export function labServerPids(lab: Lab, server: ServerName): number[] {
  const pids = execFileSync('ip', ['netns', 'pids', lab.ns[server]], { encoding: 'utf8' }).split(/\s+/).filter(Boolean);
  return pids.map(Number).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('lab-server.js');
    } catch {
      return false;
    }
  });
}

/** Stop the lab server (HTTP, HTTPS, UDP echo) of one server namespace: its listeners are gone. */
export async function stopLabServer(lab: Lab, server: ServerName): Promise<void> {
  const pids = labServerPids(lab, server);
  if (pids.length === 0) throw new Error(`no lab-server running in ${server}`);
  for (const pid of pids) process.kill(pid, 'SIGTERM');
  await until(() => labServerPids(lab, server).length === 0, 5000, `${server} lab-server gone`);
}

/** Start it again with the lab's arguments (certificate from the lab's work dir); resolves when it listens. */
export async function startLabServer(lab: Lab, server: ServerName): Promise<void> {
  const addrs = lab.topo.families.map((f) => (f === 'ipv6' ? S6 : S4));
  const p = lab.set.spawn(lab.ns[server], process.execPath, [
    distFile('lab/lab-server.js'), '--name', server, ...addrs.flatMap((a) => ['--addr', a]),
    '--cert', join(lab.workDir, `${server}.crt`), '--key', join(lab.workDir, `${server}.key`),
    '--http', String(PORTS.http), '--https', String(PORTS.https), '--udp', String(PORTS.udpEcho),
  ]);
  await waitForOutput(p, /^ready$/m, 10_000, `${server} lab-server`);
}

/** Poll a metric until `pred` holds; returns the elapsed ms. */
export function untilMetric(lab: Lab, svc: ServiceName, name: string, labels: Record<string, string>, pred: (v: number) => boolean, timeoutMs: number): Promise<number> {
  return until(async () => pred(await lab.metric(svc, name, labels)), timeoutMs, `${svc} ${name}${JSON.stringify(labels)}`);
}

/** JSON log lines of a service with the given event. */
export function logEvents(lab: Lab, svc: ServiceName, event: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const l of lab.serviceLog(svc).split('\n')) {
    if (!l.startsWith('{')) continue;
    try {
      const o = JSON.parse(l) as Record<string, unknown>;
      if (o.event === event) out.push(o);
    } catch {
      /* a line split across chunks */
    }
  }
  return out;
}

/** Health-check thresholds of the ops-health tests (seconds and rounds). */
export interface HealthThresholds { interval: number; timeout: number; rise: number; fall: number }

/** The front config of the health-check tests: both services, probe prefixes of the lab, `hc` as defaults. */
export function healthFrontConfig(hc: HealthThresholds, probe: { v6: string; v4: string }): string {
  return `tun: { name: mslbf0, mtu: 1500, queues: 1, routes: [${S6}/128, ${S4}/32] }
services: [${S6}, ${S4}]
table: ./table.yaml
mode: translate
admin: { listen: "[::1]:9101" }
healthCheck: { interval: ${hc.interval}, timeout: ${hc.timeout}, rise: ${hc.rise}, fall: ${hc.fall}, probePrefix6: "${probe.v6}", probePrefix4: "${probe.v4}" }
`;
}

/**
 * How long `n` rounds in a row may take to change a back's state: the first round that sees the
 * change starts within one interval, the next (n-1) start max(interval, timeout) apart (a round whose
 * probe times out lasts the timeout), the last reports within a timeout; plus 1 s for polling the
 * metric on a busy host.
 */
export function healthBoundMs(hc: HealthThresholds, n: number): number {
  return (hc.interval + (n - 1) * Math.max(hc.interval, hc.timeout) + hc.timeout) * 1000 + 1000;
}

// Health checks of the backs (SPEC 6a: `healthCheck` per back in the table; defaults from the front
// config's `healthCheck`). Main thread only. A back with a health check gets, every `interval`:
//   - an HTTP probe of `url` (the back's /readyz: the mslb-back process, its TUN and table are up);
//   - probes of the service *through the back*: a TCP connect to S:servicePort, a UDP datagram
//     (`udp`: any reply, or one containing given bytes), a DNS query (`dns`: NOERROR with an answer,
//     or a given rcode), an HTTP GET (`http`: status in a range, optional body substring), each for
//     every service the back carries, from a probe source address that the front's own table
//     routes to that back. How: the front owns a probe prefix per family (config
//     `healthCheck.probePrefix6/4`); back slot k gets source prefix+k+1, added to `lo`, and the
//     compiled table gets an internal route source/128 (/32) -> that back (the TableManager augment
//     hook; these routes are not in /table or mslb_table_routes). The kernel routes S into the TUN,
//     so the SYN goes through a worker exactly like a client's (decision, translate or encap, the
//     fabric, the back's unwrap/translate, the back host's route to the server) and the server's
//     SYN-ACK comes back by plain routing to the probe source, which the fabric must route to the
//     front host (as it routes client prefixes). A dead server behind a live back is seen: the
//     connect is refused or times out. A single-back target is fail-open (SPEC 2), so probes keep
//     reaching a back marked down and see it come back. The probe connection is reset at once.
// The probes themselves are in front/health-probes.ts; each result carries a bounded reason, counted
// per back and kind with the probe latency (shared/metrics/health-metrics.ts).
// A back is up after `rise` good rounds in a row and down after `fall` bad ones (a round is good when
// every probe of it succeeds within `timeout`). It starts up (a front restart moves nothing). Going
// down sets up[slot]=0 and rebuilds the pools' alive tables (CompiledTable.refreshUp): only that
// back's keys move; coming back restores them. State changes are logged (backend_down, backend_up)
// with the kind of probe and the reason. One round per back is in flight at a time.
import type { Logger } from '../shared/log.js';
import { HEALTH_FAILURE_REASONS, type HealthFailureReason, type HealthProbeKind, type HealthProbeState } from '../shared/metrics/health-metrics.js';
import { formatAddress, parseAddress, parsePrefix, type Family } from '../shared/table/addr.js';
import { encodeDnsQuery } from './dns-message.js';
import { realProbes, type ProbeResult, type Probes } from './health-probes.js';
import type { DnsCheckSpec, HttpCheckSpec, UdpCheckSpec } from './table/health-check-spec.js';
import type { TableError, TableRoute, ValidatedTable } from './table/table-loader.js';

export { realProbes, type ProbeResult, type Probes } from './health-probes.js';

export interface HealthDefaults {
  interval: number; // seconds
  timeout: number;
  rise: number;
  fall: number;
  probePrefix6: string; // "" = none
  probePrefix4: string;
}

export type ServiceKind = 'tcp' | 'udp' | 'dns' | 'http';

export interface ServiceProbe {
  kind: ServiceKind;
  service: string;
  family: Family;
  port: number;
  /** Probe source address (text) that the internal route sends to this back. */
  source: string;
  udp?: UdpCheckSpec;
  dns?: DnsCheckSpec;
  http?: HttpCheckSpec;
}

export interface BackHealthPlan {
  name: string;
  slot: number;
  url?: string;
  services: ServiceProbe[];
  intervalMs: number;
  timeoutMs: number;
  rise: number;
  fall: number;
}

export interface HealthPlan {
  backs: BackHealthPlan[];
  /** Internal routes probe source -> back, compiled into the table. */
  routes: TableRoute[];
  errors: TableError[];
}

/** prefix + offset (offset < 2^32), or null when it does not fit in the prefix. */
export function addressInPrefix(prefix: string, offset: number): string | null {
  const p = parsePrefix(prefix);
  if (!p) return null;
  const bits = (p.family === 4 ? 32 : 128) - p.len;
  if (bits < 32 && offset >= 2 ** bits) return null;
  const w = Uint32Array.from(p.words);
  const last = p.family === 4 ? 0 : 3;
  let carry = offset;
  for (let i = last; i >= 0 && carry > 0; i--) {
    const sum = w[i]! + carry;
    w[i] = sum >>> 0;
    carry = sum > 0xffffffff ? 1 : 0;
  }
  return formatAddress(p.family, w);
}

/**
 * Which backs are checked and how, and the internal probe routes. Errors name the table entry:
 * a servicePort that no probe prefix can serve, or a probe prefix too small for the back's slot.
 */
export function planHealthChecks(
  t: ValidatedTable,
  cfg: { services: string[]; healthCheck: HealthDefaults },
  slotOf: (name: string) => number,
): HealthPlan {
  const d = cfg.healthCheck;
  const backs: BackHealthPlan[] = [];
  const routes: TableRoute[] = [];
  const errors: TableError[] = [];
  for (const b of t.backs) {
    const hc = b.healthCheck;
    if (!hc) continue;
    const e = `backs.${b.name}.healthCheck`;
    const slot = slotOf(b.name);
    const plan: BackHealthPlan = {
      name: b.name,
      slot,
      ...(hc.url ? { url: hc.url } : {}),
      services: [],
      intervalMs: (hc.interval ?? d.interval) * 1000,
      timeoutMs: (hc.timeout ?? d.timeout) * 1000,
      rise: hc.rise ?? d.rise,
      fall: hc.fall ?? d.fall,
    };
    // Service probes by kind; the first configured key names the entry of a probe-source error.
    const kinds: [ServiceKind, number][] = [];
    if (hc.servicePort !== undefined) kinds.push(['tcp', hc.servicePort]);
    if (hc.udp) kinds.push(['udp', hc.udp.port]);
    if (hc.dns) kinds.push(['dns', hc.dns.port]);
    if (hc.http) kinds.push(['http', hc.http.port]);
    const key = hc.servicePort !== undefined ? 'servicePort' : hc.udp ? 'udp' : hc.dns ? 'dns' : 'http';
    if (kinds.length > 0) {
      const carried = cfg.services.filter((s) => b.addressFor[s] !== undefined);
      const sources: Partial<Record<Family, string>> = {};
      const missing: string[] = [];
      const reachable: { service: string; family: Family; source: string }[] = [];
      for (const s of carried) {
        const f = parseAddress(s)!.family;
        const prefix = f === 6 ? d.probePrefix6 : d.probePrefix4;
        if (prefix === '') { missing.push(`IPv${f} service ${s}`); continue; }
        let src = sources[f];
        if (src === undefined) {
          const a = addressInPrefix(prefix, slot + 1);
          if (a === null) {
            errors.push({ file: t.file, entry: `${e}.${key}`, reason: `healthCheck.probePrefix${f} ${prefix} has no room for back ${b.name} (backend slot ${slot} needs address +${slot + 1})` });
            continue;
          }
          src = sources[f] = a;
          const p = parseAddress(a)!;
          routes.push({ source: `${a}/${f === 4 ? 32 : 128}`, family: f, words: p.words, len: f === 4 ? 32 : 128, to: b.name });
        }
        reachable.push({ service: s, family: f, source: src });
      }
      for (const [kind, port] of kinds) {
        for (const r of reachable) {
          const sp: ServiceProbe = { kind, service: r.service, family: r.family, port, source: r.source };
          if (kind === 'udp') sp.udp = hc.udp;
          else if (kind === 'dns') sp.dns = hc.dns;
          else if (kind === 'http') sp.http = hc.http;
          plan.services.push(sp);
        }
      }
      if (reachable.length === 0 && missing.length > 0) {
        const fams = [...new Set(missing.map((m) => (m.startsWith('IPv6') ? 'healthCheck.probePrefix6' : 'healthCheck.probePrefix4')))];
        errors.push({
          file: t.file,
          entry: `${e}.${key}`,
          reason: `probing the service through the back needs a probe source: set ${fams.join(' or ')} in the front config (the back carries ${missing.join(' and ')})`,
        });
      }
    }
    if (!plan.url && kinds.length === 0) {
      errors.push({ file: t.file, entry: e, reason: 'a health check needs url (the back\'s /readyz), servicePort (TCP), udp, dns or http (the service through the back), or several' });
      continue;
    }
    backs.push(plan);
  }
  return { backs, routes, errors };
}

// ---- state -------------------------------------------------------------------------------------

/** rise/fall over consecutive results. Starts up. */
export class HealthState {
  up = true;
  successes = 0;
  failures = 0;
  constructor(
    public rise: number,
    public fall: number,
  ) {}

  /** Returns 'down' | 'up' when this result changes the state, else null. */
  record(ok: boolean): 'up' | 'down' | null {
    if (ok) {
      this.failures = 0;
      this.successes++;
      if (!this.up && this.successes >= this.rise) {
        this.up = true;
        return 'up';
      }
    } else {
      this.successes = 0;
      this.failures++;
      if (this.up && this.failures >= this.fall) {
        this.up = false;
        return 'down';
      }
    }
    return null;
  }
}

export interface HealthCheckerOptions {
  log: Logger;
  /** Shared up[slot] (TableManager.up). */
  up: Uint8Array;
  /** Rebuild the pools' alive tables of the table in force after up[] changed. */
  refresh: () => void;
  probes?: Probes;
  /** Add a probe source address (cidr) to the host; default: none (unit tests). */
  addSource?: (cidr: string) => Promise<void>;
  /** Schedule rounds with timers (default true); false: tests call checkNow(). */
  schedule?: boolean;
}

/** What a service probe sends, built once per plan (not per round). */
interface Prepared {
  payload?: Buffer;
  expect?: Buffer;
  query?: Buffer;
}

interface BackEntry {
  plan: BackHealthPlan;
  state: HealthState;
  timer: NodeJS.Timeout | undefined;
  running: boolean;
  lastDetail: string;
  changedAt: number;
  /** Parallel to plan.services. */
  prepared: Prepared[];
  /** Latency and failures per probe kind (the metrics read these). */
  stats: Map<HealthProbeKind, HealthProbeState>;
  /** Kind and reason of the failure that took the back down (for backend_up). */
  downKind: HealthProbeKind | '';
  downReason: HealthFailureReason | '';
}

export interface BackHealthStatus {
  name: string;
  slot: number;
  up: boolean;
  successes: number;
  failures: number;
  lastDetail: string;
}

const KIND_ORDER: readonly HealthProbeKind[] = ['readyz', 'tcp', 'udp', 'dns', 'http'];
const REASON_INDEX = new Map<HealthFailureReason, number>(HEALTH_FAILURE_REASONS.map((r, i) => [r, i]));

function kindsOf(plan: BackHealthPlan): HealthProbeKind[] {
  const have = new Set<HealthProbeKind>(plan.services.map((s) => s.kind));
  if (plan.url) have.add('readyz');
  return KIND_ORDER.filter((k) => have.has(k));
}

function prepare(s: ServiceProbe): Prepared {
  if (s.kind === 'udp' && s.udp) return { payload: Buffer.from(s.udp.sendHex, 'hex'), ...(s.udp.expectHex ? { expect: Buffer.from(s.udp.expectHex, 'hex') } : {}) };
  if (s.kind === 'dns' && s.dns) return { query: encodeDnsQuery(s.dns.name, s.dns.type) };
  return {};
}

function probeLabel(s: ServiceProbe): string {
  const host = s.family === 6 ? `[${s.service}]` : s.service;
  const what = s.kind === 'dns' && s.dns ? `dns ${s.dns.name}` : s.kind === 'http' && s.http ? `http GET ${s.http.path}` : s.kind;
  return `${what} ${host}:${s.port} from ${s.source}`;
}

export class HealthChecker {
  private readonly backs = new Map<string, BackEntry>();
  private readonly sources = new Map<string, Promise<void>>();
  private readonly probes: Probes;
  private stopped = false;

  constructor(private readonly o: HealthCheckerOptions) {
    this.probes = o.probes ?? realProbes;
  }

  /** The plan of a newly installed table: start, re-plan or stop checks per back (by name). */
  update(plans: readonly BackHealthPlan[]): void {
    if (this.stopped) return;
    const seen = new Set<string>();
    let changed = false;
    for (const plan of plans) {
      seen.add(plan.name);
      for (const s of plan.services) this.ensureSource(s);
      const cur = this.backs.get(plan.name);
      if (cur) {
        const same = JSON.stringify(cur.plan) === JSON.stringify(plan);
        cur.plan = plan;
        cur.prepared = plan.services.map(prepare);
        cur.stats = this.statsFor(plan, cur.stats);
        cur.state.rise = plan.rise;
        cur.state.fall = plan.fall;
        if (this.o.up[plan.slot] !== (cur.state.up ? 1 : 0)) { this.o.up[plan.slot] = cur.state.up ? 1 : 0; changed = true; }
        if (!same) {
          this.o.log.info('health_check_updated', this.planFields(plan));
          this.reschedule(cur, Math.min(plan.intervalMs, 100));
        }
        continue;
      }
      const e: BackEntry = {
        plan, state: new HealthState(plan.rise, plan.fall), timer: undefined, running: false, lastDetail: '', changedAt: Date.now(),
        prepared: plan.services.map(prepare), stats: this.statsFor(plan, undefined), downKind: '', downReason: '',
      };
      this.backs.set(plan.name, e);
      if (this.o.up[plan.slot] !== 1) { this.o.up[plan.slot] = 1; changed = true; }
      this.o.log.info('health_check_started', this.planFields(plan));
      // First round soon, spread so that many backs are not probed in one burst.
      this.reschedule(e, 50 + Math.floor(Math.random() * Math.min(plan.intervalMs, 1000)));
    }
    for (const [name, e] of this.backs) {
      if (seen.has(name)) continue;
      if (e.timer) clearTimeout(e.timer);
      this.backs.delete(name);
      // No health check any more: the back counts as up (SPEC 6a).
      if (this.o.up[e.plan.slot] !== 1) { this.o.up[e.plan.slot] = 1; changed = true; }
      this.o.log.info('health_check_stopped', { backend: name, up: true });
    }
    if (changed) this.o.refresh();
  }

  private planFields(plan: BackHealthPlan): Record<string, unknown> {
    return { backend: plan.name, url: plan.url, services: plan.services.map(probeLabel), intervalMs: plan.intervalMs, timeoutMs: plan.timeoutMs, rise: plan.rise, fall: plan.fall };
  }

  /** One stats entry per kind of the plan; a kind the back keeps across a reload keeps its counts. */
  private statsFor(plan: BackHealthPlan, old: Map<HealthProbeKind, HealthProbeState> | undefined): Map<HealthProbeKind, HealthProbeState> {
    const m = new Map<HealthProbeKind, HealthProbeState>();
    for (const k of kindsOf(plan)) m.set(k, old?.get(k) ?? { backend: plan.name, kind: k, durationSeconds: NaN, failures: new Float64Array(HEALTH_FAILURE_REASONS.length), lastFailure: '' });
    return m;
  }

  private ensureSource(s: ServiceProbe): void {
    if (!this.o.addSource || this.sources.has(s.source)) return;
    const cidr = `${s.source}/${s.family === 4 ? 32 : 128}`;
    const p = this.o.addSource(cidr).catch((e: unknown) => {
      this.o.log.error('health_probe_source_failed', { source: cidr, error: (e as Error).message });
    });
    this.sources.set(s.source, p);
  }

  private reschedule(e: BackEntry, delayMs: number): void {
    if (e.timer) clearTimeout(e.timer);
    e.timer = undefined;
    if (this.stopped || this.o.schedule === false) return;
    e.timer = setTimeout(() => {
      e.timer = undefined;
      const started = Date.now();
      void this.round(e).finally(() => {
        if (this.backs.get(e.plan.name) === e && !e.timer) this.reschedule(e, Math.max(0, e.plan.intervalMs - (Date.now() - started)));
      });
    }, delayMs);
    e.timer.unref();
  }

  /** One round of every probe of a back; applies the result. */
  private async round(e: BackEntry): Promise<void> {
    if (e.running || this.stopped) return;
    e.running = true;
    try {
      const p = e.plan;
      const prepared = e.prepared;
      const timed = (kind: HealthProbeKind, what: string, run: () => Promise<ProbeResult>) => {
        const t0 = performance.now();
        return run().then((r) => ({ ...r, kind, what, seconds: (performance.now() - t0) / 1000 }));
      };
      const jobs: Promise<ProbeResult & { kind: HealthProbeKind; what: string; seconds: number }>[] = [];
      if (p.url) jobs.push(timed('readyz', `GET ${p.url}`, () => this.probes.http(p.url!, p.timeoutMs)));
      p.services.forEach((s, i) => {
        const src = this.sources.get(s.source) ?? Promise.resolve();
        const pre = prepared[i]!;
        const run = (): Promise<ProbeResult> => {
          switch (s.kind) {
            case 'tcp': return this.probes.tcp(s.service, s.port, s.source, p.timeoutMs);
            case 'udp': return this.probes.udp(s.service, s.port, s.source, pre.payload!, pre.expect, p.timeoutMs);
            case 'dns': return this.probes.dns(s.service, s.port, s.source, pre.query!, s.dns?.rcode, p.timeoutMs);
            case 'http': return this.probes.httpService(s.service, s.port, s.source, s.http!, p.timeoutMs);
          }
        };
        // The source address must be on lo before the probe binds to it; its wait is not latency.
        jobs.push(src.then(() => timed(s.kind, probeLabel(s), run)));
      });
      const results = await Promise.all(jobs);
      if (this.stopped || this.backs.get(p.name) !== e) return;
      const roundMax = new Map<HealthProbeKind, number>();
      for (const r of results) {
        roundMax.set(r.kind, Math.max(roundMax.get(r.kind) ?? 0, r.seconds));
        if (r.ok) continue;
        const st = e.stats.get(r.kind);
        const reason = r.reason ?? 'error';
        if (st) {
          (st.failures as Float64Array)[REASON_INDEX.get(reason)!]++;
          st.lastFailure = reason;
        }
      }
      for (const [k, sec] of roundMax) { const st = e.stats.get(k); if (st) st.durationSeconds = sec; }
      const bad = results.filter((r) => !r.ok);
      const ok = bad.length === 0;
      e.lastDetail = ok ? 'ok' : bad.map((r) => `${r.what}: ${r.detail}`).join('; ');
      // The first failing kind in a fixed order names the failure (readyz before the service).
      const first = bad.sort((a, b) => KIND_ORDER.indexOf(a.kind) - KIND_ORDER.indexOf(b.kind))[0];
      if (!ok) this.o.log.debug('health_probe_failed', { backend: p.name, kind: first!.kind, reason: first!.reason ?? 'error', detail: e.lastDetail, failures: e.state.failures + 1 });
      const change = e.state.record(ok);
      if (change) {
        const now = Date.now();
        this.o.up[p.slot] = change === 'up' ? 1 : 0;
        this.o.refresh();
        const fields = { backend: p.name, slot: p.slot, rise: p.rise, fall: p.fall, intervalMs: p.intervalMs, wasForMs: now - e.changedAt };
        e.changedAt = now;
        if (change === 'down') {
          e.downKind = first!.kind;
          e.downReason = first!.reason ?? 'error';
          this.o.log.warn('backend_down', { ...fields, kind: e.downKind, reason: e.downReason, detail: e.lastDetail });
        } else {
          // kind and reason: what had taken it down.
          this.o.log.info('backend_up', { ...fields, kind: e.downKind, reason: e.downReason });
        }
      }
    } finally {
      e.running = false;
    }
  }

  /** Run one round of `name` now (tests; schedule: false). */
  async checkNow(name: string): Promise<void> {
    const e = this.backs.get(name);
    if (!e) throw new Error(`no health check for ${name}`);
    for (const s of e.plan.services) await this.sources.get(s.source);
    await this.round(e);
  }

  status(): BackHealthStatus[] {
    return [...this.backs.values()].map((e) => ({
      name: e.plan.name, slot: e.plan.slot, up: e.state.up, successes: e.state.successes, failures: e.state.failures, lastDetail: e.lastDetail,
    }));
  }

  /** Latency and failures per back and probe kind (mslb_health_probe_* metrics). */
  probeStats(): HealthProbeState[] {
    const out: HealthProbeState[] = [];
    for (const e of this.backs.values()) for (const st of e.stats.values()) out.push(st);
    return out;
  }

  stop(): void {
    this.stopped = true;
    for (const e of this.backs.values()) if (e.timer) clearTimeout(e.timer);
  }
}

// The health-check families of the front's registry: probe latency and failures per back and probe
// kind, read at scrape time from the checker's state (main thread). The reasons are a fixed list so
// the label set stays bounded whatever a server answers.
import { Counter, Gauge, type Registry } from 'prom-client';

export const HEALTH_PROBE_KINDS = ['readyz', 'tcp', 'udp', 'dns', 'http'] as const;
export type HealthProbeKind = (typeof HEALTH_PROBE_KINDS)[number];

export const HEALTH_FAILURE_REASONS = ['timeout', 'refused', 'bad_status', 'bad_body', 'bad_reply', 'rcode', 'unreachable', 'error'] as const;
export type HealthFailureReason = (typeof HEALTH_FAILURE_REASONS)[number];

/** One probe kind of one back, as the checker has it now. */
export interface HealthProbeState {
  backend: string;
  kind: HealthProbeKind;
  /** Duration of the last round's probes of this kind (the slowest), seconds; NaN before the first. */
  durationSeconds: number;
  /** Failed probes so far, indexed like HEALTH_FAILURE_REASONS. */
  failures: ArrayLike<number>;
  /** Reason of the last failure, '' when none yet. */
  lastFailure: HealthFailureReason | '';
}

export function registerHealthMetrics(reg: Registry, probes: () => readonly HealthProbeState[]): void {
  new Gauge({
    name: 'mslb_health_probe_duration_seconds',
    help: 'Duration of the last health probe of each back and kind (the slowest when a back carries several services), failed ones included.',
    labelNames: ['backend', 'kind'],
    registers: [reg],
    collect() {
      this.reset();
      for (const p of probes()) if (!Number.isNaN(p.durationSeconds)) this.set({ backend: p.backend, kind: p.kind }, p.durationSeconds);
    },
  });
  new Counter({
    name: 'mslb_health_probe_failures_total',
    help: 'Failed health probes, by back, kind and reason.',
    labelNames: ['backend', 'kind', 'reason'],
    registers: [reg],
    collect() {
      this.reset();
      for (const p of probes()) for (let i = 0; i < HEALTH_FAILURE_REASONS.length; i++) this.inc({ backend: p.backend, kind: p.kind, reason: HEALTH_FAILURE_REASONS[i] }, p.failures[i] ?? 0);
    },
  });
  new Gauge({
    name: 'mslb_health_last_failure_info',
    help: 'Reason of the last failed health probe of each back and kind (always 1; absent until one fails).',
    labelNames: ['backend', 'kind', 'reason'],
    registers: [reg],
    collect() {
      this.reset();
      for (const p of probes()) if (p.lastFailure !== '') this.set({ backend: p.backend, kind: p.kind, reason: p.lastFailure }, 1);
    },
  });
}

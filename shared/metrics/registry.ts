// The Prometheus registry of one service (front or back). The data path only bumps its worker's
// Float64Array counter block (counter-layout.ts); every family here reads those blocks, summed over
// all workers, inside collect() at scrape time. Reload results are main-thread state set through
// recordReload()/markLoaded().
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import { MSLB_VERSION } from '../version.js';
import { registerHealthMetrics, type HealthProbeState } from './health-metrics.js';
import {
  backendPacketsIndex,
  backendFlowsIndex,
  C_FLOW_TABLE_SIZE,
  C_RX_BYTES,
  C_RX_PACKETS,
  C_TX_BYTES,
  C_TX_PACKETS,
  DECISION_REASONS,
  decisionIndex,
  DROP_REASONS,
  dropIndex,
  eventIndex,
  ICMP_TYPES,
  icmpIndex,
  MAX_BACKEND_SLOTS,
  MAX_SERVICE_SLOTS,
  SERVICE_STRIDE,
  serviceDecisionIndex,
  servicePacketsIndex,
  type DecisionReason,
  type DropReason,
  type EventCounter,
} from './counter-layout.js';

export type ServiceRole = 'front' | 'back';

/** A back as the front has it configured now; `slot` is its stable counter slot. */
export interface BackendState {
  name: string;
  slot: number;
  up: boolean;
}

/** A service address in force and its counter slot (front: position in `services`; back: kept by address). */
export interface ServiceState {
  name: string;
  slot: number;
}

/** A pool of the table in force (front): configured members and how many are up now. */
export interface PoolState {
  name: string;
  members: number;
  up: number;
}

export interface TableRouteCounts {
  ipv4: number;
  ipv6: number;
}

/** Where the registry reads live state at scrape time. All are called on the main thread. */
export interface MetricsSources {
  /** The counter blocks of the workers running now (one per worker). */
  blocks: () => readonly Float64Array[];
  /** Backs of the table in force (front). Default: none. */
  backends?: () => readonly BackendState[];
  /** Pools of the table in force (front). Default: none. */
  pools?: () => readonly PoolState[];
  /** Routes of the table in force (front), or the back's address entries per family. Default 0/0. */
  tableRoutes?: () => TableRouteCounts;
  /** Whether TUN offloads (IFF_VNET_HDR) are on. Default false. */
  offloadEnabled?: () => boolean;
  /** Front: UDP-tunnel super-packets go to the kernel through the TAP; back: its TUN reads them whole (offload.udpTunnel, probed). */
  udpTunnelOffload?: () => boolean;
  /** Worker threads alive now. Default: one per counter block. */
  liveWorkers?: () => number;
  /** Health probes per back and kind (front): mslb_health_probe_* families. Default: none. */
  healthProbes?: () => readonly HealthProbeState[];
  /** Services of the config in force: the values of the `service` label. Default: none. */
  services?: () => readonly ServiceState[];
}

export interface ServiceMetricsOptions {
  role: ServiceRole;
  sources: MetricsSources;
  /** prom-client's process/nodejs metrics (default true). */
  defaultMetrics?: boolean;
}

/** Drop reasons a role can produce (all of them exported at 0 from start-up). */
export function dropReasonsFor(role: ServiceRole): readonly DropReason[] {
  return role === 'front' ? DROP_REASONS : DROP_REASONS.filter((r) => r !== 'no_route' && r !== 'backend_down');
}

/** Decision reasons a role can produce: the back takes no balancing decision. */
export function decisionReasonsFor(role: ServiceRole): readonly DecisionReason[] {
  return role === 'front' ? DECISION_REASONS : [];
}

/** Sum of one counter index over all worker blocks. */
export function sumCounter(blocks: readonly Float64Array[], index: number): number {
  let s = 0;
  for (let i = 0; i < blocks.length; i++) s += blocks[i][index];
  return s;
}

/** A counter with no labels whose value is a summed block index. */
interface PlainCounter {
  name: string;
  help: string;
  index: number;
}

/** Event counters of counter-layout.ts exported on their own, per role. */
const FRONT_EVENTS: readonly [EventCounter, string, string][] = [
  ['flow_table_hits', 'mslb_flow_table_hits_total', 'Packets whose back came from the flow table.'],
  ['flow_table_misses_nonsyn', 'mslb_flow_table_misses_nonsyn_total', 'Non-first packets of a TCP flow with no flow-table entry (flows reshuffled).'],
  ['flow_table_evictions', 'mslb_flow_table_evictions_total', 'Flow-table entries evicted (LRU pressure or idle timeout).'],
  ['flow_table_inserts', 'mslb_flow_table_inserts_total', 'Flow-table entries created.'],
  ['fragmented', 'mslb_fragmented_total', 'Packets fragmented to fit a tunnel (IPv4 without DF before wrapping; the outer packet of an IPv6 packet of at most 1280 bytes).'],
  ['tunnel_unwrapped', 'mslb_tunnel_unwrapped_total', 'Tunnel packets from acceptTunnelFrom sources unwrapped (multi-stage, return encapsulation).'],
  ['pmtu_unverified', 'mslb_pmtu_unverified_total', 'ICMP errors about the front\'s tunnels whose quoted inner flow was not sent to that back recently: not learned, not relayed.'],
  ['flow_table_refused', 'mslb_flow_table_refused_total', 'New flows not pinned: their bucket held only confirmed flows seen recently (admission under a flood; the packet is still forwarded).'],
  ['lbsp_client_fallback', 'mslb_lbsp_client_fallback_total', 'LBSP client segments no route covers (anonymous values): the IP source was the key.'],
  ['tunnel_gso_writes', 'mslb_tunnel_gso_writes_total', 'UDP-tunnel super-packets written to the tunnel TAP, each segmented by the kernel on the way out (offload.udpTunnel); the wire packets are in mslb_tx_packets_total.'],
  ['icmp_steer_copies', 'mslb_icmp_steer_copies_total', 'Extra copies of ICMP errors sent to the other members of a pool keyed by flow label or LBSP (beyond the first copy).'],
];
/** `by` of mslb_icmp_steered_total -> event counter. */
export const ICMP_STEERED_BY = ['flow_table', 'client_key', 'copies'] as const;
/** `reason` of mslb_icmp_steer_refused_total -> event counter. */
export const ICMP_REFUSED_REASONS = ['quote_truncated', 'quote_invalid', 'not_service', 'no_route', 'backend_down', 'copy_limited'] as const;
const BACK_EVENTS: readonly [EventCounter, string, string][] = [
  ['lbsp_stamped', 'mslb_lbsp_stamped_total', 'Return packets stamped with the LBSP server segment.'],
  ['mss_clamped', 'mslb_mss_clamped_total', 'TCP SYNs whose MSS was clamped to leave room for the LBSP option.'],
  ['return_encapsulated', 'mslb_return_encapsulated_total', 'Return packets from the services wrapped toward returnEncap.gateway.'],
  ['lbsp_stamp_skipped', 'mslb_lbsp_stamp_skipped_total', 'IPv6 return packets forwarded without the LBSP option: it would not fit the MTU, a fragment, or a Destination Options header without LBSP already there.'],
];
const COMMON_EVENTS: readonly [EventCounter, string, string][] = [
  ['pmtu_learned', 'mslb_pmtu_learned_total', 'ICMP errors from the fabric that lowered the path MTU toward a back (front) or toward the return gateway (back).'],
  ['fabric_icmp_handled', 'mslb_fabric_icmp_handled_total', 'ICMP errors about the service\'s own tunnel packets (the front\'s toward its backs, a back\'s return encapsulation toward its gateway) taken in (path MTU, relay to the inner source), not forwarded.'],
  ['read_batches', 'mslb_read_batches_total', 'TUN read batches processed (packets per batch = rx packets / this).'],
  ['icmp_rate_limited', 'mslb_icmp_rate_limited_total', 'ICMP errors not sent because of the rate limit.'],
  ['multicast_ignored', 'mslb_multicast_ignored_total', 'Multicast packets read from the TUN (the kernel\'s own MLD reports) and ignored: never a service.'],
  ['tunnel_reassembled', 'mslb_tunnel_reassembled_total', 'Tunnel packets reassembled from outer fragments (bounded reassembly at the tunnel exit).'],
  ['fragments_held', 'mslb_tunnel_fragments_held_total', 'Outer fragments of tunnel packets taken into reassembly (not forwarded one by one).'],
];

const LINT_FAILING_DEFAULTS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

export class ServiceMetrics {
  readonly registry = new Registry();
  readonly role: ServiceRole;
  private reloadsOk = 0;
  /** Per backend counter index: the total left by the slot's previous back (see resetBackendSlot). */
  private readonly backendBase = new Map<number, number>();
  /** The same for service slots (see resetServiceSlot). */
  private readonly serviceBase = new Map<number, number>();
  private readonly blocksOf: () => readonly Float64Array[];
  private reloadsFailed = 0;
  private lastSuccess = 0;
  /** 1 when the file on disk is the one in force (last reload applied or unchanged), 0 after a rejection. */
  private lastReloadOk = 0;
  private tableHash = '';

  constructor(opts: ServiceMetricsOptions) {
    this.role = opts.role;
    const src = opts.sources;
    const reg = [this.registry];
    const blocks = src.blocks;
    this.blocksOf = blocks;
    const backends = src.backends ?? (() => []);
    const tableRoutes = src.tableRoutes ?? (() => ({ ipv4: 0, ipv6: 0 }));
    const offload = src.offloadEnabled ?? (() => false);
    const liveWorkers = src.liveWorkers;
    const self = this;

    if (opts.defaultMetrics !== false) {
      collectDefaultMetrics({ register: this.registry });
      // These three are gauges named *_total, which `promtool check metrics` rejects; the same
      // numbers stay available, by type, in nodejs_active_{handles,requests,resources}.
      for (const n of LINT_FAILING_DEFAULTS) this.registry.removeSingleMetric(n);
    }

    new Gauge({
      name: 'mslb_info',
      help: 'Constant 1, labelled with the version and role of this service.',
      labelNames: ['version', 'role'],
      registers: reg,
      collect() {
        this.set({ version: MSLB_VERSION, role: self.role }, 1);
      },
    });

    const plain: PlainCounter[] = [
      { name: 'mslb_rx_packets_total', help: 'Packets read from the TUN device (GSO super-packets count as their segments).', index: C_RX_PACKETS },
      { name: 'mslb_tx_packets_total', help: 'Packets written to the TUN device (as on the wire).', index: C_TX_PACKETS },
      { name: 'mslb_rx_bytes_total', help: 'Bytes read from the TUN device (IP packets, as on the wire).', index: C_RX_BYTES },
      { name: 'mslb_tx_bytes_total', help: 'Bytes written to the TUN device (IP packets, as on the wire).', index: C_TX_BYTES },
    ];
    const events = [...COMMON_EVENTS, ...(this.role === 'front' ? FRONT_EVENTS : BACK_EVENTS)];
    for (const [ev, name, help] of events) plain.push({ name, help, index: eventIndex(ev) });
    for (const p of plain) {
      const index = p.index;
      new Counter({
        name: p.name,
        help: p.help,
        registers: reg,
        collect() {
          this.reset();
          this.inc(sumCounter(blocks(), index));
        },
      });
    }

    const labelled = (name: string, help: string, label: string, values: readonly string[], indexOf: (v: string) => number) => {
      const idx = values.map(indexOf);
      new Counter({
        name,
        help,
        labelNames: [label],
        registers: reg,
        collect() {
          // prom-client counters only move through inc(): start from empty and add each sum, so every
          // value (0 included) is present on every scrape.
          this.reset();
          const b = blocks();
          for (let i = 0; i < values.length; i++) this.inc({ [label]: values[i] }, sumCounter(b, idx[i]));
        },
      });
    };
    labelled('mslb_drops_total', 'Packets dropped, by reason.', 'reason', dropReasonsFor(this.role), (r) => dropIndex(r as DropReason));
    labelled('mslb_decisions_total', 'Balancing decisions (a back chosen for a packet), by what decided.', 'reason', decisionReasonsFor(this.role), (r) =>
      decisionIndex(r as DecisionReason),
    );
    labelled('mslb_icmp_sent_total', 'ICMP errors sent, by type.', 'type', ICMP_TYPES, (t) => icmpIndex(t as (typeof ICMP_TYPES)[number]));
    if (this.role === 'front') {
      labelled(
        'mslb_lbsp_ignored_total',
        'LBSP options ignored (packet balanced as if it had none), by why.',
        'reason',
        ['bad_length', 'unknown_server', 'other_service', 'backend_down', 'draining'],
        (r) => eventIndex(`lbsp_ignored_${r}` as EventCounter),
      );
      labelled(
        'mslb_icmp_steered_total',
        'ICMP errors to a service about a packet it sent, steered to the back of the quoted flow, by how.',
        'by',
        ICMP_STEERED_BY,
        (r) => eventIndex(`icmp_steered_${r}` as EventCounter),
      );
      labelled(
        'mslb_icmp_steer_refused_total',
        'ICMP errors to a service not steered (dropped), or copies not sent, by why.',
        'reason',
        ICMP_REFUSED_REASONS,
        (r) => eventIndex(`icmp_refused_${r}` as EventCounter),
      );
    }

    const backendCounter = (name: string, help: string, offset: number) =>
      new Counter({
        name,
        help,
        labelNames: ['backend'],
        registers: reg,
        collect() {
          this.reset();
          const b = blocks();
          for (const be of backends()) {
            if (!Number.isInteger(be.slot) || be.slot < 0 || be.slot >= MAX_BACKEND_SLOTS) continue;
            const i = backendPacketsIndex(be.slot) + offset;
            this.inc({ backend: be.name }, Math.max(0, sumCounter(b, i) - (self.backendBase.get(i) ?? 0)));
          }
        },
      });
    backendCounter('mslb_backend_packets_total', 'Packets sent to each back.', 0);
    backendCounter('mslb_backend_bytes_total', 'Bytes sent to each back.', 1);

    // Per service: the label values are the configured services, read at scrape time like the backs.
    const services = src.services ?? (() => []);
    const inService = (slot: number) => Number.isInteger(slot) && slot >= 0 && slot < MAX_SERVICE_SLOTS;
    const serviceValue = (b: readonly Float64Array[], i: number) => Math.max(0, sumCounter(b, i) - (self.serviceBase.get(i) ?? 0));
    const serviceCounter = (name: string, help: string, offset: number) =>
      new Counter({
        name,
        help,
        labelNames: ['service'],
        registers: reg,
        collect() {
          this.reset();
          const b = blocks();
          for (const sv of services()) if (inService(sv.slot)) this.inc({ service: sv.name }, serviceValue(b, servicePacketsIndex(sv.slot) + offset));
        },
      });
    serviceCounter(
      'mslb_service_packets_total',
      this.role === 'front' ? 'Packets balanced to a back, by the service they are for (as on the wire: a GSO super-packet counts as its segments).' : 'Packets forwarded to a service after translation or unwrapping, by service (as on the wire).',
      0,
    );
    serviceCounter(
      'mslb_service_bytes_total',
      this.role === 'front' ? 'Bytes of the packets balanced to a back (as the client sent them, before any tunnel header), by service.' : 'Bytes of the packets forwarded to a service (translated or unwrapped), by service.',
      1,
    );
    if (this.role === 'front') {
      const reasons = decisionReasonsFor(this.role);
      new Counter({
        name: 'mslb_service_decisions_total',
        help: 'Balancing decisions, by the service the packet is for and what decided.',
        labelNames: ['service', 'reason'],
        registers: reg,
        collect() {
          this.reset();
          const b = blocks();
          for (const sv of services()) {
            if (!inService(sv.slot)) continue;
            for (const r of reasons) this.inc({ service: sv.name, reason: r }, serviceValue(b, serviceDecisionIndex(sv.slot, r)));
          }
        },
      });
    }
    if (this.role === 'front') {
      new Gauge({
        name: 'mslb_backend_flows',
        help: 'Flows pinned to each back in the flow tables (summed over workers); a draining back is done at 0.',
        labelNames: ['backend'],
        registers: reg,
        collect() {
          this.reset();
          const b = blocks();
          for (const be of backends()) {
            if (!Number.isInteger(be.slot) || be.slot < 0 || be.slot >= MAX_BACKEND_SLOTS) continue;
            this.set({ backend: be.name }, sumCounter(b, backendFlowsIndex(be.slot)));
          }
        },
      });
    }
    new Gauge({
      name: 'mslb_backend_up',
      help: 'Whether each back of the table in force is up (1) or down (0).',
      labelNames: ['backend'],
      registers: reg,
      collect() {
        this.reset();
        for (const be of backends()) this.set({ backend: be.name }, be.up ? 1 : 0);
      },
    });
    if (this.role === 'front') registerHealthMetrics(this.registry, src.healthProbes ?? (() => []));
    if (this.role === 'front') {
      // Per pool, for alerts like "a pool with no member up" (it then fails open or, with
      // failClosed, drops as backend_down) without joining against the table.
      const pools = src.pools ?? (() => []);
      new Gauge({
        name: 'mslb_pool_members',
        help: 'Members configured in each pool of the table in force.',
        labelNames: ['pool'],
        registers: reg,
        collect() {
          this.reset();
          for (const p of pools()) this.set({ pool: p.name }, p.members);
        },
      });
      new Gauge({
        name: 'mslb_pool_members_up',
        help: 'Members of each pool of the table in force that are up now.',
        labelNames: ['pool'],
        registers: reg,
        collect() {
          this.reset();
          for (const p of pools()) this.set({ pool: p.name }, p.up);
        },
      });
    }

    new Gauge({
      name: 'mslb_table_routes',
      help: 'Routes of the table in force, by address family.',
      labelNames: ['family'],
      registers: reg,
      collect() {
        const t = tableRoutes();
        this.set({ family: 'ipv4' }, t.ipv4);
        this.set({ family: 'ipv6' }, t.ipv6);
      },
    });
    new Counter({
      name: 'mslb_config_reloads_total',
      help: 'Table/config reloads attempted, by result (a failure keeps the previous table).',
      labelNames: ['result'],
      registers: reg,
      collect() {
        this.reset();
        this.inc({ result: 'success' }, self.reloadsOk);
        this.inc({ result: 'failure' }, self.reloadsFailed);
      },
    });
    new Gauge({
      name: 'mslb_config_last_reload_success_timestamp_seconds',
      help: 'Unix time of the last successful table load (start-up or reload); 0 before any.',
      registers: reg,
      collect() {
        this.set(self.lastSuccess);
      },
    });
    new Gauge({
      name: 'mslb_config_last_reload_successful',
      help: 'Whether the file on disk is the one in force: 1 after a load, reload or unchanged file, 0 while an edit is rejected (the previous one keeps serving).',
      registers: reg,
      collect() {
        this.set(self.lastReloadOk);
      },
    });
    if (this.role === 'front') {
      new Gauge({
        name: 'mslb_table_info',
        help: 'Always 1; hash: hash of the table in force (its canonical content: equal on fronts with equal tables).',
        labelNames: ['hash'],
        registers: reg,
        collect() {
          this.reset();
          if (self.tableHash !== '') this.set({ hash: self.tableHash }, 1);
        },
      });
    }
    new Gauge({
      name: 'mslb_workers',
      help: 'Worker threads (TUN queues) running now (a worker that exited is not counted).',
      registers: reg,
      collect() {
        this.set(liveWorkers ? liveWorkers() : blocks().length);
      },
    });
    new Gauge({
      name: 'mslb_offload_enabled',
      help: 'Whether TUN offloads (virtio-net header, GSO/GRO) are in use.',
      registers: reg,
      collect() {
        this.set(offload() ? 1 : 0);
      },
    });
    const udpTunnel = src.udpTunnelOffload ?? (() => false);
    new Gauge({
      name: 'mslb_offload_udp_tunnel_enabled',
      help: 'Whether UDP-tunnel super-packets are in use (offload.udpTunnel, probed at start-up): the front writes TCP bursts into UDP tunnels as super-packets the kernel segments; the back reads them whole.',
      registers: reg,
      collect() {
        this.set(udpTunnel() ? 1 : 0);
      },
    });
    if (this.role === 'front') {
      new Gauge({
        name: 'mslb_flow_table_entries',
        help: 'Flow-table entries in use, summed over workers.',
        registers: reg,
        collect() {
          this.set(sumCounter(blocks(), C_FLOW_TABLE_SIZE));
        },
      });
    }
  }

  /** A reload attempt finished (file change or SIGHUP). Success also sets the timestamp. */
  recordReload(ok: boolean, atMs: number = Date.now()): void {
    this.lastReloadOk = ok ? 1 : 0;
    if (ok) {
      this.reloadsOk++;
      this.lastSuccess = atMs / 1000;
    } else {
      this.reloadsFailed++;
    }
  }

  /**
   * A backend slot now belongs to another back (its old name left the table): the new back's
   * counters start from 0. The workers' blocks are theirs to write, so the main thread keeps the
   * old totals as a base instead of clearing them.
   */
  resetBackendSlot(slot: number): void {
    const b = this.blocksOf();
    for (const i of [backendPacketsIndex(slot), backendPacketsIndex(slot) + 1]) this.backendBase.set(i, sumCounter(b, i));
  }

  /**
   * A service slot now belongs to another service address (the back's reload removed the old one
   * and the slots ran out of fresh ones): the new service's counters start from 0, as for a backend.
   */
  resetServiceSlot(slot: number): void {
    const b = this.blocksOf();
    const first = servicePacketsIndex(slot);
    for (let i = first; i < first + SERVICE_STRIDE; i++) this.serviceBase.set(i, sumCounter(b, i));
  }

  /** The start-up load succeeded: sets the timestamp without counting a reload. */
  markLoaded(atMs: number = Date.now()): void {
    this.lastSuccess = atMs / 1000;
    this.lastReloadOk = 1;
  }

  /** The file on disk went back to the content in force after a rejected edit (no reload counted). */
  markInSync(): void {
    this.lastReloadOk = 1;
  }

  /** Hash of the table in force (front): mslb_table_info{hash}. */
  setTableHash(hash: string): void {
    this.tableHash = hash;
  }

  /** Prometheus text exposition of everything. */
  metrics(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

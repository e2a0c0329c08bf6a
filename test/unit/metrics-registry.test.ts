import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import {
  backendPacketsIndex,
  backendFlowsIndex,
  C_FLOW_TABLE_SIZE,
  C_RX_BYTES,
  C_RX_PACKETS,
  C_TX_PACKETS,
  DECISION_REASONS,
  decisionIndex,
  DROP_REASONS,
  dropIndex,
  eventIndex,
  ICMP_TYPES,
  icmpIndex,
  newCounterBlock,
  SERVICE_SINK_SLOT,
  serviceDecisionIndex,
  servicePacketsIndex,
} from '../../shared/metrics/counter-layout.js';
import { ServiceMetrics, type BackendState, type ServiceState } from '../../shared/metrics/registry.js';

/** Value of one sample line `name{labels} value` (labels in prom-client's order), or undefined. */
function sample(text: string, name: string, labels = ''): number | undefined {
  const want = labels ? `${name}{${labels}} ` : `${name} `;
  const line = text.split('\n').find((l) => l.startsWith(want));
  return line === undefined ? undefined : Number(line.slice(want.length));
}

function promtool(): string | undefined {
  const r = spawnSync('promtool', ['--version'], { encoding: 'utf8' });
  return r.error ? undefined : 'promtool';
}

function setup(role: 'front' | 'back') {
  const blocks = [newCounterBlock(), newCounterBlock()];
  let backends: BackendState[] = [
    { name: 'b1', slot: 0, up: true },
    { name: 'b2', slot: 7, up: false },
  ];
  let routes = { ipv4: 2, ipv6: 3 };
  let services: ServiceState[] = [
    { name: '2001:db8:5::80', slot: 0 },
    { name: '192.0.2.80', slot: 1 },
  ];
  const m = new ServiceMetrics({
    role,
    sources: { blocks: () => blocks, backends: () => backends, tableRoutes: () => routes, offloadEnabled: () => true, services: () => services },
  });
  return {
    m,
    blocks,
    setServices: (v: ServiceState[]) => (services = v),
    setBackends: (b: BackendState[]) => (backends = b),
    setRoutes: (r: typeof routes) => (routes = r),
  };
}

describe('metrics registry', () => {
  it('sums worker blocks at scrape time', async () => {
    const { m, blocks, setBackends } = setup('front');
    blocks[0][C_RX_PACKETS] = 10;
    blocks[1][C_RX_PACKETS] = 5;
    blocks[0][C_RX_BYTES] = 1000;
    blocks[1][C_TX_PACKETS] = 4;
    blocks[0][dropIndex('no_route')] = 2;
    blocks[1][dropIndex('no_route')] = 1;
    blocks[1][decisionIndex('flow_label')] = 9;
    blocks[0][icmpIndex('packet_too_big')] = 3;
    blocks[0][backendPacketsIndex(7)] = 6;
    blocks[1][backendPacketsIndex(7)] = 1;
    blocks[1][backendPacketsIndex(7) + 1] = 700;
    blocks[0][eventIndex('lbsp_ignored_unknown_server')] = 4;
    blocks[1][eventIndex('lbsp_ignored_other_service')] = 2;
    blocks[0][backendFlowsIndex(7)] = 3;
    blocks[1][backendFlowsIndex(7)] = 2;
    blocks[0][eventIndex('flow_table_hits')] = 11;
    blocks[0][C_FLOW_TABLE_SIZE] = 20;
    blocks[1][C_FLOW_TABLE_SIZE] = 22;
    let t = await m.metrics();
    expect(sample(t, 'mslb_rx_packets_total')).toBe(15);
    expect(sample(t, 'mslb_rx_bytes_total')).toBe(1000);
    expect(sample(t, 'mslb_tx_packets_total')).toBe(4);
    expect(sample(t, 'mslb_tx_bytes_total')).toBe(0);
    expect(sample(t, 'mslb_drops_total', 'reason="no_route"')).toBe(3);
    expect(sample(t, 'mslb_decisions_total', 'reason="flow_label"')).toBe(9);
    expect(sample(t, 'mslb_icmp_sent_total', 'type="packet_too_big"')).toBe(3);
    expect(sample(t, 'mslb_backend_packets_total', 'backend="b2"')).toBe(7);
    expect(sample(t, 'mslb_backend_bytes_total', 'backend="b2"')).toBe(700);
    expect(sample(t, 'mslb_backend_packets_total', 'backend="b1"')).toBe(0);
    expect(sample(t, 'mslb_backend_up', 'backend="b1"')).toBe(1);
    expect(sample(t, 'mslb_backend_up', 'backend="b2"')).toBe(0);
    expect(sample(t, 'mslb_lbsp_ignored_total', 'reason="unknown_server"')).toBe(4);
    expect(sample(t, 'mslb_lbsp_ignored_total', 'reason="other_service"')).toBe(2);
    expect(sample(t, 'mslb_lbsp_ignored_total', 'reason="draining"')).toBe(0);
    expect(sample(t, 'mslb_backend_flows', 'backend="b2"')).toBe(5);
    expect(sample(t, 'mslb_backend_flows', 'backend="b1"')).toBe(0);
    expect(sample(t, 'mslb_flow_table_hits_total')).toBe(11);
    expect(sample(t, 'mslb_flow_table_entries')).toBe(42);
    expect(sample(t, 'mslb_table_routes', 'family="ipv4"')).toBe(2);
    expect(sample(t, 'mslb_table_routes', 'family="ipv6"')).toBe(3);
    expect(sample(t, 'mslb_workers')).toBe(2);
    expect(sample(t, 'mslb_offload_enabled')).toBe(1);
    expect(sample(t, 'mslb_info', 'version="0.1.0",role="front"')).toBe(1);
    expect(t).toContain('process_cpu_user_seconds_total');
    expect(t).toMatch(/^# TYPE nodejs_active_handles gauge/m);
    expect(t).not.toContain('nodejs_active_handles_total');
    expect(m.contentType).toMatch(/^text\/plain; version=0\.0\.4/);

    // A later scrape sees new values; a back that left the table leaves the backend series.
    blocks[1][C_RX_PACKETS] += 100;
    setBackends([{ name: 'b1', slot: 0, up: false }]);
    t = await m.metrics();
    expect(sample(t, 'mslb_rx_packets_total')).toBe(115);
    expect(sample(t, 'mslb_backend_up', 'backend="b1"')).toBe(0);
    expect(sample(t, 'mslb_backend_up', 'backend="b2"')).toBeUndefined();
    expect(sample(t, 'mslb_backend_packets_total', 'backend="b2"')).toBeUndefined();
  });

  it('exports every drop and decision reason at 0 from start-up (front)', async () => {
    const { m } = setup('front');
    const t = await m.metrics();
    for (const r of DROP_REASONS) expect(sample(t, 'mslb_drops_total', `reason="${r}"`), r).toBe(0);
    for (const r of DECISION_REASONS) expect(sample(t, 'mslb_decisions_total', `reason="${r}"`), r).toBe(0);
    for (const ty of ICMP_TYPES) expect(sample(t, 'mslb_icmp_sent_total', `type="${ty}"`), ty).toBe(0);
    expect(sample(t, 'mslb_config_reloads_total', 'result="success"')).toBe(0);
    expect(sample(t, 'mslb_config_reloads_total', 'result="failure"')).toBe(0);
    expect(sample(t, 'mslb_config_last_reload_success_timestamp_seconds')).toBe(0);
  });

  it('the back exports only the reasons it can produce', async () => {
    const { m } = setup('back');
    const t = await m.metrics();
    for (const r of ['malformed', 'not_service', 'hop_limit', 'too_big', 'unauthorized_source', 'write_error']) {
      expect(sample(t, 'mslb_drops_total', `reason="${r}"`), r).toBe(0);
    }
    expect(sample(t, 'mslb_drops_total', 'reason="no_route"')).toBeUndefined();
    expect(sample(t, 'mslb_drops_total', 'reason="backend_down"')).toBeUndefined();
    expect(t).not.toMatch(/^mslb_decisions_total\{/m);
    expect(t).toContain('# TYPE mslb_decisions_total counter');
    expect(sample(t, 'mslb_lbsp_stamped_total')).toBe(0);
    expect(sample(t, 'mslb_mss_clamped_total')).toBe(0);
    expect(t).not.toContain('mslb_flow_table_hits_total');
    expect(sample(t, 'mslb_info', 'version="0.1.0",role="back"')).toBe(1);
  });

  it('mslb_workers counts the workers alive, not the counter blocks of every worker started', async () => {
    const blocks = [newCounterBlock(), newCounterBlock()];
    let live = 2;
    const m = new ServiceMetrics({ role: 'front', sources: { blocks: () => blocks, liveWorkers: () => live }, defaultMetrics: false });
    expect(sample(await m.metrics(), 'mslb_workers')).toBe(2);
    live = 1; // one exited: its block still counts in the totals
    expect(sample(await m.metrics(), 'mslb_workers')).toBe(1);
  });

  it('a reused backend slot starts the new back\'s counters from 0', async () => {
    const blocks = [newCounterBlock(), newCounterBlock()];
    let backends: BackendState[] = [{ name: 'old', slot: 3, up: true }];
    const m = new ServiceMetrics({ role: 'front', sources: { blocks: () => blocks, backends: () => backends }, defaultMetrics: false });
    blocks[0]![backendPacketsIndex(3)] = 40;
    blocks[1]![backendPacketsIndex(3) + 1] = 4000;
    expect(sample(await m.metrics(), 'mslb_backend_packets_total', 'backend="old"')).toBe(40);
    m.resetBackendSlot(3);
    backends = [{ name: 'new', slot: 3, up: true }];
    blocks[1]![backendPacketsIndex(3)] += 2;
    const t = await m.metrics();
    expect(sample(t, 'mslb_backend_packets_total', 'backend="new"')).toBe(2);
    expect(sample(t, 'mslb_backend_bytes_total', 'backend="new"')).toBe(0);
  });

  it('per service: packets, bytes and decisions summed over workers, every configured service and reason at 0 from start-up', async () => {
    const { m, blocks } = setup('front');
    let t = await m.metrics();
    for (const sv of ['2001:db8:5::80', '192.0.2.80']) {
      expect(sample(t, 'mslb_service_packets_total', `service="${sv}"`), sv).toBe(0);
      expect(sample(t, 'mslb_service_bytes_total', `service="${sv}"`), sv).toBe(0);
      for (const r of DECISION_REASONS) expect(sample(t, 'mslb_service_decisions_total', `service="${sv}",reason="${r}"`), `${sv} ${r}`).toBe(0);
    }
    blocks[0][servicePacketsIndex(0)] = 3;
    blocks[1][servicePacketsIndex(0)] = 4;
    blocks[1][servicePacketsIndex(0) + 1] = 900;
    blocks[0][servicePacketsIndex(1)] = 5;
    blocks[0][serviceDecisionIndex(1, 'flow_table')] = 4;
    blocks[1][serviceDecisionIndex(1, 'source_prefix')] = 1;
    blocks[0][servicePacketsIndex(SERVICE_SINK_SLOT)] = 99; // never exported
    t = await m.metrics();
    expect(sample(t, 'mslb_service_packets_total', 'service="2001:db8:5::80"')).toBe(7);
    expect(sample(t, 'mslb_service_bytes_total', 'service="2001:db8:5::80"')).toBe(900);
    expect(sample(t, 'mslb_service_packets_total', 'service="192.0.2.80"')).toBe(5);
    expect(sample(t, 'mslb_service_decisions_total', 'service="192.0.2.80",reason="flow_table"')).toBe(4);
    expect(sample(t, 'mslb_service_decisions_total', 'service="192.0.2.80",reason="source_prefix"')).toBe(1);
    expect(sample(t, 'mslb_service_decisions_total', 'service="2001:db8:5::80",reason="flow_table"')).toBe(0);
    expect(t.match(/^mslb_service_packets_total\{/gm)).toHaveLength(2);
  });

  it('per service on the back: packets and bytes, no decisions; the label set follows the services in force', async () => {
    const { m, blocks, setServices } = setup('back');
    blocks[0][servicePacketsIndex(1)] = 6;
    let t = await m.metrics();
    expect(sample(t, 'mslb_service_packets_total', 'service="192.0.2.80"')).toBe(6);
    expect(sample(t, 'mslb_service_packets_total', 'service="2001:db8:5::80"')).toBe(0);
    expect(t).not.toContain('mslb_service_decisions_total');
    // a reload removed 192.0.2.80 and added 2001:db8:5::81 in a fresh slot
    setServices([{ name: '2001:db8:5::80', slot: 0 }, { name: '2001:db8:5::81', slot: 2 }]);
    t = await m.metrics();
    expect(sample(t, 'mslb_service_packets_total', 'service="192.0.2.80"')).toBeUndefined();
    expect(sample(t, 'mslb_service_packets_total', 'service="2001:db8:5::81"')).toBe(0);
    // later a new service gets the freed slot 1: it starts from 0
    m.resetServiceSlot(1);
    setServices([{ name: '2001:db8:5::80', slot: 0 }, { name: '2001:db8:5::81', slot: 2 }, { name: '198.51.100.80', slot: 1 }]);
    blocks[1][servicePacketsIndex(1)] += 2;
    t = await m.metrics();
    expect(sample(t, 'mslb_service_packets_total', 'service="198.51.100.80"')).toBe(2);
    expect(sample(t, 'mslb_service_bytes_total', 'service="198.51.100.80"')).toBe(0);
  });

  it('counts reloads and keeps the last success time', async () => {
    const { m } = setup('front');
    m.markLoaded(1_700_000_000_000);
    let t = await m.metrics();
    expect(sample(t, 'mslb_config_last_reload_success_timestamp_seconds')).toBe(1_700_000_000);
    expect(sample(t, 'mslb_config_reloads_total', 'result="success"')).toBe(0);
    m.recordReload(false, 1_700_000_100_000);
    m.recordReload(true, 1_700_000_200_500);
    m.recordReload(false, 1_700_000_300_000);
    t = await m.metrics();
    expect(sample(t, 'mslb_config_reloads_total', 'result="success"')).toBe(1);
    expect(sample(t, 'mslb_config_reloads_total', 'result="failure"')).toBe(2);
    expect(sample(t, 'mslb_config_last_reload_success_timestamp_seconds')).toBe(1_700_000_200.5);
  });

  const tool = promtool();
  it.skipIf(!tool)('passes `promtool check metrics` (front and back)', async () => {
    for (const role of ['front', 'back'] as const) {
      const { m, blocks } = setup(role);
      blocks[0][C_RX_PACKETS] = 1;
      const text = await m.metrics();
      // promtool exits non-zero and names the problem on stdout/stderr when a lint fails.
      const r = spawnSync(tool!, ['check', 'metrics'], { input: text, encoding: 'utf8' });
      expect(`${r.status} ${r.stdout}${r.stderr}`.trim(), role).toBe('0');
    }
  });
  if (!tool) console.warn('metrics-registry.test: promtool not installed (Debian package `prometheus`): skipping `promtool check metrics`');
});

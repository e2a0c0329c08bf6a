// Runs one processor fixture case (test/fixtures/*.json, made by make_processor_fixtures.py) through
// the engine's public seam: the role's processor built from the case's user-facing config (and, for a
// front, its table), the batch loop, and the in-memory FakeTun. Each input is read in a batch of its
// own, so what a packet produces is written before the next packet is read. All coupling to engine
// internals lives in runProcessorCase(): when the loop or the processor seam changes, only it does.
import { vi } from 'vitest';
import { BatchLoop } from '../../shared/engine/batch-loop.js';
import { FakeTun } from '../../shared/tun/fake-tun.js';
import {
  C_RX_PACKETS,
  C_TX_PACKETS,
  DECISION_REASONS,
  DROP_REASONS,
  EVENT_COUNTERS,
  ICMP_TYPES,
  MAX_BACKEND_SLOTS,
  decisionIndex,
  dropIndex,
  eventIndex,
  icmpIndex,
  newCounterBlock,
} from '../../shared/metrics/counter-layout.js';
import type { RoleProcessor } from '../../shared/engine/worker-runtime.js';
import { frontConfigFromValue } from '../../front/front-config.js';
import { frontRoleFromConfig } from '../../front/front-role.js';
import { FrontProcessor } from '../../front/front-processor.js';
import { PmtuCache } from '../../shared/tunnel/path-mtu-cache.js';
import { validateTable } from '../../front/table/table-loader.js';
import { CompiledTable } from '../../front/table/compiled-table.js';
import { backConfigFromValue } from '../../back/back-config.js';
import { backRoleFromConfig } from '../../back/back-role.js';
import { BackProcessor } from '../../back/back-processor.js';

export interface ProcessorCase {
  description: string;
  role: 'front' | 'back';
  /** The service's config as a user writes it (front.yaml / back.yaml), as an object. */
  config: Record<string, unknown>;
  /** Front: the table file's content, as an object. */
  table?: Record<string, unknown>;
  /** Front: backs health checking has marked down. */
  down?: string[];
  /** The service's clock (ms) for the whole case. */
  clockMs: number;
  /** The first n packets written are refused by the fake kernel. */
  failWrites?: number;
  /** Packets the kernel hands to the TUN, hex. */
  inputs: string[];
  /** With offloads (IFF_VNET_HDR): each input's 12-byte virtio_net_hdr, hex. */
  vnet?: string[];
  /** With offloads: the virtio_net_hdr written with each output, hex. */
  outputsVnet?: string[];
  /** Wire packets received / sent when not one per input / output (a GSO super-packet counts its segments). */
  rxPackets?: number;
  txPackets?: number;
  /** Read batches when not one per input (an input the device drops on read makes none). */
  readBatches?: number;
  /** Packets the service must write, in order, hex. */
  outputs: string[];
  /**
   * Front with offloads and encap.udpPort: the loop gets a tunnel TAP (MAC TAP_MAC); the frames it
   * must write there, in order, hex, and their 12-byte virtio headers.
   */
  tapOutputs?: string[];
  tapOutputsVnet?: string[];
  /** Non-zero counter deltas: drop.<reason>, decision.<reason>, icmp.<type>, event.<name>. */
  counters: Record<string, number>;
}

export interface CaseRun {
  /** Every packet written, in order, hex. */
  written: string[];
  /** With offloads: the virtio_net_hdr written with each packet, hex. */
  writtenVnet: string[];
  /** With a tunnel TAP: the frames and virtio headers written there. */
  tapWritten: string[];
  tapWrittenVnet: string[];
  /** Non-zero deltas of the named counters (event.read_batches left out: see readBatches). */
  counters: Record<string, number>;
  rxPackets: number;
  txPackets: number;
  readBatches: number;
}

/** The tunnel TAP's MAC in cases with tapOutputs (make_processor_fixtures.py TAP_MAC). */
const TAP_MAC = Uint8Array.of(0x02, 0x00, 0x5e, 0x00, 0x53, 0x01);

/** Hash seed of the flow table / client-segment cache: fixed, so a case runs the same every time. */
const SEED = 0x5eed;

/** Every named counter a case may expect, with its slot in the counter block. */
export const NAMED_COUNTERS: ReadonlyArray<readonly [string, number]> = [
  ...DROP_REASONS.map((r) => [`drop.${r}`, dropIndex(r)] as const),
  ...DECISION_REASONS.map((r) => [`decision.${r}`, decisionIndex(r)] as const),
  ...ICMP_TYPES.map((t) => [`icmp.${t}`, icmpIndex(t)] as const),
  ...EVENT_COUNTERS.filter((e) => e !== 'read_batches').map((e) => [`event.${e}`, eventIndex(e)] as const),
];

function buildFront(c: ProcessorCase, counters: Float64Array): RoleProcessor {
  const r = frontConfigFromValue({ ...c.config, table: 'table.yaml' }, '');
  if (r.config === undefined) throw new Error(`front config: ${JSON.stringify(r.errors)}`);
  const cfg = r.config;
  const v = validateTable(c.table ?? {}, 'table.yaml', { services: cfg.services, mode: cfg.mode, encap: cfg.encap });
  if (v.table === undefined || v.errors.length > 0) throw new Error(`table: ${JSON.stringify(v.errors)}`);
  const slots = new Map<string, number>();
  const slotOf = (n: string): number => {
    if (!slots.has(n)) slots.set(n, slots.size);
    return slots.get(n)!;
  };
  const up = new Uint8Array(new SharedArrayBuffer(MAX_BACKEND_SLOTS)).fill(1);
  const table = CompiledTable.compile(v.table, { services: cfg.services, flowLabelEnabled: cfg.flowLabel.enabled, lbspEnabled: cfg.lbsp.enabled, slotOf, up });
  for (const name of c.down ?? []) {
    if (!slots.has(name)) throw new Error(`down: no back ${name}`);
    up[slots.get(name)!] = 0;
  }
  table.refreshUp();
  // as front/main.ts: the path MTU toward the backs is encap.mtu, else the TUN MTU until routes are read
  const pmtu = PmtuCache.create(cfg.encap.mtu > 0 ? cfg.encap.mtu : cfg.tun.mtu);
  const p = new FrontProcessor({ ...frontRoleFromConfig(cfg), pmtu: pmtu.toShared() }, counters, () => c.clockMs, SEED);
  p.setTable(table);
  return p;
}

function buildBack(c: ProcessorCase, counters: Float64Array): RoleProcessor {
  const r = backConfigFromValue(c.config, '');
  if (r.config === undefined) throw new Error(`back config: ${JSON.stringify(r.errors)}`);
  return new BackProcessor(backRoleFromConfig(r.config), counters, () => c.clockMs, SEED);
}

/** Build the case's role and processor, push its inputs through a FakeTun and the batch loop. */
export function runProcessorCase(c: ProcessorCase): CaseRun {
  // The processors get the case's clock; the loop reads Date.now() once per batch: pin it there too.
  vi.useFakeTimers({ toFake: ['Date'], now: c.clockMs });
  try {
    const counters = newCounterBlock();
    const processor = c.role === 'front' ? buildFront(c, counters) : buildBack(c, counters);
    const offloads = c.vnet !== undefined;
    const dev = new FakeTun({ batchSize: offloads ? 8 : 64, queueLimit: 1000, vnetHdr: offloads });
    const tap = c.tapOutputs !== undefined ? new FakeTun({ batchSize: 1, vnetHdr: true }) : undefined;
    const loop = new BatchLoop(
      dev,
      processor,
      counters,
      (err) => {
        throw err;
      },
      tap !== undefined ? { tap: { dev: tap, mac: TAP_MAC } } : {},
    );
    dev.failWrites = c.failWrites ?? 0;
    const bytes = (h: string): Uint8Array => Uint8Array.from(Buffer.from(h, 'hex'));
    for (const [i, h] of c.inputs.entries()) {
      if (!dev.inject(bytes(h), offloads ? bytes(c.vnet![i]!) : undefined)) throw new Error('FakeTun refused an input');
      loop.drain();
    }
    const named: Record<string, number> = {};
    for (const [name, i] of NAMED_COUNTERS) if (counters[i] !== 0) named[name] = counters[i]!;
    const written = dev.takeWritten();
    const tapWritten = tap?.takeWritten() ?? [];
    return {
      tapWritten: tapWritten.map((w) => Buffer.from(w.data).toString('hex')),
      tapWrittenVnet: tapWritten.flatMap((w) => (w.vnet === null ? [] : [Buffer.from(w.vnet).toString('hex')])),
      written: written.map((w) => Buffer.from(w.data).toString('hex')),
      writtenVnet: written.flatMap((w) => (w.vnet === null ? [] : [Buffer.from(w.vnet).toString('hex')])),
      counters: named,
      rxPackets: counters[C_RX_PACKETS]!,
      txPackets: counters[C_TX_PACKETS]!,
      readBatches: counters[eventIndex('read_batches')]!,
    };
  } finally {
    vi.useRealTimers();
  }
}

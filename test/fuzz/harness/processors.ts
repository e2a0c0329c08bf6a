// Front and back packet processors exactly as a worker builds them, over the lab's configs and
// compiled tables (deploy/lab), for the whole-processor fuzz targets. A processor is pure given
// its table: a counters block and an AuxBatch are all it touches besides the packet.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PacketProcessor } from '../../../shared/engine/packet-processor.js';
import { TxQueue } from '../../../shared/engine/tx-queue.js';
import { PacketSlab } from '../../../shared/engine/packet-slab.js';
import { SegmentSlab } from '../../../shared/engine/segment-slab.js';
import { HEADROOM } from '../../../shared/tun/tun-device.js';
import { loadFrontConfig } from '../../../front/front-config.js';
import { loadBackConfig } from '../../../back/back-config.js';
import { formatErrors } from '../../../shared/config/config-errors.js';
import { createLogger } from '../../../shared/log.js';
import { newCounterBlock, dropIndex, eventIndex, DROP_REASONS } from '../../../shared/metrics/counter-layout.js';
import { FrontProcessor } from '../../../front/front-processor.js';
import { frontRoleFromConfig } from '../../../front/front-role.js';
import { TableManager } from '../../../front/table-manager.js';
import { BackProcessor } from '../../../back/back-processor.js';
import { backRoleFromConfig } from '../../../back/back-role.js';

export const REPO = (() => {
  let d = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6 && !existsSync(join(d, 'deploy', 'lab')); i++) d = dirname(d);
  return d;
})();

export const AUX_SLOT = 2048;
export const AUX_SLOTS = 4;

/** A transmit queue with AUX_SLOTS aux slots and no segment slab (as without offloads). */
export function newAux(): TxQueue {
  return new TxQueue(1 + AUX_SLOTS, false, new PacketSlab(AUX_SLOTS, AUX_SLOT, 64), undefined);
}

/** The tunnel TAP's MAC in the offload variants (any unicast address: frames are addressed to it). */
export const TAP_MAC = new Uint8Array([0x02, 0x6d, 0x73, 0x6c, 0x62, 0x01]);

/**
 * A transmit queue as the batch loop builds it on a device with virtio headers: AUX_SLOTS aux
 * slots, a segment slab (GSO segments cut before or after a tunnel), room for every segment; the
 * tunnel TAP's MAC when `tap` (the front writes TCP super-packets into UDP tunnels whole), and
 * write-side GRO for TCP and UDP when `gro` (a device with TSO and USO: the back merges the inner
 * packets of a cut UDP super-packet).
 */
export function newOffloadQueue(tap: boolean, gro: boolean): TxQueue {
  const seg = new SegmentSlab(HEADROOM);
  const q = new TxQueue(1 + AUX_SLOTS + seg.capacity, true, new PacketSlab(AUX_SLOTS, AUX_SLOT, 64), seg);
  if (tap) q.tapMac = TAP_MAC;
  q.groTcp = gro ? 1 : 0;
  q.groUdp = gro ? 1 : 0;
  return q;
}

export interface Subject {
  name: string;
  processor: PacketProcessor;
  counters: Float64Array;
}

/**
 * The processors' clock (flow-table ages, ICMP rate limits, ID seeds): fixed and advanced by the
 * harness, so two instances fed the same inputs stay identical.
 */
export const fuzzClock = { now: 1_000_000 };
const clock = (): number => fuzzClock.now;
/**
 * Hash seed of the flow table and the back's client-segment table (random per worker in service):
 * fixed, so both instances and a replay of a crash file behave alike.
 */
const SEED = 0x1f7a3c5d;

const quiet = createLogger({ level: 'error', sink: () => {} });

function frontSubject(name: string, configFile: string): Subject {
  const { config, errors } = loadFrontConfig(join(REPO, configFile));
  if (!config) throw new Error(`${configFile}: ${formatErrors(errors)}`);
  const tm = new TableManager(config, quiet, () => {}, () => {});
  const built = tm.build();
  if (!built.table) throw new Error(`${configFile}: ${formatErrors(built.errors)}`);
  const counters = newCounterBlock();
  const p = new FrontProcessor(frontRoleFromConfig(config), counters, clock, SEED);
  p.setTable(built.table);
  return { name, processor: p, counters };
}

function backSubject(name: string, configFile: string): Subject {
  const { config, errors } = loadBackConfig(join(REPO, configFile));
  if (!config) throw new Error(`${configFile}: ${formatErrors(errors)}`);
  const counters = newCounterBlock();
  return { name, processor: new BackProcessor(backRoleFromConfig(config), counters, clock, SEED), counters };
}

/** Front variants, selected by the fuzz input's control byte. */
export const FRONT_CONFIGS: [string, string][] = [
  ['translate', 'deploy/lab/front-translate.yaml'],
  ['encap', 'deploy/lab/front-encap.yaml'],
  ['encap-mixed', 'deploy/lab/front-encap-mixed.yaml'],
  ['accept-return-tunnels', 'deploy/lab/draft/front-encap.yaml'], // acceptTunnelFrom the backs (return encapsulation)
  ['stage2', 'deploy/lab/draft/front2.yaml'], // second stage: unwraps tunnels from the first front
  ['encap-udp', 'deploy/lab/front-encap-udp.yaml'], // IP-in-UDP toward the backs (encap.udpPort)
  ['encap-mixed-udp', 'deploy/lab/front-encap-mixed-udp.yaml'],
];
export const BACK_CONFIGS: [string, string][] = [
  ['back1-auto', 'deploy/lab/back1.yaml'],
  ['back-modes', 'test/fuzz/configs/back-modes.yaml'],
  ['stamp', 'test/fuzz/configs/back-stamp.yaml'],
  ['return-encap', 'deploy/lab/draft/back1-return-encap.yaml'],
  ['back1-udp', 'deploy/lab/back1-udp.yaml'], // accepts IP-in-UDP tunnels on udpPort
];

export function frontSubjects(): Subject[] {
  return FRONT_CONFIGS.map(([n, f]) => frontSubject(n, f));
}
export function backSubjects(): Subject[] {
  return BACK_CONFIGS.map(([n, f]) => backSubject(n, f));
}

/**
 * The counters a packet that is not forwarded may be counted in, exactly one of them: every drop
 * reason, plus the events for what a processor takes in without forwarding or dropping it — a
 * multicast destination (the host's own MLD traffic, kept out of mslb_drops_total), an ICMP error
 * about the front's own tunnels (path MTU / relay), an outer fragment held for reassembly, and the
 * fragment that completes one (the whole packet is then queued from an aux slot, or dropped).
 */
export const DROP_COUNTERS: { name: string; index: number }[] = [
  ...DROP_REASONS.map((r) => ({ name: r as string, index: dropIndex(r) })),
  ...(['multicast_ignored', 'fabric_icmp_handled', 'fragments_held', 'tunnel_reassembled'] as const).map((e) => ({ name: `${e} (event)`, index: eventIndex(e) })),
];

/** Which drop counters moved between two snapshots, and by how much in total. */
export function dropDelta(before: Float64Array, after: Float64Array): { moved: string[]; total: number } {
  const moved: string[] = [];
  let total = 0;
  for (const { name, index } of DROP_COUNTERS) {
    const d = after[index] - before[index];
    if (d !== 0) moved.push(name);
    total += d;
  }
  return { moved, total };
}


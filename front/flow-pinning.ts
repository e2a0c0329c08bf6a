// SPEC section 2, step 5, around decide(): a flow's first packet is decided by the pipeline, then
// the flow is pinned to its back in this worker's FlowTable, so the connection stays there when its
// flow label changes (Linux re-randomises auto labels on RTO), when the table is edited or a member
// joins its pool. A pinned back that is down, or that the table in force no longer has, releases
// the flow (it is decided afresh).
//
// Table edits: an entry stores the back's index in the table generation it was made under, and the
// back's stable slot (slots are kept per back NAME across reloads by the table manager). When the
// generation changed, the slot is re-resolved into the new table (lazily, on the flow's next packet);
// a back whose name is gone, or that has no address for the flow's service any more, drops the entry.
//
// Fragments: non-first fragments carry no ports. The first fragment of a datagram also pins
// (src, dst, protocol, Identification) -> back, and later fragments follow it. A non-first
// fragment seen before its first fragment (reordering) is decided by the key-based pipeline
// (source / LBSP client / flow label, all in the fixed or unfragmentable part) and pins the
// datagram's ID to that choice; the first fragment, arriving later, then follows the datagram's
// pin rather than its flow's, so every fragment of a datagram reaches the same back even when the
// flow's pinned back differs from the key-based choice (label changed, table edited).
import type { PacketInfo } from '../shared/packet/packet-info.js';
import { Proto } from '../shared/packet/constants.js';
import type { CompiledTable } from './table/compiled-table.js';
import { BACKEND_FLOWS_BASE, C_FLOW_TABLE_SIZE, MAX_BACKEND_SLOTS, decisionIndex, eventIndex } from '../shared/metrics/counter-layout.js';
import { FlowTable, KEY_WORDS, KIND_FLOW, KIND_FRAGMENT } from './flow-table.js';
import type { FlowEntry, FlowQuery, FlowSnapshot } from '../shared/engine/worker-messages.js';

const TCP_FIN = 0x01;
const TCP_SYN = 0x02;
const TCP_RST = 0x04;
const TCP_ACK = 0x10;
/** Idle timeout once a FIN or RST was seen (bounded by the configured TCP timeout). */
export const CLOSING_TIMEOUT_MS = 10_000;
/** Buckets the per-batch sweep looks at. */
const SWEEP_BUCKETS = 64;

const DEC_FLOW_TABLE = decisionIndex('flow_table');
const E_HITS = eventIndex('flow_table_hits');
const E_MISS_NONSYN = eventIndex('flow_table_misses_nonsyn');
const E_EVICTIONS = eventIndex('flow_table_evictions');
const E_INSERTS = eventIndex('flow_table_inserts');
const E_REFUSED = eventIndex('flow_table_refused');

export interface FlowTimeouts {
  /** Entries per worker. */
  size: number;
  /** Idle timeouts in seconds. */
  tcpTimeout: number;
  udpTimeout: number;
  otherTimeout: number;
}

export class FlowPinning {
  readonly table: FlowTable;
  /** Result of a hit: back index (in the table in force), its slot and the service index. */
  back = -1;
  slot = -1;
  service = -1;
  /**
   * The flow's entry in `table` after a lookup() hit or a remember() of a whole (unfragmented)
   * packet, else -1 (not pinned, a fragment).
   */
  entry = -1;
  private compiled: CompiledTable | null = null;
  private generation = 0;
  private readonly backOfSlot = new Int32Array(MAX_BACKEND_SLOTS).fill(-1);
  private readonly tcpMs: number;
  private readonly udpMs: number;
  private readonly otherMs: number;
  private readonly closingMs: number;
  private now = 0;
  private needClock = true;
  private seenInserts = 0;
  private seenEvictions = 0;
  private seenRefused = 0;

  constructor(
    cfg: FlowTimeouts,
    private readonly counters: Float64Array,
    /** Clock in ms (tests pass a fake one). Read once per batch. */
    private readonly clock: () => number = Date.now,
    seed?: number,
  ) {
    // per-slot flow counts live in the shared counter block: mslb_backend_flows reads them there;
    // a new table starts empty (a restarted worker may get its predecessor's block)
    counters.fill(0, BACKEND_FLOWS_BASE, BACKEND_FLOWS_BASE + MAX_BACKEND_SLOTS);
    this.table = new FlowTable(cfg.size, seed, counters.subarray(BACKEND_FLOWS_BASE, BACKEND_FLOWS_BASE + MAX_BACKEND_SLOTS));
    this.tcpMs = cfg.tcpTimeout * 1000;
    this.udpMs = cfg.udpTimeout * 1000;
    this.otherMs = cfg.otherTimeout * 1000;
    this.closingMs = Math.min(CLOSING_TIMEOUT_MS, this.tcpMs);
  }

  /** A new compiled table is in force (off the hot path): bump the generation, map slot -> back. */
  setTable(t: CompiledTable): void {
    this.compiled = t;
    this.generation = (this.generation + 1) >>> 0;
    this.backOfSlot.fill(-1);
    const slots = t.a.backSlot;
    for (let b = 0; b < slots.length && b < t.backCount; b++) {
      const s = slots[b]!;
      if (s >= 0 && s < MAX_BACKEND_SLOTS) this.backOfSlot[s] = b;
    }
  }

  /** Per batch: the next packet reads the clock again; sweep a few buckets for idle entries. */
  endBatch(nowMs: number): void {
    this.needClock = true;
    this.table.sweep(nowMs, SWEEP_BUCKETS);
    this.sync();
  }

  private sync(): void {
    const ft = this.table, c = this.counters;
    if (ft.inserts !== this.seenInserts) { c[E_INSERTS] += ft.inserts - this.seenInserts; this.seenInserts = ft.inserts; }
    if (ft.evictions !== this.seenEvictions) { c[E_EVICTIONS] += ft.evictions - this.seenEvictions; this.seenEvictions = ft.evictions; }
    if (ft.refused !== this.seenRefused) { c[E_REFUSED] += ft.refused - this.seenRefused; this.seenRefused = ft.refused; }
    c[C_FLOW_TABLE_SIZE] = ft.count;
  }

  private tick(): number {
    if (this.needClock) { this.now = this.clock(); this.needClock = false; }
    return this.now;
  }

  private static nonFirstFragment(info: PacketInfo): boolean {
    return info.isFragment && info.fragOffset !== 0;
  }

  private static firstFragment(info: PacketInfo): boolean {
    return info.isFragment && info.fragOffset === 0 && info.moreFragments;
  }

  private setKey(info: PacketInfo): void {
    const fam = info.version;
    if (FlowPinning.nonFirstFragment(info)) this.table.setFragmentKey(fam, info.proto, info.src, info.dst, info.fragId);
    else this.table.setFlowKey(fam, info.proto, info.src, info.dst, info.srcPort, info.dstPort);
  }

  /**
   * Before decide(): true when the packet's flow is pinned to a back that is usable now (back, slot,
   * service set; decision reason flow_table and the hit counted). False: decide afresh (a non-SYN
   * TCP packet that misses is counted in flow_table_misses_nonsyn).
   */
  lookup(info: PacketInfo): boolean {
    this.entry = -1;
    const t = this.compiled;
    if (t === null) return false;
    const s = t.serviceIndex(info.version, info.dst);
    if (s < 0) return false;
    const now = this.tick();
    const ft = this.table;
    if (FlowPinning.firstFragment(info)) {
      // a non-first fragment of this datagram came first and chose its back: the datagram stays whole
      ft.setFragmentKey(info.version, info.proto, info.src, info.dst, info.fragId);
      const j = ft.find(now);
      if (j >= 0 && this.usable(j, t, s)) {
        const c = this.counters;
        c[E_HITS]++;
        c[DEC_FLOW_TABLE]++;
        this.sync();
        return true;
      }
    }
    this.setKey(info);
    const i = ft.find(now);
    const tcp = info.proto === Proto.TCP && info.l4Off >= 0;
    const flags = info.tcpFlags;
    if (i < 0) {
      if (tcp && (flags & TCP_SYN) === 0) this.counters[E_MISS_NONSYN]++;
      this.sync();
      return false;
    }
    // A new connection reusing the 4-tuple of one that closed: decide it afresh.
    if (tcp && (flags & (TCP_SYN | TCP_ACK)) === TCP_SYN && ft.isClosing(i)) {
      ft.remove(i);
      this.sync();
      return false;
    }
    const slot = ft.slot[i]!;
    let back = ft.back[i]!;
    if (ft.gen[i] !== this.generation) {
      back = this.backOfSlot[slot]!;
      if (back < 0 || t.a.backAddrFamily[back * t.serviceCount + s] === 0) {
        ft.remove(i); // that back is gone from the table (or no longer serves this service)
        this.sync();
        return false;
      }
      ft.back[i] = back;
      ft.gen[i] = this.generation;
    }
    if (t.a.up[slot] === 0) {
      ft.remove(i); // a pinned back that goes down releases its flows
      this.sync();
      return false;
    }
    // Admission (flow-table.ts): a second packet of the flow confirms it; for TCP not a repeated
    // SYN, which a spoofer can send as easily as the first
    if (!tcp || (flags & TCP_SYN) === 0) ft.confirm(i);
    if (tcp && (flags & (TCP_FIN | TCP_RST)) !== 0) ft.markClosing(i, this.closingMs);
    this.back = back;
    this.slot = slot;
    this.service = s;
    if (!info.isFragment) this.entry = i;
    const c = this.counters;
    c[E_HITS]++;
    c[DEC_FLOW_TABLE]++;
    // a plain hit inserts, evicts and refuses nothing: no counters to sync (the common packet)
    if (FlowPinning.firstFragment(info)) this.pinFragment(info, back, slot, now);
    return true;
  }

  /**
   * Entry i (a datagram's fragment pin) still names a usable back in table t for service s: sets
   * back/slot/service (re-resolving a table edit by slot). False (entry removed) otherwise.
   */
  private usable(i: number, t: CompiledTable, s: number): boolean {
    const ft = this.table;
    const slot = ft.slot[i]!;
    let back = ft.back[i]!;
    if (ft.gen[i] !== this.generation) {
      back = this.backOfSlot[slot]!;
      if (back < 0 || t.a.backAddrFamily[back * t.serviceCount + s] === 0) {
        ft.remove(i);
        return false;
      }
      ft.back[i] = back;
      ft.gen[i] = this.generation;
    }
    if (t.a.up[slot] === 0) {
      ft.remove(i);
      return false;
    }
    this.back = back;
    this.slot = slot;
    this.service = s;
    return true;
  }

  /** After decide() chose `back` (slot) for the packet: pin its flow (and its datagram if fragmented). */
  remember(info: PacketInfo, back: number, slot: number): void {
    this.entry = -1;
    if (this.compiled === null) return;
    if (FlowPinning.nonFirstFragment(info)) {
      // decided by key (reordering: before its first fragment): pin the datagram to that choice
      this.pinFragment(info, back, slot, this.tick());
      return;
    }
    const now = this.tick();
    const ft = this.table;
    this.setKey(info);
    let i = ft.find(now); // normally absent (lookup() missed or released it)
    if (i < 0) i = ft.insert(now, back, slot, this.generation, this.timeoutFor(info)); // -1: refused by admission
    else ft.repin(i, back, slot, this.generation);
    if (!info.isFragment) this.entry = i;
    if (i >= 0 && info.proto === Proto.TCP && info.l4Off >= 0 && (info.tcpFlags & (TCP_FIN | TCP_RST)) !== 0) ft.markClosing(i, this.closingMs);
    if (FlowPinning.firstFragment(info)) this.pinFragment(info, back, slot, now);
    else this.sync();
  }

  private timeoutFor(info: PacketInfo): number {
    const p = info.proto;
    return p === Proto.TCP ? this.tcpMs : p === Proto.UDP ? this.udpMs : this.otherMs;
  }

  /**
   * Read-only view of the pinned entries matching q (GET /flows, /lookup), at most q.limit of them.
   * A full scan of the table's typed arrays, off the packet path (between batches); allocates
   * only the answer.
   */
  snapshot(q: FlowQuery, queue: number, now: number = this.clock()): FlowSnapshot {
    const ft = this.table;
    const want = new Uint32Array(KEY_WORDS), mask = new Uint32Array(KEY_WORDS);
    // word 0 = kind << 16 | family << 8 | proto; ports = sport << 16 | dport (flows only)
    if (q.family !== undefined) { want[0] |= q.family << 8; mask[0] |= 0xff00; }
    if (q.proto !== undefined) { want[0] |= q.proto; mask[0] |= 0xff; }
    if (q.sport !== undefined || q.dport !== undefined) { want[0] |= KIND_FLOW << 16; mask[0] |= 0xff0000; }
    if (q.sport !== undefined) { want[9] |= q.sport << 16; mask[9] |= 0xffff0000; }
    if (q.dport !== undefined) { want[9] |= q.dport; mask[9] |= 0xffff; }
    for (let w = 0; w < 4; w++) {
      if (q.src) { want[1 + w] = q.src[w]!; mask[1 + w] = 0xffffffff; }
      if (q.dst) { want[5 + w] = q.dst[w]!; mask[5 + w] = 0xffffffff; }
    }
    const hits: number[] = [];
    const matched = ft.match(now, q.slot, want, mask, q.limit, hits);
    const flows: FlowEntry[] = hits.map((i) => {
      const k0 = ft.keyWord(i, 0);
      const fragment = (k0 >>> 16) === KIND_FRAGMENT;
      const ports = ft.keyWord(i, 9);
      const idle = ft.idleMs(i, now);
      return {
        kind: fragment ? 'fragment' : 'flow', family: ((k0 >>> 8) & 0xff) as 4 | 6, proto: k0 & 0xff,
        src: [ft.keyWord(i, 1), ft.keyWord(i, 2), ft.keyWord(i, 3), ft.keyWord(i, 4)],
        dst: [ft.keyWord(i, 5), ft.keyWord(i, 6), ft.keyWord(i, 7), ft.keyWord(i, 8)],
        sport: fragment ? 0 : ports >>> 16, dport: fragment ? 0 : ports & 0xffff, fragId: fragment ? ports : 0,
        slot: ft.slot[i]!, idleMs: idle, expiresInMs: Math.max(0, ft.timeoutMs(i) - idle), closing: ft.isClosing(i),
      };
    });
    return { type: 'flows', id: q.id, queue, total: ft.count, matched, flows };
  }

  private pinFragment(info: PacketInfo, back: number, slot: number, now: number): void {
    const ft = this.table;
    ft.setFragmentKey(info.version, info.proto, info.src, info.dst, info.fragId);
    const i = ft.find(now);
    if (i < 0) ft.insert(now, back, slot, this.generation, this.otherMs);
    else ft.repin(i, back, slot, this.generation);
    this.sync();
  }

  /**
   * For an ICMP error about a server's packet (SPEC 2 step 6): is the REVERSED flow of the quoted
   * packet (src, dst, protocol, ports as quoted) pinned to a back usable now? Sets back/slot/service
   * like lookup(), counts no hit and pins nothing: the error is not a packet of that flow.
   */
  lookupReversed(family: number, proto: number, qSrc: Uint32Array, qDst: Uint32Array, qSrcPort: number, qDstPort: number): boolean {
    const t = this.compiled;
    if (t === null) return false;
    const s = t.serviceIndex(family, qSrc);
    if (s < 0) return false;
    const ft = this.table;
    ft.setFlowKey(family, proto, qDst, qSrc, qDstPort, qSrcPort);
    const i = ft.find(this.tick());
    const ok = i >= 0 && this.usable(i, t, s);
    this.sync();
    return ok;
  }
}

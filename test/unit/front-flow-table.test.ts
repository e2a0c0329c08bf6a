// The front's flow table in the packet processor (SPEC 2 step 5): pure, crafted packets through
// FrontProcessor.process() with a compiled table and a fake clock (no TUN).
import { describe, it, expect, beforeEach } from 'vitest';
import { validateTable, type TableContext } from '../../front/table/table-loader.js';
import { CompiledTable } from '../../front/table/compiled-table.js';
import { buildLbspHeader } from '../../shared/packet/lbsp.js';
import { C_FLOW_TABLE_SIZE, decisionIndex, eventIndex, newCounterBlock } from '../../shared/metrics/counter-layout.js';
import { newTxQueue } from '../helpers/tx-queue.js';
import { FrontProcessor } from '../../front/front-processor.js';
import type { FrontRole } from '../../front/front-role.js';
import { decide, DecisionInput, DecisionResult } from '../../front/decision.js';
import { words } from '../vectors/load.js';

const S6 = '2001:db8:5::80';
const ctx: TableContext = { services: [S6, '192.0.2.80'], mode: 'translate', encap: { source: 'service', source4: '', source6: '' } };
const ADDR: Record<string, string> = { b1: '2001:db8:b::1', b2: '2001:db8:b::2', b3: '2001:db8:b::3', b4: '2001:db8:b::4' };
const backsOf = (names: string[]) => Object.fromEntries(names.map((n) => [n, { address: ADDR[n] }]));

const TCP_SYN = 0x02, TCP_ACK = 0x10, TCP_FIN = 0x01, TCP_RST = 0x04;
const tx = newTxQueue(0);

interface Pkt { src?: string; label?: number; sport?: number; dport?: number; flags?: number; proto?: number; lbspServer?: string; frag?: { id: number; offset: number; more: boolean } }

/** An IPv6 packet to S: optional LBSP Destination Options, optional Fragment header, TCP or UDP. */
function packet(p: Pkt): [Uint8Array, number, number] {
  const buf = new Uint8Array(128 + 200);
  const off = 128;
  const proto = p.proto ?? 6;
  let q = off + 40;
  const chain: number[] = [];
  if (p.frag) chain.push(44);
  if (p.lbspServer && !(p.frag && p.frag.offset > 0)) chain.push(60);
  const first = chain.length > 0 ? chain[0]! : proto;
  for (let k = 0; k < chain.length; k++) {
    const nh = k + 1 < chain.length ? chain[k + 1]! : proto;
    if (chain[k] === 44) {
      buf[q] = nh; buf[q + 1] = 0;
      const fo = p.frag!.offset | (p.frag!.more ? 1 : 0);
      buf[q + 2] = fo >> 8; buf[q + 3] = fo & 0xff;
      const id = p.frag!.id;
      buf[q + 4] = id >>> 24; buf[q + 5] = (id >>> 16) & 0xff; buf[q + 6] = (id >>> 8) & 0xff; buf[q + 7] = id & 0xff;
      q += 8;
      if (p.frag!.offset > 0) break;
    } else {
      buildLbspHeader(buf, q, nh, 0x1e, words('2001:db8:cc::1'), words(p.lbspServer!));
      q += 40;
    }
  }
  const nonFirst = p.frag !== undefined && p.frag.offset > 0;
  if (nonFirst) q += 64; // payload only
  else if (proto === 6) {
    const sp = p.sport ?? 40000, dp = p.dport ?? 80;
    buf[q] = sp >> 8; buf[q + 1] = sp & 0xff; buf[q + 2] = dp >> 8; buf[q + 3] = dp & 0xff;
    buf[q + 12] = 5 << 4; buf[q + 13] = p.flags ?? TCP_ACK;
    q += 20 + 16;
  } else {
    const sp = p.sport ?? 40000, dp = p.dport ?? 7;
    buf[q] = sp >> 8; buf[q + 1] = sp & 0xff; buf[q + 2] = dp >> 8; buf[q + 3] = dp & 0xff;
    buf[q + 4] = 0; buf[q + 5] = 72;
    q += 8 + 64;
  }
  const label = p.label ?? 0;
  buf[off] = 0x60 | 0; buf[off + 1] = (label >>> 16) & 0x0f; buf[off + 2] = (label >>> 8) & 0xff; buf[off + 3] = label & 0xff;
  const pl = q - off - 40;
  buf[off + 4] = pl >> 8; buf[off + 5] = pl & 0xff; buf[off + 6] = first; buf[off + 7] = 64;
  const put = (at: number, a: string) => { const w = words(a); for (let i = 0; i < 4; i++) { buf[at + 4 * i] = w[i]! >>> 24; buf[at + 4 * i + 1] = (w[i]! >>> 16) & 0xff; buf[at + 4 * i + 2] = (w[i]! >>> 8) & 0xff; buf[at + 4 * i + 3] = w[i]! & 0xff; } };
  put(off + 8, p.src ?? '2001:db8:c1::10');
  put(off + 24, S6);
  return [buf, off, q - off];
}

function dstOf(buf: Uint8Array, off: number): string {
  const w: string[] = [];
  for (let i = 0; i < 8; i++) w.push(((buf[off + 24 + 2 * i]! << 8) | buf[off + 25 + 2 * i]!).toString(16));
  const a = w.join(':');
  return Object.keys(ADDR).find((n) => words(ADDR[n]!).join() === words(a).join()) ?? a;
}

describe('front flow table (processor)', () => {
  const slots = new Map<string, number>();
  const up = new Uint8Array(new SharedArrayBuffer(16));
  let now = 0;
  let counters: Float64Array;
  let fp: FrontProcessor;
  const role: FrontRole = { lbspType: 0x1e, encapSource4: null, encapSource6: null, hopLimit: 64, flowTable: { size: 4096, tcpTimeout: 300, udpTimeout: 30, otherTimeout: 30 } };

  function compile(table: unknown): CompiledTable {
    const v = validateTable(table, 'fixture.yaml', ctx);
    expect(v.errors).toEqual([]);
    return CompiledTable.compile(v.table!, {
      services: ctx.services, flowLabelEnabled: true, lbspEnabled: true, up, maglevSize: 65537,
      slotOf: (n) => { if (!slots.has(n)) slots.set(n, slots.size); return slots.get(n)!; },
    });
  }
  const pool3 = () => compile({ backs: backsOf(['b1', 'b2', 'b3']), pools: { web: { members: ['b1', 'b2', 'b3'], key: 'label' } }, routes: [{ source: '::/0', to: 'web' }] });

  /** What the pipeline alone (no flow table) picks for a label. */
  function fresh(t: CompiledTable, label: number, src = '2001:db8:c1::10'): string {
    const inp = new DecisionInput();
    inp.family = 6; inp.src.set(words(src)); inp.service.set(words(S6)); inp.flowLabel = label;
    const r = new DecisionResult();
    decide(t, inp, r);
    return t.meta.backNames[r.back]!;
  }
  /** Two labels the pipeline sends to different backs. */
  function twoLabels(t: CompiledTable): [number, number] {
    const a = 0x11111;
    for (let b = 0x22222; b < 0x22222 + 100; b++) if (fresh(t, b) !== fresh(t, a)) return [a, b];
    throw new Error('no label pair');
  }
  function send(p: Pkt): string {
    const [buf, off, len] = packet(p);
    tx.reset();
    const v = fp.process(buf, off, len, new Uint8Array(0), 0, tx);
    return v < 0 ? 'drop' : dstOf(buf, tx.offs[0]!);
  }
  const ctr = (i: number) => counters[i]!;
  const HITS = decisionIndex('flow_table');
  const EV_HITS = eventIndex('flow_table_hits');
  const MISS_NONSYN = eventIndex('flow_table_misses_nonsyn');
  const EVICT = eventIndex('flow_table_evictions');
  const INSERTS = eventIndex('flow_table_inserts');

  beforeEach(() => {
    up.fill(1);
    now = 1_000_000;
    counters = newCounterBlock();
    fp = new FrontProcessor(role, counters, () => now);
  });

  it('a connection whose flow label changes keeps its back; a new connection with that label goes where the label says', () => {
    const t = pool3();
    fp.setTable(t);
    const [l1, l2] = twoLabels(t);
    const first = send({ label: l1, flags: TCP_SYN });
    expect(first).toBe(fresh(t, l1));
    expect(ctr(decisionIndex('flow_label'))).toBe(1);
    for (let k = 0; k < 5; k++) expect(send({ label: l2, flags: TCP_ACK })).toBe(first); // re-randomised label
    expect(ctr(HITS)).toBe(5);
    expect(ctr(EV_HITS)).toBe(5);
    expect(ctr(INSERTS)).toBe(1);
    expect(ctr(C_FLOW_TABLE_SIZE)).toBe(1);
    expect(send({ label: l2, sport: 40001, flags: TCP_SYN })).toBe(fresh(t, l2)); // another connection
    expect(ctr(C_FLOW_TABLE_SIZE)).toBe(2);
    expect(ctr(MISS_NONSYN)).toBe(0);
  });

  it('a non-SYN TCP packet without an entry is counted as a miss (flows were reshuffled) and still balanced', () => {
    const t = pool3();
    fp.setTable(t);
    expect(send({ label: 5, flags: TCP_ACK })).toBe(fresh(t, 5));
    expect(ctr(MISS_NONSYN)).toBe(1);
    send({ label: 5, sport: 1, flags: TCP_SYN });
    send({ label: 5, sport: 2, proto: 17 });
    expect(ctr(MISS_NONSYN)).toBe(1);
  });

  it('a table edit keeps pinned flows on their back (re-resolved by name) while new flows follow the edit', () => {
    const t = pool3();
    fp.setTable(t);
    const pinned = send({ label: 9, flags: TCP_SYN });
    const other = ['b1', 'b2', 'b3'].find((b) => b !== pinned)!;
    // The edit: backs listed in another order (other indices), every source now routed to `other`.
    const names = ['b4', 'b3', 'b2', 'b1'];
    const t2 = compile({ backs: backsOf(names), routes: [{ source: '::/0', to: other }] });
    expect(t2.meta.backNames.indexOf(pinned)).not.toBe(t.meta.backNames.indexOf(pinned));
    fp.setTable(t2);
    expect(send({ label: 9, flags: TCP_ACK })).toBe(pinned);
    expect(send({ label: 9, sport: 40100, flags: TCP_SYN })).toBe(other);
    // An edit that removes the pinned back: its flows are decided afresh.
    const t3 = compile({ backs: backsOf(names.filter((n) => n !== pinned)), routes: [{ source: '::/0', to: other }] });
    fp.setTable(t3);
    expect(send({ label: 9, flags: TCP_ACK })).toBe(other);
    expect(ctr(MISS_NONSYN)).toBe(0);
  });

  it('a pinned back that goes down releases its flows; they do not come back when it is up again', () => {
    const t = pool3();
    fp.setTable(t);
    const pinned = send({ label: 0x77, flags: TCP_SYN });
    up[t.a.backSlot[t.meta.backNames.indexOf(pinned)]!] = 0;
    t.refreshUp();
    const moved = send({ label: 0x77, flags: TCP_ACK });
    expect(moved).not.toBe(pinned);
    expect(ctr(C_FLOW_TABLE_SIZE)).toBe(1); // released, then pinned to the new back
    up.fill(1);
    t.refreshUp();
    expect(send({ label: 0x77, flags: TCP_ACK })).toBe(moved);
  });

  it('FIN/RST shorten the entry; a new SYN on the 4-tuple of a closing flow is decided afresh', () => {
    const t = pool3();
    fp.setTable(t);
    const [l1, l2] = twoLabels(t);
    const a = send({ label: l1, flags: TCP_SYN });
    expect(send({ label: l2, flags: TCP_SYN })).toBe(a); // SYN retransmission (new label): same back
    expect(send({ label: l2, flags: TCP_FIN | TCP_ACK })).toBe(a);
    expect(send({ label: l2, flags: TCP_ACK })).toBe(a); // last ACK
    expect(send({ label: l2, flags: TCP_SYN })).toBe(fresh(t, l2)); // port reuse: a new connection
    send({ label: l2, flags: TCP_RST });
    now += 10_001; // closing timeout (10 s) instead of 300 s
    fp.endBatch(now - 1); // the clock is read once per batch
    const before = ctr(EVICT);
    send({ label: l1, flags: TCP_ACK });
    expect(ctr(EVICT)).toBe(before + 1);
    expect(ctr(MISS_NONSYN)).toBe(1);
  });

  it('idle timeouts per protocol: UDP after udpTimeout, TCP after tcpTimeout', () => {
    const t = pool3();
    fp.setTable(t);
    const [l1, l2] = twoLabels(t);
    const u = send({ label: l1, proto: 17 });
    const tc = send({ label: l1, flags: TCP_SYN });
    now += 29_000; fp.endBatch(now);
    expect(send({ label: l2, proto: 17 })).toBe(u); // 29 s: still pinned
    now += 31_000; fp.endBatch(now);
    expect(send({ label: l2, proto: 17 })).toBe(fresh(t, l2)); // 31 s idle > 30 s
    expect(send({ label: l2, flags: TCP_ACK })).toBe(tc); // 60 s idle < 300 s
    now += 301_000; fp.endBatch(now);
    expect(send({ label: l2, flags: TCP_ACK })).toBe(fresh(t, l2));
  });

  it('non-first fragments follow their datagram (src, dst, protocol, Identification)', () => {
    const t = pool3();
    fp.setTable(t);
    const [l1, l2] = twoLabels(t);
    const a = send({ label: l1, proto: 17, sport: 5000 }); // pins the UDP flow
    // A later datagram of the flow, fragmented, now with another label: the first fragment hits
    // the flow entry; the others carry no ports and follow it by fragment ID.
    expect(send({ label: l2, proto: 17, sport: 5000, frag: { id: 0xabc, offset: 0, more: true } })).toBe(a);
    expect(send({ label: l2, proto: 17, frag: { id: 0xabc, offset: 80, more: true } })).toBe(a);
    expect(send({ label: l2, proto: 17, frag: { id: 0xabc, offset: 160, more: false } })).toBe(a);
    // A non-first fragment of an unknown datagram (reordered: before its first fragment): the
    // key-based choice, pinned by datagram ID; the first fragment arriving after it follows the
    // datagram, not its flow's pinned back, so the datagram stays whole (its fragments cannot be
    // reassembled on two backs).
    const n = ctr(C_FLOW_TABLE_SIZE);
    const y = fresh(t, l2);
    expect(y).not.toBe(a);
    expect(send({ label: l2, proto: 17, frag: { id: 0xdef, offset: 80, more: false } })).toBe(y);
    expect(ctr(C_FLOW_TABLE_SIZE)).toBe(n + 1);
    expect(send({ label: l2, proto: 17, sport: 5000, frag: { id: 0xdef, offset: 0, more: true } })).toBe(y);
    // and the flow itself keeps its pinned back for its unfragmented packets
    expect(send({ label: l2, proto: 17, sport: 5000 })).toBe(a);
  });

  it('the flow table wins over an LBSP server segment for an established flow; new flows honour it', () => {
    const t = pool3();
    fp.setTable(t);
    const a = send({ label: 1, flags: TCP_SYN });
    const other = ['b1', 'b2', 'b3'].find((b) => b !== a)!;
    expect(send({ label: 1, flags: TCP_ACK, lbspServer: ADDR[other] })).toBe(a);
    expect(send({ label: 1, sport: 41000, flags: TCP_SYN, lbspServer: ADDR[other] })).toBe(other);
    expect(ctr(decisionIndex('lbsp_server'))).toBe(1);
  });

  it('bounded: many more flows than entries evict the least recently seen', () => {
    const small = new FrontProcessor({ ...role, flowTable: { ...role.flowTable!, size: 64 } }, counters, () => now);
    small.setTable(pool3());
    for (let p = 0; p < 1000; p++) {
      const [buf, off, len] = packet({ label: 3, sport: 10000 + p, flags: TCP_SYN });
      expect((tx.reset(), small.process(buf, off, len, new Uint8Array(0), 0, tx))).toBeGreaterThanOrEqual(0);
    }
    expect(ctr(C_FLOW_TABLE_SIZE)).toBeLessThanOrEqual(64 + 7);
    expect(ctr(INSERTS)).toBe(1000);
    expect(ctr(EVICT)).toBe(1000 - ctr(C_FLOW_TABLE_SIZE));
  });
  it('a spoofed flood (random sources, SYNs and UDP) does not evict established flows; a flow it never saw is adopted and protected after its second packet', () => {
    fp = new FrontProcessor({ ...role, flowTable: { ...role.flowTable!, size: 256 } }, counters, () => now, 99);
    const t = pool3();
    fp.setTable(t);
    const [a, b] = twoLabels(t);
    const est = fresh(t, a);
    const client = (c: number) => `2001:db8:c1::${(c + 1).toString(16)}`;
    for (let c = 0; c < 10; c++) {
      expect(send({ src: client(c), sport: 41000 + c, flags: TCP_SYN, label: a })).toBe(est);
      expect(send({ src: client(c), sport: 41000 + c, flags: TCP_ACK, label: a })).toBe(est);
    }
    // established elsewhere (scale-out takeover): first seen here with an ACK, then a second packet
    expect(send({ src: client(20), sport: 42000, flags: TCP_ACK, label: a })).toBe(est);
    expect(send({ src: client(20), sport: 42000, flags: TCP_ACK, label: a })).toBe(est);
    for (let i = 0; i < 5000; i++) {
      now += 0.4; // 2,500 packets per second of fake time on a 256-entry table: 2 s of flood
      const src = `2001:db8:${((i * 7919) & 0xffff).toString(16)}::${(i + 1).toString(16)}`;
      send({ src, sport: 1024 + (i % 60000), flags: TCP_SYN, proto: i % 2 === 0 ? 6 : 17, label: i & 0xfffff });
      if (i % 64 === 63) fp.endBatch(now);
    }
    // the next packets carry another label: only the pin keeps them on their back
    for (let c = 0; c < 10; c++) expect(send({ src: client(c), sport: 41000 + c, flags: TCP_ACK, label: b }), `connection ${c}`).toBe(est);
    expect(send({ src: client(20), sport: 42000, flags: TCP_ACK, label: b })).toBe(est);
    expect(ctr(INSERTS)).toBeGreaterThan(5000 * 0.9); // the flood itself was pinned, among itself
  });
});

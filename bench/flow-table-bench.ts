// Front flow table micro-benchmark: ns per packet through FrontProcessor.process() (parse, flow
// table, decision, translate) for established flows (hits), new flows (miss + decide + insert,
// evicting when full) and, for comparison, the pipeline alone (decide() without the table); plus
// heap growth over the run (the hot path must not allocate).
// Prints numbers only (no assertions). Run: npx tsc -p tsconfig.json && node --expose-gc dist/bench/flow-table-bench.js
import { FrontProcessor } from '../front/front-processor.js';
import { FlowTable } from '../front/flow-table.js';
import { decide, DecisionInput, DecisionResult } from '../front/decision.js';
import { validateTable } from '../front/table/table-loader.js';
import { CompiledTable } from '../front/table/compiled-table.js';
import { newCounterBlock } from '../shared/metrics/counter-layout.js';
import { parsePacket } from '../shared/packet/parse.js';
import { PacketInfo } from '../shared/packet/packet-info.js';
import { TxQueue } from '../shared/engine/tx-queue.js';
import { PacketSlab } from '../shared/engine/packet-slab.js';

const SLOT = 256;
const HEADROOM = 128;
const FLOWS = 4096; // packets in the slab, one flow each (distinct source port and address)
const S = [0x20010db8, 0x00050000, 0, 0x80];

function table(): CompiledTable {
  const v = validateTable({
    backs: { b1: { address: '2001:db8:b::1' }, b2: { address: '2001:db8:b::2' }, b3: { address: '2001:db8:b::3' } },
    pools: { web: { members: ['b1', 'b2', 'b3'], key: 'label' } },
    routes: [{ source: '::/0', to: 'web' }],
  }, 'bench', { services: ['2001:db8:5::80'], mode: 'translate', encap: { source: 'service', source4: '', source6: '' } });
  const slots = new Map<string, number>();
  return CompiledTable.compile(v.table!, {
    services: ['2001:db8:5::80'], flowLabelEnabled: true, lbspEnabled: true,
    slotOf: (n) => { if (!slots.has(n)) slots.set(n, slots.size); return slots.get(n)!; },
  });
}

/** FLOWS IPv6 TCP ACKs to S, flow i from 2001:db8:c1::<i> port 10000+i, label i. `salt` varies the flows. */
function slab(salt: number): Uint8Array {
  const buf = new Uint8Array(SLOT * FLOWS);
  for (let i = 0; i < FLOWS; i++) {
    const o = i * SLOT + HEADROOM;
    const label = (i * 2654435761 + salt) & 0xfffff;
    buf[o] = 0x60; buf[o + 1] = label >> 16; buf[o + 2] = (label >> 8) & 0xff; buf[o + 3] = label & 0xff;
    buf[o + 5] = 20 + 64; buf[o + 6] = 6; buf[o + 7] = 64;
    buf[o + 8] = 0x20; buf[o + 9] = 0x01; buf[o + 10] = 0x0d; buf[o + 11] = 0xb8; buf[o + 13] = 0xc1;
    buf[o + 20] = (salt >> 8) & 0xff; buf[o + 21] = salt & 0xff; buf[o + 22] = i >> 8; buf[o + 23] = i & 0xff;
    for (let k = 0; k < 4; k++) { const w = S[k]!; buf[o + 24 + 4 * k] = w >>> 24; buf[o + 25 + 4 * k] = (w >>> 16) & 0xff; buf[o + 26 + 4 * k] = (w >>> 8) & 0xff; buf[o + 27 + 4 * k] = w & 0xff; }
    const t = o + 40;
    const sp = 10000 + i;
    buf[t] = sp >> 8; buf[t + 1] = sp & 0xff; buf[t + 3] = 80;
    buf[t + 12] = 0x50; buf[t + 13] = 0x10;
  }
  return buf;
}

const aux = new TxQueue(FLOWS + 64, false, new PacketSlab(64, 2048, 64), undefined);
const noVnet = new Uint8Array(0);
const LEN = 40 + 20 + 64;

function run(name: string, rounds: number, once: (round: number) => void): void {
  for (let r = 0; r < 3; r++) once(-1 - r);
  (globalThis as { gc?: () => void }).gc?.();
  const h0 = process.memoryUsage().heapUsed;
  const t0 = process.hrtime.bigint();
  for (let r = 0; r < rounds; r++) once(r);
  const ns = Number(process.hrtime.bigint() - t0) / (rounds * FLOWS);
  const grow = process.memoryUsage().heapUsed - h0;
  console.log(`${name.padEnd(58)} ${ns.toFixed(0).padStart(5)} ns/packet   heap ${grow >= 0 ? '+' : ''}${(grow / 1024).toFixed(0)} KiB over ${rounds * FLOWS} packets`);
}

const t = table();
const pkts = slab(1);

// Established flows: the slab's 4096 flows, pinned, sent again and again (each a flow-table hit).
{
  const fp = new FrontProcessor({ lbspType: 0x1e, encapSource4: null, encapSource6: null, hopLimit: 64, flowTable: { size: 65536, tcpTimeout: 300, udpTimeout: 30, otherTimeout: 30 } }, newCounterBlock());
  fp.setTable(t);
  run('flow-table hit (4096 live flows, table 65536)', 200, () => {
    aux.reset();
    for (let i = 0; i < FLOWS; i++) fp.process(pkts, i * SLOT + HEADROOM, LEN, noVnet, 0, aux);
    fp.endBatch(Date.now());
  });
}

// New flows all the time: a table of 1024 entries, every packet a new flow (miss, decide, insert,
// evict the bucket's least recently seen entry).
{
  const fp = new FrontProcessor({ lbspType: 0x1e, encapSource4: null, encapSource6: null, hopLimit: 64, flowTable: { size: 1024, tcpTimeout: 300, udpTimeout: 30, otherTimeout: 30 } }, newCounterBlock());
  fp.setTable(t);
  const slabs = [slab(2), slab(3), slab(4), slab(5)];
  run('miss + decide + insert with eviction (table 1024, all new)', 100, (r) => {
    const b = slabs[(r + 8) & 3]!;
    aux.reset();
    for (let i = 0; i < FLOWS; i++) fp.process(b, i * SLOT + HEADROOM, LEN, noVnet, 0, aux);
    fp.endBatch(Date.now());
  });
}

// The pipeline alone for the same packets (parse + decide), no flow table, no rewrite.
{
  const info = new PacketInfo();
  const inp = new DecisionInput();
  const res = new DecisionResult();
  run('parse + decide only (no flow table, no rewrite)', 200, () => {
    for (let i = 0; i < FLOWS; i++) {
      parsePacket(pkts, i * SLOT + HEADROOM, LEN, info, 0x1e);
      inp.family = 6; inp.src.set(info.src); inp.service.set(info.dst); inp.flowLabel = info.flowLabel; inp.hasLbsp = false;
      decide(t, inp, res);
    }
  });
}

// The table alone: find() of live keys.
{
  const ft = new FlowTable(65536, 7);
  const src = new Uint32Array([0x20010db8, 0x00c10000, 0, 0]);
  const dst = Uint32Array.from(S);
  for (let i = 0; i < FLOWS; i++) { src[3] = i; ft.setFlowKey(6, 6, src, dst, 10000 + i, 80); ft.insert(0, 0, 0, 0, 1e12); }
  let found = 0;
  run('FlowTable.setFlowKey + find (4096 live keys)', 500, () => {
    for (let i = 0; i < FLOWS; i++) { src[3] = i; ft.setFlowKey(6, 6, src, dst, 10000 + i, 80); if (ft.find(1) >= 0) found++; }
  });
  if (found === 0) console.log('(no key found: the bench is broken)');
  const bytes = ft.capacity * (10 * 4 + 4 + 1 + 1 + 4 + 4 + 4 + 8 + 8);
  console.log(`memory of a 65536-entry table: ${(bytes / 1048576).toFixed(1)} MiB (${ft.capacity} entries, ${ft.buckets} buckets x ${ft.ways} ways)`);
}

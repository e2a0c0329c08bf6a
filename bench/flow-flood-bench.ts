// Flow pins under a spoofed flood (docs/hostile-input.md "Flow table under a spoofed flood"): 20
// established TCP connections (handshake seen, then one packet every 2 s) through a front whose
// flow table has the default 65,536 entries, while 100 kpps of packets from random spoofed sources
// (half TCP SYNs, half UDP) arrive for the 2 s between their packets. Fake clock, one processor (a
// worker), translate mode, a pool keyed by flow label: a connection whose pin is gone and whose
// label changed lands on another back, so a lost pin is a broken connection.
// Counts how many of the 20 pins are still there after each 2 s of flood (ROUNDS rounds), and the
// flow-table figures. Prints numbers only. Run:
//   npx tsc -p tsconfig.json && node dist/bench/flow-flood-bench.js [pps] [rounds] [packets per spoofed flow]
// (2: every spoofed TCP flow sends a SYN then an ACK and every UDP flow two datagrams, so each
// spoofed entry gets confirmed: the harder case for admission).
import { FrontProcessor } from '../front/front-processor.js';
import { validateTable } from '../front/table/table-loader.js';
import { CompiledTable } from '../front/table/compiled-table.js';
import { eventIndex, newCounterBlock } from '../shared/metrics/counter-layout.js';
import { TxQueue } from '../shared/engine/tx-queue.js';
import { PacketSlab } from '../shared/engine/packet-slab.js';
import { rng as seeded } from './seeded-rng.js';

const PPS = Number(process.argv[2] ?? 100_000);
const ROUNDS = Number(process.argv[3] ?? 5);
const PER_FLOW = Number(process.argv[4] ?? 1);
const CONNS = 20;
const IDLE_MS = 2000;
const BATCH = 64;
const OFF = 128;
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

const buf = new Uint8Array(OFF + 40 + 20 + 8);
function put32(o: number, w: number): void {
  buf[o] = w >>> 24; buf[o + 1] = (w >>> 16) & 0xff; buf[o + 2] = (w >>> 8) & 0xff; buf[o + 3] = w & 0xff;
}
/** An IPv6 packet to S at buf[OFF]: TCP (flags) or UDP, source src0..3, ports, flow label. Returns its length. */
function write(src0: number, src1: number, src2: number, src3: number, udp: boolean, sport: number, flags: number, label: number): number {
  const o = OFF;
  const l4 = udp ? 8 : 20;
  buf.fill(0, o, o + 40 + l4);
  buf[o] = 0x60 | ((label >>> 16) & 0x0f); buf[o + 1] = (label >>> 8) & 0xff; buf[o + 2] = label & 0xff;
  buf[o + 5] = l4; buf[o + 6] = udp ? 17 : 6; buf[o + 7] = 64;
  put32(o + 8, src0); put32(o + 12, src1); put32(o + 16, src2); put32(o + 20, src3);
  for (let k = 0; k < 4; k++) put32(o + 24 + 4 * k, S[k]!);
  const t = o + 40;
  buf[t] = sport >> 8; buf[t + 1] = sport & 0xff; buf[t + 2] = 0; buf[t + 3] = 80;
  if (udp) buf[t + 5] = 8;
  else { buf[t + 12] = 0x50; buf[t + 13] = flags; }
  return 40 + l4;
}

const SYN = 0x02, ACK = 0x10;
const tx = new TxQueue(BATCH + 8, false, new PacketSlab(64, 2048, 64), undefined);
const noVnet = new Uint8Array(0);
const counters = newCounterBlock();
let now = 1_000_000;
const fp = new FrontProcessor({ lbspType: 0x1e, encapSource4: null, encapSource6: null, hopLimit: 64, flowTable: { size: 65536, tcpTimeout: 300, udpTimeout: 30, otherTimeout: 30 } }, counters, () => now, 12345);
fp.setTable(table());
const next = seeded(7);
/** Uniform integer in [0, n) for n <= 2^32. */
const rng = { int: (n: number): number => n === 0x100000000 ? next() : next() % n };
const E_HITS = eventIndex('flow_table_hits');

let inBatch = 0;
function send(len: number): void {
  fp.process(buf, OFF, len, noVnet, 0, tx);
  if (++inBatch === BATCH) { tx.reset(); inBatch = 0; fp.endBatch(now); }
}
/** Connection c's packet (its own source, port, a new flow label each time: the pin must hold). */
function conn(c: number, flags: number): boolean {
  const h = counters[E_HITS]!;
  send(write(0x20010db8, 0x00c10000, 0, 0x1000 + c, false, 40000 + c, flags, rng.int(0x100000)));
  return counters[E_HITS]! > h;
}

for (let c = 0; c < CONNS; c++) conn(c, SYN); // first packets: decided and pinned
for (let c = 0; c < CONNS; c++) conn(c, ACK); // the handshake's ACK
const perMs = PPS / 1000;
const survived: number[] = [];
let floodPackets = 0;
const t0 = process.hrtime.bigint();
for (let r = 0; r < ROUNDS; r++) {
  const end = now + IDLE_MS;
  let acc = 0;
  while (now < end) {
    now += 1; // 1 ms of fake time
    acc += perMs;
    for (; acc >= PER_FLOW; acc -= PER_FLOW) {
      const udp = (floodPackets & 1) === 1;
      const s0 = rng.int(0x100000000), s1 = rng.int(0x100000000), s2 = rng.int(0x100000000), s3 = rng.int(0x100000000), sp = 1024 + rng.int(60000);
      for (let k = 0; k < PER_FLOW; k++) {
        send(write(s0, s1, s2, s3, udp, sp, k === 0 ? SYN : ACK, rng.int(0x100000)));
        floodPackets++;
      }
    }
  }
  let alive = 0;
  for (let c = 0; c < CONNS; c++) if (conn(c, ACK)) alive++;
  survived.push(alive);
}
const ns = Number(process.hrtime.bigint() - t0) / floodPackets;
const ev = (n: Parameters<typeof eventIndex>[0]) => counters[eventIndex(n)]!;
console.log(`flood ${PPS} pps of spoofed SYNs/UDP (${PER_FLOW} packet(s) per spoofed flow) for ${ROUNDS} x ${IDLE_MS / 1000} s (${floodPackets} packets), ${CONNS} established connections idle ${IDLE_MS / 1000} s between packets, flow table 65536/worker`);
console.log(`pins surviving after each round: ${survived.join(' ')} (of ${CONNS})`);
console.log(`flow table: inserts ${ev('flow_table_inserts')}, evictions ${ev('flow_table_evictions')}, refused ${ev('flow_table_refused')}; ${ns.toFixed(0)} ns per flood packet`);

// Tunnel MTU micro-benchmark: ns per packet through FrontProcessor.process() in encap mode for
//   fit        — a 1000-byte IPv6 TCP packet that fits the tunnel (the common path: MTU check added),
//   ptb        — a 1500-byte IPv6 packet: dropped, ICMPv6 Packet Too Big built (rate limit lifted),
//   frag4      — a 1500-byte IPv4 UDP packet without DF: cut in two, each wrapped 4in4,
//   translate  — the same 1000-byte packet to a translate back (hop limit given back),
// over established flows, plus heap growth over each run (the hot path must not allocate).
// Prints numbers only. Run: npx tsc -p tsconfig.json && node --expose-gc dist/bench/tunnel-mtu-bench.js
import { FrontProcessor } from '../front/front-processor.js';
import { validateTable } from '../front/table/table-loader.js';
import { CompiledTable } from '../front/table/compiled-table.js';
import { newCounterBlock } from '../shared/metrics/counter-layout.js';
import { TxQueue } from '../shared/engine/tx-queue.js';
import { PacketSlab } from '../shared/engine/packet-slab.js';

const N = 64;
const SLOT = 2048;
const HEADROOM = 128;
const S6 = '2001:db8:5::80';
const S4 = '192.0.2.80';

function table(mode: 'encap' | 'translate'): CompiledTable {
  const v = validateTable(
    { backs: { b1: { addresses: { [S6]: '2001:db8:b::1', [S4]: '198.51.100.1' }, mode } }, routes: [{ source: '::/0', to: 'b1' }, { source: '0.0.0.0/0', to: 'b1' }] },
    'bench',
    { services: [S6, S4], mode, encap: { source: 'service', source4: '', source6: '' } },
  );
  return CompiledTable.compile(v.table!, { services: [S6, S4], flowLabelEnabled: true, lbspEnabled: true, maglevSize: 251, slotOf: () => 0 });
}

function v6(len: number): Uint8Array {
  const p = new Uint8Array(len);
  p[0] = 0x60; p[4] = (len - 40) >> 8; p[5] = (len - 40) & 0xff; p[6] = 6; p[7] = 64;
  p.set([0x20, 0x01, 0x0d, 0xb8, 0, 0xc1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10], 8);
  p.set([0x20, 0x01, 0x0d, 0xb8, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80], 24);
  p[40] = 0x9c; p[43] = 80; p[52] = 0x50; p[53] = 0x10;
  return p;
}

function v4nodf(len: number): Uint8Array {
  const p = new Uint8Array(len);
  p[0] = 0x45; p[2] = len >> 8; p[3] = len & 0xff; p[4] = 0x12; p[8] = 64; p[9] = 17;
  p.set([203, 0, 113, 10], 12); p.set([192, 0, 2, 80], 16);
  let s = 0;
  for (let i = 0; i < 20; i += 2) s += (p[i]! << 8) | p[i + 1]!;
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  s = ~s & 0xffff; p[10] = s >> 8; p[11] = s & 0xff;
  p[20] = 0x13; p[21] = 0x88; p[23] = 7; p[24] = (len - 20) >> 8; p[25] = (len - 20) & 0xff;
  return p;
}

function bench(name: string, mode: 'encap' | 'translate', pkt: Uint8Array, expectDrop: boolean): void {
  const fp = new FrontProcessor(
    { lbspType: 0x1e, encapSource4: null, encapSource6: null, hopLimit: 64, icmp: { ratePerSecond: 1e9, burst: 1e9 }, tunMtu: 1500 },
    newCounterBlock(),
  );
  fp.setTable(table(mode));
  const buf = new Uint8Array(N * SLOT);
  const aux = new TxQueue(N * 3, false, new PacketSlab(N * 2, 2048, 64), undefined);
  const none = new Uint8Array(0);
  const len = pkt.length;
  const isV6 = pkt[0]! >> 4 === 6;
  const run = (rounds: number): void => {
    for (let r = 0; r < rounds; r++) {
      aux.reset();
      for (let i = 0; i < N; i++) {
        const off = i * SLOT + HEADROOM;
        buf.set(pkt, off);
        buf[off + (isV6 ? 41 : 21)] = i; // 64 flows (source port), pinned after the first round
        const o = fp.process(buf, off, len, none, 0, aux);
        if ((o < 0) !== expectDrop) throw new Error(`${name}: unexpected verdict ${o}`);
      }
      fp.endBatch(Date.now());
    }
  };
  run(2000);
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const heap0 = process.memoryUsage().heapUsed;
  let best = Infinity;
  for (let k = 0; k < 5; k++) {
    const t0 = process.hrtime.bigint();
    run(10_000);
    const ns = Number(process.hrtime.bigint() - t0) / (10_000 * N);
    if (ns < best) best = ns;
  }
  const grew = process.memoryUsage().heapUsed - heap0;
  // the copy of the packet into the slot is part of each round: measure it alone
  const c0 = process.hrtime.bigint();
  for (let r = 0; r < 10_000; r++) for (let i = 0; i < N; i++) buf.set(pkt, i * SLOT + HEADROOM);
  const copy = Number(process.hrtime.bigint() - c0) / (10_000 * N);
  console.log(`${name.padEnd(10)} ${best.toFixed(0).padStart(5)} ns/packet (best of 5 x ${10_000 * N}; packet copy ${copy.toFixed(0)} ns of it)  heap ${grew >= 0 ? '+' : ''}${(grew / 1024).toFixed(0)} KiB = ${(grew / (5 * 10_000 * N)).toFixed(2)} B/packet${gc ? '' : ' (run with --expose-gc for a meaningful heap figure)'}`);
}

bench('fit', 'encap', v6(1000), false);
bench('ptb', 'encap', v6(1500), true);
bench('frag4', 'encap', v4nodf(1500), false);
bench('translate', 'translate', v6(1000), false);

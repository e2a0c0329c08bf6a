// Per-function micro-benchmarks of the per-packet path (SPEC 10): ns per call of each hot function
// as the workers run it, and of the whole front/back processors per packet (best of 5 rounds).
// Numbers only, no assertions; `npm run bench` prints them. Run alone: node dist/bench/hotpath-bench.js
// (on a busy machine: --rounds 300 --each 10, best of many short rounds).
//   LPM lookup (10k routes), decision (route -> back, route -> Maglev pool), flow-table hit,
//   vnet header preparation, checksum completion (JS small / native large), GSO split per 64 KiB
//   super-packet, and FrontProcessor / BackProcessor.process for translate, encap and decap (the
//   front's also with a NEEDS_CSUM virtio header per packet, as with offloads on).
import { PrefixTableBuilder } from '../shared/table/prefix-table.js';
import { validateTable, type TableContext } from '../front/table/table-loader.js';
import { CompiledTable } from '../front/table/compiled-table.js';
import { decide, DecisionInput, DecisionResult } from '../front/decision.js';
import { FrontProcessor } from '../front/front-processor.js';
import { frontRoleFromConfig } from '../front/front-role.js';
import { BackProcessor } from '../back/back-processor.js';
import { backRoleFromConfig } from '../back/back-role.js';
import { frontConfigFromValue } from '../front/front-config.js';
import { backConfigFromValue } from '../back/back-config.js';
import { eventIndex, newCounterBlock } from '../shared/metrics/counter-layout.js';
import { PacketInfo } from '../shared/packet/packet-info.js';
import { parsePacket } from '../shared/packet/parse.js';
import { partialPseudoSum, writeL4Checksum } from '../shared/packet/checksum.js';
import { encapsulate } from '../shared/packet/encap.js';
import { gsoAddon } from '../shared/tun/gso.js';
import { prepareRxVnet } from '../shared/tun/vnet-header.js';
import { TunnelOffload } from '../shared/tunnel/tunnel-offload.js';
import { TunnelMtu } from '../shared/tunnel/tunnel-mtu.js';
import { PmtuCache } from '../shared/tunnel/path-mtu-cache.js';
import { IcmpEmitter } from '../shared/tunnel/icmp-emitter.js';
import { TxQueue } from '../shared/engine/tx-queue.js';
import { PacketSlab } from '../shared/engine/packet-slab.js';
import { SegmentSlab } from '../shared/engine/segment-slab.js';
import { AUX_HEADROOM, AUX_SLOT } from '../shared/engine/batch-loop.js';
import { hash1, hash4, hash5, KEY_SEED } from '../shared/packet/hash32.js';
import { sip1, sip4, sip5, sipKey } from '../shared/packet/siphash.js';

const SLOT = 2048;
const HEAD = 128;

/**
 * `--rounds N --each M`: N rounds of M calls each instead of 5 rounds of a fifth of a row's calls.
 * Many short rounds (e.g. --rounds 300 --each 10) find preemption-free rounds on a busy machine.
 */
const argv = process.argv.slice(2);
const argNum = (flag: string): number | undefined => {
  const i = argv.indexOf(flag);
  return i >= 0 ? Number(argv[i + 1]) : undefined;
};
const ROUNDS = argNum('--rounds') ?? 5;
const EACH = argNum('--each');

/** ns per op: the best of ROUNDS rounds (a shared machine only ever makes a round slower). */
function bench(name: string, per: number, iters: number, fn: () => void, unit = 'ns/op'): number {
  for (let i = 0; i < Math.min(iters, 200); i++) fn();
  const each = EACH ?? Math.max(1, Math.floor(iters / 5));
  let ns = Infinity;
  for (let round = 0; round < ROUNDS; round++) {
    const t0 = process.hrtime.bigint();
    for (let r = 0; r < each; r++) fn();
    ns = Math.min(ns, Number(process.hrtime.bigint() - t0) / (each * per));
  }
  console.log(`${name.padEnd(58)} ${ns.toFixed(1).padStart(9)} ${unit}`);
  return ns;
}

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return s >>> 0;
  };
}

// ---- LPM lookup ----
{
  const r = rng(7);
  const b = new PrefixTableBuilder();
  for (let i = 0; i < 5000; i++) b.addV4(r(), 8 + (r() % 25), i);
  for (let i = 0; i < 5000; i++) b.addV6(0x20010db8, r(), r(), r(), 32 + (r() % 97), i);
  const t = b.build();
  const keys = new Uint32Array(4096 * 4);
  for (let i = 0; i < keys.length; i++) keys[i] = r();
  for (let i = 0; i < 4096; i++) keys[i * 4] = i & 1 ? 0x20010db8 : keys[i * 4]!;
  let sink = 0;
  bench('LPM lookup4 (10k routes)', 4096, 500, () => {
    for (let i = 0; i < 4096; i++) sink += t.lookup4(keys[i * 4]!);
  });
  bench('LPM lookup6 (10k routes)', 4096, 500, () => {
    for (let i = 0; i < 4096; i++) sink += t.lookup6(keys[i * 4]!, keys[i * 4 + 1]!, keys[i * 4 + 2]!, keys[i * 4 + 3]!);
  });
  if (sink === 0.5) console.log(sink);
}

// ---- tables, roles, processors ----
const S6 = '2001:db8:5::80';
const S4 = '192.0.2.80';
const ctx: TableContext = { services: [S6, S4], mode: 'translate', encap: { source: 'service', source4: '', source6: '' } };
function compile(table: unknown, mode: 'translate' | 'encap'): CompiledTable {
  const v = validateTable(table, 'bench.yaml', { ...ctx, mode });
  if (!v.table) throw new Error(JSON.stringify(v.errors));
  const slots = new Map<string, number>();
  return CompiledTable.compile(v.table, {
    services: ctx.services,
    flowLabelEnabled: true,
    lbspEnabled: true,
    slotOf: (n) => {
      if (!slots.has(n)) slots.set(n, slots.size);
      return slots.get(n)!;
    },
    maglevSize: 65537,
  });
}
const tableDoc = {
  backs: {
    b1: { addresses: { [S6]: '2001:db8:b::1', [S4]: '198.51.100.1' } },
    b2: { addresses: { [S6]: '2001:db8:b::2', [S4]: '198.51.100.2' } },
    b3: { addresses: { [S6]: '2001:db8:b::3', [S4]: '198.51.100.3' } },
  },
  pools: { web: { members: ['b1', 'b2', 'b3'], key: 'label' } },
  routes: [
    { source: '2001:db8:c1::/48', to: 'b1' },
    { source: '203.0.113.0/24', to: 'b2' },
    { source: '::/0', to: 'web' },
  ],
};

/** IPv6 or IPv4 TCP packet (20-byte header, `payload` bytes) client -> S in slot i of a slab. */
function tcpSlab(v6: boolean, n: number, payload: number, src6Hi = 0xc1): { buf: Uint8Array; len: number } {
  const buf = new Uint8Array(n * SLOT);
  const len = (v6 ? 40 : 20) + 20 + payload;
  for (let i = 0; i < n; i++) {
    const o = i * SLOT + HEAD;
    if (v6) {
      buf[o] = 0x60;
      buf[o + 2] = (i * 7) & 0x0f; // flow label varies
      buf[o + 4] = (len - 40) >> 8;
      buf[o + 5] = (len - 40) & 0xff;
      buf[o + 6] = 6;
      buf[o + 7] = 64;
      buf.set([0x20, 0x01, 0x0d, 0xb8, 0, src6Hi], o + 8);
      buf[o + 22] = i >> 8;
      buf[o + 23] = i & 0xff;
      buf.set([0x20, 0x01, 0x0d, 0xb8, 0, 0x05], o + 24);
      buf[o + 39] = 0x80;
    } else {
      buf[o] = 0x45;
      buf[o + 2] = len >> 8;
      buf[o + 3] = len & 0xff;
      buf[o + 8] = 64;
      buf[o + 9] = 6;
      buf.set([203, 0, 113, i & 63], o + 12);
      buf.set([192, 0, 2, 80], o + 16);
    }
    const t = o + (v6 ? 40 : 20);
    buf[t] = 0x9c;
    buf[t + 1] = i & 0xff;
    buf[t + 3] = 80;
    buf[t + 12] = 0x50;
    buf[t + 13] = 0x10; // ACK
  }
  const info = new PacketInfo();
  for (let i = 0; i < n; i++) {
    parsePacket(buf, i * SLOT + HEAD, len, info, -1);
    writeL4Checksum(buf, i * SLOT + HEAD, info);
  }
  return { buf, len };
}

const N = 256;

/** ICMPv6 Packet Too Big (router -> S) quoting the answer to each client packet of `c`. */
function errorSlab(c: { buf: Uint8Array; len: number }): { buf: Uint8Array; len: number } {
  const q = c.len + 200;
  const len = 48 + q;
  const buf = new Uint8Array(N * SLOT);
  for (let i = 0; i < N; i++) {
    const o = i * SLOT + HEAD;
    const src = c.buf.subarray(o, o + c.len);
    buf[o] = 0x60;
    buf[o + 4] = (len - 40) >> 8;
    buf[o + 5] = (len - 40) & 0xff;
    buf[o + 6] = 58;
    buf[o + 7] = 64;
    buf.set([0x20, 0x01, 0x0d, 0xb8, 0, 0xe0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], o + 8);
    buf.set(src.subarray(24, 40), o + 24); // to S
    buf[o + 40] = 2; // Packet Too Big, MTU 1280
    buf[o + 46] = 0x05;
    const a = o + 48;
    buf.set(src.subarray(0, 8), a);
    buf[a + 4] = (q - 40) >> 8;
    buf[a + 5] = (q - 40) & 0xff;
    buf.set(src.subarray(24, 40), a + 8); // the answer: S -> client, ports swapped
    buf.set(src.subarray(8, 24), a + 24);
    buf.set(src.subarray(42, 44), a + 40);
    buf.set(src.subarray(40, 42), a + 42);
    buf.set(src.subarray(44, 60), a + 44);
  }
  return { buf, len };
}

/** The batch loop's transmit queue for a batch of N packets (reset per batch, as the loop does). */
function txQueue(seg?: SegmentSlab): TxQueue {
  return new TxQueue(N + 64 + (seg?.capacity ?? 0), seg !== undefined, new PacketSlab(64, AUX_SLOT, AUX_HEADROOM), seg);
}
{
  const t = compile(tableDoc, 'translate');
  const inp = new DecisionInput();
  const out = new DecisionResult();
  const info = new PacketInfo();
  const s1 = tcpSlab(true, N, 0, 0xc1);
  const s2 = tcpSlab(true, N, 0, 0xc9);
  const run = (s: { buf: Uint8Array; len: number }) => () => {
    for (let i = 0; i < N; i++) {
      parsePacket(s.buf, i * SLOT + HEAD, s.len, info, -1);
      inp.family = 6;
      inp.src.set(info.src);
      inp.service.set(info.dst);
      inp.flowLabel = info.flowLabel;
      decide(t, inp, out);
    }
  };
  const p = bench('parse IPv6 TCP (reference for the rows below)', N, 2000, () => {
    for (let i = 0; i < N; i++) parsePacket(s1.buf, i * SLOT + HEAD, s1.len, info, -1);
  });
  const d1 = bench('parse + decide: route -> back', N, 2000, run(s1));
  const d2 = bench('parse + decide: route -> Maglev pool (label key)', N, 2000, run(s2));
  console.log(`${'  decide alone (difference)'.padEnd(58)} ${(d1 - p).toFixed(1).padStart(9)} / ${(d2 - p).toFixed(1)} ns/op`);
}

const counters = newCounterBlock();
const noVnet = new Uint8Array(0);

function frontProc(mode: 'translate' | 'encap'): FrontProcessor {
  const { config, errors } = frontConfigFromValue(
    { tun: { name: 'benchf0', routes: [`${S6}/128`, `${S4}/32`] }, services: [S6, S4], table: './t.yaml', mode, admin: { listen: '[::1]:9999' } },
    '',
  );
  if (!config) throw new Error(JSON.stringify(errors));
  const p = new FrontProcessor(frontRoleFromConfig(config), counters);
  p.setTable(compile(tableDoc, mode));
  return p;
}

function perPacket(name: string, p: { process: FrontProcessor['process'] }, v6: boolean, payload: number, vnet = false): void {
  // a fresh slab per round (the processor rewrites in place: translate back and forth is not free)
  const master = tcpSlab(v6, N, payload);
  const buf = master.buf.slice();
  if (!vnet) {
    const a = txQueue();
    bench(name, N, 1000, () => {
      buf.set(master.buf);
      a.reset();
      for (let i = 0; i < N; i++) p.process(buf, i * SLOT + HEAD, master.len, noVnet, 0, a);
    });
    return;
  }
  // offloads on: each packet with a virtio header flagged NEEDS_CSUM (csum_start at the TCP header,
  // offset 16), as the TUN hands over a local sender's packets; the processor clears it
  const vm = new Uint8Array(N * 12);
  for (let i = 0; i < N; i++) {
    vm[i * 12] = 1;
    vm[i * 12 + 6] = v6 ? 40 : 20;
    vm[i * 12 + 8] = 16;
  }
  const vn = vm.slice();
  const a = new TxQueue(N + 64, true, new PacketSlab(64, AUX_SLOT, AUX_HEADROOM), undefined);
  bench(name, N, 1000, () => {
    buf.set(master.buf);
    vn.set(vm);
    a.reset();
    for (let i = 0; i < N; i++) p.process(buf, i * SLOT + HEAD, master.len, vn, i * 12, a);
  });
}

try {
  const ft = frontProc('translate');
  const copy = tcpSlab(true, N, 0);
  const scratch = copy.buf.slice();
  bench('slab copy (subtract from the process rows below)', N, 1000, () => scratch.set(copy.buf));
  perPacket('FrontProcessor.process translate IPv6 TCP (flow hit)', ft, true, 0);
  perPacket('FrontProcessor.process translate IPv4 TCP (flow hit)', ft, false, 0);
  const fe = frontProc('encap');
  perPacket('FrontProcessor.process encap 6in6 TCP (flow hit)', fe, true, 0);
  perPacket('FrontProcessor.process encap 4in4 TCP (flow hit)', fe, false, 0);
  perPacket('FrontProcessor.process translate IPv6 TCP, vnet NEEDS_CSUM', ft, true, 0, true);
  perPacket('FrontProcessor.process encap 6in6 TCP, vnet NEEDS_CSUM', fe, true, 0, true);
  // ICMPv6 Packet Too Big from a client-side router to S, quoting the server's answer to each
  // client of the rows above (S -> client, ports swapped, 200 bytes of its payload): steered by the
  // quote to the back of the flow. `ft` has pinned those flows; a fresh front has not.
  const errors = errorSlab(tcpSlab(true, N, 0));
  const steer = (name: string, p: FrontProcessor, by: 'icmp_steered_flow_table' | 'icmp_steered_client_key'): void => {
    const buf = errors.buf.slice();
    const a = txQueue();
    const before = counters[eventIndex(by)]!;
    bench(name, N, 1000, () => {
      buf.set(errors.buf);
      a.reset();
      for (let i = 0; i < N; i++) p.process(buf, i * SLOT + HEAD, errors.len, noVnet, 0, a);
    });
    if (counters[eventIndex(by)]! - before < N) console.log(`  (unexpected: not every error steered by ${by})`);
  };
  steer('ICMPv6 PTB to S steered, translate (reversed flow pinned)', ft, 'icmp_steered_flow_table');
  steer('ICMPv6 PTB to S steered, translate (no pin: client key)', frontProc('translate'), 'icmp_steered_client_key');
} catch (e) {
  console.log(`FrontProcessor rows skipped: ${(e as Error).message}`);
}

try {
  const { config, errors } = backConfigFromValue(
    {
      tun: { name: 'benchb0', routes: ['2001:db8:b::1/128'] },
      addresses: [{ address: '2001:db8:b::1', service: S6, mode: 'auto' }, { address: '198.51.100.1', service: S4, mode: 'auto' }],
      allowedFronts: [`${S6}/128`, `${S4}/32`],
      admin: { listen: '[::1]:9998' },
    },
    '',
  );
  if (!config) throw new Error(JSON.stringify(errors));
  const bp = new BackProcessor(backRoleFromConfig(config), counters);
  // B-addressed packets: the front's translate output
  const fwd = frontProc('translate');
  const m = tcpSlab(true, N, 0);
  const a = txQueue();
  for (let i = 0; i < N; i++) fwd.process(m.buf, i * SLOT + HEAD, m.len, noVnet, 0, a);
  a.reset();
  const buf = m.buf.slice();
  bench('BackProcessor.process translate IPv6 TCP', N, 1000, () => {
    buf.set(m.buf);
    a.reset();
    for (let i = 0; i < N; i++) bp.process(buf, i * SLOT + HEAD, m.len, noVnet, 0, a);
  });
  // tunnel packets: the front's encap output
  const enc = frontProc('encap');
  const e = tcpSlab(true, N, 0);
  const offs = new Int32Array(N);
  a.reset();
  for (let i = 0; i < N; i++) enc.process(e.buf, i * SLOT + HEAD, e.len, noVnet, 0, a);
  for (let i = 0; i < N; i++) offs[i] = a.offs[i]!;
  const eb = e.buf.slice();
  bench('BackProcessor.process decap 6in6 TCP', N, 1000, () => {
    eb.set(e.buf);
    a.reset();
    for (let i = 0; i < N; i++) bp.process(eb, offs[i]!, e.len + 40, noVnet, 0, a);
  });
} catch (err) {
  console.log(`BackProcessor rows skipped: ${(err as Error).message}`);
}

// ---- offload helpers ----
{
  const g = gsoAddon();
  const info = new PacketInfo();
  // a 64 KiB-ish TCPv6 super-packet: 45 x 1440
  const payload = 45 * 1440;
  const sup = tcpSlab(true, 1, payload);
  const buf = new Uint8Array(HEAD + 65536 + 64);
  buf.set(sup.buf.subarray(HEAD, HEAD + sup.len), HEAD);
  parsePacket(buf, HEAD, sup.len, info, -1);
  const ps = partialPseudoSum(info);
  buf[HEAD + 56] = ps >> 8;
  buf[HEAD + 57] = ps & 0xff;
  const vh = Uint8Array.from([1, 4, 60, 0, 1440 & 0xff, 1440 >> 8, 40, 0, 16, 0, 0, 0]);
  const out = new Uint8Array(256 * SLOT);
  const oo = new Int32Array(256);
  const ol = new Int32Array(256);
  const ns = bench('native gsoSplit 64 KiB TCPv6 -> 45 segments (per super-packet)', 1, 20000, () => {
    g.gsoSplit(buf, HEAD, sup.len, vh, 0, out, oo, ol, SLOT, HEAD, 0, 256, 0);
  });
  console.log(`${'  per segment'.padEnd(58)} ${(ns / 45).toFixed(1).padStart(9)} ns/op`);
  // the front's whole GSO encap step: split + parse + wrap every segment
  const seg = new SegmentSlab(HEAD);
  const ax = txQueue(seg);
  const tun = new TunnelOffload(counters);
  const ids = new TunnelMtu(PmtuCache.create(1500, 1), new IcmpEmitter(counters, 1, 1, 0), counters);
  const src = Uint32Array.from([0x20010db8, 0x00050000, 0, 0x80]);
  const dst = Uint32Array.from([0x20010db8, 0x000b0000, 0, 1]);
  const ws = bench('TunnelOffload.wrapSegments 64 KiB -> 45 wrapped segments', 1, 20000, () => {
    ax.reset();
    tun.wrapSegments(ax, buf, HEAD, sup.len, vh, 0, 6, src, dst, 64, ids, -1);
  });
  console.log(`${'  per segment'.padEnd(58)} ${(ws / 45).toFixed(1).padStart(9)} ns/op`);
  const big = tcpSlab(true, 1, 1440);
  const bigBuf = big.buf.slice(0, HEAD + big.len);
  bench('native completeChecksum 1500-byte TCPv6', 1, 200000, () => {
    g.completeChecksum(bigBuf, HEAD, big.len, 40, 16);
  });
  const small = tcpSlab(true, 1, 40);
  const sb = small.buf.slice(0, HEAD + small.len);
  const sv = new Uint8Array(12);
  bench('TunnelOffload.finish 100-byte NEEDS_CSUM (JS sum)', 1, 200000, () => {
    sv[0] = 1;
    sv[6] = 40;
    sv[8] = 16;
    tun.finish(sb, HEAD, small.len, sv, 0);
  });
  const rxv = Uint8Array.from(vh);
  bench('prepareRxVnet (GSO packet: hdr_len + segment count)', 1, 1000000, () => {
    rxv[1] = 4;
    prepareRxVnet(buf, HEAD, sup.len, rxv, 0);
  });
  const e6 = tcpSlab(true, 1, 0);
  parsePacket(e6.buf, HEAD, e6.len, info, -1);
  bench('encapsulate IPv6 in IPv6 (header write + flow hash)', 1, 1000000, () => {
    encapsulate(e6.buf, HEAD, info, 6, src, dst, 64, 1);
  });
}

// ---- write-side GRO ----
{
  const g = gsoAddon();
  const GSLOT = 70000;
  const run = (name: string, n: number, payload: number, tcp: boolean, flags: number): void => {
    const buf = new Uint8Array(n * GSLOT);
    const offs = new Int32Array(n);
    const lens = new Int32Array(n);
    const vnet = new Uint8Array(n * 12);
    const info = new PacketInfo();
    const ip = 40;
    const l4 = tcp ? 20 : 8;
    const len = ip + l4 + payload;
    for (let i = 0; i < n; i++) {
      const o = i * GSLOT + HEAD;
      buf[o] = 0x60;
      buf[o + 4] = (len - 40) >> 8;
      buf[o + 5] = (len - 40) & 0xff;
      buf[o + 6] = tcp ? 6 : 17;
      buf[o + 7] = 64;
      buf.set([0x20, 0x01, 0x0d, 0xb8, 0, 0xc1], o + 8);
      buf[o + 23] = 0x10;
      buf.set([0x20, 0x01, 0x0d, 0xb8, 0, 0x05], o + 24);
      buf[o + 39] = 0x80;
      const t = o + ip;
      buf[t] = 0x9c;
      buf[t + 3] = 80;
      if (tcp) {
        const seq = 1000 + i * payload;
        buf[t + 4] = seq >>> 24;
        buf[t + 5] = (seq >>> 16) & 0xff;
        buf[t + 6] = (seq >>> 8) & 0xff;
        buf[t + 7] = seq & 0xff;
        buf[t + 12] = 0x50;
        buf[t + 13] = 0x10;
        buf[t + 15] = 100;
      } else {
        buf[t + 4] = (8 + payload) >> 8;
        buf[t + 5] = (8 + payload) & 0xff;
      }
      parsePacket(buf, o, len, info, -1);
      writeL4Checksum(buf, o, info);
      offs[i] = o;
      lens[i] = len;
      vnet[i * 12] = flags;
    }
    const head = buf.slice(HEAD, HEAD + ip + l4);
    const o0 = offs.slice();
    const l0 = lens.slice();
    const v0 = vnet.slice();
    let out = 0;
    bench(name, n, 2000, () => {
      buf.set(head, HEAD);
      offs.set(o0);
      lens.set(l0);
      vnet.set(v0);
      out = g.groCoalesce(buf, offs, lens, vnet, n, GSLOT, 1, 1);
    }, 'ns/packet');
    if (out !== 1) console.log(`  (unexpected: ${out} packets out)`);
  };
  run('groCoalesce 64 x 64-byte UDP datagrams -> 1 USO packet', 64, 64, false, 1);
  run('groCoalesce 45 x 1440-byte TCP segments -> 1 TSO packet', 45, 1440, true, 2);
  run('groCoalesce 45 x 1440-byte TCP, checksums verified first', 45, 1440, true, 0);
}

// ---- keyed pool hash (hashKey): SipHash-1-3 over 32-bit halves vs the unkeyed murmur it replaced ----
{
  const key = sipKey(Uint8Array.from({ length: 16 }, (_, i) => i * 17));
  const r = rng(11);
  const w = new Uint32Array(N * 5);
  for (let i = 0; i < w.length; i++) w[i] = r();
  let sink = 0;
  bench('pool hash, 1 word (label): murmur hash1 (unkeyed, before)', N, 5000, () => { for (let i = 0; i < N; i++) sink ^= hash1(KEY_SEED, w[i]!); });
  bench('pool hash, 1 word (label): SipHash-1-3 sip1 (keyed)', N, 5000, () => { for (let i = 0; i < N; i++) sink ^= sip1(key, w[i]!); });
  bench('pool hash, 4 words (IPv6 source): murmur hash4 (before)', N, 5000, () => { for (let i = 0; i < N; i++) { const b = i * 5; sink ^= hash4(KEY_SEED, w[b]!, w[b + 1]!, w[b + 2]!, w[b + 3]!); } });
  bench('pool hash, 4 words (IPv6 source): SipHash-1-3 sip4 (keyed)', N, 5000, () => { for (let i = 0; i < N; i++) { const b = i * 5; sink ^= sip4(key, w[b]!, w[b + 1]!, w[b + 2]!, w[b + 3]!); } });
  bench('pool hash, 5 words (source+label): murmur hash5 (before)', N, 5000, () => { for (let i = 0; i < N; i++) { const b = i * 5; sink ^= hash5(KEY_SEED, w[b]!, w[b + 1]!, w[b + 2]!, w[b + 3]!, w[b + 4]!); } });
  bench('pool hash, 5 words (source+label): SipHash-1-3 sip5 (keyed)', N, 5000, () => { for (let i = 0; i < N; i++) { const b = i * 5; sink ^= sip5(key, w[b]!, w[b + 1]!, w[b + 2]!, w[b + 3]!, w[b + 4]!); } });
  // the whole decision through a source-keyed pool (the 4-word hash), with a hashKey set
  const v = validateTable({ ...tableDoc, pools: { web: { members: ['b1', 'b2', 'b3'], key: 'source' } } }, 'bench.yaml', ctx);
  const t = CompiledTable.compile(v.table!, { services: ctx.services, flowLabelEnabled: true, lbspEnabled: true, slotOf: (n) => Number(n.slice(1)), hashKey: '00112233445566778899aabbccddeeff' });
  const inp = new DecisionInput(), out = new DecisionResult();
  inp.family = 6;
  inp.service.set([0x20010db8, 0x00050000, 0, 0x80]);
  bench('decide alone: route -> Maglev pool (source key, hashKey)', N, 2000, () => {
    for (let i = 0; i < N; i++) { const b = i * 5; inp.src[0] = 0x20010db8; inp.src[1] = 0xc9000000 | (w[b]! & 0xffff); inp.src[2] = w[b + 1]!; inp.src[3] = w[b + 2]!; decide(t, inp, out); sink ^= out.back; }
  });
  if (sink === 0.5) console.log(sink);
}

// The back's merged output: a UDP-tunnel super-packet (GRO merged same-flow tunnel packets) is cut,
// every segment unwrapped with all its checks, and consecutive inner TCP segments of one flow leave
// as one TSO super-packet (TxQueue.mergeFrom over native gro.c) instead of one entry per segment.
// Inputs and expected outputs are scapy vectors (test/vectors/make_tunnel_merge_vectors.py).
import { describe, expect, it } from 'vitest';
import { dropIndex, newCounterBlock } from '../../shared/metrics/counter-layout.js';
import { newTxQueue } from '../helpers/tx-queue.js';
import { BackProcessor } from '../../back/back-processor.js';
import type { BackRole } from '../../back/back-role.js';
import { loadVectors, words } from '../vectors/load.js';
import { prepareRxVnet, vnetSegments } from '../../shared/tun/vnet-header.js';
import type { TxQueue } from '../../shared/engine/tx-queue.js';
import { BatchLoop } from '../../shared/engine/batch-loop.js';
import { FakeTun } from '../../shared/tun/fake-tun.js';
import { HEADROOM, TUN_F_CSUM, TUN_F_TSO4, TUN_F_TSO6, TUN_F_USO4, TUN_F_USO6 } from '../../shared/tun/tun-device.js';
import { C_RX_PACKETS, C_TX_PACKETS } from '../../shared/metrics/counter-layout.js';

interface Out { hex: string; vnet: number[] }
interface Case { super: string; outer: number; gso: number; expect: Out[]; drops: Record<string, number> }
const V = loadVectors<Record<string, Case>>('tunnel-merge.json');

const PORT = 6080;
const S6 = '2001:db8:5::80', S4 = '192.0.2.80', B6 = '2001:db8:b::1', B4 = '198.51.100.1';
const F6 = '2001:db8:f::1', F4 = '192.0.2.1';
const w = (a: string) => Array.from(words(a));
const role = (): BackRole => ({
  lbspType: 0x1e,
  own: [{ family: 6, b: w(B6), s: w(S6), mode: 1 }, { family: 4, b: w(B4), s: w(S4), mode: 1 }],
  services: [{ family: 6, words: w(S6) }, { family: 4, words: w(S4) }],
  allowedFronts: [{ family: 6, words: w(F6), len: 128 }, { family: 4, words: w(F4), len: 32 }],
  udpPort: PORT,
});

/** What the back reads: the super-packet at 128 with a UDP_L4 virtio header (NEEDS_CSUM at the outer UDP header). */
function input(c: Case): { buf: Uint8Array; len: number; vnet: Uint8Array } {
  const b = Buffer.from(c.super, 'hex');
  const buf = new Uint8Array(128 + b.length + 64).fill(0xa5);
  buf.set(b, 128);
  const vnet = new Uint8Array(12);
  vnet[0] = 1;
  vnet[1] = 5;
  vnet[4] = c.gso & 0xff;
  vnet[5] = c.gso >> 8;
  vnet[6] = c.outer - 8;
  vnet[8] = 6;
  prepareRxVnet(buf, 128, b.length, vnet, 0);
  return { buf, len: b.length, vnet };
}

function out(q: TxQueue): Out[] {
  const r: Out[] = [];
  for (let i = 0; i < q.count; i++) {
    const v = q.vnet.subarray(i * 12, i * 12 + 12);
    const u16 = (p: number) => v[p]! | (v[p + 1]! << 8);
    r.push({
      hex: Buffer.from(q.bufs[i]!.subarray(q.offs[i]!, q.offs[i]! + q.lens[i]!)).toString('hex'),
      vnet: [v[0]!, v[1]!, u16(2), u16(4), u16(6), u16(8), u16(10)],
    });
  }
  return r;
}

function run(c: Case, tcp: number): { q: TxQueue; counters: Float64Array; verdict: number } {
  const counters = newCounterBlock();
  const bp = new BackProcessor(role(), counters);
  const q = newTxQueue(64, true);
  q.groTcp = tcp;
  q.groUdp = tcp;
  const { buf, len, vnet } = input(c);
  const verdict = bp.process(buf, 128, len, vnet, 0, q);
  return { q, counters, verdict };
}

describe('back: a UDP-tunnel super-packet leaves as merged inner TCP', () => {
  it.each(Object.keys(V))('%s: the entries scapy expects, in order, with their virtio headers', (name) => {
    const c = V[name]!;
    const { q, counters, verdict } = run(c, 1);
    expect(verdict).toBeGreaterThanOrEqual(0);
    expect(out(q)).toEqual(c.expect);
    for (const [reason, n] of Object.entries(c.drops)) expect(counters[dropIndex(reason as Parameters<typeof dropIndex>[0])]).toBe(n);
    expect(counters[dropIndex('malformed')]).toBe(0);
  });

  it('wire packets stay counted per segment: the entries carry every segment the super-packet held, less the drops', () => {
    for (const [name, c] of Object.entries(V)) {
      const { q, counters } = run(c, 1);
      const inners = c.expect.reduce((n, o) => n + (o.vnet[6]! || 1), 0);
      let wire = 0;
      for (let i = 0; i < q.count; i++) wire += vnetSegments(q.vnet, i);
      expect(wire, name).toBe(inners);
      const dropped = Object.values(c.drops).reduce((a, b) => a + b, 0);
      const segs = Math.ceil((Buffer.from(c.super, 'hex').length - c.outer) / c.gso);
      expect(wire + dropped, name).toBe(segs);
      expect(counters[dropIndex('malformed')]).toBe(0);
    }
  });

  it('a device without TSO/USO (or write-side GRO off): every inner segment is its own entry, unchanged', () => {
    const c = V['6in6']!;
    const { q } = run(c, 0);
    expect(q.count).toBe(5);
    const inner = Buffer.from(c.super, 'hex').subarray(c.outer);
    const got = out(q);
    got.forEach((o, k) => {
      expect(o.vnet).toEqual([0, 0, 0, 0, 0, 0, 0]);
      expect(o.hex).toBe(inner.subarray(k * c.gso, Math.min((k + 1) * c.gso, inner.length)).toString('hex'));
    });
  });

  it('a flipped payload bit in one segment: that segment goes on unmerged, as it came (its TCP checksum fails at the server), the rest merge around it', () => {
    // the kernel vouched for the super-packet's outer checksum and the cut writes each segment's
    // anew; the inner TCP checksum is what judges the inner bytes, so a corrupt segment is never
    // given a fresh valid checksum by a merge
    const c = V['6in6']!;
    const b = Buffer.from(c.super, 'hex');
    b[c.outer + c.gso + 200] ^= 0x10; // payload of the second inner segment
    const { q } = run({ ...c, super: b.toString('hex') }, 1);
    const got = out(q);
    expect(got.map((o) => o.vnet[6])).toEqual([0, 0, 3]);
    expect(got[1]!.hex).toBe(b.subarray(c.outer + c.gso, c.outer + 2 * c.gso).toString('hex'));
  });

  it.each([[true, 'TSO/USO on: one write entry per run'], [false, 'offloads off: one per segment']] as const)('through the batch loop (FakeTun, %s): %s, wire packets counted alike', (on, _what) => {
    const c = V['two_flows']!;
    const offloads = on ? TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_USO4 | TUN_F_USO6 : TUN_F_CSUM;
    const dev = new FakeTun({ vnetHdr: true, batchSize: 8, slotSize: HEADROOM + 65536, queueLimit: 100, offloads });
    const counters = newCounterBlock();
    const loop = new BatchLoop(dev, new BackProcessor(role(), counters), counters, (e) => { throw e; });
    const { buf, len, vnet } = input(c);
    dev.inject(buf.subarray(128, 128 + len), vnet);
    loop.drain();
    const w = dev.takeWritten();
    expect(w.length).toBe(on ? 3 : 5);
    if (on) expect(w.map((x) => Buffer.from(x.data).toString('hex'))).toEqual(c.expect.map((o) => o.hex));
    expect(counters[C_RX_PACKETS]).toBe(5);
    expect(counters[C_TX_PACKETS]).toBe(5);
  });
});

// The back reading IP-in-UDP tunnels the kernel carried as UDP-tunnel super-packets: with a 24-byte
// device header and TUN_F_UDP_TUNNEL_GSO a whole super-packet is decapsulated once and leaves as
// the inner TCP super-packet with a TSO header; without it, the kernel's own segments (inner TCP
// checksum partial, outer computed for the finished bytes) are finished where csum_start says.
// Inputs and expected outputs are scapy vectors (test/vectors/make_tunnel_gso_read_vectors.py).
import { describe, expect, it } from 'vitest';
import { C_RX_PACKETS, C_TX_PACKETS, dropIndex, newCounterBlock, servicePacketsIndex } from '../../shared/metrics/counter-layout.js';
import { newTxQueue } from '../helpers/tx-queue.js';
import { BackProcessor } from '../../back/back-processor.js';
import type { BackRole } from '../../back/back-role.js';
import { loadVectors, words } from '../vectors/load.js';
import { prepareRxVnet } from '../../shared/tun/vnet-header.js';
import { BatchLoop } from '../../shared/engine/batch-loop.js';
import { FakeTun } from '../../shared/tun/fake-tun.js';
import { HEADROOM, TUN_F_CSUM, TUN_F_TSO4, TUN_F_TSO6, TUN_F_USO4, TUN_F_USO6 } from '../../shared/tun/tun-device.js';

interface Case { in: string; vnet: number[]; out: string[]; outVnet: number[][]; drops: Record<string, number> }
const V = loadVectors<Record<string, Case>>('tunnel-gso-read.json');

const S6 = '2001:db8:5::80', S4 = '192.0.2.80', B6 = '2001:db8:b::1', B4 = '198.51.100.1';
const F6 = '2001:db8:f::1', F4 = '192.0.2.1';
const w = (a: string) => Array.from(words(a));
const role = (): BackRole => ({
  lbspType: 0x1e,
  own: [{ family: 6, b: w(B6), s: w(S6), mode: 1 }, { family: 4, b: w(B4), s: w(S4), mode: 1 }],
  services: [{ family: 6, words: w(S6) }, { family: 4, words: w(S4) }],
  allowedFronts: [{ family: 6, words: w(F6), len: 128 }, { family: 4, words: w(F4), len: 32 }],
  udpPort: 6080,
});

function vnetOf(c: Case): Uint8Array {
  const v = new Uint8Array(12);
  const [flags, type, hdrLen, gso, cs, co] = c.vnet as [number, number, number, number, number, number];
  v[0] = flags; v[1] = type;
  v[2] = hdrLen & 0xff; v[3] = hdrLen >> 8;
  v[4] = gso & 0xff; v[5] = gso >> 8;
  v[6] = cs & 0xff; v[7] = cs >> 8;
  v[8] = co;
  return v;
}

describe('back: UDP-tunnel super-packets and the kernel\'s own tunnel segments', () => {
  it.each(Object.keys(V))('%s', (name) => {
    const c = V[name]!;
    const b = Buffer.from(c.in, 'hex');
    const buf = new Uint8Array(128 + b.length + 64).fill(0xa5);
    buf.set(b, 128);
    const vnet = vnetOf(c);
    const segs = prepareRxVnet(buf, 128, b.length, vnet, 0);
    if (name.startsWith('gso_') && c.out.length > 0) expect(segs).toBe(4); // rx counts the wire segments
    const counters = newCounterBlock();
    const q = newTxQueue(64, true);
    new BackProcessor(role(), counters).process(buf, 128, b.length, vnet, 0, q);
    const got: string[] = [];
    const gotVnet: number[][] = [];
    for (let i = 0; i < q.count; i++) {
      got.push(Buffer.from(q.bufs[i]!.subarray(q.offs[i]!, q.offs[i]! + q.lens[i]!)).toString('hex'));
      const v = q.vnet.subarray(i * 12, i * 12 + 12);
      const u16 = (p: number) => v[p]! | (v[p + 1]! << 8);
      gotVnet.push([v[0]!, v[1]!, u16(2), u16(4), u16(6), u16(8), u16(10)]);
    }
    expect(got).toEqual(c.out);
    expect(gotVnet).toEqual(c.outVnet);
    for (const [reason, n] of Object.entries(c.drops)) expect(counters[dropIndex(reason as Parameters<typeof dropIndex>[0])]).toBe(n);
    if (!('malformed' in c.drops)) expect(counters[dropIndex('malformed')]).toBe(0);
  });

  it('through the batch loop: one read, one write, the wire segments counted on both sides', () => {
    const c = V['gso_4in6']!;
    const offloads = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_USO4 | TUN_F_USO6;
    const dev = new FakeTun({ vnetHdr: true, batchSize: 8, slotSize: HEADROOM + 65536, queueLimit: 100, offloads });
    const counters = newCounterBlock();
    const loop = new BatchLoop(dev, new BackProcessor(role(), counters), counters, (e) => { throw e; });
    dev.inject(Uint8Array.from(Buffer.from(c.in, 'hex')), vnetOf(c));
    loop.drain();
    const wr = dev.takeWritten();
    expect(wr.map((x) => Buffer.from(x.data).toString('hex'))).toEqual(c.out);
    expect(counters[C_RX_PACKETS]).toBe(4);
    expect(counters[C_TX_PACKETS]).toBe(4);
    // the service label counts the inner wire segments of the one super-packet (S4: slot 1)
    const inner = Buffer.from(c.out[0]!, 'hex');
    const hdrLen = c.outVnet[0]![2]!;
    expect(counters[servicePacketsIndex(1)]).toBe(4);
    expect(counters[servicePacketsIndex(1) + 1]).toBe(inner.length + 3 * hdrLen);
    expect(counters[servicePacketsIndex(0)]).toBe(0);
  });
});

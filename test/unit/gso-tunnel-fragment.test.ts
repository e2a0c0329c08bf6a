// A GSO super-packet whose wire segments do not fit the tunnel (IPv4 without DF, or IPv6 segments of
// at most 1280 bytes) through the batch loop and TunnelOffload as the front's encap drives them: cut
// into its segments, each one fragmented like a packet of its size read alone, every fragment within
// the path MTU, reassembling to exactly the datagrams the kernel would have put on the wire; room in
// the segment slab made (the queue written early) or, without it, a counted too_big with nothing queued.
import { describe, expect, it } from 'vitest';
import { BatchLoop } from '../../shared/engine/batch-loop.js';
import { TxQueue } from '../../shared/engine/tx-queue.js';
import { PacketSlab } from '../../shared/engine/packet-slab.js';
import { SegmentSlab } from '../../shared/engine/segment-slab.js';
import { TunnelOffload } from '../../shared/tunnel/tunnel-offload.js';
import { TunnelMtu, MTU_DROPPED, MTU_FRAG_INNER } from '../../shared/tunnel/tunnel-mtu.js';
import { PmtuCache } from '../../shared/tunnel/path-mtu-cache.js';
import { IcmpEmitter } from '../../shared/tunnel/icmp-emitter.js';
import { VERDICT_QUEUED, dropVerdict, type PacketProcessor } from '../../shared/engine/packet-processor.js';
import { FakeTun } from '../../shared/tun/fake-tun.js';
import { HEADROOM, VNET_HDR_LEN } from '../../shared/tun/tun-device.js';
import { prepareRxVnet } from '../../shared/tun/vnet-header.js';
import { PacketInfo } from '../../shared/packet/packet-info.js';
import { parsePacket, ParseError } from '../../shared/packet/parse.js';
import { computeL4Checksum, ipv4HeaderChecksumValid, partialPseudoSum, writeIpv4HeaderChecksum } from '../../shared/packet/checksum.js';
import { C_TX_PACKETS, dropIndex, eventIndex, newCounterBlock } from '../../shared/metrics/counter-layout.js';

const SRC4 = Uint32Array.from([0xc0000250]); // 192.0.2.80
const DST4 = Uint32Array.from([0xc6336401]); // 198.51.100.1
const TOO_BIG = dropIndex('too_big');
const FRAGMENTED = eventIndex('fragmented');

/** Wraps every packet in IPv4 toward DST4 the way FrontProcessor.encap does: check, then wrap / fragment. */
class Encap4 implements PacketProcessor {
  readonly info = new PacketInfo();
  readonly counters = newCounterBlock();
  readonly tunnel = new TunnelOffload(this.counters);
  readonly tm: TunnelMtu;
  constructor(pmtu: number) {
    this.tm = new TunnelMtu(PmtuCache.create(pmtu, 1), new IcmpEmitter(this.counters, 100, 100, 0), this.counters);
  }
  process(buf: Uint8Array, off: number, len: number, vnet: Uint8Array, vnetOff: number, tx: TxQueue): number {
    const info = this.info;
    if (parsePacket(buf, off, len, info, -1) !== ParseError.OK) return dropVerdict(0);
    const fit = this.tm.check(buf, off, info, 4, 0, vnet, vnetOff, tx);
    if (fit === MTU_DROPPED) return dropVerdict(TOO_BIG);
    if (!TunnelOffload.isGso(vnet, vnetOff)) throw new Error('this test sends super-packets only');
    return this.tunnel.wrapSegments(tx, buf, off, info.totalLen, vnet, vnetOff, 4, SRC4, DST4, 64, this.tm, -1, fit);
  }
}

/** A NEEDS_CSUM UDP GSO super-packet (IPv4 without DF, or IPv6) of `payload` bytes in datagrams of `gso`. */
function usoSuper(v: 4 | 6, payload: number, gso: number, tag: number): { pkt: Uint8Array; vnet: Uint8Array } {
  const ip = v === 4 ? 20 : 40;
  const pkt = new Uint8Array(ip + 8 + payload);
  if (v === 4) {
    pkt.set([0x45, 0, pkt.length >> 8, pkt.length & 0xff, 0x10, tag, 0, 0, 63, 17, 0, 0, 203, 0, 113, 20, 192, 0, 2, 80]);
    writeIpv4HeaderChecksum(pkt, 0);
  } else {
    pkt.set([0x60, 0, 0, 0, (8 + payload) >> 8, (8 + payload) & 0xff, 17, 63]);
    pkt.set([0x20, 0x01, 0x0d, 0xb8, 0, 0xc2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10], 8);
    pkt.set([0x20, 0x01, 0x0d, 0xb8, 0, 0x05, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80], 24);
  }
  const u = ip;
  pkt.set([0x14, 0xe9, 0, tag, (8 + payload) >> 8, (8 + payload) & 0xff], u);
  for (let i = 0; i < payload; i++) pkt[u + 8 + i] = (i * 13 + tag) & 0xff;
  const info = new PacketInfo();
  expect(parsePacket(pkt, 0, pkt.length, info, -1)).toBe(ParseError.OK);
  const p = partialPseudoSum(info);
  pkt[u + 6] = p >> 8;
  pkt[u + 7] = p & 0xff;
  const vnet = new Uint8Array(VNET_HDR_LEN);
  vnet.set([1, 5, ip + 8, 0, gso & 0xff, gso >> 8, ip, 0, 6, 0]);
  return { pkt, vnet };
}

/** Reassemble IPv4 fragments (whole packets pass through), grouped by ID, in the order first seen. */
function reassemble4(pkts: Uint8Array[]): Uint8Array[] {
  const groups = new Map<number, Uint8Array[]>();
  for (const p of pkts) {
    expect(ipv4HeaderChecksumValid(p, 0, (p[0] & 15) * 4)).toBe(true);
    const id = (p[4] << 8) | p[5];
    if (!groups.has(id)) groups.set(id, []);
    groups.get(id)!.push(p);
  }
  const out: Uint8Array[] = [];
  for (const fr of groups.values()) {
    fr.sort((a, b) => (((a[6] & 0x1f) << 8) | a[7]) - (((b[6] & 0x1f) << 8) | b[7]));
    const ihl = (fr[0]![0] & 15) * 4;
    const parts = [fr[0]!.subarray(0, ihl)];
    let at = 0;
    for (const f of fr) {
      const h = (f[0] & 15) * 4;
      expect((((f[6] & 0x1f) << 8) | f[7]) * 8).toBe(at); // no hole, no overlap
      parts.push(f.subarray(h));
      at += f.length - h;
    }
    expect(fr[fr.length - 1]![6] & 0x20).toBe(0); // the last one ends the datagram
    const whole = Uint8Array.from(Buffer.concat(parts));
    whole[2] = whole.length >> 8;
    whole[3] = whole.length & 0xff;
    whole[6] &= 0x40;
    whole[7] = 0;
    out.push(whole);
  }
  return out;
}

/** Check one written super-packet's worth of tunnel packets: each within pmtu, inner datagrams exact. */
function checkDatagrams(written: Uint8Array[], pmtu: number, sup: Uint8Array, gso: number, v: 4 | 6): number {
  for (const w of written) expect(w.length).toBeLessThanOrEqual(pmtu);
  // the inner packets: outer fragments reassembled first (6in4), inner fragments after unwrapping (4in4)
  const inner = v === 6 ? reassemble4(written).map((o) => o.subarray(20)) : reassemble4(written.map((w) => w.subarray(20)));
  const ip = v === 4 ? 20 : 40;
  const payload = sup.length - ip - 8;
  const n = Math.ceil(payload / gso);
  expect(inner.length).toBe(n);
  const info = new PacketInfo();
  for (let k = 0; k < n; k++) {
    const d = inner[k]!;
    expect(parsePacket(d, 0, d.length, info, -1)).toBe(ParseError.OK);
    const len = Math.min(gso, payload - k * gso);
    expect(d.length).toBe(ip + 8 + len);
    expect(Buffer.from(d.subarray(ip + 8)).equals(Buffer.from(sup.subarray(ip + 8 + k * gso, ip + 8 + k * gso + len)))).toBe(true);
    const ck = ip + 6;
    expect((d[ck] << 8) | d[ck + 1]).toBe(computeL4Checksum(d, 0, info));
    if (v === 4) expect((d[4] << 8) | d[5]).toBe((((sup[4] << 8) | sup[5]) + k) & 0xffff); // the IDs Linux gives them
  }
  return n;
}

function makeLoop(p: PacketProcessor, batch = 8) {
  const dev = new FakeTun({ vnetHdr: true, batchSize: batch, slotSize: HEADROOM + 65536, queueLimit: 100 });
  const loop = new BatchLoop(dev, p, p instanceof Encap4 ? p.counters : newCounterBlock(), (e) => {
    throw e;
  });
  return { dev, loop };
}

describe('GSO super-packets that need fragmenting in a tunnel', () => {
  it('USO IPv4 without DF, 64 KiB in 1472-byte datagrams into 4in4 over path MTU 576: every datagram fragmented, every fragment wrapped', () => {
    const p = new Encap4(576);
    const { dev, loop } = makeLoop(p);
    const s = usoSuper(4, 65000, 1472, 1);
    dev.inject(s.pkt, s.vnet);
    loop.drain();
    const w = dev.takeWritten().map((x) => x.data);
    for (const x of w) expect([x[0] >> 4, x[9]]).toEqual([4, 4]); // 4in4
    // outer IPv4 IDs follow the wire order
    for (let i = 1; i < w.length; i++) expect((w[i]![4] << 8) | w[i]![5]).toBe((((w[i - 1]![4] << 8) | w[i - 1]![5]) + 1) & 0xffff);
    const n = checkDatagrams(w, 576, s.pkt, 1472, 4);
    expect(n).toBe(45);
    expect(w.length).toBe(44 * 3 + 1); // 1500-byte datagrams in 3 fragments; the last (260 bytes) fits whole
    expect(p.counters[FRAGMENTED]).toBe(44);
    expect(p.counters[TOO_BIG]).toBe(0);
  });

  it('USO IPv6 with 1200-byte datagrams into 6in4 over path MTU 1000: each segment wrapped, the outer IPv4 packet fragmented (DF cleared)', () => {
    const p = new Encap4(1000);
    const { dev, loop } = makeLoop(p);
    const s = usoSuper(6, 30000, 1200, 2);
    dev.inject(s.pkt, s.vnet);
    loop.drain();
    const w = dev.takeWritten().map((x) => x.data);
    for (const x of w) expect([x[0] >> 4, x[9], x[6] & 0x40]).toEqual([4, 41, 0]);
    expect(checkDatagrams(w, 1000, s.pkt, 1200, 6)).toBe(25);
    expect(p.counters[FRAGMENTED]).toBe(25);
    expect(p.counters[TOO_BIG]).toBe(0);
  });

  it('a batch of super-packets whose fragments outgrow the room the loop reserved: the queue is written early, none dropped', () => {
    // 12 super-packets of 14 datagrams, each taking ~43 KB of the segment arena with its fragments:
    // the loop's reserve (room for 14 segments) runs out of room for the fragments before the 12th
    const p = new Encap4(576);
    const { dev, loop } = makeLoop(p, 16);
    const sups = Array.from({ length: 12 }, (_, k) => usoSuper(4, 20000, 1472, 16 * k));
    for (const s of sups) dev.inject(s.pkt, s.vnet);
    expect(loop.drain()).toBe(12);
    const w = dev.takeWritten().map((x) => x.data);
    expect(p.counters[TOO_BIG]).toBe(0);
    for (let k = 0; k < sups.length; k++) {
      // this super-packet's tunnel packets: inner IPv4 IDs 0x10 << 8 | 16k + segment
      const mine = w.filter((x) => x[24] === 0x10 && x[25] >= 16 * k && x[25] < 16 * k + 14);
      expect(checkDatagrams(mine, 576, sups[k]!.pkt, 1472, 4)).toBe(14);
    }
    expect(p.counters[C_TX_PACKETS]).toBe(w.length);
    expect(w.length).toBe(12 * (13 * 3 + 2));
    expect(p.counters[FRAGMENTED]).toBe(12 * 14);
  });

  it('with no room for the fragments and no loop to write the queue early: too_big counted, nothing cut or queued', () => {
    const counters = newCounterBlock();
    const aux = new PacketSlab(8, 2048, 64);
    const seg = new SegmentSlab(HEADROOM);
    const tx = new TxQueue(8 + aux.capacity + seg.capacity, true, aux, seg);
    const tm = new TunnelMtu(PmtuCache.create(576, 1), new IcmpEmitter(counters, 100, 100, 0), counters);
    const off = new TunnelOffload(counters);
    const s = usoSuper(4, 20000, 1472, 3);
    const buf = new Uint8Array(HEADROOM + s.pkt.length);
    buf.set(s.pkt, HEADROOM);
    const vnet = Uint8Array.from(s.vnet);
    prepareRxVnet(buf, HEADROOM, s.pkt.length, vnet, 0);
    const info = new PacketInfo();
    expect(parsePacket(buf, HEADROOM, s.pkt.length, info, -1)).toBe(ParseError.OK);
    expect(tm.check(buf, HEADROOM, info, 4, 0, vnet, 0, tx)).toBe(MTU_FRAG_INNER);
    // room for the 14 segments (1664-byte slots) but not for their fragments as well
    seg.used = seg.buf.length - 20 * 1664;
    const used = seg.used;
    expect(off.wrapSegments(tx, buf, HEADROOM, info.totalLen, vnet, 0, 4, SRC4, DST4, 64, tm, -1, MTU_FRAG_INNER)).toBe(dropVerdict(TOO_BIG));
    expect(counters[TOO_BIG]).toBe(1);
    expect(tx.count).toBe(0);
    expect(seg.used).toBe(used);
    // an empty slab has the room
    seg.reset();
    expect(off.wrapSegments(tx, buf, HEADROOM, info.totalLen, vnet, 0, 4, SRC4, DST4, 64, tm, -1, MTU_FRAG_INNER)).toBe(VERDICT_QUEUED);
    expect(tx.count).toBe(13 * 3 + 2); // 13 datagrams of 1500 bytes in 3 fragments, the last (892 bytes) in 2
  });
});

// The batch loop with offloads (FakeTun with vnet headers): GSO super-packets count as their wire
// segments, a processor that wraps packets into a tunnel (TunnelOffload, as the front's encap does)
// has super-packets cut into segments that are written in packet order, with complete checksums,
// plain virtio headers and one outer header each; NEEDS_CSUM packets are finished before wrapping.
import { describe, expect, it } from 'vitest';
import { BatchLoop } from '../../shared/engine/batch-loop.js';
import { TunnelOffload } from '../../shared/tunnel/tunnel-offload.js';
import { TunnelMtu } from '../../shared/tunnel/tunnel-mtu.js';
import { PmtuCache } from '../../shared/tunnel/path-mtu-cache.js';
import { IcmpEmitter } from '../../shared/tunnel/icmp-emitter.js';
import { VERDICT_QUEUED, dropVerdict, type PacketProcessor } from '../../shared/engine/packet-processor.js';
import type { TxQueue } from '../../shared/engine/tx-queue.js';
import { FakeTun } from '../../shared/tun/fake-tun.js';
import { HEADROOM, VNET_HDR_LEN } from '../../shared/tun/tun-device.js';
import { vnetHdrLen } from '../../shared/tun/vnet-header.js';
import { PacketInfo } from '../../shared/packet/packet-info.js';
import { parsePacket, ParseError } from '../../shared/packet/parse.js';
import { encapsulate, OUTER_HDR_LEN6 } from '../../shared/packet/encap.js';
import { computeL4Checksum, partialPseudoSum } from '../../shared/packet/checksum.js';
import { C_RX_PACKETS, C_TX_PACKETS, newCounterBlock } from '../../shared/metrics/counter-layout.js';
import { loadVectors } from '../vectors/load.js';

interface SplitVector {
  desc: string;
  super: string;
  vnet: string;
  segments: string[];
}
const V = loadVectors<{ split: SplitVector[] }>('gso.json');
const hex = (h: string) => Uint8Array.from(Buffer.from(h, 'hex'));
const OUTER_SRC = Uint32Array.from([0x20010db8, 0x00050000, 0, 0x80]);
const OUTER_DST = Uint32Array.from([0x20010db8, 0x000b0000, 0, 1]);

/** Wraps everything in IPv6 toward OUTER_DST, the way FrontProcessor.encap does. */
class WrapAll implements PacketProcessor {
  readonly info = new PacketInfo();
  readonly counters = newCounterBlock();
  readonly tunnel = new TunnelOffload(this.counters);
  readonly ids = new TunnelMtu(PmtuCache.create(1500, 1), new IcmpEmitter(this.counters, 1, 1, 0), this.counters);
  process(buf: Uint8Array, off: number, len: number, vnet: Uint8Array, vnetOff: number, tx: TxQueue): number {
    const info = this.info;
    if (parsePacket(buf, off, len, info, -1) !== ParseError.OK) return dropVerdict(0);
    if (TunnelOffload.isGso(vnet, vnetOff)) {
      return this.tunnel.wrapSegments(tx, buf, off, info.totalLen, vnet, vnetOff, 6, OUTER_SRC, OUTER_DST, 64, this.ids, -1);
    }
    if (!this.tunnel.finish(buf, off, info.totalLen, vnet, vnetOff)) return dropVerdict(0);
    const o = encapsulate(buf, off, info, 6, OUTER_SRC, OUTER_DST, 64, 0);
    tx.forward(buf, o, info.totalLen + OUTER_HDR_LEN6, vnet, vnetOff);
    return VERDICT_QUEUED;
  }
}

/** Passes everything through unchanged (a translate that rewrote nothing). */
class PassThrough implements PacketProcessor {
  process(buf: Uint8Array, off: number, len: number, vnet: Uint8Array, vnetOff: number, tx: TxQueue): number {
    tx.forward(buf, off, len, vnet, vnetOff);
    return VERDICT_QUEUED;
  }
}

/** A NEEDS_CSUM UDP/IPv6 datagram (non-GSO) with `n` payload bytes. */
function partialUdp6(n: number, tag: number): { pkt: Uint8Array; vnet: Uint8Array } {
  const pkt = new Uint8Array(48 + n);
  pkt[0] = 0x60;
  pkt[4] = (8 + n) >> 8;
  pkt[5] = (8 + n) & 0xff;
  pkt[6] = 17;
  pkt[7] = 64;
  pkt.set([0x20, 0x01, 0x0d, 0xb8, 0, 0xc1], 8);
  pkt[23] = 0x10;
  pkt.set([0x20, 0x01, 0x0d, 0xb8, 0, 0x05], 24);
  pkt[39] = 0x80;
  pkt[40] = 0x9c;
  pkt[41] = tag;
  pkt[43] = 7;
  pkt[44] = (8 + n) >> 8;
  pkt[45] = (8 + n) & 0xff;
  for (let i = 0; i < n; i++) pkt[48 + i] = (i * 7 + tag) & 0xff;
  const info = new PacketInfo();
  parsePacket(pkt, 0, pkt.length, info, -1);
  const p = partialPseudoSum(info);
  pkt[46] = p >> 8;
  pkt[47] = p & 0xff;
  const vnet = new Uint8Array(VNET_HDR_LEN);
  vnet[0] = 1;
  vnet[6] = 40;
  vnet[8] = 6;
  return { pkt, vnet };
}

function innerOf(w: Uint8Array): { info: PacketInfo; off: number } {
  expect(w[0] >> 4).toBe(6);
  expect(w[6]).toBe(41);
  const info = new PacketInfo();
  expect(parsePacket(w, OUTER_HDR_LEN6, w.length - OUTER_HDR_LEN6, info, -1)).toBe(ParseError.OK);
  return { info, off: OUTER_HDR_LEN6 };
}

function makeLoop(p: PacketProcessor, batch = 8, offloads = 0) {
  const dev = new FakeTun({ vnetHdr: true, batchSize: batch, slotSize: HEADROOM + 65536, queueLimit: 100, offloads });
  const counters = newCounterBlock();
  const loop = new BatchLoop(dev, p, counters, (e) => {
    throw e;
  });
  return { dev, counters, loop };
}

describe('BatchLoop with vnet headers', () => {
  it('wrap: packet order kept around a split super-packet; segments complete, plain, wrapped', () => {
    const { dev, counters, loop } = makeLoop(new WrapAll());
    const v = V.split.find((x) => x.desc.startsWith('TCPv6 2900'))!;
    const a = partialUdp6(100, 1);
    const c = partialUdp6(700, 2); // long enough for the native checksum path
    dev.inject(a.pkt, a.vnet);
    dev.inject(hex(v.super), hex(v.vnet));
    dev.inject(c.pkt, c.vnet);
    expect(loop.drain()).toBe(3);
    const w = dev.takeWritten();
    expect(w.length).toBe(2 + v.segments.length);
    // order: A, the segments, C
    expect(w[0].data[OUTER_HDR_LEN6 + 41]).toBe(1);
    expect(w[w.length - 1].data[OUTER_HDR_LEN6 + 41]).toBe(2);
    for (let k = 0; k < v.segments.length; k++) {
      const seg = w[1 + k].data;
      expect(Buffer.from(seg.subarray(OUTER_HDR_LEN6)).toString('hex')).toBe(v.segments[k]);
    }
    for (const x of w) {
      expect(Array.from(x.vnet!)).toEqual(new Array(VNET_HDR_LEN).fill(0)); // nothing left for the kernel to finish
      const { info, off } = innerOf(x.data);
      const f = off + info.l4Off + (info.proto === 6 ? 16 : 6);
      expect((x.data[f] << 8) | x.data[f + 1]).toBe(computeL4Checksum(x.data, off, info));
    }
    expect(counters[C_RX_PACKETS]).toBe(2 + v.segments.length);
    expect(counters[C_TX_PACKETS]).toBe(2 + v.segments.length);
  });

  it('wrap: a super-packet of 600 small segments is cut and written in order', () => {
    const { dev, counters, loop } = makeLoop(new WrapAll());
    // 600 segments of 50 bytes: TCPv4 built from the first vector's headers
    const base = V.split[0];
    const sup = hex(base.super);
    const hdrs = 40;
    const payload = 30000;
    const pkt = new Uint8Array(hdrs + payload);
    pkt.set(sup.subarray(0, hdrs));
    for (let i = 0; i < payload; i++) pkt[hdrs + i] = i & 0xff;
    pkt[2] = pkt.length >> 8;
    pkt[3] = pkt.length & 0xff;
    const info = new PacketInfo();
    expect(parsePacket(pkt, 0, pkt.length, info, -1)).toBe(ParseError.OK);
    const p = partialPseudoSum(info);
    pkt[36] = p >> 8;
    pkt[37] = p & 0xff;
    const vh = hex(base.vnet);
    vh[4] = 50;
    vh[5] = 0;
    dev.inject(pkt, vh);
    const after = partialUdp6(10, 3);
    dev.inject(after.pkt, after.vnet);
    loop.drain();
    const w = dev.takeWritten();
    expect(w.length).toBe(601);
    const seq0 = ((pkt[24] << 24) | (pkt[25] << 16) | (pkt[26] << 8) | pkt[27]) >>> 0;
    for (let k = 0; k < 600; k++) {
      const d = w[k].data;
      const s = ((d[40 + 24] << 24) | (d[40 + 25] << 16) | (d[40 + 26] << 8) | d[40 + 27]) >>> 0;
      expect(s).toBe((seq0 + k * 50) >>> 0);
    }
    expect(w[600].data[OUTER_HDR_LEN6 + 41]).toBe(3);
    expect(counters[C_RX_PACKETS]).toBe(601);
  });

  it('pass-through (translate): the super-packet is written whole with its header, hdr_len recomputed, counted as its segments', () => {
    const { dev, counters, loop } = makeLoop(new PassThrough());
    const v = V.split.find((x) => x.desc.startsWith('TCPv4 with timestamps'))!;
    const vh = hex(v.vnet);
    const want = vnetHdrLen(vh, 0);
    vh[2] = 0xff; // kernel hint says the whole packet
    vh[3] = 0x13;
    dev.inject(hex(v.super), vh);
    loop.drain();
    const w = dev.takeWritten();
    expect(w.length).toBe(1);
    expect(Buffer.from(w[0].data).toString('hex')).toBe(v.super);
    expect(w[0].vnet![1]).toBe(1);
    expect(vnetHdrLen(w[0].vnet!, 0)).toBe(want);
    expect(counters[C_RX_PACKETS]).toBe(v.segments.length);
    expect(counters[C_TX_PACKETS]).toBe(v.segments.length);
  });

  it('write-side GRO (device with TSO+USO): a batch of one flow\'s datagrams is written as one USO super-packet, counted as its datagrams', () => {
    const { dev, counters, loop } = makeLoop(new PassThrough(), 16, 0x67);
    const sent: Uint8Array[] = [];
    for (let k = 0; k < 10; k++) {
      const d = partialUdp6(64, 5);
      sent.push(d.pkt);
      dev.inject(d.pkt, d.vnet);
    }
    // another flow in between keeps its own packet
    const other = partialUdp6(64, 6);
    dev.inject(other.pkt, other.vnet);
    loop.drain();
    const w = dev.takeWritten();
    expect(w.length).toBe(2);
    expect(w[0].vnet![1]).toBe(5); // VIRTIO_NET_HDR_GSO_UDP_L4
    expect(w[0].vnet![0] & 1).toBe(1);
    expect(w[0].data.length).toBe(48 + 10 * 64);
    expect(w[1].data[41]).toBe(6);
    expect(counters[C_RX_PACKETS]).toBe(11);
    expect(counters[C_TX_PACKETS]).toBe(11);
    // without USO on the device nothing is merged
    const plain = makeLoop(new PassThrough(), 16, 0x07);
    for (let k = 0; k < 4; k++) {
      const d = partialUdp6(64, 5);
      plain.dev.inject(d.pkt, d.vnet);
    }
    plain.loop.drain();
    expect(plain.dev.takeWritten().length).toBe(4);
  });

  it('a malformed super-packet is dropped, not split, and the loop goes on', () => {
    const { dev, loop } = makeLoop(new WrapAll());
    const v = V.split[3];
    const vh = hex(v.vnet);
    vh[1] = 1; // TCPV4 on an IPv6 packet
    dev.inject(hex(v.super), vh);
    const ok = partialUdp6(5, 9);
    dev.inject(ok.pkt, ok.vnet);
    loop.drain();
    const w = dev.takeWritten();
    expect(w.length).toBe(1);
    expect(w[0].data[OUTER_HDR_LEN6 + 41]).toBe(9);
  });
});

// Write-side GRO (shared/tun/native/gro.c): merged runs, cut again by the GSO splitter (the
// kernel's job on the other side of the TUN), give back exactly the packets that went in; packets
// the kernel would not merge stay alone; flows keep their order; a corrupt packet is never merged.
import { describe, expect, it } from 'vitest';
import { gsoAddon } from '../../shared/tun/gso.js';
import { PacketInfo } from '../../shared/packet/packet-info.js';
import { parsePacket, ParseError } from '../../shared/packet/parse.js';
import { writeIpv4HeaderChecksum, writeL4Checksum } from '../../shared/packet/checksum.js';
import { vnetSegments } from '../../shared/tun/vnet-header.js';

const a = gsoAddon();
const SLOT = 16384;
const HEAD = 128;

interface Flow {
  v6: boolean;
  tcp: boolean;
  sport: number;
  seq: number;
  id: number;
  opts: number; // TCP option bytes (multiple of 4)
}

let seed = 0x5eed;
const r32 = (): number => {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return seed >>> 0;
};

/** One packet of `f` with `n` payload bytes; complete, valid checksums. */
function packet(f: Flow, n: number, flags = 0x10): Uint8Array {
  const ip = f.v6 ? 40 : 20;
  const l4 = f.tcp ? 20 + f.opts : 8;
  const p = new Uint8Array(ip + l4 + n);
  if (f.v6) {
    p[0] = 0x60;
    p[1] = 0x01;
    p[2] = 0x23;
    p[3] = 0x45;
    p[4] = (l4 + n) >> 8;
    p[5] = (l4 + n) & 0xff;
    p[6] = f.tcp ? 6 : 17;
    p[7] = 63;
    p.set([0x20, 0x01, 0x0d, 0xb8, 0, 0xc1], 8);
    p[23] = 0x10;
    p.set([0x20, 0x01, 0x0d, 0xb8, 0, 0x05], 24);
    p[39] = 0x80;
  } else {
    p[0] = 0x45;
    p[2] = p.length >> 8;
    p[3] = p.length & 0xff;
    p[4] = f.id >> 8;
    p[5] = f.id & 0xff;
    f.id = (f.id + 1) & 0xffff;
    p[6] = 0x40;
    p[8] = 63;
    p[9] = f.tcp ? 6 : 17;
    p.set([203, 0, 113, 10], 12);
    p.set([192, 0, 2, 80], 16);
  }
  const t = ip;
  p[t] = f.sport >> 8;
  p[t + 1] = f.sport & 0xff;
  p[t + 3] = 80;
  if (f.tcp) {
    p[t + 4] = f.seq >>> 24;
    p[t + 5] = (f.seq >>> 16) & 0xff;
    p[t + 6] = (f.seq >>> 8) & 0xff;
    p[t + 7] = f.seq & 0xff;
    f.seq = (f.seq + n) >>> 0;
    p[t + 11] = 7; // ack
    p[t + 12] = (l4 / 4) << 4;
    p[t + 13] = flags;
    p[t + 15] = 200; // window
    for (let k = 0; k < f.opts; k++) p[t + 20 + k] = k === 0 ? 1 : 8; // NOP + bytes (equal per flow)
  } else {
    p[t + 4] = (8 + n) >> 8;
    p[t + 5] = (8 + n) & 0xff;
  }
  for (let k = 0; k < n; k++) p[ip + l4 + k] = r32() & 0xff;
  const info = new PacketInfo();
  expect(parsePacket(p, 0, p.length, info, -1)).toBe(ParseError.OK);
  if (!f.v6) writeIpv4HeaderChecksum(p, 0);
  writeL4Checksum(p, 0, info);
  return p;
}

/** Lay packets out in slots as the rx slab has them; flags per packet (0 = kernel did not verify). */
function batch(pkts: Uint8Array[], flags: number[]) {
  const n = pkts.length;
  const buf = new Uint8Array(n * SLOT);
  const offs = new Int32Array(n);
  const lens = new Int32Array(n);
  const vnet = new Uint8Array(n * 12);
  pkts.forEach((p, i) => {
    buf.set(p, i * SLOT + HEAD);
    offs[i] = i * SLOT + HEAD;
    lens[i] = p.length;
    vnet[i * 12] = flags[i] ?? 0;
    vnet[i * 12 + 10] = 1;
  });
  return { buf, offs, lens, vnet };
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** Expand the GRO output back into wire packets (split what is GSO), in output order. */
function expand(b: ReturnType<typeof batch>, count: number): { wire: Uint8Array[]; runs: number[] } {
  const wire: Uint8Array[] = [];
  const runs: number[] = [];
  const out = new Uint8Array(128 * 2048);
  const oo = new Int32Array(128);
  const ol = new Int32Array(128);
  for (let i = 0; i < count; i++) {
    const vh = b.vnet.subarray(i * 12, i * 12 + 12);
    if (vh[1] === 0) {
      wire.push(b.buf.slice(b.offs[i], b.offs[i] + b.lens[i]));
      runs.push(1);
      continue;
    }
    expect(vh[0] & 1).toBe(1); // NEEDS_CSUM
    const n = a.gsoSplit(b.buf, b.offs[i], b.lens[i], vh, 0, out, oo, ol, 2048, HEAD, 0, 128, 0);
    expect(n).toBeGreaterThan(1);
    expect(vnetSegments(b.vnet, i)).toBe(n);
    for (let k = 0; k < n; k++) wire.push(out.slice(oo[k], oo[k] + ol[k]));
    runs.push(n);
  }
  return { wire, runs };
}

describe('groCoalesce', () => {
  it('one TCPv6 flow of 10 segments (PSH on the last) becomes one super-packet that splits back exactly', () => {
    const f: Flow = { v6: true, tcp: true, sport: 40000, seq: 1000, id: 0, opts: 12 };
    const pk = Array.from({ length: 10 }, (_, i) => packet(f, i === 9 ? 700 : 1428, i === 9 ? 0x18 : 0x10));
    const b = batch(pk, pk.map(() => 2));
    const n = a.groCoalesce(b.buf, b.offs, b.lens, b.vnet, pk.length, SLOT, 1, 1);
    expect(n).toBe(1);
    expect(Array.from(b.vnet.subarray(0, 10))).toEqual([1, 4, 72, 0, 1428 & 0xff, 1428 >> 8, 40, 0, 16, 0]);
    const { wire } = expand(b, n);
    expect(wire.map(hex)).toEqual(pk.map(hex));
  });

  it('UDP datagrams of equal size merge (USO), a shorter one ends the run; TCPv4 IDs must be consecutive', () => {
    const u: Flow = { v6: false, tcp: false, sport: 5353, seq: 0, id: 100, opts: 0 };
    const pk = [packet(u, 64), packet(u, 64), packet(u, 64), packet(u, 10), packet(u, 64)];
    const b = batch(pk, pk.map(() => 1));
    const n = a.groCoalesce(b.buf, b.offs, b.lens, b.vnet, pk.length, SLOT, 1, 1);
    expect(n).toBe(2); // [64,64,64,10] and [64]
    const { wire, runs } = expand(b, n);
    expect(runs).toEqual([4, 1]);
    expect(wire.map(hex)).toEqual(pk.map(hex));
    // udp = 0 (no USO on the device): nothing merges
    const b2 = batch(pk, pk.map(() => 1));
    expect(a.groCoalesce(b2.buf, b2.offs, b2.lens, b2.vnet, pk.length, SLOT, 1, 0)).toBe(5);
  });

  it('packets the kernel would not merge stay alone, in place', () => {
    const f: Flow = { v6: false, tcp: true, sport: 1, seq: 5, id: 7, opts: 0 };
    const p0 = packet(f, 1000);
    const syn = packet(f, 1000, 0x02);
    const p2 = packet(f, 1000);
    f.id = (f.id + 5) & 0xffff; // ID gap
    const p3 = packet(f, 1000);
    const gapSeq = packet({ ...f, seq: f.seq + 1 }, 1000);
    const pk = [p0, syn, p2, p3, gapSeq];
    const b = batch(pk, pk.map(() => 2));
    const n = a.groCoalesce(b.buf, b.offs, b.lens, b.vnet, pk.length, SLOT, 1, 1);
    expect(n).toBe(5);
    expect(expand(b, n).wire.map(hex)).toEqual(pk.map(hex));
  });

  it('a packet with a bad checksum the kernel did not verify is never merged (no fresh valid checksum for corrupt data)', () => {
    const f: Flow = { v6: true, tcp: false, sport: 9, seq: 0, id: 0, opts: 0 };
    const pk = [packet(f, 100), packet(f, 100), packet(f, 100)];
    pk[1]![60] ^= 0x40; // corrupt payload, checksum now wrong
    const b = batch(pk, [0, 0, 0]);
    const n = a.groCoalesce(b.buf, b.offs, b.lens, b.vnet, 3, SLOT, 1, 1);
    expect(n).toBe(3); // p0 alone (p1 cannot follow), p1 alone (bad), p2 alone (p1 broke the run... and is not p0's next)
    expect(expand(b, n).wire.map(hex)).toEqual(pk.map(hex));
    // verified good ones with flags 0 do merge
    const good = [packet(f, 100), packet(f, 100)];
    const g = batch(good, [0, 0]);
    expect(a.groCoalesce(g.buf, g.offs, g.lens, g.vnet, 2, SLOT, 1, 1)).toBe(1);
  });

  it('a run stops at the end of its slot, at 64 segments and at 64 KiB', () => {
    const f: Flow = { v6: true, tcp: false, sport: 2, seq: 0, id: 0, opts: 0 };
    const pk = Array.from({ length: 100 }, () => packet(f, 100));
    const b = batch(pk, pk.map(() => 1));
    const n = a.groCoalesce(b.buf, b.offs, b.lens, b.vnet, pk.length, SLOT, 1, 1);
    const { wire, runs } = expand(b, n);
    expect(wire.map(hex)).toEqual(pk.map(hex));
    expect(Math.max(...runs)).toBeLessThanOrEqual(64);
    // slot room: with 2 KiB slots a run holds (2048 - 128 - 148) / 100 + 1 = 18 datagrams
    const s = batch(pk, pk.map(() => 1));
    const small = new Uint8Array(pk.length * 2048);
    for (let i = 0; i < pk.length; i++) {
      small.set(pk[i]!, i * 2048 + HEAD);
      s.offs[i] = i * 2048 + HEAD;
    }
    const m = a.groCoalesce(small, s.offs, s.lens, s.vnet, pk.length, 2048, 1, 1);
    const e = expand({ ...s, buf: small }, m);
    expect(e.wire.map(hex)).toEqual(pk.map(hex));
    expect(Math.max(...e.runs)).toBe(18);
  });

  it('property: interleaved random flows (TCP/UDP, v4/v6) come back byte-identical and in per-flow order (200 batches)', () => {
    let inPackets = 0;
    let outPackets = 0;
    for (let round = 0; round < 200; round++) {
      const flows: Flow[] = Array.from({ length: 1 + (r32() % 5) }, (_, k) => ({
        v6: (r32() & 1) === 1,
        tcp: (r32() & 1) === 1,
        sport: 1000 + k,
        seq: r32(),
        id: r32() & 0xffff,
        opts: 4 * (r32() % 4),
      }));
      const size = flows.map(() => 1 + (r32() % 1400));
      const pk: Uint8Array[] = [];
      const owner: number[] = [];
      const count = 1 + (r32() % 64);
      for (let i = 0; i < count; i++) {
        const k = r32() % flows.length;
        const short = (r32() & 7) === 0;
        pk.push(packet(flows[k]!, short ? 1 + (r32() % size[k]!) : size[k]!, (r32() & 15) === 0 ? 0x18 : 0x10));
        owner.push(k);
      }
      const b = batch(pk, pk.map(() => [0, 1, 2][r32() % 3]!));
      const n = a.groCoalesce(b.buf, b.offs, b.lens, b.vnet, pk.length, SLOT, 1, 1);
      expect(n).toBeLessThanOrEqual(pk.length);
      inPackets += pk.length;
      outPackets += n;
      const { wire } = expand(b, n);
      expect(wire.length).toBe(pk.length);
      // per flow, the same packets in the same order
      for (let k = 0; k < flows.length; k++) {
        const sport = 1000 + k;
        const mine = (p: Uint8Array) => ((p[(p[0]! >> 4 === 6 ? 40 : 20)]! << 8) | p[(p[0]! >> 4 === 6 ? 41 : 21)]!) === sport;
        expect(wire.filter(mine).map(hex)).toEqual(pk.filter((_, i) => owner[i] === k).map(hex));
      }
    }
    // the property is not vacuous: most packets went through a merge and a split
    expect(outPackets).toBeLessThan(inPackets / 3);
  });
});

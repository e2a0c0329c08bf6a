// IP-in-UDP tunnels through the processors (no TUN): a front with encap.udpPort wraps toward its
// encap backs (all four family pairs, tunnel MTU 8 bytes smaller, fragments, fabric Packet Too Big
// learned from a quoted UDP tunnel packet); a back with udpPort unwraps what the front wrote and
// refuses the hostile variants (bad checksum, bad length, wrong port, outside allowedFronts, nested).
// The packets and the tunnel packets the front must emit are scapy vectors
// (test/vectors/make_udp_tunnel_vectors.py), compared byte for byte.
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { validateTable, type TableContext } from '../../front/table/table-loader.js';
import { CompiledTable } from '../../front/table/compiled-table.js';
import { dropIndex, eventIndex, newCounterBlock } from '../../shared/metrics/counter-layout.js';
import { newTxQueue, split } from '../helpers/tx-queue.js';
import { VERDICT_CONSUMED, dropVerdict } from '../../shared/engine/packet-processor.js';
import { FrontProcessor } from '../../front/front-processor.js';
import type { FrontRole } from '../../front/front-role.js';
import { BackProcessor } from '../../back/back-processor.js';
import type { BackRole } from '../../back/back-role.js';
import { PmtuCache } from '../../shared/tunnel/path-mtu-cache.js';
import { acceptPrefixes } from '../../front/tunnel-accept.js';
import { frontConfigFromValue } from '../../front/front-config.js';
import { backConfigFromValue } from '../../back/back-config.js';
import { loadVectors, words } from '../vectors/load.js';
import { computeL4Checksum, ipv4HeaderChecksumValid, partialPseudoSum } from '../../shared/packet/checksum.js';
import { encapsulateUdp } from '../../shared/packet/udp-encap.js';
import { prepareRxVnet } from '../../shared/tun/vnet-header.js';
import { PacketInfo } from '../../shared/packet/packet-info.js';
import { parsePacket } from '../../shared/packet/parse.js';

const PORT = 6080;
const S6 = '2001:db8:5::80', S4 = '192.0.2.80', B6 = '2001:db8:b::1', B4 = '198.51.100.1';
const SRC6 = '2001:db8:f::1', SRC4 = '192.0.2.1';
const ctx: TableContext = { services: [S6, S4], mode: 'encap', encap: { source: SRC6, source4: SRC4, source6: SRC6 } };
// b6 carries both services over IPv6 (6in6, 4in6), b4 over IPv4 (4in4, 6in4)
const TABLE = {
  backs: {
    b6: { addresses: { [S6]: B6, [S4]: B6 }, mode: 'encap' },
    b4: { addresses: { [S6]: B4, [S4]: B4 }, mode: 'encap' },
  },
  routes: [
    { source: '2001:db8:c1::/48', to: 'b6' },
    { source: '203.0.113.0/26', to: 'b6' },
    { source: '2001:db8:c2::/48', to: 'b4' },
    { source: '203.0.113.64/26', to: 'b4' },
  ],
};

const w = (a: string) => Array.from(words(a));

describe('IP-in-UDP tunnels: front wraps, back unwraps', () => {
  const P = loadVectors<Record<string, string | string[]> & { expect: Record<string, string> }>('udp-tunnel.json');
  let table: CompiledTable;
  const slots = new Map<string, number>();
  let counters: Float64Array;
  let bcounters: Float64Array;
  let fp: FrontProcessor;
  let bp: BackProcessor;
  let cache: PmtuCache;
  const tx = newTxQueue(64);

  const frontRole = (): FrontRole => ({
    lbspType: 0x1e, encapSource4: w(SRC4), encapSource6: w(SRC6), hopLimit: 64, udpPort: PORT,
    flowTable: { size: 4096, tcpTimeout: 300, udpTimeout: 30, otherTimeout: 30 },
    icmp: { ratePerSecond: 10, burst: 50 }, tunMtu: 1500, pmtu: cache.toShared(),
  });
  const backRole = (mode = 1): BackRole => ({
    lbspType: 0x1e,
    own: [{ family: 6, b: w(B6), s: w(S6), mode }, { family: 4, b: w(B4), s: w(S4), mode }],
    services: [{ family: 6, words: w(S6) }, { family: 4, words: w(S4) }],
    allowedFronts: [{ family: 6, words: w(SRC6), len: 128 }, { family: 4, words: w(SRC4), len: 32 }],
    udpPort: PORT,
  });

  beforeAll(() => {
    const v = validateTable(TABLE, 'fixture.yaml', ctx);
    expect(v.errors).toEqual([]);
    table = CompiledTable.compile(v.table!, {
      services: ctx.services, flowLabelEnabled: true, lbspEnabled: true, maglevSize: 251,
      slotOf: (n) => { if (!slots.has(n)) slots.set(n, slots.size); return slots.get(n)!; },
    });
  });
  beforeEach(() => {
    counters = newCounterBlock();
    bcounters = newCounterBlock();
    cache = PmtuCache.create(1500);
    fp = new FrontProcessor(frontRole(), counters, () => 1_000_000);
    fp.setTable(table);
    bp = new BackProcessor(backRole(), bcounters);
  });

  function run(p: FrontProcessor | BackProcessor, h: string): { verdict: number; out: string[] } {
    const b = Buffer.from(h, 'hex');
    const buf = new Uint8Array(128 + b.length + 64).fill(0xa5);
    buf.set(b, 128);
    tx.reset();
    const verdict = p.process(buf, 128, b.length, new Uint8Array(0), 0, tx);
    const q = split(tx, buf);
    return { verdict, out: q.fwd !== undefined ? [q.fwd, ...q.aux] : q.aux };
  }
  const pkt = (k: string) => P[k] as string;

  it.each([['6in6', 6], ['4in6', 6], ['4in4', 4], ['6in4', 4]] as const)('%s: the tunnel packet scapy built (outer header, UDP to the port, flow-hash source port, checksum); the back gives the inner packet back', (k, fam) => {
    const r = run(fp, pkt(k));
    expect(r.verdict).toBeGreaterThanOrEqual(0);
    expect(r.out.length).toBe(1);
    const got = Buffer.from(r.out[0]!, 'hex');
    const want = Buffer.from(P.expect[k]!, 'hex');
    if (fam === 4) {
      // the outer IPv4 ID is the worker's sequence: checked valid, then left out with the header checksum
      expect(ipv4HeaderChecksumValid(got, 0, 20)).toBe(true);
      for (const i of [4, 5, 10, 11]) got[i] = want[i] = 0;
    }
    expect(got.toString('hex')).toBe(want.toString('hex'));
    // through the back: exactly the inner packet (the kernel's forwarding takes the inner hop)
    const b = run(bp, r.out[0]!);
    expect(b.verdict).toBeGreaterThanOrEqual(0);
    expect(b.out).toEqual([pkt(k)]);
    expect(bcounters[dropIndex('malformed')]).toBe(0);
  });

  it('big packets (outer checksum verified natively): any flipped bit is malformed, the packet left as it was', () => {
    for (const [k, outer] of [['6in6', 48], ['6in4', 28]] as const) {
      const wrapped = run(fp, pkt(k)).out[0]!;
      expect(wrapped.length / 2).toBeGreaterThan(512);
      expect(run(bp, wrapped).out).toEqual([pkt(k)]);
      for (const at of [outer + 12, wrapped.length / 2 - 1, wrapped.length / 2 - 300]) {
        const b = Buffer.from(wrapped, 'hex');
        b[at] ^= 0x08;
        const buf = new Uint8Array(128 + b.length).fill(0xa5);
        buf.set(b, 128);
        tx.reset();
        expect(bp.process(buf, 128, b.length, new Uint8Array(0), 0, tx)).toBe(dropVerdict(dropIndex('malformed')));
        expect(Buffer.from(buf.subarray(128)).equals(b)).toBe(true);
      }
    }
  });

  it('a UDP super-packet (GRO merged same-flow tunnel packets) is cut and every segment unwrapped; one bad segment is counted alone', () => {
    // three tunnel packets of one flow whose inner packets are the same size (USO segments)
    const inner = Buffer.from(pkt('inner6'), 'hex');
    const n = inner.length;
    const info = new PacketInfo();
    const ib = new Uint8Array(256 + n);
    ib.set(inner, 128);
    parsePacket(ib, 128, n, info, -1);
    const o = encapsulateUdp(ib, 128, info, 6, Uint32Array.from(w(SRC6)), Uint32Array.from(w(B6)), 64, 0, PORT, false);
    const hdrs = 128 - o; // outer IPv6 + UDP
    for (const bad of [false, true]) {
      const inners = [0, 1, 2].map((k) => {
        const b = Buffer.from(inner);
        b[40 + 8 + k] ^= k; // different payloads, same length
        if (bad && k === 1) b[0] = 0x50; // not an IP packet: this segment alone is malformed
        return b;
      });
      const total = hdrs + 3 * n;
      const buf = new Uint8Array(128 + total + 64);
      buf.set(ib.subarray(o, 128), 128);
      inners.forEach((b, k) => buf.set(b, 128 + hdrs + k * n));
      buf[128 + 4] = (total - 40) >> 8; buf[128 + 5] = (total - 40) & 0xff; // IPv6 payload length
      buf[128 + 44] = (total - 40) >> 8; buf[128 + 45] = (total - 40) & 0xff; // UDP length of the whole
      const vnet = new Uint8Array(12);
      vnet[0] = 1; vnet[1] = 5; // NEEDS_CSUM, GSO UDP_L4
      vnet[4] = n & 0xff; vnet[5] = n >> 8; // gso_size: one inner packet
      vnet[6] = 40; vnet[8] = 6; // csum_start: the UDP header, csum_offset 6
      expect(prepareRxVnet(buf, 128, total, vnet, 0)).toBe(3);
      const c = newCounterBlock();
      const back = new BackProcessor(backRole(), c);
      const q = newTxQueue(64, true);
      expect(back.process(buf, 128, total, vnet, 0, q)).toBeGreaterThanOrEqual(0);
      const got = split(q, buf).aux;
      const want = inners.filter((_b, k) => !(bad && k === 1)).map((b) => b.toString('hex'));
      expect(got).toEqual(want);
      expect(c[dropIndex('malformed')]).toBe(bad ? 1 : 0);
    }
  });

  it('a segment of a UDP-tunnel super-packet the kernel cut on this host (a front\'s tunnel TAP): inner TCP checksum partial, outer already right: the back finishes the inner one', () => {
    // what the back's TUN reads when veth kept the checksum offloaded: NEEDS_CSUM at the inner TCP
    // header, the outer UDP checksum computed as if the inner one were finished (local checksum offload)
    const n = 60 + 500;
    const ib = new Uint8Array(256 + n);
    const p = 128;
    ib[p] = 0x60; ib[p + 4] = (n - 40) >> 8; ib[p + 5] = (n - 40) & 0xff; ib[p + 6] = 6; ib[p + 7] = 63;
    ib.set(Buffer.from('20010db8000c0001000000000000001020010db8000500000000000000000080', 'hex'), p + 8);
    ib[p + 40] = 0x9c; ib[p + 41] = 0x40; ib[p + 43] = 80; ib[p + 52] = 5 << 4; ib[p + 53] = 0x18;
    for (let k = 0; k < 500; k++) ib[p + 60 + k] = (k * 13) & 0xff;
    const info = new PacketInfo();
    parsePacket(ib, p, n, info, -1);
    const c0 = computeL4Checksum(ib, p, info);
    ib[p + 56] = c0 >> 8; ib[p + 57] = c0 & 0xff;
    const inner = Buffer.from(ib.subarray(p, p + n)).toString('hex');
    const o = encapsulateUdp(ib, p, info, 6, Uint32Array.from(w(SRC6)), Uint32Array.from(w(B6)), 64, 0, PORT, false);
    const ps = partialPseudoSum(info);
    ib[p + 56] = ps >> 8; ib[p + 57] = ps & 0xff;
    const total = n + 48;
    const vnet = new Uint8Array(12);
    vnet[0] = 1; // NEEDS_CSUM, no GSO
    vnet[6] = 48 + 40; vnet[8] = 16; // csum_start: the inner TCP header
    const c = newCounterBlock();
    const back = new BackProcessor(backRole(), c);
    const q = newTxQueue(64, true);
    expect(back.process(ib, o, total, vnet, 0, q)).toBeGreaterThanOrEqual(0);
    expect(split(q, ib).fwd).toBe(inner);
    expect(c[dropIndex('malformed')]).toBe(0);
    // csum_start / offset beyond the packet: malformed, not an exception
    vnet[0] = 1; vnet[1] = 0; vnet[6] = (total - 10) & 0xff; vnet[7] = (total - 10) >> 8; vnet[8] = 16;
    q.reset();
    expect(back.process(ib, o, total, vnet, 0, q)).toBe(dropVerdict(dropIndex('malformed')));
  });

  it('second stage: a front with acceptTunnelFrom cuts a UDP tunnel super-packet to its tunnel address and balances every inner packet', () => {
    const T6 = '2001:db8:f:2::80', U6 = '2001:db8:e::1';
    const stage2 = new FrontProcessor({ ...frontRole(), acceptTunnelFrom: acceptPrefixes(['2001:db8:e::/64']) }, counters, () => 1_000_000);
    stage2.setTable(table);
    const inner = Buffer.from(pkt('inner6'), 'hex');
    const n = inner.length;
    const info = new PacketInfo();
    const ib = new Uint8Array(256 + n);
    ib.set(inner, 128);
    parsePacket(ib, 128, n, info, -1);
    const o = encapsulateUdp(ib, 128, info, 6, Uint32Array.from(w(U6)), Uint32Array.from(w(T6)), 64, 0, PORT, false);
    const hdrs = 128 - o;
    const total = hdrs + 2 * n;
    const buf = new Uint8Array(128 + total + 64);
    buf.set(ib.subarray(o, 128), 128);
    buf.set(inner, 128 + hdrs);
    buf.set(inner, 128 + hdrs + n);
    buf[128 + 4] = (total - 40) >> 8; buf[128 + 5] = (total - 40) & 0xff;
    buf[128 + 44] = (total - 40) >> 8; buf[128 + 45] = (total - 40) & 0xff;
    const vnet = new Uint8Array(12);
    vnet[0] = 1; vnet[1] = 5; vnet[4] = n & 0xff; vnet[5] = n >> 8; vnet[6] = 40; vnet[8] = 6;
    expect(prepareRxVnet(buf, 128, total, vnet, 0)).toBe(2);
    const q = newTxQueue(64, true);
    expect(stage2.process(buf, 128, total, vnet, 0, q)).toBeGreaterThanOrEqual(0);
    const out = split(q, buf).aux;
    expect(out.length).toBe(2);
    for (const h of out) {
      const b = Buffer.from(h, 'hex');
      expect(b.subarray(24, 40).toString('hex')).toBe('20010db8000b00000000000000000001'); // toward b6
      expect(b.readUInt16BE(42)).toBe(PORT);
      const r = run(bp, h);
      const got = Buffer.from(r.out[0]!, 'hex');
      expect(got[7]).toBe(inner[7]! - 1); // the second stage took its hop
      got[7] = inner[7]!;
      expect(got.equals(inner)).toBe(true);
    }
    expect(counters[dropIndex('malformed')]).toBe(0);
  });

  it('source ports follow the inner flow: one port per flow, spread across flows', () => {
    const seen = new Set<number>();
    for (let i = 0; i < 64; i++) {
      const b = Buffer.from(pkt('4in4'), 'hex');
      b[20] = 0x90; b[21] = i; // TCP source port 36864 + i
      const r = run(fp, b.toString('hex'));
      const o = Buffer.from(r.out[0]!, 'hex');
      const sport = (o[20] << 8) | o[21];
      const again = Buffer.from(run(fp, b.toString('hex')).out[0]!, 'hex');
      expect((again[20] << 8) | again[21]).toBe(sport);
      seen.add(sport);
    }
    expect(seen.size).toBeGreaterThan(56); // 64 flows over 16384 ports: collisions are rare
  });

  it('tunnel MTU is 8 bytes smaller: IPv6 1452 fits in 1500, 1453 gets Packet Too Big 1452', () => {
    expect(run(fp, pkt('6in6_1452')).out.length).toBe(1);
    const r = run(fp, pkt('6in6_1453'));
    expect(r.verdict).toBe(dropVerdict(dropIndex('too_big')));
    const b = Buffer.from(r.out[0]!, 'hex');
    expect(b[40]).toBe(2); // ICMPv6 Packet Too Big
    expect(b.readUInt32BE(44)).toBe(1452);
  });

  it('IPv4 without DF is fragmented to fit, each fragment its own UDP tunnel packet the back unwraps; with DF: Frag Needed 1472', () => {
    const r = run(fp, pkt('4in4_nodf_1500'));
    expect(r.out.length).toBe(2);
    const f = new PacketInfo();
    let payload = 0;
    for (const h of r.out) {
      const o = Buffer.from(h, 'hex');
      expect(o.length).toBeLessThanOrEqual(1500);
      expect([o[9], o.readUInt16BE(22)]).toEqual([17, PORT]);
      const b = run(bp, h); // outer UDP checksum verified by the back (decapsulateUdp, scapy-checked)
      expect(b.out.length).toBe(1);
      const inner = Buffer.from(b.out[0]!, 'hex');
      expect(parsePacket(inner, 0, inner.length, f, -1)).toBe(0);
      expect(f.isFragment).toBe(true);
      expect(ipv4HeaderChecksumValid(inner, 0, 20)).toBe(true);
      payload += inner.length - 20;
    }
    expect(payload).toBe(1480);
    expect(bcounters[dropIndex('malformed')]).toBe(0);
    const d = run(fp, pkt('4in4_df_1473'));
    expect(d.verdict).toBe(dropVerdict(dropIndex('too_big')));
    const b = Buffer.from(d.out[0]!, 'hex');
    expect([b[20], b[21], b.readUInt16BE(26)]).toEqual([3, 4, 1472]);
  });

  it('a fabric Packet Too Big quoting one of our UDP tunnel packets lowers the tunnel MTU (1400 - 48); another port is not ours', () => {
    // the quoted inner flow must be one the front sent to that back (a forged error cannot shrink a tunnel)
    expect(run(fp, pkt('6in6_1452')).verdict).toBeGreaterThanOrEqual(0);
    const other = run(fp, pkt('ptb_udp_other_port'));
    expect(other.verdict).toBeLessThan(0);
    expect(counters[eventIndex('pmtu_learned')]).toBe(0);
    const r = run(fp, pkt('ptb_udp'));
    expect(r.verdict).toBe(VERDICT_CONSUMED);
    expect(counters[eventIndex('pmtu_learned')]).toBe(1);
    const b = Buffer.from(r.out[0]!, 'hex'); // relayed to the client
    expect(b.readUInt32BE(44)).toBe(1352);
    expect(run(fp, pkt('6in6_1452')).verdict).toBe(dropVerdict(dropIndex('too_big')));
  });

  it('back: IPv4 UDP tunnel unwrapped; outer fragments reassembled then unwrapped', () => {
    expect(run(bp, pkt('good4')).out).toEqual([pkt('inner4')]);
    const fr = P['frags'] as string[];
    expect(fr.length).toBe(2);
    expect(run(bp, fr[0]!).verdict).toBe(VERDICT_CONSUMED);
    expect(run(bp, fr[1]!).out).toEqual([pkt('frag_inner')]);
    expect(bcounters[eventIndex('tunnel_reassembled')]).toBe(1);
  });

  it.each([
    ['bad UDP checksum', 'bad_csum', 'malformed'],
    ['UDP length beyond the packet', 'bad_len', 'malformed'],
    ['GUE variant 0 header (first nibble 0)', 'gue0', 'malformed'],
    ['nested UDP tunnel to the same back', 'nested', 'malformed'],
    ['inner destination not a service', 'not_service', 'not_service'],
    ['source outside allowedFronts', 'stranger', 'unauthorized_source'],
    ['another UDP port (encap mode)', 'wrong_port', 'not_service'],
  ] as const)('back refuses %s: %s', (_d, k, reason) => {
    const r = run(bp, pkt(k));
    expect(r).toEqual({ verdict: dropVerdict(dropIndex(reason)), out: [] });
    expect(bcounters[dropIndex(reason)]).toBe(1);
  });

  it('mode auto: UDP from a stranger or to another port is translated like any packet; mode translate never unwraps', () => {
    bp = new BackProcessor(backRole(2), bcounters);
    for (const k of ['stranger', 'wrong_port']) {
      const r = run(bp, pkt(k));
      expect(r.verdict).toBeGreaterThanOrEqual(0);
      expect(r.out[0]!.slice(48, 80)).toBe('20010db8000500000000000000000080'); // B -> S
    }
    expect(run(bp, pkt('good6')).out).toEqual([pkt('inner6')]);
    bp = new BackProcessor(backRole(0), bcounters);
    const t = run(bp, pkt('good6'));
    expect(t.out[0]!.length).toBe(pkt('good6').length); // translated, still wrapped
  });

  it('config: encap.udpPort and udpPort are validated and reach the roles', () => {
    const f = frontConfigFromValue({ tun: { name: 'x0' }, services: [S6], table: './t.yaml', encap: { udpPort: 70000 } }, 'f.yaml');
    expect(f.errors.map((e) => e.entry)).toContain('encap.udpPort');
    const ok = frontConfigFromValue({ tun: { name: 'x0' }, services: [S6], table: './t.yaml', encap: { udpPort: PORT } }, 'f.yaml');
    expect(ok.errors).toEqual([]);
    expect(ok.config!.encap.udpPort).toBe(PORT);
    const b = backConfigFromValue({ tun: { name: 'y0' }, addresses: [{ address: B6, service: S6 }], allowedFronts: [SRC6 + '/128'], udpPort: -1 }, 'b.yaml');
    expect(b.errors.map((e) => e.entry)).toContain('udpPort');
    const bo = backConfigFromValue({ tun: { name: 'y0' }, addresses: [{ address: B6, service: S6 }], allowedFronts: [SRC6 + '/128'], udpPort: PORT }, 'b.yaml');
    expect(bo.errors).toEqual([]);
    expect(bo.config!.udpPort).toBe(PORT);
  });
});

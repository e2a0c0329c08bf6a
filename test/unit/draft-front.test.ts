// The front's draft paths (tunnels and MTU) through FrontProcessor.process() (no TUN): tunnel MTU (PTB, Frag
// Needed, inner and outer fragmentation), ICMP errors from the fabric (learned, relayed, forged ones
// refused), hop limit (one hop per host, Time Exceeded), acceptTunnelFrom (return traffic, multi-
// stage, unauthorized), outer reassembly, ICMP rate limit. The packets and what the front must emit
// for them are scapy vectors (test/vectors/make_draft_vectors.py): emitted packets are compared
// byte for byte with the ones scapy built from the SPEC / RFC rules.
import { beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { loadVectors } from '../vectors/load.js';
import { validateTable, type TableContext } from '../../front/table/table-loader.js';
import { CompiledTable } from '../../front/table/compiled-table.js';
import { dropIndex, eventIndex, icmpIndex, newCounterBlock } from '../../shared/metrics/counter-layout.js';
import { newTxQueue, split } from '../helpers/tx-queue.js';
import { VERDICT_CONSUMED, VERDICT_QUEUED } from '../../shared/engine/packet-processor.js';
import { FrontProcessor } from '../../front/front-processor.js';
import type { FrontRole } from '../../front/front-role.js';
import { acceptPrefixes } from '../../front/tunnel-accept.js';
import { PmtuCache } from '../../shared/tunnel/path-mtu-cache.js';
import { SentFlows, SENT_FLOWS_PERIOD_MS } from '../../shared/tunnel/sent-flows.js';

const S6 = '2001:db8:5::80';
const S4 = '192.0.2.80';
const ctx: TableContext = { services: [S6, S4], mode: 'encap', encap: { source: 'service', source4: '', source6: '' } };
const TABLE = {
  backs: {
    b1: { addresses: { [S6]: '2001:db8:b::1', [S4]: '198.51.100.1' }, mode: 'encap' },
    b2: { addresses: { [S6]: '2001:db8:b::2', [S4]: '198.51.100.2' }, mode: 'translate' },
  },
  routes: [
    { source: '2001:db8:c1::/48', to: 'b1' },
    { source: '203.0.113.0/26', to: 'b1' },
    { source: '2001:db8:c3::/48', to: 'b1' },
    { source: '198.51.100.128/25', to: 'b1' },
    { source: '2001:db8:c2::/48', to: 'b2' },
    { source: '203.0.113.64/26', to: 'b2' },
  ],
};

/** Every packet the tests send, and what the front must emit, built offline by scapy. */
const V = loadVectors<{ packets: Record<string, string | string[]>; expected: Record<string, string | string[]> }>('draft-front.json');
const want = (k: string): string => V.expected[k] as string;
const wantAll = (k: string): string[] => V.expected[k] as string[];

const hex = (b: Uint8Array, o: number, n: number) => Buffer.from(b.subarray(o, o + n)).toString('hex');

interface Out {
  verdict: number;
  /** The forwarded packet (hex) when verdict >= 0. */
  fwd?: string;
  /** Aux packets (ICMP errors, fragments, reassembled results), hex. */
  aux: string[];
}

describe('front: tunnel MTU, fabric ICMP, hop limit, accepted tunnels', async () => {
  let P: Record<string, string | string[]>;
  let counters: Float64Array;
  let fp: FrontProcessor;
  let table: CompiledTable;
  let now = 1_000_000;
  const AUX_SLOTS = 64;
  const tx = newTxQueue(AUX_SLOTS);
  const slots = new Map<string, number>();
  let cache: PmtuCache;

  const role = (icmpBurst = 50, perSourceBurst = icmpBurst): FrontRole => ({
    lbspType: 0x1e, encapSource4: null, encapSource6: null, hopLimit: 64,
    flowTable: { size: 4096, tcpTimeout: 300, udpTimeout: 30, otherTimeout: 30 },
    icmp: { ratePerSecond: 10, burst: icmpBurst, perSourceRate: 10, perSourceBurst },
    acceptTunnelFrom: acceptPrefixes(['2001:db8:b::/64', '198.51.100.0/24', '2001:db8:f1::/64']),
    tunMtu: 1500,
    pmtu: cache.toShared(),
  });

  beforeAll(() => {
    P = V.packets;
    const v = validateTable(TABLE, 'fixture.yaml', ctx);
    expect(v.errors).toEqual([]);
    table = CompiledTable.compile(v.table!, {
      services: ctx.services, flowLabelEnabled: true, lbspEnabled: true, maglevSize: 251,
      slotOf: (n) => { if (!slots.has(n)) slots.set(n, slots.size); return slots.get(n)!; },
    });
  });

  beforeEach(() => {
    now = 1_000_000;
    counters = newCounterBlock();
    cache = PmtuCache.create(1500);
    fp = new FrontProcessor(role(), counters, () => now);
    fp.setTable(table);
  });

  function send(h: string): Out {
    const b = Buffer.from(h, 'hex');
    const buf = new Uint8Array(128 + b.length + 64).fill(0xa5);
    buf.set(b, 128);
    tx.reset();
    const o = fp.process(buf, 128, b.length, new Uint8Array(0), 0, tx);
    const q = split(tx, buf);
    const out: Out = { verdict: o, aux: q.aux };
    if (q.fwd !== undefined) out.fwd = q.fwd;
    return out;
  }
  const pkt = (k: string) => P[k] as string;
  const ctr = (i: number) => counters[i]!;
  const slot = (name: string) => slots.get(name)!;

  it('IPv6 1500 bytes over a 1500 fabric: dropped with Packet Too Big 1460, from S to the client, quoting the packet, checksum right', async () => {
    const r = send(pkt('v6_1500'));
    expect(r.verdict).toBeLessThan(0);
    expect(r.aux).toEqual([want('ptb_1460')]);
    expect(r.aux[0]!.length / 2).toBeLessThanOrEqual(1280);
    expect(ctr(dropIndex('too_big'))).toBe(1);
    expect(ctr(icmpIndex('packet_too_big'))).toBe(1);
  });

  it('IPv4 with DF, 1500 bytes: Fragmentation Needed with next-hop MTU 1480; IPv4 without DF: two 4in4 fragments that reassemble at the server', async () => {
    const r = send(pkt('v4df_1500'));
    expect(r.verdict).toBeLessThan(0);
    expect(r.aux).toEqual([want('fn_1480')]);
    expect(r.aux[0]!.length / 2).toBeLessThanOrEqual(576);
    expect(ctr(icmpIndex('frag_needed'))).toBe(1);

    const f = send(pkt('v4nodf_1500'));
    expect(f.verdict).toBeGreaterThanOrEqual(0);
    const wrapped = [f.fwd!, ...f.aux];
    expect(wrapped.length).toBe(2);
    const inner: string[] = [];
    for (const w of wrapped) {
      const b = Buffer.from(w, 'hex');
      expect(b.length).toBeLessThanOrEqual(1500);
      expect(b[9]).toBe(4); // 4in4
      expect(b.subarray(16, 20).join('.')).toBe('198.51.100.1');
      inner.push(b.subarray(20).toString('hex'));
    }
    expect(inner).toEqual(wantAll('v4nodf_inner_fragments'));
    expect(ctr(eventIndex('fragmented'))).toBe(1);
  });

  it('IPv6 of 1280 bytes over a 1280 path (tunnel MTU 1240): carried, the outer packet fragmented (RFC 2473 7.1)', async () => {
    cache.setBase(slot('b1'), 6, 1280);
    const r = send(pkt('v6_1280'));
    expect(r.verdict).toBeGreaterThanOrEqual(0);
    const frags = [r.fwd!, ...r.aux];
    expect(frags.length).toBe(2);
    for (const h of frags) expect(h.length / 2).toBeLessThanOrEqual(1280);
    expect(frags).toEqual(wantAll('v6_1280_outer_fragments'));
    // a 1000-byte packet fits and is not fragmented
    const small = send(pkt('v6_1000'));
    expect(small.aux).toEqual([]);
    expect(Buffer.from(small.fwd!, 'hex')[6]).toBe(41);
  });

  it('a PTB from the fabric quoting our tunnel packet lowers that back\'s path MTU and is relayed to the client (1360 = 1400 - 40)', async () => {
    send(pkt('v6_small')); // the quoted flow went to b1 (SPEC 3: only errors about flows we sent count)
    const r = send(pkt('ptb_fabric'));
    expect(r.verdict).toBe(VERDICT_CONSUMED); // handled here, not forwarded
    expect(cache.get(slot('b1'), 6, now)).toBe(1400);
    expect(ctr(eventIndex('pmtu_learned'))).toBe(1);
    expect(r.aux).toEqual([want('relay_ptb_1360')]);
    // the next big packet gets PTB 1360 from the front itself
    const again = send(pkt('v6_1500'));
    expect(again.aux).toEqual([want('ptb_1360')]);
    // a PTB below 1280 lowers it to 1280 only (RFC 8201); relayed as PTB 1280
    const low = send(pkt('ptb_fabric_small'));
    expect(cache.get(slot('b1'), 6, now)).toBe(1280);
    expect(low.aux).toEqual([want('relay_ptb_1280')]);
    // the learned value ages out after 10 minutes
    expect(cache.get(slot('b1'), 6, now + 10 * 60 * 1000 + 1)).toBe(1500);
  });

  it('a forged PTB / Frag Needed quoting (S -> B, 41/4) with a flow the front never sent lowers nothing and is not relayed; a real flow does; sent too long ago does not', async () => {
    send(pkt('v6_small'));
    send(pkt('v4_small'));
    for (const k of ['ptb_unsent', 'fn_unsent']) {
      const r = send(pkt(k));
      expect(r.verdict, k).toBe(VERDICT_CONSUMED);
      expect(r.aux, k).toEqual([]);
    }
    expect(cache.get(slot('b1'), 6, now)).toBe(1500);
    expect(cache.get(slot('b1'), 4, now)).toBe(1500);
    expect(ctr(eventIndex('pmtu_learned'))).toBe(0);
    expect(ctr(eventIndex('pmtu_unverified'))).toBe(2);
    // the flow's last packet more than two record periods ago: no longer "recently"
    now += 2 * SENT_FLOWS_PERIOD_MS + 1;
    fp.endBatch(now);
    send(pkt('ptb_fabric'));
    expect(cache.get(slot('b1'), 6, now)).toBe(1500);
    send(pkt('v6_small'));
    send(pkt('ptb_fabric'));
    expect(cache.get(slot('b1'), 6, now)).toBe(1400);
  });

  it('a pinned flow is recorded once per record period, and again in each new one: still "recent" while its packets keep going', async () => {
    const mark = vi.spyOn(SentFlows.prototype, 'mark');
    try {
      const t0 = now;
      for (let i = 0; i < 3; i++) send(pkt('v6_small'));
      expect(mark).toHaveBeenCalledTimes(1); // the keyed hash once, not per packet
      now = t0 + SENT_FLOWS_PERIOD_MS + SENT_FLOWS_PERIOD_MS / 2; // one rotation: a new generation
      fp.endBatch(now);
      send(pkt('v6_small'));
      send(pkt('v6_small'));
      expect(mark).toHaveBeenCalledTimes(2);
      // a second rotation forgets the first generation: only the re-recording keeps the flow
      now = t0 + 2 * SENT_FLOWS_PERIOD_MS + SENT_FLOWS_PERIOD_MS / 2 + 1;
      fp.endBatch(now);
      send(pkt('ptb_fabric'));
      expect(cache.get(slot('b1'), 6, now)).toBe(1400);
      expect(ctr(eventIndex('pmtu_learned'))).toBe(1);
    } finally {
      mark.mockRestore();
    }
  });

  it('an explicit encap.mtu turns learning off: an error quoting a real flow lowers nothing', async () => {
    fp = new FrontProcessor({ ...role(), pmtuLearning: false }, counters, () => now);
    fp.setTable(table);
    send(pkt('v6_small'));
    send(pkt('v4_small'));
    send(pkt('ptb_fabric'));
    send(pkt('fn_fabric'));
    send(pkt('ptb_unsent'));
    expect(cache.get(slot('b1'), 6, now)).toBe(1500);
    expect(cache.get(slot('b1'), 4, now)).toBe(1500);
    expect(ctr(eventIndex('pmtu_learned'))).toBe(0);
  });

  it('forged PTBs (outer destination not a back, outer source not ours) change nothing and are not relayed', async () => {
    for (const k of ['ptb_forged_dst', 'ptb_forged_src']) {
      const r = send(pkt(k));
      expect(r.verdict, k).toBeLessThan(0); // addressed to S: steered by the quote (no route for B99; not from S: malformed)
      expect(r.aux, k).toEqual([]);
    }
    expect(cache.get(slot('b1'), 6, now)).toBe(1500);
    expect(ctr(eventIndex('pmtu_learned'))).toBe(0);
    expect(ctr(dropIndex('no_route'))).toBe(1);
    expect(ctr(dropIndex('malformed'))).toBe(1);
  });

  it('Frag Needed from the fabric: learned (with and without next-hop MTU: RFC 1191 plateau), relayed for DF; a quote too short to show the inner flow changes nothing; other errors consumed', async () => {
    send(pkt('v4_small'));
    const r = send(pkt('fn_fabric'));
    expect(cache.get(slot('b1'), 4, now)).toBe(1400);
    expect(r.aux).toEqual([want('relay_fn_1380')]);
    cache = PmtuCache.create(1500);
    fp = new FrontProcessor(role(), counters, () => now);
    fp.setTable(table);
    send(pkt('v4_small'));
    send(pkt('fn_fabric_nomtu'));
    expect(cache.get(slot('b1'), 4, now)).toBe(1492); // plateau below the quoted 1520
    const short = send(pkt('fn_fabric_short'));
    expect(short.verdict).toBe(VERDICT_CONSUMED);
    expect(cache.get(slot('b1'), 4, now)).toBe(1492); // 8 bytes of the inner header: the flow cannot be checked
    expect(short.aux).toEqual([]);
    const u = send(pkt('unreach_fabric'));
    expect(u.verdict).toBe(VERDICT_CONSUMED);
    expect(u.aux).toEqual([]);
    expect(cache.get(slot('b1'), 4, now)).toBe(1492);
  });

  it('hop limit: translate adds back the kernel\'s second decrement (hop limit 1 leaves as 1+1-1); 0 left means Time Exceeded', async () => {
    for (const k of ['v6_translate_h1', 'v4_translate_h1']) {
      const r = send(pkt(k));
      expect(r.verdict, k).toBeGreaterThanOrEqual(0);
      const b = Buffer.from(r.fwd!, 'hex');
      expect(b[0]! >> 4 === 6 ? b[7] : b[8], k).toBe(2); // written as 2: the kernel forwards it with 1
      expect(r.fwd, k).toBe(want(k));
    }
    const te = send(pkt('v6_encap_h0'));
    expect(te.verdict).toBeLessThan(0);
    expect(te.aux).toEqual([want('te_v6_encap_h0')]);
    expect(ctr(dropIndex('hop_limit'))).toBe(1);
    expect(ctr(icmpIndex('time_exceeded'))).toBe(1);
  });

  it('acceptTunnelFrom: return traffic (inner source S) is unwrapped and forwarded as it is; anything else is dropped', async () => {
    for (const k of ['ret6', 'ret4']) {
      const r = send(pkt(k));
      expect(r.verdict, k).toBeGreaterThanOrEqual(0);
      const whole = Buffer.from(pkt(k), 'hex');
      const hl = whole[0]! >> 4 === 6 ? 40 : 20;
      expect(r.fwd, k).toBe(whole.subarray(hl).toString('hex'));
    }
    expect(ctr(eventIndex('tunnel_unwrapped'))).toBe(2);
    expect(send(pkt('ret_neither')).verdict).toBeLessThan(0);
    expect(ctr(dropIndex('not_service'))).toBe(1);
    expect(send(pkt('ret_unauth')).verdict).toBeLessThan(0);
    expect(ctr(dropIndex('unauthorized_source'))).toBe(1);
    // SPEC 3: return traffic only from a back's own address, not from anywhere inside the prefix
    for (const k of ['ret_spoof6', 'ret_spoof4']) {
      const r = send(pkt(k));
      expect(r.verdict, k).toBeLessThan(0);
      expect(r.fwd, k).toBeUndefined();
    }
    expect(ctr(dropIndex('unauthorized_source'))).toBe(3);
    expect(send(pkt('nested_same')).verdict).toBeLessThan(0);
    expect(ctr(dropIndex('malformed'))).toBe(1);
    // a client's own tunnel packet to S is ordinary traffic: balanced (c1 -> b1, wrapped)
    const own = send(pkt('client_tunnel_to_s'));
    expect(own.verdict).toBeGreaterThanOrEqual(0);
  });

  it('multi-stage: an inner packet to S from an upstream front is balanced here; its hop is counted here (encap: inner hop limit - 1; translate: the kernel\'s)', async () => {
    const r = send(pkt('stage2'));
    expect(r.verdict).toBeGreaterThanOrEqual(0);
    const b = Buffer.from(r.fwd!, 'hex');
    expect(b[6]).toBe(41);
    expect(b.subarray(24, 40).toString('hex')).toBe('20010db8000b00000000000000000001'); // -> b1
    expect(b[40 + 7]).toBe(39); // inner hop limit 40 - 1
    expect(r.fwd).toBe(want('stage2'));
    const t = send(pkt('stage2_translate'));
    const tb = Buffer.from(t.fwd!, 'hex');
    expect(tb.subarray(24, 40).toString('hex')).toBe('20010db8000b00000000000000000002'); // -> b2, translated
    expect(tb[7]).toBe(40); // not compensated: the kernel's decrement on the way out is this hop
    expect(t.fwd).toBe(want('stage2_translate'));
    const h1 = send(pkt('stage2_h1'));
    expect(h1.verdict).toBeLessThan(0);
    expect(h1.aux).toEqual([want('te_stage2_h1')]);
  });

  it('outer fragments from an accepted source are reassembled, unwrapped and balanced (sent from aux)', async () => {
    const frags = P['stage2_frags'] as string[];
    expect(frags.length).toBeGreaterThan(1);
    const outs = frags.map((f) => send(f));
    for (const o of outs.slice(0, -1)) expect(o).toEqual({ verdict: VERDICT_CONSUMED, aux: [] }); // held
    const last = outs[outs.length - 1]!;
    expect(last.verdict).toBe(VERDICT_QUEUED); // what the datagram became is queued from its aux slot
    expect(last.aux.length).toBe(1);
    const b = Buffer.from(last.aux[0]!, 'hex');
    expect(b[6]).toBe(41);
    expect(b.subarray(24, 40).toString('hex')).toBe('20010db8000b00000000000000000001');
    expect(b.length).toBe(40 + 40 + 8 + 1200);
    expect(last.aux[0]).toBe(want('stage2_reassembled'));
    expect(ctr(eventIndex('tunnel_reassembled'))).toBe(1);
    for (const k of ['malformed', 'too_big', 'not_service']) expect(ctr(dropIndex(k as 'malformed')), k).toBe(0);
  });

  it('no ICMP error about an ICMP error: a 1500-byte Destination Unreachable to S (steered to b1 by its quote) is dropped silently; a 1500-byte echo request gets PTB', async () => {
    const e = send(pkt('icmp_err_1500'));
    expect(e.verdict).toBeLessThan(0);
    expect(e.aux).toEqual([]);
    const ping = send(pkt('echo_1500'));
    expect(ping.aux).toEqual([want('ptb_echo_1460')]);
    expect(ctr(dropIndex('too_big'))).toBe(2);
  });

  it('a GSO super-packet is judged by its segment on the wire (hdr_len + gso_size), not its whole length', async () => {
    const b = Buffer.from(pkt('v6_1500'), 'hex');
    const buf = new Uint8Array(128 + b.length + 64);
    buf.set(b, 128);
    const vnet = new Uint8Array(12);
    vnet[1] = 4; // GSO_TCPV6
    vnet[2] = 60; // hdr_len: IPv6 + TCP
    vnet[4] = 1440 & 0xff; vnet[5] = 1440 >> 8; // gso_size: segments of 1500 bytes on the wire
    tx.reset();
    expect(fp.process(buf, 128, b.length, vnet, 0, tx)).toBeLessThan(0);
    expect(split(tx, buf).aux).toEqual([want('ptb_1460')]);
    const { wireSize } = await import('../../shared/tunnel/tunnel-mtu.js');
    const { PacketInfo } = await import('../../shared/packet/packet-info.js');
    const info = new PacketInfo();
    info.totalLen = 7260;
    expect(wireSize(info, vnet, 0)).toBe(1500);
    vnet[4] = 1400 & 0xff; vnet[5] = 1400 >> 8;
    expect(wireSize(info, vnet, 0)).toBe(1460); // would fit the 6in6 tunnel
    expect(wireSize(info, new Uint8Array(0), 0)).toBe(7260);
  });

  it('ICMP errors are rate-limited (token bucket): the burst goes out, the rest is counted icmp_rate_limited; tokens come back with time', async () => {
    fp = new FrontProcessor(role(3), counters, () => now);
    fp.setTable(table);
    let sent = 0;
    for (let i = 0; i < 10; i++) sent += send(pkt('v6_1500')).aux.length;
    expect(sent).toBe(3);
    expect(ctr(eventIndex('icmp_rate_limited'))).toBe(7);
    expect(ctr(dropIndex('too_big'))).toBe(10);
    fp.endBatch(now + 1000); // 10 per second
    for (let i = 0; i < 10; i++) sent += send(pkt('v6_1500')).aux.length;
    expect(sent).toBe(6); // the bucket holds at most its burst (3)
  });

  it('ICMP budget per source prefix: one source flooding oversize packets cannot take the others\' Packet Too Big / Frag Needed', async () => {
    fp = new FrontProcessor(role(50, 3), counters, () => now);
    fp.setTable(table);
    let flood = 0;
    for (let i = 0; i < 200; i++) flood += send(pkt(i % 2 === 0 ? 'v6_1500' : 'v4df_1500')).aux.length;
    expect(flood).toBe(6); // 3 per prefix (2001:db8:c1::/48, 203.0.113.0/24), not the global 50
    expect(send(pkt('v6_1500_other')).aux).toEqual([want('ptb_other_1460')]);
    expect(send(pkt('v4df_1500_other')).aux).toEqual([want('fn_other_1480')]);
    expect(ctr(eventIndex('icmp_rate_limited'))).toBe(194);
    // the global budget still caps everyone together
    fp = new FrontProcessor(role(2, 3), counters, () => now);
    fp.setTable(table);
    expect(send(pkt('v6_1500')).aux.length + send(pkt('v6_1500_other')).aux.length + send(pkt('v4df_1500_other')).aux.length).toBe(2);
  });
});

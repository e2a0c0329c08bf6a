// ICMP errors addressed to a service about its servers' packets (SPEC 2 step 6), over the scapy
// vectors of test/vectors/make_icmp_quote_vectors.py: the quote codec (every error type, IPv4 and
// IPv6, every quote length, extension headers inside the quote) and the front's steering (reversed
// flow pin, quoted client as key, a copy per up member of a pool keyed by flow label), translated
// with checksums as scapy computes them; garbage and someone else's packet reach no back.
import { beforeEach, describe, expect, it } from 'vitest';
import { loadVectors, slab, words } from '../vectors/load.js';
import { PacketInfo } from '../../shared/packet/packet-info.js';
import { parsePacket, ParseError } from '../../shared/packet/parse.js';
import { isSteerableError, readQuote, QuotedFlow, QUOTE_INVALID, QUOTE_OK, QUOTE_TRUNCATED } from '../../shared/packet/icmp-quote.js';
import { validateTable, type TableContext } from '../../front/table/table-loader.js';
import { CompiledTable } from '../../front/table/compiled-table.js';
import { FrontProcessor } from '../../front/front-processor.js';
import type { FrontRole } from '../../front/front-role.js';
import { dropIndex, eventIndex, newCounterBlock } from '../../shared/metrics/counter-layout.js';
import { newTxQueue, queued, split } from '../helpers/tx-queue.js';
import { VERDICT_CONSUMED, VERDICT_QUEUED } from '../../shared/engine/packet-processor.js';
import { BackProcessor } from '../../back/back-processor.js';
import type { BackRole } from '../../back/back-role.js';

interface Vector {
  desc: string;
  type: number;
  family: 4 | 6;
  error: string;
  status: 'ok' | 'truncated' | 'invalid';
  src?: string;
  dst?: string;
  proto?: number;
  sport?: number;
  dport?: number;
  nonFirst?: boolean;
  translated?: string;
  client?: string;
  foreign?: boolean;
  quotedSrc?: string | null;
}
interface Scenario {
  syn: Record<string, string>;
  ptb: Record<string, string>;
  toBack: Record<string, Record<string, string>>;
}
const { vectors: V, scenario: SC, back: BK } = loadVectors<{ vectors: Vector[]; scenario: Scenario; back: Record<string, string> }>('icmp-quote.json');
const STATUS = { ok: QUOTE_OK, truncated: QUOTE_TRUNCATED, invalid: QUOTE_INVALID };

const S6 = '2001:db8:5::80';
const S4 = '192.0.2.80';
const ctx: TableContext = { services: [S6, S4], mode: 'translate', encap: { source: 'service', source4: '', source6: '' } };
const TABLE = {
  backs: {
    b1: { addresses: { [S6]: '2001:db8:b::1', [S4]: '198.51.100.1' } },
    b2: { addresses: { [S6]: '2001:db8:b::2', [S4]: '198.51.100.2' } },
    b3: { address: '2001:db8:b::3' },
    b4: { address: '2001:db8:b::4' },
    b5: { address: '2001:db8:b::5' },
  },
  pools: {
    label: { members: ['b3', 'b4', 'b5'], key: 'label' },
    src: { members: ['b3', 'b4', 'b5'], key: 'source' },
  },
  routes: [
    { source: '2001:db8:c1::/48', to: 'b1' },
    { source: '203.0.113.0/26', to: 'b1' },
    { source: '2001:db8:c2::/48', to: 'b2' },
    { source: '2001:db8:e0::/48', to: 'b2' }, // the routers' own addresses: another back
    { source: '203.0.113.128/26', to: 'b2' },
    { source: '2001:db8:c3::/48', to: 'label' },
    { source: '2001:db8:c4::/48', to: 'src' },
  ],
};
const BACK_OF: Record<string, string> = { '20010db8000b00000000000000000003': 'b3', '20010db8000b00000000000000000004': 'b4', '20010db8000b00000000000000000005': 'b5' };
const dstHex = (h: string) => h.slice(48, 80);

describe('ICMP error quotes (codec)', () => {
  const info = new PacketInfo();
  const q = new QuotedFlow();
  it(`reads ${V.length} scapy errors: every type, both families, every quote length, extension headers`, () => {
    const seen = new Set<string>();
    for (const v of V) {
      const [buf, off, len] = slab(v.error);
      expect(parsePacket(buf, off, len, info, 0x1e), v.desc).toBe(ParseError.OK);
      expect(isSteerableError(info), v.desc).toBe(true);
      const st = readQuote(buf, off + info.l4Off + 8, info.l4Len - 8, info.version, q);
      expect(st, v.desc).toBe(STATUS[v.status]);
      seen.add(`${v.family}/${v.status}`);
      if (st !== QUOTE_OK || v.foreign) continue;
      expect(Array.from(q.src), v.desc).toEqual(Array.from(words(v.src!)));
      expect(Array.from(q.dst), v.desc).toEqual(Array.from(words(v.dst!)));
      expect([q.proto, q.srcPort, q.dstPort, q.nonFirst], v.desc).toEqual([v.proto, v.sport, v.dport, v.nonFirst]);
    }
    expect([...seen].sort()).toEqual(['4/invalid', '4/ok', '4/truncated', '6/invalid', '6/ok', '6/truncated']);
  });

  it('never reads past the bytes it is given (poisoned tail, a quote cut at every byte)', () => {
    const full = V.find((v) => v.desc === 'v6 type 2 quoting hbh_dst_rt_frag1_tcp, full')!;
    const b = Buffer.from(full.error, 'hex');
    const quote = b.subarray(48);
    for (let n = 0; n <= quote.length; n++) {
      // the quote alone at the end of an exactly sized buffer: a read past it would be undefined
      const buf = new Uint8Array(quote.subarray(0, n));
      const st = readQuote(buf, 0, n, 6, q);
      expect([QUOTE_OK, QUOTE_TRUNCATED]).toContain(st);
    }
  });

  it('echo requests and replies, redirects and source quench are not steered errors', () => {
    const [buf, off, len] = slab(SC.syn['c3_0']!);
    parsePacket(buf, off, len, info, 0x1e);
    expect(isSteerableError(info)).toBe(false);
  });
});

describe('front: errors to S steered to the back of the quoted flow', () => {
  const slots = new Map<string, number>();
  const v = validateTable(TABLE, 'fixture.yaml', ctx);
  expect(v.errors).toEqual([]);
  const table = CompiledTable.compile(v.table!, {
    services: ctx.services, flowLabelEnabled: true, lbspEnabled: false, maglevSize: 251,
    slotOf: (n) => { if (!slots.has(n)) slots.set(n, slots.size); return slots.get(n)!; },
  });
  const tx = newTxQueue(64);
  let counters: Float64Array;
  let fp: FrontProcessor;
  const role = (burst = 50): FrontRole => ({
    lbspType: 0x1e, encapSource4: null, encapSource6: null, hopLimit: 64,
    flowTable: { size: 4096, tcpTimeout: 300, udpTimeout: 30, otherTimeout: 30 },
    icmp: { ratePerSecond: 10, burst },
    tunMtu: 1500,
  });
  const fresh = (burst = 50) => {
    counters = newCounterBlock();
    fp = new FrontProcessor(role(burst), counters, () => 1_000_000, 7);
    fp.setTable(table);
  };
  beforeEach(() => fresh());
  const send = (h: string) => {
    const [buf, off, len] = slab(h);
    tx.reset();
    const verdict = fp.process(buf, off, len, new Uint8Array(0), 0, tx);
    return { verdict, ...split(tx, buf), all: queued(tx).map((e) => e.hex) };
  };
  const ev = (n: Parameters<typeof eventIndex>[0]) => counters[eventIndex(n)]!;

  it('complete quotes reach the back of the quoted client (b1), translated with scapy\'s checksums; cut ones are malformed', () => {
    let ok = 0, cut = 0;
    for (const x of V) {
      if (x.foreign || x.status === 'invalid') continue;
      const r = send(x.error);
      if (x.status === 'ok') {
        ok++;
        expect(r.verdict, x.desc).toBe(VERDICT_QUEUED);
        expect(r.all.length, x.desc).toBe(1);
        if (x.translated) expect(r.fwd, x.desc).toBe(x.translated);
        else expect(r.fwd!.slice(x.family === 6 ? 48 : 32, x.family === 6 ? 80 : 40), x.desc).toBe(x.family === 6 ? '20010db8000b00000000000000000001' : 'c6336401');
      } else {
        cut++;
        expect(r.verdict, x.desc).toBeLessThan(0);
        expect(r.all, x.desc).toEqual([]);
      }
    }
    expect(ev('icmp_steered_client_key')).toBe(ok);
    expect(ev('icmp_refused_quote_truncated')).toBe(cut);
    expect(counters[dropIndex('malformed')]).toBe(cut);
    expect(counters[dropIndex('no_route')]).toBe(0);
  });

  it('garbage, a quote of the other family and someone else\'s packet reach no back: malformed', () => {
    const bad = V.filter((x) => x.foreign);
    expect(bad.length).toBe(7);
    for (const x of bad) {
      const r = send(x.error);
      expect(r.verdict, x.desc).toBeLessThan(0);
      expect(r.all, x.desc).toEqual([]);
    }
    expect(counters[dropIndex('malformed')]).toBe(7);
    expect(ev('icmp_refused_not_service')).toBe(2);
    expect(ev('icmp_refused_quote_invalid')).toBe(5);
    for (const k of ['icmp_steered_client_key', 'icmp_steered_flow_table', 'icmp_steered_copies'] as const) expect(ev(k)).toBe(0);
  });

  it('pool keyed by source: each error reaches the member its client\'s packets were decided to', () => {
    for (let i = 0; i < 12; i++) {
      const syn = send(SC.syn[`c4_${i}`]!);
      const back = BACK_OF[dstHex(syn.fwd!)]!;
      fresh(); // no pin: the decision with the quoted client as key
      const e = send(SC.ptb[`c4_${i}`]!);
      expect(e.all).toEqual([SC.toBack[`c4_${i}`]![back]]);
    }
  });

  it('pool keyed by flow label: the reversed flow\'s pin first; without one, a copy to every member that is up', () => {
    const byBack = new Map<string, number>();
    for (let i = 0; i < 12; i++) {
      const syn = send(SC.syn[`c3_${i}`]!);
      const back = BACK_OF[dstHex(syn.fwd!)]!;
      byBack.set(back, (byBack.get(back) ?? 0) + 1);
      const e = send(SC.ptb[`c3_${i}`]!);
      expect(e.all, `c3_${i}`).toEqual([SC.toBack[`c3_${i}`]![back]]);
    }
    expect(byBack.size).toBeGreaterThan(1); // the labels spread: the pin, not luck, chose the back
    expect(ev('icmp_steered_flow_table')).toBe(12);
    fresh();
    const e = send(SC.ptb['c3_0']!);
    expect(e.verdict).toBe(VERDICT_QUEUED);
    expect(e.all.sort()).toEqual(Object.values(SC.toBack['c3_0']!).sort());
    expect(ev('icmp_steered_copies')).toBe(1);
    expect(ev('icmp_steer_copies')).toBe(2);
  });

  it('copies skip members that are down and draw on the ICMP rate limit', () => {
    table.a.up[slots.get('b4')!] = 0; // health checks took b4 down
    fp.setTable(table);
    const e = send(SC.ptb['c3_1']!);
    table.a.up[slots.get('b4')!] = 1;
    const want = SC.toBack['c3_1']!;
    expect(e.all.sort()).toEqual([want['b3'], want['b5']].sort());
    fresh(1); // a burst of one token: one extra copy, the other refused
    const r = send(SC.ptb['c3_2']!);
    expect(r.all.length).toBe(2);
    expect(ev('icmp_refused_copy_limited')).toBe(1);
    expect(ev('icmp_rate_limited')).toBe(1);
  });
});

describe('back: errors about its return tunnel toward the gateway', () => {
  const w = (a: string) => Array.from(words(a));
  const B6 = '2001:db8:b::1', B4 = '198.51.100.1', G6 = '2001:db8:f:1::1';
  const role = (): BackRole => ({
    lbspType: 0x1e,
    own: [{ family: 6, b: w(B6), s: w(S6), mode: 2 }, { family: 4, b: w(B4), s: w(S4), mode: 2 }],
    services: [{ family: 6, words: w(S6) }, { family: 4, words: w(S4) }],
    allowedFronts: [{ family: 6, words: w(S6), len: 128 }, { family: 4, words: w(S4), len: 32 }],
    returnPath: true, stamp: false, serverId: [0, 0, 0, 0], mssClamp: 0, mtu: 1500,
    returnEncap: { gateway: w(G6), family: 6, source: w(B6), mtu: 1500, hopLimit: 64, icmpSource4: w(B4), icmpSource6: w(B6), icmp: { ratePerSecond: 100, burst: 10 } },
  });
  const tx = newTxQueue(16);
  const run = (bp: BackProcessor, h: string) => {
    const [buf, off, len] = slab(h);
    tx.reset();
    return { verdict: bp.process(buf, off, len, new Uint8Array(0), 0, tx), ...split(tx, buf) };
  };

  it('a Packet Too Big quoting its tunnel lowers the path MTU toward the gateway and is relayed to the server from B', () => {
    const counters = newCounterBlock();
    const bp = new BackProcessor(role(), counters, () => 1_000_000, 3);
    const r = run(bp, BK['ptb_gateway']!);
    expect(r.verdict).toBe(VERDICT_CONSUMED);
    expect(r.aux).toEqual([BK['ptb_relayed']]);
    expect(counters[eventIndex('pmtu_learned')]).toBe(1);
    expect(counters[eventIndex('fabric_icmp_handled')]).toBe(1);
  });

  it('one quoting a tunnel to another gateway is not ours: translated to S as before', () => {
    const counters = newCounterBlock();
    const bp = new BackProcessor(role(), counters, () => 1_000_000, 3);
    const r = run(bp, BK['ptb_other_gateway']!);
    expect(r.verdict).toBe(VERDICT_QUEUED);
    expect(r.aux).toEqual([]);
    expect(r.fwd!.slice(48, 80)).toBe('20010db8000500000000000000000080');
    expect(counters[eventIndex('pmtu_learned')]).toBe(0);
  });
});

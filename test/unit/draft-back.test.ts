// The back's draft paths (tunnels and MTU) through BackProcessor.process() (no TUN): return encapsulation toward a
// gateway (outer source B, 6in6 / 4in6, PTB to the server when it does not fit, 4in6 fragments of an
// IPv4 packet without DF), reassembly of outer fragments from an allowed front (the front fragments
// the outer packet of an IPv6 packet <= 1280), and translate as one router hop. scapy builds and judges.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { BackProcessor } from '../../back/back-processor.js';
import type { BackRole } from '../../back/back-role.js';
import { dropIndex, eventIndex, icmpIndex, newCounterBlock } from '../../shared/metrics/counter-layout.js';
import { newTxQueue, split } from '../helpers/tx-queue.js';
import { VERDICT_CONSUMED, dropVerdict } from '../../shared/engine/packet-processor.js';
import { words } from '../vectors/load.js';
import { ScapyWorker } from '../helpers/scapy-worker.js';

const S6 = '2001:db8:5::80', B6 = '2001:db8:b::1', S4 = '192.0.2.80', B4 = '198.51.100.1', G6 = '2001:db8:f:1::1';
const w = (a: string) => Array.from(words(a));

/** mode: 2 = auto (the default), 1 = encap. */
function role(mtu = 1500, mode = 2): BackRole {
  return {
    lbspType: 0x1e,
    own: [{ family: 6, b: w(B6), s: w(S6), mode }, { family: 4, b: w(B4), s: w(S4), mode }],
    services: [{ family: 6, words: w(S6) }, { family: 4, words: w(S4) }],
    allowedFronts: [{ family: 6, words: w(S6), len: 128 }, { family: 4, words: w(S4), len: 32 }],
    returnPath: true, stamp: false, serverId: [0, 0, 0, 0], mssClamp: 0, mtu: 1500,
    returnEncap: { gateway: w(G6), family: 6, source: w(B6), mtu, hopLimit: 64, icmpSource4: w(B4), icmpSource6: w(B6), icmp: { ratePerSecond: 100, burst: 10 } },
  };
}

const BUILD = `
def run(_):
    S6, B6, S4, B4, C6, C4 = '2001:db8:5::80', '2001:db8:b::1', '192.0.2.80', '198.51.100.1', '2001:db8:c1::10', '203.0.113.10'
    pay = lambda n: Raw(bytes((i * 11) & 255 for i in range(n)))
    p = {}
    p['ret6'] = IPv6(src=S6, dst=C6, hlim=63)/TCP(sport=80, dport=40000, flags='A')/pay(500)
    p['ret6_big'] = IPv6(src=S6, dst=C6, hlim=63)/TCP(sport=80, dport=40000, flags='A')/pay(1440)
    p['ret4_nodf'] = IP(src=S4, dst=C4, ttl=63, id=31, flags=0)/UDP(sport=7, dport=5000)/pay(1472)
    p['ret4_df'] = IP(src=S4, dst=C4, ttl=63, id=32, flags='DF')/TCP(sport=80, dport=40000, flags='A')/pay(1460)
    p['fwd_translate'] = IPv6(src=C6, dst=B6, hlim=5)/TCP(sport=40000, dport=80, flags='S')
    inner = IPv6(src=C6, dst=S6, hlim=63)/UDP(sport=5000, dport=7)/pay(1232)
    tun = IPv6(src=S6, dst=B6)/IPv6ExtHdrFragment(id=0x77)/inner
    p['outer_frags'] = fragment6(tun, 1280)
    p['inner'] = inner
    bad = IPv6(src='2001:db8:66::1', dst=B6)/IPv6ExtHdrFragment(id=0x78)/inner
    p['unauth_frags'] = fragment6(bad, 1280)
    out = {}
    for k, v in p.items():
        out[k] = [bytes(x).hex() for x in v] if isinstance(v, list) else bytes(v).hex()
    return out
`;

const JUDGE = `
def run(inp):
    out = []
    for h in inp:
        b = bytes.fromhex(h)
        pkt = IPv6(b) if b[0] >> 4 == 6 else IP(b)
        d = {'src': pkt.src, 'dst': pkt.dst, 'len': len(b), 'csum_ok': csum_ok(b)}
        if ICMPv6PacketTooBig in pkt: d['ptb'] = pkt[ICMPv6PacketTooBig].mtu
        if ICMP in pkt: d['icmp'] = [pkt[ICMP].type, pkt[ICMP].code, pkt[ICMP].nexthopmtu]
        out.append(d)
    return out
`;

describe('back: return encapsulation, outer reassembly, hop limit', () => {
  const sc = new ScapyWorker();
  afterAll(() => sc.close());
  let P: Record<string, string | string[]>;
  let counters: Float64Array;
  let bp: BackProcessor;
  const SLOTS = 32;
  const tx = newTxQueue(SLOTS);

  beforeAll(async () => {
    P = await sc.run<Record<string, string | string[]>>(BUILD);
  }, 60_000);
  beforeEach(() => {
    counters = newCounterBlock();
    bp = new BackProcessor(role(), counters);
  });

  function send(h: string): { verdict: number; fwd?: Buffer; aux: string[] } {
    const b = Buffer.from(h, 'hex');
    const buf = new Uint8Array(128 + b.length + 64);
    buf.set(b, 128);
    tx.reset();
    const o = bp.process(buf, 128, b.length, new Uint8Array(0), 0, tx);
    const q = split(tx, buf);
    const r: { verdict: number; fwd?: Buffer; aux: string[] } = { verdict: o, aux: q.aux };
    if (q.fwd !== undefined) r.fwd = Buffer.from(q.fwd, 'hex');
    return r;
  }
  const pkt = (k: string) => P[k] as string;

  it('a return packet from S is wrapped 6in6 toward the gateway with outer source B; the inner is untouched', async () => {
    const r = send(pkt('ret6'));
    expect(r.verdict).toBeGreaterThanOrEqual(0);
    const b = r.fwd!;
    expect(b[6]).toBe(41);
    expect(b[7]).toBe(65); // 64 on the wire after the kernel's forwarding decrement
    expect(b.subarray(8, 24).toString('hex')).toBe('20010db8000b00000000000000000001');
    expect(b.subarray(24, 40).toString('hex')).toBe('20010db8000f00010000000000000001');
    expect(b.subarray(40).toString('hex')).toBe(pkt('ret6'));
    expect(counters[eventIndex('return_encapsulated')]).toBe(1);
  });

  it('a full-size return packet gets Packet Too Big 1460 from B (the server lowers its path MTU); IPv4 with DF: Frag Needed 1460', async () => {
    const r = send(pkt('ret6_big'));
    expect(r.verdict).toBeLessThan(0);
    const [j] = await sc.run<Record<string, unknown>[]>(JUDGE, r.aux);
    expect(j).toMatchObject({ src: B6, dst: S6, ptb: 1460, csum_ok: true });
    const r4 = send(pkt('ret4_df'));
    const [j4] = await sc.run<Record<string, unknown>[]>(JUDGE, r4.aux);
    expect(j4).toMatchObject({ src: B4, dst: S4, icmp: [3, 4, 1460], csum_ok: true });
    expect(counters[dropIndex('too_big')]).toBe(2);
    expect(counters[icmpIndex('packet_too_big')]).toBe(1);
    expect(counters[icmpIndex('frag_needed')]).toBe(1);
  });

  it('IPv4 without DF is fragmented, each fragment wrapped 4in6', async () => {
    const r = send(pkt('ret4_nodf'));
    expect(r.verdict).toBeGreaterThanOrEqual(0);
    const all = [r.fwd!.toString('hex'), ...r.aux];
    expect(all.length).toBe(2);
    for (const h of all) {
      const b = Buffer.from(h, 'hex');
      expect(b.length).toBeLessThanOrEqual(1500);
      expect(b[6]).toBe(4);
    }
    const judged = await sc.run<Record<string, unknown>[]>(JUDGE, all);
    for (const j of judged) expect(j.csum_ok).toBe(true);
  });

  it('outer fragments from an allowed front are reassembled and unwrapped (sent from aux)', () => {
    const frags = P['outer_frags'] as string[];
    expect(frags.length).toBe(2);
    const a = send(frags[0]!);
    expect(a.verdict).toBe(VERDICT_CONSUMED);
    expect(a.aux).toEqual([]);
    const b = send(frags[1]!);
    expect(b.aux).toEqual([pkt('inner')]);
    expect(counters[eventIndex('tunnel_reassembled')]).toBe(1);
    expect(counters[dropIndex('malformed')]).toBe(0);
  });

  it('tunnel fragments from a source outside allowedFronts: mode auto translates each like any packet (SPEC 6), mode encap refuses them', () => {
    const frags = P['unauth_frags'] as string[];
    for (const f of frags) {
      const r = send(f);
      expect(r.aux).toEqual([]);
      expect(r.verdict).toBeGreaterThanOrEqual(0);
      const sent = Buffer.from(f, 'hex');
      const got = r.fwd!;
      expect(got.length).toBe(sent.length);
      expect(got.subarray(24, 40).toString('hex')).toBe('20010db8000500000000000000000080'); // B -> S
      expect(got[7]).toBe(sent[7]! + 1); // one router hop: the kernel takes it off on the way out
      expect(Buffer.concat([got.subarray(0, 7), got.subarray(8, 24), got.subarray(40)])).toEqual(Buffer.concat([sent.subarray(0, 7), sent.subarray(8, 24), sent.subarray(40)]));
    }
    expect(counters[dropIndex('unauthorized_source')]).toBe(0);
    expect(counters[eventIndex('tunnel_reassembled')]).toBe(0);

    bp = new BackProcessor(role(1500, 1), counters);
    for (const f of frags) expect(send(f)).toEqual({ verdict: dropVerdict(dropIndex('unauthorized_source')), aux: [] });
    expect(counters[dropIndex('unauthorized_source')]).toBe(frags.length);
    expect(counters[dropIndex('malformed')]).toBe(0);
  });

  it('translate counts one hop: the written packet carries hop limit + 1 (the kernel takes it off on the way out)', () => {
    const r = send(pkt('fwd_translate'));
    expect(r.verdict).toBeGreaterThanOrEqual(0);
    expect(r.fwd![7]).toBe(6);
    expect(r.fwd!.subarray(24, 40).toString('hex')).toBe('20010db8000500000000000000000080');
  });
});

describe('back config: returnEncap', () => {
  it('the gateway needs an own address of its family (the outer source); with one, the role carries it', async () => {
    const { backConfigFromValue } = await import('../../back/back-config.js');
    const { backRoleFromConfig } = await import('../../back/back-role.js');
    const base = { addresses: [{ address: '198.51.100.1', service: '192.0.2.80' }], returnPath: { interface: 'eth-server' } };
    const bad = backConfigFromValue({ ...base, returnEncap: { gateway: '2001:db8:f:1::1' } }, 'back.yaml');
    expect(bad.errors.map((e) => e.entry)).toEqual(['returnEncap.gateway']);
    const ok = backConfigFromValue({ ...base, returnEncap: { gateway: '192.0.2.81' } }, 'back.yaml');
    expect(ok.errors).toEqual([]);
    const r = backRoleFromConfig(ok.config!);
    expect(r.returnEncap).toMatchObject({ family: 4, source: [0xc6336401, 0, 0, 0], gateway: [0xc0000251, 0, 0, 0], icmpSource6: null });
    const none = backConfigFromValue({ addresses: base.addresses }, 'back.yaml');
    expect(backRoleFromConfig(none.config!).returnEncap).toBeUndefined();
  });
});

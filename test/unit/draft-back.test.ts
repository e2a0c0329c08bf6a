// The back's draft paths (tunnels and MTU) through BackProcessor.process() (no TUN): return encapsulation toward a
// gateway (outer source B, 6in6 / 4in6, PTB to the server when it does not fit, 4in6 fragments of an
// IPv4 packet without DF), reassembly of outer fragments from an allowed front (the front fragments
// the outer packet of an IPv6 packet <= 1280), and translate as one router hop. The packets and what
// the back must emit for them are scapy vectors (test/vectors/make_draft_vectors.py), compared byte
// for byte.
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { BackProcessor } from '../../back/back-processor.js';
import type { BackRole } from '../../back/back-role.js';
import { dropIndex, eventIndex, icmpIndex, newCounterBlock } from '../../shared/metrics/counter-layout.js';
import { newTxQueue, split } from '../helpers/tx-queue.js';
import { VERDICT_CONSUMED, dropVerdict } from '../../shared/engine/packet-processor.js';
import { loadVectors, words } from '../vectors/load.js';

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

/** Every packet the tests send, and what the back must emit, built offline by scapy. */
const V = loadVectors<{ packets: Record<string, string | string[]>; expected: Record<string, string | string[]> }>('draft-back.json');
const want = (k: string): string => V.expected[k] as string;

describe('back: return encapsulation, outer reassembly, hop limit', () => {
  let P: Record<string, string | string[]>;
  let counters: Float64Array;
  let bp: BackProcessor;
  const SLOTS = 32;
  const tx = newTxQueue(SLOTS);

  beforeAll(() => {
    P = V.packets;
  });
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
    expect(b.toString('hex')).toBe(want('ret6_wrapped'));
    expect(counters[eventIndex('return_encapsulated')]).toBe(1);
  });

  it('a full-size return packet gets Packet Too Big 1460 from B (the server lowers its path MTU); IPv4 with DF: Frag Needed 1460', async () => {
    const r = send(pkt('ret6_big'));
    expect(r.verdict).toBeLessThan(0);
    expect(r.aux).toEqual([want('ptb_1460')]);
    const r4 = send(pkt('ret4_df'));
    expect(r4.aux).toEqual([want('fn_1460')]);
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
    expect(all).toEqual(V.expected['ret4_nodf_wrapped_fragments']);
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
    expect(r.fwd!.toString('hex')).toBe(want('fwd_translate'));
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

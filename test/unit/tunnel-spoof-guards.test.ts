// The two bounded tables that keep spoofed input from steering the tunnels' ICMP handling:
// SentFlows (shared/tunnel/sent-flows.ts: which inner flows went into which tunnel lately) and
// SourcePrefixBuckets (shared/tunnel/source-prefix-buckets.ts: ICMP budget per source prefix).
import { describe, expect, it } from 'vitest';
import { SentFlows, SENT_FLOWS_PERIOD_MS } from '../../shared/tunnel/sent-flows.js';
import { SourcePrefixBuckets, PREFIX_BUCKETS } from '../../shared/tunnel/source-prefix-buckets.js';
import { words } from '../vectors/load.js';

/** An IPv6 (or IPv4) header + 4 bytes of ports at buf[0]; proto 6 unless given. */
function pkt(src: string, dst: string, sport: number, dport: number, proto = 6, fragOffset = 0): Uint8Array {
  const v4 = !src.includes(':');
  const b = new Uint8Array(64);
  const put = (at: number, w: Uint32Array, n: number) => { for (let i = 0; i < n; i++) { b[at + 4 * i] = w[i]! >>> 24; b[at + 4 * i + 1] = (w[i]! >>> 16) & 0xff; b[at + 4 * i + 2] = (w[i]! >>> 8) & 0xff; b[at + 4 * i + 3] = w[i]! & 0xff; } };
  let l4: number;
  if (v4) {
    b[0] = 0x45; b[9] = proto; b[6] = (fragOffset >> 8) & 0x1f; b[7] = fragOffset & 0xff;
    put(12, words(src), 1); put(16, words(dst), 1);
    l4 = 20;
  } else {
    b[0] = 0x60; b[6] = proto;
    put(8, words(src), 4); put(24, words(dst), 4);
    l4 = 40;
  }
  b[l4] = sport >> 8; b[l4 + 1] = sport & 0xff; b[l4 + 2] = dport >> 8; b[l4 + 3] = dport & 0xff;
  return b;
}

describe('SentFlows', () => {
  it('remembers (back, inner flow) for one to two periods; other ports, back or protocol are not it', () => {
    const sf = new SentFlows(42, 0);
    const a = pkt('2001:db8:c1::10', '2001:db8:5::80', 40000, 80);
    sf.mark(3, a, 0, 64, 0);
    expect(sf.seen(3, a, 0, 64, 1)).toBe(true);
    expect(sf.seen(4, a, 0, 64, 1)).toBe(false); // another back
    expect(sf.seen(3, pkt('2001:db8:c1::10', '2001:db8:5::80', 40001, 80), 0, 64, 1)).toBe(false);
    expect(sf.seen(3, pkt('2001:db8:c1::10', '2001:db8:5::80', 40000, 80, 17), 0, 64, 1)).toBe(false);
    expect(sf.seen(3, a, 0, 64, SENT_FLOWS_PERIOD_MS + 5)).toBe(true); // previous generation
    expect(sf.seen(3, a, 0, 64, 2 * SENT_FLOWS_PERIOD_MS + 10)).toBe(false); // aged out
    // a clock jump over two periods forgets at once
    sf.mark(3, a, 0, 64, 3 * SENT_FLOWS_PERIOD_MS);
    expect(sf.seen(3, a, 0, 64, 10 * SENT_FLOWS_PERIOD_MS)).toBe(false);
  });

  it('IPv4: ports only from unfragmented / first fragments; a quote too short for the ports proves nothing', () => {
    const sf = new SentFlows(7, 0);
    const a = pkt('203.0.113.10', '192.0.2.80', 40000, 80);
    sf.mark(1, a, 0, 64, 0);
    expect(sf.seen(1, a, 0, 24, 0)).toBe(true);
    expect(sf.seen(1, a, 0, 23, 0)).toBe(false); // no room for the ports
    expect(sf.seen(1, a, 0, 19, 0)).toBe(false);
    expect(sf.seen(1, pkt('203.0.113.11', '192.0.2.80', 40000, 80), 0, 64, 0)).toBe(false);
    const nonFirst = pkt('203.0.113.10', '192.0.2.80', 0, 0, 6, 100);
    expect(sf.seen(1, nonFirst, 0, 64, 0)).toBe(false); // the flow's key has ports; this one cannot show them
  });

  it('stamp: equal for packets of one flow whose record would set the same bits; a new period, tunnel or fixed-header protocol changes it', () => {
    const sf = new SentFlows(5, 0);
    const a = pkt('2001:db8:c1::10', '2001:db8:5::80', 40000, 80);
    const s0 = sf.stamp(3, a, 0, 0);
    expect(sf.stamp(3, a, 0, SENT_FLOWS_PERIOD_MS - 1)).toBe(s0);
    expect(sf.stamp(4, a, 0, 1)).not.toBe(s0); // another tunnel
    expect(sf.stamp(3, pkt('2001:db8:c1::10', '2001:db8:5::80', 40000, 80, 60), 0, 1)).not.toBe(s0); // extension header: no ports in the key
    const s1 = sf.stamp(3, a, 0, SENT_FLOWS_PERIOD_MS); // rotated
    expect(s1).not.toBe(s0);
    // a clock jump over two periods: a new generation again, never an older stamp
    const s2 = sf.stamp(3, a, 0, 5 * SENT_FLOWS_PERIOD_MS);
    expect(new Set([s0, s1, s2]).size).toBe(3);
    const b = pkt('203.0.113.10', '192.0.2.80', 40000, 80);
    expect(sf.stamp(3, b, 0, 5 * SENT_FLOWS_PERIOD_MS)).not.toBe(sf.stamp(3, pkt('203.0.113.10', '192.0.2.80', 40000, 80, 17), 0, 5 * SENT_FLOWS_PERIOD_MS));
  });

  it('keyed: a made-up flow passes rarely even with many flows recorded (Bloom filter, two bits)', () => {
    const sf = new SentFlows(99, 0);
    for (let i = 0; i < 20_000; i++) sf.mark(0, pkt(`2001:db8:c1::${(i + 1).toString(16)}`, '2001:db8:5::80', 1024 + (i % 50_000), 80), 0, 64, 0);
    let pass = 0;
    for (let i = 0; i < 10_000; i++) if (sf.seen(0, pkt(`2001:db8:66::${(i + 1).toString(16)}`, '2001:db8:5::80', 2000 + i, 80), 0, 64, 0)) pass++;
    expect(pass).toBeLessThan(50); // 20k flows in 1 Mbit: ~0.15 % expected
  });
});

describe('SourcePrefixBuckets', () => {
  it('one budget per IPv4 /24 and IPv6 /48: other addresses of the prefix share it, other prefixes do not', () => {
    const b = new SourcePrefixBuckets(0, 2, 0, 1);
    expect([b.take(4, words('203.0.113.10'), 0), b.take(4, words('203.0.113.200'), 0), b.take(4, words('203.0.113.77'), 0)]).toEqual([true, true, false]);
    expect(b.take(4, words('203.0.114.10'), 0)).toBe(true);
    expect([b.take(6, words('2001:db8:c1::1'), 0), b.take(6, words('2001:db8:c1:ffff::2'), 0), b.take(6, words('2001:db8:c1:1::3'), 0)]).toEqual([true, true, false]);
    expect(b.take(6, words('2001:db8:c2::1'), 0)).toBe(true);
    expect(b.indexOf(6, words('2001:db8:c1::1'))).toBe(b.indexOf(6, words('2001:db8:c1:abcd::1')));
    expect(b.indexOf(6, words('2001:db8:c1::1'))).toBeLessThan(PREFIX_BUCKETS);
  });

  it('refills at its rate up to the burst; refund() gives back the last token taken', () => {
    const b = new SourcePrefixBuckets(10, 1, 0, 2);
    const s = words('203.0.113.10');
    expect(b.take(4, s, 0)).toBe(true);
    expect(b.take(4, s, 50)).toBe(false);
    expect(b.take(4, s, 100)).toBe(true);
    b.refund();
    expect(b.take(4, s, 100)).toBe(true);
    expect(b.take(4, s, 100)).toBe(false);
    expect(() => new SourcePrefixBuckets(-1, 1, 0)).toThrow(RangeError);
  });
});

// The ICMP token bucket (shared/engine/icmp-rate-limiter.ts) and the per-back path MTU cache
// (front/pmtu-cache.ts), driven by a fake clock.
import { describe, expect, it } from 'vitest';
import { TokenBucket, workerShare } from '../../shared/tunnel/icmp-rate-limiter.js';
import { PmtuCache, PMTU_TIMEOUT_MS, plateauBelow } from '../../shared/tunnel/path-mtu-cache.js';

describe('TokenBucket', () => {
  it('starts full, spends its burst, then refills at the rate up to the burst', () => {
    const b = new TokenBucket(10, 5, 0);
    let n = 0;
    for (let i = 0; i < 20; i++) if (b.take(0)) n++;
    expect(n).toBe(5);
    expect(b.take(50)).toBe(false); // 0.5 token
    expect(b.take(100)).toBe(true); // 1 token after 100 ms at 10/s
    expect(b.take(100)).toBe(false);
    expect(b.available(100_000)).toBe(5); // capped at the burst
  });

  it('a steady overload gets exactly the rate through over time', () => {
    const b = new TokenBucket(100, 10, 0);
    let sent = 0;
    for (let t = 0; t <= 10_000; t++) if (b.take(t)) sent++; // 1000 attempts per second for 10 s
    expect(sent).toBe(10 + 1000); // burst + 10 s x 100/s
  });

  it('a clock stepping back adds nothing; rate 0 sends only the burst; burst 0 never sends', () => {
    const b = new TokenBucket(1000, 1, 1000);
    expect(b.take(1000)).toBe(true);
    expect(b.take(500)).toBe(false);
    const none = new TokenBucket(0, 2, 0);
    expect([none.take(0), none.take(1e9), none.take(2e9)]).toEqual([true, true, false]);
    expect(new TokenBucket(100, 0, 0).take(1e6)).toBe(false);
    expect(() => new TokenBucket(-1, 1, 0)).toThrow(RangeError);
  });

  it('workerShare splits rate and burst over workers, keeping a burst of at least 1', () => {
    expect(workerShare(100, 50, 4)).toEqual({ ratePerSecond: 25, burst: 12.5 });
    expect(workerShare(100, 2, 4)).toEqual({ ratePerSecond: 25, burst: 1 });
    expect(workerShare(0, 0, 2)).toEqual({ ratePerSecond: 0, burst: 0 });
  });
});

describe('PmtuCache', () => {
  it('base from config/route, fallback before it is known; learned values only lower it and age out after 10 minutes', () => {
    const c = PmtuCache.create(1500, 8);
    expect(c.get(3, 6, 0)).toBe(1500); // fallback
    c.setBase(3, 6, 9000);
    c.setBase(3, 4, 1400);
    expect(c.get(3, 6, 0)).toBe(9000);
    expect(c.get(3, 4, 0)).toBe(1400);
    expect(c.lower(3, 6, 9100, 0)).toBe(0); // not lower: nothing learned
    expect(c.lower(3, 6, 1500, 1000)).toBe(1500);
    expect(c.get(3, 6, 2000)).toBe(1500);
    expect(c.get(3, 4, 2000)).toBe(1400); // per family
    expect(c.get(2, 6, 2000)).toBe(1500); // per back (fallback)
    expect(c.lower(3, 6, 1480, 5000)).toBe(1480);
    expect(c.learnedOf(3, 6, 5000)).toEqual({ mtu: 1480, expiresInMs: PMTU_TIMEOUT_MS });
    expect(c.get(3, 6, 5000 + PMTU_TIMEOUT_MS - 1)).toBe(1480);
    expect(c.get(3, 6, 5000 + PMTU_TIMEOUT_MS)).toBe(9000); // aged out: the base again
    expect(c.learnedOf(3, 6, 5000 + PMTU_TIMEOUT_MS).mtu).toBe(0);
  });

  it('floors: IPv6 never below 1280, IPv4 never below 552; nonsense is ignored', () => {
    const c = PmtuCache.create(1500, 4);
    expect(c.lower(0, 6, 500, 0)).toBe(1280);
    expect(c.lower(0, 4, 68, 0)).toBe(552);
    expect(c.lower(1, 4, 0, 0)).toBe(0);
    expect(c.lower(1, 4, Number.NaN, 0)).toBe(0);
    expect(c.lower(99, 4, 1000, 0)).toBe(0); // no such slot
  });

  it('workers share it: a value learned through one view is seen through another', () => {
    const main = PmtuCache.create(1500, 4);
    const w1 = PmtuCache.fromShared(structuredClone(main.toShared()));
    const w2 = PmtuCache.fromShared(structuredClone(main.toShared()));
    main.setBase(1, 6, 1500);
    w1.lower(1, 6, 1400, 10);
    expect(w2.get(1, 6, 20)).toBe(1400);
    expect(main.get(1, 6, 20)).toBe(1400);
  });

  it('RFC 1191 plateaus for Frag Needed without a next-hop MTU', () => {
    expect(plateauBelow(1520)).toBe(1492);
    expect(plateauBelow(1500)).toBe(1492);
    expect(plateauBelow(1492)).toBe(1006);
    expect(plateauBelow(100)).toBe(68);
  });
});

describe('encapSourceRoutes', () => {
  it('a configured outer source not covered by tun.routes is routed into the TUN (fabric errors come back); S and covered ones add nothing', async () => {
    const { encapSourceRoutes } = await import('../../front/path-mtu.js');
    const tun = { routes: ['2001:db8:5::80/128', '192.0.2.80/32', '2001:db8:f::/48'] };
    expect(encapSourceRoutes({ tun, encap: { source: 'service', source4: '', source6: '' } })).toEqual([]);
    expect(encapSourceRoutes({ tun, encap: { source: '2001:db8:f:9::1', source4: '192.0.2.80', source6: '' } })).toEqual([]);
    expect(encapSourceRoutes({ tun, encap: { source: '2001:db8:e5::2', source4: '198.51.100.200', source6: '2001:db8:e5::2' } })).toEqual(['2001:db8:e5::2/128', '198.51.100.200/32']);
  });
});

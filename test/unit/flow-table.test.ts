// The front's flow table (front/flow-table.ts): pure, over typed arrays, with a fake clock.
import { describe, it, expect } from 'vitest';
import { FlowTable, CONFIRMED_PROTECT_MS } from '../../front/flow-table.js';
import { words } from '../vectors/load.js';

const C = words('2001:db8:c1::10');
const S = words('2001:db8:5::80');

function key(ft: FlowTable, sport: number, src = C): void {
  ft.setFlowKey(6, 6, src, S, sport, 80);
}

describe('FlowTable', () => {
  it('finds what was inserted, and nothing else', () => {
    const ft = new FlowTable(1024, 1);
    key(ft, 40000);
    expect(ft.find(0)).toBe(-1);
    const i = ft.insert(0, 3, 7, 1, 300_000);
    key(ft, 40000);
    expect(ft.find(1)).toBe(i);
    expect([ft.back[i], ft.slot[i], ft.gen[i]]).toEqual([3, 7, 1]);
    key(ft, 40001);
    expect(ft.find(1)).toBe(-1);
    ft.setFlowKey(6, 17, C, S, 40000, 80); // same ports, other protocol
    expect(ft.find(1)).toBe(-1);
    ft.setFragmentKey(6, 6, C, S, (40000 << 16) | 80); // a datagram key never equals a flow key
    expect(ft.find(1)).toBe(-1);
    ft.setFlowKey(4, 6, words('203.0.113.10'), words('192.0.2.80'), 40000, 80);
    expect(ft.find(1)).toBe(-1);
    expect(ft.count).toBe(1);
  });

  it('stays within its capacity under many more flows than entries, counting evictions', () => {
    const ft = new FlowTable(256, 2);
    expect(ft.capacity).toBeGreaterThanOrEqual(256);
    expect(ft.capacity).toBeLessThan(256 + ft.ways);
    const src = new Uint32Array(C);
    for (let n = 0; n < 5000; n++) {
      src[3] = n;
      key(ft, 1000 + (n % 50), src);
      if (ft.find(n) < 0) ft.insert(n, 0, 0, 0, 1e9);
      expect(ft.count).toBeLessThanOrEqual(ft.capacity);
    }
    expect(ft.inserts).toBe(5000);
    expect(ft.evictions).toBe(ft.inserts - ft.count);
    expect(ft.count).toBeGreaterThan(ft.capacity * 0.9); // the buckets fill up evenly
  });

  it('admission: a new entry evicts only new (probationary) entries, never a confirmed one seen within the protection window', () => {
    const ft = new FlowTable(8, 3); // one bucket of 8 ways
    for (let p = 0; p < 4; p++) { key(ft, p); ft.confirm(ft.insert(p + 1, p, p, 0, 1e9)); }
    for (let p = 4; p < 8; p++) { key(ft, p); ft.insert(p + 1, p, p, 0, 1e9); }
    for (let n = 0; n < 1000; n++) { key(ft, 100 + n); expect(ft.insert(10 + n, 9, 9, 0, 1e9)).toBeGreaterThanOrEqual(0); }
    for (let p = 0; p < 4; p++) { key(ft, p); expect(ft.find(2000), `confirmed ${p}`).toBeGreaterThanOrEqual(0); }
    key(ft, 4);
    expect(ft.find(2000)).toBe(-1); // probationary ones took turns
    // a bucket of confirmed entries only: a newcomer is refused (still forwarded by its caller)
    const full = new FlowTable(8, 4);
    for (let p = 0; p < 8; p++) { key(full, p); full.confirm(full.insert(0, p, p, 0, 1e9)); }
    key(full, 50);
    expect(full.insert(CONFIRMED_PROTECT_MS, 1, 1, 0, 1e9)).toBe(-1);
    expect(full.refused).toBe(1);
    // ... until its least recently seen confirmed entry has been idle longer than the window
    key(full, 50);
    expect(full.insert(CONFIRMED_PROTECT_MS + 1, 1, 1, 0, 1e9)).toBeGreaterThanOrEqual(0);
    expect(full.evictions).toBe(1);
  });

  it('evicts the least recently seen entry of a full bucket', () => {
    const ft = new FlowTable(8, 3); // one bucket of 8 ways
    expect([ft.buckets, ft.ways]).toEqual([1, 8]);
    for (let p = 0; p < 8; p++) { key(ft, p); ft.insert(p + 1, p, p, 0, 1e9); }
    key(ft, 0);
    expect(ft.find(100)).toBeGreaterThanOrEqual(0); // flow 0 is now the most recent
    key(ft, 8);
    ft.insert(101, 8, 8, 0, 1e9); // evicts flow 1 (last seen at 2)
    expect(ft.evictions).toBe(1);
    key(ft, 1);
    expect(ft.find(102)).toBe(-1);
    for (const p of [0, 2, 3, 4, 5, 6, 7, 8]) { key(ft, p); expect(ft.find(103), `flow ${p}`).toBeGreaterThanOrEqual(0); }
  });

  it('expires idle entries after their own timeout; a packet refreshes it', () => {
    const ft = new FlowTable(64, 4);
    key(ft, 1); ft.insert(0, 1, 1, 0, 30_000); // e.g. UDP, 30 s
    key(ft, 2); ft.insert(0, 2, 2, 0, 300_000); // e.g. TCP, 300 s
    key(ft, 1); expect(ft.find(29_000)).toBeGreaterThanOrEqual(0); // refreshed at 29 s
    key(ft, 1); expect(ft.find(58_000)).toBeGreaterThanOrEqual(0); // 29 s idle: still there
    key(ft, 1); expect(ft.find(88_001)).toBe(-1); // 30.001 s idle: gone
    expect(ft.evictions).toBe(1);
    key(ft, 2); expect(ft.find(250_000)).toBeGreaterThanOrEqual(0);
    expect(ft.count).toBe(1);
  });

  it('markClosing shortens the timeout (never lengthens) and flags the entry', () => {
    const ft = new FlowTable(64, 5);
    key(ft, 1);
    const i = ft.insert(0, 1, 1, 0, 300_000);
    expect(ft.isClosing(i)).toBe(false);
    ft.markClosing(i, 10_000);
    ft.markClosing(i, 60_000);
    expect(ft.isClosing(i)).toBe(true);
    key(ft, 1);
    expect(ft.find(10_001)).toBe(-1);
  });

  it('sweep() reclaims expired entries a bounded number of buckets at a time', () => {
    const ft = new FlowTable(1024, 6);
    const src = new Uint32Array(C);
    for (let n = 0; n < 500; n++) { src[3] = n; key(ft, 5, src); ft.insert(0, 0, 0, 0, 1000); }
    const live = ft.count;
    expect(live).toBeGreaterThan(480); // a few buckets may have overflowed (evictions)
    const before = ft.evictions;
    expect(ft.sweep(500, ft.buckets)).toBe(0); // nothing idle yet
    let removed = 0;
    for (let round = 0; round < ft.buckets; round += 16) removed += ft.sweep(5000, 16);
    expect(removed).toBe(live);
    expect(ft.count).toBe(0);
    expect(ft.evictions).toBe(before + live);
  });

  it('remove() releases an entry; clear() empties the table', () => {
    const ft = new FlowTable(64, 7);
    key(ft, 1); const i = ft.insert(0, 1, 1, 0, 1e9);
    key(ft, 2); ft.insert(0, 1, 1, 0, 1e9);
    ft.remove(i);
    ft.remove(i); // twice is harmless
    expect(ft.count).toBe(1);
    key(ft, 1); expect(ft.find(1)).toBe(-1);
    ft.clear();
    expect(ft.count).toBe(0);
    key(ft, 2); expect(ft.find(1)).toBe(-1);
  });

  it('a size of 1 is one entry; invalid sizes are refused', () => {
    const ft = new FlowTable(1, 8);
    expect(ft.capacity).toBe(1);
    key(ft, 1); ft.insert(0, 1, 1, 0, 1e9);
    key(ft, 2); ft.insert(1, 2, 2, 0, 1e9);
    expect(ft.count).toBe(1);
    expect(ft.evictions).toBe(1);
    expect(() => new FlowTable(0)).toThrow(/positive/);
    expect(() => new FlowTable(1.5)).toThrow(/positive/);
  });
});

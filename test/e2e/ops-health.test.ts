// Health checks in the lab: every client prefix goes to pool web [b1, b2]; both backs are checked
// every second (GET /readyz of the back over the fabric, and a TCP connect to S:80 through the back
// from the front's probe source; timeout 1 s, fall 2, rise 2). Stopping server1's listeners (a dead
// server behind a live back), then mslb-back on back1, takes b1 out of the pool within the thresholds:
// b1's keys move to b2, b2's keys and a steady UDP stream of a b2 key are undisturbed (no datagram
// lost); bringing each back restores b1's keys. mslb_backend_up and the JSON log (backend_down with
// the probe that failed, backend_up) say so. Needs root and `npm run build`.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isRoot } from '../helpers/netns.js';
import { BACK_CONFIGS, Lab, LINKS, PROBE } from '../helpers/lab.js';
import { addClientAddresses, curlFrom, healthBoundMs, healthFrontConfig, logEvents, sleep, startLabServer, stopLabServer, UdpStream, untilMetric } from '../helpers/ops.js';
import { parseTableText } from '../../front/table/table-file.js';
import { CompiledTable } from '../../front/table/compiled-table.js';
import { decide, DecisionInput, DecisionResult } from '../../front/decision.js';
import { parseAddress } from '../../shared/table/addr.js';

const HC = { interval: 1, timeout: 1, rise: 2, fall: 2 };
const boundMs = (n: number) => healthBoundMs(HC, n);
const DOWN_BOUND_MS = boundMs(HC.fall);
const UP_BOUND_MS = boundMs(HC.rise);
const SERVICES = ['2001:db8:5::80', '192.0.2.80'];

const FRONT = healthFrontConfig(HC, PROBE);
const TABLE = `backs:
  b1:
    addresses: { "2001:db8:5::80": "2001:db8:b::1", "192.0.2.80": "198.51.100.1" }
    healthCheck: { url: "http://[${LINKS.back1.v6[1]}]:9102/readyz", servicePort: 80 }
  b2:
    addresses: { "2001:db8:5::80": "2001:db8:b::2", "192.0.2.80": "198.51.100.2" }
    healthCheck: { url: "http://[${LINKS.back2.v6[1]}]:9103/readyz", servicePort: 80 }
pools:
  web: { members: [b1, b2], key: source }
routes:
  - { source: 2001:db8:c1::/48, to: web }
  - { source: 2001:db8:c2::/48, to: web }
  - { source: 203.0.113.0/26, to: web }
  - { source: 203.0.113.64/26, to: web }
`;

/** Candidate client addresses and the back the table gives each (computed from the table itself). */
function keysByBack(): Record<'b1' | 'b2', string[]> {
  const r = parseTableText(TABLE, 'table.yaml', { services: SERVICES, mode: 'translate', encap: { source: 'service', source4: '', source6: '' } });
  const slots = new Map<string, number>();
  const ct = CompiledTable.compile(r.table!, { services: SERVICES, flowLabelEnabled: false, lbspEnabled: false, slotOf: (n) => { if (!slots.has(n)) slots.set(n, slots.size); return slots.get(n)!; } });
  const out: Record<'b1' | 'b2', string[]> = { b1: [], b2: [] };
  const inp = new DecisionInput();
  const res = new DecisionResult();
  const cands = [...Array.from({ length: 16 }, (_, i) => `2001:db8:c1::${(0x100 + i).toString(16)}`), ...Array.from({ length: 16 }, (_, i) => `203.0.113.${20 + i}`)];
  for (const a of cands) {
    const p = parseAddress(a)!;
    inp.family = p.family;
    inp.src.fill(0); inp.src.set(p.words);
    inp.service.fill(0); inp.service.set(parseAddress(SERVICES[p.family === 6 ? 0 : 1]!)!.words);
    decide(ct, inp, res);
    out[ct.meta.backNames[res.back] as 'b1' | 'b2'].push(a);
  }
  return out;
}

describe.skipIf(!isRoot())('health checks take a back out of its pool and bring it back', () => {
  let lab: Lab;
  let dir = '';
  const keys = keysByBack();
  // Two keys per back and family.
  const pick = (b: 'b1' | 'b2') => [...keys[b].filter((a) => a.includes(':')).slice(0, 2), ...keys[b].filter((a) => !a.includes(':')).slice(0, 2)];
  const k1 = pick('b1');
  const k2 = pick('b2');

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mslb-ops-health-'));
    writeFileSync(join(dir, 'front.yaml'), FRONT);
    writeFileSync(join(dir, 'table.yaml'), TABLE);
    lab = await Lab.start({ mode: 'translate', frontConfig: join(dir, 'front.yaml') });
    addClientAddresses(lab, [...k1, ...k2]);
  }, 90_000);
  afterAll(async () => {
    await lab?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  const up = (b: string) => lab.metric('front', 'mslb_backend_up', { backend: b });
  /** Where each key's new connection lands. */
  const where = async (ks: string[]) => Promise.all(ks.map(async (k) => (await curlFrom(lab, k)).server ?? 'none'));

  it('both backs pass their checks; the keys are spread as the table says', async () => {
    expect(k1).toHaveLength(4);
    expect(k2).toHaveLength(4);
    await sleep(2500); // a few rounds
    expect(await up('b1')).toBe(1);
    expect(await up('b2')).toBe(1);
    expect(logEvents(lab, 'front', 'backend_down')).toEqual([]);
    expect(logEvents(lab, 'front', 'health_check_started').map((e) => e.backend)).toEqual(['b1', 'b2']);
    expect(await where(k1)).toEqual(k1.map(() => 'server1'));
    expect(await where(k2)).toEqual(k2.map(() => 'server2'));
    // The service probes went through the data path (decisions, backend packets) from the probe sources.
    expect(await lab.metric('front', 'mslb_backend_packets_total', { backend: 'b1' })).toBeGreaterThan(10);
  });

  it('a dead server (listeners stopped) and then a dead back each leave the pool and come back; other keys undisturbed', async () => {
    const steady = await UdpStream.start(lab, k2[0]!); // a b2 key: must not notice anything
    const moving = await UdpStream.start(lab, k1[0]!); // a b1 key: interrupted until b1 is taken out
    await sleep(300);
    const times: Record<string, number> = {};

    // 1. server1's HTTP/HTTPS/UDP listeners stop; mslb-back on back1 still answers /readyz.
    await stopLabServer(lab, 'server1');
    times.serverDown = await untilMetric(lab, 'front', 'mslb_backend_up', { backend: 'b1' }, (v) => v === 0, DOWN_BOUND_MS + 2000);
    const down1 = logEvents(lab, 'front', 'backend_down');
    expect(down1).toHaveLength(1);
    expect(down1[0]).toMatchObject({ level: 'warn', backend: 'b1', fall: HC.fall, kind: 'tcp', reason: 'refused' });
    expect(down1[0]!.detail).toMatch(/tcp \[2001:db8:5::80\]:80 from 2001:db8:f::1: connect ECONNREFUSED/);
    expect(down1[0]!.detail).not.toMatch(/readyz/);
    expect(await where(k1)).toEqual(k1.map(() => 'server2'));
    expect(await where(k2)).toEqual(k2.map(() => 'server2'));
    expect(await up('b2')).toBe(1);

    await startLabServer(lab, 'server1');
    times.serverUp = await untilMetric(lab, 'front', 'mslb_backend_up', { backend: 'b1' }, (v) => v === 1, UP_BOUND_MS + 2000);
    expect(logEvents(lab, 'front', 'backend_up')[0]).toMatchObject({ backend: 'b1', rise: HC.rise });
    expect(await where(k1)).toEqual(k1.map(() => 'server1'));
    expect(await where(k2)).toEqual(k2.map(() => 'server2'));

    // 2. mslb-back on back1 stops (its TUN, routes and admin go away).
    await lab.stopService('back1');
    times.backDown = await untilMetric(lab, 'front', 'mslb_backend_up', { backend: 'b1' }, (v) => v === 0, DOWN_BOUND_MS + 2000);
    const down2 = logEvents(lab, 'front', 'backend_down')[1];
    expect(down2).toMatchObject({ kind: 'readyz', reason: 'refused' });
    expect(down2!.detail).toMatch(/GET http:\/\/\[2001:db8:e1::2\]:9102\/readyz: connect ECONNREFUSED/);
    expect(await where(k1)).toEqual(k1.map(() => 'server2'));
    expect(await where(k2)).toEqual(k2.map(() => 'server2'));

    await lab.startService('back1', BACK_CONFIGS.back1);
    times.backUp = await untilMetric(lab, 'front', 'mslb_backend_up', { backend: 'b1' }, (v) => v === 1, UP_BOUND_MS + 2000);
    expect(await where(k1)).toEqual(k1.map(() => 'server1'));
    expect(await where(k2)).toEqual(k2.map(() => 'server2'));

    const s = await steady.stop();
    const m = await moving.stop();
    console.log(`[ops-health] interval ${HC.interval}s timeout ${HC.timeout}s fall ${HC.fall} rise ${HC.rise}: ` +
      `server stopped -> b1 down in ${times.serverDown} ms, server back -> up in ${times.serverUp} ms (after it listened), ` +
      `back stopped -> down in ${times.backDown} ms, back restarted -> up in ${times.backUp} ms (after its /readyz); ` +
      `b2-key stream ${JSON.stringify(s)}; b1-key stream ${JSON.stringify(m)}`);
    expect(times.serverDown).toBeLessThanOrEqual(DOWN_BOUND_MS);
    expect(times.backDown).toBeLessThanOrEqual(DOWN_BOUND_MS);
    expect(times.serverUp).toBeLessThanOrEqual(UP_BOUND_MS);
    expect(times.backUp).toBeLessThanOrEqual(UP_BOUND_MS);
    // Keys of b2 were undisturbed: every datagram answered, all by server2.
    expect(s.sent).toBeGreaterThan(300);
    expect(s.received, JSON.stringify(s)).toBe(s.sent);
    expect(s.servers).toEqual({ server2: s.sent });
    // b1's key was carried on by b2 once b1 was out (its losses are bounded by the detection time).
    expect(m.servers.server2 ?? 0).toBeGreaterThan(0);
    expect(m.sent - m.received).toBeLessThan(((2 * DOWN_BOUND_MS) / 1000) * 100);
  }, 120_000);
});

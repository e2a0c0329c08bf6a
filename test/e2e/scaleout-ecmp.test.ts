// Scale-out (SPEC 2 last paragraph, 9; deploy/README.md "Scale-out"): two mslb-fronts with the same
// config and table behind a router that runs BIRD. Each front host's BIRD announces S over BGP while
// its front is ready (deploy/bird/mslb-bird-watch.sh); the router installs one ECMP route to S over
// the announcing fronts, hashed on the 5-tuple. Many TCP transfers spread over both fronts, each lands
// on the server the table names, and stopping one front mid-transfer breaks none of them: its flows
// move to the other front, which takes the same decision without any per-flow state.
// Needs root, bird2 (scripts/setup.sh) and `npm run build`.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { isRoot } from '../helpers/netns.js';
import { ScaleoutLab, FRONT_NAMES } from '../../lab/scaleout.js';
import type { TransferResult } from '../../lab/scaleout-transfer.js';

const hasBird = existsSync('/usr/sbin/bird') && existsSync('/usr/sbin/birdc');
const PER_CLIENT = 12; // x 4 client addresses (2 per family) = 48 connections
const BYTES = 768 * 1024;

function summary(rs: TransferResult[]): { completed: number; broken: TransferResult[]; wrongServer: TransferResult[] } {
  return {
    completed: rs.filter((r) => r.ok).length,
    broken: rs.filter((r) => !r.ok),
    wrongServer: rs.filter((r) => r.server !== ScaleoutLab.expectedServerOf(r.src)),
  };
}

describe.skipIf(!isRoot() || !hasBird)('scale-out: fronts behind a BGP-fed ECMP route', () => {
  let lab: ScaleoutLab;

  beforeAll(async () => {
    lab = await ScaleoutLab.start({ transferBytes: BYTES, transferDurationMs: 5000, watchIntervalS: 0.2 });
  }, 90_000);
  afterAll(async () => {
    await lab?.stop();
  }, 30_000);

  it('the router learns S from both fronts over BGP and installs one multipath route per family', () => {
    expect(lab.routedFronts('ipv6')).toEqual(['front1', 'front2']);
    expect(lab.routedFronts('ipv4')).toEqual(['front1', 'front2']);
    const routes = lab.birdc('router', 'show', 'route');
    expect(routes).toMatch(/2001:db8:5::80\/128[\s\S]*front1_6[\s\S]*front2_6|2001:db8:5::80\/128[\s\S]*front2_6[\s\S]*front1_6/);
    expect(routes).toMatch(/192\.0\.2\.80\/32[\s\S]*front\d_4[\s\S]*front\d_4/);
    for (const f of FRONT_NAMES) expect(lab.birdc(f, 'show', 'protocols', 'mslb_s6')).toMatch(/mslb_s6\s+Static\s+master6\s+up/);
  });

  it('many TCP transfers spread over both fronts; stopping one mid-transfer breaks none', async () => {
    const syn0 = { front1: lab.synCount('front1'), front2: lab.synCount('front2') };
    const t0 = Date.now();
    const run = lab.transfers(PER_CLIENT);
    await run.established;
    // Let every connection carry data through its front, then read both fronts' view.
    await new Promise((r) => setTimeout(r, 1200));
    const per: Record<string, { syns: number; rx: number; b1: number; b2: number }> = {};
    for (const f of FRONT_NAMES) {
      per[f] = {
        syns: lab.synCount(f) - syn0[f],
        rx: await lab.metric(f, 'mslb_rx_packets_total'),
        b1: await lab.metric(f, 'mslb_backend_packets_total', { backend: 'b1' }),
        b2: await lab.metric(f, 'mslb_backend_packets_total', { backend: 'b2' }),
      };
    }
    const conns = PER_CLIENT * 4;
    // Both fronts carry a real share of the connections (L4 hash: each gets some; 48 flows over 2
    // next hops fall below 8 on one side with probability ~1e-6).
    for (const f of FRONT_NAMES) {
      expect(per[f]!.syns, `${f} SYNs ${JSON.stringify(per)}`).toBeGreaterThanOrEqual(8);
      expect(per[f]!.rx, `${f} rx`).toBeGreaterThan(0);
      expect(per[f]!.b1 + per[f]!.b2, `${f} backend packets`).toBeGreaterThan(0);
    }
    expect(per.front1!.syns + per.front2!.syns).toBeGreaterThanOrEqual(conns);

    // Stop front1 mid-transfer (SIGTERM: it removes its TUN and route; its watcher withdraws S).
    // Baselines before the stop: front1's flows start reaching front2 while stopService() still
    // waits for front1 to exit, so a baseline read afterwards would already include the takeover.
    const front2RxAtStop = await lab.metric('front2', 'mslb_rx_packets_total');
    const front2MissesAtStop = await lab.metric('front2', 'mslb_flow_table_misses_nonsyn_total');
    const stopAt = Date.now();
    expect(await lab.stopService('front1')).toBe(0);
    await lab.waitNexthops(1, 10_000);
    const withdrawMs = Date.now() - stopAt;
    expect(lab.routedFronts('ipv6')).toEqual(['front2']);
    expect(lab.routedFronts('ipv4')).toEqual(['front2']);

    const rs = await run.results;
    const s = summary(rs);
    console.log(
      `scale-out: ${conns} transfers of ${BYTES} B; SYNs per front ${per.front1!.syns}/${per.front2!.syns}; ` +
        `front1 stopped ${stopAt - t0} ms in, S withdrawn from the router ${withdrawMs} ms later; ` +
        `completed ${s.completed}, broken ${s.broken.length}, wrong server ${s.wrongServer.length}`,
    );
    expect(rs).toHaveLength(conns);
    expect(s.broken.map((r) => `${r.src}:${r.localPort} ${r.error}`)).toEqual([]);
    expect(s.wrongServer).toEqual([]);
    expect(s.completed).toBe(conns);
    // The stop really was mid-transfer: every transfer finished after it.
    for (const r of rs) expect(r.ms, `${r.src}:${r.localPort}`).toBeGreaterThan(stopAt - t0);
    // front1's flows went on through front2, which met them mid-connection (no SYN) and took the
    // same decision from its table: its flow table counts them as non-SYN misses.
    expect(await lab.metric('front2', 'mslb_rx_packets_total')).toBeGreaterThan(front2RxAtStop);
    const takenOver = (await lab.metric('front2', 'mslb_flow_table_misses_nonsyn_total')) - front2MissesAtStop;
    console.log(`scale-out: front2 took over ${takenOver} established flows (non-SYN flow-table misses)`);
    expect(takenOver).toBeGreaterThan(0);
    expect(lab.watcherLog('front1')).toMatch(/withdraw \(front not ready\)/);
    expect(lab.birdc('front1', 'show', 'protocols', 'mslb_s6')).toMatch(/mslb_s6\s+Static\s+master6\s+down/);
  }, 90_000);

  it('a front that comes back and turns ready is announced again and takes new flows', async () => {
    await lab.startService('front1');
    await lab.waitNexthops(2, 15_000);
    expect(lab.routedFronts('ipv6')).toEqual(['front1', 'front2']);
    const syn0 = lab.synCount('front1');
    const rs = await lab.transfers(6).results;
    const s = summary(rs);
    expect(s.broken).toEqual([]);
    expect(s.wrongServer).toEqual([]);
    expect(lab.synCount('front1') - syn0, 'new SYNs through front1').toBeGreaterThan(0);
    expect(await lab.metric('front1', 'mslb_rx_packets_total')).toBeGreaterThan(0);
  }, 60_000);
});

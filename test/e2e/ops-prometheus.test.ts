// Metrics of a running lab (SPEC 8): `promtool check metrics` passes on /metrics of the front and
// both backs after real traffic, and a real Prometheus server (Debian's prometheus, generated scrape
// config, storage in the lab's temp dir, retention-bounded) started in the front namespace scrapes
// all three over the lab (the front on [::1], the backs over the fabric): every target up, and the
// mslb_ series queryable through its API. Needs root, `npm run build` and prometheus/promtool.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { isRoot, runAsync } from '../helpers/netns.js';
import { CLIENT_NAMES, Lab, LINKS } from '../helpers/lab.js';
import { Prometheus } from '../../lab/prometheus.js';
import { until } from '../helpers/ops.js';

const TARGETS = { front: '[::1]:9101', back1: `[${LINKS.back1.v6[1]}]:9102`, back2: `[${LINKS.back2.v6[1]}]:9103` };

describe.skipIf(!isRoot())('Prometheus: promtool and a real server scraping the lab', () => {
  let lab: Lab;
  let prom: Prometheus | undefined;

  beforeAll(async () => {
    lab = await Lab.start({ mode: 'translate' });
    for (const c of CLIENT_NAMES) {
      expect((await lab.curl(c)).ok, c).toBe(true);
      expect((await lab.udp(c)).ok, c).toBe(true);
    }
  }, 90_000);
  afterAll(async () => {
    await prom?.stop();
    await lab?.stop();
  }, 30_000);

  it.each(['front', 'back1', 'back2'] as const)('promtool check metrics passes on /metrics of %s', async (svc) => {
    const text = await lab.metrics(svc);
    expect(text).toMatch(/^mslb_rx_packets_total \d+/m);
    const r = await runAsync('promtool', ['check', 'metrics'], { input: text, timeoutMs: 20_000 });
    expect(r.stdout + r.stderr, `promtool on ${svc}`).toBe('');
    expect(r.code).toBe(0);
    // The check can fail: a family without HELP is reported.
    const bad = await runAsync('promtool', ['check', 'metrics'], { input: `${text}mslb_unhelpful_total 1\n`, timeoutMs: 20_000 });
    expect(bad.code).not.toBe(0);
    expect(bad.stdout + bad.stderr).toMatch(/mslb_unhelpful_total no help text/);
  });

  it('a Prometheus server in the front namespace scrapes the front and both backs (targets up)', async () => {
    prom = await Prometheus.start(lab.set, lab.ns.front, join(lab.workDir, 'prometheus'), [
      { job: 'mslb-front', targets: [TARGETS.front] },
      { job: 'mslb-back', targets: [TARGETS.back1, TARGETS.back2] },
    ]);
    const ms = await until(async () => {
      const t = await prom!.targets();
      return t.length === 3 && t.every((x) => x.health === 'up');
    }, 20_000, 'all targets up', 200);
    const targets = await prom.targets();
    console.log(`[ops-prometheus] targets up after ${ms} ms: ${targets.map((t) => `${t.job} ${t.instance} ${t.health}`).join('; ')}`);
    expect(targets.map((t) => t.instance).sort()).toEqual(Object.values(TARGETS).sort());
    for (const t of targets) expect(t.lastError, t.instance).toBe('');

    const up = await prom.query('up');
    expect(up.map((s) => `${s.metric.job} ${s.metric.instance} ${s.value}`).sort()).toEqual([
      `mslb-back ${TARGETS.back1} 1`, `mslb-back ${TARGETS.back2} 1`, `mslb-front ${TARGETS.front} 1`,
    ]);
    // The mslb_ series arrived: the front's view of the backs and the traffic each service carried.
    const backendUp = await prom.query('mslb_backend_up');
    expect(backendUp.map((s) => `${s.metric.backend}=${s.value}`).sort()).toEqual(['b1=1', 'b2=1']);
    const rx = await prom.query('sum by (job, instance) (mslb_rx_packets_total)');
    expect(rx).toHaveLength(3);
    for (const s of rx) expect(s.value, `${s.metric.instance} rx`).toBeGreaterThan(0);
    const routes = await prom.query('mslb_table_routes{job="mslb-front"}');
    expect(routes.map((s) => `${s.metric.family}=${s.value}`).sort()).toEqual(['ipv4=2', 'ipv6=2']);
    // A target that goes away is seen down (the server really scrapes; it does not just remember).
    await lab.stopService('back2');
    await until(async () => (await prom!.targets()).some((t) => t.instance === TARGETS.back2 && t.health === 'down'), 10_000, 'back2 target down', 200);
  }, 60_000);
});

// The services fail loudly and never die by accident (SPEC 7, 8), in one translate lab whose
// front (two TUN queues) and back1 run from configs in a temp dir:
//   - SIGHUP three times to the front and to each back while two UDP streams run: every service
//     alive, no datagram lost; an edit of back1's config (allowedFronts) is applied on SIGHUP and
//     shown by its /table; an edit the back cannot apply live (tun.mtu) is refused and counted.
//   - a reload of back1 that changes the service of an address: the `service` label set follows.
//   - a generated table with 120 YAML aliases dropped in and SIGHUP'd: the front stays up, the old
//     table serves, the failure is counted and logged with file and reason.
//   - a worker made to die (test-only hook, NODE_ENV=test): /readyz answers 503 and mslb_workers
//     drops below 2 while the service tears down, then it exits 1 with its TUN and routes gone.
//   - an uncaught exception and an unhandled rejection in back2 (test-only hook): teardown, exit 1.
// Needs root and `npm run build`.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isRoot } from '../helpers/netns.js';
import { CLIENTS, Lab } from '../helpers/lab.js';
import { curlFrom, logEvents, sleep, until, UdpStream, untilMetric } from '../helpers/ops.js';
import { repoRoot } from '../../lab/paths.js';

const FRONT = `tun: { name: mslbf0, mtu: 1500, queues: 2, routes: [2001:db8:5::80/128, 192.0.2.80/32] }
services: [2001:db8:5::80, 192.0.2.80]
table: ./table.yaml
mode: translate
admin: { listen: "[::1]:9101" }
`;

describe.skipIf(!isRoot())('services survive SIGHUP and bad edits, and stop loudly when a worker dies', () => {
  let lab: Lab;
  let dir = '';
  const file = (name: string) => join(dir, name);
  const back1Text = () => readFileSync(join(repoRoot(), 'deploy/lab/back1.yaml'), 'utf8');

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mslb-robust-'));
    writeFileSync(file('front.yaml'), FRONT);
    writeFileSync(file('table.yaml'), readFileSync(join(repoRoot(), 'deploy/lab/table.yaml'), 'utf8'));
    writeFileSync(file('back1.yaml'), back1Text());
    lab = await Lab.start({ mode: 'translate', frontConfig: file('front.yaml'), backConfigs: { back1: file('back1.yaml') } });
  }, 120_000);
  afterAll(async () => {
    await lab?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  const reloads = (svc: 'front' | 'back1' | 'back2', result: 'success' | 'failure') => lab.metric(svc, 'mslb_config_reloads_total', { result });
  const alive = (svc: 'front' | 'back1' | 'back2') => {
    const p = lab.serviceProcess(svc)!;
    return p.exitCode === null && p.signalCode === null;
  };

  it('SIGHUP three times to the front and each back during UDP streams: all alive, 0 lost; a back edit applied', async () => {
    const streams = [await UdpStream.start(lab, CLIENTS.c1v6.address), await UdpStream.start(lab, CLIENTS.c2v4.address)];
    await sleep(300);
    // back1's config edited before the signals: one more allowed front prefix.
    writeFileSync(file('back1.yaml'), back1Text().replace('allowedFronts: [2001:db8:5::80/128, 192.0.2.80/32]', 'allowedFronts: [2001:db8:5::80/128, 192.0.2.80/32, 2001:db8:e1::/64]'));
    for (let round = 1; round <= 3; round++) {
      for (const svc of ['front', 'back1', 'back2'] as const) lab.serviceProcess(svc)!.kill('SIGHUP');
      for (const svc of ['front', 'back1', 'back2'] as const) {
        await untilMetric(lab, svc, 'mslb_config_reloads_total', { result: 'success' }, (v) => v === round, 5000);
      }
      await sleep(300);
      for (const svc of ['front', 'back1', 'back2'] as const) expect(alive(svc), `${svc} after SIGHUP #${round}`).toBe(true);
    }
    const view = JSON.parse((await lab.adminGet('back1', '/table')).body) as { allowedFronts: string[]; loadedAt: string | null };
    expect(view.allowedFronts).toEqual(['2001:db8:5::80/128', '192.0.2.80/32', '2001:db8:e1::/64']);
    expect(view.loadedAt).not.toBeNull();
    expect(logEvents(lab, 'back1', 'config_loaded')).toHaveLength(1); // the two later SIGHUPs: unchanged
    expect(logEvents(lab, 'back1', 'config_unchanged')).toHaveLength(2);
    expect(logEvents(lab, 'back2', 'config_unchanged')).toHaveLength(3);

    // An edit a running back cannot apply (tun.mtu) is refused, counted, and the settings in force stay.
    writeFileSync(file('back1.yaml'), readFileSync(file('back1.yaml'), 'utf8').replace('mtu: 1500', 'mtu: 1400').replace(', 2001:db8:e1::/64', ''));
    lab.serviceProcess('back1')!.kill('SIGHUP');
    await untilMetric(lab, 'back1', 'mslb_config_reloads_total', { result: 'failure' }, (v) => v === 1, 5000);
    expect(logEvents(lab, 'back1', 'config_rejected')[0]).toMatchObject({ trigger: 'SIGHUP', file: file('back1.yaml'), entry: 'tun', reason: expect.stringMatching(/restart the back/) });
    expect((JSON.parse((await lab.adminGet('back1', '/table')).body) as { allowedFronts: string[] }).allowedFronts).toHaveLength(3);

    const results = await Promise.all(streams.map((s) => s.stop()));
    console.log(`[faults-robust] streams through 9 SIGHUPs: ${JSON.stringify(results)}`);
    for (const s of results) {
      expect(s.sent).toBeGreaterThan(s.seconds * 40);
      expect(s.errors).toBe(0);
      expect(s.received, JSON.stringify(s)).toBe(s.sent);
    }
    for (const svc of ['front', 'back1', 'back2'] as const) expect(alive(svc), svc).toBe(true);
  }, 90_000);

  it('a back reload that changes addresses: the service label follows the config in force', async () => {
    const S6 = '2001:db8:5::80', S4 = '192.0.2.80', S4b = '192.0.2.81';
    const labelSet = async () => {
      const text = await lab.metrics('back1');
      return [...text.matchAll(/^mslb_service_packets_total\{service="([^"]+)"\} (\S+)$/gm)].map((m) => [m[1]!, Number(m[2])] as const);
    };
    expect((await lab.udp('c1v6')).ok).toBe(true); // c1v6 -> S6 goes through back1
    const before = new Map(await labelSet());
    expect([...before.keys()].sort()).toEqual([S4, S6].sort());
    expect(before.get(S6)).toBeGreaterThan(0);
    const ok0 = await reloads('back1', 'success');
    // 198.51.100.1 now restores another service: S4 leaves the label set, S4b joins it at 0
    writeFileSync(file('back1.yaml'), back1Text().replace(`service: ${S4}`, `service: ${S4b}`));
    lab.serviceProcess('back1')!.kill('SIGHUP');
    await untilMetric(lab, 'back1', 'mslb_config_reloads_total', { result: 'success' }, (v) => v === ok0 + 1, 5000);
    expect((await lab.udp('c1v6')).ok).toBe(true);
    const after = new Map(await labelSet());
    expect([...after.keys()].sort()).toEqual([S4b, S6].sort());
    expect(after.get(S4b)).toBe(0);
    expect(after.get(S6)).toBeGreaterThan(before.get(S6)!); // a kept service keeps its total and counts on
    expect(await lab.metric('back1', 'mslb_service_bytes_total', { service: S4 })).toBeNaN();
    // and back: S4 is exported again (from 0: a fresh series), S4b is gone
    writeFileSync(file('back1.yaml'), back1Text());
    lab.serviceProcess('back1')!.kill('SIGHUP');
    await untilMetric(lab, 'back1', 'mslb_config_reloads_total', { result: 'success' }, (v) => v === ok0 + 2, 5000);
    const again = new Map(await labelSet());
    expect([...again.keys()].sort()).toEqual([S4, S6].sort());
    expect(again.get(S4)).toBe(0);
    expect(alive('back1')).toBe(true);
  }, 30_000);

  it('a table with 120 YAML aliases SIGHUP\'d: front alive, old table serving, failure counted', async () => {
    const f0 = await reloads('front', 'failure');
    const good = readFileSync(file('table.yaml'), 'utf8');
    const aliases = `backs:
  b1: { addresses: { "2001:db8:5::80": 2001:db8:b::1, "192.0.2.80": 198.51.100.1 }, healthCheck: &id001 { url: "http://[2001:db8:e1::2]:9102/readyz" } }
${Array.from({ length: 120 }, (_, i) => `  c${i}: { addresses: { "2001:db8:5::80": 2001:db8:d::${(i + 1).toString(16)}, "192.0.2.80": 198.51.100.${i + 3} }, healthCheck: *id001 }`).join('\n')}
routes:
  - { source: ::/0, to: c1 }
`;
    writeFileSync(file('table.yaml'), aliases);
    lab.serviceProcess('front')!.kill('SIGHUP');
    await untilMetric(lab, 'front', 'mslb_config_reloads_total', { result: 'failure' }, (v) => v >= f0 + 1, 5000);
    await sleep(500);
    expect(alive('front')).toBe(true);
    const rej = logEvents(lab, 'front', 'table_rejected').find((e) => e.trigger === 'SIGHUP');
    expect(rej).toMatchObject({ file: file('table.yaml'), reason: expect.stringMatching(/more than 100 YAML aliases/) });
    expect(lab.serviceLog('front')).not.toMatch(/ReferenceError|\n\s+at /);
    for (const c of ['c1v6', 'c2v6', 'c1v4', 'c2v4'] as const) {
      expect((await curlFrom(lab, CLIENTS[c].address)).server, c).toBe(lab.expectedServer(c));
    }
    writeFileSync(file('table.yaml'), good); // the file watch puts the same content back: unchanged
  }, 60_000);

  it('a worker that dies: /readyz 503 and mslb_workers below 2 meanwhile, then exit 1 with teardown', async () => {
    const ns = lab.ns.front;
    await lab.stopService('front');
    // Queue 1's worker ends itself 4 s after start (honoured because vitest runs with NODE_ENV=test).
    await lab.startService('front', file('front.yaml'), undefined, ['env', 'NODE_ENV=test', 'MSLB_TEST_WORKER_EXIT_AFTER_MS=4000', 'MSLB_TEST_WORKER_EXIT_QUEUE=1']);
    expect(await lab.metric('front', 'mslb_workers')).toBe(2);
    expect(lab.set.exec(ns, 'ip', ['-o', 'link', 'show'])).toContain('mslbf0');
    // A poller inside the namespace: /readyz and mslb_workers as fast as curl goes, until the admin is gone.
    const poll = lab.set.spawn(ns, 'sh', ['-c',
      'while :; do r=$(curl -s -m 1 -w " %{http_code}" http://[::1]:9101/readyz) || exit 0; ' +
      'w=$(curl -s -m 1 http://[::1]:9101/metrics | grep "^mslb_workers ") || true; echo "$r | $w"; done']);
    let out = '';
    poll.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    const p = lab.serviceProcess('front')!;
    await until(() => p.exitCode !== null || p.signalCode !== null, 15_000, 'front to exit after its worker died');
    await until(() => poll.exitCode !== null, 5000, 'poller done');
    expect(p.exitCode).toBe(1);
    const lines = out.trim().split('\n');
    const down = lines.filter((l) => / 503 \|/.test(l));
    console.log(`[faults-robust] ${lines.length} polls, ${down.length} while not ready; first: ${down[0]}`);
    expect(lines.some((l) => / 200 \| mslb_workers 2$/.test(l))).toBe(true);
    expect(down.length).toBeGreaterThan(0);
    expect(down[0]).toMatch(/worker 1 exited \(code 70\)|worker 1 not running/);
    expect(down.some((l) => /mslb_workers [01]$/.test(l))).toBe(true);
    const exited = logEvents(lab, 'front', 'worker_exited');
    expect(exited).toHaveLength(1);
    expect(exited[0]).toMatchObject({ level: 'error', queue: 1, code: 70 });
    expect(logEvents(lab, 'front', 'service_stopped')).toHaveLength(1);
    // Teardown ran: the TUN and the routes through it are gone.
    expect(lab.set.exec(ns, 'ip', ['-o', 'link', 'show'])).not.toContain('mslbf0');
    expect(lab.set.exec(ns, 'ip', ['-6', 'route', 'show'])).not.toContain('2001:db8:5::80');
    // A supervisor's restart (no hook) comes up clean and serves.
    await lab.stopService('front');
    await lab.startService('front', file('front.yaml'));
    expect((await curlFrom(lab, CLIENTS.c1v6.address)).server).toBe('server1');
  }, 90_000);

  for (const [kind, event] of [['uncaught', 'uncaught_exception'], ['rejection', 'unhandled_rejection']] as const) {
    it(`an ${event.replace('_', ' ')} on the main thread: teardown, then exit 1`, async () => {
      const ns = lab.ns.back2;
      await lab.stopService('back2');
      await lab.startService('back2', 'deploy/lab/back2.yaml', undefined, ['env', 'NODE_ENV=test', `MSLB_TEST_FAULT=${kind}`, 'MSLB_TEST_FAULT_AFTER_MS=3000']);
      expect(lab.set.exec(ns, 'ip', ['-o', 'link', 'show'])).toContain('mslbb0');
      const p = lab.serviceProcess('back2')!;
      await until(() => p.exitCode !== null || p.signalCode !== null, 15_000, 'back2 to exit after the fault');
      expect(p.exitCode).toBe(1);
      expect(logEvents(lab, 'back2', event)[0]).toMatchObject({ level: 'error', reason: expect.stringMatching(/test fault/) });
      expect(logEvents(lab, 'back2', 'service_stopped')).toHaveLength(1);
      expect(lab.set.exec(ns, 'ip', ['-o', 'link', 'show'])).not.toContain('mslbb0');
      expect(lab.set.exec(ns, 'ip', ['-6', 'route', 'show'])).not.toContain('2001:db8:b::2');
      await lab.stopService('back2');
      await lab.startService('back2', 'deploy/lab/back2.yaml');
      expect((await curlFrom(lab, CLIENTS.c2v6.address)).server).toBe('server2');
    }, 60_000);
  }
});

// Faults around running services, each a test with its outcome, in one translate lab:
//   - back1 killed with SIGKILL (no cleanup runs): the kernel removes its TUN and the routes on it
//     with the last fd; back1's clients fail, back2's do not notice; a restart comes up clean (same
//     links, routes and rules as before, nothing doubled) and back1's clients work again.
//   - the front stopped with SIGTERM: exits 0 having removed its TUN and routes, and a new start
//     comes up clean and carries traffic.
//   - the TUN device deleted under a running service (`ip link del`): documented behaviour — the
//     worker's queue reports a device error, the service logs `tun_device_error` with the reason
//     and exits 1 (a supervisor restarts it); it does not keep running without a device.
//   - the table file deleted, then made unreadable (front running as nobody with CAP_NET_ADMIN, so
//     permissions apply): the old table keeps serving, each reload is counted as a failure in
//     mslb_config_reloads_total{result="failure"}, and the log says which file and why.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, copyFileSync, mkdtempSync, rmSync, unlinkSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isRoot } from '../helpers/netns.js';
import { Lab, BACK_CONFIGS, FRONT_CONFIGS, S4, S6, type ClientName } from '../helpers/lab.js';
import { makeTunNode, unprivilegedWrapper } from '../../lab/least-privilege.js';
import { waitFor } from '../../lab/netns.js';
import { repoRoot } from '../../lab/paths.js';

describe.skipIf(!isRoot())('faults: killed, restarted and deleted things around running services', () => {
  let lab: Lab;
  let dir: string;

  /** Links, routes and policy rules of a namespace, as text (for before/after comparisons). */
  function netState(ns: string): string {
    const links = lab.set.exec(ns, 'ip', ['-o', 'link', 'show']).split('\n').map((l) => l.replace(/^\d+:\s*/, '').replace(/\s+link\/.*$/, '').replace(/\s+(qdisc|state|mode|group|qlen)\s+\S+/g, '')).filter(Boolean).sort();
    const routes = [...lab.set.exec(ns, 'ip', ['-6', 'route', 'show']).split('\n'), ...lab.set.exec(ns, 'ip', ['-4', 'route', 'show']).split('\n')].map((l) => l.replace(/\s+(proto|metric|pref|expires)\s+\S+/g, '').trim()).filter(Boolean).sort();
    const rules = [...lab.set.exec(ns, 'ip', ['-6', 'rule', 'show']).split('\n'), ...lab.set.exec(ns, 'ip', ['-4', 'rule', 'show']).split('\n')].map((l) => l.trim()).filter(Boolean).sort();
    return [...links, '--', ...routes, '--', ...rules].join('\n');
  }

  async function works(c: ClientName, timeoutMs = 3000): Promise<boolean> {
    const r = await lab.curl(c, { timeoutMs });
    return r.ok && r.server === lab.expectedServer(c);
  }

  async function exited(name: 'front' | 'back1' | 'back2', timeoutMs: number): Promise<{ code: number | null; signal: string | null }> {
    const p = lab.serviceProcess(name)!;
    await waitFor(() => p.exitCode !== null || p.signalCode !== null, timeoutMs, `${name} to exit`);
    return { code: p.exitCode, signal: p.signalCode };
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mslb-faults-'));
    chmodSync(dir, 0o755);
    lab = await Lab.start({ mode: 'translate' });
  }, 120_000);

  afterAll(async () => {
    await lab?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('back1 killed with SIGKILL: its clients fail, back2 carries on, a restart comes up clean and serves again', async () => {
    expect(await works('c1v6')).toBe(true);
    expect(await works('c2v6')).toBe(true);
    const ns = lab.ns.back1;
    const before = netState(ns);
    expect(before).toContain('mslbb0');
    lab.serviceProcess('back1')!.kill('SIGKILL');
    expect(await exited('back1', 5000)).toEqual({ code: null, signal: 'SIGKILL' });
    // The kernel removed the (non-persistent) TUN with its last fd, and the routes through it.
    await waitFor(() => !netState(ns).includes('mslbb0'), 3000, 'back1 TUN gone');
    expect(netState(ns)).not.toMatch(/2001:db8:b::1|198\.51\.100\.1 /);
    expect(await works('c1v6', 1500)).toBe(false);
    expect(await works('c1v4', 1500)).toBe(false);
    expect(await works('c2v6')).toBe(true);
    expect(await works('c2v4')).toBe(true);
    await lab.stopService('back1'); // forget the dead process
    await lab.startService('back1', BACK_CONFIGS.back1);
    expect(netState(ns)).toBe(before);
    for (const c of ['c1v6', 'c1v4', 'c2v6', 'c2v4'] as const) expect(await works(c), c).toBe(true);
  }, 90_000);

  it('front stopped with SIGTERM: exits 0 having removed its TUN and routes; a new start is clean and serves', async () => {
    const ns = lab.ns.front;
    const before = netState(ns);
    expect(before).toContain('mslbf0');
    expect(before).toMatch(new RegExp(`${S6.replace(/[.:]/g, '\\$&')} dev mslbf0`));
    const code = await lab.stopService('front');
    expect(code).toBe(0);
    const after = netState(ns);
    expect(after).not.toContain('mslbf0');
    expect(after).not.toContain(S6);
    expect(after).not.toContain(`${S4} `);
    expect(await works('c1v6', 1500)).toBe(false);
    await lab.startService('front', FRONT_CONFIGS.translate);
    expect(netState(ns)).toBe(before);
    for (const c of ['c1v6', 'c1v4', 'c2v6', 'c2v4'] as const) expect(await works(c), c).toBe(true);
  }, 90_000);

  it('the TUN device deleted under a running back: it logs tun_device_error and exits 1; a restart serves again', async () => {
    const ns = lab.ns.back2;
    const before = netState(ns);
    lab.set.exec(ns, 'ip', ['link', 'del', 'mslbb0']);
    const r = await exited('back2', 10_000);
    expect(r).toEqual({ code: 1, signal: null });
    const log = lab.serviceLog('back2');
    const line = log.split('\n').find((l) => l.includes('"tun_device_error"'));
    expect(line, log.slice(-2000)).toBeDefined();
    expect(JSON.parse(line!)).toMatchObject({ level: 'error', event: 'tun_device_error' });
    console.log(`TUN deleted under back2: exit ${r.code}, log: ${line}`);
    expect(netState(ns)).not.toContain('mslbb0');
    expect(await works('c2v6', 1500)).toBe(false);
    await lab.stopService('back2');
    await lab.startService('back2', BACK_CONFIGS.back2);
    expect(netState(ns)).toBe(before);
    expect(await works('c2v6')).toBe(true);
    expect(await works('c2v4')).toBe(true);
  }, 90_000);

  it('the table file deleted, then made unreadable: the old table keeps serving, each reload counts a failure, the log says why', async () => {
    // The front runs as nobody with CAP_NET_ADMIN (as deployed), from a copy of its config and
    // table in a directory of ours, so permissions apply and deploy/lab is never touched.
    const cfg = join(dir, 'front.yaml');
    const table = join(dir, 'table.yaml');
    writeFileSync(cfg, readFileSync(join(repoRoot(), FRONT_CONFIGS.translate), 'utf8'));
    copyFileSync(join(repoRoot(), 'deploy/lab/table.yaml'), table);
    chmodSync(cfg, 0o644);
    chmodSync(table, 0o644);
    const tunNode = makeTunNode(dir, 0o666);
    await lab.stopService('front');
    await lab.startService('front', cfg, undefined, unprivilegedWrapper({ tunNode }));
    for (const c of ['c1v6', 'c2v4'] as const) expect(await works(c), c).toBe(true);
    const failures = () => lab.metric('front', 'mslb_config_reloads_total', { result: 'failure' });
    const rejected = () => lab.serviceLog('front').split('\n').filter((l) => l.includes('"table_rejected"')).map((l) => JSON.parse(l) as { file: string; reason: string; trigger: string });
    const f0 = await failures();

    // 1. deleted: the directory watch notices, the reload fails once
    unlinkSync(table);
    await waitFor(async () => (await failures()) === f0 + 1, 8000, 'reload failure after delete');
    const gone = rejected().at(-1)!;
    expect(gone).toMatchObject({ file: table, trigger: 'file_change' });
    expect(gone.reason).toMatch(/ENOENT/);
    for (const c of ['c1v6', 'c1v4', 'c2v6', 'c2v4'] as const) expect(await works(c), `${c} with the table deleted`).toBe(true);
    // SIGHUP while it is gone: one more failure, still serving
    lab.serviceProcess('front')!.kill('SIGHUP');
    await waitFor(async () => (await failures()) === f0 + 2, 5000, 'reload failure after SIGHUP');
    expect(rejected().at(-1)).toMatchObject({ trigger: 'SIGHUP' });
    const body = JSON.parse((await lab.adminGet('front', '/table')).body) as { routes: unknown[] };
    expect(body.routes.length).toBe(4);

    // 2. back, but unreadable by the service's user
    copyFileSync(join(repoRoot(), 'deploy/lab/table.yaml'), table);
    chmodSync(table, 0o000);
    lab.serviceProcess('front')!.kill('SIGHUP');
    await waitFor(async () => (await failures()) >= f0 + 3, 5000, 'reload failure when unreadable');
    const denied = rejected().at(-1)!;
    expect(denied.file).toBe(table);
    expect(denied.reason).toMatch(/EACCES|permission denied/i);
    console.log(`table deleted: ${JSON.stringify(gone)}\ntable unreadable: ${JSON.stringify(denied)}`);
    for (const c of ['c1v6', 'c1v4', 'c2v6', 'c2v4'] as const) expect(await works(c), `${c} with the table unreadable`).toBe(true);
    expect(lab.serviceProcess('front')!.exitCode).toBeNull();

    // 3. readable again: the next reload succeeds
    const ok0 = await lab.metric('front', 'mslb_config_reloads_total', { result: 'success' });
    chmodSync(table, 0o644);
    lab.serviceProcess('front')!.kill('SIGHUP');
    await waitFor(async () => (await lab.metric('front', 'mslb_config_reloads_total', { result: 'success' })) > ok0, 5000, 'reload success');
    expect(await works('c1v6')).toBe(true);
  }, 120_000);
});

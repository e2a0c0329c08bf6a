// The operator's commands against a running front (two workers) in the lab: `mslb flows` lists the
// flows its clients pinned, `mslb lookup --admin` answers with the live decision, the matched route
// and the pins of that source; `mslb reload` exits 1 naming the error on a broken table (the old one
// keeps serving, mslb_config_last_reload_successful 0) and 0 on a good one (gauge 1, the
// mslb_table_info hash is the one reload printed); with back1 stopped, the live lookup shows b1 down
// (health checks with durations in the table) and fail-open where b1 is the only back of a route.
// Needs root and `npm run build`.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isRoot } from '../helpers/netns.js';
import { CLIENTS, LINKS, Lab } from '../helpers/lab.js';
import { curlFrom, until } from '../helpers/ops.js';

const CLI = fileURLToPath(new URL('../../dist/cli/mslb.js', import.meta.url));
const ADMIN = '[::1]:9101';
const FRONT = `tun: { name: mslbf0, mtu: 1500, queues: 2, routes: [2001:db8:5::80/128, 192.0.2.80/32] }
services: [2001:db8:5::80, 192.0.2.80]
table: ./table.yaml
mode: translate
admin: { listen: "${ADMIN}" }
`;
const GOOD = `backs:
  b1:
    addresses: { "2001:db8:5::80": "2001:db8:b::1", "192.0.2.80": "198.51.100.1" }
    healthCheck: { url: "http://[${LINKS.back1.v6[1]}]:9102/readyz", interval: 500ms, timeout: 400ms, fall: 2 }
  b2:
    addresses: { "2001:db8:5::80": "2001:db8:b::2", "192.0.2.80": "198.51.100.2" }
    healthCheck: { url: "http://[${LINKS.back2.v6[1]}]:9103/readyz", interval: 500ms, timeout: 400ms, fall: 2 }
pools:
  web: { members: [b1, b2], key: label }
routes:
  - { source: 2001:db8:c1::/48, to: b1 }
  - { source: 2001:db8:c2::/48, to: b2 }
  - { source: 203.0.113.0/26, to: b1 }
  - { source: 203.0.113.64/26, to: b2 }
  - { source: ::/0, to: web }
`;
const BROKEN = GOOD.replace('{ source: 2001:db8:c2::/48, to: b2 }', '{ source: 2001:db8:c2::/48, to: b9 }');
const MOVED = GOOD.replace('{ source: 2001:db8:c1::/48, to: b1 }', '{ source: 2001:db8:c1::/48, to: b2 }');

describe.skipIf(!isRoot())('mslb flows / lookup --admin / reload against a running front', () => {
  let lab: Lab;
  let dir = '';
  let table = '';

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mslb-ops-cli-'));
    table = join(dir, 'table.yaml');
    writeFileSync(join(dir, 'front.yaml'), FRONT);
    writeFileSync(table, GOOD);
    lab = await Lab.start({ mode: 'translate', frontConfig: join(dir, 'front.yaml') });
  }, 90_000);
  afterAll(async () => {
    await lab?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  /** The CLI inside the front's namespace (the admin server listens on its loopback). */
  const mslb = (...args: string[]) => lab.set.run(lab.ns.front, process.execPath, [CLI, ...args], { timeoutMs: 20_000 });
  const gauge = () => lab.metric('front', 'mslb_config_last_reload_successful');

  it('lists pinned flows and answers lookups with the live decision and the pins', async () => {
    const c1 = CLIENTS.c1v6.address;
    for (let i = 0; i < 3; i++) expect((await curlFrom(lab, c1)).server).toBe('server1');
    const all = await mslb('flows', '--admin', ADMIN, '--json');
    expect(all.code, all.stderr).toBe(0);
    const j = JSON.parse(all.stdout) as { workers: number; matched: number; flows: { src: string; dst: string; dport: number; back: string; proto: number }[] };
    expect(j.workers).toBe(2);
    const mine = j.flows.filter((f) => f.src === c1);
    expect(mine.length).toBeGreaterThanOrEqual(3);
    for (const f of mine) expect(f).toMatchObject({ dst: '2001:db8:5::80', dport: 80, proto: 6, back: 'b1' });
    const none = await mslb('flows', '--admin', ADMIN, '--back', 'b2', '--json');
    expect(JSON.parse(none.stdout).flows.filter((f: { src: string }) => f.src === c1)).toEqual([]);
    const text = await mslb('flows', '--admin', ADMIN, '--back', 'b1', '--limit', '1');
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^tcp \[2001:db8:c1::\S+\]:\d+ -> \[2001:db8:5::80\]:80 back b1 idle /m);
    expect(text.stdout).toMatch(/^1 shown of \d+ matching/m);
    const unknown = await mslb('flows', '--admin', ADMIN, '--back', 'nope');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/unknown back "nope"/);

    const l = await mslb('lookup', '--admin', ADMIN, '--src', c1, '--json');
    expect(l.code, l.stderr).toBe(0);
    const r = JSON.parse(l.stdout);
    expect(r).toMatchObject({ live: true, action: 'forward', back: 'b1', address: '2001:db8:b::1', route: { source: '2001:db8:c1::/48', to: 'b1' }, down: [], failOpen: false });
    expect(r.pins.length).toBeGreaterThanOrEqual(3);
    const lt = await mslb('lookup', '--admin', ADMIN, '--src', '2001:db8:99::1', '--flow-label', '7');
    expect(lt.stdout).toMatch(/^back b[12] address 2001:db8:b::[12] mode translate reason flow_label via pool:web route ::\/0; members b1\(weight 1, up\) b2\(weight 1, up\)$/m);
    const bad = await mslb('lookup', '--admin', ADMIN, '--src', 'nope');
    expect(bad.code).toBe(2);
  }, 60_000);

  it('mslb reload exits 1 naming the error on a broken table, 0 on a good one', async () => {
    expect(await gauge()).toBe(1);
    const hash0 = JSON.parse((await lab.adminGet('front', '/table')).body).hash as string;
    expect(await lab.metric('front', 'mslb_table_info', { hash: hash0 })).toBe(1);

    writeFileSync(table, BROKEN);
    const rej = await mslb('reload', '--admin', ADMIN);
    expect(rej.code).toBe(1);
    expect(rej.stderr).toMatch(/^reload rejected/m);
    expect(rej.stderr).toContain(`${table}: routes[1].to: unknown back or pool "b9"`);
    expect(await gauge()).toBe(0);
    expect((await curlFrom(lab, CLIENTS.c2v6.address)).server).toBe('server2'); // the old table serves

    writeFileSync(table, MOVED);
    const ok = await mslb('reload', '--config', join(dir, 'front.yaml'), '--json');
    expect(ok.code, ok.stderr).toBe(0);
    const body = JSON.parse(ok.stdout) as { result: string; hash: string };
    // the file watcher may have installed it first: then the reload finds it in force already
    expect(['installed', 'unchanged']).toContain(body.result);
    expect(body.hash).not.toBe(hash0);
    expect(await gauge()).toBe(1);
    expect(await lab.metric('front', 'mslb_table_info', { hash: body.hash })).toBe(1);
    expect(await lab.metric('front', 'mslb_table_info')).toBe(1); // one series: the table in force
    expect((await curlFrom(lab, CLIENTS.c1v6.address)).server).toBe('server2');

    const again = await mslb('reload', '--admin', ADMIN);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/^reload unchanged: .* hash [0-9a-f]{16}$/m);
  }, 60_000);

  it('lookup --admin shows the front\'s live health: a stopped back is down, fail-open where it is alone', async () => {
    const before = JSON.parse((await mslb('lookup', '--admin', ADMIN, '--src', CLIENTS.c1v6.address, '--json')).stdout);
    expect(before).toMatchObject({ down: [], failOpen: false });
    await lab.stopService('back1');
    await until(async () => JSON.parse((await mslb('lookup', '--admin', ADMIN, '--src', '2001:db8:99::1', '--json')).stdout).down.includes('b1'), 15_000, 'b1 seen down', 200);
    // ::/0 -> pool web: the live decision avoids b1
    for (const label of ['1', '2', '3', '4']) {
      const r = JSON.parse((await mslb('lookup', '--admin', ADMIN, '--src', '2001:db8:99::1', '--flow-label', label, '--json')).stdout);
      expect(r).toMatchObject({ back: 'b2', pool: 'web', failOpen: false, down: ['b1'] });
      expect(r.members).toEqual([{ back: 'b1', weight: 1, draining: false, up: false }, { back: 'b2', weight: 1, draining: false, up: true }]);
    }
    // MOVED is in force: client prefix 1 -> b2; prefix 203.0.113.0/26 -> b1 alone: fail-open
    const alone = await mslb('lookup', '--admin', ADMIN, '--src', CLIENTS.c1v4.address);
    expect(alone.stdout).toMatch(/^back b1 .* via back:b1 route 203\.0\.113\.0\/26; fail-open: every member is down \(b1\), health ignored; down: b1$/m);
  }, 60_000);
});

// Command-line conventions of every command (SPEC 7): --help on stdout with exit 0, --version,
// unknown flags exit 2 naming the flag, lookup's JSON/fail-open/prefix, and clear errors when a
// back config or a table is passed where a front config is expected.
import { describe, it, expect } from 'vitest';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { main } from '../../cli/mslb.js';
import { startAdminServer } from '../../shared/admin/admin-server.js';
import { reloadRoute, type ReloadAnswer } from '../../shared/admin/reload-route.js';
import { ServiceMetrics } from '../../shared/metrics/registry.js';
import { parseServiceArgs } from '../../shared/engine/service-args.js';
import { MSLB_VERSION } from '../../shared/version.js';

const ex = (f: string) => fileURLToPath(new URL(`../../deploy/examples/${f}`, import.meta.url));
const root = fileURLToPath(new URL('../../', import.meta.url));
const pkgVersion = (JSON.parse(readFileSync(`${root}package.json`, 'utf8')) as { version: string }).version;

/** A port nothing listens on (bound, then closed). */
function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

async function run(...argv: string[]) {
  const out: string[] = [], err: string[] = [];
  const code = await main(argv, { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out, err };
}

describe('mslb command-line conventions', () => {
  it('--help and -h print usage on stdout and exit 0, for mslb and each command', async () => {
    for (const argv of [['--help'], ['-h'], ['check', '--help'], ['lookup', '-h'], ['flows', '--help'], ['reload', '--help']]) {
      const r = await run(...argv);
      expect(r.code, argv.join(' ')).toBe(0);
      expect(r.out[0], argv.join(' ')).toMatch(/^usage:/);
      expect(r.err).toEqual([]);
    }
  });

  it('--version on every command prints package.json\'s version', async () => {
    expect(MSLB_VERSION).toBe(pkgVersion);
    for (const argv of [['--version'], ['check', '--version'], ['lookup', '--version'], ['reload', '--version']]) {
      const r = await run(...argv);
      expect(r.code).toBe(0);
      expect(r.out).toEqual([`mslb ${pkgVersion}`]);
    }
  });

  it('an unknown flag exits 2 naming it and never takes the next argument as its value', async () => {
    const r = await run('check', '--bogus', ex('front.yaml'));
    expect(r.code).toBe(2);
    expect(r.err[0]).toBe('mslb check: unknown option --bogus');
    const l = await run('lookup', '--config', ex('front.yaml'), '--src', '2001:db8::1', '--frob');
    expect(l.code).toBe(2);
    expect(l.err[0]).toBe('mslb lookup: unknown option --frob');
    const v = await run('lookup', '--config', '--src', '2001:db8::1');
    expect(v.code).toBe(2);
    expect(v.err[0]).toBe('mslb lookup: --config needs a value');
    expect((await run('frobnicate')).code).toBe(2);
    expect((await run()).code).toBe(2);
    expect((await run('lookup', '--config', ex('front.yaml'), '--src', '2001:db8::1', 'stray')).err[0]).toMatch(/unexpected argument stray/);
  });

  it('lookup --json prints one object with back, address, mode, reason, pool, route, members', async () => {
    const r = await run('lookup', '--config', ex('front.yaml'), '--src', '2001:db8:99::1', '--flow-label', '12345', '--json');
    expect(r.code).toBe(0);
    expect(r.out).toHaveLength(1);
    const j = JSON.parse(r.out[0]!);
    expect(j).toMatchObject({ action: 'forward', reason: 'flow_label', mode: 'translate', pool: 'web', route: { source: '::/0', to: 'web' }, failOpen: false, down: [] });
    expect(['b1', 'b2']).toContain(j.back);
    expect(j.address).toBe(j.back === 'b1' ? '2001:db8:b::1' : '2001:db8:b::2');
    expect(j.members).toEqual([{ back: 'b1', weight: 1, draining: false, up: true }, { back: 'b2', weight: 1, draining: false, up: true }]);
    const direct = JSON.parse((await run('lookup', '--config', ex('front.yaml'), '--src', '203.0.113.9', '--json')).out[0]!);
    expect(direct).toMatchObject({ back: 'b1', address: '198.51.100.1', pool: null, route: { source: '203.0.113.0/26', to: 'b1' } });
  });

  it('lookup --down shows fail-open when every member is down, and a partial outage without it', async () => {
    const all = await run('lookup', '--config', ex('front.yaml'), '--src', '2001:db8:99::1', '--flow-label', '7', '--down', 'b1,b2');
    expect(all.code).toBe(0);
    expect(all.out[0]).toMatch(/via pool:web route ::\/0; fail-open: every member is down \(b1, b2\), health ignored;.*down: b1, b2$/);
    const j = JSON.parse((await run('lookup', '--config', ex('front.yaml'), '--src', '2001:db8:99::1', '--flow-label', '7', '--down', 'b1,b2', '--json')).out[0]!);
    expect(j.failOpen).toBe(true);
    expect(j.down).toEqual(['b1', 'b2']);
    const one = JSON.parse((await run('lookup', '--config', ex('front.yaml'), '--src', '2001:db8:99::1', '--flow-label', '7', '--down', 'b1', '--json')).out[0]!);
    expect(one).toMatchObject({ back: 'b2', failOpen: false, down: ['b1'] });
    expect((await run('lookup', '--config', ex('front.yaml'), '--src', '2001:db8:99::1', '--down', 'nope')).code).toBe(2);
  });

  it('a back config or a table where a front config is expected: one clear line, exit 1', async () => {
    const b = await run('lookup', '--config', ex('back.yaml'), '--src', '2001:db8::1');
    expect(b.code).toBe(1);
    expect(b.err).toHaveLength(1);
    expect(b.err[0]).toMatch(/back\.yaml: this is a back config \(it has addresses\/allowedFronts\); expected the front's config \(services, table\) for --config$/);
    const t = await run('lookup', '--config', ex('table.yaml'), '--src', '2001:db8::1');
    expect(t.code).toBe(1);
    expect(t.err).toHaveLength(1);
    expect(t.err[0]).toMatch(/table\.yaml: this is a table file/);
    const c = await run('check', '--config', ex('back.yaml'), ex('table.yaml'));
    expect(c.code).toBe(1);
    expect(c.err).toHaveLength(1);
  });

  it('flows and reload need an admin address (usage error otherwise) and report an unreachable one', async () => {
    expect((await run('flows')).code).toBe(2);
    expect((await run('reload')).code).toBe(2);
    expect((await run('reload', '--admin', '[::1]:1', '--config', ex('front.yaml'))).code).toBe(2);
    const port = await freePort();
    const r = await run('reload', '--admin', `127.0.0.1:${port}`);
    expect(r.code).toBe(1);
    expect(r.err[0]).toBe(`mslb reload: http://127.0.0.1:${port}/reload: ECONNREFUSED`);
  });
});

describe('mslb reload exit codes', () => {
  it('0 when applied or unchanged, 1 with every error when rejected, 1 when the service has no /reload', async () => {
    let next: ReloadAnswer = { outcome: 'installed', file: '/etc/mslb/table.yaml', errors: [], hash: '0123456789abcdef' };
    const metrics = new ServiceMetrics({ role: 'front', sources: { blocks: () => [] } });
    const common = { listen: '127.0.0.1:0', metrics, ready: () => ({ ready: true }), table: () => ({}) };
    const withRoute = await startAdminServer({ ...common, routes: { '/reload': reloadRoute(() => next) } });
    const without = await startAdminServer(common);
    try {
      const admin = `127.0.0.1:${withRoute.address()!.port}`;
      const ok = await run('reload', '--admin', admin);
      expect(ok).toEqual({ code: 0, out: ['reload installed: /etc/mslb/table.yaml hash 0123456789abcdef'], err: [] });
      next = { outcome: 'unchanged', file: '/etc/mslb/table.yaml', errors: [] };
      expect((await run('reload', '--admin', admin)).code).toBe(0);
      next = { outcome: 'rejected', file: '/etc/mslb/table.yaml', errors: [
        { file: '/etc/mslb/table.yaml', entry: 'routes[1].to', reason: 'unknown back or pool "b9"' },
        { file: '/etc/mslb/table.yaml', entry: 'routes[2].source', reason: 'not a prefix' },
      ] };
      const bad = await run('reload', '--admin', admin);
      expect(bad.code).toBe(1);
      expect(bad.err).toEqual([
        `reload rejected (${admin}): /etc/mslb/table.yaml: 2 error(s); the previous one keeps serving`,
        '/etc/mslb/table.yaml: routes[1].to: unknown back or pool "b9"',
        '/etc/mslb/table.yaml: routes[2].source: not a prefix',
      ]);
      const json = await run('reload', '--admin', admin, '--json');
      expect(json.code).toBe(1);
      expect(JSON.parse(json.out[0]!)).toMatchObject({ result: 'rejected', errors: [{ entry: 'routes[1].to' }, { entry: 'routes[2].source' }] });
      const none = await run('reload', '--admin', `127.0.0.1:${without.address()!.port}`);
      expect(none.code).toBe(1);
      expect(none.err[0]).toMatch(/has no POST \/reload/);
    } finally {
      await withRoute.close();
      await without.close();
    }
  });
});

describe('mslb-front / mslb-back command line', () => {
  it('parses --config, --help, --version and refuses unknown flags and stray arguments', () => {
    expect(parseServiceArgs(['--config', 'f.yaml'], 'mslb-front', {})).toEqual({ kind: 'run', config: 'f.yaml' });
    expect(parseServiceArgs(['-c', 'f.yaml'], 'mslb-front', {})).toEqual({ kind: 'run', config: 'f.yaml' });
    expect(parseServiceArgs([], 'mslb-back', { MSLB_CONFIG: 'e.yaml' })).toEqual({ kind: 'run', config: 'e.yaml' });
    const h = parseServiceArgs(['--help'], 'mslb-back', {});
    expect(h).toMatchObject({ kind: 'exit', code: 0 });
    expect((h as { out: string }).out).toMatch(/^usage: mslb-back --config FILE/);
    expect(parseServiceArgs(['--version'], 'mslb-front', {})).toEqual({ kind: 'exit', code: 0, out: `mslb-front ${pkgVersion}` });
    const u = parseServiceArgs(['--bogus', 'f.yaml'], 'mslb-front', {});
    expect(u).toMatchObject({ kind: 'exit', code: 2 });
    expect((u as { err: string }).err.split('\n')[0]).toBe('mslb-front: unknown option --bogus');
    expect((parseServiceArgs(['--config'], 'mslb-front', {}) as { err: string }).err.split('\n')[0]).toBe('mslb-front: --config needs a value');
    expect((parseServiceArgs(['f.yaml'], 'mslb-front', {}) as { err: string }).err.split('\n')[0]).toBe('mslb-front: unexpected argument f.yaml');
    expect(parseServiceArgs([], 'mslb-front', {})).toMatchObject({ kind: 'exit', code: 2 });
  });

  it('the built bin files are executable with a node shebang and answer --help / --version', () => {
    for (const [bin, name] of [['dist/cli/mslb.js', 'mslb'], ['dist/front/main.js', 'mslb-front'], ['dist/back/main.js', 'mslb-back']] as const) {
      const f = `${root}${bin}`;
      expect(readFileSync(f, 'utf8').split('\n')[0]).toBe('#!/usr/bin/env node');
      expect(statSync(f).mode & 0o111, `${bin} executable`).toBe(0o111);
      const v = spawnSync(f, ['--version'], { encoding: 'utf8' });
      expect(v.status).toBe(0);
      expect(v.stdout.trim()).toBe(`${name} ${pkgVersion}`);
      const h = spawnSync(f, ['--help'], { encoding: 'utf8' });
      expect(h.status).toBe(0);
      expect(h.stdout).toMatch(/^usage: /);
      expect(h.stderr).toBe('');
      const bad = spawnSync(f, ['--bogus'], { encoding: 'utf8' });
      expect(bad.stdout).toBe('');
      expect(bad.status).toBe(2);
      expect(bad.stderr).toMatch(/unknown option --bogus/);
    }
  });

  it('a service given the other role\'s config or a table says so in one line (before touching anything)', () => {
    const front = spawnSync(`${root}dist/front/main.js`, ['--config', ex('back.yaml')], { encoding: 'utf8' });
    expect(front.status).toBe(1);
    expect(front.stderr.trim().split('\n')).toEqual([`mslb-front: ${ex('back.yaml')}: this is a back config (it has addresses/allowedFronts); expected the front's config (services, table)`]);
    const back = spawnSync(`${root}dist/back/main.js`, ['--config', ex('table.yaml')], { encoding: 'utf8' });
    expect(back.status).toBe(1);
    expect(back.stderr.trim().split('\n')).toEqual([`mslb-back: ${ex('table.yaml')}: this is a table file (it has backs/pools/routes); expected the back's config (addresses, allowedFronts)`]);
  });
});

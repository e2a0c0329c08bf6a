// SPEC 7 and 9: the services need CAP_NET_ADMIN and nothing more. The lab's front and backs run as
// `nobody` through setpriv with CAP_NET_ADMIN as their only capability (inheritable, ambient and
// bounding set) and carry the lab's traffic (HTTP, HTTPS, UDP from every client to the server its
// table names); SIGTERM removes what they added and exits 0. Without the capability, or without
// access to /dev/net/tun, a service exits non-zero with a sentence saying what it needs.
// Needs root (to build the lab and to drop privileges) and `npm run build`.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isRoot } from '../helpers/netns.js';
import { CLIENTS, CLIENT_NAMES, Lab, BACK_CONFIGS } from '../helpers/lab.js';
import { CAP_NET_ADMIN_MASK, makeTunNode, processPrivileges, unprivilegedWrapper } from '../../lab/least-privilege.js';
import { sh, waitFor } from '../../lab/netns.js';
import { repoRoot } from '../../lab/paths.js';

const NOBODY = Number(sh('id', ['-u', 'nobody']).trim());

describe.skipIf(!isRoot())('services as an unprivileged user with only CAP_NET_ADMIN', () => {
  let lab: Lab;
  let dir: string;
  let tunNode: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mslb-lp-'));
    tunNode = makeTunNode(dir, 0o666);
    lab = await Lab.start({ mode: 'translate', wrapper: unprivilegedWrapper({ tunNode }) });
  }, 90_000);
  afterAll(async () => {
    await lab?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  it('front and backs run as nobody holding CAP_NET_ADMIN and nothing else', () => {
    for (const name of ['front', 'back1', 'back2'] as const) {
      const pid = lab.serviceProcess(name)?.pid;
      expect(pid, name).toBeTypeOf('number');
      const p = processPrivileges(pid!);
      expect(p.uid, `${name} uid`).toBe(NOBODY);
      expect(p.uid).not.toBe(0);
      for (const set of [p.capEff, p.capPrm, p.capBnd, p.capAmb]) expect(set, `${name} caps`).toBe(CAP_NET_ADMIN_MASK);
    }
  });

  it('the lab traffic test passes: every client reaches the server its table says (HTTP, HTTPS, UDP)', async () => {
    for (const c of CLIENT_NAMES) {
      const want = lab.expectedServer(c);
      const addr = CLIENTS[c].address;
      expect(await lab.curl(c), `${c} http`).toMatchObject({ ok: true, server: want, sawSource: addr });
      expect(await lab.https(c), `${c} https`).toMatchObject({ ok: true, server: want, sawSource: addr });
      expect(await lab.udp(c), `${c} udp`).toMatchObject({ ok: true, server: want, sawSource: addr });
    }
    expect(await lab.metric('front', 'mslb_backend_packets_total', { backend: 'b1' })).toBeGreaterThan(0);
    expect(await lab.metric('front', 'mslb_backend_packets_total', { backend: 'b2' })).toBeGreaterThan(0);
  }, 60_000);

  it('CAP_NET_ADMIN is enough to write /proc/sys/net in the namespace (fresh namespace, nothing preset)', async () => {
    const ns = lab.set.add('lp-sysctl');
    const before = lab.set.exec(ns, 'sysctl', ['-n', 'net.ipv4.ip_forward', 'net.ipv6.conf.all.forwarding', 'net.ipv4.conf.default.rp_filter']);
    const [cmd, ...args] = [...unprivilegedWrapper({ tunNode }), process.execPath, join(repoRoot(), 'dist/back/main.js'), '--config', join(repoRoot(), BACK_CONFIGS.back1)];
    const p = lab.set.spawn(ns, cmd!, args);
    try {
      await waitFor(async () => {
        if (p.exitCode !== null) throw new Error(`back exited ${p.exitCode}`);
        return (await lab.set.run(ns, 'curl', ['-sf', '--max-time', '1', 'http://[::1]:9102/readyz'])).code === 0;
      }, 15_000, 'unprivileged back ready');
      expect(processPrivileges(p.pid!).uid).toBe(NOBODY);
      const after = lab.set.exec(ns, 'sysctl', ['-n', 'net.ipv4.ip_forward', 'net.ipv6.conf.all.forwarding', 'net.ipv4.conf.default.rp_filter', 'net.ipv4.conf.mslbb0.rp_filter']);
      expect(before.split('\n').slice(0, 2)).toEqual(['0', '0']);
      expect(after.trim().split('\n')).toEqual(['1', '1', '0', '0']);
    } finally {
      p.kill('SIGTERM');
      await new Promise((r) => (p.exitCode !== null ? r(null) : p.once('exit', r)));
    }
    // And it put them back on the way out.
    expect(lab.set.exec(ns, 'sysctl', ['-n', 'net.ipv4.ip_forward', 'net.ipv6.conf.all.forwarding'])).toBe(before.split('\n').slice(0, 2).join('\n') + '\n');
  }, 30_000);

  it('SIGTERM as the unprivileged user exits 0 and removes the TUN it created', async () => {
    const code = await lab.stopService('back2');
    expect(code).toBe(0);
    const links = sh('ip', ['-n', lab.ns.back2, '-o', 'link', 'show']);
    expect(links).not.toContain('mslbb0');
  }, 20_000);

  it('without CAP_NET_ADMIN the service exits with "needs CAP_NET_ADMIN"', async () => {
    const noCaps = unprivilegedWrapper({ tunNode, caps: [] });
    await expect(lab.startService('back2', BACK_CONFIGS.back2, undefined, noCaps)).rejects.toThrow(/exited \(1\) before ready/);
    expect(lab.serviceLog('back2')).toMatch(/mslb-back needs CAP_NET_ADMIN.*TUNSETIFF: Operation not permitted/);
    await lab.stopService('back2');
  }, 30_000);

  it('with CAP_NET_ADMIN but a /dev/net/tun it may not open, it says it needs access to /dev/net/tun', async () => {
    const closedNode = makeTunNode(mkdtempSync(join(dir, 'closed-')), 0o600);
    await expect(lab.startService('back2', BACK_CONFIGS.back2, undefined, unprivilegedWrapper({ tunNode: closedNode }))).rejects.toThrow(
      /exited \(1\) before ready/,
    );
    expect(lab.serviceLog('back2')).toMatch(/mslb-back needs read-write access to \/dev\/net\/tun/);
    await lab.stopService('back2');
    // And back again with the capability: the harness and the service are fine, only the privilege mattered.
    await lab.startService('back2', BACK_CONFIGS.back2);
    expect(await lab.curl('c2v6'), 'c2v6 after restart').toMatchObject({ ok: true, server: 'server2' });
  }, 40_000);
});

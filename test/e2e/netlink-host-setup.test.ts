// HostSetup against a real kernel: in a namespace this test creates, a child node process (inside the
// namespace, because the rtnetlink socket binds to the caller's namespace) configures veth links the
// way a service configures its TUN; `ip -n` checks that everything appears, then that teardown
// removed exactly what was added and restored the sysctls. Needs root and a built dist/.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isRoot, NetnsSet } from '../helpers/netns.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const fixture = fileURLToPath(new URL('./fixtures/netlink-host-setup.mjs', import.meta.url));
const built = `${root}dist/shared/netlink/host-setup.js`;

const spec = {
  tun: {
    name: 'd0',
    mtu: 1400,
    addresses: ['2001:db8:e0::1/64', '203.0.113.129/30'],
    routes: ['2001:db8:5::80/128', '192.0.2.80/32', '2001:db8:c1::/48', '198.51.100.0/24'],
    acceptLocal: true,
  },
  existingRoute: '203.0.113.0/26', // pre-created on d2: EEXIST, not ours
  existingAddress: '203.0.113.133/30', // pre-created on d0: EEXIST, not ours
  extraRoutes: [
    { dst: '192.0.2.0/24', dev: 'd0', table: 1000, metric: 10 },
    { dst: '2001:db8:5::/64', dev: 'd0', table: 100 },
  ],
  returnPath: { iif: 'srv0', dev: 'd0', table: 200, from: ['2001:db8:5::80/128', '192.0.2.80/32'] },
  sourceRule: { family: 6, from: '2001:db8:c2::/48', table: 300, priority: 900 },
  doomed: { name: 'd1', mtu: 1300, address: '198.51.100.9/32', route: '203.0.113.64/26' },
  toward: ['198.51.100.7', '2001:db8:77::5', '192.0.2.80'],
};

type Msg = Record<string, any>;

function readLines(p: ChildProcess): () => Promise<Msg> {
  const rl = createInterface({ input: p.stdout! });
  const queue: Msg[] = [];
  const waiters: ((m: Msg) => void)[] = [];
  rl.on('line', (l) => {
    let m: Msg;
    try {
      m = JSON.parse(l);
    } catch {
      m = { phase: 'noise', line: l };
    }
    const w = waiters.shift();
    if (w) w(m);
    else queue.push(m);
  });
  return () =>
    new Promise<Msg>((resolve, reject) => {
      const q = queue.shift();
      if (q) return resolve(q);
      const t = setTimeout(() => reject(new Error('fixture said nothing for 20 s')), 20_000);
      waiters.push((m) => {
        clearTimeout(t);
        resolve(m);
      });
    });
}

describe.skipIf(!isRoot())('netlink host setup (root, namespace)', () => {
  const nets = new NetnsSet();
  let ns = '';
  const ip = (line: string) => nets.ip(ns, line);
  // Snapshots for before/after comparison leave out the veth peers (their link-local address follows
  // carrier, a veth artifact) and d1, which the test deletes on purpose.
  const snap = (line: string) =>
    ip(line)
      .split('\n')
      .filter((l) => !/\b(d0p|d1p|d1)\b/.test(l))
      // Restoring d0's addr_gen_mode at teardown lets the kernel give it a fresh link-local address.
      .filter((l) => !/fe80::\S* dev d0\b|\bd0\b.*inet6 fe80::/.test(l))
      .join('\n');
  const sysctl = (key: string) => nets.exec(ns, 'cat', [`/proc/sys/${key.replaceAll('.', '/')}`]).trim();

  beforeAll(() => {
    if (!existsSync(built)) throw new Error(`${built} missing: run \`npx tsc -p tsconfig.json\` first (npm test does)`);
    ns = nets.add('nl');
    // No link-local DAD churn between the before/after snapshots.
    nets.sysctl(ns, 'net.ipv6.conf.all.accept_dad', 0);
    nets.sysctl(ns, 'net.ipv6.conf.default.accept_dad', 0);
    // This kernel has no dummy module: veth pairs inside the namespace stand in for the TUN. The peers
    // are up so that d0/d1/d2 have carrier once they are up themselves.
    for (const d of ['d0', 'd1', 'd2']) {
      ip(`link add ${d} type veth peer name ${d}p`);
      ip(`link set ${d}p up`);
    }
    ip('link set d2 mtu 9000');
    ip('link set d2 up');
    ip('route add 203.0.113.0/26 dev d2');
    ip('-6 route add 2001:db8:77::/64 dev d2 mtu lock 1280');
    ip('addr add 203.0.113.133/30 dev d0');
    nets.sysctl(ns, 'net.ipv4.conf.all.rp_filter', 1);
    nets.sysctl(ns, 'net.ipv4.conf.default.rp_filter', 1);
    nets.sysctl(ns, 'net.ipv4.conf.d0.rp_filter', 2);
    nets.sysctl(ns, 'net.ipv4.conf.d1.rp_filter', 1);
    nets.sysctl(ns, 'net.ipv4.ip_forward', 0);
    nets.sysctl(ns, 'net.ipv6.conf.all.forwarding', 0);
  });
  afterAll(() => nets.cleanup());

  it('sets up links, addresses, routes, rules and sysctls, and teardown undoes exactly that', async () => {
    const before = {
      addr: snap('-o addr show'),
      route4: snap('-4 route show table all'),
      route6: snap('-6 route show table all'),
      rule4: snap('-4 rule show'),
      rule6: snap('-6 rule show'),
    };
    const child = nets.spawn(ns, process.execPath, [fixture, JSON.stringify(spec)], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    const next = readLines(child);
    const ready = await next().catch((e) => {
      throw new Error(`${e.message}; stderr: ${stderr}`);
    });
    expect(ready.phase, JSON.stringify(ready) + stderr).toBe('ready');

    // --- what the child reported
    expect(ready.added).toEqual({ existingRoute: false, existingAddress: false });
    expect(ready.queries.linkMtu).toBe(1400);
    expect(ready.queries.linkUp).toBe(true);
    expect(ready.queries.toward['198.51.100.7']).toMatchObject({ ifname: 'd0', mtu: 1400, linkMtu: 1400 });
    expect(ready.queries.toward['2001:db8:77::5']).toMatchObject({ ifname: 'd2', mtu: 1280, linkMtu: 9000 });
    expect(ready.queries.toward['192.0.2.80']).toMatchObject({ ifname: 'd0', mtu: 1400 });
    expect(ready.missing).toMatchObject({ name: 'HostSetupError', op: 'getLink', arg: 'nosuchdev0', code: 'ENODEV', errno: 19 });
    expect(ready.missing.message).toContain('getLink nosuchdev0: ENODEV');
    expect(ready.badPrefix).toMatchObject({ op: 'addRoute', arg: '192.0.2.0/33', code: 'EINVAL' });

    // --- what the kernel has
    expect(ip('link show d0')).toMatch(/mtu 1400 .*state UNKNOWN|<[^>]*\bUP\b[^>]*>.*mtu 1400/);
    expect(ip('link show d1')).toMatch(/<[^>]*\bUP\b[^>]*> mtu 1300/);
    const addr0 = ip('-o addr show dev d0');
    expect(addr0).toContain('inet6 2001:db8:e0::1/64');
    expect(addr0).not.toMatch(/2001:db8:e0::1\/64.*tentative/);
    expect(addr0).toContain('inet 203.0.113.129/30');
    expect(ip('-o addr show dev d1')).toContain('inet 198.51.100.9/32');
    const r4 = ip('-4 route show table all');
    const r6 = ip('-6 route show table all');
    expect(r4).toMatch(/^192\.0\.2\.80 dev d0 proto static scope link/m);
    expect(r4).toMatch(/^198\.51\.100\.0\/24 dev d0 proto static scope link/m);
    expect(r4).toMatch(/^192\.0\.2\.0\/24 dev d0 table 1000 proto static scope link metric 10/m);
    expect(r4).toMatch(/^default dev d0 table 200 proto static scope link/m);
    expect(r4).toMatch(/^203\.0\.113\.0\/26 dev d2 scope link/m);
    expect(r4).toMatch(/^203\.0\.113\.64\/26 dev d1 proto static/m);
    expect(r6).toMatch(/^2001:db8:5::80 dev d0 proto static/m);
    expect(r6).toMatch(/^2001:db8:c1::\/48 dev d0 proto static/m);
    expect(r6).toMatch(/^2001:db8:5::\/64 dev d0 table 100 proto static/m);
    expect(r6).toMatch(/^default dev d0 table 200 proto static/m);
    expect(ip('-4 rule show')).toMatch(/^1000:\s+from 192\.0\.2\.80 iif srv0 \[detached\] lookup 200/m);
    expect(ip('-6 rule show')).toMatch(/^1000:\s+from 2001:db8:5::80 iif srv0 \[detached\] lookup 200/m);
    expect(ip('-6 rule show')).toMatch(/^900:\s+from 2001:db8:c2::\/48 lookup 300/m);
    expect(sysctl('net.ipv4.ip_forward')).toBe('1');
    expect(sysctl('net.ipv6.conf.all.forwarding')).toBe('1');
    // strict all -> loose (never 0), default untouched: the host's other interfaces keep a check
    expect(sysctl('net.ipv4.conf.all.rp_filter')).toBe('2');
    expect(sysctl('net.ipv4.conf.default.rp_filter')).toBe('1');
    expect(sysctl('net.ipv4.conf.d0.rp_filter')).toBe('0');
    expect(sysctl('net.ipv4.conf.d0.accept_local')).toBe('1');
    expect(sysctl('net.ipv4.conf.d1.rp_filter')).toBe('0');

    // A device that disappears before teardown (a closed TUN): its undo steps must not fail.
    ip('link del d1');
    child.stdin!.write('teardown\n');
    const done = await next();
    expect(done.phase).toBe('done');
    expect(done.errors).toEqual([]);
    expect(done.second).toBe(0);
    expect(done.recordedAfter).toBe(0);

    // --- everything ours is gone, everything else is as before
    expect(ip('link show d0')).not.toMatch(/<[^>]*\bUP\b/);
    expect(ip('link show d0')).toMatch(/mtu 1500/);
    expect(snap('-o addr show')).toBe(before.addr);
    expect(snap('-4 route show table all')).toBe(before.route4);
    expect(snap('-6 route show table all')).toBe(before.route6);
    expect(snap('-4 rule show')).toBe(before.rule4);
    expect(snap('-6 rule show')).toBe(before.rule6);
    expect(ip('-o addr show dev d0')).toContain('inet 203.0.113.133/30');
    expect(ip('-4 route show')).toMatch(/^203\.0\.113\.0\/26 dev d2/m);
    expect(sysctl('net.ipv4.ip_forward')).toBe('0');
    expect(sysctl('net.ipv6.conf.all.forwarding')).toBe('0');
    expect(sysctl('net.ipv4.conf.all.rp_filter')).toBe('1');
    expect(sysctl('net.ipv4.conf.default.rp_filter')).toBe('1');
    expect(sysctl('net.ipv4.conf.d0.rp_filter')).toBe('2');
    expect(sysctl('net.ipv4.conf.d0.accept_local')).toBe('0');
  }, 60_000);
});

// deploy/Dockerfile's runtime, exercised without a container engine (there is none here): the
// conditions `docker run --cap-add NET_ADMIN --device /dev/net/tun --sysctl ...` gives the image's
// non-root user (lab/container-sim.ts: own netns and mount namespace, 0666 TUN node, read-only
// /proc/sys, preset sysctls, NET_ADMIN only in the bounding set, the entrypoint exec'ing a node with
// the file capability cap_net_admin=ep). The services start, the image's HEALTHCHECK script passes,
// SIGTERM exits 0; a missing --cap-add, no-new-privileges or missing sysctl presets each end in
// one line that says what to add.
// Needs root, setcap (libcap2-bin) and `npm run build`.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isRoot, NetnsSet } from '../helpers/netns.js';
import { containerArgv, containerSysctls, stageImage, type ContainerImage, type ContainerRun } from '../../lab/container-sim.js';
import { CAP_NET_ADMIN_MASK, processPrivileges } from '../../lab/least-privilege.js';
import { waitFor } from '../../lab/netns.js';
import { repoRoot } from '../../lab/paths.js';

const root = repoRoot();
const BACK = join(root, 'deploy/lab/back1.yaml');
const FRONT = join(root, 'deploy/lab/front-translate.yaml');

interface Started {
  proc: ChildProcess;
  out: () => string;
  exited: Promise<number | null>;
}

describe.skipIf(!isRoot())('container runtime conditions (deploy/Dockerfile, entrypoint, healthcheck)', () => {
  const set = new NetnsSet();
  let dir: string;
  let image: ContainerImage;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'mslb-image-'));
    image = stageImage(dir);
  });
  afterAll(async () => {
    await set.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** A fresh "container" network namespace with the runtime's sysctl presets (or none). */
  function netns(name: string, presets: Record<string, number> | null): string {
    const ns = set.add(name);
    for (const [k, v] of Object.entries(presets ?? {})) set.sysctl(ns, k, v);
    return ns;
  }

  function start(ns: string, r: Omit<ContainerRun, 'image'>): Started {
    const argv = containerArgv({ ...r, image });
    const proc = set.spawn(ns, argv[0]!, argv.slice(1));
    let out = '';
    proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((res) => proc.once('exit', (c) => res(c)));
    return { proc, out: () => out, exited };
  }

  async function healthcheck(ns: string, config: string): Promise<number> {
    // As the image's HEALTHCHECK: the plain node (no capability), the image user, same netns.
    const r = await set.run(ns, 'setpriv', [
      '--reuid=nobody', '--regid=nogroup', '--init-groups', '--inh-caps=-all', '--bounding-set=-all',
      'env', `MSLB_CONFIG=${config}`, process.execPath, join(root, 'deploy/docker/healthcheck.mjs'),
    ], { timeoutMs: 10_000 });
    return r.code;
  }

  async function untilHealthy(ns: string, config: string, s: Started): Promise<void> {
    await waitFor(async () => {
      if (s.proc.exitCode !== null) throw new Error(`exited ${s.proc.exitCode} before healthy: ${s.out().slice(-1500)}`);
      return (await healthcheck(ns, config)) === 0;
    }, 20_000, 'healthcheck');
  }

  /**
   * Whether uid nobody without capabilities can attach a queue to the TUN `mslbf0` of `ns` (through
   * the 0666 clone device a container gets, so only the TUN's own owner check decides).
   */
  async function unprivilegedAttach(ns: string): Promise<string> {
    const tryAttach = `import fcntl,os,struct
fd=os.open('/dev/net/tun',os.O_RDWR)
try:
 fcntl.ioctl(fd,0x400454ca,struct.pack('16sH',b'mslbf0',0x1001)); print('attached')
except OSError as e: print('refused',e.errno)`;
    const r = await set.run(ns, 'unshare', ['--mount', '--', 'sh', '-c',
      `mount --bind '${image.tunNode}' /dev/net/tun && exec setpriv --reuid=nobody --regid=nogroup --init-groups --inh-caps=-all --bounding-set=-all /usr/bin/python3 -c "$0"`, tryAttach]);
    return r.stdout.trim() || r.stderr.trim();
  }

  async function stopped(s: Started): Promise<number | null> {
    s.proc.kill('SIGTERM');
    const t = setTimeout(() => s.proc.kill('SIGKILL'), 8000);
    const code = await s.exited;
    clearTimeout(t);
    return code;
  }

  it('mslb-back: starts as nobody with only CAP_NET_ADMIN (file capability), healthy, SIGTERM exits 0', async () => {
    const ns = netns('ctr-back', containerSysctls('back'));
    const s = start(ns, { role: 'back', config: BACK });
    await untilHealthy(ns, BACK, s);
    const p = processPrivileges(s.proc.pid!);
    expect(p.uid).not.toBe(0);
    expect(p.capEff).toBe(CAP_NET_ADMIN_MASK);
    expect(p.capBnd).toBe(CAP_NET_ADMIN_MASK);
    expect(p.capAmb).toBe('0000000000000000');
    expect(set.exec(ns, 'ip', ['-o', 'link', 'show'])).toContain('mslbb0');
    expect(await stopped(s)).toBe(0);
    expect(set.exec(ns, 'ip', ['-o', 'link', 'show'])).not.toContain('mslbb0');
    expect(await healthcheck(ns, BACK), 'healthcheck fails once the service is gone').not.toBe(0);
  }, 60_000);

  it('mslb-front: starts with the presets (the TUN inherits rp_filter 0, accept_local 1 from default)', async () => {
    const ns = netns('ctr-front', containerSysctls('front'));
    const s = start(ns, { role: 'front', config: FRONT });
    await untilHealthy(ns, FRONT, s);
    expect(set.exec(ns, 'sysctl', ['-n', 'net.ipv4.conf.mslbf0.rp_filter']).trim()).toBe('0');
    expect(set.exec(ns, 'sysctl', ['-n', 'net.ipv4.conf.mslbf0.accept_local']).trim()).toBe('1');
    expect(set.exec(ns, 'ip', ['-6', 'route', 'show', '2001:db8:5::80'])).toContain('mslbf0');
    expect(await stopped(s)).toBe(0);
  }, 60_000);

  it('hostNetwork (Kubernetes DaemonSet): a persistent TUN an init container prepared keeps host-wide presets to forwarding and a loose rp_filter', async () => {
    // deploy/kubernetes/front.yaml's init container on a node with strict rp_filter (all = default = 1):
    // forwarding on, all.rp_filter strict -> loose (2), default untouched, `ip tuntap add` owned by
    // root (only root or CAP_NET_ADMIN attaches to it; a TUN without owner anyone may), its own sysctls; the service (read-only
    // /proc/sys) writes nothing and touches no `default` key that would change every interface
    // created later on the node (rp_filter, addr_gen_mode, accept_local).
    const ns = netns('ctr-hostnet', {
      'net.ipv4.ip_forward': 1,
      'net.ipv6.conf.all.forwarding': 1,
      'net.ipv4.conf.all.rp_filter': 2,
      'net.ipv4.conf.default.rp_filter': 1,
    });
    set.exec(ns, 'ip', ['tuntap', 'add', 'dev', 'mslbf0', 'mode', 'tun', 'user', '0']);
    for (const [k, v] of Object.entries({ 'net.ipv4.conf.mslbf0.rp_filter': 0, 'net.ipv4.conf.mslbf0.accept_local': 1, 'net.ipv6.conf.mslbf0.addr_gen_mode': 1 })) {
      set.sysctl(ns, k, v);
    }
    // An unprivileged uid cannot attach to it (TUNSETIFF without CAP_NET_ADMIN on an ownerless TUN).
    expect(await unprivilegedAttach(ns)).toBe('refused 1');
    const s = start(ns, { role: 'front', config: FRONT });
    await untilHealthy(ns, FRONT, s);
    expect(set.exec(ns, 'sysctl', ['-n', 'net.ipv6.conf.default.addr_gen_mode']).trim()).toBe('0');
    expect(set.exec(ns, 'sysctl', ['-n', 'net.ipv4.conf.default.rp_filter', 'net.ipv4.conf.all.rp_filter']).trim().split(/\s+/)).toEqual(['1', '2']);
    expect(set.exec(ns, 'ip', ['-6', 'route', 'show', '2001:db8:5::80'])).toContain('mslbf0');
    expect(await stopped(s)).toBe(0);
    // The persistent device outlives the service (the next pod attaches to it again).
    expect(set.exec(ns, 'ip', ['-o', 'link', 'show'])).toContain('mslbf0');
    const again = start(ns, { role: 'front', config: FRONT });
    await untilHealthy(ns, FRONT, again);
    expect(await stopped(again)).toBe(0);
  }, 60_000);

  it('without --cap-add NET_ADMIN the entrypoint says so and exits 1', async () => {
    const ns = netns('ctr-nocap', containerSysctls('back'));
    const s = start(ns, { role: 'back', config: BACK, caps: [] });
    expect(await s.exited).toBe(1);
    expect(s.out()).toMatch(/mslb-back needs CAP_NET_ADMIN: start the container with --cap-add NET_ADMIN/);
  }, 30_000);

  it('with no-new-privileges the file capability is withheld, and the entrypoint says so', async () => {
    const ns = netns('ctr-nnp', containerSysctls('back'));
    const s = start(ns, { role: 'back', config: BACK, noNewPrivs: true });
    expect(await s.exited).toBe(1);
    expect(s.out()).toMatch(/no_new_privs withholds/);
  }, 30_000);

  it('without the sysctl presets (read-only /proc/sys) the service names the sysctls to preset', async () => {
    const ns = netns('ctr-nosysctl', null);
    const s = start(ns, { role: 'back', config: BACK });
    expect(await s.exited).toBe(1);
    expect(s.out()).toMatch(/mslb-back cannot write \/proc\/sys \(read-only, as in a container\): preset net\.ipv4\.ip_forward=1/);
    expect(s.out()).toMatch(/EROFS/);
  }, 30_000);
});

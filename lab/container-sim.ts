// What `docker run --cap-add NET_ADMIN --device /dev/net/tun --sysctl ... mslb-front|back` gives the
// service, rebuilt from the same kernel features without a container engine (none on this machine):
//   - its own network namespace (the caller's),
//   - its own mount namespace with /dev/net/tun a 0666 node (what --device copies from a Debian host)
//     and /proc/sys read-only (runc's default readonlyPaths),
//   - sysctls preset by the runtime before the process starts (--sysctl / compose `sysctls:`),
//   - the image's non-root user, capabilities: NET_ADMIN in the bounding set only (cap_drop ALL +
//     cap_add NET_ADMIN), nothing permitted, effective or ambient,
//   - the image's entrypoint (deploy/docker/entrypoint.sh) exec'ing a copy of node that holds the
//     file capability cap_net_admin=ep, as deploy/Dockerfile builds it.
// Not reproduced: seccomp and AppArmor profiles, cgroups, the image's own filesystem.
import { copyFileSync, chmodSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { makeTunNode } from './least-privilege.js';
import { sh } from './netns.js';
import { repoRoot } from './paths.js';

/** The sysctls the services write, preset the way a container runtime sets them. */
export function containerSysctls(role: 'front' | 'back'): Record<string, number> {
  return {
    'net.ipv4.ip_forward': 1,
    'net.ipv6.conf.all.forwarding': 1,
    'net.ipv4.conf.all.rp_filter': 0,
    'net.ipv4.conf.default.rp_filter': 0,
    ...(role === 'front' ? { 'net.ipv4.conf.default.accept_local': 1 } : {}),
    'net.ipv6.conf.default.addr_gen_mode': 1,
  };
}

export interface ContainerImage {
  /** node copy with cap_net_admin=ep (the image's /usr/local/bin/mslb-node). */
  node: string;
  /** 0666 TUN node bound over /dev/net/tun. */
  tunNode: string;
}

/** Stage the image's privileged bits in `dir` (mode 0755: the unprivileged user must reach them). */
export function stageImage(dir: string): ContainerImage {
  chmodSync(dir, 0o755);
  const node = join(dir, 'mslb-node');
  copyFileSync(realpathSync(process.execPath), node);
  chmodSync(node, 0o755);
  sh('setcap', ['cap_net_admin=ep', node]);
  return { node, tunNode: makeTunNode(dir, 0o666) };
}

export interface ContainerRun {
  role: 'front' | 'back';
  config: string;
  image: ContainerImage;
  /** Capabilities in the bounding set (default ['net_admin']; [] = no --cap-add). */
  caps?: string[];
  /** --security-opt no-new-privileges (Kubernetes allowPrivilegeEscalation: false). */
  noNewPrivs?: boolean;
  user?: string;
  group?: string;
}

/**
 * argv (to run inside the namespace) of the container's PID 1 chain: mount setup as root, then
 * setpriv to the image user with only the bounding set, then the image's entrypoint.
 */
export function containerArgv(r: ContainerRun): string[] {
  const caps = r.caps ?? ['net_admin'];
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const setpriv = [
    'setpriv', `--reuid=${r.user ?? 'nobody'}`, `--regid=${r.group ?? 'nogroup'}`, '--init-groups',
    '--inh-caps=-all', `--bounding-set=-all${caps.map((c) => `,+${c}`).join('')}`,
    ...(r.noNewPrivs ? ['--no-new-privs'] : []),
  ];
  const env = ['env', `MSLB_ROLE=${r.role}`, `MSLB_CONFIG=${r.config}`, `MSLB_NODE=${r.image.node}`, `MSLB_APP=${repoRoot()}`];
  const script = [
    `mount --bind ${q(r.image.tunNode)} /dev/net/tun`,
    'mount --bind /proc/sys /proc/sys',
    'mount -o remount,bind,ro /proc/sys',
    `exec ${[...setpriv, ...env, join(repoRoot(), 'deploy/docker/entrypoint.sh')].map(q).join(' ')}`,
  ].join(' && ');
  return ['unshare', '--mount', '--', 'sh', '-c', script];
}

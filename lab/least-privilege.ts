// Running the services the way deploy/ does: as an unprivileged user holding CAP_NET_ADMIN and
// nothing else (what `docker run --cap-add NET_ADMIN --device /dev/net/tun --user ...` and the
// systemd units give them), through setpriv(1).
//
// The device node: this machine's /dev/net/tun is 0600 root (no udev), where Debian with udev ships
// it 0666 and Docker's --device copies the host node's mode into the container. CAP_NET_ADMIN does not
// bypass file permissions, so the lab does what a container runtime does: it makes its own node
// (char 10:200, mode 0666) in the lab's work dir and bind-mounts it over /dev/net/tun in a private
// mount namespace of the service only (`unshare --mount`), leaving the host's node untouched.
import { join } from 'node:path';
import { sh } from './netns.js';

export interface UnprivilegedOptions {
  /** User and group to run as (default nobody / nogroup: present on every Debian). */
  user?: string;
  group?: string;
  /** Capabilities kept (inheritable, ambient and bounding set); default ['net_admin']; [] = none. */
  caps?: string[];
  /** A TUN device node to bind over /dev/net/tun (from makeTunNode); none: use the host's. */
  tunNode?: string;
}

/** A char device node 10:200 (the TUN clone device) at dir/tun with `mode`; returns its path. */
export function makeTunNode(dir: string, mode = 0o666): string {
  const path = join(dir, 'tun');
  sh('mknod', [path, 'c', '10', '200']);
  sh('chmod', [mode.toString(8), path]);
  return path;
}

/** setpriv argv prefix: drop to user/group with supplementary groups, keep only `caps`. */
export function setprivArgs(o: UnprivilegedOptions = {}): string[] {
  const caps = o.caps ?? ['net_admin'];
  const plus = caps.map((c) => `+${c}`).join(',');
  return [
    'setpriv',
    `--reuid=${o.user ?? 'nobody'}`,
    `--regid=${o.group ?? 'nogroup'}`,
    '--init-groups',
    `--inh-caps=-all${plus ? `,${plus}` : ''}`,
    ...(plus ? [`--ambient-caps=${plus}`] : []),
    `--bounding-set=-all${plus ? `,${plus}` : ''}`,
  ];
}

/**
 * Wrapper for Lab's `wrapper` option: (optionally) a private mount namespace with `tunNode` over
 * /dev/net/tun, then setpriv; the service's own argv follows ("$@"). Every step execs, so the pid
 * the lab holds is the service's and SIGTERM reaches it.
 */
export function unprivilegedWrapper(o: UnprivilegedOptions = {}): string[] {
  const priv = setprivArgs(o);
  if (!o.tunNode) return priv;
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const script = `mount --bind ${q(o.tunNode)} /dev/net/tun && exec ${priv.map(q).join(' ')} "$@"`;
  return ['unshare', '--mount', '--', 'sh', '-c', script, 'mslb-unprivileged'];
}

export interface ProcessPrivileges {
  uid: number;
  gid: number;
  /** Capability masks from /proc/PID/status (hex strings as the kernel prints them). */
  capEff: string;
  capPrm: string;
  capBnd: string;
  capAmb: string;
}

/** Real uid/gid and capability sets of a running process. */
export function processPrivileges(pid: number): ProcessPrivileges {
  const status = sh('cat', [`/proc/${pid}/status`]);
  const field = (k: string): string => new RegExp(`^${k}:\\s*(.*)$`, 'm').exec(status)?.[1]?.trim() ?? '';
  return {
    uid: Number(field('Uid').split(/\s+/)[0]),
    gid: Number(field('Gid').split(/\s+/)[0]),
    capEff: field('CapEff'),
    capPrm: field('CapPrm'),
    capBnd: field('CapBnd'),
    capAmb: field('CapAmb'),
  };
}

/** CAP_NET_ADMIN is capability 12. */
export const CAP_NET_ADMIN_MASK = (1n << 12n).toString(16).padStart(16, '0');

// sysctls through /proc/sys (never the sysctl binary). Keys are dotted ("net.ipv4.ip_forward") or,
// when a device name contains dots (eth0.100), a list of path parts.

export type SysctlKey = string | readonly string[];

/** Root of the sysctl tree; a test may point it elsewhere. */
export const PROC_SYS = '/proc/sys';

export function sysctlPath(key: SysctlKey, root = PROC_SYS): string {
  const parts = typeof key === 'string' ? key.split('.') : key;
  for (const p of parts) if (!p || p === '.' || p === '..' || p.includes('/')) throw new Error(`bad sysctl key ${JSON.stringify(key)}`);
  return `${root}/${parts.join('/')}`;
}

export function sysctlName(key: SysctlKey): string {
  return typeof key === 'string' ? key : key.join('/');
}

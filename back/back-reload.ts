// What a SIGHUP may change in a running back: `addresses`, `allowedFronts` and `lbsp` (the workers
// take new role settings between batches). Everything else is set up once at start (TUN, policy
// rules, receive offloads, admin listener), so an edit that changes it is refused with the key and "restart", and
// the settings in force stay: the running back never silently differs from a file it accepted.
import type { BackConfig } from './back-config.js';
import type { ConfigError } from '../shared/config/config-errors.js';

export const RELOADABLE_KEYS = ['addresses', 'allowedFronts', 'lbsp'] as const;

const FIXED_KEYS = ['tun', 'udpGro', 'returnPath', 'returnEncap', 'mssClamp', 'offload', 'admin', 'log'] as const;

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/** Errors that refuse `next` as a reload of `cur` (both already validated). */
export function backReloadErrors(cur: BackConfig, next: BackConfig): ConfigError[] {
  const errors: ConfigError[] = [];
  for (const k of FIXED_KEYS) {
    if (!same(cur[k], next[k])) {
      errors.push({ file: next.file, entry: k, reason: `changed, but only ${RELOADABLE_KEYS.join(', ')} are applied on SIGHUP: restart the back to apply it` });
    }
  }
  if (cur.returnPath.interface !== '') {
    // The returnPath policy rules name each service address; they are installed at start.
    const services = (c: BackConfig) => [...new Set(c.addresses.map((a) => a.service))].sort();
    if (!same(services(cur), services(next))) {
      errors.push({ file: next.file, entry: 'addresses', reason: 'the set of service addresses changed; with returnPath its policy rules are set at start: restart the back to apply it' });
    }
  }
  return errors;
}

/** True when the reloadable part of the two configs is the same (nothing to hand to the workers). */
export function backReloadUnchanged(cur: BackConfig, next: BackConfig): boolean {
  return RELOADABLE_KEYS.every((k) => same(cur[k], next[k]));
}

// One error type for host setup: what was attempted (operation + argument) and the errno behind it,
// so "mslb-front: addRoute 192.0.2.80/32 dev mslbf0: EPERM" tells the operator what to fix.
import { constants } from 'node:os';

export class HostSetupError extends Error {
  override readonly name = 'HostSetupError';
  /** errno name, e.g. "EEXIST"; "EUNKNOWN" when the cause carried none. */
  readonly code: string;
  /** positive errno number when known, else 0. */
  readonly errno: number;
  constructor(
    readonly op: string,
    readonly arg: string,
    cause: unknown,
  ) {
    const code = errnoCode(cause);
    super(`${op} ${arg}: ${code}${causeText(cause, code)}`, { cause });
    this.code = code;
    this.errno = (constants.errno as Record<string, number>)[code] ?? 0;
  }
}

function causeText(cause: unknown, code: string): string {
  const m = cause instanceof Error ? cause.message : String(cause);
  // The netlink package says "Request rejected: EEXIST"; fs says "EACCES: permission denied, open ...".
  return m.includes(code) && m.length < 24 + code.length ? '' : ` (${m})`;
}

/** Errno name of an error from the netlink package ("Request rejected: ENODEV") or from node:fs. */
export function errnoCode(e: unknown): string {
  if (e && typeof e === 'object') {
    const c = (e as { code?: unknown }).code;
    if (typeof c === 'string' && /^E[A-Z0-9]+$/.test(c)) return c;
    const m = /\b(E[A-Z0-9]{2,})\b/.exec((e as { message?: unknown }).message as string ?? '');
    if (m) return m[1];
  }
  return 'EUNKNOWN';
}

// POST /reload for either role: reload now, answer with the result. 200 when the file on disk is
// the one in force afterwards (installed or unchanged), 422 with every error when it was rejected
// (the previous one keeps serving). Only the host itself may ask (AdminRoute.loopbackOnly).
import type { ConfigError } from '../config/config-errors.js';
import type { AdminRoute } from './admin-server.js';

export interface ReloadAnswer {
  outcome: 'installed' | 'unchanged' | 'rejected';
  /** The file reloaded (the front's table, the back's config). */
  file: string;
  errors: ConfigError[];
  /** Hash of what is in force afterwards, when the role has one (the front's table). */
  hash?: string;
}

export function reloadRoute(reload: () => ReloadAnswer | Promise<ReloadAnswer>): AdminRoute {
  return {
    method: 'POST',
    loopbackOnly: true,
    handle: async () => {
      const r = await reload();
      const hash = r.hash !== undefined ? { hash: r.hash } : {};
      if (r.outcome !== 'rejected') return { status: 200, body: { result: r.outcome, file: r.file, ...hash } };
      return { status: 422, body: { result: 'rejected', file: r.file, ...hash, error: `${r.file}: ${r.errors.length} error(s)`, errors: r.errors } };
    },
  };
}

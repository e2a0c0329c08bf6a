// Durations in config files and MSLB_* variables: "500ms", "2s", "5m", "1h", or a plain number of
// seconds (what older files say). Values are kept in seconds (fractions allowed) for the callers.

const UNIT_SECONDS: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600 };

/** Seconds, or null when `v` is not a duration. */
export function parseDuration(v: unknown): number | null {
  if (typeof v === 'number') return Number.isFinite(v) && v >= 0 ? v : null;
  if (typeof v !== 'string') return null;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(v);
  if (!m) return null;
  return Number(m[1]) * UNIT_SECONDS[m[2] ?? 's']!;
}

/** "500ms", "2s", "5m", "1h30m" for a number of seconds (error messages, docs). */
export function formatDuration(seconds: number): string {
  if (seconds < 1) return `${Math.round(seconds * 1000)}ms`;
  if (seconds < 60 || seconds % 1 !== 0) return `${+seconds.toFixed(3)}s`;
  const h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
  return `${h ? `${h}h` : ''}${m ? `${m}m` : ''}${s ? `${s}s` : ''}`;
}

export const DURATION_HINT = 'a duration such as "500ms", "2s", "5m" (a plain number is seconds)';

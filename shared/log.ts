// JSON-lines logger: one object per line, {ts, level, event, ...fields}. debug/info go to stdout,
// warn/error to stderr. A call below the threshold returns before touching its arguments, so a
// disabled debug call costs one comparison (still: never log per packet at info).

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type LogFields = Record<string, unknown>;
/** Where a finished line goes (without the trailing newline). Tests pass their own. */
export type LogSink = (line: string, level: LogLevel) => void;

export interface Logger {
  readonly level: LogLevel;
  /** True when a call at `level` would be written (to skip building costly fields). */
  enabled(level: LogLevel): boolean;
  debug(event: string, fields?: LogFields): void;
  info(event: string, fields?: LogFields): void;
  warn(event: string, fields?: LogFields): void;
  error(event: string, fields?: LogFields): void;
  /** A logger that adds `fields` to every line (e.g. { service: 'front' }); shares the threshold. */
  child(fields: LogFields): Logger;
  setLevel(level: LogLevel): void;
}

export interface LoggerOptions {
  level?: LogLevel;
  /** Fields written on every line. */
  base?: LogFields;
  sink?: LogSink;
}

export function isLogLevel(s: unknown): s is LogLevel {
  return typeof s === 'string' && (LOG_LEVELS as readonly string[]).includes(s);
}

/** Parse a level name (case-insensitive); anything else gives `fallback`. */
export function parseLogLevel(s: string | undefined, fallback: LogLevel = 'info'): LogLevel {
  const v = s?.trim().toLowerCase();
  return isLogLevel(v) ? v : fallback;
}

export const stdSink: LogSink = (line, level) => {
  (RANK[level] >= RANK.warn ? process.stderr : process.stdout).write(line + '\n');
};

// Errors stringify to {} by default; bigint throws. Keep the line valid JSON whatever a caller passes.
function replacer(_key: string, value: unknown): unknown {
  if (value instanceof Error) {
    const e = value as Error & { code?: unknown; errno?: unknown };
    const out: Record<string, unknown> = { name: e.name, message: e.message };
    if (e.code !== undefined) out.code = e.code;
    if (e.errno !== undefined) out.errno = e.errno;
    for (const k of Object.keys(e)) if (!(k in out)) out[k] = (e as unknown as Record<string, unknown>)[k];
    if (e.stack) out.stack = e.stack;
    return out;
  }
  if (typeof value === 'bigint') return value.toString();
  return value;
}

// The threshold lives in a shared box so child loggers follow setLevel on the root.
interface LevelBox {
  rank: number;
  level: LogLevel;
}

class JsonLogger implements Logger {
  constructor(
    private readonly box: LevelBox,
    private readonly base: LogFields | undefined,
    private readonly sink: LogSink,
  ) {}

  get level(): LogLevel {
    return this.box.level;
  }
  setLevel(level: LogLevel): void {
    this.box.level = level;
    this.box.rank = RANK[level];
  }
  enabled(level: LogLevel): boolean {
    return RANK[level] >= this.box.rank;
  }
  debug(event: string, fields?: LogFields): void {
    if (RANK.debug >= this.box.rank) this.write('debug', event, fields);
  }
  info(event: string, fields?: LogFields): void {
    if (RANK.info >= this.box.rank) this.write('info', event, fields);
  }
  warn(event: string, fields?: LogFields): void {
    if (RANK.warn >= this.box.rank) this.write('warn', event, fields);
  }
  error(event: string, fields?: LogFields): void {
    if (RANK.error >= this.box.rank) this.write('error', event, fields);
  }
  child(fields: LogFields): Logger {
    return new JsonLogger(this.box, { ...this.base, ...fields }, this.sink);
  }

  private write(level: LogLevel, event: string, fields: LogFields | undefined): void {
    // ts, level, event first so lines read well; fields cannot overwrite them.
    const rec: LogFields = { ts: new Date().toISOString(), level, event };
    if (this.base) for (const k in this.base) if (!(k in rec)) rec[k] = this.base[k];
    if (fields) for (const k in fields) if (!(k in rec)) rec[k] = fields[k];
    let line: string;
    try {
      line = JSON.stringify(rec, replacer);
    } catch (e) {
      // A cyclic field must not take the service down; say what happened instead.
      line = JSON.stringify({ ts: rec.ts, level, event, logError: String(e) });
    }
    this.sink(line, level);
  }
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const level = opts.level ?? 'info';
  return new JsonLogger({ level, rank: RANK[level] }, opts.base, opts.sink ?? stdSink);
}

/** Process-wide default logger; threshold from MSLB_LOG_LEVEL (default info). */
export const log: Logger = createLogger({ level: parseLogLevel(process.env.MSLB_LOG_LEVEL) });

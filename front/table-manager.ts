// Main-thread owner of the front's translation table: loads and validates the file, compiles it
// off the hot path into shared memory, hands it to the workers (each swaps its reference whole),
// and reloads on SIGHUP or when the file changes. A table that does not validate is rejected with
// file, entry and reason, counted, and the previous table keeps serving.
//
// File changes. The table's directory is watched (an editor that replaces the file by rename, or a
// Kubernetes ConfigMap swapping its `..data` symlink, shows up as an event on another name, so every
// event in the directory counts), with a low-rate stat() poll as a safety net (filesystems without
// inotify, a watch that died). An event starts a check, debounced by `settleMs`:
//   1. the file must read the same twice `settleMs` apart (a writer still at work changes it);
//   2. content equal to the table in force is a no-op (a `touch`, an unrelated file, two events for
//      one save): nothing is rebuilt, published or counted;
//   3. content that does not validate is read once more after another `settleMs`: if it changed
//      meanwhile it was a partial write and the check starts over, uncounted; if not it is rejected,
//      logged and counted once, and the same content is not counted again by later events.
// SIGHUP reloads at once (no settle); an unchanged file then installs nothing but counts a success.
import { statSync, watch, type FSWatcher } from 'node:fs';
import { readDocumentText } from '../shared/config/read-document.js';
import { dirname } from 'node:path';
import type { FrontConfig } from './front-config.js';
import { parseTableText } from './table/table-file.js';
import type { TableError, TableRoute, ValidatedTable } from './table/table-loader.js';
import { CompiledTable } from './table/compiled-table.js';
import { MAX_BACKEND_SLOTS } from '../shared/metrics/counter-layout.js';
import type { Logger } from '../shared/log.js';

/** Wait for writes to settle before reading a changed file (editors write in several steps). */
export const SETTLE_MS = 150;
/** stat() poll beside the directory watch. */
export const POLL_MS = 2000;
/** Longest a stream of directory events can postpone a check. */
const MAX_DEBOUNCE_MS = 1000;
/** Bound on "still changing" re-reads within one check, and on checks queued back to back. */
const MAX_SETTLE_ROUNDS = 20;

/** Routes and errors a hook adds before compiling (the health checker's probe routes). */
export interface TableAugment {
  routes: TableRoute[];
  errors: TableError[];
  /** Handed to `publish` with the table it was computed for (e.g. the health-check plan). */
  data?: unknown;
}

export interface TableManagerOptions {
  settleMs?: number;
  /** 0 turns the poll off. */
  pollMs?: number;
  /** Reads the table file (tests pass a fake); throws like readFileSync. */
  readText?: (file: string) => string;
  /** Sleep used between reads of a changing file (tests pass a fake). */
  sleep?: (ms: number) => Promise<void>;
  /** A slot is given to a new back name (its previous back left the table): reset what is kept per slot. */
  onSlotReuse?: (slot: number) => void;
  /** Checks and internal routes beyond the table file's own validation (see front/health-checker.ts). */
  augment?: (t: ValidatedTable, slotOf: (name: string) => number) => TableAugment;
  /** The file went back to the table in force after a rejected edit (no reload happened). */
  onInSync?: () => void;
}

export interface BuildResult {
  table?: CompiledTable;
  errors: TableError[];
  /** The text the result was built from (undefined when the file could not be read). */
  text?: string;
}

type ReadResult = { text: string; error?: undefined } | { text?: undefined; error: string };

export type CheckOutcome = 'installed' | 'unchanged' | 'rejected' | 'already-rejected' | 'closed';

/** What the last reload() did, for its caller (POST /reload answers with it). */
export interface ReloadResult {
  outcome: 'installed' | 'unchanged' | 'rejected';
  errors: TableError[];
}

export class TableManager {
  private current: CompiledTable | null = null;
  /** Result of the last reload() call. */
  lastReload: ReloadResult | undefined;
  private currentText: string | undefined;
  /** Content already rejected and counted by a file check: later events for it are not counted again. */
  private rejectedText: string | undefined;
  private generation = 0;
  private readonly slots = new Map<string, number>();
  private nextSlot = 0;
  /** Slots whose names left the table, oldest first. */
  private readonly freed: number[] = [];
  private readonly augmentData = new WeakMap<CompiledTable, unknown>();
  /** up[slot]: shared with every worker; health checks flip it. */
  readonly up = new Uint8Array(new SharedArrayBuffer(MAX_BACKEND_SLOTS));
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private poll: NodeJS.Timeout | undefined;
  private lastStat = '';
  private checking = false;
  private recheck = false;
  private closed = false;
  /** Time of the first file event not yet handled (for the change-to-install latency in the log). */
  private firstEventAt = 0;
  private readonly settleMs: number;
  private readonly pollMs: number;
  private readonly readText: (file: string) => string;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(
    private readonly config: FrontConfig,
    private readonly log: Logger,
    /** Hands a table to the workers; a rejected promise means they could not all take it. */
    private readonly publish: (t: CompiledTable, generation: number, augmentData: unknown) => void | Promise<void>,
    private readonly onReloadResult: (ok: boolean) => void,
    private readonly opts: TableManagerOptions = {},
  ) {
    this.up.fill(1);
    this.settleMs = opts.settleMs ?? SETTLE_MS;
    this.pollMs = opts.pollMs ?? POLL_MS;
    this.readText = opts.readText ?? readDocumentText;
    this.sleep = opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  }

  get table(): CompiledTable | null {
    return this.current;
  }

  /** Generation of the table in force (1 = the start-up table). */
  get tableGeneration(): number {
    return this.generation;
  }

  /**
   * Stable backend slot by back name (kept across reloads while the name is in the table). Slots of
   * names that left the table in force are reused, oldest freed first and only once no fresh slot
   * is left, so a pin to a gone back is unlikely to meet a new one in its slot; a reused slot starts
   * up and with its counters from 0 (onSlotReuse).
   */
  readonly slotOf = (name: string): number => {
    let s = this.slots.get(name);
    if (s === undefined) {
      if (this.nextSlot < MAX_BACKEND_SLOTS) s = this.nextSlot++;
      else if (this.freed.length > 0) {
        s = this.freed.shift()!;
        this.up[s] = 1;
        this.opts.onSlotReuse?.(s);
      } else throw new Error(`more than ${MAX_BACKEND_SLOTS} distinct backs in use`);
      this.slots.set(name, s);
    }
    return s;
  };

  /** After a table is in force: slots of names it no longer has become free. */
  private releaseSlots(t: CompiledTable): void {
    const names = new Set(t.meta.backNames);
    for (const [name, s] of this.slots) {
      if (names.has(name)) continue;
      this.slots.delete(name);
      this.freed.push(s);
    }
  }

  private read(): ReadResult {
    try {
      return { text: this.readText(this.config.table) };
    } catch (e) {
      return { error: `cannot read: ${(e as Error).message}` };
    }
  }

  /**
   * Validate and compile (from `text`, else from the file); returns the errors (empty on success).
   * Does not publish. Routes the augment hook adds are compiled in but left out of the route
   * counts and the /table view (they are not the operator's).
   */
  build(text?: string): BuildResult {
    const c = this.config;
    if (text === undefined) {
      const r = this.read();
      if (r.error !== undefined) return { errors: [{ file: c.table, entry: '', reason: r.error }] };
      text = r.text;
    }
    // Nothing below may throw out of build(): a failure is a rejected table, the old one serves on.
    try {
      const r = parseTableText(text, c.table, { services: c.services, mode: c.mode, encap: c.encap });
      if (!r.table || r.errors.length > 0) return { errors: r.errors, text };
      const extra = this.opts.augment?.(r.table, this.slotOf) ?? { routes: [], errors: [] };
      if (extra.errors.length > 0) return { errors: extra.errors, text };
      const own = r.table.routes;
      const table = CompiledTable.compile(extra.routes.length > 0 ? { ...r.table, routes: [...own, ...extra.routes] } : r.table, {
        services: c.services,
        flowLabelEnabled: c.flowLabel.enabled,
        lbspEnabled: c.lbsp.enabled,
        hashKey: c.hashKey,
        slotOf: this.slotOf,
        up: this.up,
        ownRoutes: own.length, // probe host routes do not make a back one of a service's
        previous: this.current ?? undefined, // unchanged parts are shared, not garbage at every reload
      });
      if (extra.routes.length > 0) {
        const m = table.meta;
        m.routes4 = own.filter((x) => x.family === 4).length;
        m.routes6 = own.length - m.routes4;
        m.view.routes = m.view.routes.slice(0, own.length);
      }
      if (extra.data !== undefined) this.augmentData.set(table, extra.data);
      return { table, errors: [], text };
    } catch (e) {
      return { errors: [{ file: c.table, entry: '', reason: (e as Error).message }], text };
    }
  }

  /**
   * Install a built table as the one in force and hand it to the workers. When the hand-off fails
   * (a worker could not take it) the previous table stays in force and this throws.
   */
  async install(t: CompiledTable, text?: string): Promise<void> {
    const prev = { current: this.current, text: this.currentText, generation: this.generation };
    this.current = t;
    this.currentText = text;
    this.generation++;
    try {
      await this.publish(t, this.generation, this.augmentData.get(t));
    } catch (e) {
      if (this.current === t) {
        this.current = prev.current;
        this.currentText = prev.text;
        this.generation = prev.generation;
      }
      throw e;
    }
    this.rejectedText = undefined;
    if (this.current === t) this.releaseSlots(t);
  }

  private reject(trigger: string, errors: TableError[]): void {
    for (const e of errors) this.log.error('table_rejected', { trigger, file: e.file, entry: e.entry, reason: e.reason });
    this.onReloadResult(false);
  }

  /** Install and count; false (counted as a failure, old table serving) when the workers could not take it. */
  private async installLogged(trigger: string, b: BuildResult, t0: number): Promise<boolean> {
    const t = b.table!;
    try {
      await this.install(t, b.text);
    } catch (e) {
      this.rejectedText = b.text;
      this.reject(trigger, [{ file: this.config.table, entry: '', reason: `not taken by the workers: ${(e as Error).message}` }]);
      return false;
    }
    const fields: Record<string, unknown> = {
      trigger, file: this.config.table, generation: this.generation,
      routes4: t.meta.routes4, routes6: t.meta.routes6, backs: t.backCount, buildMs: Date.now() - t0,
    };
    if (trigger === 'file_change' && this.firstEventAt > 0) fields.sinceChangeMs = Date.now() - this.firstEventAt;
    this.log.info('table_loaded', fields);
    this.onReloadResult(true);
    return true;
  }

  /**
   * Reload from the file now (SIGHUP): on failure log every error and keep the old table. An
   * unchanged file installs nothing (the workers keep their table) and counts as a success.
   * Resolves true once every worker runs the new table.
   */
  async reload(trigger: string): Promise<boolean> {
    const t0 = Date.now();
    const r = this.read();
    if (r.error !== undefined) {
      const errors = [{ file: this.config.table, entry: '', reason: r.error }];
      this.lastReload = { outcome: 'rejected', errors };
      this.reject(trigger, errors);
      return false;
    }
    if (this.current !== null && r.text === this.currentText) {
      this.log.info('table_unchanged', { trigger, file: this.config.table, generation: this.generation });
      this.rejectedText = undefined;
      this.lastReload = { outcome: 'unchanged', errors: [] };
      this.onReloadResult(true);
      return true;
    }
    const b = this.build(r.text);
    if (!b.table) {
      this.rejectedText = r.text;
      this.lastReload = { outcome: 'rejected', errors: b.errors };
      this.reject(trigger, b.errors);
      return false;
    }
    const ok = await this.installLogged(trigger, b, t0);
    this.lastReload = ok
      ? { outcome: 'installed', errors: [] }
      : { outcome: 'rejected', errors: [{ file: this.config.table, entry: '', reason: 'not taken by the workers (they kept the previous table)' }] };
    return ok;
  }

  /**
   * A file event (or a test): check the file as described at the top. Concurrent calls fold into
   * one more pass after the running one. Resolves with the outcome of the last pass.
   */
  async checkFile(): Promise<CheckOutcome> {
    if (this.checking) {
      this.recheck = true;
      return 'unchanged';
    }
    this.checking = true;
    let out: CheckOutcome = 'unchanged';
    try {
      for (let i = 0; i < MAX_SETTLE_ROUNDS; i++) {
        this.recheck = false;
        out = await this.checkOnce();
        if (!this.recheck || this.closed) break;
      }
    } finally {
      this.checking = false;
      this.firstEventAt = 0;
    }
    return out;
  }

  private async checkOnce(): Promise<CheckOutcome> {
    const file = this.config.table;
    let cur = this.read();
    for (let round = 0; ; round++) {
      if (this.closed) return 'closed';
      if (cur.text !== undefined && this.current !== null && cur.text === this.currentText) return this.backInForce();
      if (cur.text !== undefined && cur.text === this.rejectedText) return 'already-rejected';
      // 1. Stable: the same content twice, settleMs apart.
      await this.sleep(this.settleMs);
      if (this.closed) return 'closed';
      const again = this.read();
      if (again.text !== cur.text && round < MAX_SETTLE_ROUNDS) {
        this.log.debug('table_file_changing', { file, round });
        cur = again;
        continue;
      }
      cur = again;
      if (cur.text !== undefined && this.current !== null && cur.text === this.currentText) return this.backInForce();
      if (cur.error !== undefined) {
        // Gone for two reads in a row (not the instant of a rename): reject once.
        if (this.rejectedText === '\0unreadable') return 'already-rejected';
        this.rejectedText = '\0unreadable';
        this.reject('file_change', [{ file, entry: '', reason: cur.error }]);
        return 'rejected';
      }
      const t0 = Date.now();
      const b = this.build(cur.text);
      if (b.table) {
        if (cur.text === this.currentText) return 'unchanged'; // a SIGHUP installed it meanwhile
        return (await this.installLogged('file_change', b, t0)) ? 'installed' : 'rejected';
      }
      // 3. Invalid: one more read after another settle before rejecting (a writer may be mid-file).
      await this.sleep(this.settleMs);
      if (this.closed) return 'closed';
      const third = this.read();
      if (third.text !== cur.text && round < MAX_SETTLE_ROUNDS) {
        this.log.debug('table_file_changing', { file, round, after: 'invalid' });
        cur = third;
        continue;
      }
      this.rejectedText = cur.text;
      this.reject('file_change', b.errors);
      return 'rejected';
    }
  }

  /** The file holds the table in force again: after a rejected edit, the file is in sync once more. */
  private backInForce(): 'unchanged' {
    if (this.rejectedText !== undefined) {
      this.rejectedText = undefined;
      this.log.info('table_file_in_force', { file: this.config.table, generation: this.generation });
      this.opts.onInSync?.();
    }
    return 'unchanged';
  }

  private statKey(): string {
    try {
      const s = statSync(this.config.table);
      return `${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`;
    } catch (e) {
      return `error:${(e as NodeJS.ErrnoException).code ?? ''}`;
    }
  }

  /**
   * Debounced: a burst of events gives one check, `settleMs` after the last; but a directory that
   * never goes quiet (another file written all the time) does not postpone the check beyond 1 s.
   * The directory watch and the stat poll call this; so may tests.
   */
  notifyChange(): void {
    if (this.closed) return;
    if (this.firstEventAt === 0) this.firstEventAt = Date.now();
    if (this.timer && Date.now() - this.firstEventAt > MAX_DEBOUNCE_MS) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.checkFile().catch((e: unknown) => {
        // Not expected (build() returns its errors), but a failed check is a failed reload, counted.
        this.reject('file_change', [{ file: this.config.table, entry: '', reason: `check failed: ${(e as Error).message}` }]);
      });
    }, this.settleMs);
  }

  private startWatcher(): void {
    try {
      const w = watch(dirname(this.config.table), () => this.notifyChange());
      w.on('error', (e) => {
        this.log.warn('table_watch_error', { file: this.config.table, error: e.message });
        w.close();
        if (this.watcher === w) this.watcher = undefined; // the poll re-creates it
      });
      this.watcher = w;
    } catch (e) {
      this.log.warn('table_watch_error', { file: this.config.table, error: (e as Error).message });
    }
  }

  /** Watch the table's directory (every name: rename-replace, symlink swaps) plus a stat poll. */
  watch(): void {
    this.startWatcher();
    this.lastStat = this.statKey();
    if (this.pollMs > 0) {
      this.poll = setInterval(() => {
        if (!this.watcher) this.startWatcher();
        const k = this.statKey();
        if (k !== this.lastStat) {
          this.lastStat = k;
          this.notifyChange();
        }
      }, this.pollMs);
      this.poll.unref();
    }
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.poll) clearInterval(this.poll);
    this.watcher?.close();
    this.watcher = undefined;
  }
}

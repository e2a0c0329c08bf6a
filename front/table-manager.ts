// Main-thread owner of the front's translation table: loads and validates the file, compiles it
// off the hot path into shared memory, hands it to the workers, and reloads on SIGHUP or when the
// file changes (also when an editor replaces it by rename). A table that does not validate is
// rejected with file, entry and reason, counted, and the previous table keeps serving.
import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { FrontConfig } from '../shared/config/front-config.js';
import { loadTableFile } from '../shared/table/table-file.js';
import type { TableError } from '../shared/table/table-loader.js';
import { CompiledTable } from '../shared/table/compiled-table.js';
import { MAX_BACKEND_SLOTS } from '../shared/metrics/counter-layout.js';
import type { Logger } from '../shared/log.js';

/** Wait for writes to settle before reading a changed file (editors write in several steps). */
const SETTLE_MS = 150;

export class TableManager {
  private current: CompiledTable | null = null;
  private generation = 0;
  private readonly slots = new Map<string, number>();
  /** up[slot]: shared with every worker; health checks flip it. */
  readonly up = new Uint8Array(new SharedArrayBuffer(MAX_BACKEND_SLOTS));
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly config: FrontConfig,
    private readonly log: Logger,
    private readonly publish: (t: CompiledTable, generation: number) => void,
    private readonly onReloadResult: (ok: boolean) => void,
  ) {
    this.up.fill(1);
  }

  get table(): CompiledTable | null {
    return this.current;
  }

  private slotOf = (name: string): number => {
    let s = this.slots.get(name);
    if (s === undefined) {
      s = this.slots.size;
      if (s >= MAX_BACKEND_SLOTS) throw new Error(`more than ${MAX_BACKEND_SLOTS} distinct backs`);
      this.slots.set(name, s);
    }
    return s;
  };

  /** Load, validate and compile; returns the errors (empty on success). Does not publish. */
  build(): { table?: CompiledTable; errors: TableError[] } {
    const c = this.config;
    const r = loadTableFile(c.table, { services: c.services, mode: c.mode, encap: c.encap });
    if (!r.table || r.errors.length > 0) return { errors: r.errors };
    try {
      const table = CompiledTable.compile(r.table, {
        services: c.services,
        flowLabelEnabled: c.flowLabel.enabled,
        lbspEnabled: c.lbsp.enabled,
        slotOf: this.slotOf,
        up: this.up,
      });
      return { table, errors: [] };
    } catch (e) {
      return { errors: [{ file: c.table, entry: '', reason: (e as Error).message }] };
    }
  }

  /** Install a built table as the one in force and hand it to the workers. */
  install(t: CompiledTable): void {
    this.current = t;
    this.generation++;
    this.publish(t, this.generation);
  }

  /** Reload from the file; on failure log every error and keep the old table. */
  reload(trigger: string): boolean {
    const { table, errors } = this.build();
    if (!table) {
      for (const e of errors) this.log.error('table_rejected', { trigger, file: e.file, entry: e.entry, reason: e.reason });
      this.onReloadResult(false);
      return false;
    }
    this.install(table);
    this.log.info('table_loaded', { trigger, file: this.config.table, generation: this.generation, routes4: table.meta.routes4, routes6: table.meta.routes6, backs: table.backCount });
    this.onReloadResult(true);
    return true;
  }

  /** Watch the table's directory (survives rename-replace by editors), debounced. */
  watch(): void {
    const file = basename(this.config.table);
    this.watcher = watch(dirname(this.config.table), (_ev, name) => {
      if (name !== null && name !== file) return;
      if (this.timer) clearTimeout(this.timer);
      this.timer = setTimeout(() => this.reload('file_change'), SETTLE_MS);
    });
    this.watcher.on('error', (e) => this.log.warn('table_watch_error', { error: e.message }));
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.watcher?.close();
  }
}

// TableManager: start-up build, reloads on SIGHUP and on file change, partial writes, broken edits
// counted once, unchanged content a no-op, augment routes kept out of counts and /table.
// The file-check logic runs over a fake file (readText) and a fake sleep that lets a test change
// the file between reads, so nothing here depends on timing. The last block drives the real
// directory watch over a temp dir with bounded waits (rename-replace, in-place write, symlink swap).
import { afterEach, describe, expect, it, vi } from 'vitest';
import { mkdtempSync, mkdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TableManager, type TableManagerOptions } from '../../front/table-manager.js';
import { frontConfigFromValue, type FrontConfig } from '../../front/front-config.js';
import { createLogger } from '../../shared/log.js';
import type { CompiledTable } from '../../front/table/compiled-table.js';
import { parsePrefix } from '../../shared/table/addr.js';

const GOOD = `backs:
  b1: { addresses: { "2001:db8:5::80": 2001:db8:b::1, "192.0.2.80": 198.51.100.1 } }
  b2: { addresses: { "2001:db8:5::80": 2001:db8:b::2, "192.0.2.80": 198.51.100.2 } }
routes:
  - { source: 2001:db8:c1::/48, to: b1 }
  - { source: 2001:db8:c2::/48, to: b2 }
  - { source: 203.0.113.0/26, to: b1 }
`;
const MOVED = GOOD.replace('{ source: 2001:db8:c1::/48, to: b1 }', '{ source: 2001:db8:c1::/48, to: b2 }');
const BAD_PREFIX = GOOD.replace('2001:db8:c1::/48', '2001:db8:c1::/129');
const UNKNOWN_BACK = GOOD.replace('{ source: 2001:db8:c2::/48, to: b2 }', '{ source: 2001:db8:c2::/48, to: b9 }');
const YAML_ERROR = GOOD.replace('routes:', 'routes: [');

function frontConfig(table: string): FrontConfig {
  const r = frontConfigFromValue(
    { tun: { routes: ['2001:db8:5::80/128', '192.0.2.80/32'] }, services: ['2001:db8:5::80', '192.0.2.80'], table, mode: 'translate' },
    '',
  );
  if (!r.config) throw new Error(JSON.stringify(r.errors));
  return r.config;
}

/** A manager over a fake file. `onSleep` runs at each settle sleep (a writer at work). */
function harness(initial: string, extra: TableManagerOptions = {}) {
  const file = { text: initial as string | null, reads: 0 };
  const sleeps: (() => void)[] = [];
  const lines: Record<string, unknown>[] = [];
  const published: { t: CompiledTable; generation: number }[] = [];
  const results: boolean[] = [];
  const log = createLogger({ level: 'debug', sink: (l) => lines.push(JSON.parse(l) as Record<string, unknown>) });
  const m = new TableManager(
    frontConfig('/virtual/table.yaml'),
    log,
    (t, generation) => { published.push({ t, generation }); },
    (ok) => results.push(ok),
    {
      readText: () => {
        file.reads++;
        if (file.text === null) throw Object.assign(new Error("ENOENT: no such file or directory, open '/virtual/table.yaml'"), { code: 'ENOENT' });
        return file.text;
      },
      sleep: async () => {
        sleeps.shift()?.();
      },
      ...extra,
    },
  );
  const first = m.build();
  if (!first.table) throw new Error(JSON.stringify(first.errors));
  m.install(first.table, first.text);
  const events = (name: string) => lines.filter((l) => l.event === name);
  return { m, file, sleeps, lines, published, results, events };
}

describe('TableManager: file checks', () => {
  it('installs a valid edit once, publishing a new generation', async () => {
    const h = harness(GOOD);
    expect(h.published.map((p) => p.generation)).toEqual([1]);
    h.file.text = MOVED;
    expect(await h.m.checkFile()).toBe('installed');
    expect(h.published.map((p) => p.generation)).toEqual([1, 2]);
    expect(h.results).toEqual([true]);
    expect(h.m.table).toBe(h.published[1]!.t);
    expect(h.events('table_loaded')[0]).toMatchObject({ trigger: 'file_change', file: '/virtual/table.yaml', generation: 2, routes6: 2, routes4: 1 });
    expect((h.m.table!.meta.view.routes as { to: string }[])[0]!.to).toBe('b2');
  });

  it('unchanged content (touch, unrelated file, a second event for one save) does nothing', async () => {
    const h = harness(GOOD);
    expect(await h.m.checkFile()).toBe('unchanged');
    h.file.text = MOVED;
    expect(await h.m.checkFile()).toBe('installed');
    expect(await h.m.checkFile()).toBe('unchanged');
    expect(h.published).toHaveLength(2);
    expect(h.results).toEqual([true]);
  });

  it('a partial write that does not parse is re-read and not counted as a failure', async () => {
    const h = harness(GOOD);
    // The writer truncated the file and wrote half of it, paused past the settle time (two equal
    // reads), then finished: validation fails, the re-read after another settle sees the rest.
    const half = MOVED.slice(0, MOVED.indexOf('routes:') + 12);
    h.file.text = half;
    h.sleeps.push(() => undefined, () => { h.file.text = MOVED; });
    expect(await h.m.checkFile()).toBe('installed');
    expect(h.results).toEqual([true]);
    expect(h.events('table_rejected')).toEqual([]);
    expect(h.published.at(-1)!.t.meta.routes6).toBe(2);
  });

  it('a partial write that happens to parse is not installed while the file still changes', async () => {
    const h = harness(GOOD);
    // Cut at a line end: valid YAML, a valid table with fewer routes. The second read differs.
    const cut = MOVED.slice(0, MOVED.indexOf('  - { source: 2001:db8:c2'));
    h.file.text = cut;
    h.sleeps.push(() => { h.file.text = MOVED; });
    expect(await h.m.checkFile()).toBe('installed');
    expect(h.published).toHaveLength(2); // only the complete file
    expect(h.published[1]!.t.meta.routes6).toBe(2);
  });

  it.each([
    ['bad prefix', BAD_PREFIX, 'routes[0].source', /not a prefix/],
    ['unknown back', UNKNOWN_BACK, 'routes[1].to', /unknown back or pool "b9"/],
    ['YAML syntax error', YAML_ERROR, /^line \d+, column \d+$/, /syntax error/],
  ])('a broken edit (%s) is rejected once with file, entry and reason; the old table keeps serving', async (_n, text, entry, reason) => {
    const h = harness(GOOD);
    const before = h.m.table;
    h.file.text = text;
    expect(await h.m.checkFile()).toBe('rejected');
    expect(h.m.table).toBe(before);
    expect(h.published).toHaveLength(1);
    expect(h.results).toEqual([false]);
    const rej = h.events('table_rejected');
    expect(rej).toHaveLength(1);
    expect(rej[0]).toMatchObject({ level: 'error', trigger: 'file_change', file: '/virtual/table.yaml' });
    expect(rej[0]!.entry).toEqual(typeof entry === 'string' ? entry : expect.stringMatching(entry));
    expect(rej[0]!.reason).toMatch(reason);
    // Later events for the same content (the poll, a second inotify event) do not count it again.
    expect(await h.m.checkFile()).toBe('already-rejected');
    expect(h.results).toEqual([false]);
    // Fixing the file installs it; breaking it the same way again counts again.
    h.file.text = MOVED;
    expect(await h.m.checkFile()).toBe('installed');
    h.file.text = text;
    expect(await h.m.checkFile()).toBe('rejected');
    expect(h.results).toEqual([false, true, false]);
  });

  it('a file gone for good is rejected once ("cannot read"); gone only at the instant of a rename is not', async () => {
    const h = harness(GOOD);
    h.file.text = null;
    h.sleeps.push(() => { h.file.text = MOVED; }); // renamed into place before the second read
    expect(await h.m.checkFile()).toBe('installed');
    h.file.text = null;
    expect(await h.m.checkFile()).toBe('rejected');
    expect(h.events('table_rejected').at(-1)!.reason).toMatch(/^cannot read: ENOENT/);
    expect(await h.m.checkFile()).toBe('already-rejected');
    expect(h.results).toEqual([true, false]);
  });

  it('a file that keeps changing is re-read a bounded number of times, then the last content is used', async () => {
    const h = harness(GOOD);
    let n = 0;
    h.file.text = MOVED;
    for (let i = 0; i < 100; i++) h.sleeps.push(() => { h.file.text = `${MOVED}# ${n++}\n`; });
    expect(await h.m.checkFile()).toBe('installed');
    expect(h.file.reads).toBeLessThan(60);
  });
});

describe('TableManager: event debounce', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('a burst of events gives one check after the last one', async () => {
    vi.useFakeTimers();
    const h = harness(GOOD, { settleMs: 150 });
    h.file.text = MOVED;
    for (let i = 0; i < 5; i++) { h.m.notifyChange(); await vi.advanceTimersByTimeAsync(100); }
    expect(h.published).toHaveLength(1); // still within 150 ms of the last event
    await vi.advanceTimersByTimeAsync(100);
    expect(h.published).toHaveLength(2);
    expect(h.file.reads).toBe(2 + 1); // start-up read + the check's two reads
  });

  it('a directory that never goes quiet does not postpone the check beyond 1 s', async () => {
    vi.useFakeTimers();
    const h = harness(GOOD, { settleMs: 150 });
    h.file.text = MOVED;
    let at = -1;
    for (let t = 0; t < 3000; t += 10) { // an event every 10 ms for 3 s
      h.m.notifyChange();
      await vi.advanceTimersByTimeAsync(10);
      if (at < 0 && h.published.length === 2) at = t;
    }
    expect(at).toBeGreaterThan(1000);
    expect(at).toBeLessThanOrEqual(1000 + 150 + 10);
  });
});

describe('TableManager: SIGHUP', () => {
  it('reloads a changed file at once, counts a broken one every time, and leaves an unchanged one alone', async () => {
    const h = harness(GOOD);
    expect(await h.m.reload('SIGHUP')).toBe(true); // unchanged: a success, nothing published
    expect(h.published).toHaveLength(1);
    expect(h.events('table_unchanged')[0]).toMatchObject({ trigger: 'SIGHUP', generation: 1 });
    h.file.text = UNKNOWN_BACK;
    expect(await h.m.reload('SIGHUP')).toBe(false);
    expect(await h.m.reload('SIGHUP')).toBe(false);
    expect(h.events('table_rejected').map((e) => e.trigger)).toEqual(['SIGHUP', 'SIGHUP']);
    h.file.text = MOVED;
    expect(await h.m.reload('SIGHUP')).toBe(true);
    expect(h.published.map((p) => p.generation)).toEqual([1, 2]);
    expect(h.results).toEqual([true, false, false, true]);
    expect(h.events('table_loaded').at(-1)).toMatchObject({ trigger: 'SIGHUP', generation: 2 });
  });

  it('says what the last reload did (POST /reload answers with it)', async () => {
    const h = harness(GOOD);
    await h.m.reload('admin');
    expect(h.m.lastReload).toEqual({ outcome: 'unchanged', errors: [] });
    h.file.text = UNKNOWN_BACK;
    await h.m.reload('admin');
    expect(h.m.lastReload?.outcome).toBe('rejected');
    expect(h.m.lastReload?.errors[0]).toMatchObject({ file: '/virtual/table.yaml', entry: 'routes[1].to' });
    h.file.text = MOVED;
    await h.m.reload('admin');
    expect(h.m.lastReload).toEqual({ outcome: 'installed', errors: [] });
    h.file.text = null;
    await h.m.reload('admin');
    expect(h.m.lastReload?.errors[0]?.reason).toMatch(/^cannot read: ENOENT/);
  });

  it('a rejected file put back to the table in force is in sync again (no reload counted)', async () => {
    let inSync = 0;
    const h = harness(GOOD, { onInSync: () => inSync++ });
    h.file.text = UNKNOWN_BACK;
    expect(await h.m.checkFile()).toBe('rejected');
    h.file.text = GOOD;
    expect(await h.m.checkFile()).toBe('unchanged');
    expect(inSync).toBe(1);
    expect(h.results).toEqual([false]);
    expect(await h.m.checkFile()).toBe('unchanged'); // already in sync: not reported again
    expect(inSync).toBe(1);
    // the bad content again is a new rejected edit
    h.file.text = UNKNOWN_BACK;
    expect(await h.m.checkFile()).toBe('rejected');
    expect(h.results).toEqual([false, false]);
  });

  it('keeps backend slots and the shared up[] across reloads', async () => {
    const h = harness(GOOD);
    const slot = (t: CompiledTable, name: string) => t.a.backSlot[t.meta.backNames.indexOf(name)];
    const t1 = h.m.table!;
    h.file.text = `backs:\n  b0: { address: 2001:db8:b::9 }\n${GOOD.slice('backs:\n'.length)}`;
    expect(await h.m.reload('SIGHUP')).toBe(true);
    const t2 = h.m.table!;
    expect(slot(t2, 'b1')).toBe(slot(t1, 'b1'));
    expect(slot(t2, 'b2')).toBe(slot(t1, 'b2'));
    expect(slot(t2, 'b0')).toBe(2);
    expect(t2.a.up).toBe(h.m.up);
  });
});

/** 120 aliases of one shared object, as PyYAML writes a table whose backs share a health check. */
const ALIASES = `backs:
  b1: { addresses: { "2001:db8:5::80": 2001:db8:b::1, "192.0.2.80": 198.51.100.1 }, healthCheck: &id001 { url: "http://[2001:db8:b::1]:9102/readyz" } }
${Array.from({ length: 120 }, (_, i) => `  c${i}: { addresses: { "2001:db8:5::80": 2001:db8:d::${(i + 1).toString(16)}, "192.0.2.80": 198.51.100.${i + 3} }, healthCheck: *id001 }`).join('\n')}
routes:
  - { source: 2001:db8:c1::/48, to: b1 }
`;

describe('TableManager: YAML failures and failed hand-offs are rejected edits', () => {
  it('a table with more than 100 aliases on SIGHUP: rejected with file and reason, counted, the old table serving', async () => {
    const h = harness(GOOD);
    const t1 = h.m.table;
    h.file.text = ALIASES;
    expect(await h.m.reload('SIGHUP')).toBe(false);
    expect(h.m.table).toBe(t1);
    expect(h.results).toEqual([false]);
    expect(h.events('table_rejected')[0]).toMatchObject({ trigger: 'SIGHUP', file: '/virtual/table.yaml', reason: expect.stringMatching(/more than 100 YAML aliases/) });
  });

  it('the same table arriving through the file watch is rejected and counted once', async () => {
    const h = harness(GOOD);
    h.file.text = ALIASES;
    expect(await h.m.checkFile()).toBe('rejected');
    expect(await h.m.checkFile()).toBe('already-rejected');
    expect(h.results).toEqual([false]);
    expect(h.published).toHaveLength(1);
  });

  it('a table over 16 MiB is refused without parsing it', async () => {
    const h = harness(GOOD);
    h.file.text = `${GOOD}# ${'x'.repeat(16 * 1024 * 1024)}\n`;
    expect(await h.m.reload('SIGHUP')).toBe(false);
    expect(h.events('table_rejected')[0]).toMatchObject({ reason: expect.stringMatching(/file too large: \d+ bytes \(at most 16777216\)/) });
  });

  it('an exception inside build (augment hook) is a rejected table, not a throw', async () => {
    let boom = false;
    const h = harness(GOOD, { augment: () => { if (boom) throw new Error('hook failed'); return { routes: [], errors: [] }; } });
    boom = true;
    h.file.text = MOVED;
    expect(await h.m.reload('SIGHUP')).toBe(false);
    expect(h.events('table_rejected')[0]).toMatchObject({ reason: 'hook failed' });
  });

  it('a table the workers could not all take is a failed reload; the previous table stays in force', async () => {
    let refuse = false;
    const published: number[] = [];
    const results: boolean[] = [];
    let text = GOOD;
    const m = new TableManager(frontConfig('/virtual/table.yaml'), createLogger({ level: 'error', sink: () => undefined }),
      async (_t, g) => {
        published.push(g);
        if (refuse) throw new Error('worker 1: out of memory');
      },
      (ok) => results.push(ok), { readText: () => text, pollMs: 0 });
    const first = m.build();
    await m.install(first.table!, first.text);
    const t1 = m.table;
    refuse = true;
    text = MOVED;
    expect(await m.reload('SIGHUP')).toBe(false);
    expect(m.table).toBe(t1);
    expect(m.tableGeneration).toBe(1);
    expect(results).toEqual([false]);
    refuse = false;
    expect(await m.reload('SIGHUP')).toBe(true); // the same edit again, now taken by all
    expect(m.tableGeneration).toBe(2);
    expect(published).toEqual([1, 2, 2]);
    expect(results).toEqual([false, true]);
  });
});

describe('TableManager: backend slots of gone names are reused', () => {
  /** A table of `n` backs named `${prefix}${i}` plus the fixed back "keep". */
  const tableOf = (prefix: string, n: number) => `backs:
  keep: { addresses: { "2001:db8:5::80": 2001:db8:b::1, "192.0.2.80": 198.51.100.1 } }
${Array.from({ length: n }, (_, i) => `  ${prefix}${i}: { addresses: { "2001:db8:5::80": 2001:db8:d::${(i + 1).toString(16)}, "192.0.2.80": 198.51.${100 + (i >> 8)}.${i & 255} } }`).join('\n')}
routes:
  - { source: 2001:db8:c1::/48, to: keep }
  - { source: 2001:db8:c2::/48, to: ${prefix}0 }
`;

  it('more than 1024 distinct back names over successive reloads never make a reload fail', async () => {
    let text = tableOf('r0x', 100);
    const reused: number[] = [];
    const results: boolean[] = [];
    const m = new TableManager(frontConfig('/virtual/table.yaml'), createLogger({ level: 'error', sink: () => undefined }),
      () => undefined, (ok) => results.push(ok), { readText: () => text, pollMs: 0, onSlotReuse: (s) => reused.push(s) });
    const first = m.build();
    expect(first.errors).toEqual([]);
    await m.install(first.table!, first.text);
    const slotOfName = (name: string) => m.table!.a.backSlot[m.table!.meta.backNames.indexOf(name)]!;
    const keep = slotOfName('keep');
    for (let round = 1; round <= 14; round++) {
      const prev = m.table!;
      m.up[slotOfName(`r${round - 1}x0`)] = 0; // a back marked down by health checks, then gone
      text = tableOf(`r${round}x`, 100);
      expect(await m.reload('SIGHUP'), `round ${round}`).toBe(true);
      expect(m.table).not.toBe(prev);
      expect(slotOfName('keep')).toBe(keep); // a name that stays keeps its slot
      for (let i = 0; i < 100; i++) expect(m.up[slotOfName(`r${round}x${i}`)], `r${round}x${i} starts up`).toBe(1);
    }
    expect(results.every((r) => r)).toBe(true); // 1 + 15 x 100 = 1501 distinct names
    expect(reused.length).toBeGreaterThan(0);
    expect(Math.max(...m.table!.a.backSlot.slice(0, m.table!.backCount))).toBeLessThan(1024);
    // Fresh slots first: nothing was reused before the 1024 were handed out once.
    expect(Math.min(...reused)).toBe(1);
  });
});

describe('TableManager: augment hook', () => {
  it('compiles extra routes in, but counts and shows only the file\'s own', () => {
    const p = parsePrefix('2001:db8:f::1/128')!;
    const h = harness(GOOD, {
      augment: () => ({ routes: [{ source: '2001:db8:f::1/128', family: 6, words: p.words, len: 128, to: 'b2' }], errors: [] }),
    });
    const t = h.m.table!;
    expect(t.meta.routes6).toBe(2);
    expect(t.meta.routes4).toBe(1);
    expect(t.meta.view.routes).toHaveLength(3);
    const pt = t.prefix[0]!;
    expect(t.meta.targetNames[pt.lookup6(p.words[0]!, p.words[1]!, p.words[2]!, p.words[3]!)]).toBe('back:b2');
  });

  it('errors from the hook reject the table like validation errors', async () => {
    let fail = false;
    const h = harness(GOOD, {
      augment: () => ({ routes: [], errors: fail ? [{ file: '/virtual/table.yaml', entry: 'backs.b1.healthCheck', reason: 'nope' }] : [] }),
    });
    fail = true;
    h.file.text = MOVED;
    expect(await h.m.reload('SIGHUP')).toBe(false);
    expect(h.events('table_rejected')[0]).toMatchObject({ entry: 'backs.b1.healthCheck', reason: 'nope' });
  });
});

describe('TableManager: the real directory watch', () => {
  let dir = '';
  let m: TableManager | undefined;
  afterEach(() => {
    m?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function until(pred: () => boolean, what: string, ms = 5000): Promise<void> {
    const end = Date.now() + ms;
    while (!pred()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  function start(tablePath: string) {
    const published: number[] = [];
    const results: boolean[] = [];
    m = new TableManager(frontConfig(tablePath), createLogger({ level: 'error', sink: () => undefined }),
      (_t, g) => { published.push(g); }, (ok) => results.push(ok), { settleMs: 20, pollMs: 200 });
    const first = m.build();
    expect(first.errors).toEqual([]);
    m.install(first.table!, first.text);
    m.watch();
    return { published, results };
  }

  it('follows rename-replace, in-place writes and a broken edit', async () => {
    dir = mkdtempSync(join(tmpdir(), 'mslb-tm-'));
    const f = join(dir, 'table.yaml');
    writeFileSync(f, GOOD);
    const s = start(f);
    // Editor style: write a temp file, rename over the table.
    writeFileSync(join(dir, '.table.yaml.tmp'), MOVED);
    renameSync(join(dir, '.table.yaml.tmp'), f);
    await until(() => s.published.length === 2, 'rename-replace picked up');
    // In place (truncate + write), like `cat > table.yaml`.
    writeFileSync(f, GOOD);
    await until(() => s.published.length === 3, 'in-place write picked up');
    writeFileSync(f, YAML_ERROR);
    await until(() => s.results.length === 3, 'broken edit rejected');
    expect(s.results).toEqual([true, true, false]);
    // An unrelated file in the directory changes nothing.
    writeFileSync(join(dir, 'other.txt'), 'x');
    await new Promise((r) => setTimeout(r, 300));
    expect(s.results).toEqual([true, true, false]);
    expect(s.published).toEqual([1, 2, 3]);
  });

  it('follows a Kubernetes-style ..data symlink swap', async () => {
    dir = mkdtempSync(join(tmpdir(), 'mslb-tm-'));
    mkdirSync(join(dir, 'v1'));
    mkdirSync(join(dir, 'v2'));
    writeFileSync(join(dir, 'v1', 'table.yaml'), GOOD);
    writeFileSync(join(dir, 'v2', 'table.yaml'), MOVED);
    symlinkSync('v1', join(dir, '..data'));
    symlinkSync('..data/table.yaml', join(dir, 'table.yaml'));
    const s = start(join(dir, 'table.yaml'));
    symlinkSync('v2', join(dir, '..data_tmp'));
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
    await until(() => s.published.length === 2, 'symlink swap picked up');
    expect(s.results).toEqual([true]);
  });
});

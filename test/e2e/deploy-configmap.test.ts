// deploy/kubernetes/front.yaml mounts the table ConfigMap as a directory. Kubelet updates such a
// volume atomically: the files are symlinks through `..data`, a symlink to a timestamped directory,
// and an edit writes a new directory and renames a new `..data` over the old one (table.yaml itself
// never changes). This test lays the front's config and table out exactly that way, runs the lab's
// front on them, and swaps `..data` as kubelet does: the running front reloads, traffic follows the
// new table, and a broken table swapped in is rejected while the previous one keeps serving.
// Needs root and `npm run build`.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isRoot } from '../helpers/netns.js';
import { Lab } from '../helpers/lab.js';
import { waitFor } from '../../lab/netns.js';
import { repoRoot } from '../../lab/paths.js';

/** A kubelet-style ConfigMap volume at `dir` holding `files`; returns a function that swaps in new contents. */
function configMapVolume(dir: string, files: Record<string, string>): (next: Record<string, string>) => void {
  mkdirSync(dir, { recursive: true });
  let version = 0;
  const writeVersion = (contents: Record<string, string>): string => {
    const name = `..2026_01_01_00_00_0${version++}.${Math.random().toString(36).slice(2, 8)}`;
    mkdirSync(join(dir, name));
    for (const [k, v] of Object.entries(contents)) writeFileSync(join(dir, name, k), v);
    return name;
  };
  symlinkSync(writeVersion(files), join(dir, '..data'));
  for (const k of Object.keys(files)) symlinkSync(join('..data', k), join(dir, k));
  return (next) => {
    const name = writeVersion(next);
    symlinkSync(name, join(dir, '..data_tmp'));
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
  };
}

const TABLE_V1 = readFileSync(join(repoRoot(), 'deploy/lab/table.yaml'), 'utf8');
// The same table with client prefix 1 (IPv6) moved to b2.
const TABLE_V2 = TABLE_V1.replace('- { source: 2001:db8:c1::/48, to: b1 }', '- { source: 2001:db8:c1::/48, to: b2 }');
const TABLE_BROKEN = `${TABLE_V2}\n  - { source: 2001:db8:c9::/48, to: nosuchback }\n`;

describe.skipIf(!isRoot())('ConfigMap-style table volume: a ..data swap is a live table edit', () => {
  let lab: Lab;
  let dir: string;
  let swapTable: (next: Record<string, string>) => void;

  beforeAll(async () => {
    expect(TABLE_V2).not.toBe(TABLE_V1);
    dir = mkdtempSync(join(tmpdir(), 'mslb-cm-'));
    const front = readFileSync(join(repoRoot(), 'deploy/lab/front-translate.yaml'), 'utf8').replace('table: ./table.yaml', `table: ${join(dir, 'table', 'table.yaml')}`);
    configMapVolume(join(dir, 'config'), { 'front.yaml': front });
    swapTable = configMapVolume(join(dir, 'table'), { 'table.yaml': TABLE_V1 });
    lab = await Lab.start({ mode: 'translate', frontConfig: join(dir, 'config', 'front.yaml') });
  }, 90_000);
  afterAll(async () => {
    await lab?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  it('starts on the first version', async () => {
    expect(await lab.curl('c1v6')).toMatchObject({ ok: true, server: 'server1' });
    expect(await lab.curl('c2v6')).toMatchObject({ ok: true, server: 'server2' });
  });

  it('a swapped ..data with a new table reaches the running front: c1v6 moves to server2', async () => {
    const before = await lab.metric('front', 'mslb_config_reloads_total', { result: 'success' });
    swapTable({ 'table.yaml': TABLE_V2 });
    await waitFor(async () => (await lab.metric('front', 'mslb_config_reloads_total', { result: 'success' })) > before, 10_000, 'table reload after ..data swap');
    expect(await lab.curl('c1v6')).toMatchObject({ ok: true, server: 'server2' });
    expect(await lab.curl('c1v4')).toMatchObject({ ok: true, server: 'server1' });
    const table = JSON.parse((await lab.adminGet('front', '/table')).body) as { routes: { source: string; to: string }[] };
    expect(table.routes.find((r) => r.source === '2001:db8:c1::/48')?.to).toBe('b2');
  }, 30_000);

  it('a broken table swapped in is rejected and counted; the previous table keeps serving', async () => {
    const failed = await lab.metric('front', 'mslb_config_reloads_total', { result: 'failure' });
    swapTable({ 'table.yaml': TABLE_BROKEN });
    await waitFor(async () => (await lab.metric('front', 'mslb_config_reloads_total', { result: 'failure' })) > failed, 10_000, 'rejected reload');
    expect(lab.serviceLog('front')).toMatch(/table_rejected[^\n]*nosuchback/);
    expect(await lab.curl('c1v6')).toMatchObject({ ok: true, server: 'server2' });
  }, 30_000);
});

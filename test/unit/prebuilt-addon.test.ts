// The prebuilt TUN addon shipped in prebuilds/ (npm run build:prebuilds): built from the sources in
// the tree, loadable, found by node-gyp-build and by the service's own lookup when nothing was
// compiled here; and the package installs it instead of compiling (install script node-gyp-build).
import { describe, expect, it } from 'vitest';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nativeSourcesHash, stampFile } from '../../scripts/native-sources.mjs';

const root = join(import.meta.dirname, '..', '..');
const require = createRequire(import.meta.url);
const prebuilt = join(root, 'prebuilds', `${process.platform}-${process.arch}`, 'mslb.glibc.node');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  scripts: Record<string, string>;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};

describe.skipIf(process.platform !== 'linux' || process.arch !== 'x64')('prebuilt TUN addon (linux-x64)', () => {
  it('was built from the addon sources in this tree (if not: npm run build:prebuilds, commit prebuilds/)', () => {
    expect(existsSync(prebuilt), prebuilt).toBe(true);
    expect(readFileSync(stampFile, 'utf8').trim(), 'prebuilds/ is older than shared/tun/native or binding.gyp: run `npm run build:prebuilds` and commit prebuilds/').toBe(nativeSourcesHash());
  });

  it('loads and exports what NativeTun calls', () => {
    const addon = require(prebuilt) as Record<string, unknown>;
    for (const f of ['openQueues', 'ifName', 'setVnetHdrSize', 'setOffload', 'closeFd', 'attach']) expect(typeof addon[f], f).toBe('function');
  });

  it('is what node-gyp-build and the service lookup pick when nothing was compiled here', () => {
    expect(existsSync(join(root, 'dist', 'shared', 'tun', 'native-tun.js')), 'dist/ is built (npm run build)').toBe(true);
    const dir = mkdtempSync(join(tmpdir(), 'mslb-prebuilt-'));
    try {
      // A package root with dist/, prebuilds/ and node_modules/ but no build/: an install that did not compile.
      cpSync(join(root, 'prebuilds'), join(dir, 'prebuilds'), { recursive: true });
      cpSync(join(root, 'dist', 'shared'), join(dir, 'dist', 'shared'), { recursive: true });
      symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
      writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'mslb', type: 'module' }));
      const gypBuild = require('node-gyp-build') as { path(d: string): string };
      expect(gypBuild.path(dir)).toBe(join(dir, 'prebuilds', 'linux-x64', 'mslb.glibc.node'));
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', "const m = await import('./dist/shared/tun/native-tun.js'); console.log(typeof m.loadAddon().openQueues)"], {
        cwd: dir,
        encoding: 'utf8',
        env: { ...process.env, MSLB_TUN_ADDON: '' },
      });
      expect(r.stderr).toBe('');
      expect(r.stdout.trim()).toBe('function');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('package.json', () => {
  it('installs the prebuilt addon, compiling only where none fits (install: node-gyp-build)', () => {
    expect(pkg.scripts.install).toBe('node-gyp-build');
    expect(pkg.dependencies['node-gyp-build']).toBeDefined();
    expect(pkg.scripts['build:prebuilds']).toMatch(/prebuildify --napi/);
    // `npm run prebuild` would also run before every `npm run build` (npm's pre-hook): not that name.
    expect(pkg.scripts.prebuild).toBeUndefined();
  });

  it('has no runtime dependency that only tests use, and no unused one', () => {
    expect(pkg.dependencies.ip6addr).toBeUndefined();
    expect(pkg.devDependencies.ip6addr).toBeDefined();
    expect(pkg.dependencies['node-addon-api']).toBeUndefined();
    expect(pkg.devDependencies['node-addon-api']).toBeUndefined();
  });
});

// Makes @jazzer.js/core 4.0.0 runnable on this machine and says how to start it.
//
// The fuzzer's native part ships only as a prebuilt addon (its npm package holds no sources) built
// against glibc 2.38 and GCC 13's libstdc++; Debian 12 has glibc 2.36 and GCC 12, so dlopen fails
// with "version `GLIBC_2.38' not found". It needs exactly three symbols from those versions
// (__isoc23_strtol, __isoc23_strtoul, std::ios_base_library_init). When the stock addon does not
// load, this module
//   1. compiles glibc-compat.c (stand-ins for the three) into node_modules/.cache/mslb-jazzer/,
//   2. copies the addon there with those two version needs marked VER_FLG_WEAK in its
//      .gnu.version_r (the loader then only checks that the symbols resolve, which the preloaded
//      library makes them do),
//   3. checks the copy loads with every symbol bound (LD_BIND_NOW),
// and returns the environment that preloads the library and redirects the addon load to the copy
// (redirect-addon.cjs). On a system where the stock addon loads, it returns no extra environment.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
/** Repository root (this file runs from test/fuzz/jazzer or dist-fuzz/test/fuzz/jazzer). */
export const REPO_ROOT = (() => {
  let d = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(d, 'package.json')) && existsSync(join(d, 'test', 'fuzz'))) return d;
    d = dirname(d);
  }
  throw new Error('repository root not found');
})();
const SRC_DIR = join(REPO_ROOT, 'test', 'fuzz', 'jazzer');
// Beside the package it is derived from (node-gyp rebuild wipes build/).
const OUT_DIR = join(REPO_ROOT, 'node_modules', '.cache', 'mslb-jazzer');
const WEAKEN = new Set(['GLIBC_2.38', 'GLIBCXX_3.4.32']);
const SHT_GNU_VERNEED = 0x6ffffffe;
const VER_FLG_WEAK = 2;

export interface JazzerLaunch {
  /** Path of the jazzer CLI script (run with `node`). */
  cli: string;
  /** Extra environment for the jazzer process (empty when the stock addon loads). */
  env: Record<string, string>;
  /** What was done, for reports. */
  note: string;
}

function stockAddonPath(): string {
  const pkg = require.resolve('@jazzer.js/fuzzer/package.json');
  return join(dirname(pkg), 'prebuilds', `fuzzer-${process.platform}-${process.arch}.node`);
}

function tryLoad(addon: string, env: Record<string, string>): { ok: boolean; error: string } {
  const r = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(addon)})`], {
    env: { ...process.env, ...env, LD_BIND_NOW: '1' },
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { ok: r.status === 0, error: (r.stderr ?? '').split('\n').find((l) => l.startsWith('Error')) ?? r.stderr };
}

/** Mark the vernaux entries named in WEAKEN as weak; returns the names changed. */
export function weakenVersionNeeds(b: Buffer): string[] {
  if (b.readUInt32BE(0) !== 0x7f454c46 || b[4] !== 2 || b[5] !== 1) throw new Error('not a little-endian ELF64 file');
  const shoff = Number(b.readBigUInt64LE(0x28));
  const shentsize = b.readUInt16LE(0x3a);
  const shnum = b.readUInt16LE(0x3c);
  const section = (i: number) => {
    const o = shoff + i * shentsize;
    return { type: b.readUInt32LE(o + 4), off: Number(b.readBigUInt64LE(o + 0x18)), link: b.readUInt32LE(o + 0x28), info: b.readUInt32LE(o + 0x2c) };
  };
  const changed: string[] = [];
  for (let i = 0; i < shnum; i++) {
    const s = section(i);
    if (s.type !== SHT_GNU_VERNEED) continue;
    const strtab = section(s.link).off;
    const name = (o: number): string => {
      let e = strtab + o;
      while (b[e] !== 0) e++;
      return b.toString('latin1', strtab + o, e);
    };
    let p = s.off;
    for (let n = 0; n < s.info; n++) {
      const count = b.readUInt16LE(p + 2);
      let a = p + b.readUInt32LE(p + 8);
      for (let k = 0; k < count; k++) {
        const nm = name(b.readUInt32LE(a + 8));
        if (WEAKEN.has(nm)) {
          b.writeUInt16LE(b.readUInt16LE(a + 4) | VER_FLG_WEAK, a + 4);
          changed.push(nm);
        }
        a += b.readUInt32LE(a + 12);
      }
      p += b.readUInt32LE(p + 12);
    }
  }
  return changed;
}

export function prepareJazzer(): JazzerLaunch {
  const cli = join(dirname(require.resolve('@jazzer.js/core/package.json')), 'dist', 'cli.js');
  const stock = stockAddonPath();
  if (tryLoad(stock, {}).ok) return { cli, env: {}, note: 'stock prebuilt addon loads' };

  mkdirSync(OUT_DIR, { recursive: true });
  const shim = join(OUT_DIR, 'libjazzer-compat.so');
  const patched = join(OUT_DIR, 'fuzzer-linux-x64.node');
  const shimSrc = join(SRC_DIR, 'glibc-compat.c');
  if (!existsSync(shim) || statSync(shim).mtimeMs < statSync(shimSrc).mtimeMs) {
    const cc = spawnSync('cc', ['-O2', '-shared', '-fPIC', '-o', shim, shimSrc], { encoding: 'utf8' });
    if (cc.status !== 0) throw new Error(`jazzer compat: cc failed: ${cc.stderr}`);
  }
  const stamp = `${stock}:${statSync(stock).size}:${statSync(stock).mtimeMs}`;
  const stampFile = patched + '.source';
  if (!existsSync(patched) || !existsSync(stampFile) || readFileSync(stampFile, 'utf8') !== stamp) {
    const b = readFileSync(stock);
    const changed = weakenVersionNeeds(b);
    if (changed.length === 0) throw new Error(`jazzer compat: ${stock} does not load (${tryLoad(stock, {}).error}) and needs none of ${[...WEAKEN].join(', ')}`);
    writeFileSync(patched, b);
    writeFileSync(stampFile, stamp);
  }
  const env = {
    LD_PRELOAD: shim,
    MSLB_JAZZER_ADDON: patched,
    NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --require ${resolve(SRC_DIR, 'redirect-addon.cjs')}`.trim(),
  };
  const check = tryLoad(patched, { LD_PRELOAD: shim });
  if (!check.ok) throw new Error(`jazzer compat: the patched addon does not load either: ${check.error}`);
  return { cli, env, note: `prebuilt addon needs glibc 2.38/GCC 13: loaded a copy with ${[...WEAKEN].join(', ')} weak and ${shim} preloaded` };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  const l = prepareJazzer();
  process.stdout.write(`${l.note}\n${JSON.stringify(l.env)}\n`);
}

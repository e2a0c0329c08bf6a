// Reload storm: the front's RSS while its table is reloaded again and again (an operator's
// ConfigMap controller, a script rewriting the table every second). Starts one mslb-front in its
// own namespace (translate mode, no traffic, no backs needed), alternates its table between two
// versions (a pool included, so the Maglev part is rebuilt too), reloads N times, samples the
// front's RSS every K reloads and prints the series.
//
//   node dist/bench/reload-storm.js [--reloads 2000] [--every 100] [--warmup 200] [--via sighup|file]
//        [--interval-ms 0] [--broken-every 0] [--queues 2] [--bound-mb 15] [--timeout-s 900] [--json FILE]
//
// --via sighup: rewrite the file, send SIGHUP, wait for the front's answer (table_loaded,
// table_unchanged or table_rejected with trigger SIGHUP) before the next one; as fast as the front
// goes unless --interval-ms paces it. --via file: rewrite the file (write + rename, as an editor or
// a ConfigMap swap) and wait for the file watch to install or reject it; with --interval-ms 5000
// and --broken-every 4 this is the soak's cadence. --broken-every M makes every M-th edit a table
// that does not validate (rejected; the table in force keeps serving).
// Pass: the front is still running, every reload was answered and counted in
// mslb_config_reloads_total, and its RSS at every sample after the first --warmup reloads stays
// within --bound-mb of the RSS at the end of the warm-up. Exit 0 on pass, 1 on fail, 2 when not root.
// Everything (namespace, processes, temp dir) is removed at the end, on failure and on SIGINT/SIGTERM.
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { isRoot, NetnsSet, waitForOutput } from '../lab/netns.js';
import { distFile } from '../lab/paths.js';
import { stopServiceProcess } from '../lab/service-process.js';

const S6 = '2001:db8:5::80';
const S4 = '192.0.2.80';
const ADMIN = '[::1]:9101';

function num(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return def;
  const v = Number(process.argv[i + 1]);
  if (!Number.isFinite(v) || v < 0) throw new Error(`--${name} needs a number >= 0`);
  return v;
}
function str(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? def : (process.argv[i + 1] ?? def);
}

const TABLE_A = `# reload storm, version A
backs:
  b1: { addresses: { "${S6}": "2001:db8:b::1", "${S4}": "198.51.100.1" } }
  b2: { addresses: { "${S6}": "2001:db8:b::2", "${S4}": "198.51.100.2" } }
  b3: { addresses: { "${S6}": "2001:db8:b::3", "${S4}": "198.51.100.3" } }
pools:
  web: { members: [b2, b3], key: source }
routes:
  - { source: 2001:db8:c1::/48, to: b1 }
  - { source: 2001:db8:c2::/48, to: web }
  - { source: 203.0.113.0/26, to: b1 }
  - { source: 203.0.113.64/26, to: web }
`;
const TABLE_B = TABLE_A.replace('version A', 'version B')
  .replace('{ source: 2001:db8:c1::/48, to: b1 }', '{ source: 2001:db8:c1::/48, to: b2 }')
  .replace('{ source: 203.0.113.0/26, to: b1 }', '{ source: 203.0.113.0/26, to: b2 }');
const TABLE_BROKEN = TABLE_A.replace('version A', 'broken on purpose').replace('to: web }', 'to: nowhere }');

function rssMb(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round(Number(m[1]) / 102.4) / 10 : NaN;
  } catch {
    return NaN;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The front's JSON log lines as they come: counts of reload outcomes by event and trigger. */
class ReloadLog {
  readonly counts = new Map<string, number>();
  tail: string[] = [];
  constructor(proc: ChildProcess) {
    // one line buffer per stream: info lines come on stdout, errors (table_rejected) on stderr
    const take = (st: { buf: string }) => (d: Buffer) => {
      st.buf += d.toString();
      let nl: number;
      while ((nl = st.buf.indexOf('\n')) >= 0) {
        const line = st.buf.slice(0, nl);
        st.buf = st.buf.slice(nl + 1);
        this.tail.push(line);
        if (this.tail.length > 50) this.tail.shift();
        const m = /"event":"(table_loaded|table_unchanged|table_rejected)"/.exec(line);
        if (!m) continue;
        const t = /"trigger":"(\w+)"/.exec(line)?.[1] ?? '';
        // (a rejected table logs a line per error; TABLE_BROKEN has exactly one)
        const k = `${m[1]}:${t}`;
        this.counts.set(k, (this.counts.get(k) ?? 0) + 1);
      }
    };
    proc.stdout?.on('data', take({ buf: '' }));
    proc.stderr?.on('data', take({ buf: '' }));
  }
  get(event: string, trigger: string): number {
    return this.counts.get(`${event}:${trigger}`) ?? 0;
  }
  answered(trigger: string): number {
    return this.get('table_loaded', trigger) + this.get('table_unchanged', trigger) + this.get('table_rejected', trigger);
  }
}

async function main(): Promise<number> {
  if (!isRoot()) {
    console.error('reload-storm needs root (network namespace, TUN device)');
    return 2;
  }
  const reloads = num('reloads', 2000);
  const every = Math.max(1, num('every', 100));
  const warmup = num('warmup', 200);
  const via = str('via', 'sighup');
  if (via !== 'sighup' && via !== 'file') throw new Error('--via is sighup or file');
  const intervalMs = num('interval-ms', 0);
  const brokenEvery = num('broken-every', 0);
  const queues = Math.max(1, num('queues', 2));
  const boundMb = num('bound-mb', 15);
  const timeoutS = num('timeout-s', 900);
  const jsonOut = str('json', '');
  const entry = distFile('front/main.js');

  const dir = mkdtempSync(join(tmpdir(), 'mslb-storm-'));
  const table = join(dir, 'table.yaml');
  writeFileSync(join(dir, 'front.yaml'), `tun: { name: mslbf0, mtu: 1500, queues: ${queues}, routes: [${S6}/128, ${S4}/32] }
services: [${S6}, ${S4}]
table: ./table.yaml
mode: translate
admin: { listen: "${ADMIN}" }
`);
  writeFileSync(table, TABLE_A);
  const set = new NetnsSet();
  let cleaned = false;
  const cleanup = async () => {
    if (cleaned) return;
    cleaned = true;
    await set.cleanup();
    rmSync(dir, { recursive: true, force: true });
  };
  const onSignal = () => void cleanup().finally(() => process.exit(130));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const log = (s: string) => console.log(`[reload-storm ${new Date().toISOString().slice(11, 19)}] ${s}`);
  const deadline = Date.now() + timeoutS * 1000;
  let front: ChildProcess | undefined;
  try {
    const ns = set.add('storm');
    front = set.spawn(ns, process.execPath, [entry, '--config', join(dir, 'front.yaml')]);
    const flog = new ReloadLog(front);
    await waitForOutput(front, /"event":"table_loaded".*"trigger":"start"|"trigger":"start".*"event":"table_loaded"/, 20_000, 'mslb-front');
    const pid = front.pid!;
    const metric = (name: string, labels: string) => {
      const body = set.exec(ns, 'curl', ['-s', '--max-time', '5', `http://${ADMIN}/metrics`]);
      const m = new RegExp(`^${name}\\{${labels}\\}\\s+(\\S+)`, 'm').exec(body);
      return m ? Number(m[1]) : NaN;
    };
    log(`front pid ${pid}, ${queues} worker(s); ${reloads} reloads via ${via}${intervalMs ? ` every ${intervalMs} ms` : ', back to back'}${brokenEvery ? `, every ${brokenEvery}th edit broken` : ''}; RSS every ${every} reloads, warm-up ${warmup}, bound ${boundMb} MB`);
    const series: { reload: number; rssMb: number; seconds: number }[] = [];
    const t0 = Date.now();
    const sample = (i: number) => {
      const r = rssMb(pid);
      series.push({ reload: i, rssMb: r, seconds: Math.round((Date.now() - t0) / 100) / 10 });
      log(`reload ${String(i).padStart(5)}: RSS ${r} MB`);
    };
    sample(0);
    const trigger = via === 'sighup' ? 'SIGHUP' : 'file_change';
    let expectOk = 0, expectBad = 0;
    let inForce = TABLE_A;
    for (let i = 1; i <= reloads; i++) {
      if (Date.now() > deadline) throw new Error(`time limit (${timeoutS} s) reached after ${i - 1} reloads`);
      if (front.exitCode !== null || front.signalCode !== null) throw new Error(`the front exited (${front.exitCode ?? front.signalCode}) after ${i - 1} reloads`);
      const t1 = Date.now();
      const broken = brokenEvery > 0 && i % brokenEvery === 0;
      // Never the table in force again: an unchanged file installs nothing (and the watch stays silent).
      const text = broken ? TABLE_BROKEN : inForce === TABLE_A ? TABLE_B : TABLE_A;
      if (broken) expectBad++;
      else {
        expectOk++;
        inForce = text;
      }
      const before = flog.answered(trigger);
      writeFileSync(`${table}.tmp`, text);
      renameSync(`${table}.tmp`, table);
      if (via === 'sighup') front.kill('SIGHUP');
      const waitUntil = Date.now() + 10_000;
      while (flog.answered(trigger) === before) {
        if (Date.now() > waitUntil) throw new Error(`reload ${i} not answered within 10 s; front log:\n${flog.tail.join('\n')}`);
        await sleep(via === 'sighup' ? 1 : 20);
      }
      if (i % every === 0 || i === warmup) sample(i);
      if (intervalMs > 0) await sleep(Math.max(0, intervalMs - (Date.now() - t1)));
    }
    const seconds = (Date.now() - t0) / 1000;
    // The watch also sees SIGHUP-mode rewrites; whatever installs a table is counted once as a success.
    const okCount = metric('mslb_config_reloads_total', 'result="success"');
    const badCount = metric('mslb_config_reloads_total', 'result="failure"');
    const installed = flog.get('table_loaded', 'SIGHUP') + flog.get('table_loaded', 'file_change');
    const alive = front.exitCode === null && front.signalCode === null;
    const warm = series.find((s) => s.reload === warmup) ?? series[0]!;
    const after = series.filter((s) => s.reload >= warm.reload);
    const peak = after.reduce((a, s) => (s.rssMb > a.rssMb ? s : a), warm);
    const growth = Math.round((peak.rssMb - warm.rssMb) * 10) / 10;
    const last = series[series.length - 1]!;
    const countsOk = okCount >= expectOk && badCount >= expectBad && flog.answered(trigger) >= reloads;
    const pass = alive && countsOk && growth <= boundMb;
    log('--- summary ---');
    log(`${reloads} reloads in ${seconds.toFixed(1)} s (${(reloads / seconds).toFixed(1)}/s); tables installed ${installed}; mslb_config_reloads_total success ${okCount} (>= ${expectOk} expected), failure ${badCount} (>= ${expectBad} expected)`);
    log(`RSS MB: start ${series[0]!.rssMb}, after warm-up (${warm.reload}) ${warm.rssMb}, peak after warm-up ${peak.rssMb} (reload ${peak.reload}), end ${last.rssMb}; growth ${growth} MB (bound ${boundMb})`);
    log(`series (every ${every}): ${series.map((s) => s.rssMb).join(', ')}`);
    log(pass ? 'PASS' : `FAIL${alive ? '' : ' (front not running)'}${countsOk ? '' : ' (reload counts)'}${growth <= boundMb ? '' : ' (RSS growth)'}`);
    if (jsonOut) writeFileSync(jsonOut, JSON.stringify({ reloads, via, intervalMs, brokenEvery, queues, every, warmup, boundMb, seconds, okCount, badCount, installed, series, growth, pass }, null, 1));
    if (front) await stopServiceProcess(front, 5000);
    return pass ? 0 : 1;
  } finally {
    await cleanup();
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    console.error(`reload-storm failed: ${(e as Error).stack ?? e}`);
    process.exitCode = 1;
  },
);

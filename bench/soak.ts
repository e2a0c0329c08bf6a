// Soak: the encap lab for a bounded time at a fixed packet rate of mixed valid and
// invalid traffic, with a table edit every few seconds, reporting the services' RSS at the start,
// every minute and at the end, and valid datagrams sent vs echoed back (each carries its sequence
// number, so a lost one is named).
//
//   npm run soak -- [--minutes 10] [--valid-pps 250] [--invalid-pps 200] [--edit-seconds 5]
//                   [--rss-bound-mb 32] [--json FILE]
//
// Valid: four UDP flows (c1v6, c1v4, c2v6, c2v4 -> S:9007, so both backs and both families), each
// at --valid-pps, to a sequence echo in each server namespace (test/soak/seq-echo.py).
// Invalid: every kind of test/e2e/fixtures/hostile-packets.py round-robin, at --invalid-pps at the
// front (layer-2 frames to S) and half that at back1 (frames to B).
// Table edits: the front's table file (a copy in a temp dir) alternates between the lab table and
// one with the two client prefixes swapped between the backs (pinned flows must keep their back,
// nothing may be lost), and every fourth edit is a broken table (rejected, the previous one keeps
// serving). Written atomically (write + rename), as an editor or a ConfigMap swap does.
// Pass: no valid datagram lost, every service still running, and each service's RSS at the end
// within --rss-bound-mb of its RSS after the first minute (warm-up: JIT, heap sizing).
// Exit code 0 on pass, 1 on fail. Needs root (namespaces).
import { execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { CLIENTS, S4, S6 } from '../lab/address-plan.js';
import { Lab, sumMetric, type ServiceName } from '../lab/lab.js';
import { waitForOutput } from '../lab/netns.js';
import { PYTHON, repoRoot } from '../lab/paths.js';

const SERVICES: ServiceName[] = ['front', 'back1', 'back2'];
const ECHO_PORT = 9007;

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return def;
  const v = Number(process.argv[i + 1]);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} needs a positive number`);
  return v;
}
function argStr(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? undefined : process.argv[i + 1];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function rssMb(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round(Number(m[1]) / 102.4) / 10 : NaN;
  } catch {
    return NaN;
  }
}

/** Per thread of a process: [cpu ns, run-queue wait ns] from /proc/PID/task/TID/schedstat. */
function threadTimes(pid: number | undefined): Map<string, [number, number]> {
  const out = new Map<string, [number, number]>();
  if (pid === undefined) return out;
  try {
    for (const t of readdirSync(`/proc/${pid}/task`)) {
      try {
        const [run, wait] = readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ').map(Number);
        out.set(t, [run!, wait!]);
      } catch {
        /* thread gone */
      }
    }
  } catch {
    /* process gone */
  }
  return out;
}

interface FlowCount { src: string; sent: number; received: number; dup: number; errors: number; bad: number; maxGapMs: number; maxGapAtS: number; lost?: number; firstLost?: number[]; firstLostAtS?: number | null }

const TABLE_SWAPPED = `# soak: client prefixes swapped between the backs
backs:
  b1:
    addresses: { "2001:db8:5::80": "2001:db8:b::1", "192.0.2.80": "198.51.100.1" }
  b2:
    addresses: { "2001:db8:5::80": "2001:db8:b::2", "192.0.2.80": "198.51.100.2" }
routes:
  - { source: 2001:db8:c1::/48, to: b2 }
  - { source: 2001:db8:c2::/48, to: b1 }
  - { source: 203.0.113.0/26, to: b2 }
  - { source: 203.0.113.64/26, to: b1 }
`;
const TABLE_BROKEN = `# soak: broken on purpose (a route to a back that does not exist)
backs:
  b1: { addresses: { "2001:db8:5::80": "2001:db8:b::1", "192.0.2.80": "198.51.100.1" } }
routes:
  - { source: 2001:db8:c1::/48, to: b9 }
`;

async function main(): Promise<void> {
  const minutes = arg('minutes', 10);
  const validPps = arg('valid-pps', 250);
  const invalidPps = arg('invalid-pps', 200);
  const editSeconds = arg('edit-seconds', 5);
  const rssBound = arg('rss-bound-mb', 32);
  const jsonOut = argStr('json');
  const root = repoRoot();
  const dir = mkdtempSync(join(tmpdir(), 'mslb-soak-'));
  const table = join(dir, 'table.yaml');
  const tableA = readFileSync(join(root, 'deploy/lab/table-encap.yaml'), 'utf8');
  writeFileSync(join(dir, 'front.yaml'), readFileSync(join(root, 'deploy/lab/front-encap.yaml'), 'utf8').replace(/^table:.*$/m, 'table: ./table.yaml'));
  writeFileSync(table, tableA);
  const stopFile = join(dir, 'stop');
  const procs: ChildProcess[] = [];
  let lab: Lab | undefined;
  const log = (s: string) => console.log(`[soak ${new Date().toISOString().slice(11, 19)}] ${s}`);
  const onSignal = () => {
    writeFileSync(stopFile, '');
    void lab?.stop().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    log(`${minutes} min: valid 4 flows x ${validPps} pps, invalid ${invalidPps} pps at the front + ${invalidPps / 2} pps at back1, table edit every ${editSeconds} s`);
    lab = await Lab.start({ mode: 'encap', frontConfig: join(dir, 'front.yaml') });
    const L = lab;
    const mac = (ns: string, iface: string) => (JSON.parse(L.set.exec(ns, 'ip', ['-j', 'link', 'show', 'dev', iface])) as { address: string }[])[0]!.address;

    // invalid frames, per target
    const kinds = JSON.parse(execFileSync(PYTHON, [join(root, 'test/e2e/fixtures/hostile-packets.py')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 64 << 20 })) as Record<string, { to: string; eth: number; packets: string[] }>;
    const frames: Record<string, string[]> = { front: [], back1: [] };
    for (const k of Object.values(kinds)) for (const p of k.packets) frames[k.to]!.push(`${k.eth} ${p}`);
    writeFileSync(join(dir, 'frames-front'), frames.front!.join('\n') + '\n');
    writeFileSync(join(dir, 'frames-back1'), frames.back1!.join('\n') + '\n');

    // echo servers, then the valid stream, then the invalid loops
    for (const srv of ['server1', 'server2'] as const) {
      const p = L.set.spawn(L.ns[srv], PYTHON, ['-u', join(root, 'test/soak/seq-echo.py'), String(ECHO_PORT), S6, S4]);
      procs.push(p);
      await waitForOutput(p, /^ready$/m, 10_000, `${srv} seq-echo`);
    }
    const flows = (['c1v6', 'c1v4', 'c2v6', 'c2v4'] as const).map((c) => [CLIENTS[c].address, CLIENTS[c].family === 'ipv6' ? S6 : S4]);
    const stream = L.set.spawn(L.ns.client, PYTHON, ['-u', join(root, 'test/soak/seq-stream.py'), JSON.stringify({ flows, port: ECHO_PORT, pps: validPps, stopFile, reportEvery: 60 })]);
    procs.push(stream);
    let streamOut = '';
    stream.stdout?.on('data', (d: Buffer) => (streamOut += d.toString()));
    await waitForOutput(stream, /^started$/m, 10_000, 'seq-stream');
    const streamT0 = Date.now();
    const cl = L.topo.linkOf('client-link');
    const b1 = L.topo.linkOf('back1-link');
    const maxS = String(minutes * 60 + 30);
    const loopOut: string[] = ['', ''];
    const loops = [
      L.set.spawn(cl.near.ns, PYTHON, ['-u', join(root, 'test/soak/hostile-loop.py'), cl.near.iface, mac(cl.far.ns, cl.far.iface), mac(cl.near.ns, cl.near.iface), String(invalidPps), join(dir, 'frames-front'), stopFile, maxS]),
      L.set.spawn(b1.near.ns, PYTHON, ['-u', join(root, 'test/soak/hostile-loop.py'), b1.near.iface, mac(b1.far.ns, b1.far.iface), mac(b1.near.ns, b1.near.iface), String(invalidPps / 2), join(dir, 'frames-back1'), stopFile, maxS]),
    ];
    loops.forEach((p, i) => {
      procs.push(p);
      p.stdout?.on('data', (d: Buffer) => (loopOut[i] += d.toString()));
    });

    // Where a lost datagram could have gone: the TUN's kernel queue toward mslb (tx_dropped of the
    // device), and UDP receive-buffer overflows of the client and the echoes.
    const tunDrops = () =>
      Object.fromEntries(
        SERVICES.map((s) => {
          const j = JSON.parse(L.set.exec(L.ns[s], 'ip', ['-s', '-j', 'link', 'show', 'dev', s === 'front' ? 'mslbf0' : 'mslbb0'])) as { stats64?: { tx?: { dropped?: number }; rx?: { dropped?: number } } }[];
          return [s, { txDropped: j[0]?.stats64?.tx?.dropped ?? NaN, rxDropped: j[0]?.stats64?.rx?.dropped ?? NaN }];
        }),
      ) as Record<string, { txDropped: number; rxDropped: number }>;
    const udpErrors = () =>
      Object.fromEntries(
        (['client', 'server1', 'server2'] as const).map((n) => {
          const out = L.set.exec(L.ns[n], 'nstat', ['-az', 'UdpRcvbufErrors', 'Udp6RcvbufErrors', 'UdpSndbufErrors', 'Udp6SndbufErrors']);
          let sum = 0;
          for (const m of out.matchAll(/^\S+\s+(\d+)/gm)) sum += Number(m[1]);
          return [n, sum];
        }),
      ) as Record<string, number>;
    const pids = Object.fromEntries(SERVICES.map((s) => [s, L.serviceProcess(s)?.pid])) as Record<ServiceName, number | undefined>;
    // Every second: how long each service's busiest thread (the packet worker) waited for a CPU,
    // so a stall can be told apart: starved by other load (run-queue wait) or busy / blocked itself.
    const stalls: { t: number; service: string; waitMs: number; cpuMs: number }[] = [];
    const lastTimes = new Map<string, Map<string, [number, number]>>();
    const sampler = setInterval(() => {
      const now = Date.now();
      for (const s of SERVICES) {
        const cur = threadTimes(pids[s]);
        const prev = lastTimes.get(s);
        lastTimes.set(s, cur);
        if (!prev) continue;
        let best: [number, number] = [0, 0];
        for (const [tid, [run, wait]] of cur) {
          const p = prev.get(tid);
          if (!p) continue;
          const d: [number, number] = [run - p[0], wait - p[1]];
          if (d[0] > best[0]) best = d;
        }
        stalls.push({ t: now, service: s, cpuMs: Math.round(best[0] / 1e6), waitMs: Math.round(best[1] / 1e6) });
      }
      if (stalls.length > 3 * 3600 * 3) stalls.splice(0, stalls.length - 3 * 3600 * 3);
    }, 1000);
    const rss = () => Object.fromEntries(SERVICES.map((s) => [s, rssMb(pids[s])])) as Record<string, number>;
    const samples: { minute: number; rss: Record<string, number>; valid?: FlowCount[]; frontDrops: number; back1Drops: number; reloads: { success: number; failure: number }; tun: Record<string, { txDropped: number; rxDropped: number }>; udpErrors: Record<string, number> }[] = [];
    const sample = async (minute: number) => {
      const fm = await L.metrics('front');
      const bm = await L.metrics('back1');
      const last = streamOut.trim().split('\n').filter((l) => l.startsWith('{')).pop();
      const s = {
        minute,
        rss: rss(),
        valid: last ? (JSON.parse(last) as { flows: FlowCount[] }).flows : undefined,
        frontDrops: sumMetric(fm, 'mslb_drops_total'),
        back1Drops: sumMetric(bm, 'mslb_drops_total'),
        reloads: { success: sumMetric(fm, 'mslb_config_reloads_total', { result: 'success' }), failure: sumMetric(fm, 'mslb_config_reloads_total', { result: 'failure' }) },
        tun: tunDrops(),
        udpErrors: udpErrors(),
      };
      samples.push(s);
      const v = s.valid ? s.valid.reduce((a, f) => ({ sent: a.sent + f.sent, received: a.received + f.received }), { sent: 0, received: 0 }) : { sent: 0, received: 0 };
      log(`minute ${String(minute).padStart(2)}: RSS MB front ${s.rss.front} back1 ${s.rss.back1} back2 ${s.rss.back2} | valid sent ${v.sent} echoed ${v.received} (at the last report) | drops front ${s.frontDrops} back1 ${s.back1Drops} | reloads ok ${s.reloads.success} failed ${s.reloads.failure} | TUN queue drops ${SERVICES.map((x) => `${x} ${s.tun[x]!.txDropped}`).join(' ')} | UDP buffer errors ${JSON.stringify(s.udpErrors)} | load ${loadavg()[0]!.toFixed(1)}`);
    };
    await sample(0);

    // the run: a table edit every editSeconds, a sample every minute
    const t0 = Date.now();
    const end = t0 + minutes * 60_000;
    let edits = 0;
    let nextEdit = t0 + editSeconds * 1000;
    let nextMinute = t0 + 60_000;
    let minute = 0;
    const editCounts = { good: 0, broken: 0 };
    while (Date.now() < end) {
      await sleep(Math.max(10, Math.min(nextEdit, nextMinute, end) - Date.now()));
      const now = Date.now();
      if (now >= nextEdit && now < end) {
        edits++;
        const broken = edits % 4 === 0;
        const text = broken ? TABLE_BROKEN : edits % 2 === 1 ? TABLE_SWAPPED : tableA;
        writeFileSync(`${table}.tmp`, text);
        renameSync(`${table}.tmp`, table);
        editCounts[broken ? 'broken' : 'good']++;
        nextEdit += editSeconds * 1000;
      }
      if (now >= nextMinute) {
        minute++;
        await sample(minute);
        nextMinute += 60_000;
      }
      for (const s of SERVICES) if (L.serviceProcess(s)?.exitCode !== null) throw new Error(`${s} exited during the soak:\n${L.serviceLog(s).slice(-2000)}`);
    }

    // stop the traffic, collect
    clearInterval(sampler);
    writeFileSync(stopFile, '');
    await waitForOutput(stream, /"final": true/, 20_000, 'seq-stream final line');
    await Promise.all(loops.map((p) => (p.exitCode === null ? new Promise((r) => p.once('exit', r)) : undefined)));
    const final = JSON.parse(streamOut.trim().split('\n').filter((l) => l.includes('"final"')).pop()!) as { seconds: number; flows: FlowCount[] };
    await sample(minute + 1);
    const endSample = samples[samples.length - 1]!;
    const alive = SERVICES.filter((s) => L.serviceProcess(s)?.exitCode === null);
    const sent = final.flows.reduce((a, f) => a + f.sent, 0);
    const received = final.flows.reduce((a, f) => a + f.received, 0);
    const lost = final.flows.reduce((a, f) => a + (f.lost ?? 0), 0);
    const invalidSent = loopOut.map((o) => Number(o.trim()) || 0);
    const fm = await L.metrics('front');
    const dropsByReason: Record<string, number> = {};
    for (const m of fm.matchAll(/^mslb_drops_total\{reason="(\w+)"\}\s+(\S+)/gm)) if (Number(m[2]) > 0) dropsByReason[m[1]!] = Number(m[2]);
    const warm = samples.find((s) => s.minute === 1) ?? samples[0]!;
    const growth = Object.fromEntries(SERVICES.map((s) => [s, Math.round((endSample.rss[s]! - warm.rss[s]!) * 10) / 10]));
    const rssOk = SERVICES.every((s) => growth[s]! <= rssBound);
    const pass = lost === 0 && received === sent && alive.length === SERVICES.length && rssOk;

    log('--- soak summary ---');
    log(`duration ${minutes} min; table edits ${edits} (${editCounts.good} valid, ${editCounts.broken} broken); reloads ok ${endSample.reloads.success} failed ${endSample.reloads.failure}`);
    log(`valid: sent ${sent}, echoed ${received}, lost ${lost}, duplicated ${final.flows.reduce((a, f) => a + f.dup, 0)}; per flow ${final.flows.map((f) => `${f.src} ${f.received}/${f.sent}${f.lost ? ` lost ${f.lost} (first ${f.firstLost!.join(',')}, sent at ${f.firstLostAtS} s)` : ''} longest gap between echoes ${f.maxGapMs} ms at ${f.maxGapAtS} s`).join('; ')}`);
    log(`invalid frames sent: ${invalidSent[0]} at the front, ${invalidSent[1]} at back1; front drops by reason ${JSON.stringify(dropsByReason)}`);
    log(`RSS MB start ${JSON.stringify(samples[0]!.rss)} after minute 1 ${JSON.stringify(warm.rss)} end ${JSON.stringify(endSample.rss)}; growth since minute 1 ${JSON.stringify(growth)} (bound ${rssBound} MB)`);
    log(`services running at the end: ${alive.join(', ')}`);
    const worst = (svc: string) => stalls.filter((x) => x.service === svc).reduce((a, x) => (x.waitMs > a.waitMs ? x : a), { t: 0, service: svc, waitMs: 0, cpuMs: 0 });
    log(`longest run-queue wait of each service's packet worker in one second: ${SERVICES.map((x) => `${x} ${worst(x).waitMs} ms`).join(', ')}`);
    for (const f of final.flows.filter((x) => x.lost)) {
      const at = streamT0 + (f.firstLostAtS ?? 0) * 1000;
      const near = stalls.filter((x) => Math.abs(x.t - at) <= 2500).map((x) => `${x.service} ${new Date(x.t).toISOString().slice(11, 19)} cpu ${x.cpuMs} ms wait ${x.waitMs} ms`);
      log(`around the first loss of ${f.src} (${new Date(at).toISOString().slice(11, 23)}): ${near.join('; ')}`);
      for (const svc of SERVICES) {
        const lines = L.serviceLog(svc).split('\n').filter((l) => {
          const m = /"ts":"([^"]+)"/.exec(l);
          return m !== null && Math.abs(Date.parse(m[1]!) - at) <= 3000;
        });
        if (lines.length > 0) log(`${svc} log around it:\n${lines.join('\n')}`);
      }
      break;
    }
    log(pass ? 'PASS' : 'FAIL');
    if (jsonOut) writeFileSync(jsonOut, JSON.stringify({ minutes, validPps, invalidPps, editSeconds, rssBound, edits, editCounts, sent, received, lost, invalidSent, dropsByReason, samples, growth, alive, pass, flows: final.flows }, null, 1));
    process.exitCode = pass ? 0 : 1;
  } finally {
    writeFileSync(stopFile, '');
    for (const p of procs) if (p.exitCode === null) p.kill('SIGTERM');
    await lab?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(`soak failed: ${(e as Error).stack ?? e}`);
  process.exitCode = 1;
});

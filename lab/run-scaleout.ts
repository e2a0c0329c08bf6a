// `npm run lab:scaleout`: the scale-out lab (lab/scaleout.ts) as a report. Two fronts behind a
// router whose BIRD installs an ECMP route to S learned over BGP; N TCP transfers from the four client
// addresses; front1 stopped mid-transfer. Prints the router's next hops before and after, connections
// per front (SYNs) and per back, how long the withdrawal took, and completed vs broken transfers.
// Exit status 1 when a transfer broke or landed on the wrong server. Needs root, bird2, `npm run build`.
// Options: --per-client N (default 25), --bytes B (default 1 MiB), --duration-ms D (default 6000),
//          --stop-after-ms T (default 2000: when front1 is stopped, counted from "all established").
import { parseArgs } from 'node:util';
import { isRoot } from './netns.js';
import { FRONT_NAMES, ScaleoutLab } from './scaleout.js';

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      'per-client': { type: 'string', default: '25' },
      bytes: { type: 'string', default: String(1 << 20) },
      'duration-ms': { type: 'string', default: '6000' },
      'stop-after-ms': { type: 'string', default: '2000' },
    },
  });
  if (!isRoot()) {
    process.stderr.write('the scale-out lab needs root (network namespaces, TUN devices)\n');
    return 2;
  }
  const perClient = Number(values['per-client']);
  const lab = await ScaleoutLab.start({ transferBytes: Number(values.bytes), transferDurationMs: Number(values['duration-ms']) });
  const stopOnSignal = (): void => void lab.stop().finally(() => process.exit(130));
  process.once('SIGINT', stopOnSignal);
  process.once('SIGTERM', stopOnSignal);
  try {
    const hops = (f: 'ipv6' | 'ipv4') => lab.nexthops(f).map((n) => `${n.gateway} dev ${n.dev}`).join(', ');
    console.log(`router ECMP route to S: IPv6 [${hops('ipv6')}]  IPv4 [${hops('ipv4')}]`);
    const syn0 = Object.fromEntries(FRONT_NAMES.map((f) => [f, lab.synCount(f)]));
    const t0 = Date.now();
    const run = lab.transfers(perClient, undefined, 120_000);
    await run.established;
    console.log(`${perClient * 4} connections established in ${Date.now() - t0} ms`);
    await new Promise((r) => setTimeout(r, Number(values['stop-after-ms'])));
    for (const f of FRONT_NAMES) {
      const syns = lab.synCount(f) - syn0[f]!;
      const rx = await lab.metric(f, 'mslb_rx_packets_total');
      const b1 = await lab.metric(f, 'mslb_backend_packets_total', { backend: 'b1' });
      const b2 = await lab.metric(f, 'mslb_backend_packets_total', { backend: 'b2' });
      console.log(`${f}: ${syns} SYNs (connections), ${rx} packets in, to b1 ${b1}, to b2 ${b2}`);
    }
    const stopAt = Date.now();
    const code = await lab.stopService('front1');
    await lab.waitNexthops(1, 10_000);
    console.log(`front1 stopped (exit ${code}) ${stopAt - t0} ms in; router withdrew it after ${Date.now() - stopAt} ms: IPv6 [${hops('ipv6')}]`);
    const rs = await run.results;
    const broken = rs.filter((r) => !r.ok);
    const wrong = rs.filter((r) => r.server !== ScaleoutLab.expectedServerOf(r.src));
    const perServer: Record<string, number> = {};
    for (const r of rs) perServer[r.server || '(none)'] = (perServer[r.server || '(none)'] ?? 0) + 1;
    console.log(`transfers: ${rs.length - broken.length} completed, ${broken.length} broken, ${wrong.length} on the wrong server; per server ${JSON.stringify(perServer)}`);
    console.log(`front2 non-SYN flow-table misses (flows it took over): ${await lab.metric('front2', 'mslb_flow_table_misses_nonsyn_total')}`);
    for (const b of broken.slice(0, 10)) console.log(`  broken: ${b.src}:${b.localPort} -> ${b.dst}: ${b.error}`);
    return broken.length === 0 && wrong.length === 0 ? 0 : 1;
  } finally {
    await lab.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);

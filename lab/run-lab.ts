// `npm run lab`: build the lab namespaces, start mslb-front and two mslb-backs from deploy/lab, send
// HTTP, HTTPS, an openssl TLS handshake and UDP from every client address in each mode, print which
// server answered each client (expected vs actual) and the services' key counters, clean up always.
// Exit status 1 when any client landed on the wrong server or got no answer.
// Options: --kernel-only (no services: plain routes, proves the harness), --modes translate,encap,encap-mixed (default: all three),
//          --families ipv6,ipv4
import { parseArgs } from 'node:util';
import { CLIENTS, CLIENT_NAMES, type Family } from './address-plan.js';
import type { ClientResult } from './clients.js';
import { FRONT_CONFIGS, Lab, type LabMode, type ServiceName } from './lab.js';
import { isRoot } from './netns.js';

const KEY_METRICS = [
  'mslb_rx_packets_total',
  'mslb_tx_packets_total',
  'mslb_decisions_total',
  'mslb_backend_packets_total',
  'mslb_drops_total',
  'mslb_table_routes',
];

function cell(r: ClientResult, expected: string): string {
  if (!r.ok) return 'FAIL';
  return r.server === expected ? r.server : `${r.server ?? '?'}!`;
}

/** Non-zero samples of the key families (drops at 0 are exported from start-up and would be noise). */
function keyMetrics(text: string): string[] {
  return text
    .split('\n')
    .filter((l) => KEY_METRICS.some((m) => l.startsWith(m)) && !/\s0$/.test(l));
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      'kernel-only': { type: 'boolean', default: false },
      modes: { type: 'string', default: 'translate,encap,encap-mixed' },
      families: { type: 'string', default: 'ipv6,ipv4' },
    },
  });
  if (!isRoot()) {
    process.stderr.write('the lab needs root (network namespaces, TUN devices)\n');
    return 2;
  }
  const families = values.families!.split(',') as Family[];
  const modes: LabMode[] = values['kernel-only'] ? ['kernel-only'] : (values.modes!.split(',') as LabMode[]);
  for (const m of modes) {
    if (m !== 'kernel-only' && !(m in FRONT_CONFIGS)) throw new Error(`unknown mode ${m}`);
  }

  let lab: Lab | undefined;
  let interrupted = false;
  const onSignal = (sig: string): void => {
    if (interrupted) return;
    interrupted = true;
    process.stderr.write(`\n${sig}: cleaning up\n`);
    // While the lab is being built there is no handle yet: main() sees `interrupted` and cleans up.
    if (lab) void lab.stop().finally(() => process.exit(130));
  };
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));

  let wrong = 0;
  try {
    const rows: string[][] = [['mode', 'client', 'address', 'expected', 'http', 'https', 'openssl', 'udp', 'source seen']];
    for (const [i, mode] of modes.entries()) {
      process.stdout.write(`== ${mode}: ${i === 0 ? 'building the lab' : 'restarting the front'}\n`);
      if (i === 0) lab = await Lab.start({ mode, families });
      else await lab!.restartFront(mode as Exclude<LabMode, 'kernel-only'>);
      if (interrupted) {
        await lab?.stop();
        return 130;
      }
      for (const c of CLIENT_NAMES) {
        if (!families.includes(CLIENTS[c].family)) continue;
        const exp = lab!.expectedServer(c);
        const res = [await lab!.curl(c), await lab!.https(c), await lab!.tls(c), await lab!.udp(c)];
        for (const r of res) if (!r.ok || r.server !== exp) wrong++;
        const seen = res[0]!.sawSource ?? '-';
        rows.push([mode, c, CLIENTS[c].address, exp, ...res.map((r) => cell(r, exp)), seen === CLIENTS[c].address ? seen : `${seen}!`]);
        for (const r of res) if (!r.ok) process.stdout.write(`   ${c}: ${r.detail}\n`);
      }
      if (mode !== 'kernel-only') {
        for (const s of ['front', 'back1', 'back2'] as ServiceName[]) {
          process.stdout.write(`-- ${mode} ${s} metrics (non-zero):\n`);
          try {
            for (const l of keyMetrics(await lab!.metrics(s))) process.stdout.write(`   ${l}\n`);
          } catch (e) {
            process.stdout.write(`   unavailable: ${(e as Error).message}\n`);
          }
        }
      }
    }
    const widths = rows[0]!.map((_, j) => Math.max(...rows.map((r) => r[j]!.length)));
    process.stdout.write('\n');
    for (const r of rows) process.stdout.write(`${r.map((v, j) => v.padEnd(widths[j]!)).join('  ')}\n`);
    process.stdout.write(`\n${wrong === 0 ? 'OK: every client reached the server its prefix names' : `FAILED: ${wrong} answers missing or from the wrong server (marked FAIL or !)`}\n`);
  } finally {
    await lab?.stop();
  }
  return wrong === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`lab failed: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  },
);

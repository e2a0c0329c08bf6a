// `npm run lab:draft`: the MSLB draft's other configurations in the routed lab
// (lab/topology-variants.ts, configs in deploy/lab/draft/), one report:
//   1. one arm (Figure 5), translate and encap: which server each client reached, and how many
//      answers crossed the front's only link (0: return traffic bypasses the front);
//   2. tunnel MTU (encap): a 1 MB upload per family, the path MTU the client cached from the
//      front's PTB / Frag Needed, then the same with a 1400-byte link in the middle (learned);
//   3. two stages (Figure 4), translate and encap: front -> front2 -> back1;
//   4. return encapsulation (section 6) behind an ingress filter on the router: without, with.
// Exit status 1 when anything that should work did not. Cleans up always (also on SIGINT/SIGTERM).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLIENTS, CLIENT_NAMES, PORTS, S4, S6, hostPart, serviceFor, type ClientName } from './address-plan.js';
import { Lab, type ServiceName } from './lab.js';
import { isRoot } from './netns.js';
import { setLinkMtu } from './topology-variants.js';

const D = 'deploy/lab/draft';
let failures = 0;

function line(s: string): void {
  process.stdout.write(`${s}\n`);
}

function check(ok: boolean, what: string): void {
  if (!ok) failures++;
  line(`   ${ok ? 'ok  ' : 'FAIL'} ${what}`);
}

async function clients(lab: Lab, want: (c: ClientName) => string): Promise<void> {
  for (const c of CLIENT_NAMES) {
    const http = await lab.curl(c, { timeoutMs: 3000 });
    const tls = await lab.tls(c, { timeoutMs: 3000 });
    check(http.ok && http.server === want(c) && tls.ok && tls.server === want(c), `${c} (${CLIENTS[c].address}): http ${http.ok ? http.server : 'FAIL'}, tls ${tls.ok ? tls.server : 'FAIL'} (expected ${want(c)})`);
  }
}

function cachedMtu(lab: Lab, dst: string, src: string): string {
  const out = lab.set.exec(lab.ns.client, 'ip', [dst.includes(':') ? '-6' : '-4', 'route', 'get', dst, 'from', src]);
  return /\bmtu (\d+)/.exec(out)?.[1] ?? 'none';
}

async function upload(lab: Lab, file: string, src: string, dst: string): Promise<boolean> {
  const r = await lab.set.run(lab.ns.client, 'curl', ['-sS', '--max-time', '30', '--interface', src, '--data-binary', `@${file}`, `http://${hostPart(dst)}:${PORTS.http}/upload`], { timeoutMs: 35_000 });
  return r.code === 0 && /\n1048576 [0-9a-f]{64}\n/.test(r.stdout);
}

/** Restart a front-role service with another config; on failure say why (its log). */
async function restart(lab: Lab, name: 'front' | 'front2', config: string): Promise<void> {
  try {
    if (name === 'front') await lab.restartFront(config);
    else await lab.startService(name, config);
  } catch (e) {
    throw new Error(`${(e as Error).message}\n--- ${name} log:\n${lab.serviceLog(name).slice(-2000)}`);
  }
}

async function counters(lab: Lab, svc: ServiceName, names: string[]): Promise<string> {
  const text = await lab.metrics(svc);
  return names
    .map((n) => text.split('\n').filter((l) => l.startsWith(n) && !/\s0$/.test(l)).join(', '))
    .filter(Boolean)
    .join(', ');
}

async function main(): Promise<number> {
  if (!isRoot()) {
    process.stderr.write('the lab needs root (network namespaces, TUN devices)\n');
    return 2;
  }
  let lab: Lab | undefined;
  let interrupted = false;
  const onSignal = (sig: string): void => {
    if (interrupted) return;
    interrupted = true;
    process.stderr.write(`\n${sig}: cleaning up\n`);
    if (lab) void lab.stop().finally(() => process.exit(130));
  };
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  try {
    line('== building the routed lab (client -- net -- front on one arm; net -- back1/back2 -- servers)');
    lab = await Lab.start({ mode: 'translate', variant: 'routed', frontConfig: `${D}/front-translate.yaml` });
    const l = lab;

    for (const mode of ['translate', 'encap'] as const) {
      line(`== 1. one arm (Figure 5), ${mode}`);
      if (mode === 'encap') await restart(l, 'front', `${D}/front-encap.yaml`);
      const cap = await l.capture('front-link', { filter: 'tcp or ip proto 4 or ip6 proto 41' });
      await clients(l, (c) => l.expectedServer(c));
      const s = await cap.stop();
      let answers = 0;
      for (const c of CLIENT_NAMES) {
        const k = `${serviceFor(CLIENTS[c].family)} > ${CLIENTS[c].address}`;
        answers += (s.pairs[k] ?? 0) + (s.innerPairs[k] ?? 0);
      }
      check(answers === 0 && s.count > 0, `front's link: ${s.count} packets, ${answers} answers (return traffic bypasses the front)`);
    }

    line('== 2. tunnel MTU (encap over a 1500-byte fabric)');
    const file = join(l.workDir, 'upload.bin');
    writeFileSync(file, Buffer.alloc(1 << 20, 'mslb-draft-lab.'));
    const C6 = CLIENTS.c1v6.address, C4 = CLIENTS.c1v4.address;
    for (const [label, mtu6, mtu4] of [['1500 fabric', '1460', '1480'], ['1400 link between net and back1', '1360', '1380']] as const) {
      if (mtu6 === '1360') setLinkMtu(l.topo, 'back1-link', 1400);
      const ok6 = await upload(l, file, C6, S6);
      const ok4 = await upload(l, file, C4, S4);
      check(ok6 && cachedMtu(l, S6, C6) === mtu6, `${label}: 1 MB upload over IPv6 ${ok6 ? 'complete' : 'FAILED'}, client caches mtu ${cachedMtu(l, S6, C6)} (expected ${mtu6})`);
      check(ok4 && cachedMtu(l, S4, C4) === mtu4, `${label}: 1 MB upload over IPv4 ${ok4 ? 'complete' : 'FAILED'}, client caches mtu ${cachedMtu(l, S4, C4)} (expected ${mtu4})`);
    }
    setLinkMtu(l.topo, 'back1-link', 1500);
    line(`   front: ${await counters(l, 'front', ['mslb_icmp_sent_total', 'mslb_pmtu_learned_total', 'mslb_drops_total{reason="too_big"}'])}`);

    for (const mode of ['translate', 'encap'] as const) {
      line(`== 3. two stages (Figure 4), ${mode}: front -> front2 -> back1 -> server1`);
      if (mode === 'translate') await restart(l, 'front2', `${D}/front2.yaml`);
      await restart(l, 'front', `${D}/front-stage1-${mode}.yaml`);
      await clients(l, () => 'server1');
    }
    line(`   front2: ${await counters(l, 'front2', ['mslb_tunnel_unwrapped_total', 'mslb_decisions_total'])}`);
    await l.stopService('front2');

    line('== 4. return encapsulation (section 6) behind an ingress filter on the router (drops src = S from the backs)');
    await restart(l, 'front', `${D}/front-encap.yaml`);
    l.set.exec(l.ns.net, 'nft', ['-f', '-'], {
      input: `table inet bcp38 {\n  chain ingress_filter {\n    type filter hook forward priority 0; policy accept;\n    iifname { "eth-back1", "eth-back2" } ip saddr ${S4} drop\n    iifname { "eth-back1", "eth-back2" } ip6 saddr ${S6} drop\n  }\n}\n`,
    });
    const blocked = await l.curl('c1v6', { timeoutMs: 2000 });
    check(!blocked.ok, `without return encapsulation: c1v6 ${blocked.ok ? 'got an answer (the filter is not filtering)' : 'gets no answer'}`);
    for (const b of ['back1', 'back2'] as const) {
      await l.stopService(b);
      await l.startService(b, `${D}/${b}-return-encap.yaml`);
    }
    await clients(l, (c) => l.expectedServer(c));
    line(`   back1: ${await counters(l, 'back1', ['mslb_return_encapsulated_total', 'mslb_icmp_sent_total'])}`);
    line(`   front: ${await counters(l, 'front', ['mslb_tunnel_unwrapped_total'])}`);
  } finally {
    await lab?.stop();
  }
  line(failures === 0 ? '\nOK: every check passed' : `\nFAILED: ${failures} checks`);
  return failures === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`lab failed: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  },
);

// The lab's servers: in each server namespace, lab-server (HTTP :80, HTTPS :443, UDP echo :7) and
// openssl s_server -www on :4433 per family, all bound to S; each with its own self-signed
// certificate whose CN is the server name, so a TLS handshake alone tells which server answered.
import { join } from 'node:path';
import { S4, S6, PORTS, hostPart, type ServerName } from './address-plan.js';
import { sh, waitForOutput } from './netns.js';
import { distFile } from './paths.js';
import type { Topology } from './topology.js';

export const SERVER_NAMES: ServerName[] = ['server1', 'server2'];

/** Self-signed EC certificate for `name` with S in subjectAltName; returns the file paths. */
export function makeCert(dir: string, name: string): { cert: string; key: string } {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  sh('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=${name}`,
    '-addext', `subjectAltName=IP:${S6},IP:${S4}`,
  ]);
  return { cert, key };
}

/** Start every server process; resolves when all listen (bounded by timeoutMs each). */
export async function startServers(topo: Topology, certDir: string, timeoutMs = 10_000): Promise<void> {
  const script = distFile('lab/lab-server.js');
  const addrs = topo.families.map((f) => (f === 'ipv6' ? S6 : S4));
  const waits: Promise<string>[] = [];
  for (const name of SERVER_NAMES) {
    const ns = topo.ns[name];
    const { cert, key } = makeCert(certDir, name);
    const p = topo.set.spawn(ns, process.execPath, [
      script, '--name', name, ...addrs.flatMap((a) => ['--addr', a]), '--cert', cert, '--key', key,
      '--http', String(PORTS.http), '--https', String(PORTS.https), '--udp', String(PORTS.udpEcho),
    ]);
    waits.push(waitForOutput(p, /^ready$/m, timeoutMs, `${name} lab-server`));
    for (const a of addrs) {
      const s = topo.set.spawn(ns, 'openssl', [
        's_server', '-accept', `${hostPart(a)}:${PORTS.opensslTls}`, '-cert', cert, '-key', key, '-www',
      ]);
      waits.push(waitForOutput(s, /ACCEPT/, timeoutMs, `${name} openssl s_server on ${a}`));
    }
  }
  await Promise.all(waits);
}

// The session-persistence e2e lab (test/e2e/persistence-*.test.ts): the standard lab in IPv6,
// translate mode, plus
//   - a second service address VIP2 (the deck's VIP1 = S6, VIP2 = 2001:db8:5::81),
//   - a third back and server (back3 -- server3, links 2001:db8:e5::/64 and 2001:db8:e6::/64),
//   - every back stamping LBSP on return traffic (returnPath eth-server, serverId = its B for S6),
//   - on every server, a line server (test/e2e/fixtures/name-server.py) on S6:21, S6:7000 and
//     VIP2:80 that names the server and echoes the Destination Options it received; the lab's
//     HTTP/HTTPS servers answer on S6:80/443 as usual.
// Configs are generated into a temporary directory, so a test can edit the table live.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Lab, type ServiceName } from '../../lab/lab.js';
import { S6, PORTS, CLIENTS } from '../../lab/address-plan.js';
import { waitFor, waitForOutput } from '../../lab/netns.js';
import { PYTHON, distFile, repoRoot } from '../../lab/paths.js';
import { makeCert } from '../../lab/servers.js';
import { validateTable } from '../../front/table/table-loader.js';
import { CompiledTable } from '../../front/table/compiled-table.js';
import { parseAddress } from '../../shared/table/addr.js';
import { decide, DecisionInput, DecisionResult } from '../../front/decision.js';

export const VIP1 = S6;
export const VIP2 = '2001:db8:5::81';
export const LINE_PORT = 7000;
export const FTP_PORT = 21;
export type BackId = 'b1' | 'b2' | 'b3';
export const BACK_IDS: BackId[] = ['b1', 'b2', 'b3'];
/** Each back's address for VIP1 (also its LBSP serverId) and for VIP2, its namespace, its server. */
export const PBACKS: Record<BackId, { vip1: string; vip2: string; ns: 'back1' | 'back2' | 'back3'; server: string; admin: number }> = {
  b1: { vip1: '2001:db8:b::1', vip2: '2001:db8:b::11', ns: 'back1', server: 'server1', admin: 9102 },
  b2: { vip1: '2001:db8:b::2', vip2: '2001:db8:b::12', ns: 'back2', server: 'server2', admin: 9103 },
  b3: { vip1: '2001:db8:b::3', vip2: '2001:db8:b::13', ns: 'back3', server: 'server3', admin: 9104 },
};
/** front <-> back3 and back3 <-> server3 links (documentation prefix). */
export const LINK_B3 = { front: '2001:db8:e5::1', back: '2001:db8:e5::2' };
export const LINK_S3 = { back: '2001:db8:e6::1', server: '2001:db8:e6::2' };
const SERVER_LINK: Record<BackId, { back: string; server: string }> = {
  b1: { back: '2001:db8:e3::1', server: '2001:db8:e3::2' },
  b2: { back: '2001:db8:e4::1', server: '2001:db8:e4::2' },
  b3: LINK_S3,
};
const FRONT_LINK: Record<BackId, { front: string; back: string }> = {
  b1: { front: '2001:db8:e1::1', back: '2001:db8:e1::2' },
  b2: { front: '2001:db8:e2::1', back: '2001:db8:e2::2' },
  b3: LINK_B3,
};

export function backFor(server: string | undefined): BackId | undefined {
  return BACK_IDS.find((b) => PBACKS[b].server === server);
}

/** The `backs:` part of a table with b1..b3 (addresses per service), plus extra keys per back. */
export function tableBacks(extra: Partial<Record<BackId, Record<string, unknown>>> = {}): Record<string, unknown> {
  return Object.fromEntries(BACK_IDS.map((b) => [b, { addresses: { [VIP1]: PBACKS[b].vip1, [VIP2]: PBACKS[b].vip2 }, ...(extra[b] ?? {}) }]));
}

export interface PersistenceLab {
  lab: Lab;
  dir: string;
  tablePath: string;
  /** Write a new table (an object) for the front to reload; resolves once it did (bounded). */
  editTable(table: unknown): Promise<void>;
  /** The pipeline's choice (no flow table) under the table now in the file. */
  predict(p: { src: string; service?: string; label?: number; lbspClient?: string; lbspServer?: string }): BackId;
  stop(): Promise<void>;
}

function yamlOf(v: unknown): string {
  return JSON.stringify(v, null, 1); // JSON is YAML
}

export function compileForPrediction(table: unknown): CompiledTable {
  const services = [VIP1, VIP2];
  const v = validateTable(table, 'prediction', { services, mode: 'translate', encap: { source: 'service', source4: '', source6: '' } });
  if (!v.table) throw new Error(`table does not validate: ${JSON.stringify(v.errors)}`);
  const slots = new Map<string, number>();
  return CompiledTable.compile(v.table, {
    services, flowLabelEnabled: true, lbspEnabled: true,
    slotOf: (n) => { if (!slots.has(n)) slots.set(n, slots.size); return slots.get(n)!; },
  });
}

export function predictWith(t: CompiledTable, p: { src: string; service?: string; label?: number; lbspClient?: string; lbspServer?: string }): BackId {
  const inp = new DecisionInput();
  inp.family = 6;
  inp.src.set(parseAddress(p.src)!.words);
  inp.service.set(parseAddress(p.service ?? VIP1)!.words);
  inp.flowLabel = p.label ?? 0;
  if (p.lbspClient !== undefined) {
    inp.hasLbsp = true;
    inp.lbspClient.set(parseAddress(p.lbspClient)!.words);
    inp.lbspServer.set(parseAddress(p.lbspServer ?? '::')!.words);
  }
  const r = new DecisionResult();
  decide(t, inp, r);
  if (r.back < 0) throw new Error(`no back for ${JSON.stringify(p)}`);
  return t.meta.backNames[r.back] as BackId;
}

/** Start the lab with `table` (an object) in force. */
export async function startPersistenceLab(table: unknown): Promise<PersistenceLab> {
  const dir = mkdtempSync(join(tmpdir(), 'mslb-persist-'));
  const tablePath = join(dir, 'table.yaml');
  writeFileSync(tablePath, yamlOf(table));
  writeFileSync(join(dir, 'front.yaml'), yamlOf({
    tun: { name: 'mslbf0', mtu: 1500, queues: 1, routes: [`${VIP1}/128`, `${VIP2}/128`] },
    services: [VIP1, VIP2],
    table: './table.yaml',
    mode: 'translate',
    lbsp: { enabled: true, optionType: 0x1e },
    flowLabel: { enabled: true },
    admin: { listen: '[::1]:9101' },
  }));
  for (const b of BACK_IDS) {
    const x = PBACKS[b];
    writeFileSync(join(dir, `${x.ns}.yaml`), yamlOf({
      tun: { name: 'mslbb0', mtu: 1500, queues: 1, routes: [`${x.vip1}/128`, `${x.vip2}/128`] },
      addresses: [{ address: x.vip1, service: VIP1, mode: 'translate' }, { address: x.vip2, service: VIP2, mode: 'translate' }],
      lbsp: { stamp: true, optionType: 0x1e },
      returnPath: { interface: 'eth-server' },
      admin: { listen: `[::]:${x.admin}` },
    }));
  }
  let lab: Lab | undefined;
  try {
    lab = await Lab.start({
      mode: 'translate', families: ['ipv6'],
      frontConfig: join(dir, 'front.yaml'),
      backConfigs: { back1: join(dir, 'back1.yaml'), back2: join(dir, 'back2.yaml') },
    });
    await extend(lab, dir);
  } catch (e) {
    await lab?.stop();
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const l = lab;
  let current = table;
  let compiled: CompiledTable | undefined;
  let compiledFor: unknown;
  return {
    lab: l, dir, tablePath,
    async editTable(next: unknown) {
      if (yamlOf(next) === yamlOf(current)) return; // an unchanged file installs (and counts) nothing
      const before = await l.metric('front', 'mslb_config_reloads_total', { result: 'success' });
      writeFileSync(tablePath, yamlOf(next));
      current = next;
      await waitFor(async () => (await l.metric('front', 'mslb_config_reloads_total', { result: 'success' })) > before, 10_000, 'table reload');
    },
    predict(p) {
      if (compiledFor !== current) { compiled = compileForPrediction(current); compiledFor = current; }
      return predictWith(compiled!, p);
    },
    async stop() {
      await l.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** back3/server3, VIP2, the line servers, client source addresses. */
async function extend(lab: Lab, dir: string): Promise<void> {
  const topo = lab.topo;
  const set = lab.set;
  const ns = topo.ns as unknown as Record<string, string>;
  const back3 = topo.addNamespace('back3', true);
  const server3 = topo.addNamespace('server3');
  topo.link('back3-link', { ns: ns.front!, iface: 'eth-back3' }, { ns: back3, iface: 'eth-front' }, { v6: [LINK_B3.front, LINK_B3.back], v4: [] });
  topo.link('server3-link', { ns: back3, iface: 'eth-server' }, { ns: server3, iface: 'eth-back' }, { v6: [LINK_S3.back, LINK_S3.server], v4: [] });
  for (const c of Object.values(CLIENTS)) if (c.family === 'ipv6') set.ip(back3, `route replace ${c.prefix} via ${LINK_B3.front}`);
  set.ip(back3, `route replace ${VIP1}/128 via ${LINK_S3.server}`);
  set.ip(server3, `addr add ${VIP1}/128 dev lo`);
  set.ip(server3, `route add default via ${LINK_S3.back}`);
  // VIP2 everywhere: on every server's lo, routed by the backs to their server and by the client to the front.
  set.ip(ns.client!, `route replace ${VIP2}/128 via 2001:db8:e0::1`);
  for (const b of BACK_IDS) {
    const x = PBACKS[b];
    set.ip(ns[x.server]!, `addr add ${VIP2}/128 dev lo`);
    set.ip(ns[x.ns]!, `route replace ${VIP2}/128 via ${SERVER_LINK[b].server}`);
    // the front reaches each back's addresses over its link (the topology routes only b::1, b::2)
    for (const a of [x.vip1, x.vip2]) set.ip(ns.front!, `route replace ${a}/128 via ${FRONT_LINK[b].back}`);
  }
  // server3: the lab's HTTP/HTTPS server on S6 (as server1/2 have).
  const cert = makeCert(lab.workDir, 'server3');
  const waits: Promise<string>[] = [];
  const ls = set.spawn(server3, process.execPath, [distFile('lab/lab-server.js'), '--name', 'server3', '--addr', VIP1, '--cert', cert.cert, '--key', cert.key,
    '--http', String(PORTS.http), '--https', String(PORTS.https), '--udp', String(PORTS.udpEcho)]);
  waits.push(waitForOutput(ls, /^ready$/m, 10_000, 'server3 lab-server'));
  const script = join(repoRoot(), 'test/e2e/fixtures/name-server.py');
  for (const b of BACK_IDS) {
    const srv = PBACKS[b].server;
    const p = set.spawn(ns[srv]!, PYTHON, [script, srv, `[${VIP1}]:${FTP_PORT}`, `[${VIP1}]:${LINE_PORT}`, `[${VIP2}]:80`]);
    waits.push(waitForOutput(p, /^ready$/m, 10_000, `${srv} name-server`));
  }
  await Promise.all(waits);
  await lab.startService('back3' as ServiceName, join(dir, 'back3.yaml'));
}

export interface ConnSpec {
  src: string;
  dst?: string;
  port?: number;
  mode?: 'http' | 'https' | 'line' | 'bulk';
  /** bulk: bytes the server sends back after its line. */
  bytes?: number;
  label?: number | null;
  lbsp?: { type?: number; client: string; server: string } | null;
  timeout?: number;
}
export interface ConnResult {
  ok: boolean;
  server?: string;
  line?: string;
  bytes?: number;
  sentServer?: string;
  lbspBack?: { type: number; client: string; server: string } | { raw: string } | null;
  error?: string;
}

/** Run connections one after the other from `ns` (default: the client) with persist-client.py. */
export async function connect(lab: Lab, specs: ConnSpec[], ns?: string): Promise<ConnResult[]> {
  const full = specs.map((s) => ({ dst: VIP1, port: PORTS.http, mode: 'http', label: null, lbsp: null, timeout: 4, ...s }));
  const budget = full.reduce((t, s) => t + (s.timeout + 1) * 1000, 5000);
  const r = await lab.set.run(ns ?? lab.ns.client, PYTHON, [join(repoRoot(), 'test/e2e/fixtures/persist-client.py'), JSON.stringify(full)], { timeoutMs: budget });
  const out = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as ConnResult);
  if (out.length !== specs.length) throw new Error(`persist-client: ${out.length} of ${specs.length} results (exit ${r.code}): ${r.stderr.slice(-500)}`);
  return out;
}

/** Add /128 source addresses to the client's lo (inside the client prefixes the lab routes). */
export function addClientAddresses(lab: Lab, addrs: string[]): void {
  for (const a of addrs) lab.set.ip(lab.ns.client, `addr add ${a}/128 dev lo`);
}

// Flow-label persistence and the front's flow table, end to end with real Linux TCP sockets
// (labels pinned with IPV6_FLOWLABEL_MGR + IPV6_FLOWINFO_SEND, test/e2e/fixtures/persist-client.py)
// over the 3-back persistence lab, pool `web: [b1, b2, b3], key: label`:
//   - one label from many source addresses: one back;
//   - labels spread: an even share per back (stated tolerance over a stated number of labels), each
//     connection where the pipeline predicts;
//   - a live connection whose label changes (Linux re-randomises its automatic label on every
//     retransmission timeout; the test forces RTOs by dropping the connection's packets before the
//     front for a moment with nft) keeps its back thanks to the flow table; a table edit that moves its prefix does not
//     break it, while new connections follow the edit;
//   - marking one back down (its health check fails) moves only the labels that were on it.
// Needs root and `npm run build`.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { isRoot } from '../helpers/netns.js';
import { waitFor } from '../../lab/netns.js';
import { PYTHON, repoRoot } from '../../lab/paths.js';
import { captureFields } from '../helpers/datapath.js';
import {
  BACK_IDS, LINE_PORT, LINK_B3, PBACKS, VIP1, addClientAddresses, backFor, connect, startPersistenceLab, tableBacks,
  type BackId, type PersistenceLab,
} from '../helpers/persistence-lab.js';

// fall 3 x timeout 2 s: a loaded test machine does not flap b3; a stopped back3 refuses at once (~3 s)
const HEALTH_B3 = { url: `http://[${LINK_B3.back}]:${PBACKS.b3.admin}/readyz`, interval: 1, timeout: 2, rise: 1, fall: 3 };
const TABLE = {
  backs: tableBacks({ b3: { healthCheck: HEALTH_B3 } }),
  pools: { web: { members: ['b1', 'b2', 'b3'], key: 'label' } },
  routes: [{ source: '::/0', to: 'web' }],
};
/** Client source addresses inside 2001:db8:c1::/48 (routed to the client by the lab). */
const SOURCES = Array.from({ length: 40 }, (_, i) => `2001:db8:c1::1:${(i + 1).toString(16)}`);
const SPREAD_LABELS = 300;
const SPREAD_TOLERANCE = 0.25; // each back within +-25% of the fair share (100 of 300)

/** Distinct labels from a fixed LCG (deterministic run to run), below 0x80000 (managed-label range). */
function labels(n: number): number[] {
  const out = new Set<number>();
  let x = 12345;
  while (out.size < n) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    const l = (x >>> 8) & 0x7ffff;
    if (l !== 0) out.add(l);
  }
  return [...out];
}

/** A held-conn.py child: JSON lines out, commands in. */
class Held {
  private readonly lines: string[] = [];
  private waiter: (() => void) | undefined;
  constructor(readonly proc: ChildProcess) {
    createInterface({ input: proc.stdout! }).on('line', (l) => { this.lines.push(l); this.waiter?.(); });
  }
  async next(timeoutMs = 15_000): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    while (this.lines.length === 0) {
      if (Date.now() > deadline || this.proc.exitCode !== null) throw new Error(`held-conn: no answer (exit ${this.proc.exitCode})`);
      await new Promise<void>((r) => { this.waiter = r; setTimeout(r, 200); });
    }
    return JSON.parse(this.lines.shift()!) as Record<string, unknown>;
  }
  async cmd(c: string): Promise<Record<string, unknown>> {
    this.proc.stdin!.write(`${c}\n`);
    return this.next();
  }
}

describe.skipIf(!isRoot())('session persistence: flow label, flow table', () => {
  let pl: PersistenceLab;
  const lbls = labels(SPREAD_LABELS);
  let before: Map<number, BackId> | undefined;

  beforeAll(async () => {
    pl = await startPersistenceLab(TABLE);
    addClientAddresses(pl.lab, SOURCES);
    await waitFor(async () => (await pl.lab.metric('front', 'mslb_backend_up', { backend: 'b3' })) === 1, 15_000, 'b3 up');
  }, 120_000);
  afterAll(async () => {
    await pl?.stop();
  }, 30_000);

  async function spread(): Promise<Map<number, BackId>> {
    const up = async () => Promise.all(BACK_IDS.map((b) => pl.lab.metric('front', 'mslb_backend_up', { backend: b })));
    const up0 = await up();
    const res = await connect(pl.lab, lbls.map((label, i) => ({ src: SOURCES[i % SOURCES.length]!, label, port: LINE_PORT, mode: 'line' as const, timeout: 3 })));
    const ms = res.map((r) => (r as { ms?: number }).ms ?? 0).sort((a, b) => a - b);
    const cms = res.map((r) => (r as { connectMs?: number }).connectMs ?? 0).sort((a, b) => a - b);
    console.log(`connection times: median ${ms[ms.length >> 1]} ms (connect ${cms[cms.length >> 1]} ms), max ${ms.at(-1)} ms`);
    const m = new Map<number, BackId>();
    res.forEach((r, i) => {
      expect(r, `label ${lbls[i]}`).toMatchObject({ ok: true });
      m.set(lbls[i]!, backFor(r.server)!);
    });
    expect(await up(), 'no back changed state during the run').toEqual(up0);
    return m;
  }

  it('one flow label from many source addresses lands on one back', async () => {
    const label = 0x4242;
    const want = pl.predict({ src: SOURCES[0]!, label });
    const d0 = await pl.lab.metric('front', 'mslb_decisions_total', { reason: 'flow_label' });
    const res = await connect(pl.lab, SOURCES.map((src) => ({ src, label, port: LINE_PORT, mode: 'line' as const })));
    const servers = new Set(res.map((r) => r.server));
    console.log(`label 0x${label.toString(16)} from ${SOURCES.length} sources -> ${[...servers].join(', ')}`);
    for (const r of res) expect(r).toMatchObject({ ok: true, server: PBACKS[want].server });
    expect((await pl.lab.metric('front', 'mslb_decisions_total', { reason: 'flow_label' })) - d0).toBe(SOURCES.length);
    // every connection was pinned (entries of closed connections linger for the 10 s closing timeout)
    expect(await pl.lab.metric('front', 'mslb_flow_table_entries')).toBeGreaterThanOrEqual(SOURCES.length);
  }, 60_000);

  it(`${SPREAD_LABELS} labels spread evenly (each back within ${SPREAD_TOLERANCE * 100}% of its share), each where the pipeline predicts`, async () => {
    before = await spread();
    const count: Record<BackId, number> = { b1: 0, b2: 0, b3: 0 };
    let mispredicted = 0;
    for (const [label, b] of before) {
      count[b]++;
      if (pl.predict({ src: SOURCES[0]!, label }) !== b) mispredicted++;
    }
    const fair = SPREAD_LABELS / 3;
    console.log(`spread of ${SPREAD_LABELS} labels over 3 backs: ${BACK_IDS.map((b) => `${b}=${count[b]}`).join(' ')} (fair ${fair.toFixed(1)})`);
    for (const b of BACK_IDS) expect(Math.abs(count[b] - fair) / fair, b).toBeLessThanOrEqual(SPREAD_TOLERANCE);
    expect(mispredicted).toBe(0);
  }, 90_000);

  it('a live connection whose flow label changes keeps its back; a table edit moving its prefix does not break it, new connections follow the edit', async () => {
    const lab = pl.lab;
    const src = SOURCES[0]!;
    const script = join(repoRoot(), 'test/e2e/fixtures/held-conn.py');
    const held = new Held(lab.set.spawn(lab.ns.client, PYTHON, [script, src, VIP1, String(LINE_PORT)], { stdio: ['pipe', 'pipe', 'pipe'] }));
    try {
      const { connected: sport } = await held.next();
      expect(typeof sport).toBe('number');
      const cap0 = await lab.capture('client-link', { filter: `tcp and port ${LINE_PORT}` });
      const first = await held.cmd('ping');
      await cap0.stop();
      const home = backFor(first.server as string)!;
      expect(home).toBeDefined();
      const original = captureFields(lab, cap0, `tcp.srcport == ${sport}`).map((p) => p.ip[0]!.flow);
      expect(original.length).toBeGreaterThan(0);
      const miss0 = await lab.metric('front', 'mslb_flow_table_misses_nonsyn_total');
      const hits0 = await lab.metric('front', 'mslb_flow_table_hits_total');
      // Force retransmission timeouts until the front has forwarded a packet of this connection
      // whose label the pipeline alone would send to another back: each round, the network before
      // the front (its prerouting hook) drops the connection for 0.5 s while a line is in flight;
      // the client retransmits after RTOs, each with a new label, and the front forwards the one
      // that gets through. The capture on home's link holds exactly what the front forwarded there.
      const seen = new Set<number>(original);
      let elsewhere: { label: number; back: BackId } | undefined;
      const block = `table inet mslbtest { chain p { type filter hook prerouting priority -300; tcp sport ${sport} drop; }; }`;
      for (let round = 0; round < 8 && !elsewhere; round++) {
        const cap = await lab.capture(`${PBACKS[home].ns}-link`, { filter: `tcp and port ${LINE_PORT}` });
        lab.set.exec(lab.ns.front, 'nft', ['-f', '-'], { input: block });
        try {
          await held.cmd('send');
          await new Promise((r) => setTimeout(r, 500));
        } finally {
          lab.set.exec(lab.ns.front, 'nft', ['delete', 'table', 'inet', 'mslbtest']);
        }
        const ans = await held.cmd('recv');
        await cap.stop();
        expect(ans, `round ${round}`).toMatchObject({ server: PBACKS[home].server });
        for (const p of captureFields(lab, cap, `tcp.srcport == ${sport}`)) {
          const label = p.ip[0]!.flow;
          if (seen.has(label)) continue;
          seen.add(label);
          const b = pl.predict({ src, label });
          if (b !== home && !elsewhere) elsewhere = { label, back: b };
        }
      }
      console.log(`held connection on ${home}: labels seen at the front ${[...seen].map((l) => `0x${l.toString(16)}`).join(', ')}; ` +
        `${elsewhere ? `0x${elsewhere.label.toString(16)} alone would go to ${elsewhere.back}` : 'none hashed elsewhere'}`);
      expect(seen.size).toBeGreaterThanOrEqual(2);
      expect(elsewhere).toBeDefined();
      expect((await held.cmd('ping')).server).toBe(PBACKS[home].server);
      expect(await lab.metric('front', 'mslb_flow_table_misses_nonsyn_total')).toBe(miss0);
      expect(await lab.metric('front', 'mslb_flow_table_hits_total')).toBeGreaterThan(hits0);

      // Table edit: every source now routed to another back.
      const other = BACK_IDS.find((b) => b !== home && b !== 'b3') ?? BACK_IDS.find((b) => b !== home)!;
      await pl.editTable({ ...TABLE, routes: [{ source: '::/0', to: other }] });
      for (let k = 0; k < 3; k++) expect((await held.cmd('ping')).server, 'held connection after the edit').toBe(PBACKS[home].server);
      const fresh = await connect(lab, [{ src, port: LINE_PORT, mode: 'line' }, { src: SOURCES[1]!, label: elsewhere!.label }]);
      for (const r of fresh) expect(r, 'new connection after the edit').toMatchObject({ ok: true, server: PBACKS[other].server });
      expect(await lab.metric('front', 'mslb_flow_table_misses_nonsyn_total')).toBe(miss0);
      console.log(`after the edit (all sources -> ${other}): held connection still on ${home}, new connections on ${other}`);
    } finally {
      held.proc.stdin!.end('quit\n');
      await pl.editTable(TABLE);
    }
  }, 120_000);

  it('marking one back down (health check fails) moves only the labels that were on it', async () => {
    const lab = pl.lab;
    before ??= await spread();
    await lab.stopService('back3' as never);
    await waitFor(async () => (await lab.metric('front', 'mslb_backend_up', { backend: 'b3' })) === 0, 15_000, 'b3 marked down');
    const after = await spread();
    let movedFromB3 = 0, movedOthers = 0, onB3 = 0;
    for (const [label, b] of before) {
      const now = after.get(label)!;
      expect(now).not.toBe('b3');
      if (b === 'b3') { onB3++; if (now !== 'b3') movedFromB3++; }
      else if (now !== b) movedOthers++;
    }
    console.log(`b3 down: ${movedFromB3} of ${onB3} labels on b3 moved; labels on b1/b2 that moved: ${movedOthers} of ${SPREAD_LABELS - onB3}`);
    expect(movedFromB3).toBe(onB3);
    expect(movedOthers).toBe(0);
  }, 90_000);
});

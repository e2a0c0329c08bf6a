// What a client can and cannot choose with LBSP, and taking a back out gently, end to end:
//   - lbsp.stamp: true answers the option only where the client sent it (tshark: no Destination
//     Options header on replies to a client without LBSP); always stamps every reply;
//   - a server segment naming a back of another service is ignored and counted, one naming another
//     back of the service is honoured; an anonymous client segment no route covers is keyed by source;
//   - drain: a pool member at weight 0 keeps its running upload to the end, new connections with
//     the same key go elsewhere at once, and mslb_backend_flows{backend} falls to 0 afterwards.
// Needs root and `npm run build`.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isRoot } from '../helpers/netns.js';
import { waitFor } from '../../lab/netns.js';
import { PYTHON } from '../../lab/paths.js';
import { CLIENTS, PORTS } from '../helpers/lab.js';
import type { ServiceName } from '../../lab/lab.js';
import {
  LINE_PORT, PBACKS, VIP1, VIP2, addClientAddresses, compileForPrediction, connect, predictWith, startPersistenceLab, tableBacks,
  type BackId, type PersistenceLab,
} from '../helpers/persistence-lab.js';

const PROXY1 = CLIENTS.c1v6.address;
const C1 = '2001:db8:100::c1';
const ANON = 'fd00:5eed::1234'; // an anonymous client segment: no route covers it
const POOL = (b1Weight: number) => ({ p1: { members: [{ back: 'b1', weight: b1Weight }, 'b2'], key: 'source' } });
const table = (b1Weight = 1) => ({
  backs: tableBacks(),
  pools: POOL(b1Weight),
  routes: [
    { source: '2001:db8::/32', to: 'p1', service: VIP1 }, // VIP1 (S1): b1, b2
    { source: '::/0', to: 'b3', service: VIP2 }, // VIP2 (S2): b3 only
  ],
});

/** Replies from `from` to `to` in a capture, and how many carry a Destination Options header (tshark). */
function dstoptsCount(pl: PersistenceLab, file: string, ns: string, from: string, to: string): { replies: number; withDstOpts: number } {
  const count = (filter: string) => pl.lab.set.exec(ns, 'tshark', ['-r', file, '-Y', filter, '-T', 'fields', '-e', 'frame.number'], { timeoutMs: 30_000 })
    .split('\n').filter(Boolean).length;
  const base = `ipv6.src == ${from} && ipv6.dst == ${to} && tcp`;
  return { replies: count(base), withDstOpts: count(`${base} && ipv6.dstopts`) };
}

// Upload for `seconds`: one 1000-byte line every 20 ms, each answered by the server with a line
// naming it; the transfer is intact when every line got its answer from the same server.
const UPLOAD = `
import json, socket, sys, time
src, dst, port, secs = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
r = {"ok": False, "sent": 0, "answered": 0, "servers": []}
try:
    s = socket.create_connection((dst, port), timeout=5, source_address=(src, 0))
    f = s.makefile('rb')
    end = time.monotonic() + secs
    while time.monotonic() < end:
        s.sendall(b"u" * 999 + b"\\n")
        r["sent"] += 1
        line = f.readline()
        if not line:
            break
        name = line.decode().split(' ')[0]
        r["answered"] += 1
        if name not in r["servers"]:
            r["servers"].append(name)
        if r["answered"] == 1:
            print(json.dumps({"first": name}), flush=True)
        time.sleep(0.02)
    s.close()
    r["ok"] = r["sent"] == r["answered"]
except Exception as e:
    r["error"] = "%s: %s" % (type(e).__name__, e)
print(json.dumps(r), flush=True)
`;

describe.skipIf(!isRoot())('session persistence: LBSP trust, stamp modes, drain', () => {
  let pl: PersistenceLab;

  beforeAll(async () => {
    pl = await startPersistenceLab(table());
  }, 120_000);
  afterAll(async () => {
    await pl?.stop();
  }, 30_000);

  it('stamp: true leaves replies to a client without LBSP alone and stamps every reply to one with it; always stamps both', async () => {
    const lab = pl.lab;
    const run = async (spec: Parameters<typeof connect>[1][number]) => {
      const cap = await lab.capture('client-link', { filter: `ip6 host ${spec.dst}` });
      const [r] = await connect(lab, [spec]);
      const sum = await cap.stop();
      return { r: r!, ...dstoptsCount(pl, sum.file, cap.end.ns, spec.dst!, spec.src) };
    };
    // VIP1's backs b1/b2 stamp with `true` (the lab's back configs)
    const plain = await run({ src: PROXY1, dst: VIP1, port: PORTS.http, mode: 'http' });
    const withOpt = await run({ src: PROXY1, dst: VIP1, port: PORTS.http, mode: 'http', lbsp: { client: C1, server: '::' } });
    console.log(`stamp true: without LBSP ${plain.withDstOpts}/${plain.replies} replies with a Destination Options header; with LBSP ${withOpt.withDstOpts}/${withOpt.replies}`);
    expect(plain.r.ok).toBe(true);
    expect(plain.replies).toBeGreaterThanOrEqual(3);
    expect(plain.withDstOpts).toBe(0);
    expect(plain.r.lbspBack).toBeNull();
    expect(withOpt.r.ok).toBe(true);
    expect(withOpt.replies).toBeGreaterThanOrEqual(3);
    expect(withOpt.withDstOpts).toBe(withOpt.replies);
    const back = (['b1', 'b2'] as BackId[]).find((b) => PBACKS[b].server === withOpt.r.server)!;
    expect(withOpt.r.lbspBack).toEqual({ type: 0x1e, client: C1, server: PBACKS[back].vip1 });

    // back3 (VIP2's back) restarted with stamp: always
    const cfgPath = join(pl.dir, 'back3.yaml');
    const cfg = JSON.parse(readFileSync(cfgPath, 'utf8')) as { lbsp: { stamp: unknown } };
    cfg.lbsp.stamp = 'always';
    writeFileSync(cfgPath, JSON.stringify(cfg));
    await lab.stopService('back3' as ServiceName);
    await lab.startService('back3' as ServiceName, cfgPath);
    const aPlain = await run({ src: PROXY1, dst: VIP2, port: 80, mode: 'line' });
    const aOpt = await run({ src: PROXY1, dst: VIP2, port: 80, mode: 'line', lbsp: { client: C1, server: '::' } });
    console.log(`stamp always: without LBSP ${aPlain.withDstOpts}/${aPlain.replies}; with LBSP ${aOpt.withDstOpts}/${aOpt.replies}`);
    expect(aPlain.r).toMatchObject({ ok: true, server: 'server3' });
    expect(aPlain.replies).toBeGreaterThanOrEqual(3);
    expect(aPlain.withDstOpts).toBe(aPlain.replies);
    expect(aPlain.r.lbspBack).toEqual({ type: 0x1e, client: '::', server: PBACKS.b3.vip1 });
    expect(aOpt.r).toMatchObject({ ok: true, server: 'server3' });
    expect(aOpt.withDstOpts).toBe(aOpt.replies);
    expect(aOpt.r.lbspBack).toEqual({ type: 0x1e, client: C1, server: PBACKS.b3.vip1 });
  }, 90_000);

  it('a server segment naming a back of another service is ignored and counted; another back of the service is honoured; an anonymous client segment lands by source', async () => {
    const lab = pl.lab;
    const t = compileForPrediction(table());
    const ignored = (reason: string) => lab.metric('front', 'mslb_lbsp_ignored_total', { reason });
    const routeBack = predictWith(t, { src: PROXY1, lbspClient: C1, lbspServer: '::' });
    const other: BackId = routeBack === 'b1' ? 'b2' : 'b1';
    const os0 = await ignored('other_service');
    const fb0 = await lab.metric('front', 'mslb_lbsp_client_fallback_total');
    const dec0 = await lab.metric('front', 'mslb_decisions_total', { reason: 'lbsp_server' });
    const [s2, s1, anon] = await connect(lab, [
      { src: PROXY1, dst: VIP1, port: LINE_PORT, mode: 'line', lbsp: { client: C1, server: PBACKS.b3.vip1 } }, // b3: VIP2's back
      { src: PROXY1, dst: VIP1, port: LINE_PORT, mode: 'line', lbsp: { client: C1, server: PBACKS[other].vip1 } },
      { src: PROXY1, dst: VIP1, port: LINE_PORT, mode: 'line', lbsp: { client: ANON, server: '::' } },
    ]);
    const bySource = predictWith(t, { src: PROXY1 });
    console.log(`naming b3 (VIP2's): ${s2!.server} (route's back ${routeBack}); naming ${other}: ${s1!.server}; anonymous client segment: ${anon!.server} (by source ${bySource})`);
    expect(s2).toMatchObject({ ok: true, server: PBACKS[routeBack].server });
    expect((await ignored('other_service')) - os0).toBeGreaterThanOrEqual(1);
    expect(s1).toMatchObject({ ok: true, server: PBACKS[other].server });
    expect((await lab.metric('front', 'mslb_decisions_total', { reason: 'lbsp_server' })) - dec0).toBe(1);
    expect(anon).toMatchObject({ ok: true, server: PBACKS[bySource].server });
    expect((await lab.metric('front', 'mslb_lbsp_client_fallback_total')) - fb0).toBeGreaterThanOrEqual(1);
  }, 60_000);

  it('drain: an upload on b1 completes intact after b1 goes to weight 0, new connections with its key go elsewhere at once, mslb_backend_flows{backend="b1"} falls to 0', async () => {
    const lab = pl.lab;
    const t = compileForPrediction(table());
    // a client address whose key the pool gives to b1
    let src = '';
    for (let i = 0x100; i < 0x400 && src === ''; i++) {
      const a = `2001:db8:c1::${i.toString(16)}`;
      if (predictWith(t, { src: a }) === 'b1') src = a;
    }
    expect(src).not.toBe('');
    addClientAddresses(lab, [src]);
    const flows = () => lab.metric('front', 'mslb_backend_flows', { backend: 'b1' });

    const up = lab.set.spawn(lab.ns.client, PYTHON, ['-c', UPLOAD, src, VIP1, String(LINE_PORT), '8']);
    let out = '';
    up.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
    const ended = new Promise<void>((res) => up.on('exit', () => res()));
    await waitFor(() => out.includes('"first"'), 10_000, 'upload started');
    expect(out).toContain('"first": "server1"');
    expect(await flows()).toBeGreaterThanOrEqual(1);

    const t0 = Date.now();
    await pl.editTable(table(0));
    let moved = -1;
    let landed = '';
    while (Date.now() - t0 < 5000) {
      const [r] = await connect(lab, [{ src, dst: VIP1, port: LINE_PORT, mode: 'line', timeout: 2 }]);
      if (r!.ok && r!.server !== 'server1') { moved = Date.now() - t0; landed = r!.server!; break; }
    }
    const during = await flows();
    await ended;
    const res = JSON.parse(out.trim().split('\n').pop()!) as { ok: boolean; sent: number; answered: number; servers: string[]; error?: string };
    console.log(`drain: new connection from ${src} on ${landed} ${moved} ms after the edit; b1 flows during the upload ${during}; upload ${JSON.stringify(res)}`);
    expect(moved).toBeGreaterThanOrEqual(0);
    expect(moved).toBeLessThan(2000);
    expect(landed).toBe('server2');
    expect(during).toBeGreaterThanOrEqual(1);
    expect(res).toMatchObject({ ok: true, servers: ['server1'] });
    expect(res.sent).toBeGreaterThan(100);

    // closed: the entry idles out (FIN: 10 s) and the flow table's incremental sweep, which runs per
    // batch of packets, reclaims it; keep some packets flowing meanwhile
    const t1 = Date.now();
    await waitFor(async () => {
      try {
        lab.set.exec(lab.ns.client, 'ping', ['-6', '-c', '50', '-i', '0.01', '-q', '-I', src, VIP1], { timeoutMs: 10_000 });
      } catch { /* lost echoes do not matter: the packets crossed the front */ }
      return (await flows()) === 0;
    }, 60_000, 'mslb_backend_flows{backend="b1"} at 0');
    console.log(`drain: b1 flows at 0 ${Date.now() - t1} ms after the upload ended`);
  }, 120_000);
});

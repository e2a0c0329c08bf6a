// ICMP errors about the servers' packets reach the server that owns the flow (SPEC 2 step 6), on
// real kernel stacks (routed lab, lab/topology-variants.ts): the router `net` sits between the
// clients and everything else, and its link toward the clients is narrower than the servers' paths
// (1400 bytes; IPv6 routes toward the clients locked at 1280). Servers answer clients directly;
// their full-size answers make `net` send Packet Too Big / Fragmentation Needed to S, which is
// routed to the front. The table routes the router's own addresses to back2, so an error balanced
// by its source (as before) reaches server2 even for client prefix 1 (server1) and the download
// stalls. Steered by the quote, each error reaches the owning server (seen by tshark on the server
// links), whose kernel caches the lower MTU (`ip route get CLIENT`) with tcp_mtu_probing=0; each
// client's 1 MB download over HTTP completes. Then the same with a pool keyed by flow label
// (IPv6: a copy to every member that is up). Needs root and `npm run build`.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isRoot } from '../helpers/netns.js';
import { Lab, PORTS, S4, S6, hostPart, type Capture } from '../helpers/lab.js';
import { ROUTED } from '../../lab/topology-variants.js';

const CLIENTS = [
  { c: '2001:db8:c1::10', s: S6, server: 'server1' },
  { c: '2001:db8:c2::10', s: S6, server: 'server2' },
  { c: '203.0.113.10', s: S4, server: 'server1' },
  { c: '203.0.113.74', s: S4, server: 'server2' },
] as const;
const MB = 1 << 20;

function table(label: boolean): string {
  const to1 = label ? 'web' : 'b1';
  const to2 = label ? 'web' : 'b2';
  return `backs:
  b1: { addresses: { "2001:db8:5::80": "2001:db8:b::1", "192.0.2.80": "198.51.100.1" } }
  b2: { addresses: { "2001:db8:5::80": "2001:db8:b::2", "192.0.2.80": "198.51.100.2" } }
${label ? 'pools:\n  web: { members: [b1, b2], key: label }\n' : ''}routes:
  - { source: 2001:db8:c1::/48, to: ${to1} }
  - { source: 2001:db8:c2::/48, to: ${to2} }
  - { source: 203.0.113.0/26, to: b1 }
  - { source: 203.0.113.64/26, to: b2 }
  # the router's own addresses (its links) go to the other back
  - { source: 2001:db8:e0::/44, to: b2 }
  - { source: 203.0.113.128/26, to: b2 }
`;
}

function frontConfig(dir: string, label: boolean): string {
  const t = join(dir, label ? 'table-label.yaml' : 'table.yaml');
  writeFileSync(t, table(label));
  const f = join(dir, label ? 'front-label.yaml' : 'front.yaml');
  writeFileSync(f, `tun: { name: mslbf0, mtu: 1500, queues: 1, routes: [2001:db8:5::80/128, 192.0.2.80/32] }
services: [2001:db8:5::80, 192.0.2.80]
table: ${t}
mode: translate
${label ? 'flowLabel: { enabled: true }\n' : ''}icmp: { ratePerSecond: 100, burst: 50 }
admin: { listen: "[::1]:9101" }
`);
  return f;
}

describe.skipIf(!isRoot())('ICMP errors about the servers\' packets reach the owning server (routed lab)', () => {
  let lab: Lab;
  let dir: string;

  const fields = (cap: Capture, filter: string, f: string[]): string[][] =>
    lab.set
      .exec(cap.end.ns, 'tshark', ['-n', '-r', cap.file, '-Y', filter, '-T', 'fields', '-E', 'separator=\t', '-E', 'occurrence=a', '-E', 'aggregator=,', ...f.flatMap((x) => ['-e', x])], { timeoutMs: 60_000 })
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => l.split(/[\t,]/));
  /** The MTU the server's kernel has cached toward the client (0 when none). */
  const cached = (server: string, client: string, s: string): number => {
    const out = lab.set.exec(lab.ns[server as 'server1'], 'ip', [client.includes(':') ? '-6' : '-4', 'route', 'get', client, 'from', s]);
    const m = /\bmtu (\d+)/.exec(out);
    return m ? Number(m[1]) : 0;
  };

  async function narrow(): Promise<void> {
    const L = ROUTED.links.client;
    const l = lab.topo.linkOf('client-link');
    // only the router's side is narrow: the clients' own link says 1500, so their MSS lets the
    // servers send full-size packets, and the router must tell the servers
    lab.set.ip(l.far.ns, `link set dev ${l.far.iface} mtu 1400`);
    for (const p of ['2001:db8:c1::/48', '2001:db8:c2::/48']) lab.set.ip(l.far.ns, `-6 route replace ${p} via ${L.v6[0]} mtu lock 1280`);
    // one arm: the router's error comes back through the router on its way to the back, with the
    // router's own address as source, which Linux drops as martian unless told to accept it
    lab.set.exec(l.far.ns, 'sysctl', ['-qw', 'net.ipv4.conf.all.accept_local=1', 'net.ipv4.conf.eth-front.accept_local=1']);
    for (const srv of ['server1', 'server2'] as const) {
      lab.set.exec(lab.ns[srv], 'sysctl', ['-qw', 'net.ipv4.tcp_mtu_probing=0']);
    }
  }

  function flushServers(): void {
    for (const srv of ['server1', 'server2'] as const) {
      lab.set.exec(lab.ns[srv], 'ip', ['-6', 'route', 'flush', 'cache']);
      lab.set.exec(lab.ns[srv], 'ip', ['-4', 'route', 'flush', 'cache']);
    }
  }

  async function download(c: string, s: string): Promise<number> {
    const url = `http://${hostPart(s)}:${PORTS.http}/big?bytes=${MB}`;
    const r = await lab.set.run(lab.ns.client, 'curl', ['-sS', '-o', '/dev/null', '-w', '%{size_download}', '--max-time', '15', '--interface', c, url], { timeoutMs: 20_000 });
    return r.code === 0 ? Number(r.stdout.trim()) : -1;
  }

  /** Download for every client with captures on both server links; what each server saw. */
  async function round(): Promise<{ got: number[]; ptb: Record<string, string[][]>; fn: Record<string, string[][]> }> {
    flushServers();
    const caps = { server1: await lab.capture('server1-link', { filter: 'icmp6 or icmp' }), server2: await lab.capture('server2-link', { filter: 'icmp6 or icmp' }) };
    const got: number[] = [];
    for (const x of CLIENTS) got.push(await download(x.c, x.s));
    const ptb: Record<string, string[][]> = {};
    const fn: Record<string, string[][]> = {};
    for (const [srv, cap] of Object.entries(caps)) {
      await cap.stop();
      // every ipv6.dst / ip.dst of the packet: S (the error's) and the client (the quoted packet's)
      ptb[srv] = fields(cap, 'icmpv6.type == 2', ['ipv6.dst', 'icmpv6.mtu']);
      fn[srv] = fields(cap, 'icmp.type == 3 && icmp.code == 4', ['ip.dst', 'icmp.mtu']);
    }
    return { got, ptb, fn };
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mslb-icmpsteer-'));
    lab = await Lab.start({ mode: 'translate', variant: 'routed', frontConfig: frontConfig(dir, false) });
    await narrow();
  }, 90_000);
  afterAll(async () => {
    await lab?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  it('source-keyed routes: every 1 MB download completes; the PTB / Frag Needed reached the owning server, which caches 1280 / 1400', async () => {
    const r = await round();
    expect(r.got).toEqual([MB, MB, MB, MB]);
    for (const x of CLIENTS) {
      const other = x.server === 'server1' ? 'server2' : 'server1';
      const seen = (srv: string) => (x.c.includes(':') ? r.ptb[srv]! : r.fn[srv]!).filter((row) => row.includes(x.c)).length;
      expect(seen(x.server), `${x.c}: error at ${x.server}`).toBeGreaterThan(0);
      expect(seen(other), `${x.c}: no error at ${other}`).toBe(0);
      expect(cached(x.server, x.c, x.s), `${x.server} -> ${x.c}`).toBe(x.c.includes(':') ? 1280 : 1400);
    }
    expect(await lab.metric('front', 'mslb_icmp_steered_total', { by: 'flow_table' })).toBeGreaterThan(0);
    expect(await lab.metric('front', 'mslb_drops_total', { reason: 'malformed' })).toBe(0);
  }, 120_000);

  it('a pool keyed by flow label: downloads complete; the owner of each IPv6 flow got the PTB and caches 1280', async () => {
    await lab.restartFront(frontConfig(dir, true));
    const steered = async () => (await lab.metric('front', 'mslb_icmp_steered_total', { by: 'flow_table' })) + (await lab.metric('front', 'mslb_icmp_steered_total', { by: 'copies' }));
    const before = await steered();
    const r = await round();
    expect(r.got).toEqual([MB, MB, MB, MB]);
    for (const x of CLIENTS) {
      if (x.c.includes(':')) {
        // the owner is whichever member the label chose: its kernel took the error
        const owners = ['server1', 'server2'].filter((srv) => cached(srv, x.c, x.s) === 1280);
        expect(owners.length, `${x.c}: one server caches 1280`).toBeGreaterThanOrEqual(1);
        for (const o of owners) expect(r.ptb[o]!.filter((row) => row.includes(x.c)).length).toBeGreaterThan(0);
      } else {
        expect(r.fn[x.server]!.filter((row) => row.includes(x.c)).length).toBeGreaterThan(0);
        expect(cached(x.server, x.c, x.s)).toBe(1400);
      }
    }
    // one queue: the reversed flow's pin is found first (copies, for errors that miss it, are unit-tested)
    expect(await steered()).toBeGreaterThan(before);
  }, 120_000);
});

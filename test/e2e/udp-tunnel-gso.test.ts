// Bulk TCP through IP-in-UDP tunnels with the front's tunnel TAP (offload.udpTunnel, Linux >= 6.16):
// the front writes each TCP super-packet it reads as one UDP-tunnel super-packet to mslbf0tap and
// the kernel segments it. The lab with deploy/lab/front-encap-udp.yaml (6in6, 4in4 over UDP port
// 6080), then front-encap-mixed-udp.yaml (4in6, 6in4); front-back links and back TUNs at MTU 1600 so
// full-size inner segments fit the tunnel. Judged: multi-MB uploads over HTTP and HTTPS (TLS) arrive
// with the SHA-256 the client sent; tshark on the front-back link (checksum validation on, port 6080
// decoded as IP) sees every outer UDP and inner TCP checksum valid, UDP to 6080 from a source port
// in 49152-65535 that is one per inner flow and differs across flows; the TAP took super-packets
// (mslb_tunnel_gso_writes_total, the TAP's own packet counter far below the wire packets). What the
// back reads (one packet per read, or super-packets) is printed for the report. A refused start-up
// probe (simulated with MSLB_TEST_UDP_TUNNEL_PROBE_ERRNO) falls back, logged and exported. Finally the kill
// switch offload.udpTunnel: false: no TAP, the front's own segmentation, still intact. Needs root and
// `npm run build`.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isRoot } from '../helpers/netns.js';
import { CLIENTS, Lab, PORTS, hostPart, serviceFor, type Capture, type ClientName } from '../helpers/lab.js';
import { setBackLinksMtu, writeUploadFile } from '../helpers/bulk-upload.js';
import { repoRoot } from '../../lab/paths.js';

const UPLOAD_BYTES = 8 << 20;
const TUNNEL_MTU = 1600;
const PORT = 6080;
const BACKS = { back1: 'deploy/lab/back1-udp.yaml', back2: 'deploy/lab/back2-udp.yaml' };
const CONFIG = { same: 'deploy/lab/front-encap-udp.yaml', mixed: 'deploy/lab/front-encap-mixed-udp.yaml' } as const;
const TAP = 'mslbf0tap';

interface Row {
  sport: number;
  dport: number;
  udp: string[];
  tcp: string[];
  ip: string[];
  innerPorts: string;
  /** IPv6 flow labels in header order (the last is the inner one when the inner packet is IPv6). */
  labels: string[];
  protocols: string;
}

describe.skipIf(!isRoot())('UDP tunnels through the tunnel TAP: kernel-segmented super-packets', () => {
  let lab: Lab;
  let file: string;
  let sha: string;

  beforeAll(async () => {
    lab = await Lab.start({ mode: 'encap', frontConfig: CONFIG.same, backConfigs: BACKS });
    ({ file, sha } = writeUploadFile(lab, UPLOAD_BYTES));
    setBackLinksMtu(lab, TUNNEL_MTU);
    await lab.restartFront(CONFIG.same); // reads the path MTU toward the backs from the new routes
  }, 120_000);
  afterAll(async () => {
    await lab?.stop();
  }, 30_000);

  async function upload(client: ClientName, tls = false): Promise<{ bytes: number; sha: string }> {
    const c = CLIENTS[client];
    const url = tls ? `https://${hostPart(serviceFor(c.family))}:${PORTS.https}/upload` : `http://${hostPart(serviceFor(c.family))}:${PORTS.http}/upload`;
    const r = await lab.set.run(
      lab.ns.client,
      'curl',
      ['-sS', '-k', '--max-time', '60', '--interface', c.address, '-H', 'Expect:', '--data-binary', `@${file}`, url],
      { timeoutMs: 65_000 },
    );
    expect(r.code, `curl ${client}: ${r.stderr}`).toBe(0);
    const [bytes, digest] = (r.stdout.trim().split('\n')[3] ?? '').split(' ');
    return { bytes: Number(bytes), sha: digest ?? '' };
  }

  function tunnelRows(cap: Capture): Row[] {
    const fields = ['udp.srcport', 'udp.dstport', 'udp.checksum.status', 'tcp.checksum.status', 'ip.checksum.status', 'tcp.srcport', 'frame.protocols', 'ipv6.flow'];
    const out = lab.set.exec(
      cap.end.ns,
      'tshark',
      [
        '-n', '-r', cap.file, '-d', `udp.port==${PORT},ip`,
        '-o', 'ip.check_checksum:TRUE', '-o', 'tcp.check_checksum:TRUE', '-o', 'udp.check_checksum:TRUE',
        '-Y', `udp.dstport == ${PORT}`,
        '-T', 'fields', '-E', 'separator=\t', '-E', 'occurrence=a', '-E', 'aggregator=,', ...fields.flatMap((f) => ['-e', f]),
      ],
      { timeoutMs: 120_000 },
    );
    return out
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => {
        const c = l.split('\t');
        const list = (s: string | undefined): string[] => (s ? s.split(',') : []);
        return { sport: Number(list(c[0])[0]), dport: Number(list(c[1])[0]), udp: list(c[2]), tcp: list(c[3]), ip: list(c[4]), innerPorts: c[5] ?? '', protocols: c[6] ?? '', labels: list(c[7]) };
      });
  }

  /** Link counters of a device in a namespace: rx = what was written into it (TUN/TAP), tx = what the kernel handed it. */
  function linkStats(ns: string, dev: string): { rx: number; tx: number } {
    const j = JSON.parse(lab.set.exec(ns, 'ip', ['-s', '-j', 'link', 'show', dev])) as { stats64: { rx: { packets: number }; tx: { packets: number } } }[];
    return { rx: j[0]!.stats64.rx.packets, tx: j[0]!.stats64.tx.packets };
  }

  it('the front opened its tunnel TAP, the probe passed, logged and exported', async () => {
    expect(await lab.metric('front', 'mslb_offload_udp_tunnel_enabled')).toBe(1);
    const line = lab.serviceLog('front').split('\n').find((l) => l.includes('"tun_offload_udp_tunnel"'));
    expect(line).toBeDefined();
    expect(JSON.parse(line!)).toMatchObject({ enabled: true, tap: TAP });
    expect(linkStats(lab.ns.front, TAP).rx).toBeGreaterThanOrEqual(0);
  });

  it('with transmit checksum offload on along the way (veth\'s default, before any capture turns it off): uploads intact', async () => {
    // the kernel then segments with the inner TCP checksum left partial (outer UDP by local checksum
    // offload), and the back's TUN reads NEEDS_CSUM tunnel packets whose csum_start is the inner TCP header
    const l = lab.topo.linkOf('back1-link');
    expect(lab.set.exec(l.near.ns, 'ethtool', ['-k', l.near.iface])).toMatch(/tx-checksumming: on/);
    const writes0 = await lab.metric('front', 'mslb_tunnel_gso_writes_total');
    for (const c of ['c1v6', 'c1v4'] as const) expect(await upload(c), `${c} http`).toEqual({ bytes: UPLOAD_BYTES, sha });
    expect((await lab.metric('front', 'mslb_tunnel_gso_writes_total')) - writes0).toBeGreaterThan(0);
    for (const r of ['malformed', 'too_big', 'write_error']) expect(await lab.metric('back1', 'mslb_drops_total', { reason: r }), `back1 ${r}`).toBe(0);
  }, 150_000);

  for (const kind of ['same', 'mixed'] as const) {
    const pairs = kind === 'same' ? '6in6 and 4in4' : '4in6 and 6in4';
    it(`${pairs}: HTTP and HTTPS uploads intact, every outer UDP and inner TCP checksum valid, one source port per flow, written as super-packets`, async () => {
      if (kind === 'mixed') {
        await lab.restartFront(CONFIG.mixed);
        expect(await lab.metric('front', 'mslb_offload_udp_tunnel_enabled')).toBe(1);
      }
      const tap0 = linkStats(lab.ns.front, TAP);
      const back0 = linkStats(lab.ns.back1, 'mslbb0');
      const writes0 = await lab.metric('front', 'mslb_tunnel_gso_writes_total');
      const wire0 = await lab.metric('front', 'mslb_tx_packets_total');
      const backWire0 = await lab.metric('back1', 'mslb_rx_packets_total');
      const cap = await lab.capture('back1-link', { filter: `udp port ${PORT}` });
      for (const c of ['c1v6', 'c1v4'] as const) {
        expect(await upload(c), `${c} http`).toEqual({ bytes: UPLOAD_BYTES, sha });
        expect(await upload(c, true), `${c} https`).toEqual({ bytes: UPLOAD_BYTES, sha });
      }
      await cap.stop();
      const rows = tunnelRows(cap);
      const tapWrites = linkStats(lab.ns.front, TAP).rx - tap0.rx;
      const writes = (await lab.metric('front', 'mslb_tunnel_gso_writes_total')) - writes0;
      const wire = (await lab.metric('front', 'mslb_tx_packets_total')) - wire0;
      const backReads = linkStats(lab.ns.back1, 'mslbb0').tx - back0.tx;
      const backWire = (await lab.metric('back1', 'mslb_rx_packets_total')) - backWire0;
      console.log(
        `${pairs}: front wrote ${writes} super-packets to ${TAP} (TAP rx ${tapWrites}) of ${wire} wire packets out; ` +
          `${rows.length} tunnel packets captured on back1-link; back1 read ${backReads} times for ${backWire} wire packets`,
      );
      // the data: 4 uploads of UPLOAD_BYTES in full-size segments at least
      const segments = (4 * UPLOAD_BYTES) / 1500;
      expect(rows.length).toBeGreaterThanOrEqual(segments / 2);
      const ports = new Map<string, Set<number>>();
      for (const r of rows) {
        const where = `${r.protocols} ${r.sport} -> ${r.dport}`;
        expect(r.protocols, where).toMatch(kind === 'same' ? /(ipv6:udp:ip:ipv6:tcp|:ip:udp:ip:tcp)/ : /(ipv6:udp:ip:tcp|:ip:udp:ip:ipv6:tcp)/);
        expect(r.dport, where).toBe(PORT);
        expect(r.sport, where).toBeGreaterThanOrEqual(49152);
        expect(r.udp[0], `${where}: outer UDP checksum`).toBe('1');
        expect(r.tcp, `${where}: inner TCP checksum`).toEqual(['1']);
        for (const st of r.ip) expect(st, `${where}: IPv4 header checksum`).not.toBe('0');
        // the inner flow as the source port hashes it: with the IPv6 label, which Linux re-draws on
        // some retransmissions (RFC 6438 spreading), and the tunnel follows
        const inner6 = r.protocols.includes('udp:ip:ipv6');
        const flow = `${inner6 ? 6 : 4} ${r.innerPorts}${inner6 ? ` label ${r.labels[r.labels.length - 1]}` : ''}`;
        if (!ports.has(flow)) ports.set(flow, new Set());
        ports.get(flow)!.add(r.sport);
      }
      for (const [flow, set] of ports) expect(set.size, `source ports of inner flow ${flow}`).toBe(1);
      expect(ports.size, 'inner flows').toBeGreaterThanOrEqual(4);
      expect(new Set([...ports.values()].map((s) => [...s][0])).size, 'distinct source ports across flows').toBeGreaterThan(1);
      // the TAP path carried the bulk: many wire packets per super-packet written
      expect(writes).toBeGreaterThan(0);
      expect(tapWrites).toBeGreaterThanOrEqual(writes);
      expect(writes * 3, `${writes} super-packets for ${wire} wire packets`).toBeLessThan(wire);
      for (const r of ['malformed', 'too_big', 'write_error']) expect(await lab.metric('front', 'mslb_drops_total', { reason: r }), r).toBe(0);
    }, 240_000);
  }

  it('a kernel that refuses the probe (simulated: EINVAL): logged with the reason, exported 0, the TAP gone, own segmentation, uploads intact', async () => {
    await lab.stopService('front');
    await lab.startService('front', CONFIG.same, undefined, ['env', 'NODE_ENV=test', 'MSLB_TEST_UDP_TUNNEL_PROBE_ERRNO=22']);
    expect(await lab.metric('front', 'mslb_offload_udp_tunnel_enabled')).toBe(0);
    const line = lab.serviceLog('front').split('\n').find((l) => l.includes('"tun_offload_udp_tunnel"'));
    expect(JSON.parse(line!)).toMatchObject({ enabled: false, reason: 'UDP-tunnel GSO write probe refused (errno 22)', tap: TAP });
    expect(lab.set.exec(lab.ns.front, 'ip', ['-o', 'link', 'show'])).not.toContain(TAP);
    expect(await upload('c1v4')).toEqual({ bytes: UPLOAD_BYTES, sha });
    expect(await lab.metric('front', 'mslb_tunnel_gso_writes_total')).toBe(0);
  }, 120_000);

  it('kill switch offload.udpTunnel: false: no TAP writes, the front segments itself, uploads still intact', async () => {
    const cfg = join(lab.workDir, 'front-no-udp-tunnel-gso.yaml');
    const base = readFileSync(join(repoRoot(), CONFIG.same), 'utf8');
    writeFileSync(cfg, `${base.replace(/^table: \.\//m, `table: ${join(repoRoot(), 'deploy/lab')}/`)}\noffload: { udpTunnel: false }\n`);
    await lab.restartFront(cfg);
    expect(await lab.metric('front', 'mslb_offload_udp_tunnel_enabled')).toBe(0);
    expect(lab.set.exec(lab.ns.front, 'ip', ['-o', 'link', 'show'])).not.toContain(TAP);
    const cap = await lab.capture('back1-link', { filter: `udp port ${PORT}` });
    expect(await upload('c1v6')).toEqual({ bytes: UPLOAD_BYTES, sha });
    await cap.stop();
    const rows = tunnelRows(cap);
    expect(rows.length).toBeGreaterThanOrEqual(UPLOAD_BYTES / 1500 / 2);
    for (const r of rows) {
      expect(r.udp[0]).toBe('1');
      expect(r.tcp).toEqual(['1']);
    }
    expect(await lab.metric('front', 'mslb_tunnel_gso_writes_total')).toBe(0);
  }, 120_000);
});

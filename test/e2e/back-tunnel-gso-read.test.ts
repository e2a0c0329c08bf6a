// The back reading UDP-tunnel super-packets whole: the lab with deploy/lab/front-encap-udp.yaml
// (6in6, 4in4 over UDP 6080; then front-encap-mixed-udp.yaml, 4in6 and 6in4; the front writes TCP
// bursts to its tunnel TAP, offload.udpTunnel) and backs with udpPort 6080, front-back links and
// back TUNs at MTU 1600 (full-size inner segments fit).
// No capture on the links (a capture turns transmit checksumming off, and the kernel then segments
// before the link): the veth carries each super-packet whole, and the back's TUN, opened with a
// 24-byte virtio header and TUN_F_UDP_TUNNEL_GSO, hands it over in one read. Judged: uploads arrive
// with the SHA-256 the client sent; back1's TUN handed over far fewer packets than the wire packets
// the back counted; no drops. Then back1 with offload.udpTunnel: false: the kernel segments before
// the TUN, each segment with its inner TCP checksum partial (csum_start there), which the back must
// finish: uploads intact, one read per wire packet. Needs root and `npm run build`.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isRoot } from '../helpers/netns.js';
import { CLIENTS, Lab, PORTS, hostPart, serviceFor, type ClientName } from '../helpers/lab.js';
import { setBackLinksMtu, writeUploadFile } from '../helpers/bulk-upload.js';
import { repoRoot } from '../../lab/paths.js';

const UPLOAD_BYTES = 8 << 20;
const TUNNEL_MTU = 1600;
const BACKS = { back1: 'deploy/lab/back1-udp.yaml', back2: 'deploy/lab/back2-udp.yaml' };
const FRONT = 'deploy/lab/front-encap-udp.yaml';

describe.skipIf(!isRoot())('back: UDP-tunnel super-packets read whole', () => {
  let lab: Lab;
  let file: string;
  let sha: string;

  beforeAll(async () => {
    lab = await Lab.start({ mode: 'encap', frontConfig: FRONT, backConfigs: BACKS });
    ({ file, sha } = writeUploadFile(lab, UPLOAD_BYTES));
    setBackLinksMtu(lab, TUNNEL_MTU);
    await lab.restartFront(FRONT); // reads the path MTU toward the backs from the new routes
  }, 120_000);
  afterAll(async () => {
    await lab?.stop();
  }, 30_000);

  async function upload(client: ClientName): Promise<{ bytes: number; sha: string }> {
    const c = CLIENTS[client];
    const url = `http://${hostPart(serviceFor(c.family))}:${PORTS.http}/upload`;
    const r = await lab.set.run(lab.ns.client, 'curl', ['-sS', '--max-time', '60', '--interface', c.address, '-H', 'Expect:', '--data-binary', `@${file}`, url], { timeoutMs: 65_000 });
    expect(r.code, `curl ${client}: ${r.stderr}`).toBe(0);
    const [bytes, digest] = (r.stdout.trim().split('\n')[3] ?? '').split(' ');
    return { bytes: Number(bytes), sha: digest ?? '' };
  }

  /** Packets the kernel handed to back1's TUN (its tx counter), and the wire packets the back counted. */
  async function reads(): Promise<{ reads: number; wire: number }> {
    const j = JSON.parse(lab.set.exec(lab.ns.back1, 'ip', ['-s', '-j', 'link', 'show', 'mslbb0'])) as { stats64: { tx: { packets: number } } }[];
    return { reads: j[0]!.stats64.tx.packets, wire: await lab.metric('back1', 'mslb_rx_packets_total') };
  }

  async function uploadsMeasured(): Promise<{ reads: number; wire: number }> {
    const a = await reads();
    for (const c of ['c1v6', 'c1v4'] as const) expect(await upload(c), c).toEqual({ bytes: UPLOAD_BYTES, sha });
    const b = await reads();
    return { reads: b.reads - a.reads, wire: b.wire - a.wire };
  }

  it('6in6 and 4in4 uploads intact; the TUN hands over super-packets: far fewer reads than wire packets', async () => {
    const line = lab.serviceLog('back1').split('\n').find((l) => l.includes('"tun_offload_udp_tunnel_read"'));
    expect(JSON.parse(line!)).toMatchObject({ enabled: true });
    expect(await lab.metric('back1', 'mslb_offload_udp_tunnel_enabled')).toBe(1);
    const m = await uploadsMeasured();
    console.log(`back1 read ${m.reads} packets for ${m.wire} wire packets (${(m.wire / Math.max(m.reads, 1)).toFixed(1)} per read), 2 x ${UPLOAD_BYTES} bytes`);
    expect(m.wire).toBeGreaterThanOrEqual((2 * UPLOAD_BYTES) / 1600);
    expect(m.reads * 3, `${m.reads} reads for ${m.wire} wire packets`).toBeLessThan(m.wire);
    for (const r of ['malformed', 'not_service', 'write_error']) expect(await lab.metric('back1', 'mslb_drops_total', { reason: r }), r).toBe(0);
  }, 240_000);

  it('4in6 and 6in4 (front-encap-mixed-udp.yaml): uploads intact, super-packets read whole', async () => {
    await lab.restartFront('deploy/lab/front-encap-mixed-udp.yaml');
    const m = await uploadsMeasured();
    console.log(`mixed: back1 read ${m.reads} packets for ${m.wire} wire packets`);
    expect(m.reads * 3, `${m.reads} reads for ${m.wire} wire packets`).toBeLessThan(m.wire);
    for (const r of ['malformed', 'not_service', 'write_error']) expect(await lab.metric('back1', 'mslb_drops_total', { reason: r }), r).toBe(0);
  }, 240_000);

  it('back1 with offload.udpTunnel: false: the kernel\'s own segments (inner checksum partial) are finished and unwrapped, uploads intact', async () => {
    const cfg = join(lab.workDir, 'back1-no-tunnel-read.yaml');
    writeFileSync(cfg, `${readFileSync(join(repoRoot(), BACKS.back1), 'utf8')}\noffload: { udpTunnel: false }\n`);
    await lab.stopService('back1');
    await lab.startService('back1', cfg);
    lab.set.ip(lab.ns.back1, `link set dev mslbb0 mtu ${TUNNEL_MTU}`); // a new TUN, at the config's MTU
    expect(lab.serviceLog('back1')).not.toContain('"tun_offload_udp_tunnel_read"');
    expect(await lab.metric('back1', 'mslb_offload_udp_tunnel_enabled')).toBe(0);
    const m = await uploadsMeasured();
    console.log(`back1 without tunnel read: ${m.reads} reads for ${m.wire} wire packets`);
    expect(m.reads).toBeGreaterThanOrEqual(m.wire * 0.9);
    for (const r of ['malformed', 'not_service', 'write_error']) expect(await lab.metric('back1', 'mslb_drops_total', { reason: r }), r).toBe(0);
  }, 240_000);
});

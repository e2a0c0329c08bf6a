// The benchmark's own chain of namespaces, leaner than the lab (one back, one server):
//   client --(e0)-- front --(e1, MTU 1600)-- back --(e3)-- server
// and the forwarding setups compared over it (one at a time): plain kernel routing, nftables
// stateless translation at front and back, mslb translate / encap (front and back), and reference
// TUN forwarders at the front (C one packet per syscall, C with vnet/TSO, Node fs.read/fs.write)
// with nftables restoring S at the back. Documentation prefixes only; everything is removed by
// cleanup(). Root only.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { NetnsSet, sh, waitFor, waitForOutput } from '../lab/netns.js';
import { distFile, repoRoot } from '../lab/paths.js';

export const ADDR = {
  C6: '2001:db8:c1::10',
  C4: '203.0.113.10',
  S6: '2001:db8:5::80',
  S4: '192.0.2.80',
  B6: '2001:db8:b::1',
  B4: '198.51.100.1',
  clientPrefix6: '2001:db8:c1::/48',
  clientPrefix4: '203.0.113.0/26',
  // [client side, front side], [front, back], [back, server]
  e0: { v6: ['2001:db8:e0::2', '2001:db8:e0::1'], v4: ['203.0.113.130', '203.0.113.129'] },
  e1: { v6: ['2001:db8:e1::1', '2001:db8:e1::2'], v4: ['203.0.113.137', '203.0.113.138'] },
  e3: { v6: ['2001:db8:e3::1', '2001:db8:e3::2'], v4: ['203.0.113.145', '203.0.113.146'] },
} as const;

/** Front-back link MTU: room for a 40-byte outer header on a full-size packet (encap rows). */
export const MIDDLE_MTU = 1600;

/** UDP port of the IP-in-UDP row (encap.udpPort / udpPort): 48 bytes of outer header fit MIDDLE_MTU too. */
export const BENCH_UDP_PORT = 6080;

export type SetupName =
  | 'plain'
  | 'nft'
  | 'mslb-translate'
  | 'mslb-translate-q2'
  | 'mslb-front-nft'
  | 'mslb-encap'
  | 'mslb-encap-udp'
  | 'mslb-encap-udp-nogso'
  | 'c-plain'
  | 'c-vnet'
  | 'node-fs';

/** What a running setup exposes to the measurements. */
export interface RunningSetup {
  /** Processes whose CPU and memory are reported, by role. */
  pids: Record<string, number>;
  /** Services with an admin endpoint (mslb rows): role -> [namespace, url]. */
  admin: Record<string, [string, string]>;
  stop(): Promise<void>;
}

export class BenchNet {
  readonly set = new NetnsSet();
  readonly ns: Record<'client' | 'front' | 'back' | 'server', string>;
  readonly dir = mkdtempSync(join(tmpdir(), 'mslb-bench-'));
  private readonly tools = new Map<string, string>();

  constructor() {
    const s = this.set;
    const mk = (role: string, router: boolean): string => {
      const ns = s.add(role);
      s.sysctl(ns, 'net.ipv6.conf.all.accept_dad', 0);
      s.sysctl(ns, 'net.ipv6.conf.default.accept_dad', 0);
      s.sysctl(ns, 'net.ipv4.conf.all.rp_filter', 0);
      s.sysctl(ns, 'net.ipv4.conf.default.rp_filter', 0);
      if (router) {
        s.sysctl(ns, 'net.ipv4.ip_forward', 1);
        s.sysctl(ns, 'net.ipv6.conf.all.forwarding', 1);
      }
      return ns;
    };
    this.ns = { client: mk('bclient', false), front: mk('bfront', true), back: mk('bback', true), server: mk('bserver', false) };
    const { client, front, back, server } = this.ns;
    const link = (a: string, ia: string, b: string, ib: string, addrs: { v6: readonly string[]; v4: readonly string[] }, mtu = 1500): void => {
      s.veth(a, ia, b, ib);
      s.ip(a, `addr add ${addrs.v6[0]}/64 dev ${ia} nodad`);
      s.ip(b, `addr add ${addrs.v6[1]}/64 dev ${ib} nodad`);
      s.ip(a, `addr add ${addrs.v4[0]}/30 dev ${ia}`);
      s.ip(b, `addr add ${addrs.v4[1]}/30 dev ${ib}`);
      if (mtu !== 1500) {
        s.ip(a, `link set dev ${ia} mtu ${mtu}`);
        s.ip(b, `link set dev ${ib} mtu ${mtu}`);
      }
    };
    link(client, 'eth-front', front, 'eth-client', ADDR.e0);
    link(front, 'eth-back', back, 'eth-front', ADDR.e1, MIDDLE_MTU);
    link(back, 'eth-server', server, 'eth-back', ADDR.e3);
    s.ip(client, `addr add ${ADDR.C6}/128 dev lo`);
    s.ip(client, `addr add ${ADDR.C4}/32 dev lo`);
    s.ip(client, `route add ${ADDR.S6}/128 via ${ADDR.e0.v6[1]}`);
    s.ip(client, `route add ${ADDR.S4}/32 via ${ADDR.e0.v4[1]}`);
    s.ip(front, `route add ${ADDR.clientPrefix6} via ${ADDR.e0.v6[0]}`);
    s.ip(front, `route add ${ADDR.clientPrefix4} via ${ADDR.e0.v4[0]}`);
    s.ip(front, `route add ${ADDR.B6}/128 via ${ADDR.e1.v6[1]}`);
    s.ip(front, `route add ${ADDR.B4}/32 via ${ADDR.e1.v4[1]}`);
    s.ip(back, `route add ${ADDR.clientPrefix6} via ${ADDR.e1.v6[0]}`);
    s.ip(back, `route add ${ADDR.clientPrefix4} via ${ADDR.e1.v4[0]}`);
    s.ip(back, `route add ${ADDR.S6}/128 via ${ADDR.e3.v6[1]}`);
    s.ip(back, `route add ${ADDR.S4}/32 via ${ADDR.e3.v4[1]}`);
    s.ip(server, `addr add ${ADDR.S6}/128 dev lo`);
    s.ip(server, `addr add ${ADDR.S4}/32 dev lo`);
    s.ip(server, `route add default via ${ADDR.e3.v6[0]}`);
    s.ip(server, `route add default via ${ADDR.e3.v4[0]}`);
  }

  /** iperf3 servers on S (IPv6 port 5201, IPv4 port 5202), for the whole run. */
  async startIperfServers(): Promise<void> {
    for (const [a, port] of [[ADDR.S6, 5201], [ADDR.S4, 5202]] as const) {
      const p = this.set.spawn(this.ns.server, 'iperf3', ['-s', '--forceflush', '-B', a, '-p', String(port)]);
      await waitForOutput(p, /Server listening/, 5000, `iperf3 -s on ${a}`);
    }
  }

  /** Compile bench/NAME.c into the work dir (once) and return the binary. */
  tool(name: string): string {
    let bin = this.tools.get(name);
    if (!bin) {
      bin = join(this.dir, name);
      sh('cc', ['-O2', '-o', bin, join(repoRoot(), 'bench', `${name}.c`)]);
      this.tools.set(name, bin);
    }
    return bin;
  }

  /**
   * 64-byte UDP packet rate client -> S (IPv6, one flow) for `seconds`, counted at a recvmmsg()
   * receiver on the server: packets per second between the first and the last packet received.
   */
  async udpRate(seconds: number, size = 64): Promise<{ pps: number; sent: number; received: number }> {
    const blast = this.tool('udp-blast');
    const recv = this.set.spawn(this.ns.server, blast, ['recv', ADDR.S6, '9000']);
    let out = '';
    recv.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    await waitForOutput(recv, /ready/, 5000, 'udp-blast recv');
    const r = await this.set.run(this.ns.client, blast, ['send', ADDR.C6, ADDR.S6, '9000', String(seconds), String(size)], {
      timeoutMs: (seconds + 10) * 1000,
    });
    await new Promise((res) => setTimeout(res, 300));
    const done = new Promise<void>((res) => recv.once('exit', () => res()));
    recv.kill('SIGTERM');
    await Promise.race([done, new Promise((res) => setTimeout(res, 3000))]);
    const m = /recv (\d+) ([\d.]+)/.exec(out);
    const sent = Number(/sent (\d+)/.exec(r.stdout)?.[1] ?? NaN);
    if (!m) return { pps: NaN, sent, received: 0 };
    const received = Number(m[1]);
    const secs = Number(m[2]);
    return { pps: secs > 0 ? received / secs : NaN, sent, received };
  }

  private nft(ns: string, from6: string, to6: string, from4: string, to4: string): () => void {
    const rules = `table inet mslbbench {
  chain pre {
    type filter hook prerouting priority -300; policy accept;
    ip6 daddr ${from6} ip6 daddr set ${to6}
    ip daddr ${from4} ip daddr set ${to4}
  }
}
`;
    this.set.exec(ns, 'nft', ['-f', '-'], { input: rules });
    return () => this.set.exec(ns, 'nft', ['delete', 'table', 'inet', 'mslbbench']);
  }

  /** Start one forwarding setup; its stop() puts the chain back to the bare state. */
  async start(name: SetupName, opts: { txqueuelen?: number } = {}): Promise<RunningSetup> {
    const { front, back } = this.ns;
    const s = this.set;
    const undo: (() => void | Promise<void>)[] = [];
    const stop = async (): Promise<void> => {
      for (const u of undo.reverse()) {
        try {
          await u();
        } catch {
          /* best effort: the namespaces go at cleanup anyway */
        }
      }
    };
    const pids: Record<string, number> = {};
    const admin: Record<string, [string, string]> = {};
    try {
      if (name === 'plain') {
        s.ip(front, `route add ${ADDR.S6}/128 via ${ADDR.e1.v6[1]}`);
        s.ip(front, `route add ${ADDR.S4}/32 via ${ADDR.e1.v4[1]}`);
        undo.push(() => {
          s.ip(front, `route del ${ADDR.S6}/128`);
          s.ip(front, `route del ${ADDR.S4}/32`);
        });
      } else if (name === 'nft') {
        undo.push(this.nft(front, ADDR.S6, ADDR.B6, ADDR.S4, ADDR.B4));
        undo.push(this.nft(back, ADDR.B6, ADDR.S6, ADDR.B4, ADDR.S4));
      } else if (name.startsWith('mslb-')) {
        const encap = name === 'mslb-encap' || name === 'mslb-encap-udp' || name === 'mslb-encap-udp-nogso';
        const udpPort = name === 'mslb-encap-udp' || name === 'mslb-encap-udp-nogso' ? BENCH_UDP_PORT : 0;
        // mslb-encap-udp writes TCP bursts as UDP-tunnel super-packets (the tunnel TAP, where the
        // kernel has it); -nogso keeps the front's own segmentation (offload.udpTunnel: false)
        const udpTunnel = name !== 'mslb-encap-udp-nogso';
        const queues = name === 'mslb-translate-q2' ? 2 : 1;
        // mslb-front-nft: only the front is mslb, the back is nftables as in the reference rows
        const withBack = name !== 'mslb-front-nft';
        if (!withBack) undo.push(this.nft(back, ADDR.B6, ADDR.S6, ADDR.B4, ADDR.S4));
        const p = await this.startMslb(encap, queues, withBack, opts.txqueuelen, udpPort, udpTunnel);
        undo.push(p.stop);
        Object.assign(pids, p.pids);
        Object.assign(admin, p.admin);
      } else {
        undo.push(this.nft(back, ADDR.B6, ADDR.S6, ADDR.B4, ADDR.S4));
        const dev = 'reftun0';
        const proc =
          name === 'node-fs'
            ? s.spawn(front, process.execPath, [distFile('bench/fs-forwarder.js'), dev, ADDR.S6, ADDR.B6, ADDR.S4, ADDR.B4])
            : s.spawn(front, this.tool('ref-forwarder'), [dev, name === 'c-vnet' ? 'vnet' : 'plain', ADDR.S6, ADDR.B6, ADDR.S4, ADDR.B4]);
        undo.push(() => stopProc(proc));
        await waitForOutput(proc, /^ready /m, 5000, `${name} forwarder`);
        s.sysctl(front, `net.ipv4.conf.${dev}.rp_filter`, 0);
        if (opts.txqueuelen) s.ip(front, `link set dev ${dev} txqueuelen ${opts.txqueuelen}`);
        s.ip(front, `link set dev ${dev} up`);
        s.ip(front, `route add ${ADDR.S6}/128 dev ${dev}`);
        s.ip(front, `route add ${ADDR.S4}/32 dev ${dev}`);
        pids.front = proc.pid!;
      }
    } catch (e) {
      await stop();
      throw e;
    }
    return { pids, admin, stop };
  }

  private async startMslb(encap: boolean, queues: number, withBack: boolean, txqueuelen?: number, udpPort = 0, udpTunnel = true): Promise<{ pids: Record<string, number>; admin: Record<string, [string, string]>; stop: () => Promise<void> }> {
    const { front, back } = this.ns;
    const d = this.dir;
    writeFileSync(
      join(d, 'table.yaml'),
      `backs:\n  b1:\n    addresses: { "${ADDR.S6}": "${ADDR.B6}", "${ADDR.S4}": "${ADDR.B4}" }\nroutes:\n  - { source: "::/0", to: b1 }\n  - { source: 0.0.0.0/0, to: b1 }\n`,
    );
    writeFileSync(
      join(d, 'front.yaml'),
      `tun: { name: mslbf0, mtu: 1500, queues: ${queues}, routes: [${ADDR.S6}/128, ${ADDR.S4}/32] }\n` +
        `services: [${ADDR.S6}, ${ADDR.S4}]\ntable: ./table.yaml\nmode: ${encap ? 'encap' : 'translate'}\n` +
        (udpPort ? `encap: { udpPort: ${udpPort} }\n` : '') +
        (udpTunnel ? '' : 'offload: { udpTunnel: false }\n') +
        `admin: { listen: "[::1]:9101" }\nlog: { level: warn }\n`,
    );
    writeFileSync(
      join(d, 'back.yaml'),
      `tun: { name: mslbb0, mtu: ${encap ? MIDDLE_MTU : 1500}, queues: ${queues}, routes: [${ADDR.B6}/128, ${ADDR.B4}/32] }\n` +
        `addresses:\n  - { address: ${ADDR.B6}, service: ${ADDR.S6}, mode: auto }\n  - { address: ${ADDR.B4}, service: ${ADDR.S4}, mode: auto }\n` +
        `allowedFronts: [${ADDR.S6}/128, ${ADDR.S4}/32]\n${udpPort ? `udpPort: ${udpPort}\n` : ''}admin: { listen: "[::1]:9102" }\nlog: { level: warn }\n`,
    );
    const procs: ChildProcess[] = [];
    const stop = async (): Promise<void> => {
      for (const p of procs.reverse()) await stopProc(p);
    };
    try {
      let b: ChildProcess | undefined;
      if (withBack) {
        b = this.set.spawn(back, process.execPath, [distFile('back/main.js'), '--config', join(d, 'back.yaml')]);
        procs.push(b);
        await this.ready(back, 'http://[::1]:9102/readyz', b);
      }
      const f = this.set.spawn(front, process.execPath, [distFile('front/main.js'), '--config', join(d, 'front.yaml')]);
      procs.push(f);
      await this.ready(front, 'http://[::1]:9101/readyz', f);
      if (txqueuelen) {
        this.set.ip(front, `link set dev mslbf0 txqueuelen ${txqueuelen}`);
        if (b) this.set.ip(back, `link set dev mslbb0 txqueuelen ${txqueuelen}`);
      }
      const pids: Record<string, number> = { front: f.pid! };
      const admin: Record<string, [string, string]> = { front: [front, 'http://[::1]:9101'] };
      if (b) {
        pids.back = b.pid!;
        admin.back = [back, 'http://[::1]:9102'];
      }
      return { pids, admin, stop };
    } catch (e) {
      await stop();
      throw e;
    }
  }

  private async ready(ns: string, url: string, p: ChildProcess): Promise<void> {
    let log = '';
    p.stdout?.on('data', (x: Buffer) => (log = (log + x.toString()).slice(-4000)));
    p.stderr?.on('data', (x: Buffer) => (log = (log + x.toString()).slice(-4000)));
    await waitFor(
      async () => {
        if (p.exitCode !== null) throw new Error(`service exited (${p.exitCode}): ${log}`);
        const r = await this.set.run(ns, 'curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '1', url], { timeoutMs: 3000 });
        return r.stdout.trim() === '200';
      },
      15_000,
      url,
    );
  }

  async cleanup(): Promise<void> {
    await this.set.cleanup();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** SIGTERM, bounded wait, SIGKILL. */
export async function stopProc(p: ChildProcess, graceMs = 5000): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise<void>((r) => p.once('exit', () => r()));
  p.kill('SIGTERM');
  const t = setTimeout(() => p.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(t);
}

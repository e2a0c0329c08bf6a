// udpGro.interface on a real interface: the back turns on GRO and rx-udp-gro-forwarding of the
// interface its UDP tunnels arrive on at start-up (SIOCETHTOOL), and on exit turns off what it
// turned on; a feature already on is left on. Judged by `ethtool -k` in a test namespace (a veth
// pair; veth has both features, off by default). Needs root and `npm run build`.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { distFile } from '../../lab/paths.js';
import { isRoot, NetnsSet, waitForOutput } from '../helpers/netns.js';

const CONFIG = (iface: string) => `
tun: { name: mslbgro0, mtu: 1500, queues: 1, routes: [2001:db8:b::1/128] }
addresses:
  - { address: 2001:db8:b::1, service: 2001:db8:5::80, mode: encap }
allowedFronts: [2001:db8:f::/64]
udpPort: 6080
udpGro: { interface: ${iface} }
admin: { listen: "[::1]:9102" }
`;

describe.skipIf(!isRoot())('back: udpGro.interface', () => {
  const set = new NetnsSet();
  let ns: string;
  let dir: string;

  beforeAll(() => {
    ns = set.add('udpgro');
    set.ip(ns, 'link add gro0 type veth peer name gro1');
    set.ip(ns, 'link set gro0 up');
    set.ip(ns, 'link set gro1 up');
    dir = mkdtempSync(join(tmpdir(), 'mslb-udpgro-'));
  });
  afterAll(async () => {
    await set.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  /** The two features' state on an interface, as ethtool shows them. */
  const features = (iface: string): { gro: string; fwd: string } => {
    const out = set.exec(ns, 'ethtool', ['-k', iface]);
    const get = (name: string): string => new RegExp(`^${name}: (on|off)`, 'm').exec(out)?.[1] ?? 'missing';
    return { gro: get('generic-receive-offload'), fwd: get('rx-udp-gro-forwarding') };
  };

  async function runBack(iface: string, whileUp: () => void): Promise<string> {
    const file = join(dir, `${iface}.yaml`);
    writeFileSync(file, CONFIG(iface));
    const p = set.spawn(ns, process.execPath, [distFile('back/main.js'), '--config', file]);
    let log = '';
    p.stdout!.on('data', (d: Buffer) => (log += d.toString()));
    p.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    await waitForOutput(p, /service_started/, 20_000, 'mslb-back');
    whileUp();
    const exited = new Promise<number | null>((r) => p.once('exit', (code) => r(code)));
    p.kill('SIGTERM');
    expect(await exited).toBe(0);
    return log;
  }

  it('turns both features on while it runs and off again on exit', async () => {
    expect(features('gro0')).toEqual({ gro: 'off', fwd: 'off' });
    const log = await runBack('gro0', () => expect(features('gro0')).toEqual({ gro: 'on', fwd: 'on' }));
    expect(log).toMatch(/"udp_gro".*"rx-gro"/);
    expect(log).toMatch(/"udp_gro".*"rx-udp-gro-forwarding"/);
    expect(features('gro0')).toEqual({ gro: 'off', fwd: 'off' });
  }, 40_000);

  it('a feature that was already on stays on after exit', async () => {
    set.exec(ns, 'ethtool', ['-K', 'gro1', 'gro', 'on']);
    expect(features('gro1')).toEqual({ gro: 'on', fwd: 'off' });
    await runBack('gro1', () => expect(features('gro1')).toEqual({ gro: 'on', fwd: 'on' }));
    expect(features('gro1')).toEqual({ gro: 'on', fwd: 'off' });
  }, 40_000);

  it('an interface that does not exist: logged, the back runs on', async () => {
    const log = await runBack('nosuch0', () => undefined);
    expect(log).toMatch(/"udp_gro_refused".*nosuch0.*ENODEV/);
  }, 40_000);
});

import { describe, it, expect, afterEach } from 'vitest';
import { fileURLToPath } from 'node:url';
import { frontConfigFromValue, loadFrontConfig } from '../../front/front-config.js';
import { backConfigFromValue, loadBackConfig } from '../../back/back-config.js';
import { formatErrors } from '../../shared/config/config-errors.js';

const examples = fileURLToPath(new URL('../../deploy/examples/', import.meta.url));

afterEach(() => { delete process.env.MSLB_TUN_NAME; delete process.env.MSLB_SERVICES; });

describe('front config', () => {
  it('loads the example with defaults and resolves the table path against the file', () => {
    const r = loadFrontConfig(`${examples}front.yaml`);
    expect(formatErrors(r.errors)).toBe('');
    const c = r.config!;
    expect(c.services).toEqual(['2001:db8:5::80', '192.0.2.80']);
    expect(c.table).toBe(`${examples}table.yaml`);
    expect(c.lbsp.optionType).toBe(0x1e);
    expect(c.encap).toEqual({ source: 'service', source4: '', source6: '', hopLimit: 64, mtu: 0, udpPort: 0 });
    expect(c.flowTable.size).toBe(65536);
    expect(c.admin.listen).toBe('[::1]:9101');
    expect(c.tun.routes).toEqual(['2001:db8:5::80/128', '192.0.2.80/32']);
  });

  it('MSLB_* environment variables override the file', () => {
    process.env.MSLB_TUN_NAME = 'envtun0';
    process.env.MSLB_SERVICES = '2001:db8:5::90';
    const c = loadFrontConfig(`${examples}front.yaml`).config!;
    expect(c.tun.name).toBe('envtun0');
    expect(c.services).toEqual(['2001:db8:5::90']);
  });

  it('reports every problem with its entry', () => {
    const r = frontConfigFromValue({ services: ['2001:db8:5::80', 'x'], tun: { mtu: 70000, routes: ['192.0.2.1/24'] }, lbsp: { optionType: 1 }, encap: { source4: '2001:db8::1' }, admin: { listen: '::1:80' } }, 'f.yaml');
    const lines = r.errors.map((e) => `${e.entry}: ${e.reason}`);
    expect(r.config).toBeUndefined();
    expect(lines).toEqual(expect.arrayContaining([
      expect.stringMatching(/^services\[1\]: not an IPv4 or IPv6 address/),
      expect.stringMatching(/^tun\.mtu: must be an integer from 576 to 65535/),
      expect.stringMatching(/^tun\.routes\[0\]: host bits set/),
      expect.stringMatching(/^lbsp\.optionType: 1 is Pad1\/PadN/),
      expect.stringMatching(/^encap\.source4: must be an IPv4 address/),
      expect.stringMatching(/^admin\.listen: must be/),
    ]));
    expect(r.errors.every((e) => e.file === 'f.yaml')).toBe(true);
  });

  it('needs at least one service', () => {
    expect(frontConfigFromValue({}, 'f.yaml').errors.map((e) => e.entry)).toContain('services');
  });
});

describe('back config', () => {
  it('loads the example', () => {
    const r = loadBackConfig(`${examples}back.yaml`);
    expect(formatErrors(r.errors)).toBe('');
    expect(r.config!.addresses).toEqual([
      { address: '2001:db8:b::1', service: '2001:db8:5::80', mode: 'auto' },
      { address: '198.51.100.1', service: '192.0.2.80', mode: 'auto' },
    ]);
    expect(r.config!.lbsp).toEqual({ stamp: true, serverId: '2001:db8:b::1', optionType: 0x1e });
  });

  it('cross-field checks: returnEncap needs returnPath; entries are checked one by one', () => {
    const r = backConfigFromValue({
      addresses: [{ address: '2001:db8:b::1', service: '2001:db8:5::80', mode: 'tunnel' }, { address: '2001:db8:b::1', service: 'nope' }],
      returnEncap: { gateway: '2001:db8:f::1' },
    }, 'b.yaml');
    const lines = r.errors.map((e) => `${e.entry}: ${e.reason}`);
    expect(lines).toEqual(expect.arrayContaining([
      expect.stringMatching(/^addresses\[0\]\.mode: must be translate \| encap \| auto/),
      expect.stringMatching(/^addresses\[1\]\.service: not an IPv4 or IPv6 address/),
      expect.stringMatching(/^returnEncap\.gateway: needs returnPath\.interface/),
    ]));
  });

  it('serverId defaults to the back\'s own IPv6 address', () => {
    const r = backConfigFromValue({ addresses: [{ address: '2001:db8:b::7', service: '2001:db8:5::80' }] }, 'b.yaml');
    expect(r.config!.lbsp.serverId).toBe('2001:db8:b::7');
  });
});

describe('refusals: addresses that are never services or backs, /0 senders, MTUs beyond a slot', () => {
  const front = (over: Record<string, unknown>) => frontConfigFromValue({ services: ['2001:db8:5::80'], ...over }, 'f.yaml');
  const back = (over: Record<string, unknown>) => backConfigFromValue({ addresses: [{ address: '2001:db8:b::1', service: '2001:db8:5::80' }], ...over }, 'b.yaml');
  it('tun.mtu: up to the slot (1920 without offloads, 65535 with)', () => {
    expect(front({ tun: { mtu: 1920 }, offload: { enabled: false } }).errors).toEqual([]);
    expect(front({ tun: { mtu: 1921 }, offload: { enabled: false } }).errors[0]).toMatchObject({ entry: 'tun.mtu', reason: expect.stringMatching(/1920 bytes/) });
    expect(front({ tun: { mtu: 65535 } }).errors).toEqual([]);
    expect(back({ tun: { mtu: 9000 }, offload: { enabled: false } }).errors[0]).toMatchObject({ entry: 'tun.mtu' });
    expect(back({ tun: { mtu: 9000 } }).errors).toEqual([]);
  });
  it('services and back addresses: no unspecified, loopback or multicast', () => {
    for (const a of ['0.0.0.0', '127.0.0.1', '224.0.0.1', '::', '::1', 'ff02::1']) {
      expect(front({ services: [a] }).errors[0], a).toMatchObject({ entry: 'services[0]' });
      expect(back({ addresses: [{ address: a, service: '2001:db8:5::80', mode: 'encap' }] }).errors[0], a).toMatchObject({ entry: 'addresses[0].address' });
      expect(back({ addresses: [{ address: '2001:db8:b::1', service: a, mode: 'encap' }] }).errors[0], a).toMatchObject({ entry: 'addresses[0].service' });
    }
    expect(front({ services: ['192.0.2.80', '2001:db8:5::80'] }).errors).toEqual([]);
  });
  it('acceptTunnelFrom and allowedFronts: no /0', () => {
    expect(front({ acceptTunnelFrom: ['::/0'] }).errors[0]).toMatchObject({ entry: 'acceptTunnelFrom[0]' });
    expect(front({ acceptTunnelFrom: ['2001:db8:e1::/64', '0.0.0.0/0'] }).errors[0]).toMatchObject({ entry: 'acceptTunnelFrom[1]' });
    expect(back({ allowedFronts: ['::/0'] }).errors[0]).toMatchObject({ entry: 'allowedFronts[0]' });
    expect(back({ allowedFronts: ['2001:db8:e1::/64', '192.0.2.80/32'] }).errors).toEqual([]);
  });
  it('udpGro.interface: an interface name, and only with udpPort', () => {
    expect(back({ udpPort: 6080, udpGro: { interface: 'eth0' } }).config?.udpGro).toEqual({ interface: 'eth0' });
    expect(back({}).config?.udpGro).toEqual({ interface: '' });
    expect(back({ udpGro: { interface: 'eth0' } }).errors[0]).toMatchObject({ entry: 'udpGro.interface', reason: expect.stringMatching(/needs udpPort/) });
    expect(back({ udpPort: 6080, udpGro: { interface: 'eth 0; rm' } }).errors[0]).toMatchObject({ entry: 'udpGro.interface', reason: expect.stringMatching(/not an interface name/) });
  });
});

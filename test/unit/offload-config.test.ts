// offload.enabled: on by default in the front and the back, switchable off in the file
// or with MSLB_OFFLOAD_ENABLED, and a non-boolean is a config error naming the entry.
// offload.udpTunnel (front): the same, env MSLB_OFFLOAD_UDP_TUNNEL; the TAP's name fits the kernel's.
import { afterEach, describe, expect, it } from 'vitest';
import { frontConfigFromValue } from '../../front/front-config.js';
import { backConfigFromValue } from '../../back/back-config.js';
import { tunnelTapName } from '../../shared/engine/service-host.js';

const front = { tun: { routes: ['2001:db8:5::80/128'] }, services: ['2001:db8:5::80'], table: './t.yaml' };
const back = { addresses: [{ address: '2001:db8:b::1', service: '2001:db8:5::80' }] };

afterEach(() => {
  delete process.env.MSLB_OFFLOAD_ENABLED;
  delete process.env.MSLB_OFFLOAD_UDP_TUNNEL;
});

describe('offload.enabled', () => {
  it('defaults to true in both services', () => {
    expect(frontConfigFromValue(front, 'f.yaml').config?.offload.enabled).toBe(true);
    expect(backConfigFromValue(back, 'b.yaml').config?.offload.enabled).toBe(true);
  });
  it('can be turned off in the file', () => {
    expect(frontConfigFromValue({ ...front, offload: { enabled: false } }, 'f.yaml').config?.offload.enabled).toBe(false);
    expect(backConfigFromValue({ ...back, offload: { enabled: false } }, 'b.yaml').config?.offload.enabled).toBe(false);
  });
  it('MSLB_OFFLOAD_ENABLED=false overrides the file', () => {
    process.env.MSLB_OFFLOAD_ENABLED = 'false';
    expect(frontConfigFromValue(front, 'f.yaml').config?.offload.enabled).toBe(false);
    expect(backConfigFromValue(back, 'b.yaml').config?.offload.enabled).toBe(false);
  });
  it('a non-boolean is rejected with file and entry', () => {
    const r = backConfigFromValue({ ...back, offload: { enabled: 'sometimes' } }, 'b.yaml');
    expect(r.config).toBeUndefined();
    expect(r.errors.some((e) => e.file === 'b.yaml' && e.entry === 'offload.enabled')).toBe(true);
  });
});

describe('offload.udpTunnel (front)', () => {
  it('defaults to true, off in the file or with MSLB_OFFLOAD_UDP_TUNNEL=false, a non-boolean rejected', () => {
    expect(frontConfigFromValue(front, 'f.yaml').config?.offload.udpTunnel).toBe(true);
    expect(frontConfigFromValue({ ...front, offload: { udpTunnel: false } }, 'f.yaml').config?.offload).toEqual({ enabled: true, udpTunnel: false });
    process.env.MSLB_OFFLOAD_UDP_TUNNEL = 'false';
    expect(frontConfigFromValue(front, 'f.yaml').config?.offload.udpTunnel).toBe(false);
    delete process.env.MSLB_OFFLOAD_UDP_TUNNEL;
    const r = frontConfigFromValue({ ...front, offload: { udpTunnel: 'yes please' } }, 'f.yaml');
    expect(r.errors.some((e) => e.file === 'f.yaml' && e.entry === 'offload.udpTunnel')).toBe(true);
  });
  it('the tunnel TAP is named after the TUN within the kernel\'s 15 characters', () => {
    expect(tunnelTapName('mslbf0')).toBe('mslbf0tap');
    expect(tunnelTapName('a-very-long-tun')).toBe('a-very-long-tap');
    expect(tunnelTapName('a-very-long-tun').length).toBeLessThanOrEqual(15);
  });
});

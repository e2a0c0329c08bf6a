// What a SIGHUP may change in a running back (back/back-reload.ts): addresses, allowedFronts and
// lbsp; any other key, or the set of services when returnPath rules name them, is refused with the
// key and "restart".
import { describe, expect, it } from 'vitest';
import { backConfigFromValue, type BackConfig } from '../../back/back-config.js';
import { backReloadErrors, backReloadUnchanged } from '../../back/back-reload.js';

const BASE = {
  tun: { name: 'mslbb0', routes: ['2001:db8:b::1/128'] },
  addresses: [{ address: '2001:db8:b::1', service: '2001:db8:5::80' }],
  allowedFronts: ['2001:db8:e1::/64'],
  returnPath: { interface: 'srv0' },
};

function cfg(over: Record<string, unknown> = {}): BackConfig {
  const r = backConfigFromValue({ ...BASE, ...over }, '/etc/mslb/back.yaml');
  if (!r.config) throw new Error(JSON.stringify(r.errors));
  return r.config;
}

describe('back reload on SIGHUP', () => {
  it('applies addresses (same services), allowedFronts and lbsp', () => {
    const cur = cfg();
    expect(backReloadUnchanged(cur, cfg())).toBe(true);
    const next = cfg({ allowedFronts: ['2001:db8:e1::/64', '2001:db8:e2::/64'], lbsp: { stamp: true },
      addresses: [{ address: '2001:db8:b::1', service: '2001:db8:5::80' }, { address: '2001:db8:b::11', service: '2001:db8:5::80', mode: 'encap' }] });
    expect(backReloadErrors(cur, next)).toEqual([]);
    expect(backReloadUnchanged(cur, next)).toBe(false);
  });

  it('refuses a change of a key set up at start, naming it', () => {
    const errs = backReloadErrors(cfg(), cfg({ tun: { ...BASE.tun, mtu: 1400 }, admin: { listen: '[::1]:9200' } }));
    expect(errs.map((e) => e.entry)).toEqual(['tun', 'admin']);
    expect(errs[0]).toMatchObject({ file: '/etc/mslb/back.yaml', reason: expect.stringMatching(/only addresses, allowedFronts, lbsp are applied on SIGHUP: restart/) });
  });

  it('refuses a new service address while returnPath rules name the services; accepts it without returnPath', () => {
    const more = { addresses: [...BASE.addresses, { address: '2001:db8:b::2', service: '2001:db8:5::81' }] };
    expect(backReloadErrors(cfg(), cfg(more))[0]).toMatchObject({ entry: 'addresses', reason: expect.stringMatching(/service addresses changed/) });
    const noRp = { returnPath: { interface: '' } };
    expect(backReloadErrors(cfg(noRp), cfg({ ...noRp, ...more }))).toEqual([]);
  });
});

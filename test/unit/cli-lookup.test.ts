import { describe, it, expect } from 'vitest';
import { fileURLToPath } from 'node:url';
import { main } from '../../cli/mslb.js';

const front = fileURLToPath(new URL('../../deploy/examples/front.yaml', import.meta.url));

async function lookup(...args: string[]) {
  const out: string[] = [], err: string[] = [];
  const code = await main(['lookup', '--config', front, ...args], { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, line: out[0] ?? '', out, err };
}

describe('mslb lookup (deploy/examples)', () => {
  it('routes the lab client prefixes to their backs', async () => {
    expect((await lookup('--src', '2001:db8:c1::10')).line).toBe('back b1 address 2001:db8:b::1 mode translate reason source_prefix via back:b1 route 2001:db8:c1::/48');
    expect((await lookup('--src', '2001:db8:c2::10')).line).toBe('back b2 address 2001:db8:b::2 mode translate reason source_prefix via back:b2 route 2001:db8:c2::/48');
    expect((await lookup('--src', '203.0.113.10')).line).toBe('back b1 address 198.51.100.1 mode translate reason source_prefix via back:b1 route 203.0.113.0/26');
    expect((await lookup('--src', '203.0.113.74')).line).toBe('back b2 address 198.51.100.2 mode translate reason source_prefix via back:b2 route 203.0.113.64/26');
  });

  it('explains flow-label, LBSP server and LBSP client decisions', async () => {
    expect((await lookup('--src', '2001:db8:99::1', '--flow-label', '12345')).line).toMatch(/reason flow_label via pool:web route ::\/0; members b1\(weight 1, up\) b2\(weight 1, up\)$/);
    expect((await lookup('--src', '2001:db8:99::1', '--flow-label', '12345', '--down', 'b2')).line).toMatch(/; members b1\(weight 1, up\) b2\(weight 1, down\); down: b2$/);
    expect((await lookup('--src', '2001:db8:99::1', '--lbsp-server', '2001:db8:b::2')).line).toBe('back b2 address 2001:db8:b::2 mode translate reason lbsp_server');
    // Client segment 2001:db8:c1::5 names b1's prefix although the source is elsewhere.
    expect((await lookup('--src', '2001:db8:99::1', '--lbsp-client', '2001:db8:c1::5')).line).toMatch(/^back b1 .*reason source_prefix via back:b1 route 2001:db8:c1::\/48$/);
    // IPv4-mapped client in the IPv4 routes -> b2 (203.0.113.64/26) with b2's IPv6 address for the IPv6 service.
    expect((await lookup('--src', '2001:db8:99::1', '--lbsp-client', '::ffff:203.0.113.70')).line).toMatch(/^back b2 address 2001:db8:b::2 .*via back:b2 route 203.0.113.64\/26$/);
    const ign = await lookup('--src', '2001:db8:c1::10', '--lbsp-server', '2001:db8:ffff::1');
    expect(ign.line).toMatch(/^back b1 .*LBSP server segment ignored: unknown_server/);
  });

  it('a down LBSP server is not sticky', async () => {
    const r = await lookup('--src', '2001:db8:c1::10', '--lbsp-server', '2001:db8:b::2', '--down', 'b2');
    expect(r.line).toMatch(/^back b1 .*reason source_prefix.*ignored/);
  });

  it('rejects bad arguments', async () => {
    expect((await lookup('--src', 'nope')).code).toBe(2);
    expect((await lookup('--src', '2001:db8::1', '--flow-label', '2000000')).code).toBe(2);
  });
});

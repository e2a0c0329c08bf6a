import { describe, it, expect } from 'vitest';
import { parseTableText } from '../../front/table/table-file.js';
import { validateTable, type TableContext } from '../../front/table/table-loader.js';

const ctx: TableContext = { services: ['2001:db8:5::80', '192.0.2.80'], mode: 'translate', encap: { source: 'service', source4: '', source6: '' } };

// SPEC 6a's table, verbatim.
const SPEC_TABLE = `backs:
  b1: { address: 2001:db8:b::1 }                  # mode defaults to the front's
  b2: { address: 2001:db8:b::2, mode: encap, serverId: 2001:db8:5::2 }
  b4: { address: 198.51.100.1 }
pools:
  web: { members: [b1, b2], key: label }          # key: label | source+label | source
  api: { members: [{ back: b1, weight: 3 }, { back: b2, weight: 0 }] }   # weight 0: b2 drains
routes:
  - { source: 2001:db8:c1::/48, to: b1 }
  - { source: 198.51.100.0/24, to: b4 }
  - { source: ::/0, to: web }                     # a route names a back or a pool
`;

function errs(table: unknown, c: TableContext = ctx): string[] {
  return validateTable(table, 't.yaml', c).errors.map((e) => `${e.entry}: ${e.reason}`);
}

describe('table file (SPEC 6a)', () => {
  it('accepts the SPEC example verbatim with the SPEC front config', () => {
    const r = parseTableText(SPEC_TABLE, 't.yaml', ctx);
    expect(r.errors).toEqual([]);
    const t = r.table!;
    expect(t.backs.map((b) => [b.name, b.mode])).toEqual([['b1', 'translate'], ['b2', 'encap'], ['b4', 'translate']]);
    expect(t.pools[0]).toEqual({ name: 'web', members: ['b1', 'b2'], weights: [1, 1], key: 'label', failClosed: false });
    expect(t.pools[1]).toEqual({ name: 'api', members: ['b1', 'b2'], weights: [3, 0], key: 'source', failClosed: false });
    expect(t.routes.map((r) => r.source)).toEqual(['2001:db8:c1::/48', '198.51.100.0/24', '::/0']);
    expect(t.backs[0]!.addressFor).toEqual({ '2001:db8:5::80': '2001:db8:b::1' });
    expect(t.backs[1]!.addressFor).toEqual({ '2001:db8:5::80': '2001:db8:b::2', '192.0.2.80': '2001:db8:b::2' });
  });

  const one = (name: string, table: unknown, re: RegExp, c?: TableContext) =>
    it(name, () => { const e = errs(table, c); expect(e).toHaveLength(1); expect(e[0]).toMatch(re); });

  one('bad prefix', { backs: { b1: { address: '2001:db8:b::1' } }, routes: [{ source: '2001:db8::/129', to: 'b1' }] }, /^routes\[0\]\.source: not a prefix/);
  one('host bits set', { backs: { b1: { address: '2001:db8:b::1' } }, routes: [{ source: '2001:db8::1/64', to: 'b1' }] }, /^routes\[0\]\.source: host bits set .*did you mean 2001:db8::\/64/);
  one('unknown back or pool', { backs: { b1: { address: '2001:db8:b::1' } }, routes: [{ source: '::/0', to: 'nope' }] }, /^routes\[0\]\.to: unknown back or pool "nope"/);
  one('duplicate route', { backs: { b1: { address: '2001:db8:b::1' } }, routes: [{ source: '::/0', to: 'b1' }, { source: '0::/0', to: 'b1' }] }, /^routes\[1\]\.source: duplicate route: ::\/0 is already routes\[0\]/);
  one('same prefix for a specific service is not a duplicate; unknown service is an error',
    { backs: { b1: { address: '2001:db8:b::1' } }, routes: [{ source: '::/0', to: 'b1' }, { source: '::/0', to: 'b1', service: '2001:db8:5::80' }, { source: '::/0', to: 'b1', service: '2001:db8:5::99' }] },
    /^routes\[2\]\.service: 2001:db8:5::99 is not one of the front's services/);
  one('translate route of the other family', { backs: { b4: { address: '198.51.100.1' } }, routes: [{ source: '::/0', to: 'b4' }] }, /^routes\[0\]\.to: translate back b4 has no IPv6 address for service 2001:db8:5::80/);
  one('translate with several services and one address',
    { backs: { b1: { address: '2001:db8:b::1' } }, routes: [{ source: '::/0', to: 'b1' }] },
    /^backs\.b1\.address: translate mode with 2 IPv6 services .* needs addresses/,
    { ...ctx, services: ['2001:db8:5::80', '2001:db8:5::81'] });
  one('encap to the other family without encap.source4',
    { backs: { b4: { address: '198.51.100.1', mode: 'encap' } }, routes: [{ source: '::/0', to: 'b4' }] },
    /^routes\[0\]\.to: encap to IPv4 back b4 .* needs encap\.source4/);
  one('pool with no members', { backs: { b1: { address: '2001:db8:b::1' } }, pools: { p: { members: [] } }, routes: [] }, /^pools\.p\.members: a pool needs at least one member/);
  one('unknown key in a back', { backs: { b1: { address: '2001:db8:b::1', wieght: 2 } }, routes: [] }, /^backs\.b1\.wieght: unknown key/);
  one('bad pool key', { backs: { b1: { address: '2001:db8:b::1' } }, pools: { p: { members: ['b1'], key: 'flow' } } }, /^pools\.p\.key: must be label \| source\+label \| source/);
  one('member weight out of range', { backs: { b1: { address: '2001:db8:b::1' } }, pools: { p: { members: [{ back: 'b1', weight: 1001 }] } } }, /^pools\.p\.members\[0\]\.weight: must be an integer from 0 to 1000/);
  one('member object without a known back', { backs: { b1: { address: '2001:db8:b::1' } }, pools: { p: { members: [{ back: 'b9' }] } } }, /^pools\.p\.members\[0\]\.back: unknown back "b9"/);
  one('member object with an unknown key', { backs: { b1: { address: '2001:db8:b::1' } }, pools: { p: { members: [{ back: 'b1', wieght: 2 }] } } }, /^pools\.p\.members\[0\]\.wieght: unknown key/);
  one('unknown pool member', { backs: { b1: { address: '2001:db8:b::1' } }, pools: { p: { members: ['b1', 'b9'] } } }, /^pools\.p\.members\[1\]: unknown back "b9"/);
  one('bad back address', { backs: { b1: { address: '2001:db8:b::g' } } }, /^backs\.b1\.address: not an IPv4 or IPv6 address/);
  one('addresses map with a non-service key', { backs: { b1: { addresses: { '2001:db8:5::99': '2001:db8:b::1' } } } }, /^backs\.b1\.addresses\["2001:db8:5::99"\]: 2001:db8:5::99 is not one of the front's services/);

  it('accepts encap to the other family when encap.source4 is set, and addresses maps', () => {
    expect(errs({ backs: { b4: { address: '198.51.100.1', mode: 'encap' } }, routes: [{ source: '::/0', to: 'b4' }] },
      { ...ctx, encap: { source: 'service', source4: '203.0.113.129', source6: '' } })).toEqual([]);
    expect(errs({ backs: { b1: { addresses: { '2001:db8:5::80': '2001:db8:b::1', '2001:db8:5::81': '2001:db8:b::11' } } }, routes: [{ source: '::/0', to: 'b1' }] },
      { ...ctx, services: ['2001:db8:5::80', '2001:db8:5::81'] })).toEqual([]);
  });

  it('YAML syntax errors carry line and column', () => {
    const r = parseTableText('backs:\n  b1: { address: 2001:db8:b::1\nroutes: []\n', 't.yaml', ctx);
    expect(r.errors).toHaveLength(1);
    expect(r.errors[0]!.entry).toMatch(/^line \d+, column \d+$/);
    expect(r.errors[0]!.reason).toMatch(/^syntax error: /);
  });

  it('JSON tables work too', () => {
    const r = parseTableText(JSON.stringify({ backs: { b1: { address: '2001:db8:b::1' } }, routes: [{ source: '::/0', to: 'b1' }] }), 't.json', ctx);
    expect(r.errors).toEqual([]);
    expect(r.table!.routes).toHaveLength(1);
  });
});

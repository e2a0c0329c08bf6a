// Start-up with a bad config or table: mslb-front and mslb-back exit 1 with file, entry and reason
// before touching any interface. Run as nobody with no capabilities at all (when the test is root),
// so a service that reached for the TUN or rtnetlink first would fail differently ("needs
// CAP_NET_ADMIN"); one case also runs as root in a fresh namespace and checks nothing was created.
// Needs `npm run build` (runs dist/front/main.js and dist/back/main.js).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { distFile } from '../../lab/paths.js';
import { setprivArgs } from '../../lab/least-privilege.js';
import { isRoot, runAsync, sh } from '../helpers/netns.js';

const FRONT = `tun: { name: mslbf9, mtu: 1500, queues: 1, routes: [2001:db8:5::80/128, 192.0.2.80/32] }
services: [2001:db8:5::80, 192.0.2.80]
table: ./table.yaml
mode: translate
admin: { listen: "[::1]:9181" }
`;
const TABLE = `backs:
  b1: { addresses: { "2001:db8:5::80": 2001:db8:b::1, "192.0.2.80": 198.51.100.1 } }
  b2: { addresses: { "2001:db8:5::80": 2001:db8:b::2, "192.0.2.80": 198.51.100.2 } }
routes:
  - { source: 2001:db8:c1::/48, to: b1 }
  - { source: 203.0.113.0/26, to: b2 }
`;
const BACK = `tun: { name: mslbb9, mtu: 1500, routes: [2001:db8:b::1/128] }
addresses:
  - { address: 2001:db8:b::1, service: 2001:db8:5::80 }
allowedFronts: [2001:db8:5::80/128]
admin: { listen: "[::1]:9182" }
`;

interface Case {
  name: string;
  role: 'front' | 'back';
  files: Record<string, string>;
  /** The one error line expected on stderr (after the "invalid ..." header). */
  header: RegExp;
  line: RegExp;
}

const CASES: Case[] = [
  { name: 'front: unknown config key', role: 'front', files: { 'main.yaml': FRONT.replace('mtu: 1500', 'mtuu: 1500'), 'table.yaml': TABLE },
    header: /^mslb-front: invalid config$/m, line: /main\.yaml: tun\.mtuu: unknown key/ },
  { name: 'front: config file missing', role: 'front', files: {},
    header: /^mslb-front: invalid config$/m, line: /main\.yaml: cannot read: ENOENT/ },
  { name: 'front: bad prefix in the table', role: 'front', files: { 'main.yaml': FRONT, 'table.yaml': TABLE.replace('2001:db8:c1::/48', '2001:db8:c1::/4x') },
    header: /^mslb-front: invalid table$/m, line: /table\.yaml: routes\[0\]\.source: not a prefix \(ADDRESS\/LENGTH\): "2001:db8:c1::\/4x"/ },
  { name: 'front: unknown back in the table', role: 'front', files: { 'main.yaml': FRONT, 'table.yaml': TABLE.replace('to: b2', 'to: b7') },
    header: /^mslb-front: invalid table$/m, line: /table\.yaml: routes\[1\]\.to: unknown back or pool "b7"/ },
  { name: 'front: YAML syntax error in the table', role: 'front', files: { 'main.yaml': FRONT, 'table.yaml': TABLE.replace('routes:', 'routes: [') },
    header: /^mslb-front: invalid table$/m, line: /table\.yaml: line \d+, column \d+: syntax error: / },
  { name: 'front: service health probe without a probe prefix', role: 'front',
    files: { 'main.yaml': FRONT, 'table.yaml': TABLE.replace('b1: { addresses: { "2001:db8:5::80": 2001:db8:b::1, "192.0.2.80": 198.51.100.1 } }', 'b1: { addresses: { "2001:db8:5::80": 2001:db8:b::1, "192.0.2.80": 198.51.100.1 }, healthCheck: { servicePort: 80 } }') },
    header: /^mslb-front: invalid table$/m, line: /table\.yaml: backs\.b1\.healthCheck\.servicePort: .*set healthCheck\.probePrefix6 or healthCheck\.probePrefix4 in the front config/ },
  { name: 'back: address that is not an address', role: 'back', files: { 'main.yaml': BACK.replace('address: 2001:db8:b::1', 'address: 2001:db8:b::g') },
    header: /^mslb-back: invalid config$/m, line: /main\.yaml: addresses\[0\]\.address: not an IPv4 or IPv6 address/ },
  { name: 'back: stamping without a return path', role: 'back', files: { 'main.yaml': `${BACK}lbsp: { stamp: true }\n` },
    header: /^mslb-back: invalid config$/m, line: /main\.yaml: lbsp\.stamp: needs returnPath\.interface/ },
];

describe('start-up with a bad config or table exits 1 before touching any interface', () => {
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'mslb-ops-startup-'));
    chmodSync(dir, 0o755); // readable by nobody
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const asNobody = isRoot() ? setprivArgs({ caps: [] }) : [];

  for (const [i, c] of CASES.entries()) {
    it(`${c.name}${isRoot() ? ' (as nobody, no capabilities)' : ''}`, async () => {
      const d = join(dir, `case${i}`);
      sh('mkdir', ['-m', '755', d]);
      for (const [f, text] of Object.entries(c.files)) writeFileSync(join(d, f), text, { mode: 0o644 });
      const entry = distFile(c.role === 'front' ? 'front/main.js' : 'back/main.js');
      const argv = [...asNobody, process.execPath, entry, '--config', join(d, 'main.yaml')];
      const r = await runAsync(argv[0]!, argv.slice(1), { timeoutMs: 15_000 });
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(c.header);
      const lines = r.stderr.trim().split('\n');
      expect(lines, r.stderr).toHaveLength(2); // the header and one error a person can act on
      expect(lines[1]).toMatch(c.line);
      expect(lines[1]!.startsWith(join(d, ''))).toBe(true); // the file, by path
      expect(r.stderr).not.toMatch(/CAP_NET_ADMIN|\/dev\/net\/tun|tun_opened/);
      expect(r.stdout).toBe('');
    }, 20_000);
  }

  it.skipIf(!isRoot())('as root in a fresh namespace, a bad table leaves the namespace untouched', async () => {
    const ns = `mslb-startup-${process.pid}`;
    sh('ip', ['netns', 'add', ns]);
    try {
      const before = sh('ip', ['-n', ns, '-o', 'link']) + sh('ip', ['-n', ns, '-o', 'addr']) + sh('ip', ['-n', ns, 'route']);
      const d = join(dir, 'root');
      sh('mkdir', ['-m', '755', d]);
      writeFileSync(join(d, 'main.yaml'), FRONT);
      writeFileSync(join(d, 'table.yaml'), TABLE.replace('to: b2', 'to: b7'));
      const r = await runAsync('ip', ['netns', 'exec', ns, process.execPath, distFile('front/main.js'), '--config', join(d, 'main.yaml')], { timeoutMs: 15_000 });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/routes\[1\]\.to: unknown back or pool "b7"/);
      const after = sh('ip', ['-n', ns, '-o', 'link']) + sh('ip', ['-n', ns, '-o', 'addr']) + sh('ip', ['-n', ns, 'route']);
      expect(after).toBe(before);
      expect(sh('ip', ['netns', 'exec', ns, 'sysctl', '-n', 'net.ipv6.conf.all.forwarding']).trim()).toBe('0');
    } finally {
      sh('ip', ['netns', 'del', ns]);
    }
  }, 20_000);
});

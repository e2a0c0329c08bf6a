import { describe, it, expect } from 'vitest';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../cli/mslb.js';

const dir = fileURLToPath(new URL('./fixtures/broken/', import.meta.url));
const examples = fileURLToPath(new URL('../../deploy/examples/', import.meta.url));

async function run(...argv: string[]) {
  const out: string[] = [], err: string[] = [];
  const code = await main(argv, { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out, err };
}

describe('mslb check', () => {
  it('accepts the deploy examples', async () => {
    const f = await run('check', `${examples}front.yaml`);
    expect(f.err).toEqual([]);
    expect(f.code).toBe(0);
    expect(f.out[0]).toMatch(/^OK front .*2 services.*2 backs, 1 pools, 6 routes \(3 IPv4, 3 IPv6\)/);
    expect(f.out[1]).toMatch(/^(warning: no hashKey: pools use the built-in key|hashKey from )/);
    const b = await run('check', `${examples}back.yaml`);
    expect(b.code).toBe(0);
    expect(b.out[0]).toMatch(/^OK back .*2 addresses/);
  });

  // One broken file -> exactly one line naming the file, the entry and the reason.
  const cases: [string, RegExp][] = [
    ['front-table-bad-prefix.yaml', /table-bad-prefix\.yaml: routes\[1\]\.source: not a prefix .*2001:db8:c2::\/4x/],
    ['front-table-host-bits.yaml', /table-host-bits\.yaml: routes\[3\]\.source: host bits set in 203\.0\.113\.65\/26 \(did you mean 203\.0\.113\.64\/26\?\)/],
    ['front-table-unknown-back.yaml', /table-unknown-back\.yaml: routes\[1\]\.to: unknown back or pool "b3"/],
    ['front-table-yaml-syntax.yaml', /table-yaml-syntax\.yaml: line 10, column \d+: syntax error: /],
    ['front-table-duplicate-route.yaml', /table-duplicate-route\.yaml: routes\[6\]\.source: duplicate route: 2001:db8:c1::\/48 is already routes\[0\]/],
    ['front-table-family.yaml', /table-family\.yaml: backs\.b1\.addresses\["192\.0\.2\.80"\]: translate mode needs the back address in the service's family/],
    ['front-table-missing.yaml', /table-missing\.yaml: cannot read: ENOENT/],
    ['front-unknown-key.yaml', /front-unknown-key\.yaml: tun\.mtuu: unknown key/],
    ['front-bad-service.yaml', /front-bad-service\.yaml: services\[1\]: not an IPv4 or IPv6 address: "192\.0\.2\.800"/],
    ['front-bad-mode.yaml', /front-bad-mode\.yaml: mode: must be one of .*"tunnel"/],
    ['back-stamp-no-return-path.yaml', /back-stamp-no-return-path\.yaml: lbsp\.stamp: needs returnPath\.interface/],
    ['back-allowed-host-bits.yaml', /back-allowed-host-bits\.yaml: allowedFronts\[0\]: host bits set in 2001:db8:e1::1\/64/],
    ['back-translate-family.yaml', /back-translate-family\.yaml: addresses\[0\]\.address: translate mode needs the same family/],
    ['table-alone.yaml', /table-alone\.yaml: a table file is checked against its front config/],
    ['front-table-pool-member.yaml', /table-pool-member\.yaml: pools\.web\.members\[1\]: unknown back "b5"/],
    ['front-table-health-url.yaml', /table-health-url\.yaml: backs\.b2\.healthCheck\.url: must be an http\(s\) URL, got "ftp:/],
    ['front-table-health-probe.yaml', /table-health-probe\.yaml: backs\.b2\.healthCheck\.servicePort: probing the service through the back needs a probe source: set healthCheck\.probePrefix6 or healthCheck\.probePrefix4 in the front config/],
    ['front-bad-probe-prefix.yaml', /front-bad-probe-prefix\.yaml: healthCheck\.probePrefix6: must be an IPv6 prefix, got "192\.0\.2\.192\/27"/],
    ['front-yaml-syntax.yaml', /front-yaml-syntax\.yaml: line \d+, column \d+: syntax error: /],
    ['back-yaml-syntax.yaml', /back-yaml-syntax\.yaml: line \d+, column \d+: syntax error: /],
    ['back-bad-address.yaml', /back-bad-address\.yaml: addresses\[0\]\.address: not an IPv4 or IPv6 address: "2001:db8:b::1::1"/],
    ['back-unknown-key.yaml', /back-unknown-key\.yaml: allowedFront: unknown key/],
    ['back-bad-listen.yaml', /back-bad-listen\.yaml: admin\.listen: must be "ADDRESS:PORT" or "\[IPV6\]:PORT", got "\[::1\]"/],
    ['does-not-exist.yaml', /does-not-exist\.yaml: cannot read: ENOENT/],
    // a generated table with 120 YAML aliases: a rejected file naming the reason, not a stack trace
    ['front-table-aliases.yaml', /table-aliases\.yaml: more than 100 YAML aliases/],
    // addresses that can never be a service or a back, senders that would be everyone, MTUs no slot holds
    ['front-service-multicast.yaml', /front-service-multicast\.yaml: services\[0\]: ff05::80 is a multicast address \(ff00::\/8\)/],
    ['front-accept-all.yaml', /front-accept-all\.yaml: acceptTunnelFrom\[1\]: ::\/0 would accept every sender/],
    ['front-mtu-no-offload.yaml', /front-mtu-no-offload\.yaml: tun\.mtu: 9000 is larger than a TUN slot holds without offloads \(1920 bytes\)/],
    ['front-table-multicast-back.yaml', /table-multicast-back\.yaml: backs\.b2\.addresses\["192\.0\.2\.80"\]: 239\.1\.2\.3 is a multicast address/],
    ['back-loopback-service.yaml', /back-loopback-service\.yaml: addresses\[0\]\.service: ::1 is the loopback address/],
    ['back-unspecified-address.yaml', /back-unspecified-address\.yaml: addresses\[0\]\.address: :: is the unspecified address/],
    ['back-allowed-all.yaml', /back-allowed-all\.yaml: allowedFronts\[1\]: 0\.0\.0\.0\/0 would accept every sender/],
  ];
  for (const [file, re] of cases) {
    it(`rejects ${file} with one clear error`, async () => {
      const r = await run('check', `${dir}${file}`);
      expect(r.code).toBe(1);
      expect(r.out).toEqual([]);
      expect(r.err).toHaveLength(1);
      expect(r.err[0]).toMatch(re);
    });
  }

  it('the fixtures differ from a good file only by their error (the good ones pass)', async () => {
    expect((await run('check', `${dir}front-ok.yaml`)).code).toBe(0);
    expect((await run('check', `${dir}back-ok.yaml`)).code).toBe(0);
  });

  it('checks a table against a front config with --config', async () => {
    const ok = await run('check', '--config', `${dir}front-ok.yaml`, `${dir}table-ok.yaml`);
    expect(ok.code).toBe(0);
    const bad = await run('check', '--config', `${dir}front-ok.yaml`, `${dir}table-unknown-back.yaml`);
    expect(bad.code).toBe(1);
    expect(bad.err[0]).toMatch(/routes\[1\]\.to: unknown back or pool "b3"/);
  });

  it('refuses a file over 16 MiB before parsing it, naming file and size', async () => {
    const big = join(mkdtempSync(join(tmpdir(), 'mslb-check-')), 'huge-back.yaml');
    writeFileSync(big, `# ${'x'.repeat(16 * 1024 * 1024)}\naddresses: []\n`);
    const r = await run('check', big);
    expect(r.code).toBe(1);
    expect(r.err).toHaveLength(1);
    expect(r.err[0]).toMatch(/huge-back\.yaml: cannot read: file too large: 16777\d+ bytes \(at most 16777216\)/);
    rmSync(big);
  });

  it('prints usage for a bad command line', async () => {
    expect((await run('frobnicate')).code).toBe(2);
    expect((await run('check')).code).toBe(2);
  });
});

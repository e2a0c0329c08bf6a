// Durations with units in the config schemas and the table's healthCheck, and MSLB_* overrides
// checked before use: errors say what was wrong and blame the variable, not the file.
import { describe, it, expect, afterEach } from 'vitest';
import { frontConfigFromValue } from '../../front/front-config.js';
import { backConfigFromValue } from '../../back/back-config.js';
import { validateTable, type TableContext } from '../../front/table/table-loader.js';
import { formatError, formatErrors } from '../../shared/config/config-errors.js';
import { formatDuration, parseDuration } from '../../shared/config/duration.js';

const FRONT = { services: ['2001:db8:5::80'], table: './table.yaml' };
const BACK = { addresses: [{ address: '2001:db8:b::1', service: '2001:db8:5::80' }], allowedFronts: ['2001:db8:f::/64'] };
const ctx: TableContext = { services: ['2001:db8:5::80'], mode: 'translate', encap: { source: 'service', source4: '', source6: '' } };

const set: string[] = [];
function env(name: string, value: string): void {
  process.env[name] = value;
  set.push(name);
}
afterEach(() => { for (const n of set.splice(0)) delete process.env[n]; });

const front = (extra: Record<string, unknown>) => frontConfigFromValue({ ...FRONT, ...extra }, '/etc/mslb/front.yaml');

describe('durations', () => {
  it('parses units and plain seconds', () => {
    expect(parseDuration('2s')).toBe(2);
    expect(parseDuration('500ms')).toBe(0.5);
    expect(parseDuration('5m')).toBe(300);
    expect(parseDuration('1h')).toBe(3600);
    expect(parseDuration(' 1.5s ')).toBe(1.5);
    expect(parseDuration(30)).toBe(30);
    expect(parseDuration('30')).toBe(30);
    for (const bad of ['2x', 's', '', '-1s', '1e3', null, {}, -1, Number.NaN]) expect(parseDuration(bad), String(bad)).toBeNull();
    expect([0.5, 2, 300, 2000, 5400].map(formatDuration)).toEqual(['500ms', '2s', '5m', '33m20s', '1h30m']);
  });

  it('front config: healthCheck and flowTable durations accept units, keep seconds, and are bounded', () => {
    const ok = front({ healthCheck: { interval: '500ms', timeout: '250ms' }, flowTable: { tcpTimeout: '10m', udpTimeout: 45 } });
    expect(formatErrors(ok.errors)).toBe('');
    expect(ok.config!.healthCheck).toMatchObject({ interval: 0.5, timeout: 0.25 });
    expect(ok.config!.flowTable).toMatchObject({ tcpTimeout: 600, udpTimeout: 45, otherTimeout: 30 });
    const defaults = front({});
    expect(defaults.config!.healthCheck).toMatchObject({ interval: 2, timeout: 1 });
    // 2000 is seconds: 33 minutes between probes is refused, saying so
    expect(front({ healthCheck: { interval: 2000 } }).errors.map(formatError)).toEqual([
      '/etc/mslb/front.yaml: healthCheck.interval: must be from 100ms to 5m, got 33m20s',
    ]);
    expect(front({ healthCheck: { interval: '2x' } }).errors.map(formatError)).toEqual([
      '/etc/mslb/front.yaml: healthCheck.interval: must be a duration such as "500ms", "2s", "5m" (a plain number is seconds), got "2x"',
    ]);
    expect(front({ healthCheck: { timeout: '10ms' } }).errors[0]!.reason).toBe('must be from 100ms to 1m, got 10ms');
    expect(front({ flowTable: { tcpTimeout: '2d' } }).errors[0]).toMatchObject({ entry: 'flowTable.tcpTimeout', reason: expect.stringMatching(/got "2d"$/) });
    expect(front({ flowTable: { udpTimeout: '25h' } }).errors[0]).toMatchObject({ entry: 'flowTable.udpTimeout', reason: 'must be from 1s to 24h, got 25h' });
  });

  it('a non-number where an integer is due is shown as written, not as null', () => {
    expect(front({ tun: { mtu: 'abc' } }).errors.map(formatError)).toEqual(['/etc/mslb/front.yaml: tun.mtu: must be an integer from 576 to 65535, got "abc"']);
  });

  it('table healthCheck: interval and timeout take units and the same bounds', () => {
    const table = (hc: Record<string, unknown>) => validateTable({ backs: { b1: { address: '2001:db8:b::1', healthCheck: { url: 'http://[2001:db8:e1::2]:9102/readyz', ...hc } } }, routes: [{ source: '::/0', to: 'b1' }] }, 't.yaml', ctx);
    const ok = table({ interval: '2s', timeout: '500ms' });
    expect(ok.errors).toEqual([]);
    expect(ok.table!.backs[0]!.healthCheck).toMatchObject({ interval: 2, timeout: 0.5 });
    expect(table({ interval: 5 }).table!.backs[0]!.healthCheck!.interval).toBe(5);
    expect(table({ interval: 2000 }).errors).toEqual([{ file: 't.yaml', entry: 'backs.b1.healthCheck.interval', reason: 'must be from 100ms to 5m, got 33m20s (a plain number is seconds)' }]);
    expect(table({ timeout: 'soon' }).errors[0]!.reason).toBe('must be a duration such as "500ms", "2s", "5m" (a plain number is seconds), got "soon"');
  });
});

describe('MSLB_* overrides', () => {
  it('a bad value is blamed on the variable, not on the file', () => {
    env('MSLB_TUN_MTU', 'abc');
    expect(front({}).errors.map(formatError)).toEqual(['environment variable MSLB_TUN_MTU: tun.mtu: must be an integer, got "abc"']);
  });

  it('a value out of bounds found by the later checks is the variable\'s too', () => {
    env('MSLB_TUN_MTU', '70000');
    env('MSLB_HEALTH_INTERVAL', '1h');
    expect(front({}).errors.map(formatError)).toEqual([
      'environment variable MSLB_TUN_MTU: tun.mtu: must be an integer from 576 to 65535, got 70000',
      'environment variable MSLB_HEALTH_INTERVAL: healthCheck.interval: must be from 100ms to 5m, got 1h',
    ]);
  });

  it('Booleans are true or false, never "anything but false"', () => {
    env('MSLB_LBSP_ENABLED', 'sometimes');
    expect(front({}).errors.map(formatError)).toEqual(['environment variable MSLB_LBSP_ENABLED: lbsp.enabled: must be true or false (1/0, yes/no, on/off), got "sometimes"']);
    process.env.MSLB_LBSP_ENABLED = '0';
    expect(front({}).config!.lbsp.enabled).toBe(false);
    process.env.MSLB_LBSP_ENABLED = 'FALSE';
    expect(front({}).config!.lbsp.enabled).toBe(false);
    process.env.MSLB_LBSP_ENABLED = 'yes';
    expect(front({ lbsp: { enabled: false } }).config!.lbsp.enabled).toBe(true); // the variable wins over the file
  });

  it('enums, durations and JSON lists are checked, on the back too', () => {
    env('MSLB_MODE', 'tunnel');
    expect(front({}).errors.map(formatError)).toEqual(['environment variable MSLB_MODE: mode: must be one of translate, encap, got "tunnel"']);
    delete process.env.MSLB_MODE;
    env('MSLB_FLOW_TABLE_TCP_TIMEOUT', '10m');
    expect(front({}).config!.flowTable.tcpTimeout).toBe(600);
    env('MSLB_ADDRESSES', '[{"address":');
    env('MSLB_MSS_CLAMP_ENABLED', 'maybe');
    expect(backConfigFromValue(BACK, '/etc/mslb/back.yaml').errors.map(formatError)).toEqual([
      'environment variable MSLB_ADDRESSES: addresses: must be a JSON list, got "[{\\"address\\":"',
      'environment variable MSLB_MSS_CLAMP_ENABLED: mssClamp.enabled: must be true or false (1/0, yes/no, on/off), got "maybe"',
    ]);
    process.env.MSLB_ADDRESSES = '[{"address":"2001:db8:b::1","service":"not-an-address"}]';
    delete process.env.MSLB_MSS_CLAMP_ENABLED;
    const e = backConfigFromValue(BACK, '/etc/mslb/back.yaml').errors;
    expect(e).toHaveLength(1);
    expect(e[0]!.file).toBe('environment variable MSLB_ADDRESSES');
    expect(e[0]!.entry).toMatch(/^addresses\[0\]/);
  });
});

// Pure checks of the address parsing used by host setup (kept beside the netlink e2e test it serves).
import { describe, expect, it } from 'vitest';
import { formatIp, networkOf, parseIp, prefixBytes } from '../../shared/netlink/ip-prefix.js';
import { parsePrefix as parseText } from '../../shared/table/addr.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

// What host setup does with a prefix: parse the text with the one address parser, then bytes.
const parsePrefix = (s: string) => prefixBytes(parseText(s)!);

describe('ip-prefix', () => {
  it('parses IPv4 and IPv6 forms to network-order bytes', () => {
    expect(hex(parseIp('192.0.2.80').bytes)).toBe('c0000250');
    expect(hex(parseIp('2001:db8:5::80').bytes)).toBe('20010db8000500000000000000000080');
    expect(hex(parseIp('::').bytes)).toBe('0'.repeat(32));
    expect(hex(parseIp('::1').bytes)).toBe('0'.repeat(31) + '1');
    expect(hex(parseIp('2001:db8::').bytes)).toBe('20010db8' + '0'.repeat(24));
    expect(hex(parseIp('::ffff:192.0.2.1').bytes)).toBe('00000000000000000000ffffc0000201');
    expect(hex(parseIp('1:2:3:4:5:6:7:8').bytes)).toBe('00010002000300040005000600070008');
    expect(() => parseIp('fe80::1%eth0')).toThrow();
    expect(() => parseIp('192.0.2.256')).toThrow();
    expect(() => parseIp('host')).toThrow();
  });

  it('parses prefixes, defaults to host length, refuses bad lengths, clears host bits', () => {
    expect(parsePrefix('192.0.2.80')).toMatchObject({ family: 4, len: 32 });
    expect(hex(parsePrefix('192.0.2.80').bytes)).toBe('c0000250');
    expect(parsePrefix('2001:db8::/32')).toMatchObject({ family: 6, len: 32 });
    expect(hex(parsePrefix('2001:db8::1/32').bytes)).toBe('20010db8' + '0'.repeat(23) + '1'); // host bits kept
    for (const bad of ['192.0.2.0/33', '::/129', '::/', '10.0.0.0/-1', 'host/8']) expect(parseText(bad)).toBeNull();
    expect(formatIp(networkOf(parsePrefix('203.0.113.77/26')).bytes)).toBe('203.0.113.64');
    expect(formatIp(networkOf(parsePrefix('2001:db8:c1:ffff::1/47')).bytes)).toBe('2001:db8:c0::');
    expect(formatIp(networkOf(parsePrefix('::1/0')).bytes)).toBe('::');
  });

  it('formats with RFC 5952 zero compression', () => {
    expect(formatIp(parseIp('2001:db8:0:0:1:0:0:1').bytes)).toBe('2001:db8::1:0:0:1');
    expect(formatIp(parseIp('2001:db8:5::80').bytes)).toBe('2001:db8:5::80');
    expect(formatIp(parseIp('1:0:2:3:4:5:6:7').bytes)).toBe('1:0:2:3:4:5:6:7');
    expect(formatIp(parseIp('198.51.100.7').bytes)).toBe('198.51.100.7');
    expect(formatIp(Buffer.from('ff20010db8000000000000000000000001', 'hex').subarray(1, 17))).toBe('2001:db8::1'); // a view into a larger buffer
  });
});

// Pure checks of the address parsing used by host setup (kept beside the netlink e2e test it serves).
import { describe, expect, it } from 'vitest';
import { formatIp, networkOf, parseIp, parsePrefix } from '../../shared/netlink/ip-prefix.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

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
    expect(parsePrefix('2001:db8::/32')).toMatchObject({ family: 6, len: 32 });
    expect(() => parsePrefix('192.0.2.0/33')).toThrow();
    expect(() => parsePrefix('::/129')).toThrow();
    expect(() => parsePrefix('::/')).toThrow();
    expect(() => parsePrefix('10.0.0.0/-1')).toThrow();
    expect(formatIp(networkOf(parsePrefix('203.0.113.77/26')).bytes)).toBe('203.0.113.64');
    expect(formatIp(networkOf(parsePrefix('2001:db8:c1:ffff::1/47')).bytes)).toBe('2001:db8:c0::');
    expect(formatIp(networkOf(parsePrefix('::1/0')).bytes)).toBe('::');
  });

  it('formats with RFC 5952 zero compression', () => {
    expect(formatIp(parseIp('2001:db8:0:0:1:0:0:1').bytes)).toBe('2001:db8::1:0:0:1');
    expect(formatIp(parseIp('2001:db8:5::80').bytes)).toBe('2001:db8:5::80');
    expect(formatIp(parseIp('1:0:2:3:4:5:6:7').bytes)).toBe('1:0:2:3:4:5:6:7');
  });
});

// The lab address plan of docs/ARCHITECTURE.md, in one place, so topology, configs and tests agree.
// Link convention: the side nearer the client is ::1 / .x+1, the side nearer the servers ::2 / .x+2
// (except the client link, where the front is ::1 and the client ::2).

export type Family = 'ipv6' | 'ipv4';

export const S6 = '2001:db8:5::80';
export const S4 = '192.0.2.80';

/** Client addresses by name: c<prefix><family>. */
export const CLIENTS = {
  c1v6: { address: '2001:db8:c1::10', prefix: '2001:db8:c1::/48', family: 'ipv6', table: 1 },
  c2v6: { address: '2001:db8:c2::10', prefix: '2001:db8:c2::/48', family: 'ipv6', table: 2 },
  c1v4: { address: '203.0.113.10', prefix: '203.0.113.0/26', family: 'ipv4', table: 1 },
  c2v4: { address: '203.0.113.74', prefix: '203.0.113.64/26', family: 'ipv4', table: 2 },
} as const satisfies Record<string, { address: string; prefix: string; family: Family; table: 1 | 2 }>;
export type ClientName = keyof typeof CLIENTS;
export const CLIENT_NAMES = Object.keys(CLIENTS) as ClientName[];

/**
 * Source prefixes of the front's health probes of the service through a back (front config
 * healthCheck.probePrefix6/4): the front puts prefix+slot+1 on its lo; the backs route them to the front.
 */
export const PROBE = { v6: '2001:db8:f::/112', v4: '192.0.2.192/27' } as const;

/** The backs' own translation/tunnel addresses B. */
export const BACKS = {
  back1: { v6: '2001:db8:b::1', v4: '198.51.100.1', server: 'server1' },
  back2: { v6: '2001:db8:b::2', v4: '198.51.100.2', server: 'server2' },
} as const;
export type BackName = keyof typeof BACKS;
export type ServerName = 'server1' | 'server2';

/** Point-to-point links: [near side, far side] addresses with prefix length. */
export const LINKS = {
  client: { v6: ['2001:db8:e0::2', '2001:db8:e0::1'], v4: ['203.0.113.130', '203.0.113.129'] }, // [client, front]
  back1: { v6: ['2001:db8:e1::1', '2001:db8:e1::2'], v4: ['203.0.113.137', '203.0.113.138'] }, // [front, back1]
  back2: { v6: ['2001:db8:e2::1', '2001:db8:e2::2'], v4: ['203.0.113.141', '203.0.113.142'] }, // [front, back2]
  server1: { v6: ['2001:db8:e3::1', '2001:db8:e3::2'], v4: ['203.0.113.145', '203.0.113.146'] }, // [back1, server1]
  server2: { v6: ['2001:db8:e4::1', '2001:db8:e4::2'], v4: ['203.0.113.149', '203.0.113.150'] }, // [back2, server2]
} as const;
export const LINK_PREFIX_LEN = { v6: 64, v4: 30 } as const;

/** Ports the lab servers listen on, on S. */
export const PORTS = { http: 80, https: 443, opensslTls: 4433, udpEcho: 7 } as const;

/** Which server a client reaches when the table of deploy/lab is in force (prefix 1 -> b1, 2 -> b2). */
export function expectedServer(client: ClientName): ServerName {
  return CLIENTS[client].table === 1 ? 'server1' : 'server2';
}

export function serviceFor(family: Family): string {
  return family === 'ipv6' ? S6 : S4;
}

/** `[addr]` for IPv6 in URLs and host:port strings. */
export function hostPart(addr: string): string {
  return addr.includes(':') ? `[${addr}]` : addr;
}

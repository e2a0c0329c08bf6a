// The few bytes of DNS (RFC 1035 section 4.1) a health probe needs: a query with one question, and
// from the answer only its id, QR bit, rcode and answer count. No compression or record parsing:
// "the server answers this name" is all a probe asks.

export const DNS_TYPES: Readonly<Record<string, number>> = { A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, MX: 15, TXT: 16, AAAA: 28, SRV: 33, ANY: 255 };
export const DNS_RCODES: Readonly<Record<string, number>> = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 };

const LABEL_RE = /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/;

/** Why `name` cannot be asked for, or null when it can (labels of letters, digits, _ and -). */
export function dnsNameProblem(name: string): string | null {
  const n = name.endsWith('.') ? name.slice(0, -1) : name;
  if (n === '') return null; // the root
  if (n.length > 253) return 'longer than 253 characters';
  for (const l of n.split('.')) if (!LABEL_RE.test(l)) return `label ${JSON.stringify(l)} is not 1-63 letters, digits, _ or - (not starting or ending with -)`;
  return null;
}

/** A query for `name`/`type` (class IN, recursion desired) with id 0; the id is set per send. */
export function encodeDnsQuery(name: string, type: number): Buffer {
  const n = name.endsWith('.') ? name.slice(0, -1) : name;
  const labels = n === '' ? [] : n.split('.');
  const qnameLen = labels.reduce((s, l) => s + 1 + l.length, 0) + 1;
  const b = Buffer.alloc(12 + qnameLen + 4);
  b.writeUInt16BE(0x0100, 2); // RD
  b.writeUInt16BE(1, 4); // QDCOUNT
  let o = 12;
  for (const l of labels) {
    b[o++] = l.length;
    o += b.write(l, o, 'ascii');
  }
  b[o++] = 0;
  b.writeUInt16BE(type, o);
  b.writeUInt16BE(1, o + 2); // IN
  return b;
}

export function setDnsId(query: Buffer, id: number): void {
  query.writeUInt16BE(id & 0xffff, 0);
}

export interface DnsReplyHead {
  rcode: number;
  answers: number;
}

/** The reply's rcode and answer count, or why it is not an answer to query `id`. */
export function parseDnsReply(msg: Buffer, id: number): DnsReplyHead | string {
  if (msg.length < 12) return `${msg.length} bytes, shorter than a DNS header`;
  if (msg.readUInt16BE(0) !== (id & 0xffff)) return 'id does not match the query';
  const flags = msg.readUInt16BE(2);
  if ((flags & 0x8000) === 0) return 'not a response (QR 0)';
  return { rcode: flags & 0x000f, answers: msg.readUInt16BE(6) };
}

export function rcodeName(rcode: number): string {
  for (const [k, v] of Object.entries(DNS_RCODES)) if (v === rcode) return k;
  return `rcode ${rcode}`;
}

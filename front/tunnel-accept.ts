// Tunnel packets a front accepts (SPEC 3, `acceptTunnelFrom: [prefixes]`): an upstream front's
// (multi-stage encap, Figure 4) or a back's (return encapsulation, draft section 6 / Figure 12).
// The tunnel address they are sent to is routed into the front's TUN by its tun.routes. The front
// unwraps only when the outer source is in one of these prefixes, then looks at the inner packet:
//   inner destination one of its services -> balanced by its own table (multi-stage);
//   inner source one of its services      -> return traffic from a back, forwarded as it is, only
//                                            when the outer source is a back's own address (the
//                                            processor checks it against the table: a spoofed
//                                            source inside the prefix is unauthorized_source);
//   anything else                         -> dropped (not_service).
// A tunnel packet from any other source to an address that is not a service is dropped
// (unauthorized_source); one to a service is a client's own tunnel traffic and is balanced as is.
import { PrefixTable, PrefixTableBuilder } from '../shared/table/prefix-table.js';
import type { PacketInfo } from '../shared/packet/packet-info.js';
import { parsePrefix } from '../shared/table/addr.js';

export interface AcceptPrefix {
  family: 4 | 6;
  words: number[];
  len: number;
}

/** Prefix text (validated config) -> plain data for a worker. */
export function acceptPrefixes(prefixes: readonly string[]): AcceptPrefix[] {
  return prefixes.map((p) => {
    const x = parsePrefix(p);
    if (x === null) throw new Error(`not a prefix: ${p}`);
    return { family: x.family, words: Array.from(x.words), len: x.len };
  });
}

export class TunnelAccept {
  readonly enabled: boolean;
  private readonly from: PrefixTable;

  constructor(prefixes: readonly AcceptPrefix[]) {
    const b = new PrefixTableBuilder();
    for (const p of prefixes) {
      if (p.family === 4) b.addV4(p.words[0], p.len, 0);
      else b.addV6(p.words[0], p.words[1], p.words[2], p.words[3], p.len, 0);
    }
    this.from = b.build();
    this.enabled = prefixes.length > 0;
  }

  /** The packet's (outer) source is in acceptTunnelFrom. */
  accepts(info: PacketInfo): boolean {
    if (!this.enabled) return false;
    const s = info.src;
    return (info.version === 4 ? this.from.lookup4(s[0]) : this.from.lookup6(s[0], s[1], s[2], s[3])) >= 0;
  }
}

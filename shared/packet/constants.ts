/** IP protocol / IPv6 next-header numbers the codec cares about. */
export const Proto = {
  HOPOPTS: 0,
  ICMP: 1,
  IPIP: 4,
  TCP: 6,
  UDP: 17,
  IPV6: 41,
  ROUTING: 43,
  FRAGMENT: 44,
  ESP: 50,
  AH: 51,
  ICMPV6: 58,
  NONE: 59,
  DSTOPTS: 60,
} as const;

/** Default LBSP option type: RFC 4727 experimental, skip-if-unknown, does not change en route. */
export const LBSP_DEFAULT_TYPE = 0x1e;
/** LBSP Opt Data Len: 16 bytes client segment + 16 bytes server segment. */
export const LBSP_DATA_LEN = 32;
/** Length of the canonical Destination Options header carrying LBSP (Hdr Ext Len 4). */
export const LBSP_HDR_LEN = 40;
/** Most extension headers the walker follows before calling the chain malformed. */
export const MAX_EXT_HEADERS = 16;
/** Most non-padding options in one Hop-by-Hop / Destination Options header (Linux default). */
export const MAX_TLV_OPTIONS = 8;

/**
 * How a packet travels from front to back, as the data path compares it: a front's per-back mode
 * (translate or encap) and a back's per-address one, where AUTO accepts either.
 */
export const MODE_TRANSLATE = 0;
export const MODE_ENCAP = 1;
export const MODE_AUTO = 2;

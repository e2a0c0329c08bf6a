/*
 * N-API face of gso_split.c (registered by tun_addon.c's Init):
 *   gsoSplit(buf, off, len, vnet, vnetOff, out, outOffs, outLens, slot, headroom, first, max, from)
 *       -> segments written (>= 0) or a negative GSO_E_* code
 *   completeChecksum(buf, off, len, csumStart, csumOffset) -> 0 or a negative GSO_E_* code
 *   groCoalesce(buf, offs, lens, vnet, count, slot, tcp, udp) -> new count (gro.c: same-flow
 *       TCP segments / UDP datagrams merged into GSO super-packets in place before a write)
 *   groSequence(buf, offs, lens, vnet, first, count, tcp, udp) -> new count of [first, first+count)
 *       (gro.c mslb_gro_seq: consecutive same-flow entries of one buffer merged, in increasing order)
 *   writeProbe(fd, udp) -> 0 when the kernel accepted a GSO write (TCPv6, or UDP_L4 with udp = 1),
 *       else the errno (EINVAL: the kernel rejects GSO writes, e.g. Linux 6.6.44 / tailscale#13041)
 * Arguments are checked (a bad call throws TypeError/RangeError); packet content never throws.
 */
#include <errno.h>
#include <node_api.h>
#include <stdint.h>
#include <sys/uio.h>
#include <unistd.h>

#include "gro.h"
#include "gso_split.h"

static int get_typed(napi_env env, napi_value v, napi_typedarray_type want, void **data, size_t *n) {
  napi_typedarray_type t;
  if (napi_get_typedarray_info(env, v, &t, n, data, NULL, NULL) != napi_ok) return 0;
  return t == want;
}

static int get_u32(napi_env env, napi_value v, uint32_t *out) {
  int32_t i;
  if (napi_get_value_int32(env, v, &i) != napi_ok || i < 0) return 0;
  *out = (uint32_t)i;
  return 1;
}

static napi_value int_value(napi_env env, int32_t v) {
  napi_value r;
  napi_create_int32(env, v, &r);
  return r;
}

static napi_value gso_split_js(napi_env env, napi_callback_info info) {
  size_t argc = 13;
  napi_value a[13];
  napi_get_cb_info(env, info, &argc, a, NULL, NULL);
  void *buf, *vnet, *out, *offs, *lens;
  size_t buf_n, vnet_n, out_n, offs_n, lens_n;
  uint32_t off, len, voff, slot, headroom, first, max, from;
  if (argc < 13 || !get_typed(env, a[0], napi_uint8_array, &buf, &buf_n) || !get_u32(env, a[1], &off) ||
      !get_u32(env, a[2], &len) || !get_typed(env, a[3], napi_uint8_array, &vnet, &vnet_n) ||
      !get_u32(env, a[4], &voff) || !get_typed(env, a[5], napi_uint8_array, &out, &out_n) ||
      !get_typed(env, a[6], napi_int32_array, &offs, &offs_n) ||
      !get_typed(env, a[7], napi_int32_array, &lens, &lens_n) || !get_u32(env, a[8], &slot) ||
      !get_u32(env, a[9], &headroom) || !get_u32(env, a[10], &first) || !get_u32(env, a[11], &max) ||
      !get_u32(env, a[12], &from)) {
    napi_throw_type_error(env, NULL,
                          "gsoSplit(buf, off, len, vnet, vnetOff, out, outOffs, outLens, slot, headroom, first, max, from)");
    return NULL;
  }
  if ((uint64_t)off + len > buf_n || (uint64_t)voff + 12 > vnet_n || (uint64_t)first + max > offs_n ||
      (uint64_t)first + max > lens_n) {
    napi_throw_range_error(env, NULL, "gsoSplit: packet, header or output slots out of range");
    return NULL;
  }
  int r = mslb_gso_split((const uint8_t *)buf + off, len, (const uint8_t *)vnet + voff, (uint8_t *)out, out_n,
                         slot, headroom, first, max, from, (int32_t *)offs, (int32_t *)lens, NULL);
  return int_value(env, r);
}

static napi_value complete_checksum_js(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value a[5];
  napi_get_cb_info(env, info, &argc, a, NULL, NULL);
  void *buf;
  size_t buf_n;
  uint32_t off, len, start, field;
  if (argc < 5 || !get_typed(env, a[0], napi_uint8_array, &buf, &buf_n) || !get_u32(env, a[1], &off) ||
      !get_u32(env, a[2], &len) || !get_u32(env, a[3], &start) || !get_u32(env, a[4], &field)) {
    napi_throw_type_error(env, NULL, "completeChecksum(buf, off, len, csumStart, csumOffset)");
    return NULL;
  }
  if ((uint64_t)off + len > buf_n) {
    napi_throw_range_error(env, NULL, "completeChecksum: packet out of range");
    return NULL;
  }
  return int_value(env, mslb_csum_complete((uint8_t *)buf + off, len, start, field));
}

static napi_value gro_js(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value a[8];
  napi_get_cb_info(env, info, &argc, a, NULL, NULL);
  void *buf, *offs, *lens, *vnet;
  size_t buf_n, offs_n, lens_n, vnet_n;
  uint32_t count, slot, tcp, udp;
  if (argc < 8 || !get_typed(env, a[0], napi_uint8_array, &buf, &buf_n) ||
      !get_typed(env, a[1], napi_int32_array, &offs, &offs_n) ||
      !get_typed(env, a[2], napi_int32_array, &lens, &lens_n) ||
      !get_typed(env, a[3], napi_uint8_array, &vnet, &vnet_n) || !get_u32(env, a[4], &count) ||
      !get_u32(env, a[5], &slot) || !get_u32(env, a[6], &tcp) || !get_u32(env, a[7], &udp)) {
    napi_throw_type_error(env, NULL, "groCoalesce(buf, offs, lens, vnet, count, slot, tcp, udp)");
    return NULL;
  }
  if (count > offs_n || count > lens_n || (uint64_t)count * 12 > vnet_n || slot == 0) {
    napi_throw_range_error(env, NULL, "groCoalesce: count exceeds the arrays, or slot 0");
    return NULL;
  }
  return int_value(env, mslb_gro((uint8_t *)buf, buf_n, (int32_t *)offs, (int32_t *)lens, (uint8_t *)vnet, count, slot,
                                 tcp != 0, udp != 0));
}

static napi_value gro_seq_js(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value a[8];
  napi_get_cb_info(env, info, &argc, a, NULL, NULL);
  void *buf, *offs, *lens, *vnet;
  size_t buf_n, offs_n, lens_n, vnet_n;
  uint32_t first, count, tcp, udp;
  if (argc < 8 || !get_typed(env, a[0], napi_uint8_array, &buf, &buf_n) ||
      !get_typed(env, a[1], napi_int32_array, &offs, &offs_n) ||
      !get_typed(env, a[2], napi_int32_array, &lens, &lens_n) ||
      !get_typed(env, a[3], napi_uint8_array, &vnet, &vnet_n) || !get_u32(env, a[4], &first) ||
      !get_u32(env, a[5], &count) || !get_u32(env, a[6], &tcp) || !get_u32(env, a[7], &udp)) {
    napi_throw_type_error(env, NULL, "groSequence(buf, offs, lens, vnet, first, count, tcp, udp)");
    return NULL;
  }
  uint64_t end = (uint64_t)first + count;
  if (end > offs_n || end > lens_n || end * 12 > vnet_n) {
    napi_throw_range_error(env, NULL, "groSequence: first + count exceeds the arrays");
    return NULL;
  }
  return int_value(env, mslb_gro_seq((uint8_t *)buf, buf_n, (int32_t *)offs, (int32_t *)lens, (uint8_t *)vnet, first,
                                     count, tcp != 0, udp != 0));
}

static napi_value write_probe_js(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value a[2];
  napi_get_cb_info(env, info, &argc, a, NULL, NULL);
  int32_t fd, udp;
  if (argc < 2 || napi_get_value_int32(env, a[0], &fd) != napi_ok || napi_get_value_int32(env, a[1], &udp) != napi_ok ||
      fd < 0) {
    napi_throw_type_error(env, NULL, "writeProbe(fd, udp)");
    return NULL;
  }
  uint8_t pkt[512], vh[12];
  uint32_t len = mslb_gso_probe_packet(pkt, vh, udp != 0);
  struct iovec iov[2] = {{vh, sizeof vh}, {pkt, len}};
  ssize_t r;
  do {
    r = writev(fd, iov, 2);
  } while (r < 0 && errno == EINTR);
  return int_value(env, r < 0 ? errno : 0);
}

void mslb_gso_register(napi_env env, napi_value exports) {
  napi_property_descriptor fns[] = {
      {"gsoSplit", NULL, gso_split_js, NULL, NULL, NULL, napi_default, NULL},
      {"completeChecksum", NULL, complete_checksum_js, NULL, NULL, NULL, napi_default, NULL},
      {"groCoalesce", NULL, gro_js, NULL, NULL, NULL, napi_default, NULL},
      {"groSequence", NULL, gro_seq_js, NULL, NULL, NULL, napi_default, NULL},
      {"writeProbe", NULL, write_probe_js, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof fns / sizeof fns[0], fns);
}

/*
 * Network device features, what `ethtool -k` shows and `ethtool -K` sets, through the SIOCETHTOOL
 * ioctl: a feature is found by its kernel name (ETHTOOL_GSSET_INFO / ETHTOOL_GSTRINGS of
 * ETH_SS_FEATURES, e.g. "rx-gro", "rx-udp-gro-forwarding"), read with ETHTOOL_GFEATURES and set
 * with ETHTOOL_SFEATURES. The back uses it for the receive offloads its tunnels need on the
 * interface they arrive on. Registered by tun_addon.c's Init:
 *   netdevFeature(ifname, name, want) -> the feature's active state after the call (0 or 1), or
 *       -errno (-ENOENT: no feature of that name, -ENODEV: no such interface). want -1 only reads;
 *       0 / 1 asks for off / on (the kernel may refuse: the state returned says what is in force).
 * Main thread, start-up and exit only.
 */
#include <errno.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <node_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

static int eth_ioctl(const char *ifname, void *data) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) s = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return -errno;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
  ifr.ifr_data = data;
  int r = ioctl(s, SIOCETHTOOL, &ifr);
  int e = errno;
  close(s);
  return r < 0 ? -e : r;
}

/* Index of the feature called `name` (and the number of features), or -errno. */
static int feature_index(const char *ifname, const char *name, uint32_t *count) {
  struct {
    struct ethtool_sset_info hdr;
    uint32_t len;
  } si;
  memset(&si, 0, sizeof si);
  si.hdr.cmd = ETHTOOL_GSSET_INFO;
  si.hdr.sset_mask = 1ULL << ETH_SS_FEATURES;
  int r = eth_ioctl(ifname, &si);
  if (r < 0) return r;
  if (!(si.hdr.sset_mask & (1ULL << ETH_SS_FEATURES)) || si.len == 0 || si.len > 4096) return -EOPNOTSUPP;
  uint32_t n = si.len;
  struct ethtool_gstrings *gs = calloc(1, sizeof *gs + (size_t)n * ETH_GSTRING_LEN);
  if (gs == NULL) return -ENOMEM;
  gs->cmd = ETHTOOL_GSTRINGS;
  gs->string_set = ETH_SS_FEATURES;
  gs->len = n;
  r = eth_ioctl(ifname, gs);
  int idx = -ENOENT;
  if (r < 0) {
    idx = r;
  } else {
    for (uint32_t i = 0; i < gs->len && i < n; i++) {
      if (strncmp((const char *)gs->data + (size_t)i * ETH_GSTRING_LEN, name, ETH_GSTRING_LEN) == 0) {
        idx = (int)i;
        break;
      }
    }
  }
  free(gs);
  *count = n;
  return idx;
}

/* Active state of feature idx (0 / 1), or -errno. */
static int feature_active(const char *ifname, int idx, uint32_t count) {
  uint32_t blocks = (count + 31) / 32;
  struct ethtool_gfeatures *gf = calloc(1, sizeof *gf + blocks * sizeof gf->features[0]);
  if (gf == NULL) return -ENOMEM;
  gf->cmd = ETHTOOL_GFEATURES;
  gf->size = blocks;
  int r = eth_ioctl(ifname, gf);
  if (r >= 0) r = (gf->features[idx / 32].active >> (idx % 32)) & 1;
  free(gf);
  return r;
}

static int feature_set(const char *ifname, int idx, uint32_t count, int on) {
  uint32_t blocks = (count + 31) / 32;
  struct ethtool_sfeatures *sf = calloc(1, sizeof *sf + blocks * sizeof sf->features[0]);
  if (sf == NULL) return -ENOMEM;
  sf->cmd = ETHTOOL_SFEATURES;
  sf->size = blocks;
  sf->features[idx / 32].valid = 1u << (idx % 32);
  sf->features[idx / 32].requested = on ? 1u << (idx % 32) : 0;
  int r = eth_ioctl(ifname, sf);
  free(sf);
  return r < 0 ? r : 0;
}

static napi_value netdev_feature(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value a[3];
  napi_get_cb_info(env, info, &argc, a, NULL, NULL);
  char ifname[IFNAMSIZ + 1], name[ETH_GSTRING_LEN + 1];
  size_t n1, n2;
  int32_t want;
  if (argc < 3 || napi_get_value_string_utf8(env, a[0], ifname, sizeof ifname, &n1) != napi_ok ||
      napi_get_value_string_utf8(env, a[1], name, sizeof name, &n2) != napi_ok ||
      napi_get_value_int32(env, a[2], &want) != napi_ok || n1 == 0 || n1 >= IFNAMSIZ || n2 == 0 || want < -1 || want > 1) {
    napi_throw_type_error(env, NULL, "netdevFeature(ifname, name, want: -1 | 0 | 1)");
    return NULL;
  }
  uint32_t count = 0;
  int r = feature_index(ifname, name, &count);
  if (r >= 0) {
    int idx = r;
    if (want >= 0) r = feature_set(ifname, idx, count, want);
    if (r >= 0) r = feature_active(ifname, idx, count);
  }
  napi_value v;
  napi_create_int32(env, r, &v);
  return v;
}

void mslb_ethtool_register(napi_env env, napi_value exports) {
  napi_property_descriptor fns[] = {
      {"netdevFeature", NULL, netdev_feature, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof fns / sizeof fns[0], fns);
}

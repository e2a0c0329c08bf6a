/*
 * mslb_tun: Linux TUN queues with batched I/O over a caller-owned slab.
 *
 * Plain N-API + libuv. No global mutable state: every queue is a wrapped JS object (TunQueue)
 * owning its fd, its uv_poll handle and references to the rx arrays, so the addon can be loaded
 * by several worker_threads at once; each queue polls on the loop of the thread that started it.
 *
 * Exports (see shared/tun/native-tun.ts for the typed view):
 *   openQueues(name, n, flags) -> { name, fds }   flags: 1 = multi-queue, 2 = vnet hdr,
 *                                                 4 = leave the fds blocking (bench references only),
 *                                                 8 = IFF_TAP (Ethernet frames) instead of IFF_TUN,
 *                                                 16 = device vnet header of 24 bytes (UDP tunnels)
 *   gsoSplit / completeChecksum / writeProbe      GSO segmentation and probes (gso_napi.c)
 *   netdevFeature(ifname, name, want)             ethtool features of an interface (ethtool_features.c)
 *   ifName(fd) -> string                          TUNGETIFF on an fd (attach-by-fd path)
 *   setVnetHdrSize(fd, size) -> boolean           TUNSETVNETHDRSZ
 *   setOffload(fd, mask) -> boolean               TUNSETOFFLOAD; false = kernel refused the mask
 *   closeFd(fd)                                   for fds that were never attached
 *   hwAddr(fd) -> Uint8Array(6)                   SIOCGIFHWADDR on a queue fd (a TAP's own MAC)
 *   writeTunnelProbe(fd, mac) -> 0 or errno       a 2-segment TCPv6-in-UDPv6 super-packet (::1 -> ::1,
 *                                                 a martian the kernel drops after the write) to a
 *                                                 TAP whose vnet header size is 24, addressed to mac
 *   attach(fd, vnet, batch, slot, headroom, buf, offs, lens, vnetArea|null) -> TunQueue
 *                                                 vnet: 0 = none, 12 or 24 = the device's vnet
 *                                                 header size (1 = 12); JS always sees 12 bytes
 *   TunQueue.read() -> n >= 0 packets, or -errno when the device is gone
 *   TunQueue.write(buf, offs, lens, count, vnetArea|null) -> written, or -errno when gone
 *   TunQueue.poll(onReadable, onError)            uv_poll(UV_READABLE) on the calling loop
 *   TunQueue.close()                              idempotent
 *   TunQueue.writeDrops() / readDrops() -> number
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <node_api.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>
#include <uv.h>

#define VNET_HDR_LEN 12
/* struct virtio_net_hdr_v1_hash_tunnel: the 12-byte header, 8 bytes of hash fields, then le16
 * outer_th_offset at 20 and le16 inner_nh_offset at 22 (Linux >= 6.16). */
#define VNET_TNL_HDR_LEN 24
#define GSO_UDP_TUNNEL_MASK 0x60 /* VIRTIO_NET_HDR_GSO_UDP_TUNNEL_IPV4 0x20 | _IPV6 0x40 */
#define ETH_HLEN_ 14
#define OPEN_MULTI_QUEUE 1
#define OPEN_VNET_HDR 2
#define OPEN_BLOCKING 4
#define OPEN_TAP 8
#define OPEN_VNET_TNL 16

void mslb_gso_register(napi_env env, napi_value exports); /* gso_napi.c */
void mslb_ethtool_register(napi_env env, napi_value exports); /* ethtool_features.c */

typedef struct tunq {
  int fd; /* -1 once closed */
  int vnet;     /* bytes of vnet header the device exchanges: 0, 12 or 24 */
  int l2;       /* 14 on a TAP (Ethernet header before the IP packet), 0 on a TUN */
  uint32_t batch, slot, headroom;
  uint8_t *buf;
  size_t buf_len;
  int32_t *offs, *lens;
  uint8_t *vhdr;
  napi_ref buf_ref, offs_ref, lens_ref, vhdr_ref;
  napi_env env;
  uv_poll_t *poll; /* heap: freed by its own close callback, outlives this struct if needed */
  napi_ref on_readable, on_error;
  napi_async_context actx;
  double write_drops, read_drops;
  int in_cb;  /* inside a JS callback made with actx: close() then defers napi_async_destroy */
  int hooked; /* env cleanup hook registered: a worker torn down without close() still frees */
} tunq;

/* ---- small helpers (cold path) ---- */

static napi_value throw_errno(napi_env env, const char *what, int err) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_throw_error(env, NULL, msg);
  return NULL;
}

static int arg_int(napi_env env, napi_value v, int32_t *out) {
  return napi_get_value_int32(env, v, out) == napi_ok;
}

static napi_value num(napi_env env, double d) {
  napi_value r;
  napi_create_double(env, d, &r);
  return r;
}

static napi_value boolean(napi_env env, int b) {
  napi_value r;
  napi_get_boolean(env, b, &r);
  return r;
}

static int is_nullish(napi_env env, napi_value v) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) return 1;
  return t == napi_null || t == napi_undefined;
}

/* Typed array data pointer + byte length, checked against the expected element type. */
static int typed(napi_env env, napi_value v, napi_typedarray_type want, void **data, size_t *len) {
  napi_typedarray_type t;
  size_t n;
  if (napi_get_typedarray_info(env, v, &t, &n, data, NULL, NULL) != napi_ok) return 0;
  if (t != want) return 0;
  *len = n; /* element count */
  return 1;
}

/* errno values that mean the queue no longer has a device behind it. */
static int device_gone(int e) { return e == EBADFD || e == ENODEV || e == EBADF || e == ENXIO; }

/* ---- module-level functions ---- */

static napi_value open_queues(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char name[64];
  size_t nlen = 0;
  int32_t n = 0, flags = 0;
  if (argc < 3 || napi_get_value_string_utf8(env, argv[0], name, sizeof name, &nlen) != napi_ok ||
      !arg_int(env, argv[1], &n) || !arg_int(env, argv[2], &flags) || n < 1 || n > 256 ||
      nlen >= IFNAMSIZ) {
    napi_throw_type_error(env, NULL, "openQueues(name: string (< 16 bytes), n: 1..256, flags: number)");
    return NULL;
  }
  int fds[256];
  char kname[IFNAMSIZ + 1];
  kname[0] = 0;
  for (int i = 0; i < n; i++) {
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
      int e = errno;
      for (int j = 0; j < i; j++) close(fds[j]);
      return throw_errno(env, "open /dev/net/tun", e);
    }
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = ((flags & OPEN_TAP) ? IFF_TAP : IFF_TUN) | IFF_NO_PI;
    if ((flags & OPEN_MULTI_QUEUE) || n > 1) ifr.ifr_flags |= IFF_MULTI_QUEUE;
    if (flags & OPEN_VNET_HDR) ifr.ifr_flags |= IFF_VNET_HDR;
    /* First queue may take a kernel-chosen name ("" or a %d pattern); the rest join that name. */
    memcpy(ifr.ifr_name, i == 0 ? name : kname, IFNAMSIZ - 1); /* both NUL-terminated, < 16 */
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
      int e = errno;
      close(fd);
      for (int j = 0; j < i; j++) close(fds[j]);
      return throw_errno(env, "TUNSETIFF", e);
    }
    if (i == 0) {
      memcpy(kname, ifr.ifr_name, IFNAMSIZ);
      kname[IFNAMSIZ] = 0;
      /* A TUN with neither owner nor group lets any process that can open /dev/net/tun attach a
         queue to it (and take a share of the traffic) without CAP_NET_ADMIN. Owner root: attaching
         then needs uid 0 or CAP_NET_ADMIN, which the service holds anyway. */
      if (ioctl(fd, TUNSETOWNER, 0UL) < 0) {
        int e = errno;
        close(fd);
        for (int j = 0; j < i; j++) close(fds[j]);
        return throw_errno(env, "TUNSETOWNER", e);
      }
    }
    int fl = (flags & OPEN_BLOCKING) ? 0 : fcntl(fd, F_GETFL);
    if (!(flags & OPEN_BLOCKING) && (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)) {
      int e = errno;
      close(fd);
      for (int j = 0; j < i; j++) close(fds[j]);
      return throw_errno(env, "fcntl O_NONBLOCK", e);
    }
    if ((flags & OPEN_VNET_HDR)) {
      int sz = (flags & OPEN_VNET_TNL) ? VNET_TNL_HDR_LEN : VNET_HDR_LEN;
      if (ioctl(fd, TUNSETVNETHDRSZ, &sz) < 0) {
        int e = errno;
        close(fd);
        for (int j = 0; j < i; j++) close(fds[j]);
        return throw_errno(env, "TUNSETVNETHDRSZ", e);
      }
    }
    fds[i] = fd;
  }
  napi_value res, arr, s;
  napi_create_object(env, &res);
  napi_create_array_with_length(env, (size_t)n, &arr);
  for (int i = 0; i < n; i++) napi_set_element(env, arr, (uint32_t)i, num(env, fds[i]));
  napi_create_string_utf8(env, kname, NAPI_AUTO_LENGTH, &s);
  napi_set_named_property(env, res, "name", s);
  napi_set_named_property(env, res, "fds", arr);
  return res;
}

static napi_value if_name(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || !arg_int(env, argv[0], &fd)) {
    napi_throw_type_error(env, NULL, "ifName(fd)");
    return NULL;
  }
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  if (ioctl(fd, TUNGETIFF, &ifr) < 0) return throw_errno(env, "TUNGETIFF", errno);
  char kname[IFNAMSIZ + 1];
  memcpy(kname, ifr.ifr_name, IFNAMSIZ);
  kname[IFNAMSIZ] = 0;
  napi_value s;
  napi_create_string_utf8(env, kname, NAPI_AUTO_LENGTH, &s);
  return s;
}

/* SIOCGIFHWADDR works on a tun/tap queue fd itself: the TAP's MAC, to address frames to it. */
static napi_value hw_addr(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || !arg_int(env, argv[0], &fd)) {
    napi_throw_type_error(env, NULL, "hwAddr(fd)");
    return NULL;
  }
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0) return throw_errno(env, "SIOCGIFHWADDR", errno);
  napi_value ab, arr;
  void *data;
  napi_create_arraybuffer(env, 6, &data, &ab);
  memcpy(data, ifr.ifr_hwaddr.sa_data, 6);
  napi_create_typedarray(env, napi_uint8_array, 6, ab, 0, &arr);
  return arr;
}

static void put16(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

/* Folded 16-bit one's complement sum of the IPv6 pseudo-header (::1 -> ::1, next header nh, length). */
static uint16_t probe_pseudo(uint8_t nh, uint32_t len) {
  uint32_t s = 1 + 1 + nh + len; /* the two ::1 addresses contribute 1 each */
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return (uint16_t)s;
}

static void tnl_header(uint8_t *th, const uint8_t *vh12, const uint8_t *pkt, size_t len, int l2);

/* The start-up question "does this kernel segment UDP-tunnel super-packets written to this TAP?":
 * what a refusal looks like (EINVAL) is only visible on a real write. */
static napi_value write_tunnel_probe(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t fd;
  void *mac;
  size_t mac_n;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 2 || !arg_int(env, argv[0], &fd) || !typed(env, argv[1], napi_uint8_array, &mac, &mac_n) || mac_n < 6) {
    napi_throw_type_error(env, NULL, "writeTunnelProbe(fd, mac: Uint8Array(6))");
    return NULL;
  }
  enum { GSO = 100, ETH = 14, OUTER = 40, UDP = 8, INNER = 40, TCP = 20 };
  const uint32_t payload = 2 * GSO, len = ETH + OUTER + UDP + INNER + TCP + payload;
  uint8_t pkt[ETH + OUTER + UDP + INNER + TCP + 2 * GSO], vh[VNET_HDR_LEN], th[VNET_TNL_HDR_LEN];
  memset(pkt, 0, sizeof pkt);
  memcpy(pkt, mac, 6);
  memcpy(pkt + 6, mac, 6);
  pkt[11] ^= 0xff; /* a source MAC that is not the TAP's own */
  put16(pkt + 12, 0x86dd);
  uint8_t *o = pkt + ETH, *u = o + OUTER, *in = u + UDP, *t = in + INNER;
  o[0] = 0x60;
  put16(o + 4, UDP + INNER + TCP + payload);
  o[6] = 17;
  o[7] = 1;
  o[23] = 1;
  o[39] = 1;
  put16(u, 9);
  put16(u + 2, 9);
  put16(u + 4, UDP + INNER + TCP + payload);
  put16(u + 6, probe_pseudo(17, UDP + INNER + TCP + payload));
  in[0] = 0x60;
  put16(in + 4, TCP + payload);
  in[6] = 6;
  in[7] = 1;
  in[23] = 1;
  in[39] = 1;
  put16(t, 9);
  put16(t + 2, 9);
  t[7] = 1;
  t[12] = 5 << 4;
  t[13] = 0x10; /* ACK */
  put16(t + 14, 65535);
  put16(t + 16, probe_pseudo(6, TCP + payload));
  memset(vh, 0, sizeof vh);
  vh[0] = 1 | 8; /* NEEDS_CSUM | UDP_TUNNEL_CSUM */
  vh[1] = 0x40 | 4; /* UDP_TUNNEL_IPV6 | TCPV6 */
  const uint32_t hl = ETH + OUTER + UDP + INNER + TCP, cs = ETH + OUTER + UDP + INNER;
  vh[2] = (uint8_t)hl;
  vh[4] = GSO;
  vh[6] = (uint8_t)cs;
  vh[8] = 16;
  tnl_header(th, vh, pkt, len, ETH);
  struct iovec iov[2] = {{th, sizeof th}, {pkt, len}};
  ssize_t r;
  do {
    r = writev(fd, iov, 2);
  } while (r < 0 && errno == EINTR);
  return num(env, r < 0 ? errno : 0);
}

static napi_value fd_ioctl_int(napi_env env, napi_callback_info info, unsigned long req, int by_value) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t fd, v;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 2 || !arg_int(env, argv[0], &fd) || !arg_int(env, argv[1], &v)) {
    napi_throw_type_error(env, NULL, "(fd: number, value: number)");
    return NULL;
  }
  int iv = v;
  /* TUNSETOFFLOAD takes its mask by value, TUNSETVNETHDRSZ by pointer. */
  int rc = by_value ? ioctl(fd, req, (unsigned long)(uint32_t)v) : ioctl(fd, req, &iv);
  return boolean(env, rc == 0);
}

static napi_value set_vnet_hdr_size(napi_env env, napi_callback_info info) {
  return fd_ioctl_int(env, info, TUNSETVNETHDRSZ, 0);
}

static napi_value set_offload(napi_env env, napi_callback_info info) {
  return fd_ioctl_int(env, info, TUNSETOFFLOAD, 1);
}

static napi_value close_fd(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || !arg_int(env, argv[0], &fd)) {
    napi_throw_type_error(env, NULL, "closeFd(fd)");
    return NULL;
  }
  if (fd >= 0) close(fd);
  return NULL;
}

/* ---- queue lifetime ---- */

static void poll_closed(uv_handle_t *h) { free(h); }

static void del_ref(napi_env env, napi_ref *r) {
  if (*r) {
    napi_delete_reference(env, *r);
    *r = NULL;
  }
}

static void stop_poll(tunq *q) {
  if (q->poll) {
    uv_poll_stop(q->poll);
    q->poll->data = NULL;
    uv_close((uv_handle_t *)q->poll, poll_closed);
    q->poll = NULL;
  }
  del_ref(q->env, &q->on_readable);
  del_ref(q->env, &q->on_error);
}

static void queue_cleanup_hook(void *arg);

/* Releases everything except the struct itself; safe to call more than once. */
static void queue_release(tunq *q) {
  if (q->hooked) {
    q->hooked = 0;
    napi_remove_env_cleanup_hook(q->env, queue_cleanup_hook, q);
  }
  stop_poll(q);
  /* The poll handle is closed (epoll entry removed) before the fd goes. */
  if (q->fd >= 0) {
    close(q->fd);
    q->fd = -1;
  }
  del_ref(q->env, &q->buf_ref);
  del_ref(q->env, &q->offs_ref);
  del_ref(q->env, &q->lens_ref);
  del_ref(q->env, &q->vhdr_ref);
  if (q->actx && !q->in_cb) {
    napi_async_destroy(q->env, q->actx);
    q->actx = NULL;
  }
  q->buf = NULL;
  q->offs = q->lens = NULL;
  q->vhdr = NULL;
}

/* Env teardown (worker exit/terminate) before close() and before GC: release now; the struct
 * itself is freed by the wrap finalizer, which Node still runs for wrapped objects. */
static void queue_cleanup_hook(void *arg) {
  tunq *q = (tunq *)arg;
  q->hooked = 0; /* do not remove the hook from inside itself */
  queue_release(q);
}

static void queue_finalize(napi_env env, void *data, void *hint) {
  tunq *q = (tunq *)data;
  queue_release(q);
  free(q);
}

static tunq *this_queue(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv) {
  napi_value self;
  void *p = NULL;
  if (napi_get_cb_info(env, info, argc, argv, &self, NULL) != napi_ok) return NULL;
  if (napi_unwrap(env, self, &p) != napi_ok || !p) {
    napi_throw_type_error(env, NULL, "not a TunQueue");
    return NULL;
  }
  return (tunq *)p;
}

static napi_value queue_ctor(napi_env env, napi_callback_info info) {
  napi_value self;
  napi_get_cb_info(env, info, NULL, NULL, &self, NULL);
  return self;
}

static napi_ref keep(napi_env env, napi_value v) {
  napi_ref r = NULL;
  napi_create_reference(env, v, 1, &r);
  return r;
}

/* attach(fd, vnet, batch, slot, headroom, buf: Uint8Array, offs: Int32Array, lens: Int32Array,
 *        vnetArea: Uint8Array | null) -> TunQueue. The queue owns fd from here on. */
static napi_value attach(napi_env env, napi_callback_info info) {
  size_t argc = 9;
  napi_value argv[9];
  napi_value ctor = NULL;
  void *data = NULL;
  napi_get_cb_info(env, info, &argc, argv, NULL, &data);
  int32_t fd, vnet, batch, slot, headroom;
  if (argc < 9 || !arg_int(env, argv[0], &fd) || !arg_int(env, argv[1], &vnet) ||
      !arg_int(env, argv[2], &batch) || !arg_int(env, argv[3], &slot) ||
      !arg_int(env, argv[4], &headroom) || fd < 0 || batch < 1 || slot < 1 || headroom < 0 ||
      headroom >= slot) {
    napi_throw_type_error(env, NULL, "attach(fd, vnet, batch, slot, headroom, buf, offs, lens, vnet)");
    return NULL;
  }
  void *buf, *offs, *lens, *vh = NULL;
  size_t buf_n, offs_n, lens_n, vh_n = 0;
  if (!typed(env, argv[5], napi_uint8_array, &buf, &buf_n) ||
      !typed(env, argv[6], napi_int32_array, &offs, &offs_n) ||
      !typed(env, argv[7], napi_int32_array, &lens, &lens_n) ||
      buf_n < (size_t)batch * (size_t)slot || offs_n < (size_t)batch || lens_n < (size_t)batch) {
    napi_throw_range_error(env, NULL, "attach: rx arrays too small for batch x slot");
    return NULL;
  }
  if (vnet) {
    if (is_nullish(env, argv[8]) || !typed(env, argv[8], napi_uint8_array, &vh, &vh_n) ||
        vh_n < (size_t)batch * VNET_HDR_LEN) {
      napi_throw_range_error(env, NULL, "attach: vnet area must be batch x 12 bytes");
      return NULL;
    }
  }
  /* attach() carries this env's TunQueue constructor as its data pointer (no globals). */
  napi_ref ctor_ref = (napi_ref)data;
  if (!ctor_ref || napi_get_reference_value(env, ctor_ref, &ctor) != napi_ok || !ctor) {
    napi_throw_error(env, NULL, "attach: TunQueue constructor unavailable");
    return NULL;
  }
  napi_value obj;
  if (napi_new_instance(env, ctor, 0, NULL, &obj) != napi_ok) return NULL;
  tunq *q = (tunq *)calloc(1, sizeof *q);
  if (!q) {
    napi_throw_error(env, NULL, "attach: out of memory");
    return NULL;
  }
  q->fd = fd;
  q->vnet = vnet == VNET_TNL_HDR_LEN ? VNET_TNL_HDR_LEN : vnet ? VNET_HDR_LEN : 0;
  {
    /* A TAP's packets start with an Ethernet header: the tunnel offsets written count it. */
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    q->l2 = (ioctl(fd, TUNGETIFF, &ifr) == 0 && (ifr.ifr_flags & IFF_TAP) == IFF_TAP) ? ETH_HLEN_ : 0;
  }
  q->batch = (uint32_t)batch;
  q->slot = (uint32_t)slot;
  q->headroom = (uint32_t)headroom;
  q->buf = (uint8_t *)buf;
  q->buf_len = buf_n;
  q->offs = (int32_t *)offs;
  q->lens = (int32_t *)lens;
  q->vhdr = (uint8_t *)vh;
  q->env = env;
  q->buf_ref = keep(env, argv[5]);
  q->offs_ref = keep(env, argv[6]);
  q->lens_ref = keep(env, argv[7]);
  if (vh) q->vhdr_ref = keep(env, argv[8]);
  napi_value rname;
  napi_create_string_utf8(env, "mslb_tun", NAPI_AUTO_LENGTH, &rname);
  napi_async_init(env, NULL, rname, &q->actx);
  if (napi_wrap(env, obj, q, queue_finalize, NULL, NULL) != napi_ok) {
    queue_release(q);
    free(q);
    napi_throw_error(env, NULL, "attach: napi_wrap failed");
    return NULL;
  }
  if (napi_add_env_cleanup_hook(env, queue_cleanup_hook, q) == napi_ok) q->hooked = 1;
  return obj;
}

/* ---- data path ---- */

/* read(): reads until EAGAIN or batch packets; slot i gets its packet at i*slot + headroom. */
static napi_value queue_read(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  tunq *q = this_queue(env, info, &argc, NULL);
  if (!q) return NULL;
  if (q->fd < 0) return num(env, -EBADF);
  const uint32_t room = q->slot - q->headroom;
  uint32_t n = 0;
  while (n < q->batch) {
    uint8_t *pkt = q->buf + (size_t)n * q->slot + q->headroom;
    ssize_t r;
    if (q->vnet == VNET_TNL_HDR_LEN) {
      /* JS keeps the 12-byte part; the tunnel offsets can be recomputed from the packet. */
      uint8_t tail[VNET_TNL_HDR_LEN - VNET_HDR_LEN];
      struct iovec iov[3] = {{q->vhdr + (size_t)n * VNET_HDR_LEN, VNET_HDR_LEN}, {tail, sizeof tail}, {pkt, room}};
      r = readv(q->fd, iov, 3);
      if (r >= 0) r = r < VNET_TNL_HDR_LEN ? 0 : r - VNET_TNL_HDR_LEN;
    } else if (q->vnet) {
      struct iovec iov[2] = {{q->vhdr + (size_t)n * VNET_HDR_LEN, VNET_HDR_LEN}, {pkt, room}};
      r = readv(q->fd, iov, 2);
      if (r >= 0) r -= VNET_HDR_LEN;
    } else {
      r = read(q->fd, pkt, room);
    }
    if (r < 0) {
      int e = errno;
      if (e == EINTR) continue;
      if (e == EAGAIN || e == EWOULDBLOCK) break;
      if (device_gone(e)) return num(env, n > 0 ? (double)n : -(double)e);
      /* Anything else (e.g. EIO, EFAULT) ends this batch; the readiness loop tries again. */
      q->read_drops++;
      break;
    }
    /* The kernel reports the full length even when it truncated into a short slot: drop it. */
    if ((size_t)r > room) {
      q->read_drops++;
      continue;
    }
    q->offs[n] = (int32_t)((size_t)n * q->slot + q->headroom);
    q->lens[n] = (int32_t)r;
    n++;
  }
  return num(env, n);
}

/* The 24-byte header of one packet: its 12 bytes, zero hash fields, and for a UDP-tunnel GSO type
 * outer_th_offset / inner_nh_offset from the packet itself (after l2 bytes of Ethernet header: the
 * outer IP header, then the 8-byte UDP header, then the inner packet). A packet too short to hold
 * them gets zero offsets and the kernel refuses it (a counted write drop). */
static void tnl_header(uint8_t *th, const uint8_t *vh12, const uint8_t *pkt, size_t len, int l2) {
  memcpy(th, vh12, VNET_HDR_LEN);
  memset(th + VNET_HDR_LEN, 0, VNET_TNL_HDR_LEN - VNET_HDR_LEN);
  if (!(vh12[1] & GSO_UDP_TUNNEL_MASK) || len <= (size_t)l2) return;
  const uint8_t v = pkt[l2] >> 4;
  size_t ihl = v == 4 ? (size_t)(pkt[l2] & 15) * 4 : v == 6 ? 40 : 0;
  size_t outer_th = (size_t)l2 + ihl, inner_nh = outer_th + 8;
  if (ihl == 0 || inner_nh >= len) return;
  th[20] = (uint8_t)outer_th;
  th[21] = (uint8_t)(outer_th >> 8);
  th[22] = (uint8_t)inner_nh;
  th[23] = (uint8_t)(inner_nh >> 8);
}

/* write(buf, offs, lens, count, vnetArea|null): per-packet errors are drops, not exceptions. */
static napi_value queue_write(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  tunq *q = this_queue(env, info, &argc, argv);
  if (!q) return NULL;
  void *buf, *offs, *lens, *vh = NULL;
  size_t buf_n, offs_n, lens_n, vh_n = 0;
  int32_t count;
  if (argc < 4 || !typed(env, argv[0], napi_uint8_array, &buf, &buf_n) ||
      !typed(env, argv[1], napi_int32_array, &offs, &offs_n) ||
      !typed(env, argv[2], napi_int32_array, &lens, &lens_n) || !arg_int(env, argv[3], &count) ||
      count < 0 || (size_t)count > offs_n || (size_t)count > lens_n) {
    napi_throw_type_error(env, NULL, "write(buf: Uint8Array, offs: Int32Array, lens: Int32Array, count, vnet?)");
    return NULL;
  }
  if (q->vnet) {
    if (argc < 5 || is_nullish(env, argv[4]) || !typed(env, argv[4], napi_uint8_array, &vh, &vh_n) ||
        vh_n < (size_t)count * VNET_HDR_LEN) {
      napi_throw_range_error(env, NULL, "write: vnet-hdr queue needs count x 12 header bytes");
      return NULL;
    }
  }
  if (q->fd < 0) return num(env, -EBADF);
  const uint8_t *b = (const uint8_t *)buf;
  const int32_t *o = (const int32_t *)offs, *l = (const int32_t *)lens;
  int32_t done = 0;
  for (int32_t i = 0; i < count; i++) {
    int32_t off = o[i], len = l[i];
    if (off < 0 || len <= 0 || (size_t)off + (size_t)len > buf_n) {
      q->write_drops++;
      continue;
    }
    ssize_t r;
    uint8_t th[VNET_TNL_HDR_LEN];
    if (q->vnet == VNET_TNL_HDR_LEN) tnl_header(th, (const uint8_t *)vh + (size_t)i * VNET_HDR_LEN, b + off, (size_t)len, q->l2);
    for (;;) {
      if (q->vnet == VNET_TNL_HDR_LEN) {
        struct iovec iov[2] = {{th, VNET_TNL_HDR_LEN}, {(void *)(b + off), (size_t)len}};
        r = writev(q->fd, iov, 2);
      } else if (q->vnet) {
        struct iovec iov[2] = {{(uint8_t *)vh + (size_t)i * VNET_HDR_LEN, VNET_HDR_LEN},
                               {(void *)(b + off), (size_t)len}};
        r = writev(q->fd, iov, 2);
      } else {
        r = write(q->fd, b + off, (size_t)len);
      }
      if (r < 0 && errno == EINTR) continue;
      break;
    }
    if (r < 0) {
      int e = errno;
      if (device_gone(e)) return num(env, done > 0 ? (double)done : -(double)e);
      q->write_drops++; /* EAGAIN, ENOBUFS, EIO, EINVAL, ...: this packet is lost, go on */
      continue;
    }
    done++;
  }
  return num(env, done);
}

/* ---- readiness ---- */

static void call_js(tunq *q, napi_ref fn_ref, int status) {
  napi_env env = q->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value fn, recv, arg, result;
  if (fn_ref && napi_get_reference_value(env, fn_ref, &fn) == napi_ok && fn) {
    napi_get_global(env, &recv); /* MakeCallback needs an object receiver */
    size_t argc = 0;
    if (status < 0) {
      napi_value code, msg;
      napi_create_string_utf8(env, uv_err_name(status), NAPI_AUTO_LENGTH, &code);
      char text[128];
      snprintf(text, sizeof text, "TUN poll error: %s", uv_strerror(status));
      napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &msg);
      napi_create_error(env, code, msg, &arg);
      argc = 1;
    }
    /* make_callback so promise jobs and nextTicks queued by the handler run after it. The
     * handler may close() the queue: the struct stays (only the finalizer frees it). */
    q->in_cb++;
    napi_status st = napi_make_callback(env, q->actx, recv, fn, argc, argc ? &arg : NULL, &result);
    q->in_cb--;
    if (q->fd < 0 && q->actx && !q->in_cb) {
      napi_async_destroy(env, q->actx);
      q->actx = NULL;
    }
    if (st == napi_pending_exception) {
      napi_value exc;
      napi_get_and_clear_last_exception(env, &exc);
      napi_fatal_exception(env, exc);
    }
  }
  napi_close_handle_scope(env, scope);
}

static void on_poll(uv_poll_t *h, int status, int events) {
  tunq *q = (tunq *)h->data;
  if (!q) return;
  if (status < 0) {
    /* Device deleted or fd broken: stop polling, then tell JS once. */
    napi_env env = q->env;
    napi_ref err = q->on_error;
    q->on_error = NULL;
    uv_poll_stop(h);
    if (err) {
      call_js(q, err, status);
      napi_delete_reference(env, err);
    }
    return;
  }
  if (events & UV_READABLE) call_js(q, q->on_readable, 0);
}

/* poll(onReadable, onError?): one onReadable call per readiness event (level-triggered). */
static napi_value queue_poll(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  tunq *q = this_queue(env, info, &argc, argv);
  if (!q) return NULL;
  if (q->fd < 0) {
    napi_throw_error(env, NULL, "poll: queue is closed");
    return NULL;
  }
  napi_valuetype t;
  if (argc < 1 || napi_typeof(env, argv[0], &t) != napi_ok || t != napi_function) {
    napi_throw_type_error(env, NULL, "poll(onReadable: function, onError?: function)");
    return NULL;
  }
  stop_poll(q); /* re-registering replaces the callbacks */
  q->on_readable = keep(env, argv[0]);
  if (argc > 1 && napi_typeof(env, argv[1], &t) == napi_ok && t == napi_function)
    q->on_error = keep(env, argv[1]);
  uv_loop_t *loop;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) {
    napi_throw_error(env, NULL, "poll: no uv loop");
    return NULL;
  }
  uv_poll_t *h = (uv_poll_t *)calloc(1, sizeof *h);
  if (!h) {
    napi_throw_error(env, NULL, "poll: out of memory");
    return NULL;
  }
  int rc = uv_poll_init(loop, h, q->fd);
  if (rc < 0) {
    free(h);
    return throw_errno(env, "uv_poll_init", -rc);
  }
  h->data = q;
  rc = uv_poll_start(h, UV_READABLE, on_poll);
  if (rc < 0) {
    h->data = NULL;
    uv_close((uv_handle_t *)h, poll_closed);
    return throw_errno(env, "uv_poll_start", -rc);
  }
  q->poll = h;
  return NULL;
}

static napi_value queue_close(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  tunq *q = this_queue(env, info, &argc, NULL);
  if (!q) return NULL;
  queue_release(q);
  return NULL;
}

static napi_value queue_write_drops(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  tunq *q = this_queue(env, info, &argc, NULL);
  return q ? num(env, q->write_drops) : NULL;
}

static napi_value queue_read_drops(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  tunq *q = this_queue(env, info, &argc, NULL);
  return q ? num(env, q->read_drops) : NULL;
}

static napi_value queue_fd(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  tunq *q = this_queue(env, info, &argc, NULL);
  return q ? num(env, q->fd) : NULL;
}

/* ---- module init (runs once per env: main thread and each worker) ---- */

static void free_ctor_ref(napi_env env, void *data, void *hint) {
  napi_delete_reference(env, (napi_ref)data);
}

static void set_fn(napi_env env, napi_value exports, const char *name, napi_callback cb, void *data) {
  napi_value fn;
  napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, data, &fn);
  napi_set_named_property(env, exports, name, fn);
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor methods[] = {
      {"read", NULL, queue_read, NULL, NULL, NULL, napi_default, NULL},
      {"write", NULL, queue_write, NULL, NULL, NULL, napi_default, NULL},
      {"poll", NULL, queue_poll, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, queue_close, NULL, NULL, NULL, napi_default, NULL},
      {"writeDrops", NULL, queue_write_drops, NULL, NULL, NULL, napi_default, NULL},
      {"readDrops", NULL, queue_read_drops, NULL, NULL, NULL, napi_default, NULL},
      {"fd", NULL, queue_fd, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_value ctor;
  napi_define_class(env, "TunQueue", NAPI_AUTO_LENGTH, queue_ctor, NULL,
                    sizeof methods / sizeof methods[0], methods, &ctor);
  /* The per-env constructor reference is the data of attach(); freed with the instance data. */
  napi_ref ctor_ref;
  napi_create_reference(env, ctor, 1, &ctor_ref);
  napi_set_instance_data(env, ctor_ref, free_ctor_ref, NULL);
  napi_set_named_property(env, exports, "TunQueue", ctor);
  set_fn(env, exports, "openQueues", open_queues, NULL);
  set_fn(env, exports, "ifName", if_name, NULL);
  set_fn(env, exports, "hwAddr", hw_addr, NULL);
  set_fn(env, exports, "writeTunnelProbe", write_tunnel_probe, NULL);
  set_fn(env, exports, "setVnetHdrSize", set_vnet_hdr_size, NULL);
  set_fn(env, exports, "setOffload", set_offload, NULL);
  set_fn(env, exports, "closeFd", close_fd, NULL);
  set_fn(env, exports, "attach", attach, ctor_ref);
  napi_value v;
  napi_create_int32(env, VNET_HDR_LEN, &v);
  napi_set_named_property(env, exports, "VNET_HDR_LEN", v);
  mslb_gso_register(env, exports);
  mslb_ethtool_register(env, exports);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)

/*
 * Reference TUN forwarder for `npm run bench` (compiled at bench time with cc -O2): the simplest
 * fast user-space design, to compare mslb's front with. Creates TUN device NAME, then forever
 * reads one packet, rewrites destination S -> B (IPv6 and IPv4, incremental checksums: RFC 1624
 * eqn 3 for complete checksums, fold(P + d) for NEEDS_CSUM partial sums) and writes it back.
 *   ref-forwarder NAME plain|vnet S6 B6 S4 B4
 * plain: one packet per read()/write() syscall, no offloads (the kernel segments and checksums
 *        before the TUN).
 * vnet:  IFF_VNET_HDR + TUNSETOFFLOAD(CSUM|TSO4|TSO6|USO4|USO6): reads are GSO super-packets,
 *        written back with the same virtio header (still one packet per syscall).
 * Prints "ready NAME" once the device exists. Runs until killed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#ifndef TUN_F_USO4
#define TUN_F_USO4 0x20
#define TUN_F_USO6 0x40
#endif

static uint8_t s6[16], b6[16], s4[4], b4[4];
static uint32_t d6, d4; /* checksum deltas S -> B */

static uint32_t fold(uint32_t s) {
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return s;
}

static uint32_t delta(const uint8_t *o, const uint8_t *n, int len) {
  uint32_t s = 0;
  for (int i = 0; i < len; i += 2) {
    s += (~((o[i] << 8) | o[i + 1])) & 0xffff;
    s += (n[i] << 8) | n[i + 1];
  }
  return fold(s);
}

static void fix(uint8_t *p, uint32_t d, int partial, int udp4) {
  uint32_t c = (p[0] << 8) | p[1];
  if (partial) {
    c = fold(c + d);
  } else {
    if (udp4 && c == 0) return;
    c = ~fold((~c & 0xffff) + d) & 0xffff;
  }
  p[0] = c >> 8;
  p[1] = c & 0xff;
}

static void rewrite(uint8_t *p, ssize_t n, int partial) {
  if (n < 20) return;
  int v = p[0] >> 4;
  if (v == 6 && n >= 40 && memcmp(p + 24, s6, 16) == 0) {
    memcpy(p + 24, b6, 16);
    int nh = p[6];
    if (nh == 6 && n >= 60) fix(p + 40 + 16, d6, partial, 0);
    else if (nh == 17 && n >= 48) fix(p + 40 + 6, d6, partial, 0);
  } else if (v == 4 && memcmp(p + 16, s4, 4) == 0) {
    int ihl = (p[0] & 15) * 4;
    memcpy(p + 16, b4, 4);
    fix(p + 10, d4, 0, 0);
    int frag = ((p[6] & 0x1f) << 8) | p[7];
    if (frag == 0) {
      if (p[9] == 6 && n >= ihl + 20) fix(p + ihl + 16, d4, partial, 0);
      else if (p[9] == 17 && n >= ihl + 8) fix(p + ihl + 6, d4, partial, 1);
    }
  }
}

int main(int argc, char **argv) {
  if (argc < 7) {
    fprintf(stderr, "usage: %s NAME plain|vnet S6 B6 S4 B4\n", argv[0]);
    return 2;
  }
  int vnet = strcmp(argv[2], "vnet") == 0;
  if (inet_pton(AF_INET6, argv[3], s6) != 1 || inet_pton(AF_INET6, argv[4], b6) != 1 ||
      inet_pton(AF_INET, argv[5], s4) != 1 || inet_pton(AF_INET, argv[6], b4) != 1) {
    fprintf(stderr, "bad address\n");
    return 2;
  }
  d6 = delta(s6, b6, 16);
  d4 = delta(s4, b4, 4);
  int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    perror("open /dev/net/tun");
    return 1;
  }
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI | (vnet ? IFF_VNET_HDR : 0);
  strncpy(ifr.ifr_name, argv[1], IFNAMSIZ - 1);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    perror("TUNSETIFF");
    return 1;
  }
  if (vnet) {
    int sz = 12;
    if (ioctl(fd, TUNSETVNETHDRSZ, &sz) < 0) {
      perror("TUNSETVNETHDRSZ");
      return 1;
    }
    unsigned long base = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6;
    if (ioctl(fd, TUNSETOFFLOAD, base | TUN_F_USO4 | TUN_F_USO6) < 0 && ioctl(fd, TUNSETOFFLOAD, base) < 0) {
      perror("TUNSETOFFLOAD");
      return 1;
    }
  }
  printf("ready %s\n", ifr.ifr_name);
  fflush(stdout);
  static uint8_t buf[65536 + 256];
  uint8_t hdr[12];
  for (;;) {
    ssize_t n;
    if (vnet) {
      struct iovec iov[2] = {{hdr, sizeof hdr}, {buf, sizeof buf}};
      n = readv(fd, iov, 2);
      if (n < 0) {
        if (errno == EINTR) continue;
        perror("readv");
        return 1;
      }
      n -= sizeof hdr;
      if (n <= 0) continue;
      rewrite(buf, n, hdr[0] & 1);
      struct iovec out[2] = {{hdr, sizeof hdr}, {buf, (size_t)n}};
      if (writev(fd, out, 2) < 0 && errno != EAGAIN && errno != ENOBUFS && errno != EINVAL && errno != EIO) {
        perror("writev");
        return 1;
      }
    } else {
      n = read(fd, buf, sizeof buf);
      if (n < 0) {
        if (errno == EINTR) continue;
        perror("read");
        return 1;
      }
      rewrite(buf, n, 0);
      if (write(fd, buf, (size_t)n) < 0 && errno != EAGAIN && errno != ENOBUFS && errno != EINVAL && errno != EIO) {
        perror("write");
        return 1;
      }
    }
  }
}

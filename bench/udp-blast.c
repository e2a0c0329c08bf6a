/*
 * 64-byte UDP packet-rate tool for `npm run bench` (compiled at bench time with cc -O2), because
 * iperf3's UDP sender tops out below what the forwarders under test can do on some machines.
 *   udp-blast send SRC DST PORT SECONDS SIZE   sendmmsg() batches of 64 as fast as possible,
 *                                              prints "sent N" at the end
 *   udp-blast recv ADDR PORT                   recvmmsg() until SIGTERM/SIGINT, then prints
 *                                              "recv N SECONDS" (first to last packet)
 * IPv4 or IPv6 from the address syntax. One flow (fixed source port).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64

static volatile sig_atomic_t stop;
static void on_sig(int s) { (void)s; stop = 1; }

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static socklen_t addr(const char *text, int port, struct sockaddr_storage *ss) {
  memset(ss, 0, sizeof *ss);
  struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
  struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
  if (inet_pton(AF_INET6, text, &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons((uint16_t)port);
    return sizeof *a6;
  }
  if (inet_pton(AF_INET, text, &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)port);
    return sizeof *a4;
  }
  fprintf(stderr, "bad address %s\n", text);
  exit(2);
}

int main(int argc, char **argv) {
  if (argc >= 7 && strcmp(argv[1], "send") == 0) {
    struct sockaddr_storage src, dst;
    socklen_t sl = addr(argv[2], 40007, &src), dl = addr(argv[3], atoi(argv[4]), &dst);
    double secs = atof(argv[5]);
    int size = atoi(argv[6]);
    if (size < 1 || size > 1400) size = 64;
    int fd = socket(dst.ss_family, SOCK_DGRAM, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&src, sl) < 0 || connect(fd, (struct sockaddr *)&dst, dl) < 0) {
      perror("socket/bind/connect");
      return 1;
    }
    int sndbuf = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    static char payload[1400];
    memset(payload, 'x', sizeof payload);
    struct iovec iov[BATCH];
    struct mmsghdr msgs[BATCH];
    memset(msgs, 0, sizeof msgs);
    for (int i = 0; i < BATCH; i++) {
      iov[i].iov_base = payload;
      iov[i].iov_len = (size_t)size;
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    double end = now() + secs;
    unsigned long long sent = 0;
    while (now() < end) {
      int n = sendmmsg(fd, msgs, BATCH, 0);
      if (n > 0) sent += (unsigned)n;
      else if (n < 0 && errno != ENOBUFS && errno != EAGAIN && errno != ECONNREFUSED && errno != EINTR) {
        perror("sendmmsg");
        return 1;
      }
    }
    printf("sent %llu\n", sent);
    return 0;
  }
  if (argc >= 4 && strcmp(argv[1], "recv") == 0) {
    struct sockaddr_storage a;
    socklen_t al = addr(argv[2], atoi(argv[3]), &a);
    int fd = socket(a.ss_family, SOCK_DGRAM, 0);
    int rcvbuf = 8 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, al) < 0) {
      perror("socket/bind");
      return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sig; /* no SA_RESTART: recvmmsg returns EINTR */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    static char bufs[BATCH][2048];
    struct iovec iov[BATCH];
    struct mmsghdr msgs[BATCH];
    memset(msgs, 0, sizeof msgs);
    for (int i = 0; i < BATCH; i++) {
      iov[i].iov_base = bufs[i];
      iov[i].iov_len = sizeof bufs[i];
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    printf("ready\n");
    fflush(stdout);
    unsigned long long got = 0;
    double first = 0, last = 0;
    while (!stop) {
      int n = recvmmsg(fd, msgs, BATCH, MSG_WAITFORONE, NULL);
      if (n > 0) {
        last = now();
        if (got == 0) first = last;
        got += (unsigned)n;
      } else if (n < 0 && errno != EINTR) {
        perror("recvmmsg");
        return 1;
      }
    }
    printf("recv %llu %.6f\n", got, got > 1 ? last - first : 0.0);
    return 0;
  }
  fprintf(stderr, "usage: %s send SRC DST PORT SECONDS SIZE | recv ADDR PORT\n", argv[0]);
  return 2;
}

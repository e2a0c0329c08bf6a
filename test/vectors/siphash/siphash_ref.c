/* SipHash-c-d written from the paper (Aumasson & Bernstein, "SipHash: a fast short-input PRF",
 * 2012, section 2) with native 64-bit integers: an implementation independent of
 * shared/packet/siphash.ts (which emulates 64-bit lanes with 32-bit halves). Prints the vectors
 * test/unit/siphash.test.ts checks: key 00 01 .. 0f, message 00 01 .. (n-1) for n = 0..63, for
 * SipHash-2-4 (the reference vectors; n = 15 is the paper's Appendix A example a129ca6149be45e5)
 * and SipHash-1-3. Build and run: gcc -O2 -o /tmp/siphash_ref siphash_ref.c && /tmp/siphash_ref > c-vectors.json */
#include <stdint.h>
#include <stdio.h>

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

static void sipround(uint64_t v[4]) {
  v[0] += v[1]; v[1] = ROTL(v[1], 13); v[1] ^= v[0]; v[0] = ROTL(v[0], 32);
  v[2] += v[3]; v[3] = ROTL(v[3], 16); v[3] ^= v[2];
  v[0] += v[3]; v[3] = ROTL(v[3], 21); v[3] ^= v[0];
  v[2] += v[1]; v[1] = ROTL(v[1], 17); v[1] ^= v[2]; v[2] = ROTL(v[2], 32);
}

static uint64_t le64(const uint8_t *p) {
  uint64_t r = 0;
  for (int i = 7; i >= 0; i--) r = (r << 8) | p[i];
  return r;
}

static uint64_t siphash(int c, int d, const uint8_t k[16], const uint8_t *m, size_t n) {
  uint64_t k0 = le64(k), k1 = le64(k + 8);
  uint64_t v[4] = { k0 ^ 0x736f6d6570736575ULL, k1 ^ 0x646f72616e646f6dULL,
                    k0 ^ 0x6c7967656e657261ULL, k1 ^ 0x7465646279746573ULL };
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t mi = le64(m + i);
    v[3] ^= mi;
    for (int r = 0; r < c; r++) sipround(v);
    v[0] ^= mi;
  }
  uint64_t b = ((uint64_t)n) << 56;
  for (size_t j = 0; i + j < n; j++) b |= ((uint64_t)m[i + j]) << (8 * j);
  v[3] ^= b;
  for (int r = 0; r < c; r++) sipround(v);
  v[0] ^= b;
  v[2] ^= 0xff;
  for (int r = 0; r < d; r++) sipround(v);
  return v[0] ^ v[1] ^ v[2] ^ v[3];
}

int main(void) {
  uint8_t k[16], m[64];
  for (int i = 0; i < 16; i++) k[i] = (uint8_t)i;
  for (int i = 0; i < 64; i++) m[i] = (uint8_t)i;
  if (siphash(2, 4, k, m, 15) != 0xa129ca6149be45e5ULL) { fprintf(stderr, "paper vector mismatch\n"); return 1; }
  printf("{\n  \"key\": \"000102030405060708090a0b0c0d0e0f\",\n  \"message\": \"bytes 00 01 .. (n-1)\",\n");
  const int cd[2][2] = { { 2, 4 }, { 1, 3 } };
  for (int v = 0; v < 2; v++) {
    printf("  \"siphash%d%d\": [", cd[v][0], cd[v][1]);
    for (int n = 0; n < 64; n++) printf("%s\"%016llx\"", n ? ", " : "", (unsigned long long)siphash(cd[v][0], cd[v][1], k, m, (size_t)n));
    printf("]%s\n", v == 0 ? "," : "");
  }
  printf("}\n");
  return 0;
}

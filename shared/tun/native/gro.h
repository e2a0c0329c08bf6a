/* GRO on the write side of a TUN queue: see gro.c. Pure C (no N-API). */
#ifndef MSLB_GRO_H
#define MSLB_GRO_H

#include <stddef.h>
#include <stdint.h>

/*
 * Merge runs of same-flow TCP segments (tcp != 0) and UDP datagrams (udp != 0, needs USO on the
 * device) among packets i < count (buf + offs[i], lens[i] bytes, 12-byte virtio header at
 * vnet + 12 * i) into GSO super-packets, in place. Packet i lives in the slot that contains offs[i]
 * (slots of `slot` bytes from the start of buf): a run grows its first packet up to the end of that
 * slot. The surviving packets are compacted to the front of offs/lens/vnet in their original
 * order (a run sits where its first packet was). Returns the new count.
 */
int mslb_gro(uint8_t *buf, size_t buf_len, int32_t *offs, int32_t *lens, uint8_t *vnet, uint32_t count, uint32_t slot,
             int tcp, int udp);

/*
 * mslb_gro's merge over entries [first, first + count) that lie in one buffer in increasing,
 * non-overlapping order, consecutive entries only: a run's head grows over the packets it took
 * (e.g. the inner packets of one cut tunnel super-packet, written as one TSO super-packet).
 * Survivors are compacted to [first, first + result). Returns the new count of that range.
 */
int mslb_gro_seq(uint8_t *buf, size_t buf_len, int32_t *offs, int32_t *lens, uint8_t *vnet, uint32_t first,
                 uint32_t count, int tcp, int udp);

#endif

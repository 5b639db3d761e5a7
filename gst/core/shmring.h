/* gst-shm: the in-band control ring
 *
 * Part of the core (GLib only).  With control=ring the control messages
 * travel through rings inside the area itself, so that two guests on one
 * ivshmem backing file (or a guest and its host) need no network.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#ifndef __SHM_RING_H__
#define __SHM_RING_H__

#include "shmarea.h"
#include "shmconn.h"

G_BEGIN_DECLS

/*
 * Ring region (at ring_offset, ring_size bytes; docs/protocol.md):
 *
 *   +0      lane table: SHM_RING_LANES lines of 64 bytes
 *             +0   u64 claim      receiver: compare-and-swap 0 -> its id;
 *                                 back to 0 when it leaves (the sink also
 *                                 clears it when it drops the receiver)
 *             +8   u64 ack        sink: the claim it serves
 *             +16  u32 s2r_start  sink: sink->receiver index at the start
 *             +20  u32 r2s_start  sink: receiver->sink index at the start
 *   +4096   per lane L: ring sink->receiver, then ring receiver->sink:
 *             +0   u32 prod       written by the producer only (own line)
 *             +64  u32 cons       written by the consumer only (own line)
 *             +128 data           SHM_RING_DATA bytes
 *
 * Indices run free (32-bit, wrapping); prod - cons is the number of bytes
 * in the ring and is never more than SHM_RING_DATA: a reader that sees
 * more drops the peer.  Data is written, then prod is published with
 * release order after a full fence; cons likewise after the data is read.
 * Neither side waits for the other: both poll, backing off to 16 ms.
 */
#define SHM_RING_LANES 8
#define SHM_RING_DATA (32 * 1024)
#define SHM_RING_TABLE 4096
#define SHM_RING_HALF (128 + SHM_RING_DATA)
#define SHM_RING_REGION_SIZE \
  ((SHM_RING_TABLE + SHM_RING_LANES * 2 * SHM_RING_HALF + 4095) / 4096 * 4096)

#define SHM_RING_ERROR (shm_ring_error_quark ())
GQuark shm_ring_error_quark (void);

/* receiver */
gboolean shm_ring_claim (ShmArea * area, const ShmGeometry * geo, guint64 id,
    guint * lane, GError ** error);
gboolean shm_ring_acked (ShmArea * area, const ShmGeometry * geo, guint lane,
    guint64 id);
gboolean shm_ring_claimed (ShmArea * area, const ShmGeometry * geo,
    guint lane, guint64 id);
void shm_ring_unclaim (ShmArea * area, const ShmGeometry * geo, guint lane,
    guint64 id);

/* sink */
gint shm_ring_accept (ShmArea * area, const ShmGeometry * geo,
    const guint64 * served, guint64 * id);
void shm_ring_drop (ShmArea * area, const ShmGeometry * geo, guint lane,
    guint64 id);

ShmConn *shm_conn_new_ring (ShmArea * area, const ShmGeometry * geo,
    guint lane, guint64 id, gboolean sink_side, const gchar * description);

G_END_DECLS

#endif /* __SHM_RING_H__ */

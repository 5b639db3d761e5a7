/* gst-shm: a receiver's frame channel in the area
 *
 * Part of the core (GLib only).  Each token lane L has a channel at
 * chan_offset + L * chan_stride: the queue of frame records the sender
 * publishes for that receiver, and the queue of releases the receiver
 * writes back, so that frames and releases need no message.  Both are
 * single-producer single-consumer rings with free-running 32-bit indices,
 * each index written by one side only (docs/protocol.md, "Channels"):
 *
 *   +0     sender's line:    u32 rec_head   records published
 *                            u32 rel_tail   releases taken
 *                            u32 lane_gen   changes each time the lane is
 *                                           given to a receiver
 *   +64    receiver's line:  u32 rec_tail   records taken
 *                            u32 rel_head   releases published
 *                            u32 waiting    1: the receiver sleeps (or is
 *                                           about to): ring its bell
 *   +128   bell line:        u32 bell       the receiver's bell (shmbell.h)
 *   +256   depth release entries of 16 bytes: u64 seq, u32 slot, u32 lane_gen
 *   +256 + 16 * depth        depth frame records of 256 bytes (shmrecord.h)
 *
 * Entry i of either ring is at index i mod depth.  A producer writes the
 * entry, then a full fence, then stores its head with release order; a
 * consumer loads the head with acquire order, copies the entry out once,
 * then a full fence, then stores its tail with release order.  Each side
 * checks the other's index: head - tail is never more than depth.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#ifndef __SHM_CHANNEL_H__
#define __SHM_CHANNEL_H__

#include "shmarea.h"

G_BEGIN_DECLS

#define SHM_CHAN_REC_HEAD 0
#define SHM_CHAN_REL_TAIL 4
#define SHM_CHAN_LANE_GEN 8
#define SHM_CHAN_REC_TAIL 64
#define SHM_CHAN_REL_HEAD 68
#define SHM_CHAN_WAITING 72
#define SHM_CHAN_BELL 128
#define SHM_CHAN_RELEASES SHM_CHAN_HEAD_SIZE

#define SHM_CHANNEL_ERROR (shm_channel_error_quark ())
GQuark shm_channel_error_quark (void);

typedef struct
{
  guint64 seq;
  guint32 slot;
  guint32 lane_gen;
} ShmRelease;

/* The sender's end of one channel; its private copies of its own
 * indices (it never reads them back from shared memory). */
typedef struct
{
  guint8 *base;
  guint32 depth;
  guint32 rec_head;
  guint32 rel_tail;
  guint32 lane_gen;
} ShmChanTx;

void shm_chan_tx_init (ShmChanTx * c, guint8 * base, guint32 depth,
    guint32 lane_gen);
gboolean shm_chan_tx_pending (ShmChanTx * c, guint32 * pending,
    GError ** error);
void shm_chan_tx_push (ShmChanTx * c, const guint8 * record);
gboolean shm_chan_tx_receiver_waits (ShmChanTx * c);
gint shm_chan_tx_take_release (ShmChanTx * c, ShmRelease * rel,
    GError ** error);
guint32 *shm_chan_bell (guint8 * base);

/* The receiver's end.  Releases may come from any thread (a buffer freed
 * downstream): they are serialised by the lock. */
typedef struct
{
  guint8 *base;
  guint32 depth;
  guint32 lane_gen;
  guint32 rec_tail;             /* the streaming thread's */
  GMutex lock;
  guint32 rel_head;             /* lock */
  gboolean closed;              /* lock: no more writes */
} ShmChanRx;

void shm_chan_rx_init (ShmChanRx * c, guint8 * base, guint32 depth,
    guint32 lane_gen);
void shm_chan_rx_clear (ShmChanRx * c);
gboolean shm_chan_rx_pending (ShmChanRx * c, guint32 * pending,
    GError ** error);
void shm_chan_rx_peek (ShmChanRx * c, guint8 * record);
void shm_chan_rx_pop (ShmChanRx * c);
gboolean shm_chan_rx_release (ShmChanRx * c, guint64 seq, guint32 slot);
void shm_chan_rx_set_waiting (ShmChanRx * c, gboolean waiting);
void shm_chan_rx_close (ShmChanRx * c);

G_END_DECLS

#endif /* __SHM_CHANNEL_H__ */

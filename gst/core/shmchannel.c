/* gst-shm: a receiver's frame channel in the area
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "shmchannel.h"

#include <string.h>

G_DEFINE_QUARK (shm - channel - error - quark, shm_channel_error);

static_assert (SHM_CHAN_REC_TAIL % 64 == 0, "receiver's line");
static_assert (SHM_CHAN_BELL % 64 == 0, "bell line");
static_assert (SHM_CHAN_RELEASES % 64 == 0, "release entries");

static inline guint32 *
u32_at (guint8 * base, gsize off)
{
  return (guint32 *) (gpointer) (base + off);
}

static inline guint32
load32 (guint8 * base, gsize off)
{
  return GUINT32_FROM_LE (__atomic_load_n (u32_at (base, off),
          __ATOMIC_ACQUIRE));
}

/* A full fence first: what was written before (an entry, through a
 * write-combined mapping too) is visible before the index. */
static inline void
publish32 (guint8 * base, gsize off, guint32 v)
{
  __atomic_thread_fence (__ATOMIC_SEQ_CST);
  __atomic_store_n (u32_at (base, off), GUINT32_TO_LE (v), __ATOMIC_RELEASE);
}

static inline guint8 *
release_entry (guint8 * base, guint32 depth, guint32 index)
{
  return base + SHM_CHAN_RELEASES + (gsize) (index & (depth - 1))
      * SHM_RELEASE_SIZE;
}

static inline guint8 *
record_entry (guint8 * base, guint32 depth, guint32 index)
{
  return base + SHM_CHAN_RELEASES + (gsize) depth *SHM_RELEASE_SIZE
      + (gsize) (index & (depth - 1)) * SHM_RECORD_SIZE;
}

static gboolean
beyond (guint32 head, guint32 tail, guint32 depth, const gchar * what,
    GError ** error)
{
  if (head - tail <= depth)
    return FALSE;
  g_set_error (error, SHM_CHANNEL_ERROR, 0, "the peer's %s index is beyond "
      "the channel (head %u, tail %u, %u entries)", what, head, tail, depth);
  return TRUE;
}

guint32 *
shm_chan_bell (guint8 * base)
{
  return u32_at (base, SHM_CHAN_BELL);
}

/* --- sender ---------------------------------------------------------------- */

/**
 * shm_chan_tx_init:
 *
 * Sender: sets up the channel of a lane for a new receiver (before the
 * handshake that gives the lane away): every index to 0 and a new lane
 * generation, so that a release of a lane's previous receiver is told
 * apart.
 */
void
shm_chan_tx_init (ShmChanTx * c, guint8 * base, guint32 depth, guint32 lane_gen)
{
  c->base = base;
  c->depth = depth;
  c->rec_head = c->rel_tail = 0;
  c->lane_gen = lane_gen;
  memset (base, 0, SHM_CHAN_HEAD_SIZE);
  __atomic_store_n (u32_at (base, SHM_CHAN_LANE_GEN),
      GUINT32_TO_LE (lane_gen), __ATOMIC_RELAXED);
  __atomic_thread_fence (__ATOMIC_SEQ_CST);
}

/**
 * shm_chan_tx_pending:
 * @pending: (out): records published that the receiver has not taken
 *
 * Returns: FALSE when the receiver's index is out of range.
 */
gboolean
shm_chan_tx_pending (ShmChanTx * c, guint32 * pending, GError ** error)
{
  guint32 tail = load32 (c->base, SHM_CHAN_REC_TAIL);

  if (beyond (c->rec_head, tail, c->depth, "record", error))
    return FALSE;
  *pending = c->rec_head - tail;
  return TRUE;
}

/* With room checked by shm_chan_tx_pending(). */
void
shm_chan_tx_push (ShmChanTx * c, const guint8 * record)
{
  memcpy (record_entry (c->base, c->depth, c->rec_head), record,
      SHM_RECORD_SIZE);
  c->rec_head++;
  publish32 (c->base, SHM_CHAN_REC_HEAD, c->rec_head);
}

/* After a push: whether the receiver said it sleeps.  The full fence
 * orders the head's store before this load (the receiver orders its flag's
 * store before its load of the head the same way). */
gboolean
shm_chan_tx_receiver_waits (ShmChanTx * c)
{
  __atomic_thread_fence (__ATOMIC_SEQ_CST);
  return load32 (c->base, SHM_CHAN_WAITING) != 0;
}

/**
 * shm_chan_tx_take_release:
 *
 * Returns: 1 with @rel filled (copied out once; the caller checks it), 0
 * when there is none, -1 when the receiver's index is out of range.
 */
gint
shm_chan_tx_take_release (ShmChanTx * c, ShmRelease * rel, GError ** error)
{
  guint32 head = load32 (c->base, SHM_CHAN_REL_HEAD);
  guint8 e[SHM_RELEASE_SIZE];

  if (beyond (head, c->rel_tail, c->depth, "release", error))
    return -1;
  if (head == c->rel_tail)
    return 0;
  memcpy (e, release_entry (c->base, c->depth, c->rel_tail), sizeof e);
  c->rel_tail++;
  publish32 (c->base, SHM_CHAN_REL_TAIL, c->rel_tail);
  memcpy (&rel->seq, e, 8);
  memcpy (&rel->slot, e + 8, 4);
  memcpy (&rel->lane_gen, e + 12, 4);
  rel->seq = GUINT64_FROM_LE (rel->seq);
  rel->slot = GUINT32_FROM_LE (rel->slot);
  rel->lane_gen = GUINT32_FROM_LE (rel->lane_gen);
  return 1;
}

/* --- receiver -------------------------------------------------------------- */

void
shm_chan_rx_init (ShmChanRx * c, guint8 * base, guint32 depth, guint32 lane_gen)
{
  c->base = base;
  c->depth = depth;
  c->lane_gen = lane_gen;
  c->rec_tail = 0;
  c->rel_head = 0;
  c->closed = FALSE;
  g_mutex_init (&c->lock);
}

void
shm_chan_rx_clear (ShmChanRx * c)
{
  g_mutex_clear (&c->lock);
}

gboolean
shm_chan_rx_pending (ShmChanRx * c, guint32 * pending, GError ** error)
{
  guint32 head = load32 (c->base, SHM_CHAN_REC_HEAD);

  if (beyond (head, c->rec_tail, c->depth, "record", error))
    return FALSE;
  *pending = head - c->rec_tail;
  return TRUE;
}

/* Copies the oldest record out (with one pending). */
void
shm_chan_rx_peek (ShmChanRx * c, guint8 * record)
{
  memcpy (record, record_entry (c->base, c->depth, c->rec_tail),
      SHM_RECORD_SIZE);
}

/* The oldest record is taken: the sender may write its entry again. */
void
shm_chan_rx_pop (ShmChanRx * c)
{
  c->rec_tail++;
  publish32 (c->base, SHM_CHAN_REC_TAIL, c->rec_tail);
}

/**
 * shm_chan_rx_release:
 *
 * Gives the slot of frame @seq back, after the last read of its pixels.
 * Returns: FALSE when the channel is closed or the sender has not taken
 * the releases before (it never has more frames out than entries).
 */
gboolean
shm_chan_rx_release (ShmChanRx * c, guint64 seq, guint32 slot)
{
  guint8 e[SHM_RELEASE_SIZE];
  gboolean ok = FALSE;
  guint64 s = GUINT64_TO_LE (seq);
  guint32 v;

  memcpy (e, &s, 8);
  v = GUINT32_TO_LE (slot);
  memcpy (e + 8, &v, 4);
  v = GUINT32_TO_LE (c->lane_gen);
  memcpy (e + 12, &v, 4);

  g_mutex_lock (&c->lock);
  if (!c->closed && c->rel_head - load32 (c->base, SHM_CHAN_REL_TAIL)
      < c->depth) {
    memcpy (release_entry (c->base, c->depth, c->rel_head), e, sizeof e);
    c->rel_head++;
    publish32 (c->base, SHM_CHAN_REL_HEAD, c->rel_head);
    ok = TRUE;
  }
  g_mutex_unlock (&c->lock);
  return ok;
}

/* Before a sleep: says so, then a full fence, so that the caller's next
 * look at the head is ordered after it (see shm_chan_tx_receiver_waits).
 * After it: no fence (a sender that still sees 1 rings once for
 * nothing). */
void
shm_chan_rx_set_waiting (ShmChanRx * c, gboolean waiting)
{
  __atomic_store_n (u32_at (c->base, SHM_CHAN_WAITING),
      GUINT32_TO_LE (waiting ? 1 : 0), __ATOMIC_RELAXED);
  if (waiting)
    __atomic_thread_fence (__ATOMIC_SEQ_CST);
}

/* The session is over: no more writes into the channel, which the sender
 * may give to another receiver. */
void
shm_chan_rx_close (ShmChanRx * c)
{
  g_mutex_lock (&c->lock);
  c->closed = TRUE;
  g_mutex_unlock (&c->lock);
}

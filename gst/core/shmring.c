/* gst-shm: the in-band control ring
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "shmring.h"

#include <string.h>

G_DEFINE_QUARK (shm - ring - error - quark, shm_ring_error);

static_assert ((SHM_RING_DATA & (SHM_RING_DATA - 1)) == 0,
    "ring data is a power of two");
static_assert (SHM_RING_LANES * 64 <= SHM_RING_TABLE, "lane table fits");
static_assert (SHM_RING_REGION_SIZE % 4096 == 0, "region in pages");

#define T_CLAIM 0
#define T_ACK 8
#define T_S2R_START 16
#define T_R2S_START 20

static guint8 *
table_line (ShmArea * area, const ShmGeometry * geo, guint lane)
{
  return shm_area_get_data (area) + geo->ring_offset + (gsize) lane *64;
}

static guint8 *
half_base (ShmArea * area, const ShmGeometry * geo, guint lane, gboolean r2s)
{
  return shm_area_get_data (area) + geo->ring_offset + SHM_RING_TABLE
      + ((gsize) lane * 2 + (r2s ? 1 : 0)) * SHM_RING_HALF;
}

static guint64 *
u64_at (guint8 * p, gsize off)
{
  return (guint64 *) (gpointer) (p + off);
}

static guint32 *
u32_at (guint8 * p, gsize off)
{
  return (guint32 *) (gpointer) (p + off);
}

static guint64
load64 (guint8 * p, gsize off)
{
  return GUINT64_FROM_LE (__atomic_load_n (u64_at (p, off), __ATOMIC_ACQUIRE));
}

static void
store64 (guint8 * p, gsize off, guint64 v)
{
  __atomic_thread_fence (__ATOMIC_SEQ_CST);
  __atomic_store_n (u64_at (p, off), GUINT64_TO_LE (v), __ATOMIC_RELEASE);
}

static guint32
load32 (guint8 * p, gsize off)
{
  return GUINT32_FROM_LE (__atomic_load_n (u32_at (p, off), __ATOMIC_ACQUIRE));
}

static void
store32 (guint8 * p, gsize off, guint32 v)
{
  /* the full fence also drains write-combining buffers (a BAR) */
  __atomic_thread_fence (__ATOMIC_SEQ_CST);
  __atomic_store_n (u32_at (p, off), GUINT32_TO_LE (v), __ATOMIC_RELEASE);
}

static gboolean
has_rings (const ShmGeometry * geo, GError ** error)
{
  if (geo->ring_size < SHM_RING_REGION_SIZE) {
    g_set_error (error, SHM_RING_ERROR, 0, "the sender's area has no "
        "in-band control rings (ring size %" G_GUINT64_FORMAT "): the "
        "sender does not use control=ring", geo->ring_size);
    return FALSE;
  }
  return TRUE;
}

/* --- lanes ----------------------------------------------------------------- */

/**
 * shm_ring_claim:
 * @id: a random, non-zero id for this connection
 *
 * Receiver: takes a free lane (compare-and-swap of its claim word from 0).
 */
gboolean
shm_ring_claim (ShmArea * area, const ShmGeometry * geo, guint64 id,
    guint * lane, GError ** error)
{
  if (!has_rings (geo, error))
    return FALSE;
  for (guint i = 0; i < SHM_RING_LANES; i++) {
    guint64 expected = 0;
    guint8 *t = table_line (area, geo, i);
    if (__atomic_compare_exchange_n (u64_at (t, T_CLAIM), &expected,
            GUINT64_TO_LE (id), FALSE, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
      *lane = i;
      return TRUE;
    }
  }
  g_set_error (error, SHM_RING_ERROR, 0, "all %d in-band lanes of the "
      "area are taken", SHM_RING_LANES);
  return FALSE;
}

gboolean
shm_ring_acked (ShmArea * area, const ShmGeometry * geo, guint lane, guint64 id)
{
  return load64 (table_line (area, geo, lane), T_ACK) == id;
}

gboolean
shm_ring_claimed (ShmArea * area, const ShmGeometry * geo, guint lane,
    guint64 id)
{
  return load64 (table_line (area, geo, lane), T_CLAIM) == id;
}

void
shm_ring_unclaim (ShmArea * area, const ShmGeometry * geo, guint lane,
    guint64 id)
{
  guint64 expected = GUINT64_TO_LE (id);

  __atomic_compare_exchange_n (u64_at (table_line (area, geo, lane), T_CLAIM),
      &expected, 0, FALSE, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}

/**
 * shm_ring_accept:
 * @served: the claim each lane is served for (0: none); a served lane is
 *   not accepted again until the sink has dropped its connection
 * @id: (out): the new claim
 *
 * Sink: finds a lane claimed by a receiver it does not serve yet, publishes
 * where both rings start, and acknowledges the claim.
 *
 * Returns: the lane, or -1.
 */
gint
shm_ring_accept (ShmArea * area, const ShmGeometry * geo,
    const guint64 * served, guint64 * id)
{
  for (guint i = 0; i < SHM_RING_LANES; i++) {
    guint8 *t = table_line (area, geo, i);
    guint8 *r2s = half_base (area, geo, i, TRUE);
    guint64 claim = load64 (t, T_CLAIM);
    guint32 r2s_start;

    /* A lane still served (its old receiver left, a new one claimed it
     * at once) is set up again only once the sink has dropped the old
     * connection: until then that connection still reads the ring. */
    if (claim == 0 || served[i] != 0)
      continue;
    /* Both rings start where their producers left them: the sink's own
     * index, and the receiver's, which it will not move before the ack. */
    r2s_start = load32 (r2s, 0);
    store32 (t, T_S2R_START, load32 (half_base (area, geo, i, FALSE), 0));
    store32 (t, T_R2S_START, r2s_start);
    /* our consumer index of the receiver's ring too, before the ack */
    store32 (r2s, 64, r2s_start);
    store64 (t, T_ACK, claim);
    *id = claim;
    return i;
  }
  return -1;
}

void
shm_ring_drop (ShmArea * area, const ShmGeometry * geo, guint lane, guint64 id)
{
  guint8 *t = table_line (area, geo, lane);

  if (load64 (t, T_ACK) == id)
    store64 (t, T_ACK, 0);
  shm_ring_unclaim (area, geo, lane, id);
}

/* --- transport ------------------------------------------------------------- */

typedef struct
{
  ShmArea *area;
  ShmGeometry geo;
  guint lane;
  guint64 id;
  gboolean sink_side;
  guint8 *table;
  guint8 *out, *in;             /* ring halves */
  guint32 out_prod;             /* our own indices, never read back */
  guint32 in_cons;
  gboolean shut;
} RingTransport;

/* The lane is no longer ours: the sink dropped us or restarted, or the
 * receiver left. */
static gboolean
ended (RingTransport * t)
{
  if (t->shut)
    return TRUE;
  if (load64 (t->table, T_CLAIM) != t->id)
    return TRUE;
  return !t->sink_side && load64 (t->table, T_ACK) != t->id;
}

static gboolean
beyond (guint32 prod, guint32 cons, GError ** error)
{
  if ((guint32) (prod - cons) > SHM_RING_DATA) {
    g_set_error (error, SHM_RING_ERROR, 0, "the peer's ring index is "
        "beyond the ring (producer %u, consumer %u, ring of %d bytes)", prod,
        cons, SHM_RING_DATA);
    return TRUE;
  }
  return FALSE;
}

static gssize
ring_recv (gpointer tp, guint8 * buf, gsize len, GError ** error)
{
  RingTransport *t = tp;
  guint32 prod = load32 (t->in, 0);
  guint32 avail, off, first;
  gsize n;

  if (beyond (prod, t->in_cons, error)) {
    /* (a new sink set the rings up again: the lane is no longer ours) */
    if (!ended (t))
      return -1;
    g_clear_error (error);
    return 0;
  }
  avail = prod - t->in_cons;
  if (avail == 0) {
    if (ended (t))
      return 0;
    g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK, "empty");
    return -1;
  }
  n = MIN (avail, len);
  off = t->in_cons & (SHM_RING_DATA - 1);
  first = MIN (n, SHM_RING_DATA - off);
  memcpy (buf, t->in + 128 + off, first);
  memcpy (buf + first, t->in + 128, n - first);
  t->in_cons += n;
  store32 (t->in, 64, t->in_cons);
  return n;
}

static gssize
ring_send (gpointer tp, const guint8 * buf, gsize len, GError ** error)
{
  RingTransport *t = tp;
  guint32 cons, used, off, first;
  gsize n;

  if (ended (t)) {
    g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE,
        "the in-band lane was closed");
    return -1;
  }
  cons = load32 (t->out, 64);
  if (beyond (t->out_prod, cons, error))
    return -1;
  used = t->out_prod - cons;
  if (used == SHM_RING_DATA) {
    g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK, "full");
    return -1;
  }
  n = MIN (SHM_RING_DATA - used, len);
  off = t->out_prod & (SHM_RING_DATA - 1);
  first = MIN (n, SHM_RING_DATA - off);
  memcpy (t->out + 128 + off, buf, first);
  memcpy (t->out + 128, buf + first, n - first);
  t->out_prod += n;
  store32 (t->out, 0, t->out_prod);
  return n;
}

/* The indices first: the lane table is read only when there is nothing
 * to do (every read of a BAR mapping is slow). */
static gboolean
ready (RingTransport * t, GIOCondition cond)
{
  if ((cond & G_IO_IN) && load32 (t->in, 0) != t->in_cons)
    return TRUE;
  if ((cond & G_IO_OUT)
      && (guint32) (t->out_prod - load32 (t->out, 64)) < SHM_RING_DATA)
    return TRUE;
  return ended (t);
}

/* A source that polls the ring, backing off from 1 to 16 ms while nothing
 * happens (there are no interrupts: ivshmem-plain has none). */
typedef struct
{
  GSource source;
  RingTransport *t;
  GIOCondition cond;
  gint backoff;
} RingSource;

static gboolean
ring_source_prepare (GSource * s, gint * timeout)
{
  RingSource *rs = (RingSource *) s;

  if (ready (rs->t, rs->cond)) {
    *timeout = 0;
    return TRUE;
  }
  *timeout = rs->backoff;
  return FALSE;
}

static gboolean
ring_source_check (GSource * s)
{
  RingSource *rs = (RingSource *) s;

  if (ready (rs->t, rs->cond))
    return TRUE;
  rs->backoff = MIN (rs->backoff * 2, 16);
  return FALSE;
}

static gboolean
ring_source_dispatch (GSource * s, GSourceFunc callback, gpointer data)
{
  RingSource *rs = (RingSource *) s;

  rs->backoff = 1;
  return callback ? callback (data) : G_SOURCE_REMOVE;
}

static GSourceFuncs ring_source_funcs = {
  ring_source_prepare,
  ring_source_check,
  ring_source_dispatch,
  NULL, NULL, NULL,
};

static GSource *
ring_create_source (gpointer tp, GIOCondition cond, GSourceFunc func,
    gpointer data)
{
  GSource *s = g_source_new (&ring_source_funcs, sizeof (RingSource));
  RingSource *rs = (RingSource *) s;

  rs->t = tp;
  rs->cond = cond;
  rs->backoff = 1;
  g_source_set_callback (s, func, data, NULL);
  return s;
}

static void
ring_shutdown (gpointer tp)
{
  RingTransport *t = tp;

  if (t->shut)
    return;
  t->shut = TRUE;
  if (t->sink_side)
    shm_ring_drop (t->area, &t->geo, t->lane, t->id);
  else
    shm_ring_unclaim (t->area, &t->geo, t->lane, t->id);
}

static void
ring_free (gpointer tp)
{
  RingTransport *t = tp;

  ring_shutdown (t);
  shm_area_unref (t->area);
  g_free (t);
}

/* What the peer has not consumed of our ring (its index, so bounded
 * before use). */
static gsize
ring_unread (gpointer tp)
{
  RingTransport *t = tp;
  guint32 used;

  if (ended (t))
    return 0;
  used = t->out_prod - load32 (t->out, 64);
  return used <= SHM_RING_DATA ? used : 0;
}

static const ShmTransportFuncs ring_funcs = {
  ring_recv,
  ring_send,
  ring_create_source,
  ring_shutdown,
  ring_free,
  ring_unread,
};

/**
 * shm_conn_new_ring:
 * @geo: the validated geometry of @area
 * @lane: a lane the receiver claimed and the sink acknowledged
 *
 * A connection over the rings of @lane.
 */
ShmConn *
shm_conn_new_ring (ShmArea * area, const ShmGeometry * geo, guint lane,
    guint64 id, gboolean sink_side, const gchar * description)
{
  RingTransport *t = g_new0 (RingTransport, 1);
  guint8 *s2r = half_base (area, geo, lane, FALSE);
  guint8 *r2s = half_base (area, geo, lane, TRUE);

  t->area = shm_area_ref (area);
  t->geo = *geo;
  t->lane = lane;
  t->id = id;
  t->sink_side = sink_side;
  t->table = table_line (area, geo, lane);
  t->out = sink_side ? s2r : r2s;
  t->in = sink_side ? r2s : s2r;
  /* where the sink said the rings start (the receiver reads it after the
   * ack; the sink wrote it before) */
  t->out_prod = load32 (t->table, sink_side ? T_S2R_START : T_R2S_START);
  t->in_cons = load32 (t->table, sink_side ? T_R2S_START : T_S2R_START);
  /* Our consumer index starts there too (a previous owner of the lane may
   * have left it anywhere).  Each side writes only its own index: the sink
   * does this right after the accept, the receiver right after the ack,
   * before either sends anything. */
  store32 (t->in, 64, t->in_cons);
  return shm_conn_new (&ring_funcs, t, description);
}

/* gst-shm: the sender's slots and channels of one area
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "shmslots.h"
#include "shmbell.h"
#include "shmchannel.h"

#include <string.h>

/* With receivers that cannot ring (in-band rings: no interrupts), a sender
 * that waits for a slot looks again this often. */
#define POLL_NS (500 * G_GINT64_CONSTANT (1000))

typedef struct
{
  guint64 seq;
  guint32 slot;
  gboolean used;
} Flight;

typedef struct
{
  gboolean open;
  ShmChanTx tx;
  Flight *flight;               /* chan_depth entries: frames not released */
  guint n_flight;
} Lane;

struct _ShmSlots
{
  gint ref_count;
  ShmArea *area;
  ShmGeometry geo;
  guint32 *bell;                /* the sender's bell: the area's, or ours */
  guint32 local_bell;
  guint32 *waiters;             /* in the header: read by receivers */

  GMutex lock;
  /* protected by lock */
  gboolean in_use[SHM_AREA_MAX_SLOTS];
  guint32 holds[SHM_AREA_MAX_SLOTS];
  guint64 freed[SHM_AREA_MAX_SLOTS];    /* when each came free last */
  guint64 ticks;
  gboolean flushing;
  gboolean starved;
  gboolean poll;
  gint64 timeout_us;
  Lane lanes[SHM_AREA_TOKEN_LANES];
  guint64 open;                 /* lanes open */
  guint64 broken;               /* lanes found breaking the protocol */
  gchar *broken_why;
};

ShmSlots *
shm_slots_new (ShmArea * area, const ShmGeometry * geo)
{
  ShmSlots *slots = g_new0 (ShmSlots, 1);

  slots->ref_count = 1;
  slots->area = shm_area_ref (area);
  slots->geo = *geo;
  slots->timeout_us = G_USEC_PER_SEC;
  slots->waiters = shm_area_sink_waiters (area);
  slots->bell = shm_area_can_futex (area) ? shm_area_sink_bell (area)
      : &slots->local_bell;
  g_mutex_init (&slots->lock);
  return slots;
}

ShmSlots *
shm_slots_ref (ShmSlots * slots)
{
  g_atomic_int_inc (&slots->ref_count);
  return slots;
}

void
shm_slots_unref (ShmSlots * slots)
{
  if (!g_atomic_int_dec_and_test (&slots->ref_count))
    return;
  for (guint i = 0; i < SHM_AREA_TOKEN_LANES; i++)
    g_free (slots->lanes[i].flight);
  g_free (slots->broken_why);
  shm_area_unref (slots->area);
  g_mutex_clear (&slots->lock);
  g_free (slots);
}

ShmArea *
shm_slots_get_area (ShmSlots * slots)
{
  return slots->area;
}

const ShmGeometry *
shm_slots_get_geometry (ShmSlots * slots)
{
  return &slots->geo;
}

guint8 *
shm_slots_get_slot_data (ShmSlots * slots, guint slot)
{
  guint64 offset;

  if (!shm_geometry_slot_range (&slots->geo, slot, &offset))
    return NULL;
  return shm_area_get_data (slots->area) + offset;
}

/* Rings the sender's own bell: a waiting claim looks again. */
void
shm_slots_wake (ShmSlots * slots)
{
  shm_bell_ring (slots->bell);
}

void
shm_slots_set_flushing (ShmSlots * slots, gboolean flushing)
{
  g_mutex_lock (&slots->lock);
  slots->flushing = flushing;
  g_mutex_unlock (&slots->lock);
  shm_slots_wake (slots);
}

/* @timeout_us: how long a claim waits for a slot; -1: forever */
void
shm_slots_set_timeout (ShmSlots * slots, gint64 timeout_us)
{
  g_mutex_lock (&slots->lock);
  slots->timeout_us = timeout_us;
  g_mutex_unlock (&slots->lock);
}

/* @poll: some receivers cannot ring the sender's bell (in-band rings) */
void
shm_slots_set_poll (ShmSlots * slots, gboolean poll)
{
  g_mutex_lock (&slots->lock);
  slots->poll = poll;
  g_mutex_unlock (&slots->lock);
}

/* --- lanes ----------------------------------------------------------------- */

/* One hold of @slot less; a slot that comes free is stamped, so that the
 * next claim takes the one freed last (its pages are the likeliest to be
 * in the cache). */
static void
unhold_locked (ShmSlots * slots, guint slot)
{
  if (--slots->holds[slot] == 0 && !slots->in_use[slot])
    slots->freed[slot] = ++slots->ticks;
}

static void
drop_lane_locked (ShmSlots * slots, guint lane)
{
  Lane *l = &slots->lanes[lane];

  if (!l->open)
    return;
  for (guint i = 0; i < slots->geo.chan_depth; i++) {
    if (l->flight[i].used) {
      unhold_locked (slots, l->flight[i].slot);
      l->flight[i].used = FALSE;
    }
  }
  l->n_flight = 0;
  l->open = FALSE;
  slots->open &= ~(G_GUINT64_CONSTANT (1) << lane);
  slots->starved = FALSE;
}

static void
broke_locked (ShmSlots * slots, guint lane, const gchar * why)
{
  if (!slots->broken_why)
    slots->broken_why = g_strdup (why);
  slots->broken |= G_GUINT64_CONSTANT (1) << lane;
  drop_lane_locked (slots, lane);
}

/**
 * shm_slots_open_lane:
 *
 * A receiver gets @lane: its channel is set up afresh with @lane_gen.
 */
void
shm_slots_open_lane (ShmSlots * slots, guint lane, guint32 lane_gen)
{
  Lane *l;

  g_return_if_fail (lane < SHM_AREA_TOKEN_LANES);
  g_mutex_lock (&slots->lock);
  drop_lane_locked (slots, lane);
  l = &slots->lanes[lane];
  if (!l->flight)
    l->flight = g_new0 (Flight, slots->geo.chan_depth);
  shm_chan_tx_init (&l->tx, shm_area_channel (slots->area, &slots->geo,
          lane), slots->geo.chan_depth, lane_gen);
  l->open = TRUE;
  slots->open |= G_GUINT64_CONSTANT (1) << lane;
  slots->broken &= ~(G_GUINT64_CONSTANT (1) << lane);
  g_mutex_unlock (&slots->lock);
}

/* The receiver of @lane is gone: every frame it held is free again. */
void
shm_slots_close_lane (ShmSlots * slots, guint lane)
{
  g_return_if_fail (lane < SHM_AREA_TOKEN_LANES);
  g_mutex_lock (&slots->lock);
  drop_lane_locked (slots, lane);
  g_mutex_unlock (&slots->lock);
  shm_slots_wake (slots);
}

static gboolean
take_release_locked (ShmSlots * slots, guint lane, const ShmRelease * rel)
{
  Lane *l = &slots->lanes[lane];

  if (rel->lane_gen != l->tx.lane_gen)
    return TRUE;                /* a previous receiver's, late */
  for (guint i = 0; i < slots->geo.chan_depth; i++) {
    Flight *f = &l->flight[i];
    if (f->used && f->seq == rel->seq && f->slot == rel->slot) {
      f->used = FALSE;
      l->n_flight--;
      unhold_locked (slots, f->slot);
      slots->starved = FALSE;
      return TRUE;
    }
  }
  return FALSE;
}

/* Reads every receiver's releases; a receiver that breaks the channel's
 * rules loses its lane (its frames are free again). */
static void
collect_locked (ShmSlots * slots)
{
  for (guint64 open = slots->open; open; open &= open - 1) {
    guint lane = __builtin_ctzll (open);
    Lane *l = &slots->lanes[lane];
    g_autoptr (GError) err = NULL;
    ShmRelease rel;
    gint r;

    while (l->open && (r = shm_chan_tx_take_release (&l->tx, &rel, &err))) {
      if (r < 0) {
        broke_locked (slots, lane, err->message);
      } else if (!take_release_locked (slots, lane, &rel)) {
        g_autofree gchar *why = g_strdup_printf ("released slot %u (frame %"
            G_GUINT64_FORMAT "), which it does not hold", rel.slot, rel.seq);
        broke_locked (slots, lane, why);
      }
    }
  }
}

/**
 * shm_slots_collect:
 * @why: (out) (optional): what the first of them did wrong
 *
 * Reads the receivers' releases.
 *
 * Returns: the lanes whose receivers broke the protocol since the last
 * call (their lanes are closed already).
 */
guint64
shm_slots_collect (ShmSlots * slots, gchar ** why)
{
  guint64 broken;

  g_mutex_lock (&slots->lock);
  collect_locked (slots);
  broken = slots->broken;
  slots->broken = 0;
  if (why)
    *why = g_steal_pointer (&slots->broken_why);
  g_clear_pointer (&slots->broken_why, g_free);
  g_mutex_unlock (&slots->lock);
  return broken;
}

static gboolean
queued_locked (ShmSlots * slots, guint lane, guint32 * pending)
{
  g_autoptr (GError) err = NULL;

  if (!slots->lanes[lane].open)
    return FALSE;
  if (!shm_chan_tx_pending (&slots->lanes[lane].tx, pending, &err)) {
    broke_locked (slots, lane, err->message);
    return FALSE;
  }
  return TRUE;
}

/**
 * shm_slots_lane_has_room:
 * @frame: for a frame (which also needs a free entry for its release)
 *
 * Whether the channel of @lane takes one more record.
 */
gboolean
shm_slots_lane_has_room (ShmSlots * slots, guint lane, gboolean frame)
{
  guint32 pending = 0;
  gboolean room;

  g_mutex_lock (&slots->lock);
  collect_locked (slots);
  room = queued_locked (slots, lane, &pending)
      && pending < slots->geo.chan_depth
      && (!frame || slots->lanes[lane].n_flight < slots->geo.chan_depth);
  g_mutex_unlock (&slots->lock);
  return room;
}

/**
 * shm_slots_lanes_with_room:
 * @lanes: the receivers a frame is for
 * @live: those of them that are live
 * @live_max: records a live receiver may have waiting
 * @waiting: (out) (optional): the lanes of @lanes with records waiting
 *
 * Returns: the lanes of @lanes whose channel takes one more frame, and, for
 * live ones, that have fewer than @live_max records waiting.
 */
guint64
shm_slots_lanes_with_room (ShmSlots * slots, guint64 lanes, guint64 live,
    guint32 live_max, guint64 * waiting)
{
  guint64 room = 0;
  guint32 pending;

  if (waiting)
    *waiting = 0;
  g_mutex_lock (&slots->lock);
  collect_locked (slots);
  for (guint64 m = lanes; m; m &= m - 1) {
    guint lane = __builtin_ctzll (m);
    guint64 bit = G_GUINT64_CONSTANT (1) << lane;
    if (!queued_locked (slots, lane, &pending))
      continue;
    if (waiting && pending > 0)
      *waiting |= bit;
    if (pending < slots->geo.chan_depth
        && slots->lanes[lane].n_flight < slots->geo.chan_depth
        && (!(live & bit) || pending < live_max))
      room |= bit;
  }
  g_mutex_unlock (&slots->lock);
  return room;
}

/* Whether the receiver of @lane took every record (or is gone). */
gboolean
shm_slots_lane_drained (ShmSlots * slots, guint lane)
{
  guint32 pending = 0;

  g_mutex_lock (&slots->lock);
  queued_locked (slots, lane, &pending);
  g_mutex_unlock (&slots->lock);
  return pending == 0;
}

guint32 *
shm_slots_lane_bell (ShmSlots * slots, guint lane)
{
  return shm_chan_bell (shm_area_channel (slots->area, &slots->geo, lane));
}

/**
 * shm_slots_publish:
 * @lanes: the receivers that get @record (with room: see
 *   shm_slots_lane_has_room())
 *
 * Publishes @record in the channel of every lane in @lanes; a frame's slot
 * is held by each of them until it comes back.  The slot's pixels must be
 * written before: the channel's publication fences them.
 *
 * Returns: the lanes whose receivers said they sleep (to be woken).
 */
guint64
shm_slots_publish (ShmSlots * slots, guint64 lanes, const ShmRecord * record)
{
  guint8 bytes[SHM_RECORD_SIZE];
  gboolean frame = record->type == SHM_RECORD_FRAME;
  guint64 sleeping = 0;

  g_return_val_if_fail (!frame || record->slot < slots->geo.n_slots, 0);
  shm_record_encode (record, bytes);
  g_mutex_lock (&slots->lock);
  for (guint lane = 0; lanes; lane++, lanes >>= 1) {
    Lane *l = &slots->lanes[lane];
    guint32 pending;

    if (!(lanes & 1) || !queued_locked (slots, lane, &pending)
        || pending >= slots->geo.chan_depth
        || (frame && l->n_flight >= slots->geo.chan_depth))
      continue;
    if (frame) {
      guint i = 0;
      while (l->flight[i].used)
        i++;
      l->flight[i].used = TRUE;
      l->flight[i].seq = record->seq;
      l->flight[i].slot = record->slot;
      l->n_flight++;
      slots->holds[record->slot]++;
    }
    shm_chan_tx_push (&l->tx, bytes);
    if (shm_chan_tx_receiver_waits (&l->tx))
      sleeping |= G_GUINT64_CONSTANT (1) << lane;
  }
  g_mutex_unlock (&slots->lock);
  return sleeping;
}

/**
 * shm_slots_furthest_behind:
 * @lanes: the receivers to consider
 * @seq: the frame about to be published
 * @age: (out): how many frames older than @seq the oldest frame it holds is
 *
 * Returns: the lane of @lanes that holds the oldest frame, or -1 when none
 * holds any.  (Ages are differences modulo 2^64: a sequence number that
 * wraps keeps its order.)
 */
gint
shm_slots_furthest_behind (ShmSlots * slots, guint64 lanes, guint64 seq,
    guint64 * age)
{
  gint found = -1;

  *age = 0;
  g_mutex_lock (&slots->lock);
  for (guint lane = 0; lane < SHM_AREA_TOKEN_LANES; lane++) {
    Lane *l = &slots->lanes[lane];
    if (!(lanes & (G_GUINT64_CONSTANT (1) << lane)) || !l->open)
      continue;
    for (guint i = 0; i < slots->geo.chan_depth; i++) {
      if (l->flight[i].used && seq - l->flight[i].seq > *age) {
        *age = seq - l->flight[i].seq;
        found = lane;
      }
    }
  }
  g_mutex_unlock (&slots->lock);
  return found;
}

/* --- claiming ------------------------------------------------------------ */

/* The free slot that came free last. */
static gboolean
find_free_locked (ShmSlots * slots, guint * slot)
{
  gint best = -1;

  for (guint i = 0; i < slots->geo.n_slots; i++)
    if (!slots->in_use[i] && slots->holds[i] == 0
        && (best < 0 || slots->freed[i] > slots->freed[best]))
      best = i;
  if (best < 0)
    return FALSE;
  slots->in_use[best] = TRUE;
  slots->starved = FALSE;
  *slot = best;
  return TRUE;
}

guint
shm_slots_count_free (ShmSlots * slots)
{
  guint n = 0;

  g_mutex_lock (&slots->lock);
  collect_locked (slots);
  for (guint i = 0; i < slots->geo.n_slots; i++)
    n += !slots->in_use[i] && slots->holds[i] == 0;
  g_mutex_unlock (&slots->lock);
  return n;
}


/**
 * shm_slots_claim:
 * @cancel: the flushing flag of the caller (the sender's or a pool's), read
 *   atomically: the sender's unlock must not make upstream's pool flush
 *
 * Claims a free slot for writing.  Waits up to the timeout for one to be
 * released, on the sender's bell (receivers ring it when they give a frame
 * back and see that the sender waits); once a wait has timed out, the
 * slots are "starved" and further claims do not wait until some slot is
 * released.
 */
/* Waits until @ready (called with the lock) says so, at most until
 * @deadline_us (-1: no limit), on the sender's bell: receivers ring it when
 * they give a frame back and see that the sender waits.  With @poll_ns, it
 * also looks that often (what the bell does not announce).
 * Returns: SHM_CLAIM_OK, SHM_CLAIM_FLUSHING, or SHM_CLAIM_NONE at the
 * deadline. */
static ShmClaimResult
wait_locked (ShmSlots * slots, gboolean (*ready) (ShmSlots *, gpointer),
    gpointer data, gint64 deadline_us, gint64 poll_ns, const gint * cancel)
{
  ShmClaimResult ret = SHM_CLAIM_NONE;
  gboolean waiting = FALSE;
  guint32 seen = 0;
  gint64 wait_ns;

  for (;;) {
    if ((cancel && g_atomic_int_get (cancel)) || slots->flushing) {
      ret = SHM_CLAIM_FLUSHING;
      break;
    }
    collect_locked (slots);
    if (ready (slots, data)) {
      ret = SHM_CLAIM_OK;
      break;
    }
    if (!waiting) {
      /* the bell's value before we say that we wait, then one more look
       * (a release in between rings the bell: the sleep returns at once) */
      seen = shm_bell_read (slots->bell);
      __atomic_fetch_add (slots->waiters, 1, __ATOMIC_SEQ_CST);
      /* (the next look at the release queues after it, on every CPU) */
      __atomic_thread_fence (__ATOMIC_SEQ_CST);
      waiting = TRUE;
      continue;
    }
    wait_ns = deadline_us < 0 ? -1 : (deadline_us - g_get_monotonic_time ())
        * 1000;
    if (deadline_us >= 0 && wait_ns <= 0)
      break;
    if (poll_ns > 0 && (wait_ns < 0 || wait_ns > poll_ns))
      wait_ns = poll_ns;
    g_mutex_unlock (&slots->lock);
    shm_bell_wait (slots->bell, seen, wait_ns);
    g_mutex_lock (&slots->lock);
    seen = shm_bell_read (slots->bell);
  }
  if (waiting)
    __atomic_fetch_sub (slots->waiters, 1, __ATOMIC_SEQ_CST);
  return ret;
}

static gboolean
claim_ready (ShmSlots * slots, gpointer data)
{
  return find_free_locked (slots, data);
}

/**
 * shm_slots_claim:
 * @cancel: the flushing flag of the caller (the sender's or a pool's), read
 *   atomically: the sender's unlock must not make upstream's pool flush
 *
 * Claims a free slot for writing.  Waits up to the timeout for one to be
 * released; once a wait has timed out, the slots are "starved" and further
 * claims do not wait until some slot is released.
 */
ShmClaimResult
shm_slots_claim (ShmSlots * slots, gboolean dontwait, const gint * cancel,
    guint * slot)
{
  ShmClaimResult ret;
  gint64 deadline;

  g_mutex_lock (&slots->lock);
  deadline = slots->timeout_us < 0 ? -1 : g_get_monotonic_time ()
      + slots->timeout_us;
  if (dontwait || slots->starved)
    deadline = 0;
  ret = wait_locked (slots, claim_ready, slot, deadline,
      slots->poll ? POLL_NS : 0, cancel);
  if (ret == SHM_CLAIM_NONE && !dontwait)
    slots->starved = TRUE;
  g_mutex_unlock (&slots->lock);
  return ret;
}

static guint64
lanes_without_room_locked (ShmSlots * slots, guint64 lanes, gboolean frame)
{
  guint64 full = 0;

  for (guint lane = 0; lanes; lane++, lanes >>= 1) {
    guint32 pending;
    if ((lanes & 1) && queued_locked (slots, lane, &pending)
        && (pending >= slots->geo.chan_depth || (frame
                && slots->lanes[lane].n_flight >= slots->geo.chan_depth)))
      full |= G_GUINT64_CONSTANT (1) << lane;
  }
  return full;
}

typedef struct
{
  guint64 lanes;
  gboolean frame;
} RoomWait;

static gboolean
room_ready (ShmSlots * slots, gpointer data)
{
  RoomWait *w = data;

  return lanes_without_room_locked (slots, w->lanes, w->frame) == 0;
}

/**
 * shm_slots_wait_room:
 * @lanes: receivers that take every frame
 * @frame: room for a frame (a record, and a frame in flight); otherwise
 *   for a record only (the end of stream)
 * @deadline_us: g_get_monotonic_time() at which to give up; -1: never
 *
 * Waits until the channel of every lane of @lanes has room (its receiver
 * took records, and gave frames back).  A receiver does not ring when it
 * takes a record, so this also looks every millisecond.
 *
 * Returns: the lanes still without room.
 */
guint64
shm_slots_wait_room (ShmSlots * slots, guint64 lanes, gboolean frame,
    gint64 deadline_us, const gint * cancel)
{
  RoomWait w = { lanes, frame };
  guint64 full;

  g_mutex_lock (&slots->lock);
  wait_locked (slots, room_ready, &w, deadline_us, 1000000, cancel);
  full = lanes_without_room_locked (slots, lanes, frame);
  g_mutex_unlock (&slots->lock);
  return full;
}

/* A writer is done with @slot (upstream's buffer went back to the pool, or
 * the sender copied and published it). */
void
shm_slots_unclaim (ShmSlots * slots, guint slot)
{
  g_mutex_lock (&slots->lock);
  slots->in_use[slot] = FALSE;
  if (slots->holds[slot] == 0)
    slots->freed[slot] = ++slots->ticks;
  g_mutex_unlock (&slots->lock);
  if (__atomic_load_n (slots->waiters, __ATOMIC_SEQ_CST) != 0)
    shm_slots_wake (slots);
}

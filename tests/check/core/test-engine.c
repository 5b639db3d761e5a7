/* gst-shm: unit tests of the frame path and the engines (no GStreamer)
 *
 * The channels on their own (full, empty, indices that wrap, a hostile
 * index), the sender's slots (releases out of order, a receiver that
 * never releases, a forged release), the wake-up protocol under races run
 * many times, and the sender and receiver engines talking to each other
 * through a real socket and area.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "shmbell.h"
#include "shmchannel.h"
#include "shmreceiver.h"
#include "shmsender.h"
#include "shmslots.h"

#include <glib/gstdio.h>
#include <string.h>
#include <sys/resource.h>

static gchar *tmpdir;

static ShmRecord
frame (guint64 seq, guint32 slot)
{
  ShmRecord r = { 0, };

  r.type = SHM_RECORD_FRAME;
  r.seq = seq;
  r.slot = slot;
  r.size = 4096;
  r.pts = seq * 1000;
  return r;
}

/* --- channels --------------------------------------------------------- */

static void
put_index (guint8 * chan, gsize off, guint32 v)
{
  v = GUINT32_TO_LE (v);
  memcpy (chan + off, &v, 4);
}

/* Records go through a channel in order, full and empty are told apart,
 * and indices that wrap past 2^32 change nothing. */
static void
test_channel_wrap (void)
{
  const guint32 depth = 16, start = G_MAXUINT32 - 20;
  guint8 *chan = g_malloc0 (SHM_CHAN_STRIDE (depth));
  guint8 bytes[SHM_RECORD_SIZE];
  guint64 next = 0, sent = 0;
  ShmChanTx tx;
  ShmChanRx rx;
  guint32 pending;
  ShmRecord r;

  shm_chan_tx_init (&tx, chan, depth, 5);
  /* both sides start near the wrap of the 32-bit indices */
  tx.rec_head = start;
  put_index (chan, SHM_CHAN_REC_HEAD, start);
  put_index (chan, SHM_CHAN_REC_TAIL, start);
  shm_chan_rx_init (&rx, chan, depth, 5);
  rx.rec_tail = start;

  for (guint round = 0; round < 5; round++) {
    /* fill it up: depth records, then no room */
    while (shm_chan_tx_pending (&tx, &pending, NULL) && pending < depth) {
      r = frame (sent++, 0);
      shm_record_encode (&r, bytes);
      shm_chan_tx_push (&tx, bytes);
    }
    g_assert_cmpuint (pending, ==, depth);
    /* empty it, in order */
    while (shm_chan_rx_pending (&rx, &pending, NULL) && pending > 0) {
      shm_chan_rx_peek (&rx, bytes);
      g_assert_true (shm_record_decode (bytes, &r, NULL));
      g_assert_cmpuint (r.seq, ==, next);
      g_assert_cmpuint (r.pts, ==, next * 1000);
      next++;
      shm_chan_rx_pop (&rx);
    }
  }
  g_assert_cmpuint (next, ==, 5 * depth);
  g_assert_cmpuint (rx.rec_tail, <, start);     /* it did wrap */

  /* a head beyond the channel, as a hostile sender would write it */
  put_index (chan, SHM_CHAN_REC_HEAD, rx.rec_tail + depth + 1);
  {
    g_autoptr (GError) err = NULL;
    g_assert_false (shm_chan_rx_pending (&rx, &pending, &err));
    g_assert_nonnull (strstr (err->message, "record index is beyond"));
  }
  /* a tail behind or ahead of the head, as a hostile receiver would */
  put_index (chan, SHM_CHAN_REC_TAIL, tx.rec_head + 1);
  g_assert_false (shm_chan_tx_pending (&tx, &pending, NULL));
  shm_chan_rx_clear (&rx);
  g_free (chan);
}

/* --- slots ----------------------------------------------------------------- */

static ShmSlots *
make_slots (const gchar * name, guint n_slots, ShmArea ** area_out)
{
  g_autofree gchar *path = g_build_filename (tmpdir, name, NULL);
  g_autoptr (GError) err = NULL;
  guint64 size = shm_geometry_size_needed (n_slots, 4096, 0);
  ShmArea *area = shm_area_create (path, size, 0600, 0, NULL, &err);
  ShmGeometry geo;
  ShmSlots *slots;

  g_assert_no_error (err);
  g_assert_true (shm_geometry_compute (&geo, size, n_slots, 4096, 0, &err));
  geo.session_id = 7;
  shm_area_init_header (area, &geo);
  slots = shm_slots_new (area, &geo);
  *area_out = area;
  return slots;
}

static void
drop_slots (ShmSlots * slots, ShmArea * area)
{
  shm_slots_unref (slots);
  shm_area_unlink (area, NULL);
  shm_area_unref (area);
}

/* The receiver's end of @lane. */
static void
receiver_end (ShmSlots * slots, guint lane, guint32 gen, ShmChanRx * rx)
{
  ShmArea *area = shm_slots_get_area (slots);
  const ShmGeometry *geo = shm_slots_get_geometry (slots);

  shm_chan_rx_init (rx, shm_area_channel (area, geo, lane), geo->chan_depth,
      gen);
}

/* Publishes one frame in a claimed slot; the slot is the receiver's until
 * it comes back. */
static guint
publish_one (ShmSlots * slots, guint64 lanes, guint64 seq)
{
  ShmRecord r;
  guint slot;

  g_assert_cmpint (shm_slots_claim (slots, TRUE, NULL, &slot), ==,
      SHM_CLAIM_OK);
  r = frame (seq, slot);
  shm_slots_publish (slots, lanes, &r);
  shm_slots_unclaim (slots, slot);
  return slot;
}

static void
test_slots_out_of_order (void)
{
  static const guint order[] = { 2, 0, 3, 1 };
  ShmArea *area;
  ShmSlots *slots = make_slots ("ooo", 4, &area);
  ShmChanRx rx;
  guint slot_of[4];
  guint slot;

  shm_slots_open_lane (slots, 3, 11);
  receiver_end (slots, 3, 11, &rx);
  for (guint i = 0; i < 4; i++)
    slot_of[i] = publish_one (slots, 1 << 3, 100 + i);
  /* every slot is the receiver's */
  g_assert_cmpuint (shm_slots_count_free (slots), ==, 0);
  g_assert_cmpint (shm_slots_claim (slots, TRUE, NULL, &slot), ==,
      SHM_CLAIM_NONE);
  /* they come back in any order, each freeing its own slot */
  for (guint k = 0; k < 4; k++) {
    guint i = order[k];
    g_assert_true (shm_chan_rx_release (&rx, 100 + i, slot_of[i]));
    g_assert_cmpuint (shm_slots_count_free (slots), ==, k + 1);
  }
  g_assert_cmpuint (shm_slots_collect (slots, NULL), ==, 0);

  /* a release of a previous receiver of the lane (another generation) is
   * ignored; one of a frame never sent breaks the lane */
  slot = publish_one (slots, 1 << 3, 200);
  rx.lane_gen = 10;
  g_assert_true (shm_chan_rx_release (&rx, 200, slot));
  g_assert_cmpuint (shm_slots_count_free (slots), ==, 3);
  rx.lane_gen = 11;
  g_assert_true (shm_chan_rx_release (&rx, 999, slot));
  {
    g_autofree gchar *why = NULL;
    g_assert_cmpuint (shm_slots_collect (slots, &why), ==, 1 << 3);
    g_assert_nonnull (strstr (why, "(frame 999), which it does not hold"));
  }
  /* and its frames are free again */
  g_assert_cmpuint (shm_slots_count_free (slots), ==, 4);
  shm_chan_rx_clear (&rx);
  drop_slots (slots, area);
}

/* A receiver that never gives frames back: a claim waits the timeout,
 * then the slots are "starved" (no more waits), until the lane closes. */
static void
test_slots_never_released (void)
{
  ShmArea *area;
  ShmSlots *slots = make_slots ("never", 2, &area);
  gint64 t0;
  guint slot;

  shm_slots_set_timeout (slots, 100 * 1000);
  shm_slots_open_lane (slots, 0, 1);
  publish_one (slots, 1, 0);
  publish_one (slots, 1, 1);
  /* the channel takes more records, but no frame has a slot */
  g_assert_true (shm_slots_lane_has_room (slots, 0, TRUE));
  t0 = g_get_monotonic_time ();
  g_assert_cmpint (shm_slots_claim (slots, FALSE, NULL, &slot), ==,
      SHM_CLAIM_NONE);
  g_assert_cmpint (g_get_monotonic_time () - t0, >=, 100 * 1000);
  t0 = g_get_monotonic_time ();
  g_assert_cmpint (shm_slots_claim (slots, FALSE, NULL, &slot), ==,
      SHM_CLAIM_NONE);
  g_assert_cmpint (g_get_monotonic_time () - t0, <, 50 * 1000);
  /* the receiver is dropped: its frames are free */
  shm_slots_close_lane (slots, 0);
  g_assert_cmpint (shm_slots_claim (slots, FALSE, NULL, &slot), ==,
      SHM_CLAIM_OK);
  shm_slots_unclaim (slots, slot);
  drop_slots (slots, area);
}

/* --- waking: races run many times ------------------------------------------ */

#define RACE_RECORDS 200000

typedef struct
{
  ShmSlots *slots;
  ShmChanRx rx;
  guint32 *bell;
  guint64 received;
  guint sleeps, stalls;
} RaceReceiver;

/* The receiver's side of the protocol, as shmsrc's streaming thread runs
 * it: look; say that it sleeps; look again; sleep on the bell. A lost
 * wake-up shows as a sleep that ends at its timeout with records
 * waiting. */
static gpointer
race_receiver (gpointer data)
{
  RaceReceiver *r = data;
  guint8 bytes[SHM_RECORD_SIZE];
  ShmRecord rec;
  guint32 pending, seen;

  while (r->received < RACE_RECORDS) {
    g_assert_true (shm_chan_rx_pending (&r->rx, &pending, NULL));
    if (pending > 0) {
      shm_chan_rx_peek (&r->rx, bytes);
      g_assert_true (shm_record_decode (bytes, &rec, NULL));
      g_assert_cmpuint (rec.seq, ==, r->received);
      shm_chan_rx_pop (&r->rx);
      /* give the slot back, and ring the sender if it waits */
      g_assert_true (shm_chan_rx_release (&r->rx, rec.seq, rec.slot));
      __atomic_thread_fence (__ATOMIC_SEQ_CST);
      if (*shm_area_sink_waiters (shm_slots_get_area (r->slots)))
        shm_bell_ring (shm_area_sink_bell (shm_slots_get_area (r->slots)));
      r->received++;
      continue;
    }
    seen = shm_bell_read (r->bell);
    shm_chan_rx_set_waiting (&r->rx, TRUE);
    g_assert_true (shm_chan_rx_pending (&r->rx, &pending, NULL));
    if (pending == 0) {
      gint64 t0 = g_get_monotonic_time ();
      r->sleeps++;
      shm_bell_wait (r->bell, seen, 2 * G_GINT64_CONSTANT (1000000000));
      if (g_get_monotonic_time () - t0 >= 2 * G_USEC_PER_SEC)
        r->stalls++;
    }
    shm_chan_rx_set_waiting (&r->rx, FALSE);
  }
  return NULL;
}

/* A sender publishing as fast as it can into 2 slots and a receiver
 * giving them back: both sides sleep and wake each other all the time;
 * every record arrives, in order, and no sleep misses its wake-up. */
static void
test_wake_race (void)
{
  ShmArea *area;
  ShmSlots *slots = make_slots ("race", 2, &area);
  RaceReceiver r = { 0, };
  GThread *thread;
  guint wakes = 0;

  g_assert_true (shm_area_can_futex (area));
  shm_slots_set_timeout (slots, -1);
  shm_slots_open_lane (slots, 5, 3);
  receiver_end (slots, 5, 3, &r.rx);
  r.slots = slots;
  r.bell = shm_slots_lane_bell (slots, 5);
  thread = g_thread_new ("receiver", race_receiver, &r);
  for (guint64 seq = 0; seq < RACE_RECORDS; seq++) {
    ShmRecord rec;
    guint slot;
    g_assert_cmpint (shm_slots_claim (slots, FALSE, NULL, &slot), ==,
        SHM_CLAIM_OK);
    rec = frame (seq, slot);
    if (shm_slots_publish (slots, 1 << 5, &rec)) {
      shm_bell_ring (r.bell);
      wakes++;
    }
    shm_slots_unclaim (slots, slot);
  }
  g_thread_join (thread);
  g_assert_cmpuint (r.received, ==, RACE_RECORDS);
  g_assert_cmpuint (r.stalls, ==, 0);
  /* both ways happened: the receiver slept, and was woken */
  g_assert_cmpuint (r.sleeps, >, 0);
  g_assert_cmpuint (wakes, >, 0);
  g_test_message ("%u sleeps, %u wake-ups for %d records", r.sleeps, wakes,
      RACE_RECORDS);
  shm_chan_rx_clear (&r.rx);
  drop_slots (slots, area);
}

/* --- the engines ---------------------------------------------------------- */

typedef struct
{
  GMutex lock;
  GPtrArray *events;            /* "connected", "left"... */
  GPtrArray *errors;
  guint64 features_seen;
} Log;

static void
log_add (Log * log, GPtrArray * a, gchar * s)
{
  g_mutex_lock (&log->lock);
  g_ptr_array_add (a, s);
  g_mutex_unlock (&log->lock);
}

static gboolean
log_has (Log * log, GPtrArray * a, const gchar * needle)
{
  gboolean found = FALSE;

  g_mutex_lock (&log->lock);
  for (guint i = 0; i < a->len && !found; i++)
    found = strstr (g_ptr_array_index (a, i), needle) != NULL;
  g_mutex_unlock (&log->lock);
  return found;
}

static gchar *
tx_accepts (ShmSender * s, ShmPeer * p, const gchar * caps, gboolean update,
    gpointer data)
{
  return NULL;
}

static void
tx_gone (ShmSender * s, ShmPeer * p, gpointer data)
{
}

static void
tx_event (const gchar * event, const gchar * peer, guint64 session,
    const gchar * reason, gpointer data)
{
  Log *log = data;
  log_add (log, log->events, g_strdup_printf ("sender: %s %s", event,
          reason ? reason : ""));
}

static void
tx_message (gboolean fatal, const GError * error, const gchar * debug,
    gpointer data)
{
  Log *log = data;
  log_add (log, log->errors, g_strdup_printf ("sender %s: %s",
          fatal ? "error" : "warning", error->message));
}

static const ShmSenderCallbacks tx_callbacks = {
  tx_accepts, tx_gone, tx_event, tx_message,
};

static gchar *
rx_get_accept (ShmReceiver * rx, gpointer data)
{
  return NULL;
}

/* "test/frames" caps: frames of anything, no planes. */
static gpointer
rx_parse_caps (ShmReceiver * rx, const gchar * caps, guint64 slot_size,
    ShmFrameLayout * layout, GError ** error, gpointer data)
{
  memset (layout, 0, sizeof *layout);
  return g_strdup (caps);
}

static void
rx_event (const gchar * event, const gchar * peer, guint64 session,
    const gchar * reason, gpointer data)
{
  Log *log = data;
  log_add (log, log->events, g_strdup_printf ("receiver: %s %s", event,
          reason ? reason : ""));
}

static void
rx_message (gboolean fatal, const GError * error, const gchar * debug,
    gpointer data)
{
  Log *log = data;
  log_add (log, log->errors, g_strdup_printf ("receiver %s: %s",
          fatal ? "error" : "warning", error->message));
}

static const ShmReceiverCallbacks rx_callbacks = {
  rx_get_accept, rx_parse_caps, g_free, rx_event, rx_message,
};

typedef struct
{
  ShmReceiver *rx;
  guint n;
  guint64 first_seq;
  gboolean live;
  gint sleep_us;                /* time taken by each frame */
  GArray *records;              /* (nullable) the records of the frames */
  /* results */
  guint frames, caps, gaps, bad;
  gboolean eos;
  gchar *caps_seen;
} Consumer;

/* The receiver's streaming thread: every frame's bytes are its number. */
static gpointer
consume (gpointer data)
{
  Consumer *c = data;
  ShmRxFrame *f;
  gpointer caps;

  for (;;) {
    switch (shm_receiver_next (c->rx, &f, &caps)) {
      case SHM_RECV_FRAME:{
        guint64 seq = f->record.seq;
        if (c->frames > 0 && f->discont)
          c->gaps++;
        for (guint i = 0; i < f->record.size; i += 64)
          if (f->data[i] != (guint8) seq)
            c->bad++;
        c->frames++;
        if (c->records)
          g_array_append_val (c->records, f->record);
        shm_rx_frame_free (f);
        if (c->sleep_us)
          g_usleep (c->sleep_us);
        break;
      }
      case SHM_RECV_CAPS:
        c->caps++;
        g_free (c->caps_seen);
        c->caps_seen = caps;
        break;
      case SHM_RECV_EOS:
        c->eos = TRUE;
        return NULL;
      default:
        return NULL;
    }
  }
}

typedef struct
{
  gchar *path, *control;
  Log log;
  ShmSender *tx;
  ShmReceiver *rx;
  Consumer c;
  GThread *thread;
  /* receiver settings other than the defaults */
  gint64 spin_ns, peer_timeout_us;
} Pair;

static void
pair_start (Pair * p, const gchar * name, guint64 rx_features, gboolean live)
{
  ShmSenderConfig sc = { 0, };
  ShmReceiverConfig rc = { 0, };
  g_autoptr (GError) err = NULL;

  p->path = g_build_filename (tmpdir, name, NULL);
  p->control = g_strdup_printf ("unix:%s.sock", p->path);
  g_mutex_init (&p->log.lock);
  p->log.events = g_ptr_array_new_with_free_func (g_free);
  p->log.errors = g_ptr_array_new_with_free_func (g_free);

  sc.path = rc.path = p->path;
  sc.control = rc.control = p->control;
  sc.num_slots = 4;
  sc.mode = 0600;
  sc.slot_timeout_us = G_USEC_PER_SEC;
  sc.peer_timeout_us = rc.peer_timeout_us = 5 * G_USEC_PER_SEC;
  if (p->peer_timeout_us)
    rc.peer_timeout_us = p->peer_timeout_us;
  rc.spin_ns = p->spin_ns;
  sc.features = SHM_FEATURES_KNOWN;
  rc.features = rx_features;
  rc.live = live;
  p->tx = shm_sender_new (&sc, &tx_callbacks, &p->log);
  g_assert_true (shm_sender_start (p->tx, &err));
  g_assert_no_error (err);
  shm_sender_set_min_ready (p->tx, 1);
  p->rx = shm_receiver_new (&rc, &rx_callbacks, &p->log);
  shm_receiver_start (p->rx);
  p->c.rx = p->rx;
  p->thread = g_thread_new ("consumer", consume, &p->c);
  g_assert_true (shm_sender_set_caps (p->tx, "test/frames", 4096, FALSE, &err));
  g_assert_cmpint (shm_sender_wait_ready (p->tx), ==, SHM_SEND_OK);
}

/* Sends @n frames (zero-copy style: written in a claimed slot), then the
 * end of the stream.  With @interval_ns, one frame per interval, each
 * with its due time, and @bad_due: due times that are not one. */
static void
pair_send_timed (Pair * p, guint n, gint64 interval_ns, gboolean bad_due)
{
  gint64 start = g_get_monotonic_time () * 1000;
  static const guint64 bad[] = { 0, G_MAXUINT64 - 1, G_MAXINT64,
    (guint64) G_MAXINT64 + 1, 1
  };

  for (guint i = 0; i < n; i++) {
    g_autoptr (ShmSlots) slots = shm_sender_get_slots (p->tx);
    ShmRecord r = { 0, };
    guint slot;

    g_assert_cmpint (shm_slots_claim (slots, FALSE, NULL, &slot), ==,
        SHM_CLAIM_OK);
    r.slot = slot;
    r.size = 4096;
    r.dts = r.duration = r.mono_pts = r.mono_dts = G_MAXUINT64;
    if (interval_ns) {
      gint64 due = start + (i + 1) * interval_ns;
      r.duration = interval_ns;
      r.mono_pts = bad_due ? bad[i % G_N_ELEMENTS (bad)] : (guint64) due;
      g_usleep (MAX (due - g_get_monotonic_time () * 1000, 0) / 1000);
    }
    /* (the engine numbers the frame: peek at its next number) */
    {
      ShmSenderStats st;
      shm_sender_get_stats (p->tx, &st);
      memset (shm_slots_get_slot_data (slots, slot),
          (guint8) (p->c.first_seq + st.frames_rendered), 4096);
    }
    g_assert_cmpint (shm_sender_send (p->tx, slots, &r, FALSE), ==,
        SHM_SEND_OK);
    shm_slots_unclaim (slots, slot);
  }
  shm_sender_send_eos (p->tx);
  g_thread_join (p->thread);
}

static void
pair_send (Pair * p, guint n)
{
  pair_send_timed (p, n, 0, FALSE);
}

static void
pair_stop (Pair * p)
{
  shm_receiver_free (p->rx);
  shm_sender_free (p->tx);
  /* nothing left behind */
  g_assert_false (g_file_test (p->path, G_FILE_TEST_EXISTS));
  g_assert_false (g_file_test (p->control + 5, G_FILE_TEST_EXISTS));
  g_ptr_array_unref (p->log.events);
  g_ptr_array_unref (p->log.errors);
  g_mutex_clear (&p->log.lock);
  g_free (p->c.caps_seen);
  g_free (p->path);
  g_free (p->control);
}

/* A handshake, frames with their bytes checked, the caps before them and
 * the end of the stream; the receiver announces feature bits nobody knows,
 * which are ignored. */
static void
test_engines_roundtrip (void)
{
  Pair p = { 0, };
  ShmSenderStats st;

  pair_start (&p, "rt", SHM_FEATURES_KNOWN | (G_GUINT64_CONSTANT (1) << 63),
      FALSE);
  pair_send (&p, 300);
  g_assert_true (p.c.eos);
  g_assert_cmpuint (p.c.frames, ==, 300);
  g_assert_cmpuint (p.c.bad, ==, 0);
  g_assert_cmpuint (p.c.gaps, ==, 0);
  g_assert_cmpuint (p.c.caps, ==, 1);
  g_assert_cmpstr (p.c.caps_seen, ==, "test/frames");
  shm_sender_get_stats (p.tx, &st);
  g_assert_cmpuint (st.frames_sent, ==, 300);
  g_assert_cmpuint (st.frames_skipped, ==, 0);
  /* one kernel, futexes: no doorbell message */
  g_assert_cmpuint (st.doorbells, ==, 0);
  g_assert_true (log_has (&p.log, p.log.events, "sender: connected"));
  g_assert_true (log_has (&p.log, p.log.events, "receiver: connected"));
  g_assert_cmpuint (p.log.errors->len, ==, 0);
  pair_stop (&p);
}

/* The same without futexes (as across a VM boundary over TCP or vsock):
 * wake-ups are doorbell messages. */
static void
test_engines_doorbells (void)
{
  Pair p = { 0, };
  ShmSenderStats st;

  pair_start (&p, "db", 0, FALSE);
  pair_send (&p, 200);
  g_assert_true (p.c.eos);
  g_assert_cmpuint (p.c.frames, ==, 200);
  g_assert_cmpuint (p.c.bad, ==, 0);
  shm_sender_get_stats (p.tx, &st);
  g_assert_cmpuint (st.doorbells, >, 0);
  /* (at most one a record: 200 frames and the end of the stream) */
  g_assert_cmpuint (st.doorbells, <=, 201);
  pair_stop (&p);
}

/* Frame numbers that wrap past 2^64 - 1: no gap is seen. */
static void
test_engines_seq_wrap (void)
{
  Pair p = { 0, };

  p.c.first_seq = G_MAXUINT64 - 10;
  pair_start (&p, "wrap", SHM_FEATURES_KNOWN, FALSE);
  shm_sender_set_next_seq (p.tx, p.c.first_seq);
  pair_send (&p, 40);
  g_assert_cmpuint (p.c.frames, ==, 40);
  g_assert_cmpuint (p.c.gaps, ==, 0);
  g_assert_cmpuint (p.c.bad, ==, 0);
  pair_stop (&p);
}

/* Frames at a steady rate with their due times: a receiver with a spin
 * budget takes some of them without sleeping (and all of them intact);
 * without one, or when the due times are garbage, it never spins. */
static void
test_engines_spin (void)
{
  struct
  {
    gint64 spin_ns;
    gboolean bad_due;
  } cases[] = { {500000, FALSE}, {0, FALSE}, {500000, TRUE} };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    Pair p = { 0, };
    ShmReceiverStats st;

    p.spin_ns = cases[i].spin_ns;
    pair_start (&p, "spin", SHM_FEATURES_KNOWN, TRUE);
    /* 100 frames at 100 per second */
    pair_send_timed (&p, 100, 10 * 1000 * 1000, cases[i].bad_due);
    g_assert_true (p.c.eos);
    g_assert_cmpuint (p.c.bad, ==, 0);
    g_assert_cmpuint (p.c.frames + p.c.gaps, >=, 95);
    shm_receiver_get_stats (p.rx, &st);
    if (cases[i].spin_ns && !cases[i].bad_due)
      g_assert_cmpuint (st.spins, >, 0);
    else
      g_assert_cmpuint (st.spins, ==, 0);
    pair_stop (&p);
  }
}

/* A live receiver too slow for the stream misses frames (the sender skips
 * it) and drops some itself: the tile map of each frame it gets still
 * leads from the frame it got before, and covers the tiles changed in
 * every frame in between. */
static void
test_engines_damage_chain (void)
{
  const guint zero[] = { 0 }, four[] = { 4 };
  Pair p = { 0, };
  ShmTileGrid grid;
  guint64 sent_maps[200];
  guint checked = 0;

  /* 4096 bytes: 256 x 4 pixels of 4 bytes, 4 tiles in a row */
  g_assert_true (shm_tile_grid_init (&grid, 256, 4, 1, zero, zero, four));
  g_assert_cmpuint (grid.cols * grid.rows, ==, 4);
  p.c.records = g_array_new (FALSE, FALSE, sizeof (ShmRecord));
  p.c.sleep_us = 3000;
  pair_start (&p, "chain", SHM_FEATURES_KNOWN, TRUE);
  shm_sender_set_grid (p.tx, &grid);
  for (guint i = 0; i < G_N_ELEMENTS (sent_maps); i++) {
    g_autoptr (ShmSlots) slots = shm_sender_get_slots (p.tx);
    ShmRecord r = frame (0, 0);
    guint slot;

    if (shm_slots_claim (slots, FALSE, NULL, &slot) != SHM_CLAIM_OK)
      g_assert_not_reached ();
    r.slot = slot;
    r.dts = r.duration = r.mono_pts = r.mono_dts = G_MAXUINT64;
    r.record_flags = SHM_RECORD_FLAG_DAMAGE;
    r.tile = grid.tile;
    r.cols = grid.cols;
    r.rows = grid.rows;
    /* frame i changes tile i % 4 (the first one: all of them) */
    if (i == 0)
      shm_tile_map_fill (&r.damage, &grid);
    else
      shm_tile_map_set (&r.damage, i % 4);
    sent_maps[i] = r.damage.bits[0];
    memset (shm_slots_get_slot_data (slots, slot), (guint8) i, 4096);
    g_assert_cmpint (shm_sender_send (p.tx, slots, &r, FALSE), ==, SHM_SEND_OK);
    shm_slots_unclaim (slots, slot);
    g_usleep (500);
  }
  shm_sender_send_eos (p.tx);
  g_thread_join (p.thread);
  g_assert_cmpuint (p.c.bad, ==, 0);
  g_assert_cmpuint (p.c.gaps, >, 0);
  for (guint k = 1; k < p.c.records->len; k++) {
    const ShmRecord *a = &g_array_index (p.c.records, ShmRecord, k - 1);
    const ShmRecord *b = &g_array_index (p.c.records, ShmRecord, k);
    guint64 want = 0;

    g_assert_true (b->record_flags & SHM_RECORD_FLAG_DAMAGE);
    g_assert_cmpuint (b->damage_base, ==, a->seq);
    for (guint64 s = a->seq + 1; s <= b->seq; s++)
      want |= sent_maps[s];
    g_assert_cmpuint (b->damage.bits[0], ==, want);
    checked += b->seq - a->seq > 1;
  }
  /* (frames were missed in between, and their maps joined) */
  g_assert_cmpuint (checked, >, 0);
  {
    ShmSenderStats st;
    shm_sender_get_stats (p.tx, &st);
    g_assert_cmpuint (st.frames_skipped, >, 0);
  }
  g_array_unref (p.c.records);
  pair_stop (&p);
}

static gint64
cpu_us (void)
{
  struct rusage ru;

  getrusage (RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec * G_USEC_PER_SEC + ru.ru_utime.tv_usec
      + ru.ru_stime.tv_sec * G_USEC_PER_SEC + ru.ru_stime.tv_usec;
}

/* A record whose caps never come: the receiver waits for them asleep (it
 * does not spin on the record), then fails after the peer timeout with an
 * error that says so. */
static void
test_engines_caps_never_come (void)
{
  Pair p = { 0, };
  g_autoptr (ShmSlots) slots = NULL;
  ShmRecord r = frame (0, 0);
  guint64 sleeping;
  gint64 cpu;

  p.peer_timeout_us = G_USEC_PER_SEC;
  pair_start (&p, "nocaps", SHM_FEATURES_KNOWN, FALSE);
  slots = shm_sender_get_slots (p.tx);
  r.caps_gen = 99;
  cpu = cpu_us ();
  /* (the receiver may sleep already: wake it as the sender would) */
  sleeping = shm_slots_publish (slots, G_MAXUINT64, &r);
  for (guint lane = 0; lane < 64; lane++)
    if (sleeping & (G_GUINT64_CONSTANT (1) << lane))
      shm_bell_ring (shm_slots_lane_bell (slots, lane));
  g_thread_join (p.thread);
  /* about a second of waiting took far less than a second of CPU */
  g_assert_cmpint (cpu_us () - cpu, <, G_USEC_PER_SEC / 4);
  g_assert_cmpuint (p.c.frames, ==, 0);
  g_assert_true (log_has (&p.log, p.log.errors,
          "a frame of caps generation 99, which never came"));
  g_clear_pointer (&slots, shm_slots_unref);
  pair_stop (&p);
}

int
main (int argc, char **argv)
{
  gint ret;

  g_test_init (&argc, &argv, NULL);
  tmpdir = g_strdup ("/dev/shm/gst-shm-engine-XXXXXX");
  g_assert_nonnull (g_mkdtemp (tmpdir));
  g_test_add_func ("/engine/channel-wrap", test_channel_wrap);
  g_test_add_func ("/engine/slots-out-of-order", test_slots_out_of_order);
  g_test_add_func ("/engine/slots-never-released", test_slots_never_released);
  g_test_add_func ("/engine/wake-race", test_wake_race);
  g_test_add_func ("/engine/roundtrip", test_engines_roundtrip);
  g_test_add_func ("/engine/doorbells", test_engines_doorbells);
  g_test_add_func ("/engine/seq-wrap", test_engines_seq_wrap);
  g_test_add_func ("/engine/spin", test_engines_spin);
  g_test_add_func ("/engine/caps-never-come", test_engines_caps_never_come);
  g_test_add_func ("/engine/damage-chain", test_engines_damage_chain);
  ret = g_test_run ();
  g_assert_cmpint (g_rmdir (tmpdir), ==, 0);
  g_free (tmpdir);
  return ret;
}

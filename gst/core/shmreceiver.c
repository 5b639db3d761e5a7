/* gst-shm: the receiver engine
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "shmreceiver.h"
#include "shmaddress.h"
#include "shmbell.h"
#include "shmchannel.h"
#include "shmloop.h"
#include "shmring.h"

#include <stdlib.h>
#include <string.h>

#define RETRY_MS 100
#define RING_ACK_POLL_MS 5
#define TICK_MS 500
#define DISCARD_MS 10
/* the latencies a report takes its median and maximum from, at most */
#define REPORT_LATENCIES 256
/* the sender answers our token answer within this (as it waits for ours) */
#define HANDSHAKE_TIMEOUT_US (10 * G_USEC_PER_SEC)
/* a receiver that waits for a sender says why after this, then every
 * WAIT_WARN_EVERY_US */
#define WAIT_WARN_FIRST_US (3 * G_USEC_PER_SEC)
#define WAIT_WARN_EVERY_US (30 * G_USEC_PER_SEC)
/* inline frames read ahead of downstream by a non-live receiver */
#define INLINE_MAX_PENDING 2
/* ring mode: the finest poll, and the longest sleep of an idle poll */
#define POLL_STEP_NS (50 * G_GINT64_CONSTANT (1000))
#define POLL_MAX_NS (8 * G_GINT64_CONSTANT (1000000))
#define NS_PER_US G_GINT64_CONSTANT (1000)
/* the narrowest window of looks without sleep around a frame's due time */
#define SPIN_MIN_NS (20 * NS_PER_US)
/* the frames whose delays place the spin window, and the largest delay
 * from a frame's due time to its publication taken as one */
#define SPIN_HISTORY 32
#define SPIN_MAX_DELAY_NS (G_USEC_PER_SEC * NS_PER_US)

typedef enum
{
  CONN_NONE,
  CONN_AWAIT_MMAP,
  CONN_AWAIT_READY,
  CONN_READY,
} ConnState;

/* One verified mapping of one sender session.  Frames hold a reference, so
 * that the mapping (and the connection to wake the sender on) outlive the
 * engine's current state. */
struct _ShmRxSession
{
  gint ref_count;
  ShmArea *area;                /* NULL: frames come inline */
  ShmConn *conn;
  ShmGeometry geo;
  ShmChanRx chan;
  ShmWake wake;
  guint epoch;                  /* the connection it came on */
  gboolean same_boot;
  gboolean bar;
  gboolean can_futex;
  /* a file the sink did not create (QEMU's, a BAR): a new sink sets it up
   * again in place, where one it created is replaced by a new file */
  gboolean in_place;
  gint held;                    /* frames wrapped downstream */
  gint dead;                    /* the connection ended: channel unread */
  gchar *inline_reason;
};

typedef struct
{
  guint epoch;
  guint32 gen;
  gpointer handle;
  ShmFrameLayout layout;
} CapsEntry;

typedef struct
{
  ShmRecord record;
  GBytes *payload;
  ShmRxSession *session;
} InlineItem;

/* When the next frame is due, from the last ones: ring mode polls around
 * that time, the other modes look without sleeping around it (spin). */
typedef struct
{
  gint64 last_ref;              /* ns, our CLOCK_MONOTONIC */
  gint64 interval;              /* ns; 0: unknown */
  gint64 jitter;                /* ns, mean deviation from the prediction */
  gint64 idle_step;             /* ns: back-off while nothing comes */
  /* the next frame's spin window (ns, our CLOCK_MONOTONIC; 0: none) */
  gint64 spin_start, spin_end;
  /* the last frames' delays from their due time to their publication */
  gint64 delays[SPIN_HISTORY];
  guint n_delays;
  gint64 timer_late;            /* ns: mean lateness of timed sleeps */
  /* the last windows, one bit each (1: its frame came while we spun) */
  guint32 outcomes;
  guint n_outcomes;
  gboolean planned, caught;     /* the current window; whether it served */
} FrameClock;

struct _ShmReceiver
{
  ShmReceiverCallbacks cb;
  gpointer user_data;

  ShmReceiverConfig cfg;        /* its strings owned */
  ShmAddress addr;

  /* control thread; created in start, joined in stop */
  ShmLoop loop;
  GSource *tick_source;
  GSource *retry_source;
  GSource *discard_source;
  /* control thread only */
  ShmConn *conn;
  ConnState state;
  ShmRxSession *pending;        /* handshake in progress */
  guint64 session_id;           /* the session ready last */
  guint64 slot_size;            /* its slots */
  gint64 waiting_since;
  gint64 last_message;
  gboolean stalled;
  gboolean said_waiting;
  gboolean said_no_rings;
  ShmArea *ring_area;           /* control=ring: a lane claimed, no ack yet */
  ShmGeometry ring_geo;
  guint ring_lane;
  guint64 ring_id;
  gint64 ring_claimed_at;
  guint8 nonce[SHM_NONCE_BYTES];        /* our challenge of this connection */
  guint64 ring_claim_beat;      /* the sender's heartbeat when we claimed */
  gint64 handshake_since;
  gint64 last_wait_warn;
  /* control=ring, connected: no kernel says that the sender died, its
   * heartbeat and the area's session do */
  ShmArea *watch_area;
  guint64 watch_session;
  guint64 watch_beat;
  gint64 watch_beat_at;

  GMutex lock;
  /* lock */
  guint epoch;                  /* connections made */
  ShmRxSession *cur;            /* the streaming thread reads it */
  ShmRxSession *next;           /* ready, once cur is done */
  GQueue items;                 /* InlineItem */
  ShmConn *paused_conn;         /* not read while inline frames wait */
  GQueue caps;                  /* CapsEntry, oldest first */
  guint32 *wait_bell;           /* the bell the streaming thread sleeps on */
  guint32 local_bell;
  gboolean flushing;
  gboolean fatal;
  gboolean got_eos;
  gboolean discarding;
  ShmReceiverStats stats;
  guint missed_warn;            /* MISSED_*: to say, said */
  guint missed_said;
  /* for the next report: latencies since the last, the records waiting,
   * what downstream's QoS said */
  guint64 latencies[REPORT_LATENCIES];
  guint n_latencies;
  guint32 queued;
  guint32 qos_events;
  gdouble qos_proportion;
  gint64 qos_jitter;
  ShmReceiverStats reported;    /* the counters at the last report */
  gint64 reported_at;

  /* streaming thread */
  guint applied_epoch;
  guint32 applied_gen;
  ShmFrameLayout layout;
  guint64 next_seq;
  gboolean have_seq;
  /* the tile maps of the frames of the area it dropped since the last it
   * delivered, joined: the next frame's map then covers them (lock) */
  gboolean dropped_damage;
  ShmRecord dropped;
  gboolean discont;
  gint64 caps_wait_since;
  FrameClock clock;
};

static void schedule_connect (ShmReceiver * rx, guint delay_ms);

/* frames a receiver missed, said once each */
#define MISSED_BY_SENDER 1      /* sequence gaps: the sender skipped us */
#define MISSED_BY_US 2          /* our downstream was too slow */

/* --- messages for the element ------------------------------------------ */

static void
notify_locked (ShmReceiver * rx)
{
  shm_bell_ring (rx->wait_bell ? rx->wait_bell : &rx->local_bell);
}

static void
notify (ShmReceiver * rx)
{
  g_mutex_lock (&rx->lock);
  notify_locked (rx);
  g_mutex_unlock (&rx->lock);
}

/* Posts @error (taken) for the element: first, since the streaming side
 * fails once the engine is fatal. */
static void
post (ShmReceiver * rx, gboolean fatal, GError * error, const gchar * debug)
{
  rx->cb.message (fatal, error, debug, rx->user_data);
  g_error_free (error);
  if (fatal) {
    g_mutex_lock (&rx->lock);
    rx->fatal = TRUE;
    notify_locked (rx);
    g_mutex_unlock (&rx->lock);
  }
}

#define post_new(rx, fatal, code, debug, ...) \
  post (rx, fatal, g_error_new (SHM_ENGINE_ERROR, code, __VA_ARGS__), debug)

static void
event (ShmReceiver * rx, const gchar * what, const gchar * peer,
    guint64 session, const gchar * reason)
{
  rx->cb.peer_event (what, peer, session, reason, rx->user_data);
}

/* --- sessions -------------------------------------------------------------- */

static ShmRxSession *
session_ref (ShmRxSession * s)
{
  g_atomic_int_inc (&s->ref_count);
  return s;
}

static void
session_unref (ShmRxSession * s)
{
  if (!g_atomic_int_dec_and_test (&s->ref_count))
    return;
  if (s->area) {
    shm_chan_rx_clear (&s->chan);
    shm_area_unref (s->area);
  }
  g_free (s->inline_reason);
  shm_conn_unref (s->conn);
  g_free (s);
}

/* The connection of @s ended: its channel is no longer read or written
 * (the sender may give the lane to another receiver). */
static void
session_kill (ShmRxSession * s)
{
  if (!s)
    return;
  g_atomic_int_set (&s->dead, TRUE);
  if (s->area)
    shm_chan_rx_close (&s->chan);
}

guint
shm_rx_session_held (ShmRxSession * s)
{
  return g_atomic_int_get (&s->held);
}

/* How many frames downstream may keep in place: all slots but one (the
 * sender's), and no more than the channel has entries for releases. */
guint
shm_rx_session_may_hold (ShmRxSession * s)
{
  return MIN (s->geo.n_slots, s->geo.chan_depth) - 1;
}

guint64
shm_rx_session_id (ShmRxSession * s)
{
  return s->geo.session_id;
}

/* Gives the slot of a frame back, then rings the sender if it said that
 * it waits for one. */
static void
session_release (ShmRxSession * s, guint64 seq, guint32 slot)
{
  if (!s->area || !shm_chan_rx_release (&s->chan, seq, slot))
    return;
  __atomic_thread_fence (__ATOMIC_SEQ_CST);
  if (__atomic_load_n (shm_area_sink_waiters (s->area), __ATOMIC_ACQUIRE)
      == 0)
    return;
  if (s->wake == SHM_WAKE_FUTEX)
    shm_bell_ring (shm_area_sink_bell (s->area));
  else if (s->wake == SHM_WAKE_DOORBELL)
    shm_send_doorbell (s->conn);
}

void
shm_rx_frame_hold (ShmRxFrame * f)
{
  f->held = TRUE;
  g_atomic_int_inc (&f->session->held);
}

void
shm_rx_frame_free (ShmRxFrame * f)
{
  if (f->held)
    g_atomic_int_add (&f->session->held, -1);
  if (f->in_area)
    session_release (f->session, f->record.seq, f->record.slot);
  g_clear_pointer (&f->payload, g_bytes_unref);
  session_unref (f->session);
  g_free (f);
}

static void
item_free (InlineItem * item)
{
  g_clear_pointer (&item->payload, g_bytes_unref);
  session_unref (item->session);
  g_free (item);
}

static void
caps_entry_free (ShmReceiver * rx, CapsEntry * e)
{
  rx->cb.free_caps (e->handle);
  g_free (e);
}

/* --- control thread: connection ------------------------------------------ */

static void
ring_abandon (ShmReceiver * rx)
{
  if (!rx->ring_area)
    return;
  shm_ring_unclaim (rx->ring_area, &rx->ring_geo, rx->ring_lane, rx->ring_id);
  g_clear_pointer (&rx->ring_area, shm_area_unref);
}

static void
disconnect (ShmReceiver * rx)
{
  g_mutex_lock (&rx->lock);
  g_clear_pointer (&rx->paused_conn, shm_conn_unref);
  session_kill (rx->cur);
  session_kill (rx->next);
  notify_locked (rx);
  g_mutex_unlock (&rx->lock);
  ring_abandon (rx);
  if (rx->conn) {
    shm_conn_close (rx->conn);
    g_clear_pointer (&rx->conn, shm_conn_unref);
  }
  g_clear_pointer (&rx->pending, session_unref);
  g_clear_pointer (&rx->watch_area, shm_area_unref);
  rx->state = CONN_NONE;
}

static void
fail (ShmReceiver * rx, const gchar * code, const gchar * message)
{
  if (rx->conn)
    shm_send_error (rx->conn, code, message);
  disconnect (rx);
}

/* A fatal error found in the control thread: posted, and the sender told. */
static void
fail_fatal (ShmReceiver * rx, gint code, const gchar * wire_code,
    const gchar * message, const gchar * debug)
{
  post_new (rx, TRUE, code, debug, "%s", message);
  fail (rx, wire_code, message);
}

/* With a secret, frames inline come only from a sender that proves it. */
static gboolean
check_sender_secret (ShmReceiver * rx, const ShmMmapInfo * m)
{
  const gchar *why = NULL;

  if (!m->has_nonce || !m->has_proof)
    why = "did not prove that it knows the shared secret (set the same "
        "secret on shmsink)";
  else if (!shm_secret_check (rx->cfg.secret, "sender", rx->nonce, m->nonce,
          m->proof))
    why = "answered the shared-secret challenge wrongly: its secret is not "
        "this receiver's";
  if (!why)
    return TRUE;
  post_new (rx, TRUE, SHM_ENGINE_ERROR_OPEN_READ, NULL, "The sender at %s "
      "%s; frames inline refused.", rx->cfg.control, why);
  fail (rx, "access", why);
  return FALSE;
}

/* The sender's area cannot be reached from here.  Over TCP or vsock the
 * sender may run on another machine: ask for the frames inline over the
 * connection instead (the sender agrees unless its inline-fallback is
 * off).  Takes @s when it returns TRUE. */
static gboolean
ask_inline (ShmReceiver * rx, ShmRxSession * s, const ShmMmapInfo * m,
    const gchar * reason)
{
  const gchar *file = m->file;
  ShmReply r = { 0, };

  if (!rx->cfg.inline_fallback || (rx->addr.kind != SHM_ADDRESS_TCP
          && rx->addr.kind != SHM_ADDRESS_VSOCK)
      || s->geo.slot_size > SHM_MSG_MAX_PAYLOAD - SHM_RECORD_SIZE)
    return FALSE;
  if (rx->cfg.secret && !check_sender_secret (rx, m))
    return TRUE;
  r.session = s->geo.session_id;
  r.want_inline = TRUE;
  r.reason = (gchar *) reason;
  if (rx->cfg.secret) {
    shm_secret_proof (rx->cfg.secret, "receiver", m->nonce, rx->nonce, r.proof);
    r.has_proof = TRUE;
  }
  shm_conn_send (rx->conn, SHM_MSG_MMAP_REPLY, shm_reply_encode (&r), NULL);
  g_clear_pointer (&s->area, shm_area_unref);
  s->inline_reason = g_strdup_printf ("The sender's area \"%s\" and the "
      "receiver's area \"%s\" do not map the same memory: %s", file,
      rx->cfg.path, reason);
  g_clear_pointer (&rx->pending, session_unref);
  rx->pending = s;
  rx->state = CONN_AWAIT_READY;
  rx->handshake_since = g_get_monotonic_time ();
  return TRUE;
}

static ShmRxSession *
session_new (ShmReceiver * rx, const ShmMmapInfo * m)
{
  ShmRxSession *s = g_new0 (ShmRxSession, 1);

  s->ref_count = 1;
  s->conn = shm_conn_ref (rx->conn);
  s->geo = m->geo;
  s->bar = rx->cfg.bar != SHM_BAR_NONE;
  s->in_place = !(m->geo.flags & SHM_AREA_FLAG_CREATED);
  s->same_boot = m->boot_id && *m->boot_id
      && g_str_equal (m->boot_id, shm_boot_id ());
  return s;
}

/* Opens our own path (across a VM boundary it differs from the sender's)
 * and checks the sender's geometry and token in it.  Returns the message
 * of what failed (any such failure allows frames inline), its error code
 * here, and whether it is one for the sender too (the memory it names is
 * not what we map: "token"; else "open"). */
static gchar *
verify_area (ShmReceiver * rx, ShmRxSession * s, const ShmMmapInfo * m,
    gint * code, const gchar ** wire_code)
{
  g_autoptr (GError) err = NULL;

  *code = SHM_ENGINE_ERROR_READ;
  *wire_code = "token";
  s->area = shm_area_open (rx->cfg.path, rx->cfg.allow_symlink
      ? SHM_OPEN_ALLOW_SYMLINK : 0, &err);
  if (!s->area) {
    *code = g_error_matches (err, SHM_AREA_ERROR, SHM_AREA_ERROR_NOT_FOUND)
        ? SHM_ENGINE_ERROR_NOT_FOUND : SHM_ENGINE_ERROR_OPEN_READ;
    *wire_code = "open";
    return g_strdup (err->message);
  }
  if (!shm_area_check_header (s->area, &m->geo, &err)) {
    if (g_error_matches (err, SHM_AREA_ERROR, SHM_AREA_ERROR_BAD_MAGIC)
        || g_error_matches (err, SHM_AREA_ERROR, SHM_AREA_ERROR_SESSION)) {
      *code = SHM_ENGINE_ERROR_TOKEN;
      return g_strdup_printf ("The sender's area \"%s\" and the receiver's "
          "area \"%s\" do not map the same memory: %s", m->file, rx->cfg.path,
          err->message);
    }
    return g_strdup (err->message);
  }
  if (!shm_area_check_token (s->area, &s->geo, m->lane, m->token,
          m->token_bytes, m->token_index)) {
    *code = SHM_ENGINE_ERROR_TOKEN;
    return g_strdup_printf ("The sender's area \"%s\" and the receiver's "
        "area \"%s\" do not map the same memory: the sender's token was not "
        "found in \"%s\"", m->file, rx->cfg.path, rx->cfg.path);
  }
  return NULL;
}

/* The sender's token is ours to answer with a token of our own. */
static void
answer_token (ShmReceiver * rx, ShmRxSession * s, const ShmMmapInfo * m)
{
  g_autoptr (GError) err = NULL;
  ShmReply r = { 0, };

  if (!shm_area_write_token (s->area, &s->geo, m->lane, m->token_index,
          r.token, SHM_TOKEN_BYTES, &r.token_index, &err)) {
    session_unref (s);
    fail_fatal (rx, SHM_ENGINE_ERROR_WRITE, "internal", err->message, NULL);
    return;
  }
  shm_chan_rx_init (&s->chan, shm_area_channel (s->area, &s->geo, m->lane),
      s->geo.chan_depth, m->lane_gen);
  s->can_futex = shm_area_can_futex (s->area);
  r.session = s->geo.session_id;
  r.token_bytes = SHM_TOKEN_BYTES;
  shm_conn_send (rx->conn, SHM_MSG_MMAP_REPLY, shm_reply_encode (&r), NULL);
  g_clear_pointer (&rx->pending, session_unref);
  rx->pending = s;
  rx->state = CONN_AWAIT_READY;
  rx->handshake_since = g_get_monotonic_time ();
}

static void
handle_mmap (ShmReceiver * rx, GVariant * body)
{
  g_autoptr (GError) err = NULL;
  g_autofree gchar *msg = NULL;
  ShmMmapInfo m;
  ShmRxSession *s;
  const gchar *wire_code;
  gint code;

  if (!shm_mmap_decode (body, &m, &err)) {
    msg = g_strdup_printf ("invalid mmap hello from the sender: %s",
        err->message);
    fail_fatal (rx, SHM_ENGINE_ERROR_READ, "protocol", msg, NULL);
    return;
  }
  if (m.version < SHM_PROTO_VERSION_MIN || m.version > SHM_PROTO_VERSION) {
    msg = g_strdup_printf ("the sender speaks protocol version %u, this "
        "shmsrc speaks version %d", m.version, SHM_PROTO_VERSION);
    fail_fatal (rx, SHM_ENGINE_ERROR_READ, "version", msg, NULL);
    shm_mmap_clear (&m);
    return;
  }
  s = session_new (rx, &m);
  msg = verify_area (rx, s, &m, &code, &wire_code);
  if (!msg) {
    answer_token (rx, s, &m);
  } else if (!ask_inline (rx, s, &m, msg)) {
    session_unref (s);
    fail_fatal (rx, code, wire_code, msg, NULL);
  }
  shm_mmap_clear (&m);
}

/* Caps of a generation announced by the sender: parsed by the element and
 * kept until the frames of that generation come. */
static gboolean
take_caps (ShmReceiver * rx, const gchar * caps, guint32 gen, guint64 slot_size)
{
  g_autoptr (GError) err = NULL;
  CapsEntry *e = g_new0 (CapsEntry, 1);

  e->gen = gen;
  e->handle = rx->cb.parse_caps (rx, caps, slot_size, &e->layout, &err,
      rx->user_data);
  if (!e->handle) {
    g_autofree gchar *msg = g_strdup_printf ("The sender's caps are "
        "invalid: %s", err->message);
    g_free (e);
    fail_fatal (rx, SHM_ENGINE_ERROR_FORMAT, "caps", msg, NULL);
    return FALSE;
  }
  g_mutex_lock (&rx->lock);
  e->epoch = rx->epoch;
  g_queue_push_tail (&rx->caps, e);
  notify_locked (rx);
  g_mutex_unlock (&rx->lock);
  return TRUE;
}

static gboolean
check_ready (ShmReceiver * rx, const ShmReady * r)
{
  ShmRxSession *s = rx->pending;

  if (r->session != s->geo.session_id) {
    fail_fatal (rx, SHM_ENGINE_ERROR_READ, "protocol", "The sender "
        "confirmed another session than the one verified.", NULL);
    return FALSE;
  }
  if (s->area == NULL && !r->frames_inline) {
    g_autofree gchar *msg = g_strdup_printf ("The sender confirmed a "
        "session in its area, which is not reachable here: %s",
        s->inline_reason);
    fail_fatal (rx, SHM_ENGINE_ERROR_READ, "protocol", msg, NULL);
    return FALSE;
  }
  return TRUE;
}

static void
handle_ready (ShmReceiver * rx, GVariant * body)
{
  g_autoptr (GError) err = NULL;
  g_autofree gchar *peer = NULL;
  ShmRxSession *s;
  ShmReady r;

  if (!shm_ready_decode (body, &r, &err)) {
    g_autofree gchar *msg = g_strdup_printf ("invalid ready from the "
        "sender: %s", err->message);
    fail_fatal (rx, SHM_ENGINE_ERROR_READ, "protocol", msg, NULL);
    return;
  }
  if (!check_ready (rx, &r)) {
    shm_ready_clear (&r);
    return;
  }
  s = g_steal_pointer (&rx->pending);
  if (s->area == NULL) {
    post_new (rx, FALSE, SHM_ENGINE_ERROR_READ, NULL, "%s; frames come "
        "inline over the connection (set inline-fallback=false to make this "
        "an error).", s->inline_reason);
    shm_conn_set_max_payload (rx->conn, SHM_RECORD_SIZE + s->geo.slot_size);
  }
  /* a futex wake-up needs a mapping futexes work on: else look often */
  s->wake = r.wake == SHM_WAKE_FUTEX && !s->can_futex ? SHM_WAKE_POLL : r.wake;
  rx->state = CONN_READY;
  rx->session_id = s->geo.session_id;
  rx->slot_size = s->geo.slot_size;
  if (r.caps && !take_caps (rx, r.caps, r.caps_gen, s->geo.slot_size)) {
    session_unref (s);
    shm_ready_clear (&r);
    return;
  }
  g_mutex_lock (&rx->lock);
  s->epoch = rx->epoch;
  if (rx->next)
    session_unref (rx->next);
  rx->next = s;
  rx->stats.sessions++;
  rx->stats.n_slots = s->geo.n_slots;
  notify_locked (rx);
  g_mutex_unlock (&rx->lock);
  shm_ready_clear (&r);
  peer = g_strdup (shm_conn_get_description (rx->conn));
  event (rx, "connected", peer, rx->session_id, NULL);
}

/* An inline frame: a record, then its bytes. */
static void
handle_record (ShmReceiver * rx, const guint8 * payload, gsize len)
{
  g_autoptr (GError) err = NULL;
  InlineItem *item = g_new0 (InlineItem, 1);
  ShmRxSession *s;

  /* (a partial frame, its changed tiles only, is checked against the
   * grid of its caps by the element) */
  if (len < SHM_RECORD_SIZE || !shm_record_decode (payload, &item->record, &err)
      || (item->record.type == SHM_RECORD_FRAME
          && !(item->record.record_flags & SHM_RECORD_FLAG_PARTIAL)
          && len - SHM_RECORD_SIZE != item->record.size)
      || ((item->record.record_flags & SHM_RECORD_FLAG_PARTIAL)
          && (!(rx->cfg.features & SHM_FEATURE_DAMAGE)
              || len - SHM_RECORD_SIZE > item->record.size))) {
    g_autofree gchar *msg = g_strdup_printf ("The sender sent an invalid "
        "frame: %s", err ? err->message : "its bytes do not match its size");
    g_free (item);
    fail_fatal (rx, SHM_ENGINE_ERROR_READ, "protocol", msg, NULL);
    return;
  }
  if (item->record.type == SHM_RECORD_FRAME)
    item->payload = g_bytes_new (payload + SHM_RECORD_SIZE,
        len - SHM_RECORD_SIZE);
  g_mutex_lock (&rx->lock);
  s = rx->next ? rx->next : rx->cur;
  if (!s || s->area) {
    g_mutex_unlock (&rx->lock);
    g_clear_pointer (&item->payload, g_bytes_unref);
    g_free (item);
    fail_fatal (rx, SHM_ENGINE_ERROR_READ, "protocol", "The sender sent an "
        "inline frame to a receiver that maps its area.", NULL);
    return;
  }
  item->session = session_ref (s);
  g_queue_push_tail (&rx->items, item);
  rx->stats.frames_inline += item->record.type == SHM_RECORD_FRAME;
  /* A non-live receiver takes every frame: inline ones are not read ahead
   * of downstream beyond a few (the sender waits for room in the
   * connection) */
  if (!rx->cfg.live && rx->items.length >= INLINE_MAX_PENDING
      && !rx->paused_conn) {
    rx->paused_conn = shm_conn_ref (rx->conn);
    shm_conn_set_reading (rx->conn, FALSE);
  }
  notify_locked (rx);
  g_mutex_unlock (&rx->lock);
}

static void
handle_bye (ShmReceiver * rx, ShmConn * conn, GVariant * body)
{
  g_autofree gchar *peer = g_strdup (shm_conn_get_description (conn));
  gboolean eos;

  event (rx, "left", peer, rx->session_id, shm_msg_get_text (body, "message"));
  disconnect (rx);
  g_mutex_lock (&rx->lock);
  eos = rx->got_eos;
  g_mutex_unlock (&rx->lock);
  if (!eos)
    schedule_connect (rx, RETRY_MS);
}

static void
handle_error (ShmReceiver * rx, GVariant * body)
{
  const gchar *code = shm_msg_get_text (body, "code");
  const gchar *msg = shm_msg_get_text (body, "message");

  if (!msg)
    msg = "(no message)";
  if (g_strcmp0 (code, "timeout") == 0 || g_strcmp0 (code, "busy") == 0) {
    post_new (rx, FALSE, SHM_ENGINE_ERROR_READ, NULL, "The sender dropped "
        "this receiver: %s", msg);
    disconnect (rx);
    schedule_connect (rx, RETRY_MS);
  } else {
    g_autofree gchar *debug = g_strdup_printf ("reported by the sender (%s)",
        code ? code : "no code");
    if (g_strcmp0 (code, "access") == 0)
      post_new (rx, TRUE, SHM_ENGINE_ERROR_OPEN_READ, debug, "The sender "
          "refused this receiver: %s", msg);
    else
      post_new (rx, TRUE, g_strcmp0 (code, "token") == 0
          ? SHM_ENGINE_ERROR_TOKEN : SHM_ENGINE_ERROR_READ, debug, "%s", msg);
    disconnect (rx);
  }
}

static void
handle_caps (ShmReceiver * rx, GVariant * body)
{
  g_autoptr (GError) err = NULL;
  g_autofree gchar *caps = NULL;
  guint32 gen;

  if (!shm_caps_lookup (body, TRUE, &caps, &gen, &err) || gen == 0) {
    g_autofree gchar *msg = g_strdup_printf ("The sender's caps are "
        "invalid: %s", err ? err->message : "no caps generation");
    fail_fatal (rx, SHM_ENGINE_ERROR_FORMAT, "caps", msg, NULL);
    return;
  }
  take_caps (rx, caps, gen, rx->slot_size);
}

static const gchar *
dispatch (ShmReceiver * rx, ShmConn * conn, guint32 type, GVariant * body,
    const guint8 * payload, gsize payload_len)
{
  switch (type) {
    case SHM_MSG_MMAP:
      /* also mid-stream: the sender replaced its area */
      handle_mmap (rx, body);
      return NULL;
    case SHM_MSG_READY:
      if (rx->state != CONN_AWAIT_READY)
        return "ready only after the token answer";
      handle_ready (rx, body);
      return NULL;
    case SHM_MSG_CAPS:
      if (rx->state != CONN_READY)
        return "caps only when ready";
      handle_caps (rx, body);
      return NULL;
    case SHM_MSG_RECORD:
      if (rx->state != CONN_READY)
        return "frames only when ready";
      handle_record (rx, payload, payload_len);
      return NULL;
    case SHM_MSG_DOORBELL:
      notify (rx);
      return NULL;
    case SHM_MSG_PING:
      return NULL;
    case SHM_MSG_BYE:
      handle_bye (rx, conn, body);
      return NULL;
    case SHM_MSG_ERROR:
      handle_error (rx, body);
      return NULL;
    default:
      return type < SHM_MSG_LAST ? "only sender messages" : NULL;
  }
}

static void
on_message (ShmConn * conn, guint32 type, GVariant * body,
    const guint8 * payload, gsize payload_len, gpointer user_data)
{
  ShmReceiver *rx = user_data;
  const gchar *expected;

  rx->last_message = g_get_monotonic_time ();
  rx->stalled = FALSE;
  expected = dispatch (rx, conn, type, body, payload, payload_len);
  if (expected) {
    g_autofree gchar *msg = g_strdup_printf ("The sender sent an unexpected "
        "%s message (expected %s)", shm_msg_type_name (type), expected);
    fail_fatal (rx, SHM_ENGINE_ERROR_READ, "protocol", msg, NULL);
  }
}

/* The sender went away (its connection is already gone): said (@what it
 * did, during a handshake), and another looked for. */
static void
lost (ShmReceiver * rx, ConnState state, const gchar * peer,
    const gchar * what, const gchar * reason)
{
  if (state == CONN_READY)
    event (rx, "lost", peer, rx->session_id, reason);
  else
    post_new (rx, FALSE, SHM_ENGINE_ERROR_READ, NULL, "The sender %s during "
        "the handshake (%s, %s); waiting for a sender.", what, peer, reason);
  schedule_connect (rx, RETRY_MS);
}

static void
on_closed (ShmConn * conn, const GError * error, gpointer user_data)
{
  ShmReceiver *rx = user_data;
  g_autofree gchar *peer = g_strdup (shm_conn_get_description (conn));
  ConnState state = rx->state;
  gboolean eos;

  if (conn != rx->conn)
    return;
  disconnect (rx);
  if (error && (g_error_matches (error, SHM_PROTO_ERROR,
              SHM_PROTO_ERROR_MALFORMED) || error->domain == SHM_RING_ERROR)) {
    post_new (rx, TRUE, SHM_ENGINE_ERROR_READ, NULL, "%s", error->message);
    return;
  }
  g_mutex_lock (&rx->lock);
  eos = rx->got_eos;
  g_mutex_unlock (&rx->lock);
  if (!eos)
    lost (rx, state, peer, "closed the connection", error ? error->message
        : "closed without saying bye");
}

static const ShmConnCallbacks conn_callbacks = {
  on_message,
  on_closed,
};

static void
send_hello (ShmReceiver * rx)
{
  ShmHello h = { 0, };

  h.version_min = SHM_PROTO_VERSION_MIN;
  h.version_max = SHM_PROTO_VERSION;
  /* futexes do not work on a BAR's mapping */
  h.features = rx->cfg.features & (rx->cfg.bar == SHM_BAR_NONE ? G_MAXUINT64
      : ~(guint64) SHM_FEATURE_FUTEX);
  h.live = rx->cfg.live;
  h.path = (gchar *) rx->cfg.path;
  h.caps = rx->cb.get_accept (rx, rx->user_data);
  h.boot_id = (gchar *) shm_boot_id ();
  /* a challenge for the sender's proof of a shared secret */
  shm_random_bytes (rx->nonce, sizeof rx->nonce, NULL);
  memcpy (h.nonce, rx->nonce, sizeof h.nonce);
  h.has_nonce = TRUE;
  shm_conn_send (rx->conn, SHM_MSG_HELLO, shm_hello_encode (&h), NULL);
  g_free (h.caps);
}

/* Nothing to talk to yet: tries again after @delay_ms, unless the timeout
 * is over.  After a few seconds, and then now and then, says why (@why,
 * the likely causes included). */
static void
keep_waiting (ShmReceiver * rx, const gchar * why, guint delay_ms)
{
  gint64 now = g_get_monotonic_time ();

  rx->said_waiting = TRUE;
  if (rx->waiting_since && now - rx->waiting_since >= WAIT_WARN_FIRST_US
      && (!rx->last_wait_warn
          || now - rx->last_wait_warn >= WAIT_WARN_EVERY_US)) {
    rx->last_wait_warn = now;
    post_new (rx, FALSE, SHM_ENGINE_ERROR_OPEN_READ, NULL, "Waiting for a "
        "sender at %s for %.0f s: %s.", rx->cfg.control,
        (now - rx->waiting_since) / (gdouble) G_USEC_PER_SEC, why);
  }
  if (rx->cfg.timeout_us > 0 && now - rx->waiting_since >= rx->cfg.timeout_us) {
    post_new (rx, TRUE, SHM_ENGINE_ERROR_OPEN_READ, why, "No sender at %s "
        "after %.1f s: start a shmsink with path=%s, or raise timeout.",
        rx->cfg.control, rx->cfg.timeout_us / (gdouble) G_USEC_PER_SEC,
        rx->cfg.path);
    return;
  }
  schedule_connect (rx, delay_ms);
}

/* A connection to a sender: the handshake starts with our hello. */
static void
connected (ShmReceiver * rx, ShmConn * conn)
{
  rx->conn = conn;
  shm_conn_set_max_payload (rx->conn, 0);
  g_mutex_lock (&rx->lock);
  rx->epoch++;
  g_mutex_unlock (&rx->lock);
  shm_conn_start (rx->conn, rx->loop.context, &conn_callbacks, rx);
  rx->state = CONN_AWAIT_MMAP;
  rx->said_waiting = FALSE;
  rx->said_no_rings = FALSE;
  rx->waiting_since = 0;
  rx->last_wait_warn = 0;
  rx->last_message = rx->handshake_since = g_get_monotonic_time ();
  g_mutex_lock (&rx->lock);
  rx->reported_at = 0;
  g_mutex_unlock (&rx->lock);
  rx->stalled = FALSE;
  send_hello (rx);
}

/* control=ring, a lane claimed: the sender's ack makes it a connection. */
static void
ring_check_ack (ShmReceiver * rx)
{
  gboolean stale;

  if (shm_ring_acked (rx->ring_area, &rx->ring_geo, rx->ring_lane, rx->ring_id)) {
    g_autofree gchar *desc = g_strdup_printf ("in-band lane %u of %s",
        rx->ring_lane, rx->cfg.path);
    ShmConn *conn = shm_conn_new_ring (rx->ring_area, &rx->ring_geo,
        rx->ring_lane, rx->ring_id, FALSE, desc);
    /* the connection gives the lane back when it closes */
    rx->watch_area = g_steal_pointer (&rx->ring_area);
    rx->watch_session = rx->ring_geo.session_id;
    rx->watch_beat = shm_area_peek_heartbeat (rx->watch_area);
    connected (rx, conn);
    rx->watch_beat_at = rx->handshake_since;
    return;
  }
  if (shm_ring_claimed (rx->ring_area, &rx->ring_geo, rx->ring_lane,
          rx->ring_id)
      && g_get_monotonic_time () - rx->ring_claimed_at <
      rx->cfg.peer_timeout_us) {
    schedule_connect (rx, RING_ACK_POLL_MS);
    return;
  }
  /* The sender set the area up again (our claim is gone), or it does not
   * serve the rings, or it is gone: claim again later. */
  stale = shm_area_peek_heartbeat (rx->ring_area) == rx->ring_claim_beat;
  ring_abandon (rx);
  keep_waiting (rx, stale ? "the area's session is stale: its sender's "
      "heartbeat has not moved since this receiver claimed an in-band lane "
      "(the sender was killed or hangs; a new shmsink on the same memory "
      "takes its place)" : "the sender did not take this receiver's in-band "
      "lane (is it a shmsink with control=ring?)", RETRY_MS);
}

/* control=ring: the area must hold a sender's header with rings. */
static ShmArea *
ring_open (ShmReceiver * rx, ShmGeometry * geo)
{
  g_autoptr (GError) err = NULL;
  ShmArea *area = shm_area_open (rx->cfg.path, rx->cfg.allow_symlink
      ? SHM_OPEN_ALLOW_SYMLINK : 0, &err);

  if (!area) {
    /* (an empty file: its sender is creating it) */
    if (g_error_matches (err, SHM_AREA_ERROR, SHM_AREA_ERROR_NOT_FOUND)
        || g_error_matches (err, SHM_AREA_ERROR, SHM_AREA_ERROR_EMPTY))
      keep_waiting (rx, err->message, RETRY_MS);
    else
      post_new (rx, TRUE, g_error_matches (err, SHM_AREA_ERROR,
              SHM_AREA_ERROR_PERMISSION) ? SHM_ENGINE_ERROR_OPEN_READ
          : SHM_ENGINE_ERROR_READ, NULL, "%s", err->message);
    return NULL;
  }
  if (!shm_area_read_header (area, geo, &err)) {
    if (g_error_matches (err, SHM_AREA_ERROR, SHM_AREA_ERROR_BAD_MAGIC))
      keep_waiting (rx, "the memory holds no gst-shm area: no shmsink has "
          "set it up yet, or it is not the memory the sender uses (a wrong "
          "BAR, or QEMU's memory backend without share=on)", RETRY_MS);
    else
      post_new (rx, TRUE, SHM_ENGINE_ERROR_READ, NULL, "%s", err->message);
    shm_area_unref (area);
    return NULL;
  }
  if (geo->ring_size < SHM_RING_REGION_SIZE) {
    if (!rx->said_no_rings) {
      rx->said_no_rings = TRUE;
      post_new (rx, FALSE, SHM_ENGINE_ERROR_READ, NULL, "The area \"%s\" "
          "has no in-band control rings: its sender does not use "
          "control=ring (both sides need the same control); waiting.",
          rx->cfg.path);
    }
    shm_area_unref (area);
    keep_waiting (rx, "the area has no in-band rings", RETRY_MS);
    return NULL;
  }
  return area;
}

/* control=ring: claims a lane of the area's rings, then waits for the
 * sender to acknowledge it. */
static void
try_connect_ring (ShmReceiver * rx)
{
  g_autoptr (GError) err = NULL;
  ShmGeometry geo;
  ShmArea *area;
  guint64 id = 0;
  guint lane;

  if (rx->ring_area) {
    ring_check_ack (rx);
    return;
  }
  area = ring_open (rx, &geo);
  if (!area)
    return;
  while (id == 0)
    shm_random_bytes (&id, sizeof id, NULL);
  if (!shm_ring_claim (area, &geo, id, &lane, &err)) {
    shm_area_unref (area);
    keep_waiting (rx, err->message, RETRY_MS);
    return;
  }
  rx->ring_area = area;
  rx->ring_geo = geo;
  rx->ring_lane = lane;
  rx->ring_id = id;
  rx->ring_claimed_at = g_get_monotonic_time ();
  rx->ring_claim_beat = shm_area_peek_heartbeat (area);
  schedule_connect (rx, RING_ACK_POLL_MS);
}

static gboolean
try_connect (gpointer user_data)
{
  ShmReceiver *rx = user_data;
  g_autoptr (GError) err = NULL;
  GSocket *sock;
  gchar *peer;

  g_clear_pointer (&rx->retry_source, g_source_unref);
  if (rx->addr.kind == SHM_ADDRESS_RING) {
    try_connect_ring (rx);
    return G_SOURCE_REMOVE;
  }
  sock = shm_address_connect (&rx->addr, &err);
  if (!sock) {
    if (!g_error_matches (err, G_IO_ERROR, G_IO_ERROR_NOT_FOUND)
        && !g_error_matches (err, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED)
        && !g_error_matches (err, G_IO_ERROR, G_IO_ERROR_TIMED_OUT)
        && !g_error_matches (err, G_IO_ERROR, G_IO_ERROR_HOST_UNREACHABLE)
        && !g_error_matches (err, G_IO_ERROR, G_IO_ERROR_NETWORK_UNREACHABLE))
      post_new (rx, TRUE, SHM_ENGINE_ERROR_OPEN_READ, NULL, "Could not "
          "connect to the sender at %s: %s", rx->cfg.control, err->message);
    else {
      g_autofree gchar *why = g_strdup_printf ("%s (no shmsink listens "
          "there yet)", err->message);
      keep_waiting (rx, why, RETRY_MS);
    }
    return G_SOURCE_REMOVE;
  }
  peer = shm_socket_describe (sock, TRUE);
  if (g_str_equal (peer, "a unix socket peer") || g_str_has_prefix (peer,
          "process ")) {
    g_free (peer);
    peer = g_strdup (rx->cfg.control);
  }
  connected (rx, shm_conn_new_socket (sock, peer));
  g_free (peer);
  return G_SOURCE_REMOVE;
}

static void
schedule_connect (ShmReceiver * rx, guint delay_ms)
{
  if (rx->retry_source)
    return;
  if (rx->waiting_since == 0)
    rx->waiting_since = g_get_monotonic_time ();
  rx->retry_source = g_timeout_source_new (delay_ms);
  g_source_set_callback (rx->retry_source, try_connect, rx, NULL);
  g_source_attach (rx->retry_source, rx->loop.context);
}

/* The sender has until HANDSHAKE_TIMEOUT_US to answer our token answer,
 * and says something (pings) every tick while we wait for its area. */
static gboolean
handshake_timed_out (ShmReceiver * rx, gint64 now)
{
  g_autofree gchar *reason = NULL;
  g_autofree gchar *peer = NULL;

  if (rx->state == CONN_AWAIT_READY
      && now - rx->handshake_since > HANDSHAKE_TIMEOUT_US)
    reason = g_strdup_printf ("it did not complete the handshake in %d s",
        (gint) (HANDSHAKE_TIMEOUT_US / G_USEC_PER_SEC));
  else if (rx->state == CONN_AWAIT_MMAP
      && now - rx->last_message > rx->cfg.peer_timeout_us)
    reason = g_strdup_printf ("it did not answer this receiver's hello in "
        "%.1f s", (now - rx->last_message) / (gdouble) G_USEC_PER_SEC);
  else
    return FALSE;
  peer = g_strdup (shm_conn_get_description (rx->conn));
  fail (rx, "timeout", reason);
  lost (rx, CONN_AWAIT_MMAP, peer, "stopped answering", reason);
  return TRUE;
}

/* control=ring: no kernel tells us that the sender died; its heartbeat in
 * the area does (it beats every tick), and the area's session (a new
 * sender sets the area up again). */
static gboolean
ring_sender_gone (ShmReceiver * rx, gint64 now)
{
  g_autofree gchar *reason = NULL;
  g_autofree gchar *peer = NULL;
  ConnState state = rx->state;
  guint64 session, beat;

  if (!rx->watch_area)
    return FALSE;
  if (!shm_area_peek_session (rx->watch_area, &session))
    reason = g_strdup ("the sender took its area down without a bye");
  else if (session != rx->watch_session)
    reason = g_strdup ("the area was set up again (a new session)");
  else {
    beat = shm_area_peek_heartbeat (rx->watch_area);
    if (beat != rx->watch_beat) {
      rx->watch_beat = beat;
      rx->watch_beat_at = now;
      return FALSE;
    }
    if (now - rx->watch_beat_at <= rx->cfg.peer_timeout_us)
      return FALSE;
    reason = g_strdup_printf ("its heartbeat in the area stopped %"
        G_GINT64_FORMAT " ms ago: it was killed or hangs",
        (now - rx->watch_beat_at) / 1000);
  }
  peer = g_strdup (shm_conn_get_description (rx->conn));
  disconnect (rx);
  lost (rx, state, peer, "went away", reason);
  return TRUE;
}

/* Someone that may write the file (the sender, most likely) truncated
 * the area under this receiver: the pages past its end read as zeros
 * (shmguard.h).  Nothing it says can be trusted any more. */
static gboolean
area_truncated (ShmReceiver * rx)
{
  g_autofree gchar *msg = NULL;
  gboolean truncated;

  g_mutex_lock (&rx->lock);
  truncated = rx->cur && rx->cur->area
      && shm_area_was_truncated (rx->cur->area);
  g_mutex_unlock (&rx->lock);
  if (!truncated)
    return FALSE;
  msg = g_strdup_printf ("The area \"%s\" was truncated under this "
      "receiver (by its sender, or another process that may write the "
      "file): what lay past its new end read as zeros", rx->cfg.path);
  fail_fatal (rx, SHM_ENGINE_ERROR_READ, "protocol", msg, NULL);
  return TRUE;
}

static gint
cmp_u64 (gconstpointer a, gconstpointer b)
{
  guint64 x = *(const guint64 *) a, y = *(const guint64 *) b;

  return x < y ? -1 : x > y;
}

/* Every SHM_REPORT_INTERVAL_MS while ready: what happened since the last
 * report (docs/protocol.md, "report"). */
static void
send_report (ShmReceiver * rx, gint64 now)
{
  ShmReport r = { 0, };
  ShmReceiverStats *st = &rx->stats, *last = &rx->reported;

  if (rx->state != CONN_READY)
    return;
  g_mutex_lock (&rx->lock);
  if (!rx->reported_at) {
    rx->reported_at = now;
    *last = *st;
    rx->n_latencies = 0;
    g_mutex_unlock (&rx->lock);
    return;
  }
  if (now - rx->reported_at < SHM_REPORT_INTERVAL_MS * 1000 - TICK_MS * 500) {
    g_mutex_unlock (&rx->lock);
    return;
  }
  r.interval_ns = MIN ((now - rx->reported_at) * NS_PER_US,
      (gint64) SHM_REPORT_MAX_LATENCY_NS);
  r.received = st->frames_received - last->frames_received;
  r.dropped = st->frames_dropped - last->frames_dropped;
  r.missed = st->frames_missed - last->frames_missed;
  if (rx->n_latencies) {
    qsort (rx->latencies, rx->n_latencies, sizeof (guint64), cmp_u64);
    r.latency_p50_ns = MIN (rx->latencies[rx->n_latencies / 2],
        SHM_REPORT_MAX_LATENCY_NS);
    r.latency_max_ns = MIN (rx->latencies[rx->n_latencies - 1],
        SHM_REPORT_MAX_LATENCY_NS);
  }
  r.queued = rx->queued;
  r.qos_events = rx->qos_events;
  r.qos_proportion = rx->qos_proportion;
  r.qos_jitter_ns = CLAMP (rx->qos_jitter, -(gint64) SHM_REPORT_MAX_LATENCY_NS,
      (gint64) SHM_REPORT_MAX_LATENCY_NS);
  rx->qos_events = 0;
  rx->n_latencies = 0;
  *last = *st;
  rx->reported_at = now;
  g_mutex_unlock (&rx->lock);
  shm_conn_send (rx->conn, SHM_MSG_REPORT, shm_report_encode (&r), NULL);
}

static gboolean
on_tick (gpointer user_data)
{
  ShmReceiver *rx = user_data;
  gint64 now = g_get_monotonic_time ();

  if (rx->state == CONN_NONE || area_truncated (rx)
      || handshake_timed_out (rx, now) || ring_sender_gone (rx, now))
    return G_SOURCE_CONTINUE;
  shm_conn_send (rx->conn, SHM_MSG_PING, NULL, NULL);
  send_report (rx, now);
  g_mutex_lock (&rx->lock);
  if (rx->paused_conn)
    rx->last_message = now;     /* not reading: silence is ours */
  g_mutex_unlock (&rx->lock);
  if (rx->state == CONN_READY && !rx->stalled
      && now - rx->last_message > rx->cfg.peer_timeout_us) {
    g_autofree gchar *reason = g_strdup_printf ("no message for %"
        G_GINT64_FORMAT " ms", (now - rx->last_message) / 1000);
    rx->stalled = TRUE;
    event (rx, "stalled", shm_conn_get_description (rx->conn),
        rx->session_id, reason);
  }
  return G_SOURCE_CONTINUE;
}

/* --- lifetime ------------------------------------------------------------- */

ShmReceiver *
shm_receiver_new (const ShmReceiverConfig * c,
    const ShmReceiverCallbacks * cb, gpointer user_data)
{
  ShmReceiver *rx = g_new0 (ShmReceiver, 1);

  rx->cb = *cb;
  rx->user_data = user_data;
  rx->cfg = *c;
  rx->cfg.path = g_strdup (c->path);
  rx->cfg.control = g_strdup (c->control);
  rx->cfg.secret = g_strdup (c->secret);
  g_mutex_init (&rx->lock);
  g_queue_init (&rx->items);
  g_queue_init (&rx->caps);
  return rx;
}

void
shm_receiver_free (ShmReceiver * rx)
{
  shm_receiver_stop (rx);
  g_free ((gchar *) rx->cfg.path);
  g_free ((gchar *) rx->cfg.control);
  g_free ((gchar *) rx->cfg.secret);
  g_mutex_clear (&rx->lock);
  g_free (rx);
}

/**
 * shm_receiver_start:
 *
 * Starts the control thread, which looks for a sender at once.  The control
 * address must parse (the element checks it before).
 */
void
shm_receiver_start (ShmReceiver * rx)
{
  if (!shm_address_parse (rx->cfg.control, &rx->addr, NULL))
    g_return_if_reached ();
  rx->state = CONN_NONE;
  rx->waiting_since = g_get_monotonic_time ();
  rx->said_waiting = rx->said_no_rings = FALSE;
  g_mutex_lock (&rx->lock);
  rx->flushing = rx->fatal = rx->got_eos = FALSE;
  memset (&rx->stats, 0, sizeof rx->stats);
  rx->missed_warn = rx->missed_said = 0;
  g_mutex_unlock (&rx->lock);
  rx->applied_epoch = 0;
  rx->applied_gen = 0;
  rx->have_seq = FALSE;
  rx->discont = FALSE;
  memset (&rx->clock, 0, sizeof rx->clock);

  shm_loop_init (&rx->loop);
  rx->tick_source = shm_loop_add_timeout (&rx->loop, TICK_MS, on_tick, rx);
  schedule_connect (rx, 0);
  shm_loop_run (&rx->loop, "shmsrc-control");
}

static void
clear_items_locked (ShmReceiver * rx)
{
  InlineItem *item;
  CapsEntry *e;

  while ((item = g_queue_pop_head (&rx->items)))
    item_free (item);
  while ((e = g_queue_pop_head (&rx->caps)))
    caps_entry_free (rx, e);
}

/* Stops the control thread and says bye to the sender. */
void
shm_receiver_stop (ShmReceiver * rx)
{
  if (!rx->loop.thread)
    return;
  shm_loop_stop (&rx->loop);
  if (rx->conn)
    shm_send_bye (rx->conn, "shmsrc stopped");
  disconnect (rx);
  shm_source_clear (&rx->retry_source);
  shm_source_clear (&rx->tick_source);
  shm_source_clear (&rx->discard_source);
  shm_loop_clear (&rx->loop);
  shm_address_clear (&rx->addr);

  g_mutex_lock (&rx->lock);
  clear_items_locked (rx);
  g_clear_pointer (&rx->cur, session_unref);
  g_clear_pointer (&rx->next, session_unref);
  g_clear_pointer (&rx->paused_conn, shm_conn_unref);
  rx->wait_bell = NULL;
  g_mutex_unlock (&rx->lock);
}

/* --- streaming thread ----------------------------------------------------- */

/* With the lock: the connection paused for inline frames is read again
 * once downstream has taken them. */
static void
resume_reading_locked (ShmReceiver * rx)
{
  if (rx->paused_conn && rx->items.length < INLINE_MAX_PENDING) {
    shm_conn_set_reading (rx->paused_conn, TRUE);
    g_clear_pointer (&rx->paused_conn, shm_conn_unref);
  }
}

/* With the lock: moves on to the next session once the current one has
 * nothing left (its sender publishes nothing more there once it announced
 * the next), or at once when its connection ended. */
static void
switch_session_locked (ShmReceiver * rx)
{
  ShmRxSession *s = rx->cur;
  guint32 pending = 0;

  if (s && !g_atomic_int_get (&s->dead)) {
    if (!rx->next)
      return;
    if (s->area && shm_chan_rx_pending (&s->chan, &pending, NULL)
        && pending > 0)
      return;
  }
  if (s && g_atomic_int_get (&s->dead) && !rx->next) {
    g_clear_pointer (&rx->cur, session_unref);
    return;
  }
  if (rx->next) {
    if (rx->cur)
      session_unref (rx->cur);
    rx->cur = g_steal_pointer (&rx->next);
    memset (&rx->clock, 0, sizeof rx->clock);
    /* (another session numbers its frames afresh) */
    if (rx->have_seq)
      rx->discont = TRUE;
    rx->have_seq = FALSE;
    rx->caps_wait_since = 0;
  }
}

typedef enum
{
  TAKE_NONE,
  TAKE_RECORD,
  TAKE_ERROR,
} TakeResult;

/* besides ShmRecvResult: look again now, or after a sleep */
#define AGAIN (-1)
#define WAIT (-2)

/* Whether the area still holds @s's session (a sink that sets the same
 * memory up again, as after its predecessor was killed, replaces it in
 * place; a file a sink created is replaced by a new one instead, and the
 * mapping keeps the old); when not, @s is dead from now on. */
static gboolean
session_current (ShmRxSession * s)
{
  guint64 id;

  if (!s->in_place || (shm_area_peek_session (s->area, &id)
          && id == s->geo.session_id))
    return TRUE;
  g_atomic_int_set (&s->dead, 1);
  return FALSE;
}

/* With the lock: the oldest record of the current session (not consumed:
 * shm_take_pop_locked does), copied out once and decoded.  @pending: the
 * records waiting, this one included. */
static TakeResult
peek_locked (ShmReceiver * rx, ShmRecord * rec, InlineItem ** item,
    guint32 * pending, GError ** error)
{
  ShmRxSession *s = rx->cur;
  guint8 bytes[SHM_RECORD_SIZE];

  *item = g_queue_peek_head (&rx->items);
  if (*item) {
    *rec = (*item)->record;
    *pending = rx->items.length;
    return TAKE_RECORD;
  }
  if (!s || !s->area || g_atomic_int_get (&s->dead))
    return TAKE_NONE;
  if (!shm_chan_rx_pending (&s->chan, pending, error)) {
    /* (a new sink set the same memory up again: not an error of this
     * session's sender, which is gone; the control thread says "lost") */
    if (!session_current (s)) {
      g_clear_error (error);
      return TAKE_NONE;
    }
    return TAKE_ERROR;
  }
  if (*pending == 0)
    return TAKE_NONE;
  shm_chan_rx_peek (&s->chan, bytes);
  if (!session_current (s))
    return TAKE_NONE;
  return shm_record_decode (bytes, rec, error) ? TAKE_RECORD : TAKE_ERROR;
}

static void
pop_locked (ShmReceiver * rx, InlineItem * item)
{
  if (item) {
    g_queue_pop_head (&rx->items);
    item_free (item);
    resume_reading_locked (rx);
  } else {
    shm_chan_rx_pop (&rx->cur->chan);
  }
}

/* Caps of @rec's generation: SHM_RECV_CAPS with them when they are new,
 * SHM_RECV_FRAME when they apply already, or WAIT when they have not come
 * yet (the caps message may still be on its way). */
static gint
check_caps_locked (ShmReceiver * rx, const ShmRecord * rec,
    ShmRxSession * s, gpointer * caps, GError ** error)
{
  CapsEntry *e;

  if (rx->applied_epoch == s->epoch && rec->caps_gen == rx->applied_gen)
    return SHM_RECV_FRAME;
  while ((e = g_queue_peek_head (&rx->caps))
      && (e->epoch < s->epoch || (e->epoch == s->epoch
              && e->gen < rec->caps_gen))) {
    g_queue_pop_head (&rx->caps);
    caps_entry_free (rx, e);
  }
  if (e && e->epoch == s->epoch && e->gen == rec->caps_gen) {
    g_queue_pop_head (&rx->caps);
    rx->applied_epoch = e->epoch;
    rx->applied_gen = e->gen;
    rx->layout = e->layout;
    *caps = e->handle;
    g_free (e);
    return SHM_RECV_CAPS;
  }
  if (rx->applied_epoch == s->epoch && rec->caps_gen < rx->applied_gen) {
    g_set_error (error, SHM_PROTO_ERROR, SHM_PROTO_ERROR_INVALID,
        "a frame of caps generation %u after generation %u", rec->caps_gen,
        rx->applied_gen);
    return SHM_RECV_ERROR;
  }
  return WAIT;
}

/* A protocol error in what the streaming thread read: the sender is told,
 * the element posts it. */
static ShmRecvResult
stream_error (ShmReceiver * rx, const GError * err)
{
  g_autofree gchar *msg = g_strdup_printf ("The sender sent an invalid "
      "frame: %s", err->message);
  ShmConn *conn = NULL;

  g_mutex_lock (&rx->lock);
  if (rx->cur) {
    conn = shm_conn_ref (rx->cur->conn);
    session_kill (rx->cur);
  }
  g_mutex_unlock (&rx->lock);
  if (conn) {
    shm_send_error (conn, "protocol", msg);
    shm_conn_unref (conn);
  }
  post_new (rx, TRUE, SHM_ENGINE_ERROR_READ, NULL, "%s", msg);
  return SHM_RECV_ERROR;
}

/* Ring mode: the next look, from the frame clock.  Sleeps until just
 * before the next frame is due, then looks every POLL_STEP_NS around it;
 * when frames stop coming, backs off to POLL_MAX_NS. */
static gint64
poll_timeout (ShmReceiver * rx)
{
  FrameClock *c = &rx->clock;
  gint64 now = g_get_monotonic_time () * NS_PER_US, due, margin;

  if (c->last_ref == 0 || c->interval == 0) {
    c->idle_step = CLAMP (c->idle_step * 2, POLL_STEP_NS, POLL_MAX_NS);
    return c->idle_step;
  }
  due = c->last_ref + c->interval;
  margin = CLAMP (3 * c->jitter + 250 * NS_PER_US, 250 * NS_PER_US,
      c->interval / 2);
  if (now < due - margin)
    return due - margin - now;
  if (now < due + c->interval / 2 + margin)
    return POLL_STEP_NS;
  c->idle_step = CLAMP (c->idle_step * 2, POLL_STEP_NS, POLL_MAX_NS);
  return c->idle_step;
}

/* Whether spinning serves: at least half of the last windows (up to 32)
 * saw their frame come while the receiver spun.  When it does not (the
 * frames come while the receiver still sleeps towards the window, on a
 * busy machine), one frame in 16 gets a window, to see whether that has
 * changed. */
static gboolean
spin_serves (FrameClock * c)
{
  guint n = MIN (c->n_outcomes, 32);
  guint32 mask = n == 32 ? G_MAXUINT32 : (1u << n) - 1;

  return n < 8 || 2 * (guint) __builtin_popcount (c->outcomes & mask) >= n
      || c->n_delays % 16 == 0;
}

static gint
cmp_ns (gconstpointer a, gconstpointer b)
{
  gint64 x = *(const gint64 *) a, y = *(const gint64 *) b;

  return x < y ? -1 : x > y;
}

/* The spin window of the frame after @rec, when both sides share a clock:
 * the delays of the last SPIN_HISTORY frames from their due time to their
 * publication say where the next one will likely land; the window covers
 * the most of them that fit in @budget (less the time by which it opens
 * early: twice the mean lateness of our own timed sleeps), and is given
 * only when that is at least half of them. */
static void
plan_spin (FrameClock * c, const ShmRecord * rec, gint64 ref,
    gboolean same_boot, gint64 budget)
{
  gint64 d[SPIN_HISTORY], early, width;
  guint n, i, j = 0, best = 0, best_i = 0;

  if (c->planned) {
    c->outcomes = (c->outcomes << 1) | (c->caught ? 1 : 0);
    c->n_outcomes++;
  }
  c->planned = c->caught = FALSE;
  c->spin_start = c->spin_end = 0;
  /* (a due time within a second of the publication, or none) */
  if (budget <= 0 || !same_boot
      || rec->mono_pts > (guint64) ref + SPIN_MAX_DELAY_NS
      || (gint64) rec->mono_pts < ref - SPIN_MAX_DELAY_NS)
    return;
  c->delays[c->n_delays++ % SPIN_HISTORY] = ref - (gint64) rec->mono_pts;
  budget = MIN (budget, c->interval / 32);
  early = MIN (2 * c->timer_late, budget / 2);
  width = budget - early - 2 * SPIN_MIN_NS;
  n = MIN (c->n_delays, SPIN_HISTORY);
  if (width <= 0 || n < SPIN_HISTORY / 4)
    return;
  memcpy (d, c->delays, n * sizeof d[0]);
  qsort (d, n, sizeof d[0], cmp_ns);
  for (i = 0; i < n; i++) {
    j = MAX (i, j);
    while (j + 1 < n && d[j + 1] <= d[i] + width)
      j++;
    if (j - i + 1 > best) {
      best = j - i + 1;
      best_i = i;
    }
  }
  if (2 * best < n || !spin_serves (c))
    return;
  c->planned = TRUE;
  c->spin_start = (gint64) rec->mono_pts + c->interval + d[best_i]
      - SPIN_MIN_NS - early;
  c->spin_end = (gint64) rec->mono_pts + c->interval + d[best_i + best - 1]
      + SPIN_MIN_NS;
}

/* A frame came; @ref is when it was published on our clock (its send time
 * when @same_boot, its arrival otherwise); @spin_ns: the receiver's spin
 * budget (0: it does not spin). */
static void
clock_update (ShmReceiver * rx, const ShmRecord * rec, gint64 ref,
    gboolean same_boot, gint64 spin_ns)
{
  FrameClock *c = &rx->clock;
  gint64 interval = 0, err;
  gboolean declared = TRUE;

  if (rec->duration != G_MAXUINT64 && rec->duration > 0
      && rec->duration < G_USEC_PER_SEC * NS_PER_US)
    interval = rec->duration;
  else if (rx->layout.frame_duration > 0)
    interval = rx->layout.frame_duration;
  else {
    declared = FALSE;
    if (c->last_ref && ref > c->last_ref)
      interval = c->interval ? (3 * c->interval + (ref - c->last_ref)) / 4
          : ref - c->last_ref;
  }
  if (c->last_ref && c->interval) {
    err = ABS (ref - (c->last_ref + c->interval));
    if (err < c->interval)
      c->jitter = (7 * c->jitter + err) / 8;
  }
  c->interval = interval;
  c->last_ref = ref;
  c->idle_step = 0;
  plan_spin (c, rec, ref, same_boot, declared ? spin_ns : 0);
}

/* Futex or doorbell mode: how long to sleep before the next frame's spin
 * window opens (0: it is open until @end; -1: none, or it has closed). */
static gint64
spin_window (ShmReceiver * rx, gint64 now, gint64 * end)
{
  FrameClock *c = &rx->clock;

  if (c->spin_start == 0 || now >= c->spin_end)
    return -1;
  *end = c->spin_end;
  return MAX (c->spin_start - now, 0);
}

/* Looks at @s's channel until it has a record, something rings the local
 * bell (flushing, a new session, an error) or @end passes.  Called with
 * the lock, returns without it. */
static void
spin_locked (ShmReceiver * rx, ShmRxSession * s, gint64 end)
{
  guint32 seen = shm_bell_read (&rx->local_bell), pending = 0;
  guint i;

  rx->wait_bell = &rx->local_bell;
  session_ref (s);
  g_mutex_unlock (&rx->lock);
  do {
    for (i = 0; i < 64; i++) {
      if (!shm_chan_rx_pending (&s->chan, &pending, NULL) || pending > 0
          || shm_bell_read (&rx->local_bell) != seen)
        goto done;
      shm_cpu_relax ();
    }
  } while (g_get_monotonic_time () * NS_PER_US < end);
done:
  g_mutex_lock (&rx->lock);
  rx->wait_bell = NULL;
  rx->stats.spins++;
  if (!pending && g_get_monotonic_time () * NS_PER_US >= end)
    rx->clock.spin_start = 0;
  rx->clock.caught |= pending > 0;
  g_mutex_unlock (&rx->lock);
  session_unref (s);
}

/* A timed sleep until a spin window ended at @now: how late it woke. */
static void
timer_woke (FrameClock * c, gint64 now)
{
  if (c->spin_start && now >= c->spin_start)
    c->timer_late = (7 * c->timer_late + MIN (now - c->spin_start,
            c->spin_end - c->spin_start)) / 8;
}

/* Sleeps until the current session may have something, or an event (at
 * most until the next spin window opens, or the next look in ring mode).
 * Called with the lock, returns without it. */
static void
sleep_locked (ShmReceiver * rx)
{
  ShmRxSession *s = rx->cur;
  gboolean flag = FALSE, futex = FALSE;
  gint64 timeout = -1, end = 0;
  guint32 *bell, seen, pending = 0;

  if (s && s->area && !g_atomic_int_get (&s->dead) && !rx->items.length) {
    flag = s->wake == SHM_WAKE_FUTEX || s->wake == SHM_WAKE_DOORBELL;
    futex = s->wake == SHM_WAKE_FUTEX;
    if (s->wake == SHM_WAKE_POLL)
      timeout = poll_timeout (rx);
    else if (flag && !rx->caps_wait_since
        && (timeout = spin_window (rx, g_get_monotonic_time () * NS_PER_US,
                &end)) == 0) {
      spin_locked (rx, s, end);
      return;
    }
  }
  bell = futex ? shm_chan_bell (s->chan.base) : &rx->local_bell;
  rx->wait_bell = bell;
  seen = shm_bell_read (bell);
  /* (a record that waits for its caps: the caps' arrival rings) */
  flag = flag && !rx->caps_wait_since;
  if (flag) {
    /* say that we sleep, then one more look */
    shm_chan_rx_set_waiting (&s->chan, TRUE);
    if (!shm_chan_rx_pending (&s->chan, &pending, NULL) || pending > 0) {
      shm_chan_rx_set_waiting (&s->chan, FALSE);
      rx->wait_bell = NULL;
      g_mutex_unlock (&rx->lock);
      return;
    }
  }
  if (rx->caps_wait_since)
    timeout = 10 * NS_PER_US * 1000;
  /* (another thread may switch sessions meanwhile: @bell may lie in this
   * one's area) */
  if (s)
    session_ref (s);
  g_mutex_unlock (&rx->lock);
  shm_bell_wait (bell, seen, timeout);
  g_mutex_lock (&rx->lock);
  rx->wait_bell = NULL;
  /* (a dead session's channel may be another receiver's now) */
  if (flag && !g_atomic_int_get (&s->dead))
    shm_chan_rx_set_waiting (&s->chan, FALSE);
  if (s)
    session_unref (s);
  if (end)
    timer_woke (&rx->clock, g_get_monotonic_time () * NS_PER_US);
  rx->stats.wakeups++;
  g_mutex_unlock (&rx->lock);
}

/* A live receiver whose downstream falls behind drops its oldest frames
 * rather than keep the sender's slots. */
static gboolean
too_many_locked (ShmReceiver * rx, guint32 pending)
{
  return rx->cfg.live && rx->cur && pending > MAX (1, rx->cur->geo.n_slots - 2);
}

/* Whether @b's tile map follows @a's, on the same grid. */
static gboolean
damage_follows (const ShmRecord * a, const ShmRecord * b)
{
  return (b->record_flags & SHM_RECORD_FLAG_DAMAGE)
      && b->damage_base == a->seq && b->caps_gen == a->caps_gen
      && b->tile == a->tile && b->cols == a->cols && b->rows == a->rows;
}

/* A frame of the area dropped: its tile map joins those dropped before
 * it, when they follow each other.  With the lock. */
static void
note_dropped_damage_locked (ShmReceiver * rx, const ShmRecord * rec)
{
  if (!(rec->record_flags & SHM_RECORD_FLAG_DAMAGE)
      || rec->damage_base == G_MAXUINT64) {
    rx->dropped_damage = FALSE;
  } else if (rx->dropped_damage && damage_follows (&rx->dropped, rec)) {
    shm_tile_map_or (&rx->dropped.damage, &rec->damage);
    rx->dropped.seq = rec->seq;
  } else {
    rx->dropped = *rec;
    rx->dropped_damage = TRUE;
  }
}

/* A frame of the area delivered after frames dropped: its map covers
 * theirs too, relative to the frame before them.  With the lock. */
static void
join_dropped_damage_locked (ShmReceiver * rx, ShmRecord * rec)
{
  if (rx->dropped_damage && damage_follows (&rx->dropped, rec)) {
    rec->damage_base = rx->dropped.damage_base;
    shm_tile_map_or (&rec->damage, &rx->dropped.damage);
  }
  rx->dropped_damage = FALSE;
}

static ShmRxFrame *
make_frame_locked (ShmReceiver * rx, const ShmRecord * rec, InlineItem * item)
{
  ShmRxFrame *f = g_new0 (ShmRxFrame, 1);
  ShmRxSession *s = item ? item->session : rx->cur;
  guint64 offset;
  gint64 now, ref;

  f->record = *rec;
  if (!item)
    join_dropped_damage_locked (rx, &f->record);
  f->session = session_ref (s);
  f->same_boot = s->same_boot;
  if (item) {
    f->payload = g_bytes_ref (item->payload);
    f->data = g_bytes_get_data (f->payload, NULL);
  } else {
    shm_geometry_slot_range (&s->geo, rec->slot, &offset);
    f->data = shm_area_get_data (s->area) + offset + rec->offset;
    f->in_area = TRUE;
    f->from_bar = s->bar;
  }
  f->discont = rx->discont || (rx->have_seq && rec->seq != rx->next_seq);
  /* (a frame number from the past: a record out of order, not counted) */
  if (rx->have_seq && rec->seq - rx->next_seq - 1 < G_MAXUINT32) {
    rx->stats.frames_missed += rec->seq - rx->next_seq;
    rx->missed_warn |= MISSED_BY_SENDER;
  }
  rx->discont = FALSE;
  rx->next_seq = rec->seq + 1;
  rx->have_seq = TRUE;
  rx->stats.frames_received++;
  /* (the sender's send time, when it is one: at most a second old) */
  now = g_get_monotonic_time () * NS_PER_US;
  ref = now;
  if (s->same_boot && rec->send_time <= (guint64) now
      && now - (gint64) rec->send_time < G_USEC_PER_SEC * NS_PER_US) {
    ref = (gint64) rec->send_time;
    rx->stats.last_latency_ns = now - ref;
    if (rx->n_latencies < REPORT_LATENCIES)
      rx->latencies[rx->n_latencies++] = now - ref;
  }
  clock_update (rx, rec, ref, ref != now, item || s->wake == SHM_WAKE_POLL
      ? 0 : rx->cfg.spin_ns);
  return f;
}

/* Drops the oldest record (a frame gives its slot back at once). */
static void
drop_oldest_locked (ShmReceiver * rx, const ShmRecord * rec, InlineItem * item)
{
  gboolean area = item == NULL;
  ShmRxSession *s = rx->cur;

  if (area && rec->type == SHM_RECORD_FRAME)
    note_dropped_damage_locked (rx, rec);
  pop_locked (rx, item);
  rx->caps_wait_since = 0;
  if (rec->type == SHM_RECORD_FRAME) {
    rx->stats.frames_dropped++;
    rx->missed_warn |= MISSED_BY_US;
    rx->discont = TRUE;
    rx->next_seq = rec->seq + 1;
    rx->have_seq = TRUE;
    if (area)
      session_release (s, rec->seq, rec->slot);
  }
}

/* With the lock: what to do with the record in front.  Returns a result,
 * or AGAIN or WAIT. */
static gint
handle_record_locked (ShmReceiver * rx, const ShmRecord * rec,
    InlineItem * item, guint32 pending, ShmRxFrame ** frame, gpointer * caps,
    GError ** error)
{
  ShmRxSession *s = item ? item->session : rx->cur;
  gint r;

  if (rec->type == SHM_RECORD_EOS) {
    pop_locked (rx, item);
    rx->caps_wait_since = 0;
    rx->got_eos = TRUE;
    return SHM_RECV_EOS;
  }
  r = check_caps_locked (rx, rec, s, caps, error);
  if (r != SHM_RECV_FRAME) {
    if (r == WAIT && !rx->caps_wait_since)
      rx->caps_wait_since = g_get_monotonic_time ();
    else if (r == WAIT && g_get_monotonic_time () - rx->caps_wait_since
        > rx->cfg.peer_timeout_us) {
      g_set_error (error, SHM_PROTO_ERROR, SHM_PROTO_ERROR_INVALID,
          "a frame of caps generation %u, which never came", rec->caps_gen);
      return SHM_RECV_ERROR;
    }
    return r;
  }
  rx->caps_wait_since = 0;
  if (!shm_record_check_frame (rec, item ? 0 : s->geo.n_slots,
          s->geo.slot_size, &rx->layout, error))
    return SHM_RECV_ERROR;
  if (too_many_locked (rx, pending) && item
      && (rec->record_flags & SHM_RECORD_FLAG_DAMAGE)) {
    /* (counted as dropped; the frame after it is a discontinuity) */
    *frame = make_frame_locked (rx, rec, item);
    (*frame)->apply_only = TRUE;
    pop_locked (rx, item);
    rx->stats.frames_dropped++;
    rx->missed_warn |= MISSED_BY_US;
    rx->discont = TRUE;
    return SHM_RECV_FRAME;
  }
  if (too_many_locked (rx, pending)) {
    drop_oldest_locked (rx, rec, item);
    return AGAIN;
  }
  *frame = make_frame_locked (rx, rec, item);
  pop_locked (rx, item);
  return SHM_RECV_FRAME;
}

/* Frames missed, once for each reason (the stats count them all). */
static void
say_missed (ShmReceiver * rx, guint what)
{
  ShmReceiverStats st;

  shm_receiver_get_stats (rx, &st);
  if (what & MISSED_BY_SENDER)
    post_new (rx, FALSE, SHM_ENGINE_ERROR_READ, NULL, "Frames from %s are "
        "missing (%" G_GUINT64_FORMAT " so far): the sender skipped this "
        "receiver, which did not take its frames in time (too slow, or not "
        "scheduled).", rx->cfg.path, st.frames_missed);
  if (what & MISSED_BY_US)
    post_new (rx, FALSE, SHM_ENGINE_ERROR_READ, NULL, "This receiver drops "
        "frames from %s (%" G_GUINT64_FORMAT " so far): its downstream is too "
        "slow to take them as they come.", rx->cfg.path, st.frames_dropped);
}

/**
 * shm_receiver_next:
 * @frame: (out): with SHM_RECV_FRAME, the frame (shm_rx_frame_free())
 * @caps: (out) (transfer full): with SHM_RECV_CAPS, the element's handle of
 *   the caps of the frames that follow (the caller frees it)
 *
 * Streaming thread: waits for the next frame of the channel (or of the
 * connection, inline), itself: the sender wakes this thread directly.
 */
ShmRecvResult
shm_receiver_next (ShmReceiver * rx, ShmRxFrame ** frame, gpointer * caps)
{
  g_autoptr (GError) err = NULL;
  InlineItem *item;
  ShmRecord rec;
  guint32 pending;
  gint r;

  for (;;) {
    g_mutex_lock (&rx->lock);
    if (rx->flushing || rx->fatal) {
      r = rx->flushing ? SHM_RECV_FLUSHING : SHM_RECV_ERROR;
      g_mutex_unlock (&rx->lock);
      return r;
    }
    switch_session_locked (rx);
    r = WAIT;
    switch (peek_locked (rx, &rec, &item, &pending, &err)) {
      case TAKE_RECORD:
        rx->queued = pending;
        r = handle_record_locked (rx, &rec, item, pending, frame, caps, &err);
        break;
      case TAKE_ERROR:
        r = SHM_RECV_ERROR;
        break;
      case TAKE_NONE:
        break;
    }
    if (r == SHM_RECV_ERROR) {
      g_mutex_unlock (&rx->lock);
      return stream_error (rx, err);
    }
    if (r >= 0) {
      guint say = rx->missed_warn & ~rx->missed_said;
      rx->missed_said |= say;
      g_mutex_unlock (&rx->lock);
      if (say)
        say_missed (rx, say);
      return r;
    }
    if (r == AGAIN)
      g_mutex_unlock (&rx->lock);
    else
      sleep_locked (rx);
  }
}

/* --- control of the streaming side ----------------------------------------- */

/**
 * shm_receiver_note_qos:
 *
 * Any thread: a QoS event from downstream (proportion, jitter in ns), for
 * the next report to the sender.
 */
void
shm_receiver_note_qos (ShmReceiver * rx, gdouble proportion, gint64 jitter)
{
  g_mutex_lock (&rx->lock);
  rx->qos_events++;
  rx->qos_proportion = proportion;
  rx->qos_jitter = jitter;
  g_mutex_unlock (&rx->lock);
}

void
shm_receiver_set_flushing (ShmReceiver * rx, gboolean flushing)
{
  g_mutex_lock (&rx->lock);
  rx->flushing = flushing;
  notify_locked (rx);
  g_mutex_unlock (&rx->lock);
}

/* Gives back every frame that waits (a live source drops what came while
 * it was not running). */
void
shm_receiver_drop_pending (ShmReceiver * rx)
{
  InlineItem *item;
  ShmRecord rec;
  guint32 pending;

  g_mutex_lock (&rx->lock);
  switch_session_locked (rx);
  while (peek_locked (rx, &rec, &item, &pending, NULL) == TAKE_RECORD
      && rec.type == SHM_RECORD_FRAME)
    drop_oldest_locked (rx, &rec, item);
  rx->discont = FALSE;
  g_mutex_unlock (&rx->lock);
}

static gboolean
on_discard (gpointer data)
{
  shm_receiver_drop_pending (data);
  return G_SOURCE_CONTINUE;
}

/**
 * shm_receiver_set_discarding:
 *
 * A live source that is not playing produces nothing: while @discarding,
 * the control thread gives back the frames that come, so that the sender
 * never waits for a receiver that is paused.
 */
void
shm_receiver_set_discarding (ShmReceiver * rx, gboolean discarding)
{
  g_mutex_lock (&rx->lock);
  rx->discarding = discarding;
  g_mutex_unlock (&rx->lock);
  if (!rx->loop.context)
    return;
  if (discarding && !rx->discard_source) {
    rx->discard_source = g_timeout_source_new (DISCARD_MS);
    g_source_set_callback (rx->discard_source, on_discard, rx, NULL);
    g_source_attach (rx->discard_source, rx->loop.context);
  } else if (!discarding) {
    shm_source_clear (&rx->discard_source);
  }
}

static gboolean
send_accept_cb (gpointer data)
{
  gpointer *args = data;
  ShmReceiver *rx = args[0];
  gchar *caps = args[1];
  GVariantDict d;

  if (rx->conn && rx->state != CONN_NONE) {
    g_variant_dict_init (&d, NULL);
    shm_caps_insert (&d, caps, 0);
    shm_conn_send (rx->conn, SHM_MSG_ACCEPT, g_variant_dict_end (&d), NULL);
  }
  g_free (caps);
  g_free (args);
  return G_SOURCE_REMOVE;
}

static gboolean
send_refresh_cb (gpointer data)
{
  ShmReceiver *rx = data;

  if (rx->conn && rx->state != CONN_NONE)
    shm_conn_send (rx->conn, SHM_MSG_REFRESH, NULL, NULL);
  return G_SOURCE_REMOVE;
}

/**
 * shm_receiver_request_full:
 *
 * Any thread: asks the sender for its next inline frame whole (this
 * receiver lacks the frame a partial one would patch).
 */
void
shm_receiver_request_full (ShmReceiver * rx)
{
  if (rx->loop.context)
    g_main_context_invoke (rx->loop.context, send_refresh_cb, rx);
}

/* Any thread: tells the sender what downstream accepts now. */
void
shm_receiver_send_accept (ShmReceiver * rx, const gchar * caps)
{
  gpointer *args = g_new (gpointer, 2);

  if (!rx->loop.context) {
    g_free (args);
    return;
  }
  args[0] = rx;
  args[1] = g_strdup (caps);
  g_main_context_invoke (rx->loop.context, send_accept_cb, args);
}

void
shm_receiver_get_stats (ShmReceiver * rx, ShmReceiverStats * stats)
{
  g_mutex_lock (&rx->lock);
  *stats = rx->stats;
  g_mutex_unlock (&rx->lock);
}

/* gst-shm: the sender engine
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "shmsender.h"
#include "shmbell.h"
#include "shmloop.h"
#include "shmring.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define RING_POLL_MS 20
#define TICK_MS 500
#define HANDSHAKE_TIMEOUT_US (10 * G_USEC_PER_SEC)
/* a sender that waits for receivers says why after this, then every
 * WAIT_WARN_EVERY_US */
#define WAIT_WARN_FIRST_US (3 * G_USEC_PER_SEC)
#define WAIT_WARN_EVERY_US (30 * G_USEC_PER_SEC)
/* A lane whose receiver left is given to another receiver only after this
 * long, unless no other is free: a late write of the one that left (which
 * may not know yet) then cannot land in the next one's channel. */
#define LANE_QUARANTINE_US (2 * G_USEC_PER_SEC)
/* Inline frames: at most this many frames queued in a connection. */
#define INLINE_MAX_QUEUED 2

typedef enum
{
  PEER_AWAIT_HELLO,
  PEER_AWAIT_AREA,
  PEER_AWAIT_REPLY,
  PEER_READY,
} PeerState;

struct _ShmPeer
{
  ShmSender *sender;
  ShmConn *conn;
  gchar *name;                  /* "process 1234", "tcp:10.0.2.15:4000" */
  gchar *path;                  /* the path the receiver maps */
  PeerState state;
  guint lane;
  guint32 lane_gen;
  guint8 token[SHM_TOKEN_BYTES];
  guint64 token_index;
  guint64 session;
  guint64 features;
  gchar *boot_id;
  ShmWake wake;
  gboolean said_hello;
  gboolean live;                /* may miss frames when it lags */
  gboolean network;             /* over TCP or vsock */
  gboolean has_nonce;
  guint8 rx_nonce[SHM_NONCE_BYTES];     /* the receiver's challenge */
  guint8 nonce[SHM_NONCE_BYTES];        /* ours, in the mmap hello */
  gboolean frames_inline;       /* gets frames through the connection */
  guint64 inline_seq;           /* the last frame it got inline, whole or
                                 * patched; G_MAXUINT64: none (lock) */
  gboolean want_full;           /* asked for a whole frame (lock) */
  guint64 have_seq;             /* in the area: the last frame published to
                                 * it; G_MAXUINT64: none (lock) */
  ShmTileMap missed_map;        /* tiles changed in the frames after the
                                 * last it got (have_seq, or inline_seq)
                                 * that it did not get (lock) */
  guint64 missed;               /* frames it did not get (lock) */
  gboolean said_missed;
  ShmReport report;             /* its last (lock) */
  gint64 report_at;             /* 0: none yet (lock) */
  gboolean lagging;             /* non-live: gave up waiting for it until it
                                 * catches up (lock) */
  gint64 last_seen;             /* control thread */
  gint64 since;
  gint ring_lane;               /* in-band lane, or -1 */
  guint64 ring_id;
};

struct _ShmSender
{
  ShmSenderCallbacks cb;
  gpointer user_data;

  /* set at creation (its strings owned; the timeouts: lock) */
  ShmSenderConfig cfg;

  /* control thread; created in start, joined in stop */
  ShmLoop loop;
  GSocket *listener;
  GSource *listen_source;
  GSource *tick_source;
  GSource *ring_source;
  gboolean listen_loopback;     /* a TCP listener on a loopback address */
  gint64 no_free_since;         /* every slot taken since (lock) */
  gboolean said_truncated;      /* control thread */
  gint n_waiting;               /* threads waiting for receivers (lock) */
  gint64 waiting_since, last_wait_warn; /* (lock) */
  gchar *socket_path;           /* a unix socket we bound */
  dev_t socket_dev;
  ino_t socket_ino;
  gid_t socket_gid;             /* its group: peers in it may connect when
                                 * the mode shares it with the group */
  gint64 gid;                   /* the group property's gid, or -1 */
  gboolean ring;                /* control=ring: in-band lanes */
  guint64 ring_served[SHM_RING_LANES];

  GMutex lock;
  GCond cond;
  /* lock */
  GList *peers;
  guint n_ready;
  guint64 used_lanes;
  gint64 lane_freed[SHM_AREA_TOKEN_LANES];
  guint32 next_lane_gen;
  guint min_ready;
  gint n_paced;                 /* (atomic too) ready non-live receivers */
  gint flushing;                /* atomic too: the slots read it */
  guint unlocks;                /* unlock() calls */
  gboolean started;
  gboolean fatal;               /* an error was posted */
  ShmArea *existing;            /* a file that was there at start */
  ShmGeometry geo;
  ShmSlots *slots;              /* current area; NULL before caps */
  gchar *caps;
  guint32 caps_gen;
  guint64 seq;
  guint64 last_seq;             /* of the last frame sent; G_MAXUINT64 */
  ShmTileGrid grid;             /* of the caps, for damage; tile 0: none */
  GByteArray *packed;           /* a frame's changed tiles, inline */
  guint64 packed_seq;           /* ... of this frame */
  ShmTileMap packed_map;        /* ... and this map */
  ShmSenderStats stats;
};

static void peer_drop (ShmSender * s, ShmPeer * p, const gchar * event,
    const gchar * reason);

/* --- messages for the element ------------------------------------------ */

/* Posts @error (taken) for the element: first, since the streaming side
 * fails once the engine is fatal. */
static void
post (ShmSender * s, gboolean fatal, GError * error, const gchar * debug)
{
  s->cb.message (fatal, error, debug, s->user_data);
  g_error_free (error);
  if (fatal) {
    g_mutex_lock (&s->lock);
    s->fatal = TRUE;
    g_cond_broadcast (&s->cond);
    g_mutex_unlock (&s->lock);
  }
}

#define post_new(s, fatal, code, debug, ...) \
  post (s, fatal, g_error_new (SHM_ENGINE_ERROR, code, __VA_ARGS__), debug)

static void
event (ShmSender * s, const gchar * what, ShmPeer * p, guint64 session,
    const gchar * reason)
{
  s->cb.peer_event (what, p->name, session, reason, s->user_data);
}

const gchar *
shm_peer_get_name (ShmPeer * peer)
{
  return peer->name;
}

/* --- peers: handshake ---------------------------------------------------- */

/* A ready receiver is no longer (it leaves, or does the handshake again). */
static void
unready_locked (ShmSender * s, ShmPeer * p)
{
  if (p->state != PEER_READY)
    return;
  p->state = PEER_AWAIT_HELLO;
  s->n_ready--;
  if (!p->live)
    g_atomic_int_add (&s->n_paced, -1);
}

static void
refuse (ShmSender * s, ShmPeer * p, const gchar * code, const gchar * msg)
{
  shm_send_error (p->conn, code, msg);
  peer_drop (s, p, "refused", msg);
}

/* Gives @p its lane's channel afresh, writes its token into its lane and
 * sends the mmap hello.  With the lock. */
static void
start_handshake_locked (ShmSender * s, ShmPeer * p)
{
  g_autoptr (GError) err = NULL;
  ShmArea *area = shm_slots_get_area (s->slots);
  ShmMmapInfo m = { 0, };

  unready_locked (s, p);
  if (!shm_area_write_token (area, &s->geo, p->lane, G_MAXUINT64, p->token,
          SHM_TOKEN_BYTES, &p->token_index, &err)) {
    shm_send_error (p->conn, "internal", err->message);
    shm_conn_close (p->conn);
    return;
  }
  p->lane_gen = ++s->next_lane_gen;
  shm_slots_open_lane (s->slots, p->lane, p->lane_gen);
  p->session = s->geo.session_id;
  p->state = PEER_AWAIT_REPLY;
  p->since = g_get_monotonic_time ();

  m.version = SHM_PROTO_VERSION;
  m.features = s->cfg.features & (shm_area_can_futex (area) ? G_MAXUINT64
      : ~(guint64) SHM_FEATURE_FUTEX);
  m.geo = s->geo;
  m.file = (gchar *) s->cfg.path;
  memcpy (m.token, p->token, SHM_TOKEN_BYTES);
  m.token_bytes = SHM_TOKEN_BYTES;
  m.token_index = p->token_index;
  m.lane = p->lane;
  m.lane_gen = p->lane_gen;
  m.boot_id = (gchar *) shm_boot_id ();
  /* our challenge, and with a secret the answer to the receiver's */
  shm_random_bytes (p->nonce, sizeof p->nonce, NULL);
  memcpy (m.nonce, p->nonce, sizeof m.nonce);
  m.has_nonce = TRUE;
  if (s->cfg.secret && p->has_nonce) {
    shm_secret_proof (s->cfg.secret, "sender", p->rx_nonce, p->nonce, m.proof);
    m.has_proof = TRUE;
  }
  shm_conn_send (p->conn, SHM_MSG_MMAP, shm_mmap_encode (&m), NULL);
}

/* The version ranges of both sides must overlap. */
static gboolean
check_version (ShmSender * s, ShmPeer * p, const ShmHello * h)
{
  g_autofree gchar *msg = NULL;

  if (h->version_min <= SHM_PROTO_VERSION
      && h->version_max >= SHM_PROTO_VERSION_MIN)
    return TRUE;
  if (h->version_min == h->version_max)
    msg = g_strdup_printf ("protocol version %u is not supported: this "
        "shmsink speaks version %d", h->version_max, SHM_PROTO_VERSION);
  else
    msg = g_strdup_printf ("protocol versions %u to %u are not supported: "
        "this shmsink speaks version %d", h->version_min, h->version_max,
        SHM_PROTO_VERSION);
  refuse (s, p, "version", msg);
  return FALSE;
}

static void
handle_hello (ShmSender * s, ShmPeer * p, GVariant * body)
{
  g_autoptr (GError) err = NULL;
  g_autofree gchar *refusal = NULL;
  ShmHello h;

  if (!shm_hello_decode (body, &h, &err)) {
    g_autofree gchar *msg = g_strdup_printf ("invalid hello: %s",
        err->message);
    refuse (s, p, "protocol", msg);
    return;
  }
  if (!check_version (s, p, &h)) {
    shm_hello_clear (&h);
    return;
  }
  p->live = h.live;
  p->features = h.features;
  p->path = g_strdup (h.path ? h.path : "(unknown)");
  p->boot_id = g_steal_pointer (&h.boot_id);
  p->has_nonce = h.has_nonce;
  memcpy (p->rx_nonce, h.nonce, sizeof p->rx_nonce);
  refusal = s->cb.accepts (s, p, h.caps, FALSE, s->user_data);
  p->said_hello = TRUE;
  shm_hello_clear (&h);
  if (refusal) {
    refuse (s, p, "caps", refusal);
    return;
  }
  g_mutex_lock (&s->lock);
  /* a caps query may be waiting for a receiver's caps */
  g_cond_broadcast (&s->cond);
  if (s->slots)
    start_handshake_locked (s, p);
  else
    p->state = PEER_AWAIT_AREA;
  g_mutex_unlock (&s->lock);
}

/* How the receiver learns of new records: a futex on the area's bells when
 * both sides share a kernel and can, a doorbell message otherwise; on the
 * in-band rings, nothing (it polls along the frame clock). */
static ShmWake
choose_wake_locked (ShmSender * s, ShmPeer * p)
{
  if (s->ring)
    return SHM_WAKE_POLL;
  if ((p->features & s->cfg.features & SHM_FEATURE_FUTEX)
      && shm_area_can_futex (shm_slots_get_area (s->slots))
      && p->boot_id && *p->boot_id && g_str_equal (p->boot_id, shm_boot_id ()))
    return SHM_WAKE_FUTEX;
  return SHM_WAKE_DOORBELL;
}

/* With the lock: the handshake is complete, frames may flow. */
static void
peer_ready_locked (ShmSender * s, ShmPeer * p)
{
  ShmReady r = { 0, };

  if (p->frames_inline) {
    /* room for a few frames: they travel through the connection */
    shm_conn_set_max_queue (p->conn, MAX (4 * 1024 * 1024,
            (INLINE_MAX_QUEUED + 1) * s->geo.slot_size));
    shm_slots_close_lane (s->slots, p->lane);
  }
  p->wake = choose_wake_locked (s, p);
  p->state = PEER_READY;
  p->lagging = FALSE;
  s->n_ready++;
  if (!p->live)
    g_atomic_int_inc (&s->n_paced);
  s->stats.receivers_connected++;
  r.session = s->geo.session_id;
  r.frames_inline = p->frames_inline;
  r.wake = p->wake;
  r.caps = s->caps;
  r.caps_gen = s->caps_gen;
  shm_conn_send (p->conn, SHM_MSG_READY, shm_ready_encode (&r), NULL);
  g_cond_broadcast (&s->cond);
}

/* Checks the receiver's answer; returns the reason when it is not a token
 * of its own found in our mapping of its lane.  With the lock. */
static gchar *
check_reply_locked (ShmSender * s, ShmPeer * p, const ShmReply * r)
{
  if (r->want_inline)
    return g_strdup_printf ("The sender's area \"%s\" and the receiver's "
        "area \"%s\" do not map the same memory: %s", s->cfg.path, p->path,
        r->reason && *r->reason ? r->reason : "the receiver says so");
  /* a token of the receiver's own, not ours echoed */
  if ((r->token_bytes == SHM_TOKEN_BYTES
          && memcmp (r->token, p->token, SHM_TOKEN_BYTES) == 0)
      || !shm_area_check_token (shm_slots_get_area (s->slots), &s->geo,
          p->lane, r->token, r->token_bytes, r->token_index))
    return g_strdup_printf ("The sender's area \"%s\" and the receiver's "
        "area \"%s\" do not map the same memory: the receiver's token was "
        "not found in \"%s\"", s->cfg.path, p->path, s->cfg.path);
  return NULL;
}

/* Frames inline go to a receiver that proves the secret, when there is
 * one; without one, only over a loopback TCP listener.  Returns why not,
 * or NULL. */
static gchar *
inline_refusal (ShmSender * s, ShmPeer * p, const ShmReply * r)
{
  if (s->cfg.secret && !r->has_proof)
    return g_strdup ("this shmsink gives frames inline only to a receiver "
        "that proves the shared secret: set the same secret on shmsrc");
  if (s->cfg.secret && (!p->has_nonce || !shm_secret_check (s->cfg.secret,
              "receiver", p->nonce, p->rx_nonce, r->proof)))
    return g_strdup ("the receiver answered the shared-secret challenge "
        "wrongly: its secret is not this shmsink's");
  if (!s->cfg.secret && !s->listen_loopback)
    return g_strdup_printf ("frames inline over %s, which is not a loopback "
        "address, need a shared secret: set the same secret on shmsink and "
        "shmsrc (or listen on 127.0.0.1 or ::1)", s->cfg.control);
  return NULL;
}

static void
handle_reply (ShmSender * s, ShmPeer * p, GVariant * body)
{
  g_autoptr (GError) err = NULL;
  g_autofree gchar *msg = NULL, *refusal = NULL;
  gboolean ok;
  ShmReply r;

  if (!shm_reply_decode (body, &r, &err)) {
    msg = g_strdup_printf ("invalid mmap reply: %s", err->message);
    refuse (s, p, "protocol", msg);
    return;
  }
  g_mutex_lock (&s->lock);
  if (r.session != p->session || !s->slots || r.session != s->geo.session_id) {
    /* a reply to a handshake that an area change has replaced */
    g_mutex_unlock (&s->lock);
    shm_reply_clear (&r);
    return;
  }
  msg = check_reply_locked (s, p, &r);
  ok = msg == NULL;
  if (!ok && s->cfg.inline_fallback && p->network
      && !(refusal = inline_refusal (s, p, &r))) {
    /* peers on different machines: the bytes go through the connection */
    p->frames_inline = TRUE;
    p->inline_seq = G_MAXUINT64;
    ok = TRUE;
  }
  if (ok)
    peer_ready_locked (s, p);
  g_mutex_unlock (&s->lock);
  shm_reply_clear (&r);

  if (refusal) {
    post_new (s, FALSE, SHM_ENGINE_ERROR_OPEN_READ, msg, "Refused frames "
        "inline to receiver %s: %s", p->name, refusal);
    refuse (s, p, "access", refusal);
    return;
  }

  if (ok && p->frames_inline) {
    post_new (s, FALSE, SHM_ENGINE_ERROR_READ, NULL, "%s; frames go to %s "
        "inline over the connection (set inline-fallback=false to make this "
        "an error).", msg, p->name);
    event (s, "connected", p, p->session, "frames inline");
  } else if (ok) {
    event (s, "connected", p, p->session, NULL);
  } else {
    /* a warning: the other receivers go on */
    shm_send_error (p->conn, "token", msg);
    post_new (s, FALSE, SHM_ENGINE_ERROR_TOKEN, "token check failed",
        "%s; receiver %s dropped.", msg, p->name);
    peer_drop (s, p, "refused", msg);
  }
}

static void
handle_accept (ShmSender * s, ShmPeer * p, GVariant * body)
{
  g_autoptr (GError) err = NULL;
  g_autofree gchar *caps = NULL, *refusal = NULL;

  if (!shm_caps_lookup (body, TRUE, &caps, NULL, &err)) {
    g_autofree gchar *msg = g_strdup_printf ("invalid accept: %s",
        err->message);
    refuse (s, p, "protocol", msg);
    return;
  }
  refusal = s->cb.accepts (s, p, caps, TRUE, s->user_data);
  if (refusal)
    refuse (s, p, "caps", refusal);
}

/* How the receiver's stream goes: kept for the element's view, and
 * handed to it. */
static void
handle_report (ShmSender * s, ShmPeer * p, GVariant * body)
{
  g_autoptr (GError) err = NULL;
  ShmReport r;

  if (!shm_report_decode (body, &r, &err)) {
    g_autofree gchar *msg = g_strdup_printf ("invalid report: %s",
        err->message);
    refuse (s, p, "protocol", msg);
    return;
  }
  g_mutex_lock (&s->lock);
  p->report = r;
  p->report_at = g_get_monotonic_time ();
  g_mutex_unlock (&s->lock);
  if (s->cb.report)
    s->cb.report (s, p, &r, s->user_data);
}

/**
 * shm_sender_foreach_receiver:
 *
 * Calls @func for each receiver connected now (with the sender's lock:
 * @func must not call the sender).
 */
void
shm_sender_foreach_receiver (ShmSender * s, ShmReceiverInfoFunc func,
    gpointer data)
{
  gint64 now = g_get_monotonic_time ();

  g_mutex_lock (&s->lock);
  for (GList * l = s->peers; l; l = l->next) {
    ShmPeer *p = l->data;
    ShmReceiverInfo info = { 0, };

    if (!p->said_hello)
      continue;
    info.name = p->name;
    info.live = p->live;
    info.ready = p->state == PEER_READY;
    info.frames_inline = p->frames_inline;
    info.missed = p->missed;
    info.report = p->report_at ? &p->report : NULL;
    info.report_age_us = p->report_at ? now - p->report_at : 0;
    func (&info, data);
  }
  g_mutex_unlock (&s->lock);
}

/* An error message of the receiver's: a token check it failed is the
 * sender's error too (the user named the wrong path); anything else ends
 * that receiver only. */
static void
handle_error (ShmSender * s, ShmPeer * p, GVariant * body)
{
  const gchar *code = shm_msg_get_text (body, "code");
  const gchar *msg = shm_msg_get_text (body, "message");

  if (!msg)
    msg = "(no message)";
  /* (a warning only, whatever the code: one receiver never stops the
   * sender for the others) */
  post_new (s, FALSE, g_strcmp0 (code, "token") == 0 ? SHM_ENGINE_ERROR_TOKEN
      : SHM_ENGINE_ERROR_READ, "reported by the receiver", "Receiver %s "
      "failed: %s", p->name, msg);
  peer_drop (s, p, "refused", msg);
}

static void
on_peer_message (ShmConn * conn, guint32 type, GVariant * body,
    const guint8 * payload, gsize payload_len, gpointer user_data)
{
  ShmPeer *p = user_data;
  ShmSender *s = p->sender;
  const gchar *expected = NULL;
  PeerState state;

  p->last_seen = g_get_monotonic_time ();
  /* (the streaming thread moves a peer on when it makes the area) */
  g_mutex_lock (&s->lock);
  state = p->state;
  g_mutex_unlock (&s->lock);
  switch (type) {
    case SHM_MSG_HELLO:
      if (state != PEER_AWAIT_HELLO || p->said_hello)
        expected = "no second hello";
      else
        handle_hello (s, p, body);
      break;
    case SHM_MSG_MMAP_REPLY:
      if (state != PEER_AWAIT_REPLY)
        expected = "an mmap reply only after an mmap hello";
      else
        handle_reply (s, p, body);
      break;
    case SHM_MSG_DOORBELL:
      g_mutex_lock (&s->lock);
      if (s->slots)
        shm_slots_wake (s->slots);
      g_mutex_unlock (&s->lock);
      break;
    case SHM_MSG_PING:
      break;
    case SHM_MSG_REPORT:
      /* (one may cross a new handshake of ours: the area was replaced) */
      if (!p->said_hello)
        expected = "a report only after the hello";
      else if (state == PEER_READY)
        handle_report (s, p, body);
      break;
    case SHM_MSG_REFRESH:
      g_mutex_lock (&s->lock);
      p->want_full = TRUE;
      g_mutex_unlock (&s->lock);
      break;
    case SHM_MSG_ACCEPT:
      if (!p->said_hello)
        expected = "accept only after the hello";
      else
        handle_accept (s, p, body);
      break;
    case SHM_MSG_BYE:
      peer_drop (s, p, "left", shm_msg_get_text (body, "message"));
      break;
    case SHM_MSG_ERROR:
      handle_error (s, p, body);
      break;
    default:
      if (type < SHM_MSG_LAST)
        expected = "only receiver messages";
      break;
  }
  if (expected) {
    g_autofree gchar *msg = g_strdup_printf ("unexpected %s message "
        "(expected %s)", shm_msg_type_name (type), expected);
    refuse (s, p, "protocol", msg);
  }
}

static void
on_peer_closed (ShmConn * conn, const GError * error, gpointer user_data)
{
  ShmPeer *p = user_data;

  /* a peer that breaks the framing or the rings is worth telling */
  if (error && (g_error_matches (error, SHM_PROTO_ERROR,
              SHM_PROTO_ERROR_MALFORMED) || error->domain == SHM_RING_ERROR))
    post_new (p->sender, FALSE, SHM_ENGINE_ERROR_READ, NULL,
        "Dropped receiver %s: %s", p->name, error->message);
  peer_drop (p->sender, p, "lost",
      error ? error->message : "closed the connection without saying bye");
}

static const ShmConnCallbacks peer_callbacks = {
  on_peer_message,
  on_peer_closed,
};

static void
peer_free (ShmPeer * p)
{
  shm_conn_close (p->conn);
  shm_conn_unref (p->conn);
  g_free (p->name);
  g_free (p->path);
  g_free (p->boot_id);
  g_free (p);
}

/* Removes a receiver: its lane and every frame it holds are freed.
 * Control thread only. */
static void
peer_drop (ShmSender * s, ShmPeer * p, const gchar * event_name,
    const gchar * reason)
{
  guint64 session = p->session;

  g_mutex_lock (&s->lock);
  if (!g_list_find (s->peers, p)) {
    g_mutex_unlock (&s->lock);
    return;
  }
  s->peers = g_list_remove (s->peers, p);
  unready_locked (s, p);
  if (s->slots)
    shm_slots_close_lane (s->slots, p->lane);
  s->used_lanes &= ~(G_GUINT64_CONSTANT (1) << p->lane);
  s->lane_freed[p->lane] = g_get_monotonic_time ();
  g_cond_broadcast (&s->cond);
  g_mutex_unlock (&s->lock);
  if (p->said_hello)
    s->cb.gone (s, p, s->user_data);
  if (p->ring_lane >= 0 && s->ring_served[p->ring_lane] == p->ring_id)
    s->ring_served[p->ring_lane] = 0;
  event (s, event_name, p, session, reason);
  peer_free (p);
}

/* --- control thread ------------------------------------------------------- */

/* The free lane whose last receiver left longest ago.  With the lock. */
static gint
pick_lane_locked (ShmSender * s)
{
  gint64 now = g_get_monotonic_time ();
  gint best = -1;

  for (guint i = 0; i < SHM_AREA_TOKEN_LANES; i++) {
    if (s->used_lanes & (G_GUINT64_CONSTANT (1) << i))
      continue;
    if (best < 0 || s->lane_freed[i] < s->lane_freed[best])
      best = i;
    if (s->lane_freed[i] == 0 || now - s->lane_freed[i] > LANE_QUARANTINE_US)
      return i;
  }
  return best;
}

/* A new receiver on @conn (taken): gets a lane and starts reading. */
static void
peer_add (ShmSender * s, ShmConn * conn, gchar * name, gboolean network,
    gint ring_lane, guint64 ring_id)
{
  ShmPeer *p = g_new0 (ShmPeer, 1);
  gint lane;

  p->sender = s;
  p->name = name;
  p->conn = conn;
  p->network = network;
  p->ring_lane = ring_lane;
  p->ring_id = ring_id;
  p->last_seen = p->since = g_get_monotonic_time ();
  p->inline_seq = p->have_seq = G_MAXUINT64;

  g_mutex_lock (&s->lock);
  lane = pick_lane_locked (s);
  if (lane >= 0) {
    p->lane = lane;
    s->used_lanes |= G_GUINT64_CONSTANT (1) << lane;
    s->peers = g_list_append (s->peers, p);
  }
  g_mutex_unlock (&s->lock);

  if (lane < 0) {
    shm_send_error (p->conn, "busy", "too many receivers");
    peer_free (p);
    return;
  }
  shm_conn_start (p->conn, s->loop.context, &peer_callbacks, p);
}

/* The groups of the process at the other end of a unix socket: its gid,
 * then its supplementary groups when the kernel tells them (SO_PEERGROUPS,
 * Linux 4.13). */
static gid_t *
peer_groups (int fd, gid_t gid, guint * n_groups)
{
  gid_t *groups = g_new (gid_t, 1);

  groups[0] = gid;
  *n_groups = 1;
#ifdef SO_PEERGROUPS
  {
    socklen_t len = 64 * sizeof (gid_t);

    for (int tries = 0; tries < 3; tries++) {
      groups = g_renew (gid_t, groups, 1 + len / sizeof (gid_t));
      if (getsockopt (fd, SOL_SOCKET, SO_PEERGROUPS, groups + 1, &len) == 0) {
        *n_groups = 1 + len / sizeof (gid_t);
        break;
      }
      if (errno != ERANGE)
        break;
    }
  }
#endif
  return groups;
}

/* Whether the process at the other end of the unix socket @sock may
 * receive: it runs as this sink's user or root, or the mode shares the
 * area with one of its groups (the socket's group: the group property's,
 * or the sink's own) or with everyone.  The socket's permissions already
 * keep others out; this holds when they do not (a socket reached through a
 * descriptor passed on, or a mode changed after the sink made it).
 * Returns NULL, or why it may not. */
static gchar *
peer_refusal (ShmSender * s, GSocket * sock)
{
  struct ucred cred;
  socklen_t len = sizeof cred;
  g_autofree gid_t *groups = NULL;
  g_autofree gchar *who = NULL;
  guint n_groups;

  if (getsockopt (g_socket_get_fd (sock), SOL_SOCKET, SO_PEERCRED, &cred,
          &len) < 0 || len != sizeof cred)
    return g_strdup_printf ("could not read its credentials: %s",
        g_strerror (errno));
  if (cred.uid == geteuid () || cred.uid == 0)
    return NULL;
  groups = peer_groups (g_socket_get_fd (sock), cred.gid, &n_groups);
  if (shm_mode_shares (s->cfg.mode, s->socket_gid, groups, n_groups))
    return NULL;
  who = shm_describe_user (cred.uid);
  if (s->cfg.mode & S_IRGRP) {
    g_autofree gchar *grp = shm_describe_group (s->socket_gid);
    return g_strdup_printf ("it runs as %s, who is neither this shmsink's "
        "user nor root nor in %s, and the mode (%04o) shares the area with "
        "no one else", who, grp, s->cfg.mode & 0777);
  }
  return g_strdup_printf ("it runs as %s, who is neither this shmsink's user "
      "nor root, and the mode (%04o) shares the area with no one else", who,
      s->cfg.mode & 0777);
}

static gboolean
on_incoming (GSocket * listener, GIOCondition cond, gpointer user_data)
{
  ShmSender *s = user_data;
  GSocketFamily family;
  GSocket *sock;

  sock = g_socket_accept (listener, NULL, NULL);
  if (!sock)
    return G_SOURCE_CONTINUE;
  family = g_socket_get_family (sock);
  if (family == G_SOCKET_FAMILY_IPV4 || family == G_SOCKET_FAMILY_IPV6)
    g_socket_set_option (sock, IPPROTO_TCP, TCP_NODELAY, 1, NULL);
  {
    gchar *name = shm_socket_describe (sock, TRUE);
    gchar *why = family == G_SOCKET_FAMILY_UNIX ? peer_refusal (s, sock)
        : NULL;
    ShmConn *conn = shm_conn_new_socket (sock, name);

    if (why) {
      /* before it gets a lane: it learns why, and the element warns */
      g_autofree gchar *msg = g_strdup_printf ("shmsink refused this "
          "receiver: %s", why);

      post_new (s, FALSE, SHM_ENGINE_ERROR_OPEN_READ, NULL,
          "Refused receiver %s: %s", name, why);
      shm_send_error (conn, "access", msg);
      shm_conn_close (conn);
      shm_conn_unref (conn);
      s->cb.peer_event ("refused", name, 0, why, s->user_data);
      g_free (name);
      g_free (why);
    } else {
      peer_add (s, conn, name, family != G_SOCKET_FAMILY_UNIX, -1, 0);
    }
  }
  return G_SOURCE_CONTINUE;
}

/* control=ring: receivers claim lanes of the area's ring region. */
static gboolean
on_ring_poll (gpointer user_data)
{
  ShmSender *s = user_data;
  ShmArea *area = NULL;
  ShmGeometry geo;
  guint64 id;
  gint lane;

  g_mutex_lock (&s->lock);
  if (s->slots) {
    area = shm_area_ref (shm_slots_get_area (s->slots));
    geo = s->geo;
  }
  g_mutex_unlock (&s->lock);
  if (!area)
    return G_SOURCE_CONTINUE;

  while ((lane = shm_ring_accept (area, &geo, s->ring_served, &id)) >= 0) {
    gchar *name = g_strdup_printf ("in-band lane %d", lane);
    s->ring_served[lane] = id;
    peer_add (s, shm_conn_new_ring (area, &geo, lane, id, TRUE, name), name,
        FALSE, lane, id);
  }
  shm_area_unref (area);
  return G_SOURCE_CONTINUE;
}

/* Receivers whose channels broke the rules (found while frames were
 * published) are dropped here. */
static void
drop_broken (ShmSender * s)
{
  g_autofree gchar *why = NULL;
  GList *bad = NULL;
  guint64 lanes = 0;

  g_mutex_lock (&s->lock);
  if (s->slots)
    lanes = shm_slots_collect (s->slots, &why);
  for (GList * l = s->peers; l && lanes; l = l->next) {
    ShmPeer *p = l->data;
    if (p->state != PEER_AWAIT_HELLO && !p->frames_inline
        && (lanes & (G_GUINT64_CONSTANT (1) << p->lane)))
      bad = g_list_prepend (bad, p);
  }
  g_mutex_unlock (&s->lock);
  for (GList * l = bad; l; l = l->next) {
    ShmPeer *p = l->data;
    post_new (s, FALSE, SHM_ENGINE_ERROR_READ, NULL,
        "Dropped receiver %s: %s", p->name, why);
    refuse (s, p, "protocol", why);
  }
  g_list_free (bad);
}

/* After a few seconds of waiting for receivers, and then now and then:
 * what it waits for, and the likely causes.  With the lock; returns the
 * message to post, or NULL. */
static gchar *
say_waiting_locked (ShmSender * s, gint64 now)
{
  guint connected = 0;
  const gchar *why;

  if (!s->waiting_since || now - s->waiting_since < WAIT_WARN_FIRST_US
      || (s->last_wait_warn && now - s->last_wait_warn < WAIT_WARN_EVERY_US))
    return NULL;
  s->last_wait_warn = now;
  for (GList * l = s->peers; l; l = l->next)
    connected++;
  if (connected > s->n_ready)
    why = "a receiver is connected but its handshake has not completed (it "
        "may wait for caps it accepts, or map other memory)";
  else if (s->ring)
    why = "no receiver has claimed an in-band lane of the area yet (start "
        "shmsrc with control=ring on the same memory; across QEMU guests "
        "both need the same ivshmem device, and its memory backend "
        "share=on)";
  else
    why = "no receiver has connected yet (start shmsrc with the same path)";
  return g_strdup_printf ("Waiting for %s at %s for %.0f s (%u ready): %s.",
      s->min_ready > 1 ? "receivers" : "a receiver", s->cfg.control,
      (now - s->waiting_since) / (gdouble) G_USEC_PER_SEC, s->n_ready, why);
}

/* With other receivers ready, a non-live one that keeps every slot taken
 * (it stops releasing: a hostile peer, or a paused pipeline) for longer
 * than peer-timeout, the one of them that holds the oldest frame, is
 * dropped so that the others get frames again.  With the lock. */
static ShmPeer *
starving_peer_locked (ShmSender * s, gint64 now)
{
  guint64 lanes = 0, age;
  gint lane;

  if (!s->slots || s->n_ready < 2 || shm_slots_count_free (s->slots) > 0) {
    s->no_free_since = 0;
    return NULL;
  }
  if (!s->no_free_since)
    s->no_free_since = now;
  if (now - s->no_free_since <= s->cfg.peer_timeout_us)
    return NULL;
  /* (a live receiver that lags misses frames instead: choose_lanes) */
  for (GList * l = s->peers; l; l = l->next) {
    ShmPeer *p = l->data;
    if (p->state == PEER_READY && !p->frames_inline && !p->live)
      lanes |= G_GUINT64_CONSTANT (1) << p->lane;
  }
  if (!lanes)
    return NULL;
  lane = shm_slots_furthest_behind (s->slots, lanes, s->seq, &age);
  for (GList * l = s->peers; l && lane >= 0; l = l->next) {
    ShmPeer *p = l->data;
    if (p->state == PEER_READY && !p->frames_inline && (gint) p->lane == lane) {
      s->no_free_since = 0;
      return p;
    }
  }
  return NULL;
}

/* Receivers that missed frames since the last tick, said once each (the
 * messages to post).  With the lock. */
static GList *
missed_news_locked (ShmSender * s)
{
  GList *news = NULL;

  for (GList * l = s->peers; l; l = l->next) {
    ShmPeer *p = l->data;
    if (p->missed && !p->said_missed) {
      p->said_missed = TRUE;
      news = g_list_prepend (news, g_strdup_printf ("Receiver %s misses "
              "frames (%" G_GUINT64_FORMAT " so far): it did not take them "
              "in time (too slow, or its downstream keeps them); it sees the "
              "gaps.", p->name, p->missed));
    }
  }
  return news;
}

static void
drop_starving (ShmSender * s, ShmPeer * p)
{
  g_autofree gchar *why = g_strdup_printf ("it kept its frames while every "
      "slot was taken for more than %.1f s (peer-timeout), so that the other "
      "receivers got none", s->cfg.peer_timeout_us / (gdouble) G_USEC_PER_SEC);

  post_new (s, FALSE, SHM_ENGINE_ERROR_READ, NULL, "Dropped receiver %s: %s.",
      p->name, why);
  shm_send_error (p->conn, "timeout", why);
  peer_drop (s, p, "lost", why);
}

static gboolean
on_tick (gpointer user_data)
{
  ShmSender *s = user_data;
  gint64 now = g_get_monotonic_time ();
  GList *dead = NULL;
  GVariantDict d;
  GVariant *ping;
  ShmPeer *starving;
  gboolean truncated;
  g_autofree gchar *waiting = NULL;
  GList *missed = NULL;

  drop_broken (s);
  g_variant_dict_init (&d, NULL);
  g_variant_dict_insert (&d, "time", "t", (guint64) now * 1000);
  ping = g_variant_ref_sink (g_variant_dict_end (&d));

  g_mutex_lock (&s->lock);
  for (GList * l = s->peers; l; l = l->next) {
    ShmPeer *p = l->data;
    if (now - p->last_seen > s->cfg.peer_timeout_us
        || (p->state != PEER_READY && p->state != PEER_AWAIT_AREA
            && now - p->since > HANDSHAKE_TIMEOUT_US))
      dead = g_list_prepend (dead, p);
    else if (p->state == PEER_READY || p->state == PEER_AWAIT_AREA)
      /* (one that waits for our area knows that we are alive) */
      shm_conn_send (p->conn, SHM_MSG_PING, ping, NULL);
  }
  if (s->slots)
    shm_area_heartbeat (shm_slots_get_area (s->slots), (guint64) now * 1000,
        s->seq);
  /* (the pages past its new end took the frames as private zeros) */
  truncated = s->slots && !s->said_truncated
      && shm_area_was_truncated (shm_slots_get_area (s->slots));
  s->said_truncated |= truncated;
  starving = starving_peer_locked (s, now);
  waiting = say_waiting_locked (s, now);
  missed = missed_news_locked (s);
  g_mutex_unlock (&s->lock);
  for (GList * l = missed; l; l = l->next)
    post_new (s, FALSE, SHM_ENGINE_ERROR_WRITE, NULL, "%s",
        (const gchar *) l->data);
  g_list_free_full (missed, g_free);
  g_variant_unref (ping);

  if (truncated)
    post_new (s, TRUE, SHM_ENGINE_ERROR_WRITE, NULL, "The area \"%s\" was "
        "truncated by another process while this shmsink used it (one that "
        "may write the file: check its owner and mode).", s->cfg.path);
  if (waiting)
    post_new (s, FALSE, SHM_ENGINE_ERROR_OPEN_WRITE, NULL, "%s", waiting);

  if (starving && !g_list_find (dead, starving))
    drop_starving (s, starving);

  for (GList * l = dead; l; l = l->next) {
    ShmPeer *p = l->data;
    g_autofree gchar *msg = p->state == PEER_READY
        ? g_strdup_printf ("no message for %" G_GINT64_FORMAT " ms",
        (now - p->last_seen) / 1000)
        : g_strdup ("the handshake did not complete in time");
    shm_send_error (p->conn, "timeout", msg);
    peer_drop (s, p, "lost", msg);
  }
  g_list_free (dead);
  return G_SOURCE_CONTINUE;
}

/* --- area ---------------------------------------------------------------- */

static gboolean
open_area_locked (ShmSender * s, guint64 needed, ShmArea ** area,
    gboolean * created, GError ** error)
{
  if (s->existing) {
    *area = shm_area_ref (s->existing);
    *created = FALSE;
    return TRUE;
  }
  /* (a file that appeared since the start is checked the same way; its
   * warning, if any, is left out: the lock is held) */
  *area =
      shm_area_create_full (s->cfg.path, s->cfg.size ? s->cfg.size : needed,
      s->cfg.mode, s->gid,
      SHM_OPEN_LOCK | (s->cfg.allow_symlink ? SHM_OPEN_ALLOW_SYMLINK : 0),
      created, NULL, error);
  return *area != NULL;
}

/* Makes sure the area holds frames of @frame_size bytes: creates it, or
 * replaces one we created by a bigger one (new session, new handshakes).
 * With the lock. */
static gboolean
ensure_area_locked (ShmSender * s, guint64 frame_size, GError ** error)
{
  g_autoptr (ShmArea) area = NULL;
  guint64 needed, ring_size = s->ring ? SHM_RING_REGION_SIZE : 0;
  gboolean created;
  ShmGeometry geo;

  if (s->slots && s->geo.slot_size >= frame_size)
    return TRUE;
  needed = shm_geometry_size_needed (s->cfg.num_slots, frame_size, ring_size);
  if (s->slots) {
    ShmArea *old = shm_slots_get_area (s->slots);
    if (!shm_area_is_created (old) || s->ring) {
      /* (receivers on the in-band rings cannot follow a new file) */
      g_set_error (error, SHM_AREA_ERROR, SHM_AREA_ERROR_TOO_SMALL,
          "Frames of %" G_GUINT64_FORMAT " bytes do not fit the slots of "
          "\"%s\" (%" G_GUINT64_FORMAT " bytes); shmsink %s: it needs at "
          "least %" G_GUINT64_FORMAT " bytes for %u slots", frame_size,
          s->cfg.path, s->geo.slot_size, s->ring
          ? "does not resize an area with in-band control rings"
          : "did not create it and never resizes it", needed, s->cfg.num_slots);
      return FALSE;
    }
    shm_area_unlink (old, NULL);
  }
  if (!open_area_locked (s, needed, &area, &created, error))
    return FALSE;
  if (!shm_geometry_compute (&geo, shm_area_get_size (area), s->cfg.num_slots,
          frame_size, ring_size, error)) {
    g_prefix_error (error, "\"%s\": ", s->cfg.path);
    if (g_error_matches (*error, SHM_AREA_ERROR, SHM_AREA_ERROR_TOO_SMALL))
      g_prefix_error (error, "%s: ", created ? "the size property is too "
          "small" : "the existing file is too small");
    shm_area_unlink (area, NULL);
    return FALSE;
  }
  do {
    if (!shm_random_bytes (&geo.session_id, sizeof geo.session_id, error))
      return FALSE;
  } while (geo.session_id == 0);
  if (created)
    geo.flags |= SHM_AREA_FLAG_CREATED;
  shm_area_init_header (area, &geo);

  g_clear_pointer (&s->slots, shm_slots_unref);
  s->slots = shm_slots_new (area, &geo);
  shm_slots_set_timeout (s->slots, s->cfg.slot_timeout_us);
  shm_slots_set_poll (s->slots, s->ring);
  if (g_atomic_int_get (&s->flushing))
    shm_slots_set_flushing (s->slots, TRUE);
  s->geo = geo;
  s->stats.sessions++;
  for (GList * l = s->peers; l; l = l->next) {
    ShmPeer *p = l->data;
    if (p->state != PEER_AWAIT_HELLO)
      start_handshake_locked (s, p);
  }
  return TRUE;
}

/* Finds out at start what would go wrong with the area file (a symbolic
 * link, permissions, a file that is not an area, another sink), so that
 * such mistakes fail the state change.  An existing file is opened and
 * locked now and used once the caps are known. */
static gboolean
check_area_path (ShmSender * s, GError ** error)
{
  g_autoptr (GError) err = NULL;
  g_autofree gchar *dir = g_path_get_dirname (s->cfg.path);
  g_autofree gchar *warning = NULL;
  ShmArea *area;

  if (!g_file_test (dir, G_FILE_TEST_IS_DIR)) {
    g_set_error (error, SHM_ENGINE_ERROR, SHM_ENGINE_ERROR_NOT_FOUND,
        "Directory \"%s\" does not exist (path=%s).", dir, s->cfg.path);
    return FALSE;
  }
  area = shm_area_create_full (s->cfg.path, 0, s->cfg.mode, s->gid,
      SHM_OPEN_NO_CREATE | SHM_OPEN_LOCK
      | (s->cfg.allow_symlink ? SHM_OPEN_ALLOW_SYMLINK : 0), NULL, &warning,
      &err);
  if (warning)
    post_new (s, FALSE, SHM_ENGINE_ERROR_SETTINGS, NULL, "%s.", warning);
  if (area && shm_area_reclaim (area)) {
    /* its sink died (its lock is free): a new one takes its place */
    post_new (s, FALSE, SHM_ENGINE_ERROR_SETTINGS, NULL, "Removed \"%s\", "
        "left behind by a shmsink that did not stop.", s->cfg.path);
    g_clear_pointer (&area, shm_area_unref);
  }
  if (area) {
    s->existing = area;
    return TRUE;
  }
  if (!err)
    return TRUE;
  if (!g_error_matches (err, SHM_AREA_ERROR, SHM_AREA_ERROR_NOT_FOUND)) {
    g_propagate_error (error, g_steal_pointer (&err));
    return FALSE;
  }
  if (access (dir, W_OK | X_OK) < 0) {
    g_set_error (error, SHM_ENGINE_ERROR, SHM_ENGINE_ERROR_OPEN_WRITE,
        "Could not create \"%s\": %s.", s->cfg.path, g_strerror (errno));
    return FALSE;
  }
  return TRUE;
}

/* Only this host reaches it: a TCP listener on a loopback address. */
static gboolean
listener_is_loopback (GSocket * listener)
{
  g_autoptr (GSocketAddress) local = g_socket_get_local_address (listener,
      NULL);

  return local && G_IS_INET_SOCKET_ADDRESS (local)
      && g_inet_address_get_is_loopback (g_inet_socket_address_get_address
      (G_INET_SOCKET_ADDRESS (local)));
}

static gboolean
listen_on (ShmSender * s, ShmAddress * addr, GError ** error)
{
  g_autoptr (GError) err = NULL;
  struct stat st;

  s->listener = shm_address_listen (addr, s->cfg.mode, s->gid, &err);
  if (!s->listener) {
    if (g_error_matches (err, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE))
      g_set_error (error, SHM_ENGINE_ERROR, SHM_ENGINE_ERROR_BUSY,
          "Another shmsink owns \"%s\": its control socket answers.",
          s->cfg.path);
    else if (g_error_matches (err, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED))
      g_set_error (error, SHM_ENGINE_ERROR, SHM_ENGINE_ERROR_OPEN_WRITE,
          "Could not create the control socket for \"%s\": permission "
          "denied.", s->cfg.path);
    else
      g_set_error (error, SHM_ENGINE_ERROR, SHM_ENGINE_ERROR_OPEN_WRITE,
          "Could not listen on %s: %s", s->cfg.control, err->message);
    return FALSE;
  }
  s->listen_loopback = listener_is_loopback (s->listener);
  if (addr->kind == SHM_ADDRESS_UNIX && stat (addr->path, &st) == 0) {
    s->socket_path = g_strdup (addr->path);
    s->socket_dev = st.st_dev;
    s->socket_ino = st.st_ino;
    s->socket_gid = st.st_gid;
  }
  return TRUE;
}

/* control=ring: the receivers find the rings in the area's header, so the
 * area is laid out now, before any caps: it must have a size already (a
 * QEMU backing file, a BAR) or be given one. */
static gboolean
start_ring (ShmSender * s, GError ** error)
{
  gboolean ok;

  if (!s->existing && s->cfg.size == 0) {
    g_set_error (error, SHM_ENGINE_ERROR, SHM_ENGINE_ERROR_SETTINGS,
        "control=ring needs an area of a known size before any caps: \"%s\" "
        "does not exist, so set the size property (bytes), or create the "
        "file first.", s->cfg.path);
    return FALSE;
  }
  g_mutex_lock (&s->lock);
  s->ring = TRUE;
  ok = ensure_area_locked (s, SHM_AREA_PAGE, error);
  g_mutex_unlock (&s->lock);
  return ok;
}

/* --- lifetime ------------------------------------------------------------- */

ShmSender *
shm_sender_new (const ShmSenderConfig * c, const ShmSenderCallbacks * cb,
    gpointer user_data)
{
  ShmSender *s = g_new0 (ShmSender, 1);

  s->cb = *cb;
  s->user_data = user_data;
  s->cfg = *c;
  s->cfg.path = g_strdup (c->path);
  s->cfg.control = g_strdup (c->control);
  s->cfg.secret = g_strdup (c->secret);
  s->cfg.group = g_strdup (c->group);
  s->gid = -1;
  s->last_seq = G_MAXUINT64;
  g_mutex_init (&s->lock);
  g_cond_init (&s->cond);
  return s;
}

void
shm_sender_free (ShmSender * s)
{
  shm_sender_stop (s);
  g_free ((gchar *) s->cfg.path);
  g_free ((gchar *) s->cfg.control);
  g_free ((gchar *) s->cfg.secret);
  g_free ((gchar *) s->cfg.group);
  if (s->packed)
    g_byte_array_unref (s->packed);
  g_mutex_clear (&s->lock);
  g_cond_clear (&s->cond);
  g_free (s);
}

/**
 * shm_sender_start:
 *
 * Checks the area's path, listens on the control address (or lays the
 * area out for the in-band rings) and starts the control thread.
 */
gboolean
shm_sender_start (ShmSender * s, GError ** error)
{
  ShmAddress addr;
  gboolean ok;

  if (!shm_address_parse (s->cfg.control, &addr, error)) {
    (*error)->domain = SHM_ENGINE_ERROR;
    (*error)->code = SHM_ENGINE_ERROR_SETTINGS;
    return FALSE;
  }
  s->gid = -1;
  if (s->cfg.group && *s->cfg.group) {
    gid_t gid;

    if (!shm_group_lookup (s->cfg.group, &gid, error)) {
      g_prefix_error (error, "group=%s: ", s->cfg.group);
      (*error)->domain = SHM_ENGINE_ERROR;
      (*error)->code = SHM_ENGINE_ERROR_SETTINGS;
      shm_address_clear (&addr);
      return FALSE;
    }
    s->gid = gid;
  }
  ok = check_area_path (s, error);
  g_mutex_lock (&s->lock);
  s->started = TRUE;
  s->fatal = FALSE;
  g_mutex_unlock (&s->lock);
  if (ok)
    ok = addr.kind == SHM_ADDRESS_RING ? start_ring (s, error)
        : listen_on (s, &addr, error);
  shm_address_clear (&addr);
  if (!ok) {
    shm_sender_stop (s);
    return FALSE;
  }

  shm_loop_init (&s->loop);
  if (s->listener) {
    s->listen_source = g_socket_create_source (s->listener, G_IO_IN, NULL);
    g_source_set_callback (s->listen_source,
        (GSourceFunc) (void (*)(void)) on_incoming, s, NULL);
    g_source_attach (s->listen_source, s->loop.context);
  } else {
    s->ring_source = shm_loop_add_timeout (&s->loop, RING_POLL_MS,
        on_ring_poll, s);
  }
  s->tick_source = shm_loop_add_timeout (&s->loop, TICK_MS, on_tick, s);
  shm_loop_run (&s->loop, "shmsink-control");
  return TRUE;
}


/* Stops the control thread, says bye to every receiver, and removes what
 * it created (the area, the socket).  A file it did not create stays, but
 * no longer holds a served area. */
void
shm_sender_stop (ShmSender * s)
{
  struct stat st;
  GList *peers;

  shm_loop_stop (&s->loop);
  g_mutex_lock (&s->lock);
  s->started = FALSE;
  g_cond_broadcast (&s->cond);
  peers = g_steal_pointer (&s->peers);
  s->n_ready = 0;
  g_atomic_int_set (&s->n_paced, 0);
  s->used_lanes = 0;
  g_mutex_unlock (&s->lock);

  for (GList * l = peers; l; l = l->next) {
    ShmPeer *p = l->data;
    shm_send_bye (p->conn, "shmsink stopped");
    if (p->said_hello)
      s->cb.gone (s, p, s->user_data);
    peer_free (p);
  }
  g_list_free (peers);

  shm_source_clear (&s->listen_source);
  shm_source_clear (&s->tick_source);
  shm_source_clear (&s->ring_source);
  if (s->listener) {
    g_socket_close (s->listener, NULL);
    g_clear_object (&s->listener);
  }
  /* our socket, unless someone else's has replaced it */
  if (s->socket_path && lstat (s->socket_path, &st) == 0
      && st.st_dev == s->socket_dev && st.st_ino == s->socket_ino)
    g_unlink (s->socket_path);
  g_clear_pointer (&s->socket_path, g_free);
  shm_loop_clear (&s->loop);

  g_mutex_lock (&s->lock);
  if (s->slots) {
    ShmArea *area = shm_slots_get_area (s->slots);
    if (!shm_area_is_created (area))
      shm_area_retire (area);
    shm_area_unlink (area, NULL);
    shm_slots_set_flushing (s->slots, TRUE);
    g_clear_pointer (&s->slots, shm_slots_unref);
  }
  s->ring = FALSE;
  memset (s->ring_served, 0, sizeof s->ring_served);
  g_clear_pointer (&s->existing, shm_area_unref);
  g_clear_pointer (&s->caps, g_free);
  g_mutex_unlock (&s->lock);
}

/* --- streaming side ----------------------------------------------------- */

/**
 * shm_sender_set_caps:
 * @caps: the stream's caps (string form)
 * @frame_size: the largest frame they make
 * @fit: frames of unknown size: any slot size already there will do
 *
 * Sizes the area for @frame_size (creating or replacing it) and tells the
 * ready receivers the caps of the frames that follow (a new generation).
 */
gboolean
shm_sender_set_caps (ShmSender * s, const gchar * caps, guint64 frame_size,
    gboolean fit, GError ** error)
{
  ShmReady r = { 0, };
  gboolean ok;

  g_mutex_lock (&s->lock);
  if (fit && s->slots)
    frame_size = MIN (frame_size, s->geo.slot_size);
  ok = !s->fatal && ensure_area_locked (s, frame_size, error);
  if (ok) {
    g_free (s->caps);
    s->caps = g_strdup (caps);
    r.caps = s->caps;
    r.caps_gen = ++s->caps_gen;
    s->last_seq = G_MAXUINT64;
    for (GList * l = s->peers; l; l = l->next) {
      ShmPeer *p = l->data;
      GVariantDict d;
      if (p->state != PEER_READY)
        continue;
      g_variant_dict_init (&d, NULL);
      shm_caps_insert (&d, r.caps, r.caps_gen);
      shm_conn_send (p->conn, SHM_MSG_CAPS, g_variant_dict_end (&d), NULL);
    }
  } else if (!s->fatal) {
    s->fatal = TRUE;
  } else {
    g_set_error (error, SHM_ENGINE_ERROR, SHM_ENGINE_ERROR_FAILED,
        "an error was posted before");
  }
  g_mutex_unlock (&s->lock);
  return ok;
}

/**
 * shm_sender_set_grid:
 * @grid: (nullable): the tile grid of the current caps (shmdamage.h), or
 *   NULL when its frames carry no damage
 *
 * Frames whose records carry a tile map go to the receivers that get
 * frames inline and offered SHM_FEATURE_DAMAGE as their changed tiles
 * only, when they have the frame the map is relative to.
 */
void
shm_sender_set_grid (ShmSender * s, const ShmTileGrid * grid)
{
  g_mutex_lock (&s->lock);
  if (grid)
    s->grid = *grid;
  else
    memset (&s->grid, 0, sizeof s->grid);
  g_mutex_unlock (&s->lock);
}

/* A buffer bigger than the slots: a bigger area, if it may. */
gboolean
shm_sender_grow (ShmSender * s, guint64 frame_size, GError ** error)
{
  gboolean ok;

  g_mutex_lock (&s->lock);
  ok = ensure_area_locked (s, frame_size, error);
  if (!ok)
    s->fatal = TRUE;
  g_mutex_unlock (&s->lock);
  return ok;
}

/* Returns: (transfer full) (nullable): the current area's slots */
ShmSlots *
shm_sender_get_slots (ShmSender * s)
{
  ShmSlots *slots;

  g_mutex_lock (&s->lock);
  slots = s->slots ? shm_slots_ref (s->slots) : NULL;
  g_mutex_unlock (&s->lock);
  return slots;
}

/* The largest frame an area that the sender may not grow can hold, or 0
 * when it can make its area as big as needed. */
guint64
shm_sender_max_frame_size (ShmSender * s)
{
  ShmGeometry geo;
  guint64 area_size = s->cfg.size;

  g_mutex_lock (&s->lock);
  if (s->slots && !shm_area_is_created (shm_slots_get_area (s->slots))) {
    area_size = s->geo.slot_size;
    g_mutex_unlock (&s->lock);
    return area_size;
  }
  if (s->existing)
    area_size = shm_area_get_size (s->existing);
  g_mutex_unlock (&s->lock);
  if (!area_size)
    return 0;
  if (!shm_geometry_compute (&geo, area_size, s->cfg.num_slots, 1,
          s->ring ? SHM_RING_REGION_SIZE : 0, NULL))
    return 1;                   /* nothing fits */
  return geo.slot_size;
}

/* @min: receivers that must be ready before frames flow (0: none) */
void
shm_sender_set_min_ready (ShmSender * s, guint min)
{
  g_mutex_lock (&s->lock);
  s->min_ready = min;
  g_cond_broadcast (&s->cond);
  g_mutex_unlock (&s->lock);
}

/* The size of an area that holds the slots for frames of @frame_size
 * bytes (and the in-band rings, if they are used). */
guint64
shm_sender_size_needed (ShmSender * s, guint64 frame_size)
{
  return shm_geometry_size_needed (s->cfg.num_slots, frame_size,
      s->ring ? SHM_RING_REGION_SIZE : 0);
}

/**
 * shm_sender_wait_ready:
 *
 * Waits until as many receivers as shm_sender_set_min_ready() said are
 * ready.
 *
 * Returns: SHM_SEND_OK, SHM_SEND_FLUSHING (unlocked), or SHM_SEND_ERROR.
 */
/* The streaming thread waits for receivers: the control thread says so
 * now and then (say_waiting_locked). */
static void
wait_begin_locked (ShmSender * s)
{
  if (s->n_waiting++ == 0)
    s->waiting_since = g_get_monotonic_time ();
}

static void
wait_end_locked (ShmSender * s)
{
  if (--s->n_waiting == 0)
    s->waiting_since = s->last_wait_warn = 0;
}

ShmSendResult
shm_sender_wait_ready (ShmSender * s)
{
  ShmSendResult ret = SHM_SEND_OK;

  g_mutex_lock (&s->lock);
  wait_begin_locked (s);
  while (s->n_ready < s->min_ready && !g_atomic_int_get (&s->flushing)
      && !s->fatal && s->started)
    g_cond_wait (&s->cond, &s->lock);
  wait_end_locked (s);
  if (s->fatal)
    ret = SHM_SEND_ERROR;
  else if (g_atomic_int_get (&s->flushing))
    ret = SHM_SEND_FLUSHING;
  g_mutex_unlock (&s->lock);
  return ret;
}

guint
shm_sender_get_unlocks (ShmSender * s)
{
  guint n;

  g_mutex_lock (&s->lock);
  n = s->unlocks;
  g_mutex_unlock (&s->lock);
  return n;
}

/**
 * shm_sender_wait_hellos:
 * @unlocks: shm_sender_get_unlocks() before: an unlock since ends the wait
 * @count: how many receivers said what they accept (the element's view)
 *
 * Waits until @count says @min, or an unlock, an error or a stop.
 * Returns: whether @min were reached.
 */
gboolean
shm_sender_wait_hellos (ShmSender * s, guint min, guint unlocks,
    guint (*count) (gpointer data), gpointer data)
{
  gboolean reached;

  g_mutex_lock (&s->lock);
  wait_begin_locked (s);
  while (!(reached = count (data) >= min) && s->started && !s->fatal
      && s->unlocks == unlocks)
    g_cond_wait (&s->cond, &s->lock);
  wait_end_locked (s);
  g_mutex_unlock (&s->lock);
  return reached;
}

/* Something a wait depends on changed outside the engine (a property, a
 * state change): every wait looks again. */
void
shm_sender_wake_waits (ShmSender * s)
{
  g_mutex_lock (&s->lock);
  s->unlocks++;
  g_cond_broadcast (&s->cond);
  g_mutex_unlock (&s->lock);
}

void
shm_sender_set_flushing (ShmSender * s, gboolean flushing)
{
  g_mutex_lock (&s->lock);
  g_atomic_int_set (&s->flushing, flushing);
  if (flushing)
    s->unlocks++;
  g_cond_broadcast (&s->cond);
  if (s->slots)
    shm_slots_set_flushing (s->slots, flushing);
  g_mutex_unlock (&s->lock);
}

const gint *
shm_sender_flushing_flag (ShmSender * s)
{
  return &s->flushing;
}

void
shm_sender_set_timeouts (ShmSender * s, gint64 slot_timeout_us,
    gint64 peer_timeout_us)
{
  g_mutex_lock (&s->lock);
  s->cfg.slot_timeout_us = slot_timeout_us;
  s->cfg.peer_timeout_us = peer_timeout_us;
  if (s->slots)
    shm_slots_set_timeout (s->slots, slot_timeout_us);
  g_mutex_unlock (&s->lock);
}

/* The number of the next frame (tests start it near the wrap). */
void
shm_sender_set_next_seq (ShmSender * s, guint64 seq)
{
  g_mutex_lock (&s->lock);
  s->seq = seq;
  s->last_seq = G_MAXUINT64;
  g_mutex_unlock (&s->lock);
}

void
shm_sender_count_drop (ShmSender * s)
{
  g_mutex_lock (&s->lock);
  s->stats.frames_rendered++;
  s->stats.frames_dropped++;
  g_mutex_unlock (&s->lock);
}

void
shm_sender_get_stats (ShmSender * s, ShmSenderStats * stats)
{
  g_mutex_lock (&s->lock);
  *stats = s->stats;
  stats->receivers = s->n_ready;
  stats->area_size = s->slots ? s->geo.area_size : 0;
  stats->slot_size = s->slots ? s->geo.slot_size : 0;
  stats->n_slots = s->slots ? s->geo.n_slots : 0;
  g_mutex_unlock (&s->lock);
}

/* --- frames --------------------------------------------------------------- */

/* A receiver that gets frames through its connection has at most
 * INLINE_MAX_QUEUED frames queued there.  With the lock. */
static gboolean
inline_behind_locked (ShmSender * s, ShmPeer * p, gsize size)
{
  return shm_conn_get_queued (p->conn) + size
      > INLINE_MAX_QUEUED * s->geo.slot_size;
}

/* The receivers that take every frame (non-live): inline ones whose
 * connection is full, or the lanes of those in the area whose channel is
 * (@lanes).  With the lock. */
static ShmPeer *
inline_behind_peer_locked (ShmSender * s, gsize size)
{
  for (GList * l = s->peers; l; l = l->next) {
    ShmPeer *p = l->data;
    if (p->state == PEER_READY && p->frames_inline && !p->live && !p->lagging
        && inline_behind_locked (s, p, size))
      return p;
  }
  return NULL;
}

static guint64
paced_lanes_locked (ShmSender * s)
{
  guint64 lanes = 0;

  for (GList * l = s->peers; l; l = l->next) {
    ShmPeer *p = l->data;
    if (p->state == PEER_READY && !p->frames_inline && !p->live && !p->lagging)
      lanes |= G_GUINT64_CONSTANT (1) << p->lane;
  }
  return lanes;
}

/* A non-live receiver asks for every frame: before a frame of @size bytes,
 * waits (at most the slot timeout) for room in the channels and
 * connections of such receivers.  One that does not catch up in time
 * misses frames, without further waits, until it does. */
static void
pace (ShmSender * s, ShmSlots * slots, gsize size)
{
  gint64 deadline;
  guint64 lanes, full;
  ShmPeer *behind;

  /* (no receiver asks for every frame: nothing to wait for) */
  if (!g_atomic_int_get (&s->n_paced))
    return;
  g_mutex_lock (&s->lock);
  deadline = s->cfg.slot_timeout_us < 0 ? -1 : g_get_monotonic_time ()
      + s->cfg.slot_timeout_us;
  lanes = paced_lanes_locked (s);
  g_mutex_unlock (&s->lock);
  if (lanes) {
    full = shm_slots_wait_room (slots, lanes, TRUE, deadline, &s->flushing);
    g_mutex_lock (&s->lock);
    for (GList * l = s->peers; l && full; l = l->next) {
      ShmPeer *p = l->data;
      if (!p->frames_inline && (full & (G_GUINT64_CONSTANT (1) << p->lane)))
        p->lagging = TRUE;
    }
    g_mutex_unlock (&s->lock);
  }

  g_mutex_lock (&s->lock);
  while (!g_atomic_int_get (&s->flushing)
      && (behind = inline_behind_peer_locked (s, size))) {
    if (deadline >= 0 && g_get_monotonic_time () >= deadline) {
      behind->lagging = TRUE;
      continue;
    }
    g_cond_wait_until (&s->cond, &s->lock, deadline < 0
        ? g_get_monotonic_time () + 2 * G_TIME_SPAN_MILLISECOND
        : MIN (deadline, g_get_monotonic_time ()
            + 2 * G_TIME_SPAN_MILLISECOND));
  }
  g_mutex_unlock (&s->lock);
}

/* Which lanes get this frame in the area, and how many receivers get it
 * inline.  A live receiver whose channel is full misses it; with several
 * receivers, a live one that lags never stalls the sender or the others:
 * when this frame takes the last free slot, the live receiver furthest
 * behind, of those with records they have not taken yet, misses it (and
 * sees a gap) if it still holds a frame at least n_slots - 1 frames old.  A non-live receiver asks for every frame and
 * paces the sender, as a single receiver does.  With the lock. */
static guint64
choose_lanes_locked (ShmSender * s, ShmSlots * slots, guint64 seq,
    guint * n_inline)
{
  guint64 lanes = 0, live = 0, waiting, room, age, bit, skipped;
  gint lag;

  *n_inline = 0;
  for (GList * l = s->peers; l; l = l->next) {
    ShmPeer *p = l->data;
    if (p->state != PEER_READY)
      continue;
    if (p->frames_inline) {
      (*n_inline)++;
      continue;
    }
    bit = G_GUINT64_CONSTANT (1) << p->lane;
    lanes |= bit;
    if (p->live)
      live |= bit;
  }
  room = shm_slots_lanes_with_room (slots, lanes, live,
      MAX (1, s->geo.n_slots - 2), &waiting);
  skipped = lanes & ~room;
  lanes = room;
  live &= room;
  /* (only one with records it has not taken yet: one that took them all
   * holds its frames for its downstream, as a sink keeps its last one, and
   * gives them back only when the next frames come) */
  live &= waiting;
  if (s->n_ready > 1 && live && shm_slots_count_free (slots) == 0) {
    lag = shm_slots_furthest_behind (slots, live, seq, &age);
    if (lag >= 0 && age >= s->geo.n_slots - 1) {
      lanes &= ~(G_GUINT64_CONSTANT (1) << lag);
      skipped |= G_GUINT64_CONSTANT (1) << lag;
    }
  }
  s->stats.frames_skipped += __builtin_popcountll (skipped);
  for (GList * l = s->peers; l && skipped; l = l->next) {
    ShmPeer *p = l->data;
    if (p->state == PEER_READY && !p->frames_inline
        && (skipped & (G_GUINT64_CONSTANT (1) << p->lane)))
      p->missed++;
  }
  return lanes;
}

/* Publishes @r in @lanes.  A receiver that missed frames since the last
 * one it got gets a record of its own whose tile map covers what changed
 * since that one, so that it can still patch; the others get @r.  Returns
 * the lanes that said they sleep.  With the lock. */
static guint64
publish_locked (ShmSender * s, ShmSlots * slots, guint64 lanes,
    const ShmRecord * r)
{
  gboolean damage = (r->record_flags & SHM_RECORD_FLAG_DAMAGE)
      && r->damage_base != G_MAXUINT64;
  guint64 normal = lanes, sleeping = 0;

  for (GList * l = s->peers; l; l = l->next) {
    ShmPeer *p = l->data;
    guint64 bit = G_GUINT64_CONSTANT (1) << p->lane;
    if (p->state != PEER_READY || p->frames_inline)
      continue;
    if (!(lanes & bit)) {
      /* (a frame with no map: what changed is no longer known) */
      if (damage && p->have_seq != G_MAXUINT64)
        shm_tile_map_or (&p->missed_map, &r->damage);
      else
        p->have_seq = G_MAXUINT64;
      continue;
    }
    if (damage && p->have_seq != G_MAXUINT64 && p->have_seq != r->damage_base) {
      ShmRecord own = *r;
      own.damage_base = p->have_seq;
      shm_tile_map_or (&own.damage, &p->missed_map);
      normal &= ~bit;
      sleeping |= shm_slots_publish (slots, bit, &own);
    }
    p->have_seq = r->seq;
    memset (&p->missed_map, 0, sizeof p->missed_map);
  }
  return sleeping | shm_slots_publish (slots, normal, r);
}

/* Wakes the receivers of @sleeping lanes that said they sleep.  With the
 * lock. */
static void
wake_locked (ShmSender * s, ShmSlots * slots, guint64 sleeping)
{
  for (GList * l = s->peers; l && sleeping; l = l->next) {
    ShmPeer *p = l->data;
    guint64 bit = G_GUINT64_CONSTANT (1) << p->lane;
    if (p->state != PEER_READY || p->frames_inline || !(sleeping & bit))
      continue;
    sleeping &= ~bit;
    if (p->wake == SHM_WAKE_FUTEX) {
      shm_bell_ring (shm_slots_lane_bell (slots, p->lane));
    } else if (p->wake == SHM_WAKE_DOORBELL) {
      shm_send_doorbell (p->conn);
      s->stats.doorbells++;
    }
  }
}

/* The changed tiles of @r's frame (at @data), packed, or NULL when the
 * record has no tile map on the current grid, or when they are half the
 * frame or more (the frame goes whole: the receiver then need not copy
 * it).  Packs each map of a frame once.  With the lock. */
static const GByteArray *
pack_locked (ShmSender * s, const ShmRecord * r, const guint8 * data)
{
  ShmPlanes planes = { {0}, {0} };
  guint64 bytes;

  if (!shm_record_damage_fits (r, &s->grid)
      || r->n_planes != s->grid.n_planes)
    return NULL;
  bytes = shm_damage_bytes (&s->grid, &r->damage);
  if (bytes >= r->size / 2)
    return NULL;
  if (s->packed && s->packed_seq == r->seq
      && memcmp (&s->packed_map, &r->damage, sizeof r->damage) == 0)
    return s->packed;
  for (guint i = 0; i < r->n_planes; i++) {
    planes.data[i] = data + r->plane_offset[i];
    planes.stride[i] = r->plane_stride[i];
  }
  if (!s->packed)
    s->packed = g_byte_array_new ();
  g_byte_array_set_size (s->packed, bytes);
  shm_damage_pack (&s->grid, &r->damage, &planes, s->packed->data);
  s->packed_seq = r->seq;
  s->packed_map = r->damage;
  return s->packed;
}

/* The record an inline receiver gets for frame @r: its map leads from the
 * last frame it got (it may have missed some).  Returns whether the frame
 * may go as its changed tiles only: the receiver said it can, did not ask
 * for a whole frame, and has a frame the map leads from. */
static gboolean
inline_record_locked (ShmPeer * p, const ShmRecord * r, ShmRecord * own)
{
  *own = *r;
  if (!(r->record_flags & SHM_RECORD_FLAG_DAMAGE)
      || r->damage_base == G_MAXUINT64 || p->inline_seq == G_MAXUINT64)
    return FALSE;
  if (p->inline_seq != r->damage_base) {
    own->damage_base = p->inline_seq;
    shm_tile_map_or (&own->damage, &p->missed_map);
  }
  return (p->features & SHM_FEATURE_DAMAGE) && !p->want_full;
}

/* An inline receiver misses frame @r: what changed in it joins what it
 * will need.  With the lock. */
static void
inline_missed_locked (ShmPeer * p, const ShmRecord * r)
{
  if ((r->record_flags & SHM_RECORD_FLAG_DAMAGE)
      && r->damage_base != G_MAXUINT64 && p->inline_seq != G_MAXUINT64)
    shm_tile_map_or (&p->missed_map, &r->damage);
  else
    p->inline_seq = G_MAXUINT64;
}

/* Sends @record (and @data) to every receiver that gets frames inline,
 * unless its connection is full: whole, or as its changed tiles.  With
 * the lock. */
static guint
send_inline_locked (ShmSender * s, const ShmRecord * record,
    const guint8 * data)
{
  gboolean frame = record->type == SHM_RECORD_FRAME;
  guint n = 0;

  for (GList * l = s->peers; l; l = l->next) {
    ShmPeer *p = l->data;
    guint8 head[SHM_RECORD_SIZE];
    const GByteArray *packed = NULL;
    const guint8 *body = data;
    gsize size = frame ? record->size : 0;
    ShmRecord own;

    if (p->state != PEER_READY || !p->frames_inline)
      continue;
    if (frame && inline_behind_locked (s, p, size)) {
      s->stats.frames_skipped++;
      p->missed++;
      inline_missed_locked (p, record);
      continue;
    }
    p->lagging = FALSE;
    if (frame && inline_record_locked (p, record, &own))
      packed = pack_locked (s, &own, data);
    else if (!frame)
      own = *record;
    if (packed) {
      own.record_flags |= SHM_RECORD_FLAG_PARTIAL;
      body = packed->data;
      size = packed->len;
    }
    shm_record_encode (&own, head);
    if (shm_conn_send_parts (p->conn, SHM_MSG_RECORD, NULL, head,
            SHM_RECORD_SIZE, body, size, NULL)) {
      n++;
      s->stats.bytes_inline += SHM_RECORD_SIZE + size;
      if (frame) {
        p->inline_seq = record->seq;
        memset (&p->missed_map, 0, sizeof p->missed_map);
        p->want_full &= packed != NULL;
      }
    } else if (frame) {
      inline_missed_locked (p, record);
    }
  }
  return n;
}

/**
 * shm_sender_send:
 * @slots: the slots the frame lies in (shm_sender_get_slots())
 * @record: the frame: slot, offset, size, times, flags and planes filled
 *   in; seq, caps generation and send time are the engine's
 * @copied: the sender copied the frame into its slot (not zero-copy)
 *
 * Publishes one frame to every ready receiver, according to the slot
 * policy.  Its pixels must be written before.
 */
ShmSendResult
shm_sender_send (ShmSender * s, ShmSlots * slots, ShmRecord * record,
    gboolean copied)
{
  guint64 lanes;
  guint n_inline;

  pace (s, slots, record->size);
  g_mutex_lock (&s->lock);
  if (s->slots != slots) {
    g_mutex_unlock (&s->lock);
    return SHM_SEND_REPLACED;
  }
  record->type = SHM_RECORD_FRAME;
  record->seq = s->seq++;
  /* (a tile map is relative to the frame sent before; the first one of
   * its caps changed everywhere, relative to none) */
  if (!shm_record_damage_fits (record, &s->grid))
    record->record_flags &= ~(SHM_RECORD_FLAG_DAMAGE | SHM_RECORD_FLAG_PARTIAL);
  else if (s->last_seq == G_MAXUINT64)
    shm_tile_map_fill (&record->damage, &s->grid);
  record->damage_base = s->last_seq;
  s->last_seq = record->seq;
  record->caps_gen = s->caps_gen;
  record->send_time = g_get_monotonic_time () * 1000;
  s->stats.frames_rendered++;
  lanes = choose_lanes_locked (s, slots, record->seq, &n_inline);
  for (GList * l = s->peers; l && lanes; l = l->next) {
    ShmPeer *p = l->data;
    if (!p->frames_inline && (lanes & (G_GUINT64_CONSTANT (1) << p->lane)))
      p->lagging = FALSE;
  }
  if (lanes || n_inline) {
    guint64 sleeping = publish_locked (s, slots, lanes, record);
    wake_locked (s, slots, sleeping);
    if (n_inline)
      s->stats.frames_inline += send_inline_locked (s, record,
          shm_slots_get_slot_data (slots, record->slot) + record->offset);
    s->stats.frames_sent++;
    if (copied) {
      s->stats.frames_copied++;
      s->stats.bytes_copied += record->size;
    } else {
      s->stats.frames_zero_copy++;
    }
  } else {
    /* (those that miss it still need to know what changed in it) */
    publish_locked (s, slots, 0, record);
    s->stats.frames_unsent++;
  }
  g_mutex_unlock (&s->lock);
  return SHM_SEND_OK;
}

/* Whether every receiver took everything sent to it: its channel's records
 * (the end of stream last), or what its connection still holds.  Names
 * one that did not.  With the lock. */
static ShmPeer *
undrained_locked (ShmSender * s)
{
  for (GList * l = s->peers; l; l = l->next) {
    ShmPeer *p = l->data;
    if (p->state != PEER_READY)
      continue;
    if (p->frames_inline ? shm_conn_get_unread (p->conn) > 0
        : !shm_slots_lane_drained (s->slots, p->lane))
      return p;
  }
  return NULL;
}

/* The lanes of the ready receivers that map the area, given their lanes
 * up to generation @max_gen.  With the lock. */
static guint64
ready_lanes_locked (ShmSender * s, guint32 max_gen)
{
  guint64 lanes = 0;

  for (GList * l = s->peers; l; l = l->next) {
    ShmPeer *q = l->data;
    if (q->state == PEER_READY && !q->frames_inline
        && (gint32) (q->lane_gen - max_gen) <= 0)
      lanes |= G_GUINT64_CONSTANT (1) << q->lane;
  }
  return lanes;
}

/**
 * shm_sender_send_eos:
 *
 * Ends the stream of every ready receiver, then waits until each has read
 * everything sent to it, the end last (at most the peer timeout), so that
 * a sender that stops right after loses nothing still queued for a slow
 * receiver.  A flush ends the wait.
 */
void
shm_sender_send_eos (ShmSender * s)
{
  ShmRecord eos = { 0, };
  gint64 start = g_get_monotonic_time (), deadline;
  guint64 lanes = 0;
  guint32 max_gen;
  ShmSlots *slots;
  ShmPeer *p;

  g_mutex_lock (&s->lock);
  deadline = start + s->cfg.peer_timeout_us;
  slots = s->slots ? shm_slots_ref (s->slots) : NULL;
  eos.type = SHM_RECORD_EOS;
  eos.slot = SHM_RECORD_NO_SLOT;
  eos.seq = s->seq;
  eos.caps_gen = s->caps_gen;
  max_gen = s->next_lane_gen;
  lanes = ready_lanes_locked (s, max_gen);
  send_inline_locked (s, &eos, NULL);
  g_mutex_unlock (&s->lock);
  if (!slots)
    return;

  shm_slots_wait_room (slots, lanes, FALSE, deadline, &s->flushing);
  g_mutex_lock (&s->lock);
  /* (only to the receivers that were there before the wait and still are:
   * a lane given to a new one meanwhile gets no end) */
  lanes &= ready_lanes_locked (s, max_gen);
  if (s->slots == slots)
    wake_locked (s, slots, shm_slots_publish (slots, lanes, &eos));
  while (s->slots == slots && !g_atomic_int_get (&s->flushing)
      && (p = undrained_locked (s))) {
    if (g_get_monotonic_time () >= deadline) {
      g_autofree gchar *name = g_strdup (p->name);
      g_mutex_unlock (&s->lock);
      post_new (s, FALSE, SHM_ENGINE_ERROR_WRITE, NULL, "The receiver at %s "
          "did not read the end of the stream within %.1f s.", name,
          (deadline - start) / (gdouble) G_TIME_SPAN_SECOND);
      shm_slots_unref (slots);
      return;
    }
    g_cond_wait_until (&s->cond, &s->lock, MIN (deadline,
            g_get_monotonic_time () + 2 * G_TIME_SPAN_MILLISECOND));
  }
  g_mutex_unlock (&s->lock);
  shm_slots_unref (slots);
}

/* gst-shm: shmsink
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

/**
 * SECTION:element-shmsink
 * @title: shmsink
 * @see_also: shmsrc
 *
 * Sends video frames to other pipelines (shmsrc) through one shared memory
 * area: a file in /dev/shm on the same host, or the backing file of a QEMU
 * ivshmem device, whose guests map the same memory through the device's PCI
 * BAR.
 *
 * The area is a zero-copy buffer pool: shmsink answers the allocation query
 * with a pool whose buffers are slots of the area, so upstream renders each
 * frame straight into shared memory and shmsink only announces it.  Buffers
 * from anywhere else are copied once into a free slot (counted in #stats).
 *
 * shmsink owns the area: it creates the file when it is missing (sized from
 * the caps, #GstShmSink:num-slots slots; #GstShmSink:size overrides) and
 * removes it when it stops; an existing file is used as it is and never
 * resized or removed.  Receivers connect to the control socket (by default
 * PATH.sock), and before any frame moves both sides prove that they map the
 * same memory: shmsink writes a random token at a random place of the area,
 * the receiver finds it through its own mapping and answers with a token of
 * its own (xpra's mmap handshake).
 *
 * By default shmsink holds frames back until a receiver is ready
 * (#GstShmSink:wait-for-receiver), so that nothing is lost to start-up
 * order.  A receiver holds the slots of the frames it has not released yet;
 * when every slot is held, shmsink waits up to #GstShmSink:slot-timeout for
 * one, then drops the frame (stats: frames-dropped) and drops further
 * frames without waiting until a slot is released.  shmsrc never keeps
 * more than all slots but one, so this only happens when a receiver stops
 * reading.  With several receivers, a live receiver (the default) that
 * falls behind misses frames rather than hold the others back (stats:
 * frames-skipped); a non-live one (is-live=false) gets every frame and
 * paces the sender.  (shmsink keeps no last sample by default:
 * #GstBaseSink:enable-last-sample would pin one slot.)  Its
 * #GstBaseSink:processing-deadline is 0: rendering a frame only announces
 * it.
 *
 * ## Example launch lines
 * |[
 * gst-launch-1.0 videotestsrc is-live=true ! video/x-raw,format=BGRx,width=1280,height=720 ! shmsink path=/dev/shm/demo
 * gst-launch-1.0 shmsrc path=/dev/shm/demo ! videoconvert ! autovideosink
 * ]|
 * |[
 * gst-launch-1.0 ximagesrc ! shmsink path=/dev/shm/x
 * ]|
 *
 * Since: 0.1
 */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstshmsink.h"
#include "gstshmelements.h"
#include "gstshmpool.h"
#include "gstshmnegotiator.h"
#include "gstshmutil.h"
#include "shmaddress.h"
#include "shmarea.h"
#include "shmconn.h"
#include "shmproto.h"
#include "shmring.h"
#include "shmivshmem.h"

#include <gst/video/video.h>
#include <glib/gstdio.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/stat.h>
#include <errno.h>
#include <unistd.h>

GST_DEBUG_CATEGORY_STATIC (gst_shm_sink_debug);
#define GST_CAT_DEFAULT gst_shm_sink_debug

#define DEFAULT_NUM_SLOTS 4
#define DEFAULT_SIZE 0
#define DEFAULT_MODE 0600
#define DEFAULT_WAIT_FOR_RECEIVER TRUE
#define DEFAULT_MIN_RECEIVERS 1
#define DEFAULT_SLOT_TIMEOUT GST_SECOND
#define DEFAULT_PEER_TIMEOUT (5 * GST_SECOND)
#define DEFAULT_ALLOW_SYMLINK FALSE
#define DEFAULT_INLINE_FALLBACK TRUE
#define RING_POLL_MS 20
/* Slot size for caps whose frame size is not known (not raw video). */
#define DEFAULT_UNKNOWN_FRAME_SIZE (1024 * 1024)
#define HANDSHAKE_TIMEOUT_US (10 * G_USEC_PER_SEC)
#define TICK_MS 500

enum
{
  PROP_0,
  PROP_PATH,
  PROP_CONTROL,
  PROP_NUM_SLOTS,
  PROP_SIZE,
  PROP_MODE,
  PROP_WAIT_FOR_RECEIVER,
  PROP_MIN_RECEIVERS,
  PROP_SLOT_TIMEOUT,
  PROP_PEER_TIMEOUT,
  PROP_ALLOW_SYMLINK,
  PROP_INLINE_FALLBACK,
  PROP_STATS,
};

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);

typedef enum
{
  RECV_AWAIT_HELLO,
  RECV_AWAIT_AREA,
  RECV_AWAIT_REPLY,
  RECV_READY,
} ReceiverState;

typedef struct
{
  GstShmSink *sink;
  ShmConn *conn;
  gchar *peer;                  /* "process 1234", "tcp:10.0.2.15:4000" */
  gchar *peer_path;             /* the path the receiver maps */
  ReceiverState state;
  guint lane;
  guint8 token[SHM_TOKEN_BYTES];
  guint64 token_index;
  guint64 session;
  GstCaps *accept;
  gboolean live;                /* may miss frames when it lags */
  gint64 last_seen;             /* control thread */
  gint64 since;
  gboolean said_bye;
  gboolean network;             /* over TCP or vsock */
  gboolean inline_frames;       /* gets frames through the connection */
  gboolean inline_lagging;      /* non-live, inline: gave up waiting for it
                                 * until it catches up (self->lock) */
  gint ring_lane;               /* in-band lane, or -1 */
  guint64 ring_id;
} Receiver;

struct _GstShmSink
{
  GstBaseSink parent;

  /* properties: GST_OBJECT_LOCK */
  gchar *path;
  gchar *control;
  guint num_slots;
  guint64 size;
  guint mode;
  GstClockTime slot_timeout;
  GstClockTime peer_timeout;
  gboolean allow_symlink;
  gboolean inline_fallback;

  /* control thread; created in start, joined in stop */
  GMainContext *context;
  GMainLoop *loop;
  GThread *thread;
  GSocket *listener;
  GSource *listen_source;
  GSource *tick_source;
  gchar *socket_path;           /* a unix socket we bound */
  dev_t socket_dev;
  ino_t socket_ino;
  gboolean ring;                /* control=ring: in-band lanes */
  GSource *ring_source;
  guint64 ring_served[SHM_RING_LANES];

  /* what each receiver accepts (own lock) */
  GstShmNegotiator *negotiator;
  gboolean conflict_posted;

  /* self->lock */
  GMutex lock;
  GCond cond;
  GList *receivers;
  guint n_ready;
  guint64 used_lanes;
  gboolean wait_for_receiver;
  guint min_receivers;
  gboolean unlock;
  guint unlocks;                /* unlock() calls: a wait outside render sees
                                 * one (unlock_stop may follow at once) */
  gboolean query_may_wait;      /* not going down in state */
  gboolean started;
  gboolean fatal;               /* an error was posted: render() fails */
  gchar *area_path;             /* copy of path while started */
  ShmArea *existing;            /* a file that was there at start */
  ShmGeometry geo;
  GstShmSlots *slots;           /* current area; NULL before caps */
  GstCaps *caps;
  GstVideoInfo vinfo;
  gboolean is_video;
  guint64 seq;
  gboolean uses_monotonic;
  gboolean warned_drop;
  /* stats */
  guint64 frames_rendered;
  guint64 frames_sent;
  guint64 frames_zero_copy;
  guint64 frames_copied;
  guint64 bytes_copied;
  guint64 frames_dropped;
  guint64 frames_unsent;
  guint64 frames_skipped;
  guint64 frames_inline;
  guint64 receivers_connected;
  guint64 sessions;
};

#define gst_shm_sink_parent_class parent_class
G_DEFINE_TYPE (GstShmSink, gst_shm_sink, GST_TYPE_BASE_SINK);
GST_ELEMENT_REGISTER_DEFINE_WITH_CODE (shmsink, "shmsink", GST_RANK_NONE,
    GST_TYPE_SHM_SINK,
    GST_DEBUG_CATEGORY_INIT (gst_shm_sink_debug, "shmsink", 0, "gst-shm sink"));

static gboolean gst_shm_sink_stop (GstBaseSink * bsink);
static void receiver_drop (GstShmSink * self, Receiver * r,
    const gchar * event, const gchar * reason);

static void
set_fatal (GstShmSink * self)
{
  g_mutex_lock (&self->lock);
  self->fatal = TRUE;
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->lock);
}

/* An error found in the control thread: posted at once, and render()
 * fails too, so that the streaming thread stops. */
#define CONTROL_ERROR(self, domain, code, text, debug) G_STMT_START { \
  GST_ELEMENT_ERROR (self, domain, code, text, debug); \
  set_fatal (self); \
} G_STMT_END

/* --- errors -------------------------------------------------------------- */

static void
post_area_error (GstShmSink * self, const GError * err)
{
  switch (err->domain == SHM_AREA_ERROR ? err->code : -1) {
    case SHM_AREA_ERROR_NOT_FOUND:
      GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND, ("%s", err->message),
          (NULL));
      break;
    case SHM_AREA_ERROR_PERMISSION:
      GST_ELEMENT_ERROR (self, RESOURCE, OPEN_READ_WRITE, ("%s",
              err->message), (NULL));
      break;
    case SHM_AREA_ERROR_NO_SPACE:
    case SHM_AREA_ERROR_TOO_SMALL:
    case SHM_AREA_ERROR_EMPTY:
      GST_ELEMENT_ERROR (self, RESOURCE, NO_SPACE_LEFT, ("%s", err->message),
          (NULL));
      break;
    case SHM_AREA_ERROR_BUSY:
      GST_ELEMENT_ERROR (self, RESOURCE, BUSY, ("%s", err->message), (NULL));
      break;
    case SHM_AREA_ERROR_SYMLINK:
    case SHM_AREA_ERROR_FOREIGN:
    case SHM_AREA_ERROR_NOT_REGULAR:
      GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS, ("%s", err->message),
          (NULL));
      break;
    default:
      GST_ELEMENT_ERROR (self, RESOURCE, FAILED, ("%s", err->message), (NULL));
      break;
  }
}

/* --- receivers: handshake ------------------------------------------------ */

static void
send_error (Receiver * r, const gchar * code, const gchar * message)
{
  GVariantDict d;

  g_variant_dict_init (&d, NULL);
  g_variant_dict_insert (&d, "code", "s", code);
  g_variant_dict_insert (&d, "message", "s", message);
  shm_conn_send (r->conn, SHM_MSG_ERROR, g_variant_dict_end (&d), NULL);
}

/* Writes this receiver's token into its lane and sends the mmap hello.
 * Called with self->lock. */
static void
start_handshake_locked (GstShmSink * self, Receiver * r)
{
  const ShmGeometry *g = &self->geo;
  ShmArea *area = gst_shm_slots_get_area (self->slots);
  g_autoptr (GError) err = NULL;
  GVariantDict d;

  if (r->state == RECV_READY)
    self->n_ready--;

  if (!shm_area_write_token (area, g, r->lane, G_MAXUINT64, r->token,
          SHM_TOKEN_BYTES, &r->token_index, &err)) {
    GST_WARNING_OBJECT (self, "token for %s: %s", r->peer, err->message);
    send_error (r, "internal", err->message);
    shm_conn_close (r->conn);
    return;
  }
  r->session = g->session_id;
  r->state = RECV_AWAIT_REPLY;
  r->since = g_get_monotonic_time ();

  g_variant_dict_init (&d, NULL);
  g_variant_dict_insert (&d, "version", "u", SHM_PROTO_VERSION);
  g_variant_dict_insert (&d, "session", "t", g->session_id);
  g_variant_dict_insert (&d, "file", "s", self->area_path);
  g_variant_dict_insert (&d, "size", "t", g->area_size);
  g_variant_dict_insert_value (&d, "token",
      g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, r->token,
          SHM_TOKEN_BYTES, 1));
  g_variant_dict_insert (&d, "token_index", "t", r->token_index);
  g_variant_dict_insert (&d, "token_bytes", "u", SHM_TOKEN_BYTES);
  g_variant_dict_insert (&d, "lane", "u", r->lane);
  g_variant_dict_insert (&d, "token-offset", "t", g->token_offset);
  g_variant_dict_insert (&d, "token-lanes", "u", g->token_lanes);
  g_variant_dict_insert (&d, "token-lane-size", "u", g->token_lane_size);
  g_variant_dict_insert (&d, "ring-offset", "t", g->ring_offset);
  g_variant_dict_insert (&d, "ring-size", "t", g->ring_size);
  g_variant_dict_insert (&d, "slots-offset", "t", g->slots_offset);
  g_variant_dict_insert (&d, "slot-size", "t", g->slot_size);
  g_variant_dict_insert (&d, "n-slots", "u", g->n_slots);
  g_variant_dict_insert (&d, "flags", "u", g->flags);
  g_variant_dict_insert (&d, "boot-id", "s", gst_shm_boot_id ());
  shm_conn_send (r->conn, SHM_MSG_MMAP, g_variant_dict_end (&d), NULL);
  GST_DEBUG_OBJECT (self, "mmap hello to %s: lane %u, token at %"
      G_GUINT64_FORMAT, r->peer, r->lane, r->token_index);
}

static GVariant *
ready_body_locked (GstShmSink * self)
{
  GVariantDict d;

  g_variant_dict_init (&d, NULL);
  g_variant_dict_insert (&d, "session", "t", self->geo.session_id);
  if (self->caps)
    gst_shm_negotiator_write (&d, self->caps);
  return g_variant_dict_end (&d);
}

/* A receiver that does not accept the running stream is refused; the
 * stream goes on for the others.  Returns FALSE when it was refused. */
static gboolean
check_stream_caps (GstShmSink * self, Receiver * r)
{
  GstCaps *caps;
  gboolean ok;

  g_mutex_lock (&self->lock);
  caps = self->caps ? gst_caps_ref (self->caps) : NULL;
  g_mutex_unlock (&self->lock);
  if (!caps)
    return TRUE;
  ok = gst_shm_negotiator_accepts (self->negotiator, r, caps);
  if (!ok) {
    g_autofree gchar *stream = gst_caps_to_string (caps);
    g_autofree gchar *accept = r->accept ? gst_caps_to_string (r->accept)
        : g_strdup ("ANY");
    g_autofree gchar *msg = g_strdup_printf ("the running stream's caps %s "
        "are not among those this receiver accepts (%s)", stream, accept);
    send_error (r, "caps", msg);
    receiver_drop (self, r, "refused", msg);
  }
  gst_caps_unref (caps);
  return ok;
}

static void
handle_hello (GstShmSink * self, Receiver * r, GVariant * body)
{
  g_autoptr (GError) err = NULL;
  const gchar *path = NULL;
  guint32 version;

  if (!shm_msg_get_u32 (body, "version", 0, G_MAXUINT32, &version, &err))
    goto invalid;
  if (version != SHM_PROTO_VERSION) {
    g_autofree gchar *msg = g_strdup_printf ("protocol version %u is not "
        "supported: this shmsink speaks version %d", version,
        SHM_PROTO_VERSION);
    send_error (r, "version", msg);
    receiver_drop (self, r, "refused", msg);
    return;
  }
  if (shm_msg_has (body, "path")
      && !shm_msg_get_string (body, "path", SHM_MAX_PATH, &path, &err))
    goto invalid;
  if (shm_msg_has (body, "live")) {
    g_autoptr (GVariant) v = g_variant_lookup_value (body, "live",
        G_VARIANT_TYPE_BOOLEAN);
    if (!v) {
      g_set_error (&err, SHM_PROTO_ERROR, SHM_PROTO_ERROR_INVALID,
          "field \"live\" is not a boolean");
      goto invalid;
    }
    r->live = g_variant_get_boolean (v);
  }
  gst_clear_caps (&r->accept);
  r->accept = gst_shm_negotiator_read (body, FALSE, &err);
  if (err)
    goto invalid;
  g_free (r->peer_path);
  r->peer_path = g_strdup (path ? path : "(unknown)");
  GST_INFO_OBJECT (self, "hello from %s mapping %s, accepting %"
      GST_PTR_FORMAT, r->peer, r->peer_path, r->accept);

  gst_shm_negotiator_set_receiver (self->negotiator, r, r->peer, r->accept);
  if (!check_stream_caps (self, r))
    return;
  g_mutex_lock (&self->lock);
  /* a caps query may be waiting for a receiver's caps */
  g_cond_broadcast (&self->cond);
  if (self->slots)
    start_handshake_locked (self, r);
  else
    r->state = RECV_AWAIT_AREA;
  g_mutex_unlock (&self->lock);
  return;

invalid:
  {
    g_autofree gchar *msg = g_strdup_printf ("invalid hello: %s",
        err->message);
    send_error (r, "protocol", msg);
    receiver_drop (self, r, "refused", msg);
  }
}

static gboolean
get_bool (GVariant * body, const gchar * key)
{
  g_autoptr (GVariant) v = g_variant_lookup_value (body, key,
      G_VARIANT_TYPE_BOOLEAN);
  return v && g_variant_get_boolean (v);
}

/* With self->lock: the handshake is complete, frames may flow. */
static void
receiver_ready_locked (GstShmSink * self, Receiver * r)
{
  GVariant *ready = ready_body_locked (self);

  if (r->inline_frames) {
    GVariantDict d;
    g_variant_dict_init (&d, ready);
    g_variant_dict_insert (&d, "inline", "b", TRUE);
    ready = g_variant_dict_end (&d);
    /* room for a few frames: they travel through the connection */
    shm_conn_set_max_queue (r->conn, MAX (4 * 1024 * 1024,
            3 * self->geo.slot_size));
  }
  r->state = RECV_READY;
  self->n_ready++;
  self->receivers_connected++;
  shm_conn_send (r->conn, SHM_MSG_READY, ready, NULL);
  g_cond_broadcast (&self->cond);
}

static void
handle_reply (GstShmSink * self, Receiver * r, GVariant * body)
{
  g_autoptr (GError) err = NULL;
  g_autofree gchar *msg = NULL;
  const guint8 *token = NULL;
  gsize token_len = 0;
  guint64 session, index = 0;
  guint32 token_bytes = 0;
  gboolean want_inline, ok, fallback;
  const gchar *reason;

  want_inline = get_bool (body, "inline");
  if (!shm_msg_get_u64 (body, "session", 0, G_MAXUINT64, &session, &err)
      || (!want_inline && (!shm_msg_get_bytes (body, "token",
                  SHM_TOKEN_MIN_BYTES, SHM_TOKEN_MAX_BYTES, &token,
                  &token_len, &err)
              || !shm_msg_get_u64 (body, "token_index", 0, G_MAXUINT64,
                  &index, &err)
              || !shm_msg_get_u32 (body, "token_bytes", token_len,
                  token_len, &token_bytes, &err)))) {
    msg = g_strdup_printf ("invalid mmap reply: %s", err->message);
    send_error (r, "protocol", msg);
    receiver_drop (self, r, "refused", msg);
    return;
  }
  reason = shm_msg_get_text (body, "reason");

  GST_OBJECT_LOCK (self);
  fallback = self->inline_fallback && r->network;
  GST_OBJECT_UNLOCK (self);

  g_mutex_lock (&self->lock);
  if (session != r->session || !self->slots || session != self->geo.session_id) {
    /* A reply to a handshake that an area change has replaced. */
    g_mutex_unlock (&self->lock);
    GST_DEBUG_OBJECT (self, "stale mmap reply from %s", r->peer);
    return;
  }
  /* The answer must be a token of the receiver's own, not ours echoed. */
  ok = !want_inline && !(token_len == SHM_TOKEN_BYTES
      && memcmp (token, r->token, SHM_TOKEN_BYTES) == 0)
      && shm_area_check_token (gst_shm_slots_get_area (self->slots),
      &self->geo, r->lane, token, token_bytes, index);
  if (want_inline)
    msg = g_strdup_printf ("The sender's area \"%s\" and the receiver's "
        "area \"%s\" do not map the same memory: %s", self->area_path,
        r->peer_path, reason ? reason : "the receiver says so");
  else if (!ok)
    msg = g_strdup_printf ("The sender's area \"%s\" and the receiver's "
        "area \"%s\" do not map the same memory: the receiver's token was "
        "not found in \"%s\"", self->area_path, r->peer_path, self->area_path);
  if (!ok && fallback) {
    /* Peers on different machines: the bytes go through the connection */
    r->inline_frames = TRUE;
    ok = TRUE;
  }
  if (ok)
    receiver_ready_locked (self, r);
  g_mutex_unlock (&self->lock);

  if (ok && r->inline_frames) {
    GST_ELEMENT_WARNING (self, RESOURCE, READ, ("%s; frames go to %s inline "
            "over the connection (set inline-fallback=false to make this an "
            "error).", msg, r->peer), (NULL));
    gst_shm_post_peer_message (GST_ELEMENT (self), "connected", r->peer,
        session, "frames inline");
  } else if (ok) {
    GST_INFO_OBJECT (self, "%s verified %s both ways", r->peer, r->peer_path);
    gst_shm_post_peer_message (GST_ELEMENT (self), "connected", r->peer,
        session, NULL);
  } else {
    send_error (r, "token", msg);
    CONTROL_ERROR (self, RESOURCE, FAILED, ("%s", msg),
        ("token check failed for %s", r->peer));
    receiver_drop (self, r, "refused", msg);
  }
}

static void
handle_release (GstShmSink * self, Receiver * r, GVariant * body)
{
  g_autoptr (GError) err = NULL;
  guint64 session;
  guint32 slot;
  gboolean ok = TRUE;

  if (!shm_msg_get_u64 (body, "session", 0, G_MAXUINT64, &session, &err)
      || !shm_msg_get_u32 (body, "slot", 0, SHM_AREA_MAX_SLOTS - 1, &slot,
          &err)) {
    g_autofree gchar *msg = g_strdup_printf ("invalid release: %s",
        err->message);
    send_error (r, "protocol", msg);
    receiver_drop (self, r, "refused", msg);
    return;
  }
  g_mutex_lock (&self->lock);
  /* Releases of an area that was replaced need no bookkeeping. */
  if (self->slots && session == self->geo.session_id)
    ok = gst_shm_slots_release (self->slots, slot, r->lane);
  g_mutex_unlock (&self->lock);
  if (!ok) {
    g_autofree gchar *msg = g_strdup_printf ("released slot %u, which it "
        "does not hold", slot);
    send_error (r, "protocol", msg);
    receiver_drop (self, r, "refused", msg);
  }
}

/* A receiver's downstream now accepts other caps: upstream is asked to
 * renegotiate, unless no receiver would then accept anything in common,
 * in which case the stream goes on and this receiver is refused if it no
 * longer accepts it. */
static void
handle_accept (GstShmSink * self, Receiver * r, GVariant * body)
{
  g_autoptr (GError) err = NULL;
  g_autofree gchar *conflict = NULL;
  GstCaps *accept, *all;

  accept = gst_shm_negotiator_read (body, FALSE, &err);
  if (!accept) {
    g_autofree gchar *msg = g_strdup_printf ("invalid accept: %s",
        err ? err->message : "no caps");
    send_error (r, "protocol", msg);
    receiver_drop (self, r, "refused", msg);
    return;
  }
  GST_INFO_OBJECT (self, "%s now accepts %" GST_PTR_FORMAT, r->peer, accept);
  gst_caps_replace (&r->accept, accept);
  gst_shm_negotiator_set_receiver (self->negotiator, r, r->peer, accept);
  gst_caps_unref (accept);

  all = gst_shm_negotiator_intersect (self->negotiator, NULL, &conflict);
  gst_caps_unref (all);
  if (conflict) {
    GST_ELEMENT_WARNING (self, STREAM, FORMAT, ("Receiver %s changed what "
            "it accepts, and %s.", r->peer, conflict), (NULL));
    check_stream_caps (self, r);
    return;
  }
  /* upstream asks for caps again and may pick others */
  gst_pad_push_event (GST_BASE_SINK_PAD (self), gst_event_new_reconfigure ());
}

static void
on_receiver_message (ShmConn * conn, guint32 type, GVariant * body,
    const guint8 * payload, gsize payload_len, gpointer user_data)
{
  Receiver *r = user_data;
  GstShmSink *self = r->sink;
  const gchar *expected = NULL;

  r->last_seen = g_get_monotonic_time ();
  GST_LOG_OBJECT (self, "%s from %s", shm_msg_type_name (type), r->peer);

  switch (type) {
    case SHM_MSG_HELLO:
      if (r->state != RECV_AWAIT_HELLO)
        expected = "no second hello";
      else
        handle_hello (self, r, body);
      break;
    case SHM_MSG_MMAP_REPLY:
      if (r->state != RECV_AWAIT_REPLY)
        expected = "an mmap reply only after an mmap hello";
      else
        handle_reply (self, r, body);
      break;
    case SHM_MSG_RELEASE:
      handle_release (self, r, body);
      break;
    case SHM_MSG_PING:
      break;
    case SHM_MSG_ACCEPT:
      if (r->state == RECV_AWAIT_HELLO)
        expected = "accept only after the hello";
      else
        handle_accept (self, r, body);
      break;
    case SHM_MSG_BYE:
      r->said_bye = TRUE;
      receiver_drop (self, r, "left", shm_msg_get_text (body, "message"));
      break;
    case SHM_MSG_ERROR:{
      const gchar *code = shm_msg_get_text (body, "code");
      const gchar *msg = shm_msg_get_text (body, "message");
      if (!msg)
        msg = "(no message)";
      if (g_strcmp0 (code, "token") == 0)
        CONTROL_ERROR (self, RESOURCE, FAILED, ("%s", msg),
            ("reported by %s", r->peer));
      else
        GST_ELEMENT_WARNING (self, RESOURCE, FAILED,
            ("Receiver %s failed: %s", r->peer, msg), (NULL));
      receiver_drop (self, r, "refused", msg);
      break;
    }
    default:
      if (type < SHM_MSG_LAST)
        expected = "only receiver messages";
      else
        GST_DEBUG_OBJECT (self, "ignoring unknown message %u", type);
      break;
  }

  if (expected) {
    g_autofree gchar *msg = g_strdup_printf ("unexpected %s message "
        "(expected %s)", shm_msg_type_name (type), expected);
    send_error (r, "protocol", msg);
    receiver_drop (self, r, "refused", msg);
  }
}

static void
on_receiver_closed (ShmConn * conn, const GError * error, gpointer user_data)
{
  Receiver *r = user_data;

  /* a peer that breaks the framing or the rings is worth telling */
  if (error && (g_error_matches (error, SHM_PROTO_ERROR,
              SHM_PROTO_ERROR_MALFORMED) || error->domain == SHM_RING_ERROR))
    GST_ELEMENT_WARNING (r->sink, RESOURCE, READ, ("Dropped receiver %s: %s",
            r->peer, error->message), (NULL));
  receiver_drop (r->sink, r, "lost",
      error ? error->message : "closed the connection without saying bye");
}

static const ShmConnCallbacks receiver_callbacks = {
  on_receiver_message,
  on_receiver_closed,
};

static void
receiver_free (Receiver * r)
{
  shm_conn_close (r->conn);
  shm_conn_unref (r->conn);
  gst_clear_caps (&r->accept);
  g_free (r->peer);
  g_free (r->peer_path);
  g_free (r);
}

/* Removes a receiver: its lane and every slot it holds are freed.
 * Control thread only. */
static void
receiver_drop (GstShmSink * self, Receiver * r, const gchar * event,
    const gchar * reason)
{
  guint64 session = r->session;

  g_mutex_lock (&self->lock);
  if (!g_list_find (self->receivers, r)) {
    g_mutex_unlock (&self->lock);
    return;
  }
  self->receivers = g_list_remove (self->receivers, r);
  if (r->state == RECV_READY)
    self->n_ready--;
  if (self->slots)
    gst_shm_slots_drop_lane (self->slots, r->lane);
  self->used_lanes &= ~(G_GUINT64_CONSTANT (1) << r->lane);
  g_mutex_unlock (&self->lock);
  gst_shm_negotiator_remove_receiver (self->negotiator, r);
  if (r->ring_lane >= 0 && self->ring_served[r->ring_lane] == r->ring_id)
    self->ring_served[r->ring_lane] = 0;

  GST_INFO_OBJECT (self, "receiver %s %s: %s", r->peer, event,
      reason ? reason : "");
  gst_shm_post_peer_message (GST_ELEMENT (self), event, r->peer, session,
      reason);
  receiver_free (r);
}

/* --- control thread ----------------------------------------------------- */

/* A new receiver on @conn: gets a token lane and starts reading.
 * Control thread. */
static void
receiver_add (GstShmSink * self, ShmConn * conn, gchar * peer,
    gboolean network, gint ring_lane, guint64 ring_id)
{
  Receiver *r = g_new0 (Receiver, 1);
  gint lane = -1;

  r->sink = self;
  r->peer = peer;
  r->conn = conn;
  r->network = network;
  r->ring_lane = ring_lane;
  r->ring_id = ring_id;
  r->last_seen = r->since = g_get_monotonic_time ();

  g_mutex_lock (&self->lock);
  for (guint i = 0; i < SHM_AREA_TOKEN_LANES; i++) {
    if (!(self->used_lanes & (G_GUINT64_CONSTANT (1) << i))) {
      lane = i;
      break;
    }
  }
  if (lane >= 0) {
    r->lane = lane;
    self->used_lanes |= G_GUINT64_CONSTANT (1) << lane;
    self->receivers = g_list_append (self->receivers, r);
  }
  g_mutex_unlock (&self->lock);

  if (lane < 0) {
    GST_WARNING_OBJECT (self, "refusing %s: %d receivers already", peer,
        SHM_AREA_TOKEN_LANES);
    send_error (r, "busy", "too many receivers");
    receiver_free (r);
    return;
  }
  GST_INFO_OBJECT (self, "%s connected, lane %d", peer, lane);
  shm_conn_start (r->conn, self->context, &receiver_callbacks, r);
}

static gboolean
on_incoming (GSocket * listener, GIOCondition cond, gpointer user_data)
{
  GstShmSink *self = user_data;
  g_autoptr (GError) err = NULL;
  gboolean network;
  GSocket *sock;
  gchar *peer;

  sock = g_socket_accept (listener, NULL, &err);
  if (!sock) {
    if (!g_error_matches (err, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
      GST_WARNING_OBJECT (self, "accept failed: %s", err->message);
    return G_SOURCE_CONTINUE;
  }
  network = g_socket_get_family (sock) != G_SOCKET_FAMILY_UNIX;
  if (g_socket_get_family (sock) == G_SOCKET_FAMILY_IPV4
      || g_socket_get_family (sock) == G_SOCKET_FAMILY_IPV6)
    g_socket_set_option (sock, IPPROTO_TCP, TCP_NODELAY, 1, NULL);
  peer = shm_socket_describe (sock, TRUE);
  receiver_add (self, shm_conn_new_socket (sock, peer), peer, network, -1, 0);
  return G_SOURCE_CONTINUE;
}

/* control=ring: receivers claim lanes of the area's ring region. */
static gboolean
on_ring_poll (gpointer user_data)
{
  GstShmSink *self = user_data;
  ShmArea *area = NULL;
  ShmGeometry geo;
  guint64 id;
  gint lane;

  g_mutex_lock (&self->lock);
  if (self->slots) {
    area = shm_area_ref (gst_shm_slots_get_area (self->slots));
    geo = self->geo;
  }
  g_mutex_unlock (&self->lock);
  if (!area)
    return G_SOURCE_CONTINUE;

  while ((lane = shm_ring_accept (area, &geo, self->ring_served, &id)) >= 0) {
    gchar *peer = g_strdup_printf ("in-band lane %d", lane);
    self->ring_served[lane] = id;
    receiver_add (self, shm_conn_new_ring (area, &geo, lane, id, TRUE, peer),
        peer, FALSE, lane, id);
  }
  shm_area_unref (area);
  return G_SOURCE_CONTINUE;
}

static gboolean
on_tick (gpointer user_data)
{
  GstShmSink *self = user_data;
  gint64 now = g_get_monotonic_time ();
  gint64 peer_timeout;
  GList *dead = NULL;
  GVariantDict d;
  GVariant *ping;

  GST_OBJECT_LOCK (self);
  peer_timeout = self->peer_timeout / GST_USECOND;
  GST_OBJECT_UNLOCK (self);

  g_variant_dict_init (&d, NULL);
  g_variant_dict_insert (&d, "time", "t", (guint64) now * 1000);
  ping = g_variant_ref_sink (g_variant_dict_end (&d));

  g_mutex_lock (&self->lock);
  for (GList * l = self->receivers; l; l = l->next) {
    Receiver *r = l->data;
    if (now - r->last_seen > peer_timeout
        || (r->state != RECV_READY && r->state != RECV_AWAIT_AREA
            && now - r->since > HANDSHAKE_TIMEOUT_US))
      dead = g_list_prepend (dead, r);
    else if (r->state == RECV_READY)
      shm_conn_send (r->conn, SHM_MSG_PING, ping, NULL);
  }
  if (self->slots)
    shm_area_heartbeat (gst_shm_slots_get_area (self->slots),
        (guint64) now * 1000, self->seq);
  g_mutex_unlock (&self->lock);
  g_variant_unref (ping);

  for (GList * l = dead; l; l = l->next) {
    Receiver *r = l->data;
    g_autofree gchar *msg = r->state == RECV_READY
        ? g_strdup_printf ("no message for %" G_GINT64_FORMAT " ms",
        (now - r->last_seen) / 1000)
        : g_strdup ("the handshake did not complete in time");
    send_error (r, "timeout", msg);
    receiver_drop (self, r, "lost", msg);
  }
  g_list_free (dead);
  return G_SOURCE_CONTINUE;
}

static gpointer
control_thread (gpointer data)
{
  GstShmSink *self = data;

  g_main_context_push_thread_default (self->context);
  g_main_loop_run (self->loop);
  g_main_context_pop_thread_default (self->context);
  return NULL;
}

/* --- area ---------------------------------------------------------------- */

/* Makes sure the area holds frames of @frame_size bytes: creates it, or
 * replaces one we created by a bigger one (new session, new handshakes).
 * Called with self->lock. */
static gboolean
ensure_area_locked (GstShmSink * self, guint64 frame_size, GError ** error)
{
  g_autoptr (ShmArea) area = NULL;
  ShmGeometry geo;
  guint64 needed, size, ring_size;
  guint num_slots, mode;
  gboolean created, allow_symlink;

  if (self->slots && self->geo.slot_size >= frame_size)
    return TRUE;

  GST_OBJECT_LOCK (self);
  num_slots = self->num_slots;
  size = self->size;
  mode = self->mode;
  allow_symlink = self->allow_symlink;
  GST_OBJECT_UNLOCK (self);

  ring_size = self->ring ? SHM_RING_REGION_SIZE : 0;
  needed = shm_geometry_size_needed (num_slots, frame_size, ring_size);
  if (self->slots) {
    ShmArea *old = gst_shm_slots_get_area (self->slots);
    if (!shm_area_is_created (old) || self->ring) {
      /* (receivers on the in-band rings cannot follow a new file) */
      g_set_error (error, SHM_AREA_ERROR, SHM_AREA_ERROR_TOO_SMALL,
          "Frames of %" G_GUINT64_FORMAT " bytes do not fit the slots of "
          "\"%s\" (%" G_GUINT64_FORMAT " bytes); shmsink %s: it needs at "
          "least %" G_GUINT64_FORMAT " bytes for %u slots", frame_size,
          self->area_path, self->geo.slot_size, self->ring
          ? "does not resize an area with in-band control rings"
          : "did not create it and never resizes it", needed, num_slots);
      return FALSE;
    }
    GST_INFO_OBJECT (self, "frames grew to %" G_GUINT64_FORMAT " bytes: "
        "replacing the area", frame_size);
    shm_area_unlink (old, NULL);
  }

  if (self->existing) {
    area = shm_area_ref (self->existing);
    created = FALSE;
  } else {
    area = shm_area_create (self->area_path, size ? size : needed, mode,
        SHM_OPEN_LOCK | (allow_symlink ? SHM_OPEN_ALLOW_SYMLINK : 0),
        &created, error);
  }
  if (!area)
    return FALSE;
  if (!shm_geometry_compute (&geo, shm_area_get_size (area), num_slots,
          frame_size, ring_size, error)) {
    g_prefix_error (error, "\"%s\": ", self->area_path);
    if (g_error_matches (*error, SHM_AREA_ERROR, SHM_AREA_ERROR_TOO_SMALL)
        && (*error)->message)
      g_prefix_error (error, "%s: ", created ? "the size property is too small"
          : "the existing file is too small");
    shm_area_unlink (area, NULL);
    return FALSE;
  }
  do {
    if (!shm_random_bytes (&geo.session_id, sizeof geo.session_id, error))
      return FALSE;
  } while (geo.session_id == 0);
  shm_area_init_header (area, &geo);

  if (self->slots)
    gst_shm_slots_unref (self->slots);
  self->slots = gst_shm_slots_new (area, &geo);
  self->geo = geo;
  self->sessions++;
  GST_OBJECT_LOCK (self);
  gst_shm_slots_set_timeout (self->slots, self->slot_timeout);
  GST_OBJECT_UNLOCK (self);
  GST_INFO_OBJECT (self, "%s area \"%s\": %" G_GUINT64_FORMAT " bytes, %u "
      "slots of %" G_GUINT64_FORMAT ", session %016" G_GINT64_MODIFIER "x",
      created ? "created" : "using", self->area_path, geo.area_size,
      geo.n_slots, geo.slot_size, geo.session_id);

  for (GList * l = self->receivers; l; l = l->next) {
    Receiver *r = l->data;
    if (r->state != RECV_AWAIT_HELLO)
      start_handshake_locked (self, r);
  }
  return TRUE;
}

/* --- GstBaseSink ---------------------------------------------------------- */

/* Finds out at start what would go wrong with the area file (a symbolic
 * link, permissions, a file that is not an area, another sink), so that
 * such mistakes fail the state change.  An existing file is opened and
 * locked now and used once the caps are known. */
static gboolean
check_area_path (GstShmSink * self, const gchar * path, const gchar * dir)
{
  g_autoptr (GError) err = NULL;
  gboolean allow_symlink;
  ShmArea *area;

  GST_OBJECT_LOCK (self);
  allow_symlink = self->allow_symlink;
  GST_OBJECT_UNLOCK (self);

  area = shm_area_create (path, 0, 0, SHM_OPEN_NO_CREATE | SHM_OPEN_LOCK
      | (allow_symlink ? SHM_OPEN_ALLOW_SYMLINK : 0), NULL, &err);
  if (area) {
    g_mutex_lock (&self->lock);
    self->existing = area;
    g_mutex_unlock (&self->lock);
    return TRUE;
  }
  if (!g_error_matches (err, SHM_AREA_ERROR, SHM_AREA_ERROR_NOT_FOUND)) {
    post_area_error (self, err);
    return FALSE;
  }
  if (access (dir, W_OK | X_OK) < 0) {
    GST_ELEMENT_ERROR (self, RESOURCE, OPEN_WRITE,
        ("Could not create \"%s\": %s.", path, g_strerror (errno)), (NULL));
    return FALSE;
  }
  return TRUE;
}

/* Binds the control socket of @control. */
static gboolean
listen_on (GstShmSink * self, ShmAddress * addr, const gchar * control,
    const gchar * path, guint mode)
{
  g_autoptr (GError) err = NULL;
  GSocket *listener;
  struct stat st;

  listener = shm_address_listen (addr, mode, &err);
  if (!listener) {
    if (g_error_matches (err, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE))
      GST_ELEMENT_ERROR (self, RESOURCE, BUSY, ("Another shmsink owns "
              "\"%s\": its control socket answers.", path), ("%s",
              err->message));
    else if (g_error_matches (err, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED))
      GST_ELEMENT_ERROR (self, RESOURCE, OPEN_WRITE,
          ("Could not create the control socket for \"%s\": permission "
              "denied.", path), ("%s", err->message));
    else
      GST_ELEMENT_ERROR (self, RESOURCE, OPEN_WRITE,
          ("Could not listen on %s: %s", control, err->message), (NULL));
    return FALSE;
  }
  self->listener = listener;
  if (addr->kind == SHM_ADDRESS_UNIX && stat (addr->path, &st) == 0) {
    self->socket_path = g_strdup (addr->path);
    self->socket_dev = st.st_dev;
    self->socket_ino = st.st_ino;
  }
  return TRUE;
}

/* control=ring: the receivers find the rings in the area's header, so the
 * area is laid out now, before any caps: it must have a size already (a
 * QEMU backing file, a BAR) or be given one. */
static gboolean
start_ring (GstShmSink * self)
{
  g_autoptr (GError) err = NULL;
  gboolean ok;

  g_mutex_lock (&self->lock);
  if (!self->existing && self->size == 0) {
    g_mutex_unlock (&self->lock);
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS, ("control=ring needs an "
            "area of a known size before any caps: \"%s\" does not exist, "
            "so set the size property (bytes), or create the file first.",
            self->area_path), (NULL));
    return FALSE;
  }
  self->ring = TRUE;
  ok = ensure_area_locked (self, SHM_AREA_PAGE, &err);
  g_mutex_unlock (&self->lock);
  if (!ok) {
    post_area_error (self, err);
    return FALSE;
  }
  return TRUE;
}

static gboolean
gst_shm_sink_start (GstBaseSink * bsink)
{
  GstShmSink *self = GST_SHM_SINK (bsink);
  g_autoptr (GError) err = NULL;
  g_autofree gchar *prop = NULL, *path = NULL, *control = NULL;
  g_autofree gchar *dir = NULL;
  ShmAddress addr;
  ShmBarKind bar;
  guint mode;

  GST_OBJECT_LOCK (self);
  prop = g_strdup (self->path);
  control = self->control ? g_strdup (self->control) : NULL;
  mode = self->mode;
  GST_OBJECT_UNLOCK (self);

  if (prop == NULL || *prop == '\0') {
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND,
        ("No path set: set the \"path\" property to the shared memory file, "
            "e.g. path=/dev/shm/NAME."), (NULL));
    return FALSE;
  }
  path = gst_shm_prepare_path (GST_ELEMENT (self), prop, &bar);
  if (!path)
    return FALSE;
  dir = g_path_get_dirname (path);
  if (!g_file_test (dir, G_FILE_TEST_IS_DIR)) {
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND,
        ("Directory \"%s\" does not exist (path=%s).", dir, path), (NULL));
    return FALSE;
  }
  if (!control)
    control = gst_shm_default_control (path, bar);
  if (!shm_address_parse (control, &addr, &err)) {
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS, ("%s", err->message), (NULL));
    return FALSE;
  }
  if (!check_area_path (self, path, dir)) {
    shm_address_clear (&addr);
    return FALSE;
  }

  g_mutex_lock (&self->lock);
  g_free (self->area_path);
  self->area_path = g_strdup (path);
  self->started = TRUE;
  self->conflict_posted = FALSE;
  self->seq = 0;
  self->fatal = FALSE;
  self->warned_drop = FALSE;
  self->frames_rendered = self->frames_sent = self->frames_zero_copy = 0;
  self->frames_copied = self->bytes_copied = self->frames_dropped = 0;
  self->frames_unsent = self->receivers_connected = self->sessions = 0;
  self->frames_skipped = self->frames_inline = 0;
  memset (self->ring_served, 0, sizeof self->ring_served);
  g_mutex_unlock (&self->lock);

  if (addr.kind == SHM_ADDRESS_RING ? !start_ring (self)
      : !listen_on (self, &addr, control, path, mode)) {
    shm_address_clear (&addr);
    gst_shm_sink_stop (bsink);
    return FALSE;
  }
  shm_address_clear (&addr);

  self->context = g_main_context_new ();
  self->loop = g_main_loop_new (self->context, FALSE);
  if (self->listener) {
    self->listen_source = g_socket_create_source (self->listener, G_IO_IN,
        NULL);
    g_source_set_callback (self->listen_source,
        (GSourceFunc) (void (*)(void)) on_incoming, self, NULL);
    g_source_attach (self->listen_source, self->context);
  } else {
    self->ring_source = g_timeout_source_new (RING_POLL_MS);
    g_source_set_callback (self->ring_source, on_ring_poll, self, NULL);
    g_source_attach (self->ring_source, self->context);
  }
  self->tick_source = g_timeout_source_new (TICK_MS);
  g_source_set_callback (self->tick_source, on_tick, self, NULL);
  g_source_attach (self->tick_source, self->context);
  self->thread = g_thread_new ("shmsink-control", control_thread, self);

  GST_INFO_OBJECT (self, "listening on %s for %s", control, self->area_path);
  return TRUE;
}

static gboolean
gst_shm_sink_stop (GstBaseSink * bsink)
{
  GstShmSink *self = GST_SHM_SINK (bsink);
  struct stat st;
  GList *receivers;

  if (self->thread) {
    gst_shm_quit_and_join (self->context, self->loop, self->thread);
    self->thread = NULL;
  }

  g_mutex_lock (&self->lock);
  self->started = FALSE;
  g_cond_broadcast (&self->cond);
  receivers = g_steal_pointer (&self->receivers);
  self->n_ready = 0;
  self->used_lanes = 0;
  g_mutex_unlock (&self->lock);

  for (GList * l = receivers; l; l = l->next) {
    Receiver *r = l->data;
    GVariantDict d;
    g_variant_dict_init (&d, NULL);
    g_variant_dict_insert (&d, "message", "s", "shmsink stopped");
    shm_conn_send (r->conn, SHM_MSG_BYE, g_variant_dict_end (&d), NULL);
    gst_shm_negotiator_remove_receiver (self->negotiator, r);
    receiver_free (r);
  }
  g_list_free (receivers);

  if (self->listen_source) {
    g_source_destroy (self->listen_source);
    g_clear_pointer (&self->listen_source, g_source_unref);
  }
  if (self->tick_source) {
    g_source_destroy (self->tick_source);
    g_clear_pointer (&self->tick_source, g_source_unref);
  }
  if (self->ring_source) {
    g_source_destroy (self->ring_source);
    g_clear_pointer (&self->ring_source, g_source_unref);
  }
  if (self->listener) {
    g_socket_close (self->listener, NULL);
    g_clear_object (&self->listener);
  }
  /* Remove our socket, unless someone else's has replaced it. */
  if (self->socket_path && lstat (self->socket_path, &st) == 0
      && st.st_dev == self->socket_dev && st.st_ino == self->socket_ino)
    g_unlink (self->socket_path);
  g_clear_pointer (&self->socket_path, g_free);
  g_clear_pointer (&self->loop, g_main_loop_unref);
  g_clear_pointer (&self->context, g_main_context_unref);

  g_mutex_lock (&self->lock);
  if (self->slots) {
    ShmArea *area = gst_shm_slots_get_area (self->slots);
    /* A file we did not create stays, but no longer holds a served area. */
    if (!shm_area_is_created (area))
      shm_area_retire (area);
    shm_area_unlink (area, NULL);
    g_clear_pointer (&self->slots, gst_shm_slots_unref);
  }
  self->ring = FALSE;
  g_clear_pointer (&self->existing, shm_area_unref);
  gst_clear_caps (&self->caps);
  g_mutex_unlock (&self->lock);
  return TRUE;
}

static gboolean
gst_shm_sink_set_caps (GstBaseSink * bsink, GstCaps * caps)
{
  GstShmSink *self = GST_SHM_SINK (bsink);
  g_autoptr (GError) err = NULL;
  GstVideoInfo vinfo;
  gboolean is_video;
  guint64 frame_size;

  is_video = gst_shm_raw_video_info (&vinfo, caps);
  if (is_video) {
    GstVideoInfo aligned = vinfo;
    if (!gst_shm_video_info_align (&aligned))
      aligned = vinfo;
    frame_size = MAX (GST_VIDEO_INFO_SIZE (&aligned),
        GST_VIDEO_INFO_SIZE (&vinfo));
  } else {
    frame_size = DEFAULT_UNKNOWN_FRAME_SIZE;
  }

  g_mutex_lock (&self->lock);
  if (self->fatal) {
    /* already posted; upstream may try again, the answer is the same */
    g_mutex_unlock (&self->lock);
    return FALSE;
  }
  if (self->slots && !is_video)
    frame_size = MIN (frame_size, self->geo.slot_size);
  if (!ensure_area_locked (self, frame_size, &err)) {
    self->fatal = TRUE;
    g_mutex_unlock (&self->lock);
    post_area_error (self, err);
    return FALSE;
  }
  gst_caps_replace (&self->caps, caps);
  self->vinfo = vinfo;
  self->is_video = is_video;
  for (GList * l = self->receivers; l; l = l->next) {
    Receiver *r = l->data;
    GVariantDict d;
    if (r->state != RECV_READY)
      continue;
    g_variant_dict_init (&d, NULL);
    gst_shm_negotiator_write (&d, caps);
    shm_conn_send (r->conn, SHM_MSG_CAPS, g_variant_dict_end (&d), NULL);
  }
  g_mutex_unlock (&self->lock);
  GST_DEBUG_OBJECT (self, "caps %" GST_PTR_FORMAT ", frames of %"
      G_GUINT64_FORMAT " bytes", caps, frame_size);
  return TRUE;
}

/* The largest frame an area that shmsink may not grow can hold, or 0 when
 * it can make its area as big as needed. */
static guint64
max_frame_size_locked (GstShmSink * self)
{
  ShmGeometry geo;
  guint64 area_size = 0;
  guint num_slots;

  if (self->slots && !shm_area_is_created (gst_shm_slots_get_area
          (self->slots)))
    return self->geo.slot_size;
  GST_OBJECT_LOCK (self);
  num_slots = self->num_slots;
  if (self->size)
    area_size = self->size;
  GST_OBJECT_UNLOCK (self);
  if (self->existing)
    area_size = shm_area_get_size (self->existing);
  if (!area_size)
    return 0;
  if (!shm_geometry_compute (&geo, area_size, num_slots, 1,
          self->ring ? SHM_RING_REGION_SIZE : 0, NULL))
    return 1;                   /* nothing fits */
  return geo.slot_size;
}

/* Drops the raw video formats whose frames (of a fixed size) do not fit
 * @max bytes. */
static GstCaps *
fit_frame_size (GstCaps * caps, guint64 max)
{
  GstCaps *out;

  if (max == 0 || gst_caps_is_any (caps))
    return caps;
  out = gst_caps_new_empty ();
  for (guint i = 0; i < gst_caps_get_size (caps); i++) {
    GstStructure *s = gst_structure_copy (gst_caps_get_structure (caps, i));
    GstCapsFeatures *f = gst_caps_features_copy (gst_caps_get_features (caps,
            i));
    const GValue *fmt = gst_structure_get_value (s, "format");
    gint w, h;

    if (gst_structure_has_name (s, "video/x-raw") && fmt
        && gst_structure_get_int (s, "width", &w)
        && gst_structure_get_int (s, "height", &h)) {
      GValue list = G_VALUE_INIT;
      guint n = GST_VALUE_HOLDS_LIST (fmt) ? gst_value_list_get_size (fmt) : 1;

      g_value_init (&list, GST_TYPE_LIST);
      for (guint k = 0; k < n; k++) {
        const GValue *v = GST_VALUE_HOLDS_LIST (fmt)
            ? gst_value_list_get_value (fmt, k) : fmt;
        GstVideoInfo info;
        if (!G_VALUE_HOLDS_STRING (v))
          continue;
        gst_video_info_init (&info);
        if (gst_video_info_set_format (&info,
                gst_video_format_from_string (g_value_get_string (v)), w, h)
            && gst_shm_video_info_align (&info) && info.size <= max)
          gst_value_list_append_value (&list, v);
      }
      if (gst_value_list_get_size (&list) == 0) {
        g_value_unset (&list);
        gst_structure_free (s);
        gst_caps_features_free (f);
        continue;
      }
      if (gst_value_list_get_size (&list) == 1)
        gst_structure_set_value (s, "format", gst_value_list_get_value (&list,
                0));
      else
        gst_structure_set_value (s, "format", &list);
      g_value_unset (&list);
    }
    out = gst_caps_merge_structure_full (out, s, f);
  }
  gst_caps_unref (caps);
  return out;
}

/* None of @caps fits an area shmsink may not grow: says what would. */
static void
post_too_small (GstShmSink * self, GstCaps * caps, guint64 max)
{
  GstCaps *fixed = gst_caps_fixate (gst_caps_copy (caps));
  g_autofree gchar *str = gst_caps_to_string (caps);
  GstVideoInfo info;
  guint num_slots;
  gboolean post;

  g_mutex_lock (&self->lock);
  post = !self->fatal;
  self->fatal = TRUE;
  g_mutex_unlock (&self->lock);
  GST_OBJECT_LOCK (self);
  num_slots = self->num_slots;
  GST_OBJECT_UNLOCK (self);
  if (post && gst_shm_raw_video_info (&info, fixed)
      && gst_shm_video_info_align (&info))
    GST_ELEMENT_ERROR (self, RESOURCE, NO_SPACE_LEFT, ("\"%s\" is too small: "
            "its slots hold frames of %" G_GUINT64_FORMAT " bytes, %s needs "
            "%" G_GSIZE_FORMAT "; %u slots of it need an area of %"
            G_GUINT64_FORMAT " bytes", self->area_path, max, str,
            GST_VIDEO_INFO_SIZE (&info), num_slots,
            shm_geometry_size_needed (num_slots, GST_VIDEO_INFO_SIZE (&info),
                0)), (NULL));
  else if (post)
    GST_ELEMENT_ERROR (self, RESOURCE, NO_SPACE_LEFT, ("\"%s\" is too small: "
            "its slots hold frames of %" G_GUINT64_FORMAT " bytes, none of %s "
            "fits", self->area_path, max, str), (NULL));
  gst_caps_unref (fixed);
}

/* What upstream may send: what every receiver accepts (system memory only)
 * that fits the area.  Once started, and with wait-for-receiver, the query
 * waits for a receiver to say what it accepts. */
static GstCaps *
gst_shm_sink_get_caps (GstBaseSink * bsink, GstCaps * filter)
{
  GstShmSink *self = GST_SHM_SINK (bsink);
  GstCaps *tmpl = gst_pad_get_pad_template_caps (GST_BASE_SINK_PAD (bsink));
  g_autofree gchar *conflict = NULL;
  GstCaps *base, *caps;
  guint64 max;
  guint unlocks;

  if (filter) {
    GstCaps *tmp = gst_caps_intersect_full (filter, tmpl,
        GST_CAPS_INTERSECT_FIRST);
    base = gst_shm_negotiator_sysmem (tmp);
    gst_caps_unref (tmp);
    gst_caps_unref (tmpl);
  } else {
    base = tmpl;
  }

  g_mutex_lock (&self->lock);
  unlocks = self->unlocks;
  /* Only while the element is not going down in state (a live source
   * negotiates holding its LIVE lock, which its own PLAYING->PAUSED
   * change needs) nor flushing (a flushing seek waits for the source's
   * streaming thread, which may be in this query). */
  while (self->started && self->query_may_wait && self->wait_for_receiver
      && !self->fatal && self->unlocks == unlocks
      && gst_shm_negotiator_n_receivers (self->negotiator) <
      self->min_receivers) {
    GST_DEBUG_OBJECT (self, "caps query waits for a receiver");
    g_cond_wait (&self->cond, &self->lock);
  }
  max = max_frame_size_locked (self);
  g_mutex_unlock (&self->lock);

  caps = gst_shm_negotiator_intersect (self->negotiator, base, &conflict);
  gst_caps_unref (base);
  if (max && !conflict && !gst_caps_is_empty (caps)) {
    GstCaps *fit = fit_frame_size (gst_caps_ref (caps), max);
    if (gst_caps_is_empty (fit))
      post_too_small (self, caps, max);
    gst_caps_unref (caps);
    return fit;
  }
  if (conflict) {
    gboolean post;
    g_mutex_lock (&self->lock);
    post = !self->conflict_posted;
    self->conflict_posted = TRUE;
    g_mutex_unlock (&self->lock);
    if (post) {
      conflict[0] = g_ascii_toupper (conflict[0]);
      GST_ELEMENT_ERROR (self, CORE, NEGOTIATION, ("%s.", conflict), (NULL));
    }
  }
  return caps;
}

static gboolean
gst_shm_sink_propose_allocation (GstBaseSink * bsink, GstQuery * query)
{
  GstShmSink *self = GST_SHM_SINK (bsink);
  GstShmSlots *slots = NULL;
  GstBufferPool *pool;
  GstStructure *config;
  GstVideoInfo vinfo, aligned;
  GstCaps *caps;
  gboolean need_pool;

  gst_query_parse_allocation (query, &caps, &need_pool);
  if (caps == NULL || !gst_shm_raw_video_info (&vinfo, caps))
    return TRUE;
  aligned = vinfo;
  gst_shm_video_info_align (&aligned);

  g_mutex_lock (&self->lock);
  if (self->slots && self->geo.slot_size >= GST_VIDEO_INFO_SIZE (&aligned))
    slots = gst_shm_slots_ref (self->slots);
  g_mutex_unlock (&self->lock);
  if (!slots) {
    GST_DEBUG_OBJECT (self, "no area for %" GST_PTR_FORMAT " yet: no pool",
        caps);
    gst_query_add_allocation_meta (query, GST_VIDEO_META_API_TYPE, NULL);
    return TRUE;
  }

  pool = gst_shm_pool_new (slots);
  config = gst_buffer_pool_get_config (pool);
  gst_buffer_pool_config_set_params (config, caps, GST_VIDEO_INFO_SIZE (&vinfo),
      0, gst_shm_slots_get_geometry (slots)->n_slots);
  gst_buffer_pool_config_add_option (config, GST_BUFFER_POOL_OPTION_VIDEO_META);
  if (!gst_buffer_pool_set_config (pool, config)) {
    GST_WARNING_OBJECT (self, "pool refused %" GST_PTR_FORMAT, caps);
    gst_object_unref (pool);
    gst_shm_slots_unref (slots);
    return TRUE;
  }
  gst_query_add_allocation_pool (query, pool, GST_VIDEO_INFO_SIZE (&vinfo), 0,
      gst_shm_slots_get_geometry (slots)->n_slots);
  gst_query_add_allocation_meta (query, GST_VIDEO_META_API_TYPE, NULL);
  gst_object_unref (pool);
  gst_shm_slots_unref (slots);
  return TRUE;
}

static GstFlowReturn
wait_for_receiver (GstShmSink * self)
{
  for (;;) {
    GstFlowReturn ret;

    g_mutex_lock (&self->lock);
    while (self->n_ready < self->min_receivers && self->wait_for_receiver
        && !self->unlock && !self->fatal)
      g_cond_wait (&self->cond, &self->lock);
    if (self->fatal) {
      g_mutex_unlock (&self->lock);
      return GST_FLOW_ERROR;
    }
    if (!self->unlock) {
      g_mutex_unlock (&self->lock);
      return GST_FLOW_OK;
    }
    g_mutex_unlock (&self->lock);
    ret = gst_base_sink_wait_preroll (GST_BASE_SINK (self));
    if (ret != GST_FLOW_OK)
      return ret;
  }
}

/* Sender's timestamp on CLOCK_MONOTONIC at which the frame is due. */
static guint64
to_monotonic (GstShmSink * self, GstClockTime ts, GstClockTime base_time,
    GstClockTime latency, GstClockTimeDiff diff)
{
  GstSegment *segment = &GST_BASE_SINK (self)->segment;
  guint64 rt;
  gint sign;
  gint64 t;

  if (!GST_CLOCK_TIME_IS_VALID (ts) || !GST_CLOCK_TIME_IS_VALID (base_time))
    return G_MAXUINT64;
  sign = gst_segment_to_running_time_full (segment, GST_FORMAT_TIME, ts, &rt);
  if (sign == 0)
    return G_MAXUINT64;
  t = sign > 0 ? (gint64) (base_time + rt) : (gint64) base_time - (gint64) rt;
  t += GST_CLOCK_TIME_IS_VALID (latency) ? (gint64) latency : 0;
  t += diff;
  return t < 0 ? 0 : (guint64) t;
}

static GVariant *
frame_body (GstShmSink * self, GstBuffer * buf, guint64 session, guint64 seq,
    guint slot, gsize offset, gsize size, const GstVideoInfo * vinfo,
    gboolean is_video)
{
  GstElement *element = GST_ELEMENT (self);
  GstClockTime base_time = GST_CLOCK_TIME_NONE, latency;
  GstClockTimeDiff diff = 0;
  GstVideoMeta *vmeta;
  GVariantDict d;
  gboolean have_clock;

  GST_OBJECT_LOCK (self);
  have_clock = GST_ELEMENT_CLOCK (element) != NULL;
  GST_OBJECT_UNLOCK (self);
  if (have_clock) {
    base_time = gst_element_get_base_time (element);
    diff = gst_shm_clock_diff (element, self->uses_monotonic);
  }
  latency = gst_base_sink_get_latency (GST_BASE_SINK (self));

  g_variant_dict_init (&d, NULL);
  g_variant_dict_insert (&d, "session", "t", session);
  g_variant_dict_insert (&d, "seq", "t", seq);
  g_variant_dict_insert (&d, "slot", "u", slot);
  g_variant_dict_insert (&d, "offset", "t", (guint64) offset);
  g_variant_dict_insert (&d, "size", "t", (guint64) size);
  g_variant_dict_insert (&d, "pts", "t",
      gst_shm_time_to_wire (GST_BUFFER_PTS (buf)));
  g_variant_dict_insert (&d, "dts", "t",
      gst_shm_time_to_wire (GST_BUFFER_DTS (buf)));
  g_variant_dict_insert (&d, "duration", "t",
      gst_shm_time_to_wire (GST_BUFFER_DURATION (buf)));
  g_variant_dict_insert (&d, "mono-pts", "t", to_monotonic (self,
          GST_BUFFER_PTS (buf), base_time, latency, diff));
  g_variant_dict_insert (&d, "mono-dts", "t", to_monotonic (self,
          GST_BUFFER_DTS (buf), base_time, latency, diff));
  g_variant_dict_insert (&d, "buffer-offset", "t", GST_BUFFER_OFFSET (buf));
  g_variant_dict_insert (&d, "buffer-offset-end", "t",
      GST_BUFFER_OFFSET_END (buf));
  g_variant_dict_insert (&d, "flags", "u",
      GST_BUFFER_FLAGS (buf) & GST_SHM_BUFFER_FLAGS_MASK);
  g_variant_dict_insert (&d, "send-time", "t",
      (guint64) g_get_monotonic_time () * 1000);

  if (is_video) {
    guint64 offs[GST_VIDEO_MAX_PLANES], strides[GST_VIDEO_MAX_PLANES];
    guint n;

    vmeta = gst_buffer_get_video_meta (buf);
    n = vmeta ? vmeta->n_planes : GST_VIDEO_INFO_N_PLANES (vinfo);
    for (guint i = 0; i < n; i++) {
      offs[i] = vmeta ? vmeta->offset[i] : GST_VIDEO_INFO_PLANE_OFFSET (vinfo,
          i);
      strides[i] = (guint64) (vmeta ? vmeta->stride[i] :
          GST_VIDEO_INFO_PLANE_STRIDE (vinfo, i));
    }
    g_variant_dict_insert_value (&d, "plane-offsets",
        g_variant_new_fixed_array (G_VARIANT_TYPE_UINT64, offs, n,
            sizeof (guint64)));
    g_variant_dict_insert_value (&d, "plane-strides",
        g_variant_new_fixed_array (G_VARIANT_TYPE_UINT64, strides, n,
            sizeof (guint64)));
  }
  return g_variant_ref_sink (g_variant_dict_end (&d));
}

/* A receiver that does not map the area (another machine, over TCP) gets
 * the bytes of each frame after its description.  Its connection holds at
 * most two frames: while it is behind, the receiver misses frames (and
 * sees the gap in the sequence numbers).  With self->lock. */
static gboolean
inline_behind_locked (GstShmSink * self, Receiver * r, gsize size)
{
  return shm_conn_get_queued (r->conn) + size > 2 * self->geo.slot_size;
}

static void
send_inline_locked (GstShmSink * self, Receiver * r, GVariant * body,
    const guint8 * data, gsize size)
{
  if (inline_behind_locked (self, r, size)) {
    self->frames_skipped++;
    return;
  }
  r->inline_lagging = FALSE;
  if (shm_conn_send_raw (r->conn, SHM_MSG_FRAME_INLINE, body, data, size, NULL))
    self->frames_inline++;
}

/* A non-live receiver asks for every frame, inline too: before a frame of
 * @size bytes, wait (at most #GstShmSink:slot-timeout) for the connections
 * of such receivers to have room for it.  One that does not catch up in
 * time misses frames, without further waits, until it does. */
static void
wait_inline_receivers (GstShmSink * self, gsize size)
{
  GstClockTime timeout;
  gint64 deadline;

  GST_OBJECT_LOCK (self);
  timeout = self->slot_timeout;
  GST_OBJECT_UNLOCK (self);
  deadline = GST_CLOCK_TIME_IS_VALID (timeout) ? g_get_monotonic_time () +
      (gint64) (timeout / GST_USECOND) : G_MAXINT64;

  g_mutex_lock (&self->lock);
  while (!self->unlock) {
    Receiver *behind = NULL;

    for (GList * l = self->receivers; l && !behind; l = l->next) {
      Receiver *r = l->data;
      if (r->state == RECV_READY && r->inline_frames && !r->live
          && !r->inline_lagging && inline_behind_locked (self, r, size))
        behind = r;
    }
    if (!behind)
      break;
    if (g_get_monotonic_time () >= deadline) {
      behind->inline_lagging = TRUE;
      continue;
    }
    g_cond_wait_until (&self->cond, &self->lock, MIN (deadline,
            g_get_monotonic_time () + 2 * G_TIME_SPAN_MILLISECOND));
  }
  g_mutex_unlock (&self->lock);
}

static GstFlowReturn
gst_shm_sink_render (GstBaseSink * bsink, GstBuffer * buf)
{
  GstShmSink *self = GST_SHM_SINK (bsink);
  GstShmSlots *slots = NULL, *mslots;
  GstMemory *mem = NULL;
  GstVideoInfo vinfo;
  GstFlowReturn ret;
  GVariant *body;
  gboolean is_video, claimed = FALSE;
  guint64 session, seq, lanes, live_lanes;
  gsize offset = 0, size;
  guint slot, n_inline;

again:
  lanes = live_lanes = 0;
  n_inline = 0;
  ret = wait_for_receiver (self);
  if (ret != GST_FLOW_OK)
    return ret;

  g_mutex_lock (&self->lock);
  if (!self->slots) {
    g_mutex_unlock (&self->lock);
    GST_ELEMENT_ERROR (self, CORE, NEGOTIATION, ("No caps before the first "
            "buffer."), (NULL));
    return GST_FLOW_NOT_NEGOTIATED;
  }
  slots = gst_shm_slots_ref (self->slots);
  session = self->geo.session_id;
  vinfo = self->vinfo;
  is_video = self->is_video;
  g_mutex_unlock (&self->lock);

  if (gst_buffer_n_memory (buf) == 1)
    mem = gst_buffer_peek_memory (buf, 0);
  if (mem && gst_shm_slot_memory_get_slot (mem, &mslots, &slot, &offset)
      && mslots == slots) {
    /* Upstream rendered into our pool: announce the slot, copy nothing. */
    size = mem->size;
  } else {
    size = gst_buffer_get_size (buf);
    if (size > gst_shm_slots_get_geometry (slots)->slot_size) {
      g_autoptr (GError) err = NULL;
      gboolean ok;
      gst_shm_slots_unref (slots);
      g_mutex_lock (&self->lock);
      ok = ensure_area_locked (self, size, &err);
      g_mutex_unlock (&self->lock);
      if (!ok) {
        post_area_error (self, err);
        return GST_FLOW_ERROR;
      }
      goto again;
    }
    ret = gst_shm_slots_claim (slots, FALSE, &slot);
    if (ret == GST_FLOW_FLUSHING) {
      gst_shm_slots_unref (slots);
      return ret;
    }
    if (ret != GST_FLOW_OK) {
      g_mutex_lock (&self->lock);
      self->frames_rendered++;
      self->frames_dropped++;
      if (!self->warned_drop) {
        self->warned_drop = TRUE;
        g_mutex_unlock (&self->lock);
        GST_ELEMENT_WARNING (self, RESOURCE, WRITE, ("Receivers hold every "
                "slot: dropping frames until one is released."), (NULL));
      } else {
        g_mutex_unlock (&self->lock);
      }
      gst_shm_slots_unref (slots);
      return GST_FLOW_OK;
    }
    claimed = TRUE;
    offset = 0;
    gst_buffer_extract (buf, 0, gst_shm_slots_get_slot_data (slots, slot),
        size);
  }

  wait_inline_receivers (self, size);
  g_mutex_lock (&self->lock);
  if (self->slots != slots) {
    /* The area was replaced while we copied: start over. */
    g_mutex_unlock (&self->lock);
    if (claimed)
      gst_shm_slots_unclaim (slots, slot);
    gst_shm_slots_unref (slots);
    claimed = FALSE;
    goto again;
  }
  seq = self->seq++;
  self->frames_rendered++;
  for (GList * l = self->receivers; l; l = l->next) {
    Receiver *r = l->data;
    if (r->state != RECV_READY)
      continue;
    if (r->inline_frames) {
      n_inline++;
      continue;
    }
    lanes |= G_GUINT64_CONSTANT (1) << r->lane;
    if (r->live)
      live_lanes |= G_GUINT64_CONSTANT (1) << r->lane;
  }
  /* With several receivers, a live one that lags never stalls the sender
   * or the others: when this frame takes the last free slot, the live
   * receiver furthest behind misses it (and sees a gap) if it still holds
   * a frame at least n_slots - 1 frames old.  A non-live receiver asks for
   * every frame and paces the sender, as a single receiver does. */
  if (self->n_ready > 1 && live_lanes && gst_shm_slots_count_free (slots) == 0) {
    guint64 oldest;
    gint lag = gst_shm_slots_furthest_behind (slots, live_lanes, &oldest);
    if (lag >= 0 && seq - oldest >= gst_shm_slots_get_geometry
        (slots)->n_slots - 1) {
      lanes &= ~(G_GUINT64_CONSTANT (1) << lag);
      self->frames_skipped++;
    }
  }
  if (lanes || n_inline) {
    body = frame_body (self, buf, session, seq, slot, offset, size, &vinfo,
        is_video);
    /* Held before it is announced: a release can never come first. */
    if (lanes)
      gst_shm_slots_hold (slots, slot, lanes, seq);
    shm_publish_fence ();
    for (GList * l = self->receivers; l; l = l->next) {
      Receiver *r = l->data;
      if (r->state != RECV_READY)
        continue;
      if (r->inline_frames)
        send_inline_locked (self, r, body, gst_shm_slots_get_slot_data (slots,
                slot) + offset, size);
      else if (lanes & (G_GUINT64_CONSTANT (1) << r->lane))
        shm_conn_send (r->conn, SHM_MSG_FRAME, body, NULL);
    }
    g_variant_unref (body);
    self->frames_sent++;
    if (claimed) {
      self->frames_copied++;
      self->bytes_copied += size;
    } else {
      self->frames_zero_copy++;
    }
  } else {
    self->frames_unsent++;
  }
  g_mutex_unlock (&self->lock);

  if (claimed)
    gst_shm_slots_unclaim (slots, slot);
  gst_shm_slots_unref (slots);
  return GST_FLOW_OK;
}

/* After EOS: waits until every receiver has read what was sent to it (the
 * EOS last), at most #GstShmSink:peer-timeout, so that a sender that stops
 * right after its EOS message loses nothing still queued for a slow
 * receiver.  A flush ends the wait. */
static void
wait_receivers_read (GstShmSink * self, GPtrArray * conns)
{
  gint64 start = g_get_monotonic_time (), deadline;
  guint i;

  GST_OBJECT_LOCK (self);
  deadline = start + self->peer_timeout / GST_USECOND;
  GST_OBJECT_UNLOCK (self);

  g_mutex_lock (&self->lock);
  while (!self->unlock) {
    for (i = 0; i < conns->len; i++)
      if (shm_conn_get_unread (g_ptr_array_index (conns, i)) > 0)
        break;
    if (i == conns->len)
      break;
    if (!g_cond_wait_until (&self->cond, &self->lock, MIN (deadline,
                g_get_monotonic_time () + 2 * G_TIME_SPAN_MILLISECOND))
        && g_get_monotonic_time () >= deadline) {
      g_mutex_unlock (&self->lock);
      GST_ELEMENT_WARNING (self, RESOURCE, WRITE, ("The receiver at %s did "
              "not read the end of the stream within %.1f s.",
              shm_conn_get_description (g_ptr_array_index (conns, i)),
              (deadline - start) / (gdouble) G_TIME_SPAN_SECOND), (NULL));
      return;
    }
  }
  g_mutex_unlock (&self->lock);
}

static gboolean
gst_shm_sink_event (GstBaseSink * bsink, GstEvent * event)
{
  GstShmSink *self = GST_SHM_SINK (bsink);

  if (GST_EVENT_TYPE (event) == GST_EVENT_EOS) {
    GPtrArray *conns =
        g_ptr_array_new_with_free_func ((GDestroyNotify) shm_conn_unref);
    g_mutex_lock (&self->lock);
    for (GList * l = self->receivers; l; l = l->next) {
      Receiver *r = l->data;
      if (r->state == RECV_READY
          && shm_conn_send (r->conn, SHM_MSG_EOS, NULL, NULL))
        g_ptr_array_add (conns, shm_conn_ref (r->conn));
    }
    g_mutex_unlock (&self->lock);
    wait_receivers_read (self, conns);
    g_ptr_array_unref (conns);
  }
  return GST_BASE_SINK_CLASS (parent_class)->event (bsink, event);
}

static gboolean
gst_shm_sink_unlock (GstBaseSink * bsink)
{
  GstShmSink *self = GST_SHM_SINK (bsink);

  g_mutex_lock (&self->lock);
  self->unlock = TRUE;
  self->unlocks++;
  g_cond_broadcast (&self->cond);
  if (self->slots)
    gst_shm_slots_set_flushing (self->slots, TRUE);
  g_mutex_unlock (&self->lock);
  return TRUE;
}

static gboolean
gst_shm_sink_unlock_stop (GstBaseSink * bsink)
{
  GstShmSink *self = GST_SHM_SINK (bsink);

  g_mutex_lock (&self->lock);
  self->unlock = FALSE;
  if (self->slots)
    gst_shm_slots_set_flushing (self->slots, FALSE);
  g_mutex_unlock (&self->lock);
  return TRUE;
}

static GstStateChangeReturn
gst_shm_sink_change_state (GstElement * element, GstStateChange transition)
{
  GstShmSink *self = GST_SHM_SINK (element);

  switch (transition) {
    case GST_STATE_CHANGE_READY_TO_PAUSED:
    case GST_STATE_CHANGE_PAUSED_TO_PLAYING:
      g_mutex_lock (&self->lock);
      self->query_may_wait = TRUE;
      g_mutex_unlock (&self->lock);
      break;
    case GST_STATE_CHANGE_PLAYING_TO_PAUSED:
    case GST_STATE_CHANGE_PAUSED_TO_READY:
      g_mutex_lock (&self->lock);
      self->query_may_wait = FALSE;
      g_cond_broadcast (&self->cond);
      g_mutex_unlock (&self->lock);
      break;
    default:
      break;
  }
  return GST_ELEMENT_CLASS (parent_class)->change_state (element, transition);
}

static gboolean
gst_shm_sink_set_clock (GstElement * element, GstClock * clock)
{
  GstShmSink *self = GST_SHM_SINK (element);

  self->uses_monotonic = gst_shm_clock_is_monotonic (clock);
  return GST_ELEMENT_CLASS (parent_class)->set_clock (element, clock);
}

/* --- GObject ------------------------------------------------------------- */

static gboolean
copy_field (GQuark field, const GValue * value, gpointer dest)
{
  gst_structure_id_set_value (dest, field, value);
  return TRUE;
}

static GstStructure *
get_stats (GstShmSink * self)
{
  GstStructure *base = gst_base_sink_get_stats (GST_BASE_SINK (self));
  GstStructure *s;

  g_mutex_lock (&self->lock);
  s = gst_structure_new ("GstShmSinkStats",
      "frames-rendered", G_TYPE_UINT64, self->frames_rendered,
      "frames-sent", G_TYPE_UINT64, self->frames_sent,
      "frames-zero-copy", G_TYPE_UINT64, self->frames_zero_copy,
      "frames-copied", G_TYPE_UINT64, self->frames_copied,
      "bytes-copied", G_TYPE_UINT64, self->bytes_copied,
      "frames-dropped", G_TYPE_UINT64, self->frames_dropped,
      "frames-unsent", G_TYPE_UINT64, self->frames_unsent,
      "frames-skipped", G_TYPE_UINT64, self->frames_skipped,
      "frames-inline", G_TYPE_UINT64, self->frames_inline,
      "receivers", G_TYPE_UINT, self->n_ready,
      "receivers-connected", G_TYPE_UINT64, self->receivers_connected,
      "sessions", G_TYPE_UINT64, self->sessions,
      "area-size", G_TYPE_UINT64, self->slots ? self->geo.area_size : 0,
      "n-slots", G_TYPE_UINT, self->slots ? self->geo.n_slots : 0,
      "slot-size", G_TYPE_UINT64, self->slots ? self->geo.slot_size : 0, NULL);
  g_mutex_unlock (&self->lock);
  /* GstBaseSink's own counters (average-rate, dropped, rendered), which
   * this property replaces */
  gst_structure_foreach (base, copy_field, s);
  gst_structure_free (base);
  return s;
}

static void
gst_shm_sink_set_property (GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec)
{
  GstShmSink *self = GST_SHM_SINK (object);

  if (prop_id == PROP_WAIT_FOR_RECEIVER || prop_id == PROP_MIN_RECEIVERS) {
    g_mutex_lock (&self->lock);
    if (prop_id == PROP_WAIT_FOR_RECEIVER)
      self->wait_for_receiver = g_value_get_boolean (value);
    else
      self->min_receivers = g_value_get_uint (value);
    g_cond_broadcast (&self->cond);
    g_mutex_unlock (&self->lock);
    return;
  }

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_PATH:
      g_free (self->path);
      self->path = g_value_dup_string (value);
      break;
    case PROP_CONTROL:
      g_free (self->control);
      self->control = g_value_dup_string (value);
      break;
    case PROP_NUM_SLOTS:
      self->num_slots = g_value_get_uint (value);
      break;
    case PROP_SIZE:
      self->size = g_value_get_uint64 (value);
      break;
    case PROP_MODE:
      self->mode = g_value_get_uint (value);
      break;
    case PROP_SLOT_TIMEOUT:
      self->slot_timeout = g_value_get_uint64 (value);
      break;
    case PROP_PEER_TIMEOUT:
      self->peer_timeout = g_value_get_uint64 (value);
      break;
    case PROP_ALLOW_SYMLINK:
      self->allow_symlink = g_value_get_boolean (value);
      break;
    case PROP_INLINE_FALLBACK:
      self->inline_fallback = g_value_get_boolean (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_shm_sink_get_property (GObject * object, guint prop_id, GValue * value,
    GParamSpec * pspec)
{
  GstShmSink *self = GST_SHM_SINK (object);

  switch (prop_id) {
    case PROP_STATS:
      g_value_take_boxed (value, get_stats (self));
      return;
    case PROP_WAIT_FOR_RECEIVER:
      g_mutex_lock (&self->lock);
      g_value_set_boolean (value, self->wait_for_receiver);
      g_mutex_unlock (&self->lock);
      return;
    case PROP_MIN_RECEIVERS:
      g_mutex_lock (&self->lock);
      g_value_set_uint (value, self->min_receivers);
      g_mutex_unlock (&self->lock);
      return;
    default:
      break;
  }

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_PATH:
      g_value_set_string (value, self->path);
      break;
    case PROP_CONTROL:
      g_value_set_string (value, self->control);
      break;
    case PROP_NUM_SLOTS:
      g_value_set_uint (value, self->num_slots);
      break;
    case PROP_SIZE:
      g_value_set_uint64 (value, self->size);
      break;
    case PROP_MODE:
      g_value_set_uint (value, self->mode);
      break;
    case PROP_SLOT_TIMEOUT:
      g_value_set_uint64 (value, self->slot_timeout);
      break;
    case PROP_PEER_TIMEOUT:
      g_value_set_uint64 (value, self->peer_timeout);
      break;
    case PROP_ALLOW_SYMLINK:
      g_value_set_boolean (value, self->allow_symlink);
      break;
    case PROP_INLINE_FALLBACK:
      g_value_set_boolean (value, self->inline_fallback);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_shm_sink_finalize (GObject * object)
{
  GstShmSink *self = GST_SHM_SINK (object);

  g_free (self->path);
  g_free (self->control);
  g_free (self->area_path);
  gst_shm_negotiator_free (self->negotiator);
  g_mutex_clear (&self->lock);
  g_cond_clear (&self->cond);
  G_OBJECT_CLASS (parent_class)->finalize (object);
}

static void
gst_shm_sink_init (GstShmSink * self)
{
  self->negotiator = gst_shm_negotiator_new ();
  g_mutex_init (&self->lock);
  g_cond_init (&self->cond);
  self->num_slots = DEFAULT_NUM_SLOTS;
  self->size = DEFAULT_SIZE;
  self->mode = DEFAULT_MODE;
  self->wait_for_receiver = DEFAULT_WAIT_FOR_RECEIVER;
  self->min_receivers = DEFAULT_MIN_RECEIVERS;
  self->slot_timeout = DEFAULT_SLOT_TIMEOUT;
  self->peer_timeout = DEFAULT_PEER_TIMEOUT;
  self->allow_symlink = DEFAULT_ALLOW_SYMLINK;
  self->inline_fallback = DEFAULT_INLINE_FALLBACK;
  /* A last sample would pin a slot after every frame. */
  gst_base_sink_set_last_sample_enabled (GST_BASE_SINK (self), FALSE);
  /* Rendering is an announcement of a few microseconds: no deadline to
   * reserve (a live source without buffering, such as ximagesrc, then
   * needs no queue in front). */
  gst_base_sink_set_processing_deadline (GST_BASE_SINK (self), 0);
}

static void
gst_shm_sink_class_init (GstShmSinkClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseSinkClass *basesink_class = GST_BASE_SINK_CLASS (klass);
  const GParamFlags ready = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS
      | GST_PARAM_MUTABLE_READY;

  gobject_class->set_property = gst_shm_sink_set_property;
  gobject_class->get_property = gst_shm_sink_get_property;
  gobject_class->finalize = gst_shm_sink_finalize;

  /**
   * GstShmSink:path:
   *
   * The shared memory file: a file in /dev/shm (created when missing), the
   * backing file of a QEMU ivshmem device on the host (used as it is), or,
   * in a guest, BAR 2 of the ivshmem device:
   * /sys/bus/pci/devices/0000:00:04.0/resource2_wc.  In a guest,
   * ivshmem:N names BAR 2 of the Nth ivshmem device (PCI id 1af4:1110,
   * counted from 0 in PCI address order) and ivshmem:0000:00:04.0 the one
   * at that address.  A disabled device is enabled (root only; otherwise
   * the error says the command to run).
   */
  g_object_class_install_property (gobject_class, PROP_PATH,
      g_param_spec_string ("path", "Path",
          "Shared memory file, e.g. /dev/shm/NAME (created when missing; "
          "an existing file is used as it is); in a QEMU guest the ivshmem "
          "BAR, /sys/bus/pci/devices/ADDRESS/resource2_wc, or ivshmem:N",
          NULL, ready));

  /**
   * GstShmSink:control:
   *
   * Where receivers connect: unix:PATH, tcp:HOST:PORT, vsock:CID:PORT
   * (CID "any" to listen on every CID), or ring for the in-band control
   * rings inside the area itself (no socket at all: two guests on one
   * ivshmem device).  By default, the unix socket PATH.sock beside the area
   * file, and ring for a PCI BAR path.
   */
  g_object_class_install_property (gobject_class, PROP_CONTROL,
      g_param_spec_string ("control", "Control address",
          "Control address receivers connect to: unix:PATH, tcp:HOST:PORT, "
          "vsock:CID:PORT or ring (default: unix:<path>.sock; ring for a "
          "PCI BAR)", NULL, ready));

  g_object_class_install_property (gobject_class, PROP_NUM_SLOTS,
      g_param_spec_uint ("num-slots", "Number of slots",
          "Frame slots in an area that shmsink creates",
          SHM_AREA_MIN_SLOTS, SHM_AREA_MAX_SLOTS, DEFAULT_NUM_SLOTS, ready));

  g_object_class_install_property (gobject_class, PROP_SIZE,
      g_param_spec_uint64 ("size", "Size",
          "Size in bytes of an area that shmsink creates "
          "(0: sized from the caps and num-slots)", 0, SHM_AREA_MAX_SIZE,
          DEFAULT_SIZE, ready));

  g_object_class_install_property (gobject_class, PROP_MODE,
      g_param_spec_uint ("mode", "Mode",
          "Permissions of the area file and control socket shmsink creates",
          0, 0777, DEFAULT_MODE, ready));

  /**
   * GstShmSink:wait-for-receiver:
   *
   * Negotiate caps with the first receiver's (or #GstShmSink:min-receivers
   * receivers') accepted caps, and hold frames back until it has completed
   * the handshake, so that no frame is lost to start-up order: upstream's
   * caps query waits for a receiver.  When FALSE, upstream negotiates
   * without receivers, frames rendered while no receiver is ready are not
   * sent anywhere (stats: frames-unsent), and a receiver that connects
   * later is refused if it does not accept the running stream's caps (one
   * whose downstream changes what it accepts later asks for a
   * renegotiation).
   */
  g_object_class_install_property (gobject_class, PROP_WAIT_FOR_RECEIVER,
      g_param_spec_boolean ("wait-for-receiver", "Wait for receiver",
          "Block the stream until a receiver is ready (FALSE: frames with "
          "no receiver go nowhere)", DEFAULT_WAIT_FOR_RECEIVER,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS));

  /**
   * GstShmSink:min-receivers:
   *
   * With #GstShmSink:wait-for-receiver, how many receivers the caps are
   * negotiated with and must be ready before frames flow: every one of
   * them gets every frame from the first.
   */
  g_object_class_install_property (gobject_class, PROP_MIN_RECEIVERS,
      g_param_spec_uint ("min-receivers", "Minimum receivers",
          "With wait-for-receiver: receivers to wait for before negotiating "
          "caps and sending frames", 1, SHM_AREA_TOKEN_LANES,
          DEFAULT_MIN_RECEIVERS, G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS));

  g_object_class_install_property (gobject_class, PROP_SLOT_TIMEOUT,
      g_param_spec_uint64 ("slot-timeout", "Slot timeout",
          "How long to wait for a free slot when receivers hold all of them "
          "before dropping the frame (ns; GST_CLOCK_TIME_NONE: forever)",
          0, G_MAXUINT64, DEFAULT_SLOT_TIMEOUT, ready));

  g_object_class_install_property (gobject_class, PROP_PEER_TIMEOUT,
      g_param_spec_uint64 ("peer-timeout", "Peer timeout",
          "A receiver silent this long (no release, no heartbeat) is "
          "dropped and its slots freed; at EOS, the longest wait for every "
          "receiver to read what was sent to it (ns)", GST_SECOND, G_MAXUINT64,
          DEFAULT_PEER_TIMEOUT, G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS));

  g_object_class_install_property (gobject_class, PROP_ALLOW_SYMLINK,
      g_param_spec_boolean ("allow-symlink", "Allow symlink",
          "Follow a symbolic link at path (refused by default)",
          DEFAULT_ALLOW_SYMLINK, ready));

  /**
   * GstShmSink:inline-fallback:
   *
   * When a receiver connected over TCP or vsock does not map the same
   * memory (the token check fails: it runs on another machine), send it the
   * bytes of each frame through the connection instead, with a warning on
   * the bus (stats: frames-inline).  Such a connection holds at most two
   * frames: a non-live receiver (is-live=false) paces the sender as it
   * does in shared memory (a wait of at most #GstShmSink:slot-timeout for
   * room, then frames skipped until it catches up); a live one that is
   * behind misses frames (frames-skipped).  When FALSE,
   * the failed check is an error, as it always is over a unix socket or the
   * in-band rings.
   */
  g_object_class_install_property (gobject_class, PROP_INLINE_FALLBACK,
      g_param_spec_boolean ("inline-fallback", "Inline fallback",
          "Send frames through a TCP/vsock connection when the receiver "
          "does not map the same memory (FALSE: that is an error)",
          DEFAULT_INLINE_FALLBACK, ready));

  /**
   * GstShmSink:stats:
   *
   * frames-rendered, frames-sent, frames-zero-copy (announced in place),
   * frames-copied and bytes-copied (copied into a slot), frames-dropped
   * (no free slot), frames-unsent (no receiver), frames-skipped (frames
   * a lagging receiver missed), frames-inline (frames sent through a
   * connection, see #GstShmSink:inline-fallback), receivers (ready now),
   * receivers-connected, sessions, area-size, n-slots, slot-size; and
   * GstBaseSink's average-rate, dropped and rendered.
   */
  g_object_class_install_property (gobject_class, PROP_STATS,
      g_param_spec_boxed ("stats", "Statistics",
          "Frame and receiver counters (with GstBaseSink's)",
          GST_TYPE_STRUCTURE, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));

  gst_element_class_set_static_metadata (element_class,
      "Shared memory video sink", "Sink/Video",
      "Sends frames through a token-verified shared memory area "
      "(/dev/shm or QEMU ivshmem) to shmsrc, zero-copy", "gst-shm developers");
  gst_element_class_add_static_pad_template (element_class, &sink_template);

  element_class->set_clock = GST_DEBUG_FUNCPTR (gst_shm_sink_set_clock);
  element_class->change_state = GST_DEBUG_FUNCPTR (gst_shm_sink_change_state);
  basesink_class->start = GST_DEBUG_FUNCPTR (gst_shm_sink_start);
  basesink_class->stop = GST_DEBUG_FUNCPTR (gst_shm_sink_stop);
  basesink_class->set_caps = GST_DEBUG_FUNCPTR (gst_shm_sink_set_caps);
  basesink_class->get_caps = GST_DEBUG_FUNCPTR (gst_shm_sink_get_caps);
  basesink_class->propose_allocation =
      GST_DEBUG_FUNCPTR (gst_shm_sink_propose_allocation);
  basesink_class->render = GST_DEBUG_FUNCPTR (gst_shm_sink_render);
  basesink_class->event = GST_DEBUG_FUNCPTR (gst_shm_sink_event);
  basesink_class->unlock = GST_DEBUG_FUNCPTR (gst_shm_sink_unlock);
  basesink_class->unlock_stop = GST_DEBUG_FUNCPTR (gst_shm_sink_unlock_stop);
}

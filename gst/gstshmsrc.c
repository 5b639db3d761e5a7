/* gst-shm: shmsrc
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

/**
 * SECTION:element-shmsrc
 * @title: shmsrc
 * @see_also: shmsink
 *
 * Receives video frames that a shmsink sends through a shared memory area:
 * a file in /dev/shm on the same host, or, in a QEMU guest, the PCI BAR of
 * the ivshmem device that maps the host's file
 * (/sys/bus/pci/devices/0000:00:04.0/resource2_wc).
 *
 * No caps need to be given: they come from the sender and are set on the
 * source pad before the first frame, and again before the first frame of
 * every change.  Each frame is pushed as a read-only buffer over the slot it
 * lies in (no copy); the slot goes back to the sender when the last
 * reference to the buffer is dropped.  A downstream that does not handle
 * GstVideoMeta gets a copy in the default layout when the sender's strides
 * are padded.  So that a downstream that keeps buffers (a queue, a sink's
 * last sample) can never starve the sender, shmsrc keeps at most all slots
 * but one downstream and copies further frames out (stats: frames-copied).
 *
 * Before the first frame, shmsrc checks that it maps the sender's memory:
 * it finds the sender's random token through its own mapping of #path and
 * answers with one of its own.  When they differ, both sides fail with an
 * error that names both paths.
 *
 * shmsrc is a live source by default: timestamps cross as CLOCK_MONOTONIC
 * instants (the instant the sender's sink would render the frame) and are
 * mapped onto this pipeline's clock, so that the intervals between frames
 * are kept exactly and two pipelines on one host render in step.  A frame
 * due before this pipeline started playing (the backlog of a sender that
 * waited for this receiver) gets running time 0, and timestamps never go
 * back.  Between
 * machines (a VM and its host) CLOCK_MONOTONIC differs: the offset is taken
 * from the first frame of each session.  With is-live=false the sender's
 * PTS, DTS and durations are pushed unchanged, after a segment that starts
 * at the first frame.
 *
 * shmsrc waits for a sender (and, after one leaves, for the next) for
 * #GstShmSrc:timeout; element messages named "shm-peer" tell when a sender
 * connects, leaves, is lost or stalls.
 *
 * ## Example launch lines
 * |[
 * gst-launch-1.0 shmsrc path=/dev/shm/demo ! videoconvert ! autovideosink
 * ]|
 * |[
 * gst-launch-1.0 shmsrc path=/sys/bus/pci/devices/0000:00:04.0/resource2_wc control=tcp:10.0.2.2:5000 ! videoconvert ! autovideosink
 * ]|
 *
 * Since: 0.1
 */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstshmsrc.h"
#include "gstshmelements.h"
#include "gstshmnegotiator.h"
#include "gstshmpool.h"
#include "gstshmutil.h"
#include "shmaddress.h"
#include "shmarea.h"
#include "shmconn.h"
#include "shmproto.h"
#include "shmring.h"
#include "shmcopy.h"

#include <gst/video/video.h>
#include <errno.h>
#include <string.h>

GST_DEBUG_CATEGORY_STATIC (gst_shm_src_debug);
#define GST_CAT_DEFAULT gst_shm_src_debug

#define DEFAULT_IS_LIVE TRUE
#define DEFAULT_TIMEOUT 0
#define DEFAULT_PEER_TIMEOUT (5 * GST_SECOND)
#define DEFAULT_ALLOW_SYMLINK FALSE
#define DEFAULT_READ_MODE GST_SHM_SRC_READ_AUTO
#define DEFAULT_INLINE_FALLBACK TRUE
#define RETRY_MS 100
#define RING_ACK_POLL_MS 5
#define TICK_MS 500
/* inline frames read ahead of downstream by a non-live receiver */
#define INLINE_MAX_PENDING 2

enum
{
  PROP_0,
  PROP_PATH,
  PROP_CONTROL,
  PROP_IS_LIVE,
  PROP_TIMEOUT,
  PROP_PEER_TIMEOUT,
  PROP_ALLOW_SYMLINK,
  PROP_READ_MODE,
  PROP_INLINE_FALLBACK,
  PROP_STATS,
};

typedef enum
{
  GST_SHM_SRC_READ_AUTO,
  GST_SHM_SRC_READ_IN_PLACE,
  GST_SHM_SRC_READ_COPY,
} GstShmSrcReadMode;

#define GST_TYPE_SHM_SRC_READ_MODE (gst_shm_src_read_mode_get_type ())
static GType
gst_shm_src_read_mode_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
    {GST_SHM_SRC_READ_AUTO, "In place, but copied out of a PCI BAR "
          "(write-combined or uncached memory)", "auto"},
    {GST_SHM_SRC_READ_IN_PLACE, "Frames are pushed in place, also from a "
          "PCI BAR", "in-place"},
    {GST_SHM_SRC_READ_COPY, "Every frame is copied into memory of our own",
        "copy"},
    {0, NULL, NULL},
  };

  if (g_once_init_enter (&type))
    g_once_init_leave (&type, g_enum_register_static ("GstShmSrcReadMode",
            values));
  return type;
}

static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);

/* One verified mapping of one sender session.  Frames and the buffers that
 * wrap slots hold a reference, so that the mapping and the connection to
 * release slots on outlive the element's current state. */
typedef struct
{
  gint ref_count;
  ShmArea *area;
  ShmConn *conn;
  ShmGeometry geo;
  guint32 lane;
  gint held;                    /* slots wrapped by live buffers */
  gboolean same_boot;
  gboolean have_mono_offset;
  gint64 mono_offset;           /* receiver minus sender CLOCK_MONOTONIC */
  GstClockTime last_pts, last_dts;      /* streaming thread */
  guint64 next_seq;             /* streaming thread: expected next frame */
  gboolean inline_frames;       /* no mapping: frame bytes come inline */
  gchar *inline_reason;
  ShmBarKind bar;               /* the mapping is a PCI BAR */
} Session;

typedef enum
{
  ITEM_CAPS,
  ITEM_FRAME,
  ITEM_EOS,
} ItemType;

typedef struct
{
  ItemType type;
  GstCaps *caps;
  Session *session;
  guint32 slot;
  guint64 seq;
  guint64 offset, size;
  guint64 pts, dts, duration, mono_pts, mono_dts, send_time;
  guint64 buffer_offset, buffer_offset_end;
  guint32 flags;
  GBytes *payload;              /* an inline frame's bytes */
  guint n_planes;
  gsize plane_offsets[GST_VIDEO_MAX_PLANES];
  gint plane_strides[GST_VIDEO_MAX_PLANES];
} Item;

typedef enum
{
  CONN_NONE,
  CONN_AWAIT_MMAP,
  CONN_AWAIT_READY,
  CONN_READY,
} ConnState;

struct _GstShmSrc
{
  GstPushSrc parent;

  /* properties: GST_OBJECT_LOCK */
  gchar *path;
  gchar *control;
  GstClockTime timeout;
  GstClockTime peer_timeout;
  gboolean allow_symlink;
  GstShmSrcReadMode read_mode;
  gboolean inline_fallback;

  /* control thread; created in start, joined in stop */
  GMainContext *context;
  GMainLoop *loop;
  GThread *thread;
  GSource *tick_source;
  GSource *retry_source;
  ShmAddress addr;
  gchar *control_str;
  gchar *area_path;
  ShmBarKind bar;               /* the path is a PCI BAR */
  /* control thread only */
  ShmConn *conn;
  ConnState state;
  Session *pending;             /* handshake in progress */
  Session *session;             /* verified */
  GstCaps *wire_caps;           /* caps of the frames now arriving */
  GstVideoInfo wire_vinfo;
  gboolean wire_is_video;
  guint64 last_seq;
  gint64 waiting_since;
  gint64 last_message;
  gboolean stalled;
  gboolean got_eos;
  gboolean said_waiting;
  /* control=ring: a lane claimed, waiting for the sender's ack */
  ShmArea *ring_area;
  ShmGeometry ring_geo;
  guint ring_lane;
  guint64 ring_id;
  gint64 ring_claimed_at;
  gboolean said_no_rings;

  /* self->lock */
  GMutex lock;
  GCond cond;
  GQueue items;
  guint pending_frames;         /* ITEM_FRAME in items */
  ShmConn *paused_conn;         /* not read while frames wait (inline) */
  GstCaps *accept;              /* what downstream accepts, as last told */
  gboolean flushing;
  gboolean fatal;               /* an error was posted: create() fails */
  gboolean playing;
  /* stats */
  guint64 frames_received;
  guint64 frames_pushed;
  guint64 frames_zero_copy;
  guint64 frames_copied;
  guint64 bytes_copied;
  guint64 frames_dropped;
  guint64 frames_inline;
  guint64 sessions;
  guint n_slots;
  gint64 last_latency_ns;

  /* streaming thread */
  GstCaps *caps;                /* caps set on the pad */
  GstVideoInfo vinfo;
  gboolean is_video;
  gboolean downstream_meta;
  GstBufferPool *copy_pool;
  gboolean need_segment;
  gboolean stale_caps;          /* downstream no longer accepts the caps */
  gboolean discont;
};

#define gst_shm_src_parent_class parent_class
G_DEFINE_TYPE (GstShmSrc, gst_shm_src, GST_TYPE_PUSH_SRC);
GST_ELEMENT_REGISTER_DEFINE_WITH_CODE (shmsrc, "shmsrc", GST_RANK_NONE,
    GST_TYPE_SHM_SRC,
    GST_DEBUG_CATEGORY_INIT (gst_shm_src_debug, "shmsrc", 0, "gst-shm source"));

static void schedule_connect (GstShmSrc * self, guint delay_ms);
static void set_fatal (GstShmSrc * self);

/* An error found in the control thread: posted at once, and create() fails
 * too, so that the streaming thread stops even if the error message was
 * handled before the pipeline reached PLAYING. */
#define CONTROL_ERROR(self, domain, code, text, debug) G_STMT_START { \
  GST_ELEMENT_ERROR (self, domain, code, text, debug); \
  set_fatal (self); \
} G_STMT_END

/* --- sessions and items -------------------------------------------------- */

static Session *
session_ref (Session * s)
{
  g_atomic_int_inc (&s->ref_count);
  return s;
}

static void
session_unref (Session * s)
{
  if (!g_atomic_int_dec_and_test (&s->ref_count))
    return;
  if (s->area)
    shm_area_unref (s->area);
  g_free (s->inline_reason);
  shm_conn_unref (s->conn);
  g_free (s);
}

static void
session_release (Session * s, guint32 slot)
{
  GVariantDict d;

  shm_release_fence ();
  g_variant_dict_init (&d, NULL);
  g_variant_dict_insert (&d, "session", "t", s->geo.session_id);
  g_variant_dict_insert (&d, "slot", "u", slot);
  /* Fails quietly when the sender is gone: nothing to give back then. */
  shm_conn_send (s->conn, SHM_MSG_RELEASE, g_variant_dict_end (&d), NULL);
}

static void
item_free (Item * item)
{
  gst_clear_caps (&item->caps);
  g_clear_pointer (&item->payload, g_bytes_unref);
  if (item->session)
    session_unref (item->session);
  g_free (item);
}

/* A frame that will not be pushed: give its slot back. */
static void
item_discard (Item * item)
{
  if (item->type == ITEM_FRAME && !item->payload)
    session_release (item->session, item->slot);
  item_free (item);
}

static void
set_fatal (GstShmSrc * self)
{
  g_mutex_lock (&self->lock);
  self->fatal = TRUE;
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->lock);
}

static void
push_item (GstShmSrc * self, Item * item)
{
  g_mutex_lock (&self->lock);
  g_queue_push_tail (&self->items, item);
  if (item->type == ITEM_FRAME)
    self->pending_frames++;
  g_cond_signal (&self->cond);
  g_mutex_unlock (&self->lock);
}

/* With self->lock: the connection paused for inline frames is read again
 * once downstream has taken them. */
static void
resume_reading_locked (GstShmSrc * self)
{
  if (self->paused_conn && self->pending_frames < INLINE_MAX_PENDING) {
    shm_conn_set_reading (self->paused_conn, TRUE);
    g_clear_pointer (&self->paused_conn, shm_conn_unref);
  }
}

static void
flush_items_locked (GstShmSrc * self, gboolean frames_only)
{
  GList *l = self->items.head;

  while (l) {
    GList *next = l->next;
    Item *item = l->data;
    if (!frames_only || item->type == ITEM_FRAME) {
      if (item->type == ITEM_FRAME)
        self->pending_frames--;
      g_queue_delete_link (&self->items, l);
      item_discard (item);
    }
    l = next;
  }
  resume_reading_locked (self);
}

/* --- control thread: connection ------------------------------------------ */

/* Gives back a lane claimed for control=ring that the sender has not
 * acknowledged yet. */
static void
ring_abandon (GstShmSrc * self)
{
  if (!self->ring_area)
    return;
  shm_ring_unclaim (self->ring_area, &self->ring_geo, self->ring_lane,
      self->ring_id);
  g_clear_pointer (&self->ring_area, shm_area_unref);
}

static void
disconnect (GstShmSrc * self)
{
  g_mutex_lock (&self->lock);
  g_clear_pointer (&self->paused_conn, shm_conn_unref);
  g_mutex_unlock (&self->lock);
  ring_abandon (self);
  if (self->conn) {
    shm_conn_close (self->conn);
    g_clear_pointer (&self->conn, shm_conn_unref);
  }
  g_clear_pointer (&self->pending, session_unref);
  g_clear_pointer (&self->session, session_unref);
  self->state = CONN_NONE;
}

static void
fail (GstShmSrc * self, const gchar * code, const gchar * message)
{
  GVariantDict d;

  if (self->conn) {
    g_variant_dict_init (&d, NULL);
    g_variant_dict_insert (&d, "code", "s", code);
    g_variant_dict_insert (&d, "message", "s", message);
    shm_conn_send (self->conn, SHM_MSG_ERROR, g_variant_dict_end (&d), NULL);
  }
  disconnect (self);
}

static void
post_area_error (GstShmSrc * self, const GError * err)
{
  if (err->domain == SHM_AREA_ERROR && err->code == SHM_AREA_ERROR_NOT_FOUND)
    CONTROL_ERROR (self, RESOURCE, NOT_FOUND, ("%s", err->message), (NULL));
  else if (err->domain == SHM_AREA_ERROR
      && err->code == SHM_AREA_ERROR_PERMISSION)
    CONTROL_ERROR (self, RESOURCE, OPEN_READ_WRITE, ("%s", err->message),
        (NULL));
  else if (err->domain == SHM_AREA_ERROR
      && (err->code == SHM_AREA_ERROR_SYMLINK
          || err->code == SHM_AREA_ERROR_NOT_REGULAR))
    CONTROL_ERROR (self, RESOURCE, SETTINGS, ("%s", err->message), (NULL));
  else
    CONTROL_ERROR (self, RESOURCE, READ, ("%s", err->message), (NULL));
}

/* The sender's area cannot be reached from here.  Over TCP or vsock the
 * sender may run on another machine: ask for the frames inline over the
 * connection instead (the sender agrees unless its inline-fallback is
 * off).  Takes @s when it returns TRUE. */
static gboolean
ask_inline (GstShmSrc * self, Session * s, const gchar * file,
    const gchar * reason)
{
  GVariantDict d;
  gboolean fallback;

  GST_OBJECT_LOCK (self);
  fallback = self->inline_fallback;
  GST_OBJECT_UNLOCK (self);
  if (!fallback || (self->addr.kind != SHM_ADDRESS_TCP
          && self->addr.kind != SHM_ADDRESS_VSOCK)
      || s->geo.slot_size == 0 || s->geo.slot_size > SHM_MSG_MAX_PAYLOAD)
    return FALSE;

  g_variant_dict_init (&d, NULL);
  g_variant_dict_insert (&d, "session", "t", s->geo.session_id);
  g_variant_dict_insert (&d, "inline", "b", TRUE);
  g_variant_dict_insert (&d, "reason", "s", reason);
  shm_conn_send (self->conn, SHM_MSG_MMAP_REPLY, g_variant_dict_end (&d), NULL);
  g_clear_pointer (&s->area, shm_area_unref);
  s->inline_frames = TRUE;
  s->inline_reason = g_strdup_printf ("The sender's area \"%s\" and the "
      "receiver's area \"%s\" do not map the same memory: %s", file,
      self->area_path, reason);
  g_clear_pointer (&self->pending, session_unref);
  self->pending = s;
  self->state = CONN_AWAIT_READY;
  GST_INFO_OBJECT (self, "asking for inline frames: %s", reason);
  return TRUE;
}

static void
handle_mmap (GstShmSrc * self, GVariant * body)
{
  g_autoptr (GError) err = NULL;
  const gchar *file;
  const guint8 *token;
  gsize token_len;
  guint64 token_index, my_index;
  guint32 token_bytes, version;
  guint8 my_token[SHM_TOKEN_BYTES];
  const gchar *boot_id = NULL;
  ShmGeometry g = { 0, };
  guint32 lane;
  Session *s;
  GVariantDict d;
  gboolean allow_symlink;

  if (!shm_msg_get_u32 (body, "version", 0, G_MAXUINT32, &version, &err))
    goto invalid;
  if (version != SHM_PROTO_VERSION) {
    g_autofree gchar *msg = g_strdup_printf ("the sender speaks protocol "
        "version %u, this shmsrc speaks version %d", version,
        SHM_PROTO_VERSION);
    CONTROL_ERROR (self, RESOURCE, READ, ("%s", msg), (NULL));
    fail (self, "version", msg);
    return;
  }
  if (!shm_msg_get_u64 (body, "session", 1, G_MAXUINT64, &g.session_id, &err)
      || !shm_msg_get_string (body, "file", SHM_MAX_PATH, &file, &err)
      || !shm_msg_get_u64 (body, "size", 0, SHM_AREA_MAX_SIZE, &g.area_size,
          &err)
      || !shm_msg_get_bytes (body, "token", SHM_TOKEN_MIN_BYTES,
          SHM_TOKEN_MAX_BYTES, &token, &token_len, &err)
      || !shm_msg_get_u64 (body, "token_index", 0, G_MAXUINT64, &token_index,
          &err)
      || !shm_msg_get_u32 (body, "token_bytes", token_len, token_len,
          &token_bytes, &err)
      || !shm_msg_get_u32 (body, "lane", 0, SHM_AREA_TOKEN_LANES - 1,
          &lane, &err))
    goto invalid;
  s = g_new0 (Session, 1);
  s->ref_count = 1;
  s->conn = shm_conn_ref (self->conn);
  s->lane = lane;
  s->last_pts = s->last_dts = GST_CLOCK_TIME_NONE;
  if (!shm_msg_get_u64 (body, "token-offset", 0, G_MAXUINT64,
          &g.token_offset, &err)
      || !shm_msg_get_u32 (body, "token-lanes", 0, G_MAXUINT32,
          &g.token_lanes, &err)
      || !shm_msg_get_u32 (body, "token-lane-size", 0, G_MAXUINT32,
          &g.token_lane_size, &err)
      || !shm_msg_get_u64 (body, "ring-offset", 0, G_MAXUINT64,
          &g.ring_offset, &err)
      || !shm_msg_get_u64 (body, "ring-size", 0, G_MAXUINT64, &g.ring_size,
          &err)
      || !shm_msg_get_u64 (body, "slots-offset", 0, G_MAXUINT64,
          &g.slots_offset, &err)
      || !shm_msg_get_u64 (body, "slot-size", 0, G_MAXUINT64, &g.slot_size,
          &err)
      || !shm_msg_get_u32 (body, "n-slots", 0, G_MAXUINT32, &g.n_slots, &err)
      || !shm_msg_get_u32 (body, "flags", 0, G_MAXUINT32, &g.flags, &err)) {
    session_unref (s);
    goto invalid;
  }
  shm_msg_get_string (body, "boot-id", 64, &boot_id, NULL);
  s->same_boot = boot_id && *boot_id
      && g_str_equal (boot_id, gst_shm_boot_id ());
  s->geo = g;
  /* checked here, not only against the area: frames may come inline */
  if (!shm_geometry_validate (&g, G_MAXUINT64, &err)) {
    session_unref (s);
    goto invalid;
  }

  GST_OBJECT_LOCK (self);
  allow_symlink = self->allow_symlink;
  GST_OBJECT_UNLOCK (self);

  /* Our own path: across a VM boundary it differs from the sender's. */
  s->bar = self->bar;
  s->area = shm_area_open (self->area_path,
      allow_symlink ? SHM_OPEN_ALLOW_SYMLINK : 0, &err);
  if (!s->area) {
    if (ask_inline (self, s, file, err->message))
      return;
    post_area_error (self, err);
    fail (self, "open", err->message);
    session_unref (s);
    return;
  }
  if (!shm_area_check_header (s->area, &g, &err)) {
    g_autofree gchar *msg = NULL;
    if (g_error_matches (err, SHM_AREA_ERROR, SHM_AREA_ERROR_BAD_MAGIC)
        || g_error_matches (err, SHM_AREA_ERROR, SHM_AREA_ERROR_SESSION))
      msg = g_strdup_printf ("The sender's area \"%s\" and the receiver's "
          "area \"%s\" do not map the same memory: %s", file,
          self->area_path, err->message);
    else
      msg = g_strdup (err->message);
    if (ask_inline (self, s, file, err->message))
      return;
    CONTROL_ERROR (self, RESOURCE, READ, ("%s", msg), (NULL));
    fail (self, "token", msg);
    session_unref (s);
    return;
  }
  if (!shm_area_check_token (s->area, &g, s->lane, token, token_bytes,
          token_index)) {
    g_autofree gchar *cause = g_strdup_printf ("the sender's token was not "
        "found in \"%s\"", self->area_path);
    g_autofree gchar *msg = g_strdup_printf ("The sender's area \"%s\" and "
        "the receiver's area \"%s\" do not map the same memory: %s", file,
        self->area_path, cause);
    if (ask_inline (self, s, file, cause))
      return;
    CONTROL_ERROR (self, RESOURCE, READ, ("%s", msg), ("token check failed"));
    fail (self, "token", msg);
    session_unref (s);
    return;
  }
  if (!shm_area_write_token (s->area, &g, s->lane, token_index, my_token,
          SHM_TOKEN_BYTES, &my_index, &err)) {
    CONTROL_ERROR (self, RESOURCE, WRITE, ("%s", err->message), (NULL));
    fail (self, "internal", err->message);
    session_unref (s);
    return;
  }

  g_variant_dict_init (&d, NULL);
  g_variant_dict_insert (&d, "session", "t", g.session_id);
  g_variant_dict_insert_value (&d, "token",
      g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, my_token,
          SHM_TOKEN_BYTES, 1));
  g_variant_dict_insert (&d, "token_index", "t", my_index);
  g_variant_dict_insert (&d, "token_bytes", "u", SHM_TOKEN_BYTES);
  shm_conn_send (self->conn, SHM_MSG_MMAP_REPLY, g_variant_dict_end (&d), NULL);

  g_clear_pointer (&self->pending, session_unref);
  self->pending = s;
  self->state = CONN_AWAIT_READY;
  GST_DEBUG_OBJECT (self, "sender's token found in %s (sender: %s), "
      "answered at %" G_GUINT64_FORMAT, self->area_path, file, my_index);
  return;

invalid:
  {
    g_autofree gchar *msg = g_strdup_printf ("invalid mmap hello from the "
        "sender: %s", err->message);
    CONTROL_ERROR (self, RESOURCE, READ, ("%s", msg), (NULL));
    fail (self, "protocol", msg);
  }
}

/* Caps announced by the sender: parsed and bounded, the frames after them
 * are checked against them. */
static gboolean
take_caps (GstShmSrc * self, GVariant * body, gboolean required)
{
  g_autoptr (GError) err = NULL;
  GstCaps *caps;
  GstVideoInfo info;
  Item *item;

  caps = gst_shm_negotiator_read (body, TRUE, &err);
  if (!caps && !err && !required)
    return TRUE;
  if (!caps) {
    if (!err)
      g_set_error (&err, SHM_PROTO_ERROR, SHM_PROTO_ERROR_INVALID, "no caps");
    goto invalid;
  }
  if (gst_shm_raw_video_info (&info, caps)
      && GST_VIDEO_INFO_SIZE (&info) > self->session->geo.slot_size) {
    g_set_error (&err, SHM_PROTO_ERROR, SHM_PROTO_ERROR_INVALID,
        "caps need frames of %" G_GSIZE_FORMAT " bytes but the slots hold %"
        G_GUINT64_FORMAT, GST_VIDEO_INFO_SIZE (&info),
        self->session->geo.slot_size);
    gst_caps_unref (caps);
    goto invalid;
  }
  gst_caps_replace (&self->wire_caps, caps);
  self->wire_is_video = gst_shm_raw_video_info (&self->wire_vinfo, caps);
  item = g_new0 (Item, 1);
  item->type = ITEM_CAPS;
  item->caps = caps;
  push_item (self, item);
  return TRUE;

invalid:
  {
    g_autofree gchar *msg = g_strdup_printf ("The sender's caps are "
        "invalid: %s", err->message);
    CONTROL_ERROR (self, STREAM, FORMAT, ("%s", msg), (NULL));
    fail (self, "caps", msg);
    return FALSE;
  }
}

static void
handle_ready (GstShmSrc * self, GVariant * body)
{
  g_autoptr (GError) err = NULL;
  guint64 session;
  gchar *peer;

  if (!shm_msg_get_u64 (body, "session", 0, G_MAXUINT64, &session, &err)
      || session != self->pending->geo.session_id) {
    CONTROL_ERROR (self, RESOURCE, READ, ("The sender confirmed another "
            "session than the one verified."), (NULL));
    fail (self, "protocol", "ready for another session");
    return;
  }
  if (self->pending->inline_frames) {
    g_autoptr (GVariant) v = g_variant_lookup_value (body, "inline",
        G_VARIANT_TYPE_BOOLEAN);
    if (!v || !g_variant_get_boolean (v)) {
      CONTROL_ERROR (self, RESOURCE, READ, ("The sender confirmed a session "
              "in its area, which is not reachable here: %s",
              self->pending->inline_reason), (NULL));
      fail (self, "protocol", "ready without inline frames");
      return;
    }
    GST_ELEMENT_WARNING (self, RESOURCE, READ, ("%s; frames come inline over "
            "the connection (set inline-fallback=false to make this an "
            "error).", self->pending->inline_reason), (NULL));
    shm_conn_set_max_payload (self->conn, self->pending->geo.slot_size);
  }
  g_clear_pointer (&self->session, session_unref);
  self->session = g_steal_pointer (&self->pending);
  self->state = CONN_READY;
  self->last_seq = G_MAXUINT64;
  g_mutex_lock (&self->lock);
  self->sessions++;
  self->n_slots = self->session->geo.n_slots;
  g_mutex_unlock (&self->lock);
  if (!take_caps (self, body, FALSE))
    return;
  peer = g_strdup (shm_conn_get_description (self->conn));
  GST_INFO_OBJECT (self, "ready: session %016" G_GINT64_MODIFIER "x, %u "
      "slots of %" G_GUINT64_FORMAT " bytes", session,
      self->session->geo.n_slots, self->session->geo.slot_size);
  gst_shm_post_peer_message (GST_ELEMENT (self), "connected", peer, session,
      NULL);
  g_free (peer);
}

static gboolean
plane_layout_ok (const GstVideoInfo * info, guint n, const guint64 * offs,
    const guint64 * strides, guint64 size, GError ** error)
{
  const GstVideoFormatInfo *finfo = info->finfo;

  if (n != GST_VIDEO_INFO_N_PLANES (info)) {
    g_set_error (error, SHM_PROTO_ERROR, SHM_PROTO_ERROR_INVALID,
        "%u planes, the caps have %u", n, GST_VIDEO_INFO_N_PLANES (info));
    return FALSE;
  }
  for (guint p = 0; p < n; p++) {
    gint comp[GST_VIDEO_MAX_COMPONENTS];
    guint64 rows, min_stride = GST_VIDEO_INFO_PLANE_STRIDE (info, p);

    if (GST_VIDEO_FORMAT_INFO_IS_TILED (finfo)) {
      if (offs[p] != GST_VIDEO_INFO_PLANE_OFFSET (info, p)
          || strides[p] != min_stride)
        goto bad;
      continue;
    }
    gst_video_format_info_component (finfo, p, comp);
    rows = GST_VIDEO_FORMAT_INFO_SCALE_HEIGHT (finfo, comp[0],
        GST_VIDEO_INFO_FIELD_HEIGHT (info));
    /* strides and offsets are bounded by the slot size (< 2^40) and rows
     * by the caps (< 2^31): no overflow */
    if (strides[p] < min_stride || strides[p] > size || offs[p] > size
        || strides[p] * rows > size - offs[p])
      goto bad;
    continue;
  bad:
    g_set_error (error, SHM_PROTO_ERROR, SHM_PROTO_ERROR_INVALID,
        "plane %u (offset %" G_GUINT64_FORMAT ", stride %" G_GUINT64_FORMAT
        ") does not fit a frame of %" G_GUINT64_FORMAT " bytes", p, offs[p],
        strides[p], size);
    return FALSE;
  }
  return TRUE;
}

static void
handle_frame (GstShmSrc * self, GVariant * body, gboolean inline_frame,
    const guint8 * payload, gsize payload_len)
{
  g_autoptr (GError) err = NULL;
  Session *s = self->session;
  guint64 offs[GST_VIDEO_MAX_PLANES], strides[GST_VIDEO_MAX_PLANES];
  gsize n_offs = 0, n_strides = 0;
  guint64 session, seq;
  Item *item = g_new0 (Item, 1);
  gboolean keep;

  item->type = ITEM_FRAME;
  if (!shm_msg_get_u64 (body, "session", 0, G_MAXUINT64, &session, &err)
      || !shm_msg_get_u64 (body, "seq", 0, G_MAXUINT64 - 1, &seq, &err)
      || !shm_msg_get_u32 (body, "slot", 0, s->geo.n_slots - 1, &item->slot,
          &err)
      || !shm_msg_get_u64 (body, "offset", 0, s->geo.slot_size,
          &item->offset, &err)
      || !shm_msg_get_u64 (body, "size", 1, s->geo.slot_size - item->offset,
          &item->size, &err)
      || !shm_msg_get_u64 (body, "pts", 0, G_MAXUINT64, &item->pts, &err)
      || !shm_msg_get_u64 (body, "dts", 0, G_MAXUINT64, &item->dts, &err)
      || !shm_msg_get_u64 (body, "duration", 0, G_MAXUINT64, &item->duration,
          &err)
      || !shm_msg_get_u64 (body, "mono-pts", 0, G_MAXUINT64, &item->mono_pts,
          &err)
      || !shm_msg_get_u64 (body, "mono-dts", 0, G_MAXUINT64, &item->mono_dts,
          &err)
      || !shm_msg_get_u64 (body, "buffer-offset", 0, G_MAXUINT64,
          &item->buffer_offset, &err)
      || !shm_msg_get_u64 (body, "buffer-offset-end", 0, G_MAXUINT64,
          &item->buffer_offset_end, &err)
      || !shm_msg_get_u32 (body, "flags", 0, G_MAXUINT32, &item->flags, &err)
      || !shm_msg_get_u64 (body, "send-time", 0, G_MAXUINT64,
          &item->send_time, &err))
    goto invalid;
  if (session != s->geo.session_id) {
    g_set_error (&err, SHM_PROTO_ERROR, SHM_PROTO_ERROR_INVALID,
        "frame of session %016" G_GINT64_MODIFIER "x in session %016"
        G_GINT64_MODIFIER "x", session, s->geo.session_id);
    goto invalid;
  }
  if (self->last_seq != G_MAXUINT64 && seq <= self->last_seq) {
    g_set_error (&err, SHM_PROTO_ERROR, SHM_PROTO_ERROR_INVALID,
        "frame %" G_GUINT64_FORMAT " after frame %" G_GUINT64_FORMAT, seq,
        self->last_seq);
    goto invalid;
  }
  if (!self->wire_caps) {
    g_set_error (&err, SHM_PROTO_ERROR, SHM_PROTO_ERROR_INVALID,
        "frame before caps");
    goto invalid;
  }
  if (inline_frame != s->inline_frames) {
    g_set_error (&err, SHM_PROTO_ERROR, SHM_PROTO_ERROR_INVALID,
        inline_frame ? "an inline frame for a receiver that maps the area"
        : "a frame in the area for a receiver that gets them inline");
    goto invalid;
  }
  if (inline_frame && payload_len != item->size) {
    g_set_error (&err, SHM_PROTO_ERROR, SHM_PROTO_ERROR_INVALID,
        "an inline frame of %" G_GSIZE_FORMAT " bytes announced as %"
        G_GUINT64_FORMAT, payload_len, item->size);
    goto invalid;
  }
  if (self->wire_is_video) {
    if (!shm_msg_get_u64_array (body, "plane-offsets", GST_VIDEO_MAX_PLANES,
            offs, &n_offs, &err)
        || !shm_msg_get_u64_array (body, "plane-strides",
            GST_VIDEO_MAX_PLANES, strides, &n_strides, &err))
      goto invalid;
    if (n_offs != n_strides) {
      g_set_error (&err, SHM_PROTO_ERROR, SHM_PROTO_ERROR_INVALID,
          "%" G_GSIZE_FORMAT " plane offsets but %" G_GSIZE_FORMAT
          " strides", n_offs, n_strides);
      goto invalid;
    }
    if (!plane_layout_ok (&self->wire_vinfo, n_offs, offs, strides,
            item->size, &err))
      goto invalid;
    item->n_planes = n_offs;
    for (guint i = 0; i < n_offs; i++) {
      item->plane_offsets[i] = offs[i];
      item->plane_strides[i] = strides[i];
    }
  }
  self->last_seq = seq;
  item->seq = seq;
  item->session = session_ref (s);
  if (inline_frame)
    item->payload = g_bytes_new (payload, payload_len);

  g_mutex_lock (&self->lock);
  self->frames_received++;
  if (inline_frame)
    self->frames_inline++;
  /* (another kernel's CLOCK_MONOTONIC cannot be compared with ours) */
  if (s->same_boot)
    self->last_latency_ns = g_get_monotonic_time () * 1000 - item->send_time;
  /* A live source that is not playing produces nothing. */
  keep = self->playing || !gst_base_src_is_live (GST_BASE_SRC (self));
  if (keep) {
    g_queue_push_tail (&self->items, item);
    self->pending_frames++;
    /* A live source whose downstream falls behind drops its oldest
     * frames rather than keep the sender's slots (the next frame pushed
     * is marked DISCONT). */
    if (gst_base_src_is_live (GST_BASE_SRC (self))
        && self->pending_frames > MAX (1, s->geo.n_slots - 2)) {
      for (GList * l = self->items.head; l; l = l->next) {
        Item *old = l->data;
        if (old->type == ITEM_FRAME) {
          g_queue_delete_link (&self->items, l);
          self->pending_frames--;
          self->frames_dropped++;
          item_discard (old);
          break;
        }
      }
    }
    /* A non-live receiver takes every frame: inline ones are not read
     * ahead of downstream beyond a few (the sender waits for room in the
     * connection), where frames in the area are bounded by its slots. */
    if (inline_frame && !gst_base_src_is_live (GST_BASE_SRC (self))
        && self->pending_frames >= INLINE_MAX_PENDING && !self->paused_conn
        && self->conn) {
      self->paused_conn = shm_conn_ref (self->conn);
      shm_conn_set_reading (self->conn, FALSE);
    }
  } else {
    self->frames_dropped++;
  }
  g_mutex_unlock (&self->lock);
  /* (after the unlock: the streaming thread does not wake into a lock we
   * still hold) */
  if (keep)
    g_cond_signal (&self->cond);
  else
    item_discard (item);
  return;

invalid:
  {
    g_autofree gchar *msg = g_strdup_printf ("The sender sent an invalid "
        "frame: %s", err->message);
    item_free (item);
    CONTROL_ERROR (self, RESOURCE, READ, ("%s", msg), (NULL));
    fail (self, "protocol", msg);
  }
}

static void
on_message (ShmConn * conn, guint32 type, GVariant * body,
    const guint8 * payload, gsize payload_len, gpointer user_data)
{
  GstShmSrc *self = user_data;
  const gchar *expected = NULL;

  self->last_message = g_get_monotonic_time ();
  if (self->stalled) {
    self->stalled = FALSE;
    GST_INFO_OBJECT (self, "sender alive again");
  }
  GST_LOG_OBJECT (self, "%s", shm_msg_type_name (type));

  switch (type) {
    case SHM_MSG_MMAP:
      /* Also mid-stream: the sender replaced its area. */
      if (self->state == CONN_NONE)
        expected = "a connection";
      else
        handle_mmap (self, body);
      break;
    case SHM_MSG_READY:
      if (self->state != CONN_AWAIT_READY)
        expected = "ready only after the token answer";
      else
        handle_ready (self, body);
      break;
    case SHM_MSG_CAPS:
      if (self->state != CONN_READY)
        expected = "caps only when ready";
      else
        take_caps (self, body, TRUE);
      break;
    case SHM_MSG_FRAME:
    case SHM_MSG_FRAME_INLINE:
      if (self->state != CONN_READY)
        expected = "frames only when ready";
      else
        handle_frame (self, body, type == SHM_MSG_FRAME_INLINE, payload,
            payload_len);
      break;
    case SHM_MSG_EOS:{
      Item *item = g_new0 (Item, 1);
      item->type = ITEM_EOS;
      self->got_eos = TRUE;
      push_item (self, item);
      break;
    }
    case SHM_MSG_PING:
      break;
    case SHM_MSG_BYE:{
      g_autofree gchar *peer = g_strdup (shm_conn_get_description (conn));
      guint64 session = self->session ? self->session->geo.session_id : 0;
      gst_shm_post_peer_message (GST_ELEMENT (self), "left", peer, session,
          shm_msg_get_text (body, "message"));
      disconnect (self);
      if (!self->got_eos)
        schedule_connect (self, RETRY_MS);
      break;
    }
    case SHM_MSG_ERROR:{
      const gchar *code = shm_msg_get_text (body, "code");
      const gchar *msg = shm_msg_get_text (body, "message");
      if (!msg)
        msg = "(no message)";
      if (g_strcmp0 (code, "timeout") == 0 || g_strcmp0 (code, "busy") == 0) {
        GST_ELEMENT_WARNING (self, RESOURCE, READ, ("The sender dropped this "
                "receiver: %s", msg), (NULL));
        disconnect (self);
        schedule_connect (self, RETRY_MS);
      } else {
        CONTROL_ERROR (self, RESOURCE, READ, ("%s", msg),
            ("reported by the sender (%s)", code ? code : "no code"));
        disconnect (self);
      }
      break;
    }
    default:
      if (type < SHM_MSG_LAST)
        expected = "only sender messages";
      else
        GST_DEBUG_OBJECT (self, "ignoring unknown message %u", type);
      break;
  }

  if (expected) {
    g_autofree gchar *msg = g_strdup_printf ("The sender sent an unexpected "
        "%s message (expected %s)", shm_msg_type_name (type), expected);
    CONTROL_ERROR (self, RESOURCE, READ, ("%s", msg), (NULL));
    fail (self, "protocol", msg);
  }
}

static void
on_closed (ShmConn * conn, const GError * error, gpointer user_data)
{
  GstShmSrc *self = user_data;
  g_autofree gchar *peer = g_strdup (shm_conn_get_description (conn));
  ConnState state = self->state;
  guint64 session = self->session ? self->session->geo.session_id : 0;

  if (conn != self->conn)
    return;
  disconnect (self);

  if (error && (g_error_matches (error, SHM_PROTO_ERROR,
              SHM_PROTO_ERROR_MALFORMED) || error->domain == SHM_RING_ERROR)) {
    CONTROL_ERROR (self, RESOURCE, READ, ("%s", error->message), (NULL));
    return;
  }
  if (self->got_eos)
    return;
  if (state == CONN_READY) {
    gst_shm_post_peer_message (GST_ELEMENT (self), "lost", peer, session,
        error ? error->message : "closed without saying bye");
  } else {
    GST_ELEMENT_WARNING (self, RESOURCE, READ, ("The sender closed the "
            "connection during the handshake; waiting for a sender."),
        ("%s", error ? error->message : "end of stream"));
  }
  schedule_connect (self, RETRY_MS);
}

static const ShmConnCallbacks callbacks = {
  on_message,
  on_closed,
};

static void
send_hello (GstShmSrc * self)
{
  GstCaps *accept = gst_pad_peer_query_caps (GST_BASE_SRC_PAD (self), NULL);
  GVariantDict d;

  g_mutex_lock (&self->lock);
  gst_caps_replace (&self->accept, accept);
  g_mutex_unlock (&self->lock);
  g_variant_dict_init (&d, NULL);
  g_variant_dict_insert (&d, "version", "u", SHM_PROTO_VERSION);
  g_variant_dict_insert (&d, "path", "s", self->area_path);
  /* a live receiver may miss frames when it lags; a non-live one wants
   * every frame */
  g_variant_dict_insert (&d, "live", "b",
      gst_base_src_is_live (GST_BASE_SRC (self)));
  gst_shm_negotiator_write (&d, accept);
  g_variant_dict_insert (&d, "boot-id", "s", gst_shm_boot_id ());
  shm_conn_send (self->conn, SHM_MSG_HELLO, g_variant_dict_end (&d), NULL);
  gst_caps_unref (accept);
}

/* Control thread: tells the sender what downstream accepts now. */
static gboolean
send_accept (gpointer data)
{
  GstShmSrc *self = data;
  GstCaps *accept;
  GVariantDict d;

  if (!self->conn || self->state == CONN_NONE)
    return G_SOURCE_REMOVE;
  g_mutex_lock (&self->lock);
  accept = self->accept ? gst_caps_ref (self->accept) : gst_caps_new_any ();
  g_mutex_unlock (&self->lock);
  g_variant_dict_init (&d, NULL);
  gst_shm_negotiator_write (&d, accept);
  shm_conn_send (self->conn, SHM_MSG_ACCEPT, g_variant_dict_end (&d), NULL);
  GST_INFO_OBJECT (self, "downstream now accepts %" GST_PTR_FORMAT, accept);
  gst_caps_unref (accept);
  return G_SOURCE_REMOVE;
}

/* Nothing to talk to yet: tries again after @delay_ms, unless
 * #GstShmSrc:timeout is over. */
static void
keep_waiting (GstShmSrc * self, const gchar * why, guint delay_ms)
{
  gint64 now = g_get_monotonic_time ();
  GstClockTime timeout;

  GST_OBJECT_LOCK (self);
  timeout = self->timeout;
  GST_OBJECT_UNLOCK (self);
  if (!self->said_waiting) {
    self->said_waiting = TRUE;
    GST_INFO_OBJECT (self, "waiting for a sender at %s (%s)",
        self->control_str, why);
  }
  if (timeout > 0 && (now - self->waiting_since) * 1000 >= (gint64) timeout) {
    CONTROL_ERROR (self, RESOURCE, OPEN_READ, ("No sender at %s after "
            "%.1f s: start a shmsink with path=%s, or raise timeout.",
            self->control_str, timeout / (gdouble) GST_SECOND,
            self->area_path), ("%s", why));
    return;
  }
  schedule_connect (self, delay_ms);
}

/* A connection to a sender: the handshake starts with our hello. */
static void
connected (GstShmSrc * self, ShmConn * conn)
{
  self->conn = conn;
  shm_conn_set_max_payload (self->conn, 0);
  shm_conn_start (self->conn, self->context, &callbacks, self);
  self->state = CONN_AWAIT_MMAP;
  self->said_waiting = FALSE;
  self->said_no_rings = FALSE;
  self->waiting_since = 0;
  self->last_message = g_get_monotonic_time ();
  self->stalled = FALSE;
  send_hello (self);
  GST_INFO_OBJECT (self, "connected to %s", shm_conn_get_description (conn));
}

/* control=ring: claims a lane of the area's rings, then waits for the
 * sender to acknowledge it. */
static void
try_connect_ring (GstShmSrc * self)
{
  g_autoptr (GError) err = NULL;
  ShmArea *area;
  ShmGeometry geo;
  GstClockTime peer_timeout;
  gboolean allow_symlink;
  guint64 id = 0;
  guint lane;

  GST_OBJECT_LOCK (self);
  peer_timeout = self->peer_timeout;
  allow_symlink = self->allow_symlink;
  GST_OBJECT_UNLOCK (self);

  if (self->ring_area) {
    if (shm_ring_acked (self->ring_area, &self->ring_geo, self->ring_lane,
            self->ring_id)) {
      g_autofree gchar *desc = g_strdup_printf ("in-band lane %u of %s",
          self->ring_lane, self->area_path);
      ShmConn *conn = shm_conn_new_ring (self->ring_area, &self->ring_geo,
          self->ring_lane, self->ring_id, FALSE, desc);
      /* the connection gives the lane back when it closes */
      g_clear_pointer (&self->ring_area, shm_area_unref);
      connected (self, conn);
      return;
    }
    if (shm_ring_claimed (self->ring_area, &self->ring_geo, self->ring_lane,
            self->ring_id)
        && (g_get_monotonic_time () - self->ring_claimed_at) * 1000
        < (gint64) peer_timeout) {
      schedule_connect (self, RING_ACK_POLL_MS);
      return;
    }
    /* The sender set the area up again (our claim is gone), or it does not
     * serve the rings: claim again later. */
    ring_abandon (self);
    keep_waiting (self, "the sender did not take this receiver's in-band "
        "lane", RETRY_MS);
    return;
  }

  area = shm_area_open (self->area_path,
      allow_symlink ? SHM_OPEN_ALLOW_SYMLINK : 0, &err);
  if (!area) {
    /* (an empty file: its sender is creating it) */
    if (g_error_matches (err, SHM_AREA_ERROR, SHM_AREA_ERROR_NOT_FOUND)
        || g_error_matches (err, SHM_AREA_ERROR, SHM_AREA_ERROR_EMPTY))
      keep_waiting (self, err->message, RETRY_MS);
    else
      post_area_error (self, err);
    return;
  }
  if (!shm_area_read_header (area, &geo, &err)) {
    if (g_error_matches (err, SHM_AREA_ERROR, SHM_AREA_ERROR_BAD_MAGIC))
      keep_waiting (self, "no sender has set up the area yet", RETRY_MS);
    else
      CONTROL_ERROR (self, RESOURCE, READ, ("%s", err->message), (NULL));
    shm_area_unref (area);
    return;
  }
  if (geo.ring_size < SHM_RING_REGION_SIZE) {
    if (!self->said_no_rings) {
      self->said_no_rings = TRUE;
      GST_ELEMENT_WARNING (self, RESOURCE, READ, ("The area \"%s\" has no "
              "in-band control rings: its sender does not use control=ring "
              "(both sides need the same control); waiting.",
              self->area_path), (NULL));
    }
    shm_area_unref (area);
    keep_waiting (self, "the area has no in-band rings", RETRY_MS);
    return;
  }
  while (id == 0)
    if (!shm_random_bytes (&id, sizeof id, &err)) {
      CONTROL_ERROR (self, RESOURCE, FAILED, ("%s", err->message), (NULL));
      shm_area_unref (area);
      return;
    }
  if (!shm_ring_claim (area, &geo, id, &lane, &err)) {
    shm_area_unref (area);
    keep_waiting (self, err->message, RETRY_MS);
    return;
  }
  self->ring_area = area;
  self->ring_geo = geo;
  self->ring_lane = lane;
  self->ring_id = id;
  self->ring_claimed_at = g_get_monotonic_time ();
  GST_DEBUG_OBJECT (self, "claimed in-band lane %u", lane);
  schedule_connect (self, RING_ACK_POLL_MS);
}

static gboolean
try_connect (gpointer user_data)
{
  GstShmSrc *self = user_data;
  g_autoptr (GError) err = NULL;
  GSocket *sock;
  gchar *peer;

  g_clear_pointer (&self->retry_source, g_source_unref);
  if (self->addr.kind == SHM_ADDRESS_RING) {
    try_connect_ring (self);
    return G_SOURCE_REMOVE;
  }
  sock = shm_address_connect (&self->addr, &err);
  if (!sock) {
    if (!g_error_matches (err, G_IO_ERROR, G_IO_ERROR_NOT_FOUND)
        && !g_error_matches (err, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED)
        && !g_error_matches (err, G_IO_ERROR, G_IO_ERROR_TIMED_OUT)
        && !g_error_matches (err, G_IO_ERROR, G_IO_ERROR_HOST_UNREACHABLE)
        && !g_error_matches (err, G_IO_ERROR, G_IO_ERROR_NETWORK_UNREACHABLE)) {
      CONTROL_ERROR (self, RESOURCE, OPEN_READ, ("Could not connect to "
              "the sender at %s: %s", self->control_str, err->message), (NULL));
      return G_SOURCE_REMOVE;
    }
    keep_waiting (self, err->message, RETRY_MS);
    return G_SOURCE_REMOVE;
  }

  peer = shm_socket_describe (sock, TRUE);
  if (g_str_equal (peer, "a unix socket peer") || g_str_has_prefix (peer,
          "process ")) {
    g_free (peer);
    peer = g_strdup (self->control_str);
  }
  connected (self, shm_conn_new_socket (sock, peer));
  g_free (peer);
  return G_SOURCE_REMOVE;
}

static void
schedule_connect (GstShmSrc * self, guint delay_ms)
{
  if (self->retry_source)
    return;
  if (self->waiting_since == 0)
    self->waiting_since = g_get_monotonic_time ();
  self->retry_source = g_timeout_source_new (delay_ms);
  g_source_set_callback (self->retry_source, try_connect, self, NULL);
  g_source_attach (self->retry_source, self->context);
}

static gboolean
on_tick (gpointer user_data)
{
  GstShmSrc *self = user_data;
  gint64 now = g_get_monotonic_time ();
  GstClockTime peer_timeout;

  if (self->state == CONN_NONE)
    return G_SOURCE_CONTINUE;

  GST_OBJECT_LOCK (self);
  peer_timeout = self->peer_timeout;
  GST_OBJECT_UNLOCK (self);

  shm_conn_send (self->conn, SHM_MSG_PING, NULL, NULL);
  g_mutex_lock (&self->lock);
  if (self->paused_conn) {
    /* not reading: silence is ours */
    self->last_message = now;
  }
  g_mutex_unlock (&self->lock);
  if (self->state == CONN_READY && !self->stalled
      && (now - self->last_message) * 1000 > (gint64) peer_timeout) {
    g_autofree gchar *reason = g_strdup_printf ("no message for %"
        G_GINT64_FORMAT " ms", (now - self->last_message) / 1000);
    self->stalled = TRUE;
    gst_shm_post_peer_message (GST_ELEMENT (self), "stalled",
        shm_conn_get_description (self->conn),
        self->session->geo.session_id, reason);
  }
  return G_SOURCE_CONTINUE;
}

static gpointer
control_thread (gpointer data)
{
  GstShmSrc *self = data;

  g_main_context_push_thread_default (self->context);
  g_main_loop_run (self->loop);
  g_main_context_pop_thread_default (self->context);
  return NULL;
}

/* --- GstBaseSrc ---------------------------------------------------------- */

static gboolean
gst_shm_src_start (GstBaseSrc * bsrc)
{
  GstShmSrc *self = GST_SHM_SRC (bsrc);
  g_autoptr (GError) err = NULL;
  g_autofree gchar *prop = NULL, *path = NULL, *control = NULL;
  g_autofree gchar *dir = NULL;
  ShmBarKind bar;

  GST_OBJECT_LOCK (self);
  prop = g_strdup (self->path);
  control = g_strdup (self->control);
  GST_OBJECT_UNLOCK (self);

  if (prop == NULL || *prop == '\0') {
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND,
        ("No path set: set the \"path\" property to the shared memory file "
            "the sender uses, e.g. path=/dev/shm/NAME."), (NULL));
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
  if (!shm_address_parse (control, &self->addr, &err)) {
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS, ("%s", err->message), (NULL));
    return FALSE;
  }
  if (self->addr.kind == SHM_ADDRESS_UNIX) {
    g_autofree gchar *sdir = g_path_get_dirname (self->addr.path);
    if (!g_file_test (sdir, G_FILE_TEST_IS_DIR)) {
      shm_address_clear (&self->addr);
      GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND,
          ("Directory \"%s\" of the control socket does not exist.", sdir),
          (NULL));
      return FALSE;
    }
  }

  self->area_path = g_steal_pointer (&path);
  self->control_str = g_steal_pointer (&control);
  self->bar = bar;
  self->said_no_rings = FALSE;
  self->state = CONN_NONE;
  self->got_eos = FALSE;
  self->said_waiting = FALSE;
  self->waiting_since = g_get_monotonic_time ();

  g_mutex_lock (&self->lock);
  self->flushing = FALSE;
  self->fatal = FALSE;
  self->frames_received = self->frames_pushed = self->frames_zero_copy = 0;
  self->frames_copied = self->bytes_copied = self->frames_dropped = 0;
  self->frames_inline = self->sessions = 0;
  g_mutex_unlock (&self->lock);
  self->need_segment = TRUE;

  self->context = g_main_context_new ();
  self->loop = g_main_loop_new (self->context, FALSE);
  self->tick_source = g_timeout_source_new (TICK_MS);
  g_source_set_callback (self->tick_source, on_tick, self, NULL);
  g_source_attach (self->tick_source, self->context);
  schedule_connect (self, 0);
  self->thread = g_thread_new ("shmsrc-control", control_thread, self);
  return TRUE;
}

static gboolean
gst_shm_src_stop (GstBaseSrc * bsrc)
{
  GstShmSrc *self = GST_SHM_SRC (bsrc);

  if (self->thread) {
    gst_shm_quit_and_join (self->context, self->loop, self->thread);
    self->thread = NULL;
  }
  if (self->conn) {
    GVariantDict d;
    g_variant_dict_init (&d, NULL);
    g_variant_dict_insert (&d, "message", "s", "shmsrc stopped");
    shm_conn_send (self->conn, SHM_MSG_BYE, g_variant_dict_end (&d), NULL);
  }

  g_mutex_lock (&self->lock);
  flush_items_locked (self, FALSE);
  g_mutex_unlock (&self->lock);
  disconnect (self);

  if (self->retry_source) {
    g_source_destroy (self->retry_source);
    g_clear_pointer (&self->retry_source, g_source_unref);
  }
  if (self->tick_source) {
    g_source_destroy (self->tick_source);
    g_clear_pointer (&self->tick_source, g_source_unref);
  }
  g_clear_pointer (&self->loop, g_main_loop_unref);
  g_clear_pointer (&self->context, g_main_context_unref);
  shm_address_clear (&self->addr);
  g_clear_pointer (&self->area_path, g_free);
  g_clear_pointer (&self->control_str, g_free);
  gst_clear_caps (&self->wire_caps);
  gst_clear_caps (&self->caps);
  g_mutex_lock (&self->lock);
  gst_clear_caps (&self->accept);
  self->pending_frames = 0;
  g_clear_pointer (&self->paused_conn, shm_conn_unref);
  g_mutex_unlock (&self->lock);
  self->stale_caps = FALSE;
  self->discont = FALSE;
  if (self->copy_pool) {
    gst_buffer_pool_set_active (self->copy_pool, FALSE);
    gst_clear_object (&self->copy_pool);
  }
  return TRUE;
}

static GstCaps *
gst_shm_src_get_caps (GstBaseSrc * bsrc, GstCaps * filter)
{
  GstShmSrc *self = GST_SHM_SRC (bsrc);
  GstCaps *caps;

  GST_OBJECT_LOCK (self);
  caps = self->caps ? gst_caps_ref (self->caps) : NULL;
  GST_OBJECT_UNLOCK (self);
  if (!caps)
    caps = gst_pad_get_pad_template_caps (GST_BASE_SRC_PAD (bsrc));
  if (filter) {
    GstCaps *tmp = gst_caps_intersect_full (filter, caps,
        GST_CAPS_INTERSECT_FIRST);
    gst_caps_unref (caps);
    caps = tmp;
  }
  return caps;
}

/* Asks downstream whether it reads GstVideoMeta; a copy pool in the
 * default layout serves those that do not. */
static void
check_allocation (GstShmSrc * self, GstCaps * caps)
{
  GstQuery *query = gst_query_new_allocation (caps, TRUE);
  GstStructure *config;

  self->downstream_meta = FALSE;
  if (gst_pad_peer_query (GST_BASE_SRC_PAD (self), query))
    self->downstream_meta = gst_query_find_allocation_meta (query,
        GST_VIDEO_META_API_TYPE, NULL);
  gst_query_unref (query);

  if (self->copy_pool) {
    gst_buffer_pool_set_active (self->copy_pool, FALSE);
    gst_clear_object (&self->copy_pool);
  }
  if (self->is_video) {
    self->copy_pool = gst_video_buffer_pool_new ();
    config = gst_buffer_pool_get_config (self->copy_pool);
    gst_buffer_pool_config_set_params (config, caps,
        GST_VIDEO_INFO_SIZE (&self->vinfo), 0, 0);
    if (!gst_buffer_pool_set_config (self->copy_pool, config)
        || !gst_buffer_pool_set_active (self->copy_pool, TRUE))
      gst_clear_object (&self->copy_pool);
  }
  GST_DEBUG_OBJECT (self, "downstream %s video meta",
      self->downstream_meta ? "reads" : "does not read");
}

/* Caps come from the sender.  On reconfigure: when downstream accepts
 * other caps now, the sender is told (it renegotiates upstream); frames in
 * caps that downstream no longer accepts are dropped until the new caps
 * arrive; the allocation (video meta support) is asked again. */
static gboolean
gst_shm_src_negotiate (GstBaseSrc * bsrc)
{
  GstShmSrc *self = GST_SHM_SRC (bsrc);
  GstPad *pad = GST_BASE_SRC_PAD (bsrc);
  GstCaps *accept = gst_pad_peer_query_caps (pad, NULL);
  gboolean changed;

  g_mutex_lock (&self->lock);
  changed = self->accept && !gst_caps_is_equal (self->accept, accept);
  if (changed)
    gst_caps_replace (&self->accept, accept);
  g_mutex_unlock (&self->lock);
  gst_caps_unref (accept);
  if (changed && self->context)
    g_main_context_invoke (self->context, send_accept, self);

  if (self->caps) {
    self->stale_caps = !gst_pad_peer_query_accept_caps (pad, self->caps);
    if (self->stale_caps)
      GST_INFO_OBJECT (self, "downstream no longer accepts %" GST_PTR_FORMAT
          ": dropping frames until the sender's new caps", self->caps);
    else
      check_allocation (self, self->caps);
  }
  return TRUE;
}

static gboolean
set_caps (GstShmSrc * self, GstCaps * caps)
{
  if (self->caps && gst_caps_is_equal (self->caps, caps))
    return TRUE;
  GST_DEBUG_OBJECT (self, "caps from the sender: %" GST_PTR_FORMAT, caps);
  GST_OBJECT_LOCK (self);
  gst_caps_replace (&self->caps, caps);
  GST_OBJECT_UNLOCK (self);
  self->is_video = gst_shm_raw_video_info (&self->vinfo, caps);
  if (!gst_base_src_set_caps (GST_BASE_SRC (self), caps)) {
    GST_ELEMENT_ERROR (self, CORE, NEGOTIATION, ("Downstream does not accept "
            "the sender's caps %" GST_PTR_FORMAT ".", caps), (NULL));
    return FALSE;
  }
  self->stale_caps = FALSE;
  check_allocation (self, caps);
  return TRUE;
}

static gboolean
layout_is_default (GstShmSrc * self, Item * item)
{
  for (guint i = 0; i < item->n_planes; i++)
    if (item->plane_offsets[i] != GST_VIDEO_INFO_PLANE_OFFSET (&self->vinfo, i)
        || item->plane_strides[i] != GST_VIDEO_INFO_PLANE_STRIDE (&self->vinfo,
            i))
      return FALSE;
  return TRUE;
}

typedef struct
{
  Session *session;
  guint32 slot;
} SlotRef;

static void
slot_ref_release (gpointer data)
{
  SlotRef *ref = data;

  g_atomic_int_add (&ref->session->held, -1);
  session_release (ref->session, ref->slot);
  session_unref (ref->session);
  g_free (ref);
}

/* A read-only buffer over a frame in the sender's layout; @notify runs
 * with @user_data when the buffer is freed. */
static GstBuffer *
wrap_frame (GstShmSrc * self, Item * item, guint8 * data, gpointer user_data,
    GDestroyNotify notify)
{
  GstBuffer *buf = gst_buffer_new ();

  gst_buffer_append_memory (buf,
      gst_memory_new_wrapped (GST_MEMORY_FLAG_READONLY, data, item->size, 0,
          item->size, user_data, notify));
  if (self->is_video)
    gst_buffer_add_video_meta_full (buf, GST_VIDEO_FRAME_FLAG_NONE,
        GST_VIDEO_INFO_FORMAT (&self->vinfo),
        GST_VIDEO_INFO_WIDTH (&self->vinfo),
        GST_VIDEO_INFO_HEIGHT (&self->vinfo), item->n_planes,
        item->plane_offsets, item->plane_strides);
  return buf;
}

/* The slot itself: it goes back to the sender when the buffer is freed. */
static GstBuffer *
wrap_slot (GstShmSrc * self, Item * item, guint8 * data)
{
  SlotRef *ref = g_new (SlotRef, 1);

  ref->session = session_ref (item->session);
  ref->slot = item->slot;
  g_atomic_int_inc (&item->session->held);
  return wrap_frame (self, item, data, ref, slot_ref_release);
}

/* Copies the frame in @in (the sender's layout; consumed) into memory of
 * our own: in the default layout when @default_layout and the frame is raw
 * video, else byte for byte with the sender's GstVideoMeta.  @wc: @in lies
 * in a write-combined or uncached BAR, read with streaming loads. */
static GstBuffer *
copy_frame (GstShmSrc * self, Item * item, GstBuffer * in, gboolean wc,
    gboolean default_layout)
{
  GstBuffer *out = NULL;

  if (default_layout && self->is_video && self->copy_pool) {
    GstVideoFrame src, dst;
    gboolean ok = FALSE;

    /* one pass of streaming loads first: the frame copy reads rows */
    if (wc)
      in = copy_frame (self, item, in, TRUE, FALSE);
    if (gst_buffer_pool_acquire_buffer (self->copy_pool, &out,
            NULL) == GST_FLOW_OK
        && gst_video_frame_map (&src, &self->vinfo, in, GST_MAP_READ)) {
      if (gst_video_frame_map (&dst, &self->vinfo, out, GST_MAP_WRITE)) {
        ok = gst_video_frame_copy (&dst, &src);
        gst_video_frame_unmap (&dst);
      }
      gst_video_frame_unmap (&src);
    }
    gst_buffer_unref (in);
    if (!ok)
      gst_clear_buffer (&out);
    return out;
  }

  {
    GstMapInfo src, dst;

    out = gst_buffer_new_allocate (NULL, item->size, NULL);
    if (!out || !gst_buffer_map (in, &src, GST_MAP_READ)) {
      gst_buffer_unref (in);
      gst_clear_buffer (&out);
      return NULL;
    }
    if (gst_buffer_map (out, &dst, GST_MAP_WRITE)) {
      if (wc)
        shm_copy_from_wc (dst.data, src.data, item->size);
      else
        memcpy (dst.data, src.data, item->size);
      gst_buffer_unmap (out, &dst);
    } else {
      gst_clear_buffer (&out);
    }
    gst_buffer_unmap (in, &src);
    gst_buffer_unref (in);
    if (out && self->is_video)
      gst_buffer_add_video_meta_full (out, GST_VIDEO_FRAME_FLAG_NONE,
          GST_VIDEO_INFO_FORMAT (&self->vinfo),
          GST_VIDEO_INFO_WIDTH (&self->vinfo),
          GST_VIDEO_INFO_HEIGHT (&self->vinfo), item->n_planes,
          item->plane_offsets, item->plane_strides);
    return out;
  }
}

/* The sender's due time on CLOCK_MONOTONIC, as running time here.  Frames
 * due before this pipeline started playing (the backlog of a sender that
 * waited for this receiver) get running times from 0 up, one nanosecond
 * apart; the frames after them keep their exact times. */
static GstClockTime
from_monotonic (Session * s, guint64 mono, GstClockTime base_time,
    GstClockTimeDiff diff, gboolean increasing, GstClockTime * last)
{
  gint64 t;
  GstClockTime rt;
  gboolean early;

  if (mono == G_MAXUINT64 || !GST_CLOCK_TIME_IS_VALID (base_time))
    return GST_CLOCK_TIME_NONE;
  t = (gint64) mono + s->mono_offset - diff;
  early = t <= (gint64) base_time;
  rt = early ? 0 : (GstClockTime) (t - base_time);
  /* DTS never go back.  PTS may (reordered frames of an encoded stream),
   * except those of frames from before our base time, which would all be
   * 0 otherwise. */
  if ((increasing || early) && GST_CLOCK_TIME_IS_VALID (*last) && rt <= *last)
    rt = *last + 1;
  if (!GST_CLOCK_TIME_IS_VALID (*last) || rt > *last)
    *last = rt;
  return rt;
}

static void
set_timestamps (GstShmSrc * self, GstBuffer * buf, Item * item)
{
  Session *s = item->session;

  if (gst_base_src_is_live (GST_BASE_SRC (self))) {
    GstClockTime base_time = GST_CLOCK_TIME_NONE;
    GstClockTimeDiff diff = 0;
    GstClock *clock = gst_element_get_clock (GST_ELEMENT (self));

    if (clock) {
      base_time = gst_element_get_base_time (GST_ELEMENT (self));
      diff = gst_shm_clock_diff (GST_ELEMENT (self),
          gst_shm_clock_is_monotonic (clock));
      gst_object_unref (clock);
    }
    if (!s->same_boot && !s->have_mono_offset) {
      /* Another kernel's CLOCK_MONOTONIC: align on this first frame. */
      s->mono_offset = g_get_monotonic_time () * 1000 - (gint64)
          item->send_time;
      s->have_mono_offset = TRUE;
    }
    GST_BUFFER_PTS (buf) = from_monotonic (s, item->mono_pts, base_time,
        diff, FALSE, &s->last_pts);
    GST_BUFFER_DTS (buf) = from_monotonic (s, item->mono_dts, base_time,
        diff, TRUE, &s->last_dts);
  } else {
    GST_BUFFER_PTS (buf) = item->pts;
    GST_BUFFER_DTS (buf) = item->dts;
    if (self->need_segment && GST_CLOCK_TIME_IS_VALID (item->pts)) {
      GstSegment seg;
      gst_segment_init (&seg, GST_FORMAT_TIME);
      seg.start = seg.time = seg.position = item->pts;
      gst_base_src_new_segment (GST_BASE_SRC (self), &seg);
    }
  }
  self->need_segment = FALSE;
  GST_BUFFER_DURATION (buf) = item->duration;
  GST_BUFFER_OFFSET (buf) = item->buffer_offset;
  GST_BUFFER_OFFSET_END (buf) = item->buffer_offset_end;
  GST_BUFFER_FLAGS (buf) |= item->flags & GST_SHM_BUFFER_FLAGS_MASK;
}

static GstFlowReturn
gst_shm_src_create (GstPushSrc * psrc, GstBuffer ** outbuf)
{
  GstShmSrc *self = GST_SHM_SRC (psrc);
  Item *item;

  for (;;) {
    g_mutex_lock (&self->lock);
    while (g_queue_is_empty (&self->items) && !self->flushing && !self->fatal)
      g_cond_wait (&self->cond, &self->lock);
    if (self->flushing) {
      g_mutex_unlock (&self->lock);
      return GST_FLOW_FLUSHING;
    }
    if (self->fatal) {
      g_mutex_unlock (&self->lock);
      return GST_FLOW_ERROR;
    }
    item = g_queue_pop_head (&self->items);
    if (item->type == ITEM_FRAME)
      self->pending_frames--;
    resume_reading_locked (self);
    g_mutex_unlock (&self->lock);

    switch (item->type) {
      case ITEM_CAPS:{
        gboolean ok = set_caps (self, item->caps);
        item_free (item);
        if (!ok)
          return GST_FLOW_NOT_NEGOTIATED;
        continue;
      }
      case ITEM_EOS:
        item_free (item);
        GST_INFO_OBJECT (self, "EOS from the sender");
        return GST_FLOW_EOS;
      case ITEM_FRAME:
        break;
    }

    if (self->stale_caps) {
      /* downstream refuses these caps; the sender's new ones will come */
      g_mutex_lock (&self->lock);
      self->frames_dropped++;
      g_mutex_unlock (&self->lock);
      self->discont = TRUE;
      item_discard (item);
      continue;
    }

    {
      Session *s = item->session;
      GstShmSrcReadMode read_mode;
      gboolean wc, convert, copy;
      guint64 slot_offset;
      guint8 *data;
      GstBuffer *buf;

      GST_OBJECT_LOCK (self);
      read_mode = self->read_mode;
      GST_OBJECT_UNLOCK (self);
      convert = !self->downstream_meta && !layout_is_default (self, item);

      if (item->payload) {
        /* an inline frame: its bytes are ours already */
        data = (guint8 *) g_bytes_get_data (item->payload, NULL);
        buf = wrap_frame (self, item, data, g_bytes_ref (item->payload),
            (GDestroyNotify) g_bytes_unref);
        copy = FALSE;
        if (convert)
          buf = copy_frame (self, item, buf, FALSE, TRUE);
      } else {
        shm_geometry_slot_range (&s->geo, item->slot, &slot_offset);
        data = shm_area_get_data (s->area) + slot_offset + item->offset;
        wc = s->bar != SHM_BAR_NONE;
        /* Non-raw data is parsed downstream: never hand out memory the
         * sender can still change.  Keep one slot for the sender.  Read
         * a BAR once, with streaming loads. */
        copy = !self->is_video || convert
            || read_mode == GST_SHM_SRC_READ_COPY
            || (wc && read_mode == GST_SHM_SRC_READ_AUTO)
            || g_atomic_int_get (&s->held) >= (gint) s->geo.n_slots - 1;
        buf = wrap_slot (self, item, data);
        if (copy)
          buf = copy_frame (self, item, buf, wc, convert);
      }
      if (!buf) {
        item_free (item);
        GST_ELEMENT_ERROR (self, RESOURCE, READ, ("Could not copy a frame "
                "out of the shared area."), (NULL));
        return GST_FLOW_ERROR;
      }
      set_timestamps (self, buf, item);
      /* a frame this receiver missed (dropped here, or skipped by the
       * sender because this receiver lagged) */
      if (self->discont || (s->next_seq && item->seq != s->next_seq)) {
        GST_BUFFER_FLAG_SET (buf, GST_BUFFER_FLAG_DISCONT);
        self->discont = FALSE;
      }
      s->next_seq = item->seq + 1;

      g_mutex_lock (&self->lock);
      self->frames_pushed++;
      if (copy) {
        self->frames_copied++;
        self->bytes_copied += item->size;
      } else if (!item->payload) {
        self->frames_zero_copy++;
      }
      g_mutex_unlock (&self->lock);
      item_free (item);
      *outbuf = buf;
      return GST_FLOW_OK;
    }
  }
}

static gboolean
gst_shm_src_unlock (GstBaseSrc * bsrc)
{
  GstShmSrc *self = GST_SHM_SRC (bsrc);

  g_mutex_lock (&self->lock);
  self->flushing = TRUE;
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->lock);
  return TRUE;
}

static gboolean
gst_shm_src_unlock_stop (GstBaseSrc * bsrc)
{
  GstShmSrc *self = GST_SHM_SRC (bsrc);

  g_mutex_lock (&self->lock);
  self->flushing = FALSE;
  /* A live source drops what came while it was not running. */
  if (gst_base_src_is_live (bsrc))
    flush_items_locked (self, TRUE);
  g_mutex_unlock (&self->lock);
  return TRUE;
}

static gboolean
gst_shm_src_query (GstBaseSrc * bsrc, GstQuery * query)
{
  GstShmSrc *self = GST_SHM_SRC (bsrc);

  if (GST_QUERY_TYPE (query) == GST_QUERY_LATENCY) {
    GstClockTime min = 0, max;
    guint n_slots;

    if (!gst_base_src_is_live (bsrc)) {
      gst_query_set_latency (query, FALSE, 0, GST_CLOCK_TIME_NONE);
      return TRUE;
    }
    /* Frames arrive at the instant the sender's sink renders them; one
     * frame of latency lets them be displayed on time. */
    if (self->caps && self->is_video && GST_VIDEO_INFO_FPS_N (&self->vinfo) > 0)
      min = gst_util_uint64_scale_int (GST_SECOND,
          GST_VIDEO_INFO_FPS_D (&self->vinfo),
          GST_VIDEO_INFO_FPS_N (&self->vinfo));
    /* Frames wait in at most all slots of the area. */
    g_mutex_lock (&self->lock);
    n_slots = self->n_slots;
    g_mutex_unlock (&self->lock);
    max = min * MAX (n_slots, 1);
    GST_DEBUG_OBJECT (self, "latency min %" GST_TIME_FORMAT " max %"
        GST_TIME_FORMAT, GST_TIME_ARGS (min), GST_TIME_ARGS (max));
    gst_query_set_latency (query, TRUE, min, max);
    return TRUE;
  }
  return GST_BASE_SRC_CLASS (parent_class)->query (bsrc, query);
}

static GstStateChangeReturn
gst_shm_src_change_state (GstElement * element, GstStateChange transition)
{
  GstShmSrc *self = GST_SHM_SRC (element);

  if (transition == GST_STATE_CHANGE_PAUSED_TO_PLAYING) {
    g_mutex_lock (&self->lock);
    self->playing = TRUE;
    g_mutex_unlock (&self->lock);
  }
  if (transition == GST_STATE_CHANGE_PLAYING_TO_PAUSED) {
    g_mutex_lock (&self->lock);
    self->playing = FALSE;
    g_mutex_unlock (&self->lock);
  }
  return GST_ELEMENT_CLASS (parent_class)->change_state (element, transition);
}

/* --- GObject ------------------------------------------------------------- */

static GstStructure *
get_stats (GstShmSrc * self)
{
  GstStructure *s;

  g_mutex_lock (&self->lock);
  s = gst_structure_new ("GstShmSrcStats",
      "frames-received", G_TYPE_UINT64, self->frames_received,
      "frames-pushed", G_TYPE_UINT64, self->frames_pushed,
      "frames-zero-copy", G_TYPE_UINT64, self->frames_zero_copy,
      "frames-copied", G_TYPE_UINT64, self->frames_copied,
      "bytes-copied", G_TYPE_UINT64, self->bytes_copied,
      "frames-dropped", G_TYPE_UINT64, self->frames_dropped,
      "frames-inline", G_TYPE_UINT64, self->frames_inline,
      "sessions", G_TYPE_UINT64, self->sessions,
      "last-latency", G_TYPE_INT64, self->last_latency_ns, NULL);
  g_mutex_unlock (&self->lock);
  return s;
}

static void
gst_shm_src_set_property (GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec)
{
  GstShmSrc *self = GST_SHM_SRC (object);

  if (prop_id == PROP_IS_LIVE) {
    gst_base_src_set_live (GST_BASE_SRC (self), g_value_get_boolean (value));
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
    case PROP_TIMEOUT:
      self->timeout = g_value_get_uint64 (value);
      break;
    case PROP_PEER_TIMEOUT:
      self->peer_timeout = g_value_get_uint64 (value);
      break;
    case PROP_ALLOW_SYMLINK:
      self->allow_symlink = g_value_get_boolean (value);
      break;
    case PROP_READ_MODE:
      self->read_mode = g_value_get_enum (value);
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
gst_shm_src_get_property (GObject * object, guint prop_id, GValue * value,
    GParamSpec * pspec)
{
  GstShmSrc *self = GST_SHM_SRC (object);

  switch (prop_id) {
    case PROP_STATS:
      g_value_take_boxed (value, get_stats (self));
      return;
    case PROP_IS_LIVE:
      g_value_set_boolean (value, gst_base_src_is_live (GST_BASE_SRC (self)));
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
    case PROP_TIMEOUT:
      g_value_set_uint64 (value, self->timeout);
      break;
    case PROP_PEER_TIMEOUT:
      g_value_set_uint64 (value, self->peer_timeout);
      break;
    case PROP_ALLOW_SYMLINK:
      g_value_set_boolean (value, self->allow_symlink);
      break;
    case PROP_READ_MODE:
      g_value_set_enum (value, self->read_mode);
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
gst_shm_src_finalize (GObject * object)
{
  GstShmSrc *self = GST_SHM_SRC (object);

  g_free (self->path);
  g_free (self->control);
  g_mutex_clear (&self->lock);
  g_cond_clear (&self->cond);
  G_OBJECT_CLASS (parent_class)->finalize (object);
}

static void
gst_shm_src_init (GstShmSrc * self)
{
  g_mutex_init (&self->lock);
  g_cond_init (&self->cond);
  g_queue_init (&self->items);
  self->timeout = DEFAULT_TIMEOUT;
  self->peer_timeout = DEFAULT_PEER_TIMEOUT;
  self->allow_symlink = DEFAULT_ALLOW_SYMLINK;
  self->read_mode = DEFAULT_READ_MODE;
  self->inline_fallback = DEFAULT_INLINE_FALLBACK;
  gst_base_src_set_live (GST_BASE_SRC (self), DEFAULT_IS_LIVE);
  gst_base_src_set_format (GST_BASE_SRC (self), GST_FORMAT_TIME);
  gst_base_src_set_do_timestamp (GST_BASE_SRC (self), FALSE);
}

static void
gst_shm_src_class_init (GstShmSrcClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseSrcClass *basesrc_class = GST_BASE_SRC_CLASS (klass);
  GstPushSrcClass *pushsrc_class = GST_PUSH_SRC_CLASS (klass);
  const GParamFlags ready = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS
      | GST_PARAM_MUTABLE_READY;

  gobject_class->set_property = gst_shm_src_set_property;
  gobject_class->get_property = gst_shm_src_get_property;
  gobject_class->finalize = gst_shm_src_finalize;

  /**
   * GstShmSrc:path:
   *
   * This receiver's own path to the sender's memory: the same /dev/shm
   * file on one host; in a QEMU guest, BAR 2 of the ivshmem device,
   * /sys/bus/pci/devices/0000:00:04.0/resource2_wc (write-combined; or
   * resource2, uncached).  ivshmem:N names BAR 2 of the Nth ivshmem device
   * (PCI id 1af4:1110, counted from 0 in PCI address order) and
   * ivshmem:0000:00:04.0 the one at that address.  A disabled device is
   * enabled (root only; otherwise the error says the command to run).
   */
  g_object_class_install_property (gobject_class, PROP_PATH,
      g_param_spec_string ("path", "Path",
          "Shared memory file the sender uses, as seen from here: "
          "/dev/shm/NAME, or in a QEMU guest an ivshmem BAR such as "
          "/sys/bus/pci/devices/0000:00:04.0/resource2_wc, or ivshmem:N",
          NULL, ready));

  /**
   * GstShmSrc:control:
   *
   * The sender's control address, as given to its shmsink:
   * unix:PATH, tcp:HOST:PORT, vsock:CID:PORT (CID 2 or "host" for the
   * host seen from a guest) or ring for the in-band control rings inside
   * the area (both sides must use ring).  By default, the unix socket
   * PATH.sock beside the area file, and ring for a PCI BAR path.
   */
  g_object_class_install_property (gobject_class, PROP_CONTROL,
      g_param_spec_string ("control", "Control address",
          "Control address of the sender: unix:PATH, tcp:HOST:PORT, "
          "vsock:CID:PORT or ring (default: unix:<path>.sock; ring for a "
          "PCI BAR)", NULL, ready));

  g_object_class_install_property (gobject_class, PROP_IS_LIVE,
      g_param_spec_boolean ("is-live", "Is live",
          "Act as a live source: timestamps follow the sender's clock "
          "(FALSE: the sender's timestamps unchanged)", DEFAULT_IS_LIVE,
          ready));

  g_object_class_install_property (gobject_class, PROP_TIMEOUT,
      g_param_spec_uint64 ("timeout", "Timeout",
          "Fail when no sender answers for this long, at start or after a "
          "sender leaves (ns; 0: wait forever)", 0, G_MAXUINT64,
          DEFAULT_TIMEOUT, G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS));

  g_object_class_install_property (gobject_class, PROP_PEER_TIMEOUT,
      g_param_spec_uint64 ("peer-timeout", "Peer timeout",
          "Post a \"stalled\" shm-peer message when the sender is silent "
          "this long (ns)", GST_SECOND, G_MAXUINT64, DEFAULT_PEER_TIMEOUT,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS));

  g_object_class_install_property (gobject_class, PROP_ALLOW_SYMLINK,
      g_param_spec_boolean ("allow-symlink", "Allow symlink",
          "Follow a symbolic link at path (refused by default)",
          DEFAULT_ALLOW_SYMLINK, ready));

  /**
   * GstShmSrc:read-mode:
   *
   * How frames leave the area.  A guest maps an ivshmem BAR write-combined
   * (resource2_wc) or uncached (resource2): the CPU does not cache reads of
   * it, so every element downstream that reads a frame in place would read
   * it at uncached speed, again and again.  In auto mode shmsrc copies each
   * frame out of a BAR once, with streaming loads (SSE4.1 MOVNTDQA, which
   * read write-combined memory a whole line at a time), into memory of its
   * own, and gives the slot back at once; frames in an ordinary file are
   * pushed in place.  in-place also pushes frames of a BAR in place (for a
   * downstream that reads each byte once, such as an encoder that uploads
   * the frame); copy copies every frame.
   */
  g_object_class_install_property (gobject_class, PROP_READ_MODE,
      g_param_spec_enum ("read-mode", "Read mode",
          "Push frames in place or copy them out of the area (auto: copy "
          "out of a PCI BAR only)", GST_TYPE_SHM_SRC_READ_MODE,
          DEFAULT_READ_MODE, ready));

  /**
   * GstShmSrc:inline-fallback:
   *
   * Over a TCP or vsock control connection, when this receiver cannot map
   * the sender's area (the token check fails: the sender runs on another
   * machine), ask for the frames inline over the connection instead, with
   * a warning on the bus (stats: frames-inline).  A non-live receiver
   * (is-live=false) reads no more than two such frames ahead of its
   * downstream, so that a slow downstream slows the sender down instead of
   * filling memory.  When FALSE, that is an error, as it always is over a
   * unix socket or the in-band rings.
   */
  g_object_class_install_property (gobject_class, PROP_INLINE_FALLBACK,
      g_param_spec_boolean ("inline-fallback", "Inline fallback",
          "Receive frames through a TCP/vsock connection when the sender's "
          "area is not the memory mapped here (FALSE: that is an error)",
          DEFAULT_INLINE_FALLBACK, ready));

  /**
   * GstShmSrc:stats:
   *
   * frames-received, frames-pushed, frames-zero-copy (pushed in place),
   * frames-copied and bytes-copied (copied out of the area), frames-dropped
   * (arrived while not playing), frames-inline (received through the
   * connection, see #GstShmSrc:inline-fallback), sessions, last-latency
   * (ns from the sender's send to arrival, same host only).
   */
  g_object_class_install_property (gobject_class, PROP_STATS,
      g_param_spec_boxed ("stats", "Statistics", "Frame counters",
          GST_TYPE_STRUCTURE, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));

  gst_element_class_set_static_metadata (element_class,
      "Shared memory video source", "Source/Video",
      "Receives frames from shmsink through a token-verified shared memory "
      "area (/dev/shm or a QEMU ivshmem BAR), zero-copy", "gst-shm developers");
  gst_element_class_add_static_pad_template (element_class, &src_template);
  gst_type_mark_as_plugin_api (GST_TYPE_SHM_SRC_READ_MODE, 0);

  element_class->change_state = GST_DEBUG_FUNCPTR (gst_shm_src_change_state);
  basesrc_class->start = GST_DEBUG_FUNCPTR (gst_shm_src_start);
  basesrc_class->stop = GST_DEBUG_FUNCPTR (gst_shm_src_stop);
  basesrc_class->get_caps = GST_DEBUG_FUNCPTR (gst_shm_src_get_caps);
  basesrc_class->negotiate = GST_DEBUG_FUNCPTR (gst_shm_src_negotiate);
  basesrc_class->unlock = GST_DEBUG_FUNCPTR (gst_shm_src_unlock);
  basesrc_class->unlock_stop = GST_DEBUG_FUNCPTR (gst_shm_src_unlock_stop);
  basesrc_class->query = GST_DEBUG_FUNCPTR (gst_shm_src_query);
  pushsrc_class->create = GST_DEBUG_FUNCPTR (gst_shm_src_create);
}

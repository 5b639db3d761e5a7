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
 * When the sender computes damage (#GstShmSink:damage), each buffer
 * carries GstVideoRegionOfInterestMeta of type "damage": the rectangles
 * (in pixels, whole tiles) that changed since the buffer pushed before;
 * one 0x0 rectangle when nothing changed; the whole frame when shmsrc
 * cannot tell (the first frame, after a gap or new caps).  (A standard
 * meta, not one of the project's own: any element can read it, and a
 * shmsink with damage=upstream takes it.)  Frames that
 * shmsrc copies (out of a PCI BAR, read-mode=copy, beyond the slots it may
 * keep, or that come inline) are then patched: only the changed tiles are
 * copied into a buffer of shmsrc's own that holds an earlier frame (stats:
 * frames-patched).  Such buffers are pushed with a reference shmsrc keeps
 * (an element downstream that writes into them gets its own copy), and
 * shmsrc keeps up to four of them.  A buffer is patched only from a frame
 * it holds: the sender's map covers the frames this receiver missed, the
 * inline frames it drops are applied without being pushed, and a receiver
 * of inline frames that still lacks the frame a partial one patches drops
 * it and asks the sender for a whole one (stats: refreshes).
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
#include "gstshmdamage.h"
#include "gstshmnegotiator.h"
#include "gstshmpool.h"
#include "gstshmtime.h"
#include "gstshmutil.h"
#include "shmaddress.h"
#include "shmcopy.h"
#include "shmreceiver.h"

#include <gst/video/video.h>
#include <string.h>

GST_DEBUG_CATEGORY_STATIC (gst_shm_src_debug);
#define GST_CAT_DEFAULT gst_shm_src_debug

#define DEFAULT_IS_LIVE TRUE
#define DEFAULT_TIMEOUT 0
#define DEFAULT_READ_MODE GST_SHM_SRC_READ_AUTO
#define DEFAULT_SPIN_TIME (500 * GST_USECOND)

enum
{
  PROP_IS_LIVE = GST_SHM_PROP_FIRST_OWN,
  PROP_TIMEOUT,
  PROP_READ_MODE,
  PROP_SPIN_TIME,
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

struct _GstShmSrc
{
  GstPushSrc parent;

  /* properties: GST_OBJECT_LOCK */
  GstShmProps props;
  GstClockTime timeout;
  GstShmSrcReadMode read_mode;
  GstClockTime spin_time;

  /* created in start, freed in stop */
  ShmReceiver *receiver;

  /* GST_OBJECT_LOCK */
  GstCaps *caps;                /* caps set on the pad */
  GstCaps *accept;              /* what downstream accepts, as last told */
  guint64 frames_pushed, frames_zero_copy, frames_copied, bytes_copied;
  guint64 frames_stale, frames_patched, refreshes;

  /* streaming thread */
  GstVideoInfo vinfo;
  gboolean is_video;
  gboolean downstream_meta;
  GstBufferPool *copy_pool;
  GstShmSrcReadMode started_read_mode;  /* read-mode (set in READY) */
  gboolean stale_caps;          /* downstream no longer accepts the caps */
  gboolean discont;
  GstShmTimes times;
  GstShmDamageReceiver *damage;
  gboolean asked_full;          /* for a whole inline frame */
};

#define gst_shm_src_parent_class parent_class
G_DEFINE_TYPE (GstShmSrc, gst_shm_src, GST_TYPE_PUSH_SRC);
GST_ELEMENT_REGISTER_DEFINE_WITH_CODE (shmsrc, "shmsrc", GST_RANK_NONE,
    GST_TYPE_SHM_SRC,
    GST_DEBUG_CATEGORY_INIT (gst_shm_src_debug, "shmsrc", 0, "gst-shm source"));

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
/**
 * GstShmSrc:control:
 *
 * The sender's control address, as given to its shmsink:
 * unix:PATH, tcp:HOST:PORT, vsock:CID:PORT (CID 2 or "host" for the
 * host seen from a guest) or ring for the in-band control rings inside
 * the area (both sides must use ring).  By default, the unix socket
 * PATH.sock beside the area file, and ring for a PCI BAR path.  The
 * streaming thread waits for frames in the area itself: on one kernel it
 * sleeps on a futex the sender wakes, across kernels the sender's doorbell
 * message wakes it, and with ring (no interrupts) it sleeps until just
 * before the next frame is due and then looks every 50 microseconds.
 */
/**
 * GstShmSrc:stats:
 *
 * frames-received, frames-pushed, frames-zero-copy (pushed in place),
 * frames-copied and bytes-copied (copied out of the area), frames-dropped
 * (not pushed: arrived while a live source was not playing, or while its
 * downstream lagged, or in caps downstream no longer accepts),
 * frames-missed (never received: gaps in the sender's frame numbers, frames
 * the sender skipped because this receiver did not take them in time),
 * frames-inline (received through the connection, see
 * #GstShmSrc:inline-fallback), sessions, wakeups (times the streaming
 * thread slept and woke), spins (times it looked for a frame without
 * sleeping, see #GstShmSrc:spin-time), last-latency (ns from the sender's
 * publication to arrival, same host only), frames-patched (copies of only
 * the tiles that changed, see #GstShmSink:damage) and refreshes (whole
 * inline frames asked for).
 */

/* --- the engine's callbacks ------------------------------------------------ */

/* Caps announced by the sender: parsed and bounded; the frames after them
 * are checked against their layout. */
static gpointer
on_parse_caps (ShmReceiver * rx, const gchar * str, guint64 slot_size,
    ShmFrameLayout * layout, GError ** error, gpointer user_data)
{
  GstCaps *caps = gst_shm_negotiator_parse (str, TRUE, error);
  GstVideoInfo info;
  gboolean video;

  if (!caps)
    return NULL;
  video = gst_shm_raw_video_info (&info, caps);
  if (video && GST_VIDEO_INFO_SIZE (&info) > slot_size) {
    g_set_error (error, SHM_PROTO_ERROR, SHM_PROTO_ERROR_INVALID,
        "caps need frames of %" G_GSIZE_FORMAT " bytes but the slots hold %"
        G_GUINT64_FORMAT, GST_VIDEO_INFO_SIZE (&info), slot_size);
    gst_caps_unref (caps);
    return NULL;
  }
  gst_shm_frame_layout (video ? &info : NULL, layout);
  return caps;
}

static gchar *
on_get_accept (ShmReceiver * rx, gpointer user_data)
{
  GstShmSrc *self = user_data;
  GstCaps *accept = gst_pad_peer_query_caps (GST_BASE_SRC_PAD (self), NULL);
  gchar *str = gst_shm_negotiator_serialize (accept);

  GST_OBJECT_LOCK (self);
  gst_caps_replace (&self->accept, accept);
  GST_OBJECT_UNLOCK (self);
  gst_caps_unref (accept);
  return str;
}

static const ShmReceiverCallbacks receiver_callbacks = {
  on_get_accept,
  on_parse_caps,
  (GDestroyNotify) gst_caps_unref,
  gst_shm_on_peer_event,
  gst_shm_on_message,
};

/* --- GstBaseSrc ---------------------------------------------------------- */

/* The control address must parse, and a unix socket's directory exist. */
static gboolean
check_control (GstShmSrc * self, const gchar * control)
{
  g_autoptr (GError) err = NULL;
  g_autofree gchar *dir = NULL;
  ShmAddress addr;

  if (!shm_address_parse (control, &addr, &err)) {
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS, ("%s", err->message), (NULL));
    return FALSE;
  }
  if (addr.kind == SHM_ADDRESS_UNIX)
    dir = g_path_get_dirname (addr.path);
  shm_address_clear (&addr);
  if (dir && !g_file_test (dir, G_FILE_TEST_IS_DIR)) {
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND,
        ("Directory \"%s\" of the control socket does not exist.", dir),
        (NULL));
    return FALSE;
  }
  return TRUE;
}

static ShmReceiver *
new_receiver (GstShmSrc * self, const gchar * path, const gchar * control,
    ShmBarKind bar)
{
  ShmReceiverConfig c = { 0, };

  GST_OBJECT_LOCK (self);
  c.path = path;
  c.control = control;
  c.bar = bar;
  c.allow_symlink = self->props.allow_symlink;
  c.inline_fallback = self->props.inline_fallback;
  c.secret = self->props.secret;
  c.timeout_us = self->timeout / GST_USECOND;
  c.peer_timeout_us = self->props.peer_timeout / GST_USECOND;
  c.spin_ns = g_get_num_processors () > 1 ? (gint64) self->spin_time : 0;
  c.features = SHM_FEATURES_KNOWN;
  GST_OBJECT_UNLOCK (self);
  c.live = gst_base_src_is_live (GST_BASE_SRC (self));
  return shm_receiver_new (&c, &receiver_callbacks, self);
}

static gboolean
gst_shm_src_start (GstBaseSrc * bsrc)
{
  GstShmSrc *self = GST_SHM_SRC (bsrc);
  g_autofree gchar *path = NULL, *control = NULL;
  ShmBarKind bar;

  GST_OBJECT_LOCK (self);
  self->frames_pushed = self->frames_zero_copy = self->frames_copied = 0;
  self->bytes_copied = self->frames_stale = 0;
  self->frames_patched = self->refreshes = 0;
  self->asked_full = FALSE;
  self->started_read_mode = self->read_mode;
  GST_OBJECT_UNLOCK (self);
  if (!gst_shm_props_resolve (GST_ELEMENT (self), &self->props,
          &gst_shm_src_texts, &path, &control, &bar)
      || !check_control (self, control))
    return FALSE;
  gst_shm_times_reset (&self->times);
  self->receiver = new_receiver (self, path, control, bar);
  shm_receiver_start (self->receiver);
  return TRUE;
}

static gboolean
gst_shm_src_stop (GstBaseSrc * bsrc)
{
  GstShmSrc *self = GST_SHM_SRC (bsrc);

  if (self->copy_pool) {
    gst_buffer_pool_set_active (self->copy_pool, FALSE);
    gst_clear_object (&self->copy_pool);
  }
  self->stale_caps = self->discont = FALSE;
  g_clear_pointer (&self->receiver, shm_receiver_free);
  gst_shm_damage_receiver_set_info (self->damage, NULL);
  GST_OBJECT_LOCK (self);
  gst_clear_caps (&self->caps);
  gst_clear_caps (&self->accept);
  GST_OBJECT_UNLOCK (self);
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
  g_autoptr (GstCaps) accept = gst_pad_peer_query_caps (pad, NULL);
  g_autoptr (GstCaps) caps = NULL;
  gboolean changed;

  GST_OBJECT_LOCK (self);
  changed = self->accept && !gst_caps_is_equal (self->accept, accept);
  if (changed)
    gst_caps_replace (&self->accept, accept);
  caps = self->caps ? gst_caps_ref (self->caps) : NULL;
  GST_OBJECT_UNLOCK (self);
  if (changed && self->receiver) {
    g_autofree gchar *str = gst_shm_negotiator_serialize (accept);
    GST_INFO_OBJECT (self, "downstream now accepts %" GST_PTR_FORMAT, accept);
    shm_receiver_send_accept (self->receiver, str);
  }
  if (caps) {
    self->stale_caps = !gst_pad_peer_query_accept_caps (pad, caps);
    if (self->stale_caps)
      GST_INFO_OBJECT (self, "downstream no longer accepts %" GST_PTR_FORMAT
          ": dropping frames until the sender's new caps", caps);
    else
      check_allocation (self, caps);
  }
  return TRUE;
}

static gboolean
set_caps (GstShmSrc * self, GstCaps * caps)
{
  GST_OBJECT_LOCK (self);
  if (self->caps && gst_caps_is_equal (self->caps, caps)) {
    GST_OBJECT_UNLOCK (self);
    return TRUE;
  }
  gst_caps_replace (&self->caps, caps);
  GST_OBJECT_UNLOCK (self);
  GST_DEBUG_OBJECT (self, "caps from the sender: %" GST_PTR_FORMAT, caps);
  self->is_video = gst_shm_raw_video_info (&self->vinfo, caps);
  gst_shm_damage_receiver_set_info (self->damage, self->is_video
      ? &self->vinfo : NULL);
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
layout_is_default (GstShmSrc * self, const ShmRecord * r)
{
  for (guint i = 0; i < r->n_planes; i++)
    if (r->plane_offset[i] != GST_VIDEO_INFO_PLANE_OFFSET (&self->vinfo, i)
        || r->plane_stride[i] != (guint) GST_VIDEO_INFO_PLANE_STRIDE
        (&self->vinfo, i))
      return FALSE;
  return TRUE;
}

/* The frame's layout as a GstVideoMeta (raw video only). */
static void
set_video_meta (GstShmSrc * self, GstBuffer * buf, const ShmRecord * r)
{
  gsize offsets[GST_VIDEO_MAX_PLANES];
  gint strides[GST_VIDEO_MAX_PLANES];

  if (!self->is_video)
    return;
  for (guint i = 0; i < r->n_planes; i++) {
    offsets[i] = r->plane_offset[i];
    strides[i] = r->plane_stride[i];
  }
  gst_buffer_add_video_meta_full (buf, GST_VIDEO_FRAME_FLAG_NONE,
      GST_VIDEO_INFO_FORMAT (&self->vinfo),
      GST_VIDEO_INFO_WIDTH (&self->vinfo),
      GST_VIDEO_INFO_HEIGHT (&self->vinfo), r->n_planes, offsets, strides);
}

/* A read-only buffer over the frame in the sender's layout; the frame (its
 * slot) goes back when the buffer is freed. */
static GstBuffer *
wrap_frame (GstShmSrc * self, ShmRxFrame * f)
{
  GstBuffer *buf = gst_buffer_new ();

  shm_rx_frame_hold (f);
  gst_buffer_append_memory (buf,
      gst_memory_new_wrapped (GST_MEMORY_FLAG_READONLY, (gpointer) f->data,
          f->record.size, 0, f->record.size, f, (GDestroyNotify)
          shm_rx_frame_free));
  set_video_meta (self, buf, &f->record);
  return buf;
}

/* Copies the frame into the default layout (for a downstream that does
 * not read GstVideoMeta).  Consumes @in. */
static GstBuffer *
copy_to_default_layout (GstShmSrc * self, GstBuffer * in)
{
  GstBuffer *out = NULL;
  GstVideoFrame src, dst;
  gboolean ok = FALSE;

  if (gst_buffer_pool_acquire_buffer (self->copy_pool, &out,
          NULL) == GST_FLOW_OK
      && gst_video_frame_map (&src, &self->vinfo, in, GST_MAP_READ)) {
    if (gst_video_frame_map (&dst, &self->vinfo, out, GST_MAP_WRITE)) {
      ok = gst_video_frame_copy (&dst, &src);
      gst_video_frame_unmap (&dst);
    }
    gst_video_frame_unmap (&src);
  }
  if (ok)
    gst_shm_damage_copy_meta (in, out);
  gst_buffer_unref (in);
  if (!ok)
    gst_clear_buffer (&out);
  return out;
}

/* Copies the frame byte for byte into memory of our own, with the
 * sender's layout; out of a BAR (@wc) with streaming loads. */
static GstBuffer *
copy_bytes (GstShmSrc * self, const ShmRxFrame * f, gboolean wc)
{
  GstBuffer *out = gst_buffer_new_allocate (NULL, f->record.size, NULL);
  GstMapInfo dst;

  if (!out || !gst_buffer_map (out, &dst, GST_MAP_WRITE)) {
    gst_clear_buffer (&out);
    return NULL;
  }
  if (wc)
    shm_copy_from_wc (dst.data, f->data, f->record.size);
  else
    memcpy (dst.data, f->data, f->record.size);
  gst_buffer_unmap (out, &dst);
  set_video_meta (self, out, &f->record);
  return out;
}

/* Whether the frame leaves the area as a copy: non-raw data is parsed
 * downstream (never hand out memory the sender can still change); one
 * slot stays the sender's; a BAR is read once, with streaming loads. */
static gboolean
must_copy (GstShmSrc * self, const ShmRxFrame * f, gboolean convert)
{
  GstShmSrcReadMode mode = self->started_read_mode;

  return !self->is_video || convert || mode == GST_SHM_SRC_READ_COPY
      || (f->from_bar && mode == GST_SHM_SRC_READ_AUTO)
      || shm_rx_session_held (f->session)
      >= shm_rx_session_may_hold (f->session);
}

/* An inline frame whose tiles patch a frame this receiver lacks: dropped,
 * and the sender asked (once) for a whole one. */
static void
ask_full (GstShmSrc * self, gboolean count_drop)
{
  gboolean ask = !self->asked_full;

  self->asked_full = TRUE;
  self->discont = TRUE;
  GST_OBJECT_LOCK (self);
  self->frames_stale += count_drop;
  self->refreshes += ask;
  GST_OBJECT_UNLOCK (self);
  if (ask) {
    GST_DEBUG_OBJECT (self, "asking the sender for a whole frame");
    shm_receiver_request_full (self->receiver);
  }
}

/* An inline frame dropped (downstream is too slow): the buffer of ours
 * that holds the frame before is patched all the same, so that the frames
 * after it can be.  Takes @f. */
static void
apply_only (GstShmSrc * self, ShmRxFrame * f)
{
  gboolean need_full = FALSE;
  guint64 bytes = 0;
  GstBuffer *buf = NULL;

  if (self->is_video)
    buf = gst_shm_damage_receiver_inline (self->damage, &f->record,
        shm_rx_session_id (f->session), f->payload, FALSE, &bytes, &need_full);
  gst_clear_buffer (&buf);
  if (need_full)
    ask_full (self, FALSE);
  if (!(f->record.record_flags & SHM_RECORD_FLAG_PARTIAL))
    self->asked_full = FALSE;
  self->discont = TRUE;
  shm_rx_frame_free (f);
}

/* A frame that carries damage: copies (out of the area, or of an inline
 * frame's tiles) patch a buffer of ours that holds an earlier frame; in
 * place, it is only described.  Takes @f. */
static GstBuffer *
damaged_to_buffer (GstShmSrc * self, ShmRxFrame * f, guint64 session,
    gboolean * copied, guint64 * bytes)
{
  const ShmRecord r = f->record;
  gboolean need_full = FALSE;
  GstBuffer *buf;

  /* (an inline frame that came whole is pushed as it came) */
  *copied = f->in_area ? must_copy (self, f, FALSE)
      : (r.record_flags & SHM_RECORD_FLAG_PARTIAL) != 0;
  if (!f->in_area) {
    if (!*copied)
      self->asked_full = FALSE;
    buf = gst_shm_damage_receiver_inline (self->damage, &r, session,
        f->payload, TRUE, bytes, &need_full);
    if (need_full)
      ask_full (self, TRUE);
  } else if (*copied) {
    buf = gst_shm_damage_receiver_copy (self->damage, &r, session, f->data,
        f->from_bar, bytes);
  } else {
    buf = wrap_frame (self, f);
    gst_shm_damage_receiver_add_meta (self->damage, buf, &r, session);
    return buf;
  }
  shm_rx_frame_free (f);
  return buf;
}

/* The frame as a buffer: in place, or copied (@bytes of it).  Takes @f.
 * NULL with no @bytes: an inline frame that could not be used. */
static GstBuffer *
frame_to_buffer (GstShmSrc * self, ShmRxFrame * f, guint64 session,
    gboolean * copied, guint64 * bytes)
{
  gboolean convert = self->is_video && !self->downstream_meta
      && !layout_is_default (self, &f->record);
  GstBuffer *buf;

  *bytes = 0;
  /* (an inline frame of tiles only never goes as a whole frame; in the
   * area every frame is whole) */
  if ((!f->in_area && (f->record.record_flags & SHM_RECORD_FLAG_PARTIAL))
      || (self->is_video && gst_shm_damage_receiver_active (self->damage,
              &f->record))) {
    buf = damaged_to_buffer (self, f, session, copied, bytes);
  } else {
    *copied = f->in_area && must_copy (self, f, convert);
    if (!*copied) {
      buf = wrap_frame (self, f);
    } else {
      *bytes = f->record.size;
      buf = copy_bytes (self, f, f->from_bar);
      shm_rx_frame_free (f);
    }
  }
  if (buf && convert && self->copy_pool)
    buf = copy_to_default_layout (self, buf);
  return buf;
}

/* (@f's session may be gone: @session is its id) */
static void
set_timestamps (GstShmSrc * self, GstBuffer * buf, const ShmRxFrame * f,
    guint64 session)
{
  const ShmRecord *r = &f->record;

  GstSegment seg;

  if (gst_base_src_is_live (GST_BASE_SRC (self))) {
    gst_shm_times_live (&self->times, GST_ELEMENT (self), buf, r,
        f->same_boot, session);
  } else {
    GST_BUFFER_PTS (buf) = r->pts;
    GST_BUFFER_DTS (buf) = r->dts;
    if (gst_shm_times_segment (&self->times, r, session, &seg))
      gst_base_src_new_segment (GST_BASE_SRC (self), &seg);
  }
  GST_BUFFER_DURATION (buf) = r->duration;
  GST_BUFFER_OFFSET (buf) = r->buffer_offset;
  GST_BUFFER_OFFSET_END (buf) = r->buffer_offset_end;
  GST_BUFFER_FLAGS (buf) |= gst_shm_flags_from_wire (r->buffer_flags);
  /* a frame this receiver missed (dropped here, or skipped by the sender
   * because this receiver lagged) */
  if (self->discont || f->discont) {
    GST_BUFFER_FLAG_SET (buf, GST_BUFFER_FLAG_DISCONT);
    self->discont = FALSE;
  }
}

/* A frame from the engine, as a buffer to push (NULL: dropped, or an
 * error was posted).  Takes @f. */
static GstFlowReturn
push_frame (GstShmSrc * self, ShmRxFrame * f, GstBuffer ** outbuf)
{
  ShmRxFrame copy;
  gboolean copied, in_area = f->in_area;
  gboolean patched = (f->record.record_flags & SHM_RECORD_FLAG_DAMAGE) != 0;
  guint64 session, bytes;
  GstBuffer *buf;

  if (f->apply_only) {
    apply_only (self, f);
    return GST_FLOW_CUSTOM_SUCCESS;
  }
  if (self->stale_caps) {
    /* downstream refuses these caps; the sender's new ones will come */
    shm_rx_frame_free (f);
    GST_OBJECT_LOCK (self);
    self->frames_stale++;
    GST_OBJECT_UNLOCK (self);
    self->discont = TRUE;
    return GST_FLOW_CUSTOM_SUCCESS;
  }
  copy = *f;
  copy.session = NULL;
  session = shm_rx_session_id (f->session);
  buf = frame_to_buffer (self, f, session, &copied, &bytes);
  if (!buf && self->asked_full)
    return GST_FLOW_CUSTOM_SUCCESS;
  if (!buf) {
    GST_ELEMENT_ERROR (self, RESOURCE, READ, ("Could not copy a frame out of "
            "the shared area."), (NULL));
    return GST_FLOW_ERROR;
  }
  /* (@f may be gone: its fields were copied) */
  set_timestamps (self, buf, &copy, session);
  GST_OBJECT_LOCK (self);
  self->frames_pushed++;
  if (copied) {
    self->frames_copied++;
    self->bytes_copied += bytes;
    self->frames_patched += patched && bytes < copy.record.size;
  } else if (in_area) {
    self->frames_zero_copy++;
  }
  GST_OBJECT_UNLOCK (self);
  *outbuf = buf;
  return GST_FLOW_OK;
}

static GstFlowReturn
gst_shm_src_create (GstPushSrc * psrc, GstBuffer ** outbuf)
{
  GstShmSrc *self = GST_SHM_SRC (psrc);
  GstFlowReturn ret = GST_FLOW_CUSTOM_SUCCESS;
  ShmRxFrame *f;
  gpointer caps;

  while (ret == GST_FLOW_CUSTOM_SUCCESS) {
    switch (shm_receiver_next (self->receiver, &f, &caps)) {
      case SHM_RECV_FRAME:
        ret = push_frame (self, f, outbuf);
        break;
      case SHM_RECV_CAPS:
        if (!set_caps (self, caps))
          ret = GST_FLOW_NOT_NEGOTIATED;
        gst_caps_unref (caps);
        break;
      case SHM_RECV_EOS:
        GST_INFO_OBJECT (self, "EOS from the sender");
        ret = GST_FLOW_EOS;
        break;
      case SHM_RECV_FLUSHING:
        ret = GST_FLOW_FLUSHING;
        break;
      case SHM_RECV_ERROR:
        ret = GST_FLOW_ERROR;
        break;
    }
  }
  return ret;
}

static gboolean
gst_shm_src_unlock (GstBaseSrc * bsrc)
{
  shm_receiver_set_flushing (GST_SHM_SRC (bsrc)->receiver, TRUE);
  return TRUE;
}

static gboolean
gst_shm_src_unlock_stop (GstBaseSrc * bsrc)
{
  GstShmSrc *self = GST_SHM_SRC (bsrc);

  shm_receiver_set_flushing (self->receiver, FALSE);
  /* a live source drops what came while it was not running */
  if (gst_base_src_is_live (bsrc))
    shm_receiver_drop_pending (self->receiver);
  return TRUE;
}

/* QoS from downstream goes into this receiver's reports to the sender,
 * which passes the worst receiver's on upstream of itself. */
static gboolean
gst_shm_src_event (GstBaseSrc * src, GstEvent * event)
{
  GstShmSrc *self = GST_SHM_SRC (src);

  if (GST_EVENT_TYPE (event) == GST_EVENT_QOS && self->receiver) {
    gdouble proportion;
    GstClockTimeDiff diff;

    gst_event_parse_qos (event, NULL, &proportion, &diff, NULL);
    shm_receiver_note_qos (self->receiver, proportion, diff);
  }
  return GST_BASE_SRC_CLASS (parent_class)->event (src, event);
}

static gboolean
gst_shm_src_query (GstBaseSrc * bsrc, GstQuery * query)
{
  GstShmSrc *self = GST_SHM_SRC (bsrc);
  ShmReceiverStats st = { 0, };
  GstClockTime min = 0;

  if (GST_QUERY_TYPE (query) != GST_QUERY_LATENCY)
    return GST_BASE_SRC_CLASS (parent_class)->query (bsrc, query);
  if (!gst_base_src_is_live (bsrc)) {
    gst_query_set_latency (query, FALSE, 0, GST_CLOCK_TIME_NONE);
    return TRUE;
  }
  /* Frames arrive at the instant the sender's sink renders them; one frame
   * of latency lets them be displayed on time.  They wait in at most all
   * slots of the area. */
  GST_OBJECT_LOCK (self);
  if (self->caps && self->is_video && GST_VIDEO_INFO_FPS_N (&self->vinfo) > 0)
    min = gst_util_uint64_scale_int (GST_SECOND,
        GST_VIDEO_INFO_FPS_D (&self->vinfo),
        GST_VIDEO_INFO_FPS_N (&self->vinfo));
  GST_OBJECT_UNLOCK (self);
  if (self->receiver)
    shm_receiver_get_stats (self->receiver, &st);
  gst_query_set_latency (query, TRUE, min, min * MAX (st.n_slots, 1));
  return TRUE;
}

static GstStateChangeReturn
gst_shm_src_change_state (GstElement * element, GstStateChange transition)
{
  GstShmSrc *self = GST_SHM_SRC (element);
  gboolean live = gst_base_src_is_live (GST_BASE_SRC (self));
  GstStateChangeReturn ret;

  if (transition == GST_STATE_CHANGE_PAUSED_TO_PLAYING && self->receiver)
    shm_receiver_set_discarding (self->receiver, FALSE);
  ret = GST_ELEMENT_CLASS (parent_class)->change_state (element, transition);
  /* a live source that is not playing produces nothing */
  if ((transition == GST_STATE_CHANGE_READY_TO_PAUSED
          || transition == GST_STATE_CHANGE_PLAYING_TO_PAUSED) && live
      && self->receiver)
    shm_receiver_set_discarding (self->receiver, TRUE);
  return ret;
}

/* --- GObject ------------------------------------------------------------- */

static GstStructure *
get_stats (GObject * object)
{
  GstShmSrc *self = GST_SHM_SRC (object);
  ShmReceiverStats st = { 0, };
  GstStructure *s;

  if (self->receiver)
    shm_receiver_get_stats (self->receiver, &st);
  GST_OBJECT_LOCK (self);
  s = gst_structure_new ("GstShmSrcStats",
      "frames-received", G_TYPE_UINT64, st.frames_received,
      "frames-pushed", G_TYPE_UINT64, self->frames_pushed,
      "frames-zero-copy", G_TYPE_UINT64, self->frames_zero_copy,
      "frames-copied", G_TYPE_UINT64, self->frames_copied,
      "bytes-copied", G_TYPE_UINT64, self->bytes_copied,
      "frames-patched", G_TYPE_UINT64, self->frames_patched,
      "refreshes", G_TYPE_UINT64, self->refreshes,
      "frames-dropped", G_TYPE_UINT64, st.frames_dropped + self->frames_stale,
      "frames-missed", G_TYPE_UINT64, st.frames_missed,
      "frames-inline", G_TYPE_UINT64, st.frames_inline,
      "sessions", G_TYPE_UINT64, st.sessions,
      "wakeups", G_TYPE_UINT64, st.wakeups,
      "spins", G_TYPE_UINT64, st.spins,
      "last-latency", G_TYPE_INT64, st.last_latency_ns, NULL);
  GST_OBJECT_UNLOCK (self);
  return s;
}

static void
set_own_property (GObject * object, guint prop_id, const GValue * value,
    GParamSpec * pspec)
{
  GstShmSrc *self = GST_SHM_SRC (object);

  if (prop_id == PROP_IS_LIVE) {
    gst_base_src_set_live (GST_BASE_SRC (self), g_value_get_boolean (value));
    return;
  }
  GST_OBJECT_LOCK (self);
  if (prop_id == PROP_TIMEOUT)
    self->timeout = g_value_get_uint64 (value);
  else if (prop_id == PROP_READ_MODE)
    self->read_mode = g_value_get_enum (value);
  else if (prop_id == PROP_SPIN_TIME)
    self->spin_time = g_value_get_uint64 (value);
  else
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
  GST_OBJECT_UNLOCK (self);
}

static void
get_own_property (GObject * object, guint prop_id, GValue * value,
    GParamSpec * pspec)
{
  GstShmSrc *self = GST_SHM_SRC (object);

  if (prop_id == PROP_IS_LIVE) {
    g_value_set_boolean (value, gst_base_src_is_live (GST_BASE_SRC (self)));
    return;
  }
  GST_OBJECT_LOCK (self);
  if (prop_id == PROP_TIMEOUT)
    g_value_set_uint64 (value, self->timeout);
  else if (prop_id == PROP_READ_MODE)
    g_value_set_enum (value, self->read_mode);
  else if (prop_id == PROP_SPIN_TIME)
    g_value_set_uint64 (value, self->spin_time);
  else
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
  GST_OBJECT_UNLOCK (self);
}

static const GstShmPropClass prop_class = {
  &gst_shm_src_texts,
  G_STRUCT_OFFSET (GstShmSrc, props),
  get_stats,
  set_own_property,
  get_own_property,
  NULL,
};

static void
gst_shm_src_finalize (GObject * object)
{
  GstShmSrc *self = GST_SHM_SRC (object);

  gst_shm_props_clear (&self->props);
  gst_shm_damage_receiver_free (self->damage);
  G_OBJECT_CLASS (parent_class)->finalize (object);
}

static void
gst_shm_src_init (GstShmSrc * self)
{
  gst_base_src_set_format (GST_BASE_SRC (self), GST_FORMAT_TIME);
  gst_base_src_set_live (GST_BASE_SRC (self), DEFAULT_IS_LIVE);
  gst_shm_props_init (&self->props);
  self->timeout = DEFAULT_TIMEOUT;
  self->read_mode = DEFAULT_READ_MODE;
  self->spin_time = DEFAULT_SPIN_TIME;
  self->damage = gst_shm_damage_receiver_new ();
}

static void
install_own_properties (GObjectClass * gobject_class)
{
  const GParamFlags ready = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS
      | GST_PARAM_MUTABLE_READY;

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
  g_object_class_install_property (gobject_class, PROP_READ_MODE,
      g_param_spec_enum ("read-mode", "Read mode",
          "Push frames in place or copy them out of the area (auto: copy "
          "out of a PCI BAR only)", GST_TYPE_SHM_SRC_READ_MODE,
          DEFAULT_READ_MODE, ready));
  g_object_class_install_property (gobject_class, PROP_SPIN_TIME,
      g_param_spec_uint64 ("spin-time", "Spin time",
          "Longest time per frame to look for a frame without sleeping, "
          "around the time it is due, when the stream has a frame rate "
          "(ns; 0: always sleep)", 0, G_GUINT64_CONSTANT (10000000),
          DEFAULT_SPIN_TIME, ready));
}

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
/**
 * GstShmSrc:spin-time:
 *
 * When the sender runs on the same host (not in ring mode) and the stream
 * has a frame rate, shmsrc knows when the next frame is likely to come:
 * from how late, after their due time, the last 32 frames were published.
 * Around that time its streaming thread looks for the frame without
 * sleeping, for at most this long per frame (and 1/32 of the frame
 * interval), so that it takes the frame the moment it is published and
 * the sender need not wake it.  This trades CPU for latency: at 60 fps the
 * default costs up to 3 % of a core; bench/results.md has the numbers of
 * both settings.  When spinning does not catch the frames (fewer than half
 * of the last 32 windows saw their frame), shmsrc spins for one frame in
 * 16 only.  0 always sleeps until the sender wakes it.  Machines with one
 * CPU never spin.
 */
static void
gst_shm_src_class_init (GstShmSrcClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseSrcClass *basesrc_class = GST_BASE_SRC_CLASS (klass);
  GstPushSrcClass *pushsrc_class = GST_PUSH_SRC_CLASS (klass);

  gst_shm_class_init_element (element_class, &prop_class, &src_template,
      "Shared memory video source", "Source/Video",
      "Receives frames from shmsink through a token-verified shared memory "
      "area (/dev/shm or a QEMU ivshmem BAR), zero-copy");
  gobject_class->finalize = gst_shm_src_finalize;
  install_own_properties (gobject_class);
  gst_type_mark_as_plugin_api (GST_TYPE_SHM_SRC_READ_MODE, 0);

  element_class->change_state = GST_DEBUG_FUNCPTR (gst_shm_src_change_state);
  basesrc_class->start = GST_DEBUG_FUNCPTR (gst_shm_src_start);
  basesrc_class->stop = GST_DEBUG_FUNCPTR (gst_shm_src_stop);
  basesrc_class->get_caps = GST_DEBUG_FUNCPTR (gst_shm_src_get_caps);
  basesrc_class->negotiate = GST_DEBUG_FUNCPTR (gst_shm_src_negotiate);
  basesrc_class->unlock = GST_DEBUG_FUNCPTR (gst_shm_src_unlock);
  basesrc_class->unlock_stop = GST_DEBUG_FUNCPTR (gst_shm_src_unlock_stop);
  basesrc_class->query = GST_DEBUG_FUNCPTR (gst_shm_src_query);
  basesrc_class->event = GST_DEBUG_FUNCPTR (gst_shm_src_event);
  pushsrc_class->create = GST_DEBUG_FUNCPTR (gst_shm_src_create);
}

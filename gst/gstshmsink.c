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
 * resized or removed, except the area of a shmsink that was killed (no
 * shmsink holds its lock, and its header says a shmsink created it): it is
 * removed, and a new one takes its place (a warning says so).  Another
 * user's file is never used (#GstShmSink:mode says which are).  Receivers
 * connect to the control socket (by default
 * PATH.sock), and before any frame moves both sides prove that they map the
 * same memory: shmsink writes a random token at a random place of the area,
 * the receiver finds it through its own mapping and answers with a token of
 * its own (xpra's mmap handshake).  A receiver that fails the check gets
 * an error; shmsink posts a warning, drops it and serves the others (no
 * receiver can stop it for the rest).
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
#include "gstshmdamage.h"
#include "gstshmpool.h"
#include "gstshmnegotiator.h"
#include "gstshmreport.h"
#include "gstshmtime.h"
#include "gstshmutil.h"
#include "shmsender.h"

#include <gst/video/video.h>
#include <string.h>

GST_DEBUG_CATEGORY_STATIC (gst_shm_sink_debug);
#define GST_CAT_DEFAULT gst_shm_sink_debug

#define DEFAULT_NUM_SLOTS 4
#define DEFAULT_SIZE 0
#define DEFAULT_MODE 0600
#define DEFAULT_WAIT_FOR_RECEIVER TRUE
#define DEFAULT_MIN_RECEIVERS 1
#define DEFAULT_SLOT_TIMEOUT GST_SECOND
/* Slot size for caps whose frame size is not known (not raw video). */
#define DEFAULT_UNKNOWN_FRAME_SIZE (1024 * 1024)
#define DEFAULT_DAMAGE GST_SHM_DAMAGE_OFF

enum
{
  PROP_NUM_SLOTS = GST_SHM_PROP_FIRST_OWN,
  PROP_SIZE,
  PROP_MODE,
  PROP_WAIT_FOR_RECEIVER,
  PROP_MIN_RECEIVERS,
  PROP_SLOT_TIMEOUT,
  PROP_GROUP,
  PROP_RECEIVERS,
  PROP_DAMAGE,
};

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);

struct _GstShmSink
{
  GstBaseSink parent;

  /* properties: GST_OBJECT_LOCK */
  GstShmProps props;
  guint num_slots;
  guint64 size;
  guint mode;
  gchar *group;
  gboolean wait_for_receiver;
  guint min_receivers;
  GstClockTime slot_timeout;
  GstShmDamageMode damage_mode;

  /* created in start, freed in stop (streaming and control threads use it
   * in between) */
  ShmSender *sender;
  /* what each receiver accepts (own lock) */
  GstShmNegotiator *negotiator;

  /* GST_OBJECT_LOCK */
  gboolean query_may_wait;      /* not going down in state */
  gboolean conflict_posted;
  gboolean warned_drop;
  GstCaps *caps;                /* the stream's */
  gchar *area_path;
  guint64 damage_frames, damage_tiles, damage_changed, damage_ns;

  /* streaming thread */
  GstVideoInfo vinfo;
  gboolean is_video;
  gboolean uses_monotonic;
  GstShmDamageSender damage;
};

#define gst_shm_sink_parent_class parent_class
G_DEFINE_TYPE (GstShmSink, gst_shm_sink, GST_TYPE_BASE_SINK);
GST_ELEMENT_REGISTER_DEFINE_WITH_CODE (shmsink, "shmsink", GST_RANK_NONE,
    GST_TYPE_SHM_SINK,
    GST_DEBUG_CATEGORY_INIT (gst_shm_sink_debug, "shmsink", 0, "gst-shm sink"));

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
/**
 * GstShmSink:control:
 *
 * Where receivers connect: unix:PATH, tcp:HOST:PORT, vsock:CID:PORT
 * (CID "any" to listen on every CID), or ring for the in-band control
 * rings inside the area itself (no socket at all: two guests on one
 * ivshmem device).  By default, the unix socket PATH.sock beside the area
 * file, and ring for a PCI BAR path.  Whatever carries the control
 * messages, frames and their releases go through the area; a receiver
 * that sleeps is woken with a futex when both sides run on one kernel, a
 * doorbell message over the connection otherwise, and in ring mode (no
 * interrupts) it looks along the frame clock.
 */
/**
 * GstShmSink:stats:
 *
 * frames-rendered, frames-sent, frames-zero-copy (announced in place),
 * frames-copied and bytes-copied (copied into a slot), frames-dropped
 * (no free slot), frames-unsent (no receiver), frames-skipped (frames
 * a lagging receiver missed), frames-inline (frames sent through a
 * connection, see #GstShmSink:inline-fallback), doorbells (wake-ups sent
 * as doorbell messages, to receivers on another kernel), receivers (ready
 * now), receivers-connected, sessions, area-size, n-slots, slot-size,
 * bytes-inline (records and frame bytes sent through connections);
 * damage-frames (frames given a tile map, see #GstShmSink:damage),
 * damage-tiles and damage-tiles-changed (tiles of those frames, and those
 * that changed), damage-time (ns spent comparing tiles); and GstBaseSink's
 * average-rate, dropped and rendered.
 */
/**
 * GstShmSink:damage:
 *
 * Tells receivers which tiles of each frame changed since the frame sent
 * before (a tile map in each frame record, docs/protocol.md 1.4.1), so
 * that receivers that copy frames copy only those: shmsrc reading a PCI
 * BAR (read-mode=auto or copy: every byte an uncached read), a shmsrc that
 * copies for a downstream that keeps frames or with read-mode=copy, and a
 * receiver that gets frames inline over TCP or vsock, which then get only
 * the changed tiles through the connection.  Receivers that read frames in
 * place gain nothing; shmsrc attaches the damage to every buffer either
 * way, as GstVideoRegionOfInterestMeta of type "damage".
 *
 * off (the default): no tile map; damage costs nothing.  compute: shmsink
 * compares each frame with the one before, tile by tile (it keeps a
 * reference to the frame before: one slot more held while upstream
 * renders into the pool); on a screen where little moves this costs the
 * sender about one read of two frames, and cuts what a copying receiver
 * copies to a few percent of a frame; in full motion the comparison stops
 * at each tile's first different byte and frames go whole.  upstream: the
 * damage comes from upstream, as GstVideoRegionOfInterestMeta of type
 * "damage" on each buffer (what shmsrc attaches, so shmsrc ! ... ! shmsink
 * passes it on), relative to the buffer before; a buffer without any
 * counts as wholly changed.  Frames of formats whose pixels are not whole
 * bytes (tiled, paletted, v210 and the like) carry no damage.  A change
 * takes effect at the next caps.
 */

/* --- the engine's callbacks ------------------------------------------------ */

/* A receiver said what it accepts (hello), or changed its mind (accept).
 * Returns why it is refused, if it is. */
static gchar *
on_accepts (ShmSender * sender, ShmPeer * peer, const gchar * str,
    gboolean update, gpointer user_data)
{
  GstShmSink *self = user_data;
  g_autoptr (GError) err = NULL;
  g_autoptr (GstCaps) accept = NULL, stream = NULL, all = NULL;
  g_autofree gchar *conflict = NULL;
  const gchar *name = shm_peer_get_name (peer);

  if (str && !(accept = gst_shm_negotiator_parse (str, FALSE, &err)))
    return g_strdup_printf ("invalid %s: %s", update ? "accept" : "hello",
        err->message);
  /* (it would leave the others no caps at all) */
  if (accept && gst_caps_is_empty (accept))
    return g_strdup_printf ("its %s accepts no caps at all (EMPTY)",
        update ? "accept" : "hello");
  GST_INFO_OBJECT (self, "%s accepts %" GST_PTR_FORMAT, name, accept);
  gst_shm_negotiator_set_receiver (self->negotiator, peer, name, accept);
  shm_sender_wake_waits (self->sender);
  if (update) {
    all = gst_shm_negotiator_intersect (self->negotiator, NULL, &conflict);
    if (!conflict) {
      /* upstream asks for caps again and may pick others */
      gst_pad_push_event (GST_BASE_SINK_PAD (self),
          gst_event_new_reconfigure ());
      return NULL;
    }
    GST_ELEMENT_WARNING (self, STREAM, FORMAT, ("Receiver %s changed what "
            "it accepts, and %s.", name, conflict), (NULL));
  }
  GST_OBJECT_LOCK (self);
  stream = self->caps ? gst_caps_ref (self->caps) : NULL;
  GST_OBJECT_UNLOCK (self);
  if (!stream || gst_shm_negotiator_accepts (self->negotiator, peer, stream))
    return NULL;
  {
    g_autofree gchar *s = gst_caps_to_string (stream);
    g_autofree gchar *a = accept ? gst_caps_to_string (accept)
        : g_strdup ("ANY");
    return g_strdup_printf ("the running stream's caps %s are not among "
        "those this receiver accepts (%s)", s, a);
  }
}

static void
on_gone (ShmSender * sender, ShmPeer * peer, gpointer user_data)
{
  GstShmSink *self = user_data;

  gst_shm_negotiator_remove_receiver (self->negotiator, peer);
}

static void
on_report (ShmSender * sender, ShmPeer * peer, const ShmReport * report,
    gpointer user_data)
{
  gst_shm_report_forward (GST_BASE_SINK (user_data), sender, peer, report);
}

static const ShmSenderCallbacks sender_callbacks = {
  on_accepts,
  on_gone,
  gst_shm_on_peer_event,
  gst_shm_on_message,
  on_report,
};

/* --- GstBaseSink ---------------------------------------------------------- */

static guint
min_ready (GstShmSink * self)
{
  guint min;

  GST_OBJECT_LOCK (self);
  min = self->wait_for_receiver ? self->min_receivers : 0;
  GST_OBJECT_UNLOCK (self);
  return min;
}

static ShmSender *
new_sender (GstShmSink * self, const gchar * path, const gchar * control)
{
  ShmSenderConfig c = { 0, };
  ShmSender *sender;

  GST_OBJECT_LOCK (self);
  c.path = path;
  c.control = control;
  c.num_slots = self->num_slots;
  c.size = self->size;
  c.mode = self->mode;
  c.group = self->group;
  c.allow_symlink = self->props.allow_symlink;
  c.inline_fallback = self->props.inline_fallback;
  c.secret = self->props.secret;
  c.slot_timeout_us = GST_CLOCK_TIME_IS_VALID (self->slot_timeout)
      ? (gint64) (self->slot_timeout / GST_USECOND) : -1;
  c.peer_timeout_us = self->props.peer_timeout / GST_USECOND;
  c.features = SHM_FEATURES_KNOWN;
  GST_OBJECT_UNLOCK (self);
  sender = shm_sender_new (&c, &sender_callbacks, self);
  shm_sender_set_min_ready (sender, min_ready (self));
  return sender;
}

static gboolean
gst_shm_sink_start (GstBaseSink * bsink)
{
  GstShmSink *self = GST_SHM_SINK (bsink);
  g_autoptr (GError) err = NULL;
  g_autofree gchar *path = NULL, *control = NULL;
  ShmBarKind bar;

  GST_OBJECT_LOCK (self);
  self->conflict_posted = self->warned_drop = FALSE;
  GST_OBJECT_UNLOCK (self);
  if (!gst_shm_props_resolve (GST_ELEMENT (self), &self->props,
          &gst_shm_sink_texts, &path, &control, &bar))
    return FALSE;
  self->sender = new_sender (self, path, control);
  if (!shm_sender_start (self->sender, &err)) {
    gst_shm_post_error (GST_ELEMENT (self), TRUE, err, NULL);
    g_clear_pointer (&self->sender, shm_sender_free);
    return FALSE;
  }
  GST_OBJECT_LOCK (self);
  g_free (self->area_path);
  self->area_path = g_steal_pointer (&path);
  GST_OBJECT_UNLOCK (self);
  GST_INFO_OBJECT (self, "listening on %s for %s", control, self->area_path);
  return TRUE;
}

static gboolean
gst_shm_sink_stop (GstBaseSink * bsink)
{
  GstShmSink *self = GST_SHM_SINK (bsink);

  g_clear_pointer (&self->sender, shm_sender_free);
  gst_shm_damage_sender_reset (&self->damage);
  GST_OBJECT_LOCK (self);
  gst_clear_caps (&self->caps);
  GST_OBJECT_UNLOCK (self);
  return TRUE;
}

/* The largest frame @caps make, in the layout of the slots. */
static guint64
frame_size (GstCaps * caps, GstVideoInfo * vinfo, gboolean * is_video)
{
  GstVideoInfo aligned;

  *is_video = gst_shm_raw_video_info (vinfo, caps);
  if (!*is_video)
    return DEFAULT_UNKNOWN_FRAME_SIZE;
  aligned = *vinfo;
  if (!gst_shm_video_info_align (&aligned))
    aligned = *vinfo;
  return MAX (GST_VIDEO_INFO_SIZE (&aligned), GST_VIDEO_INFO_SIZE (vinfo));
}

static gboolean
gst_shm_sink_set_caps (GstBaseSink * bsink, GstCaps * caps)
{
  GstShmSink *self = GST_SHM_SINK (bsink);
  g_autoptr (GError) err = NULL;
  g_autofree gchar *str = gst_caps_to_string (caps);
  GstVideoInfo vinfo;
  gboolean is_video;
  guint64 size = frame_size (caps, &vinfo, &is_video);
  GstShmDamageMode damage;

  GST_OBJECT_LOCK (self);
  gst_caps_replace (&self->caps, caps);
  damage = self->damage_mode;
  GST_OBJECT_UNLOCK (self);
  if (!shm_sender_set_caps (self->sender, str, size, !is_video, &err)) {
    /* (an error posted before: upstream may try again, the answer is the
     * same) */
    if (err && err->domain != SHM_ENGINE_ERROR)
      gst_shm_post_error (GST_ELEMENT (self), TRUE, err, NULL);
    return FALSE;
  }
  self->vinfo = vinfo;
  self->is_video = is_video;
  gst_shm_damage_sender_set_caps (&self->damage, damage,
      is_video ? &vinfo : NULL);
  shm_sender_set_grid (self->sender, self->damage.grid.tile
      ? &self->damage.grid : NULL);
  if (damage != GST_SHM_DAMAGE_OFF && !self->damage.grid.tile)
    GST_INFO_OBJECT (self, "no damage for %" GST_PTR_FORMAT " (not raw "
        "video of whole bytes a pixel): frames go whole", caps);
  GST_DEBUG_OBJECT (self, "caps %" GST_PTR_FORMAT ", frames of %"
      G_GUINT64_FORMAT " bytes", caps, size);
  return TRUE;
}

/* None of @caps fits an area shmsink may not grow: says what would. */
static void
post_too_small (GstShmSink * self, GstCaps * caps, guint64 max)
{
  g_autoptr (GstCaps) fixed = gst_caps_fixate (gst_caps_copy (caps));
  g_autofree gchar *str = gst_caps_to_string (caps);
  GstVideoInfo info;
  guint num_slots;

  GST_OBJECT_LOCK (self);
  num_slots = self->num_slots;
  GST_OBJECT_UNLOCK (self);
  if (gst_shm_raw_video_info (&info, fixed)
      && gst_shm_video_info_align (&info))
    GST_ELEMENT_ERROR (self, RESOURCE, NO_SPACE_LEFT, ("\"%s\" is too small: "
            "its slots hold frames of %" G_GUINT64_FORMAT " bytes, %s needs "
            "%" G_GSIZE_FORMAT "; %u slots of it need an area of %"
            G_GUINT64_FORMAT " bytes", self->area_path, max, str,
            GST_VIDEO_INFO_SIZE (&info), num_slots,
            shm_sender_size_needed (self->sender,
                GST_VIDEO_INFO_SIZE (&info))), (NULL));
  else
    GST_ELEMENT_ERROR (self, RESOURCE, NO_SPACE_LEFT, ("\"%s\" is too small: "
            "its slots hold frames of %" G_GUINT64_FORMAT " bytes, none of %s "
            "fits", self->area_path, max, str), (NULL));
}

static guint
count_receivers (gpointer data)
{
  return gst_shm_negotiator_n_receivers (data);
}

/* With wait-for-receiver, once started and not going down in state (a
 * live source negotiates holding its LIVE lock, which its own
 * PLAYING->PAUSED change needs) nor flushing (a flushing seek waits for
 * the source's streaming thread, which may be in this query): waits for
 * min-receivers receivers to say what they accept. */
static void
wait_for_accepts (GstShmSink * self)
{
  guint min, unlocks = shm_sender_get_unlocks (self->sender);
  gboolean wait;

  GST_OBJECT_LOCK (self);
  wait = self->query_may_wait && self->wait_for_receiver;
  min = self->min_receivers;
  GST_OBJECT_UNLOCK (self);
  if (wait)
    shm_sender_wait_hellos (self->sender, min, unlocks, count_receivers,
        self->negotiator);
}

static void
post_conflict (GstShmSink * self, gchar * conflict)
{
  gboolean post;

  GST_OBJECT_LOCK (self);
  post = !self->conflict_posted;
  self->conflict_posted = TRUE;
  GST_OBJECT_UNLOCK (self);
  if (post) {
    conflict[0] = g_ascii_toupper (conflict[0]);
    GST_ELEMENT_ERROR (self, CORE, NEGOTIATION, ("%s.", conflict), (NULL));
  }
}

/* What upstream may send: what every receiver accepts (system memory only)
 * that fits the area. */
static GstCaps *
gst_shm_sink_get_caps (GstBaseSink * bsink, GstCaps * filter)
{
  GstShmSink *self = GST_SHM_SINK (bsink);
  GstCaps *tmpl = gst_pad_get_pad_template_caps (GST_BASE_SINK_PAD (bsink));
  g_autofree gchar *conflict = NULL;
  GstCaps *base, *caps, *fit;
  guint64 max = 0;

  if (filter) {
    GstCaps *tmp = gst_caps_intersect_full (filter, tmpl,
        GST_CAPS_INTERSECT_FIRST);
    base = gst_shm_negotiator_sysmem (tmp);
    gst_caps_unref (tmp);
    gst_caps_unref (tmpl);
  } else {
    base = tmpl;
  }
  if (self->sender) {
    wait_for_accepts (self);
    max = shm_sender_max_frame_size (self->sender);
  }
  caps = gst_shm_negotiator_intersect (self->negotiator, base, &conflict);
  gst_caps_unref (base);
  if (conflict) {
    post_conflict (self, conflict);
    return caps;
  }
  if (!max || gst_caps_is_empty (caps))
    return caps;
  fit = gst_shm_negotiator_fit (gst_caps_ref (caps), max);
  if (gst_caps_is_empty (fit))
    post_too_small (self, caps, max);
  gst_caps_unref (caps);
  return fit;
}

static gboolean
gst_shm_sink_propose_allocation (GstBaseSink * bsink, GstQuery * query)
{
  GstShmSink *self = GST_SHM_SINK (bsink);
  g_autoptr (ShmSlots) slots = NULL;
  GstBufferPool *pool;
  GstStructure *config;
  GstVideoInfo vinfo, aligned;
  GstCaps *caps;
  guint n;

  gst_query_parse_allocation (query, &caps, NULL);
  if (caps == NULL || !gst_shm_raw_video_info (&vinfo, caps))
    return TRUE;
  aligned = vinfo;
  gst_shm_video_info_align (&aligned);
  gst_query_add_allocation_meta (query, GST_VIDEO_META_API_TYPE, NULL);
  slots = self->sender ? shm_sender_get_slots (self->sender) : NULL;
  if (!slots || shm_slots_get_geometry (slots)->slot_size
      < GST_VIDEO_INFO_SIZE (&aligned)) {
    GST_DEBUG_OBJECT (self, "no area for %" GST_PTR_FORMAT " yet: no pool",
        caps);
    return TRUE;
  }
  n = shm_slots_get_geometry (slots)->n_slots;
  pool = gst_shm_pool_new (slots);
  config = gst_buffer_pool_get_config (pool);
  gst_buffer_pool_config_set_params (config, caps, GST_VIDEO_INFO_SIZE (&vinfo),
      0, n);
  gst_buffer_pool_config_add_option (config, GST_BUFFER_POOL_OPTION_VIDEO_META);
  if (gst_buffer_pool_set_config (pool, config))
    gst_query_add_allocation_pool (query, pool, GST_VIDEO_INFO_SIZE (&vinfo),
        0, n);
  else
    GST_WARNING_OBJECT (self, "pool refused %" GST_PTR_FORMAT, caps);
  gst_object_unref (pool);
  return TRUE;
}

/* The frame's description, but for what the engine fills in. */
static void
describe (GstShmSink * self, GstBuffer * buf, ShmRecord * r)
{
  GstVideoMeta *vmeta;

  gst_shm_times_record (GST_BASE_SINK (self), self->uses_monotonic, buf, r);
  if (!self->is_video)
    return;
  vmeta = gst_buffer_get_video_meta (buf);
  r->n_planes = vmeta ? vmeta->n_planes : GST_VIDEO_INFO_N_PLANES
      (&self->vinfo);
  for (guint i = 0; i < r->n_planes && i < SHM_RECORD_MAX_PLANES; i++) {
    r->plane_offset[i] = vmeta ? vmeta->offset[i]
        : GST_VIDEO_INFO_PLANE_OFFSET (&self->vinfo, i);
    r->plane_stride[i] = vmeta ? vmeta->stride[i]
        : GST_VIDEO_INFO_PLANE_STRIDE (&self->vinfo, i);
  }
}

static GstFlowReturn
wait_for_receiver (GstShmSink * self)
{
  for (;;) {
    switch (shm_sender_wait_ready (self->sender)) {
      case SHM_SEND_OK:
        return GST_FLOW_OK;
      case SHM_SEND_FLUSHING:{
        GstFlowReturn ret = gst_base_sink_wait_preroll (GST_BASE_SINK (self));
        if (ret != GST_FLOW_OK)
          return ret;
        break;
      }
      default:
        return GST_FLOW_ERROR;
    }
  }
}

/* Every slot is held: the frame is dropped, and said so once. */
static GstFlowReturn
drop_frame (GstShmSink * self)
{
  gboolean warn;

  shm_sender_count_drop (self->sender);
  GST_OBJECT_LOCK (self);
  warn = !self->warned_drop;
  self->warned_drop = TRUE;
  GST_OBJECT_UNLOCK (self);
  if (warn)
    GST_ELEMENT_WARNING (self, RESOURCE, WRITE, ("Receivers hold every "
            "slot: dropping frames until one is released."), (NULL));
  return GST_FLOW_OK;
}

/* A buffer from anywhere else than our pool: copied into a free slot.
 * Returns GST_FLOW_CUSTOM_SUCCESS when the area had to grow (again). */
static GstFlowReturn
copy_into_slot (GstShmSink * self, ShmSlots * slots, GstBuffer * buf,
    ShmRecord * r)
{
  g_autoptr (GError) err = NULL;
  gsize size = gst_buffer_get_size (buf);

  if (size > shm_slots_get_geometry (slots)->slot_size) {
    if (!shm_sender_grow (self->sender, size, &err)) {
      gst_shm_post_error (GST_ELEMENT (self), TRUE, err, NULL);
      return GST_FLOW_ERROR;
    }
    return GST_FLOW_CUSTOM_SUCCESS;
  }
  switch (shm_slots_claim (slots, FALSE, shm_sender_flushing_flag
          (self->sender), &r->slot)) {
    case SHM_CLAIM_FLUSHING:
      return GST_FLOW_FLUSHING;
    case SHM_CLAIM_NONE:
      return drop_frame (self);
    case SHM_CLAIM_OK:
      break;
  }
  r->offset = 0;
  r->size = size;
  gst_buffer_extract (buf, 0, shm_slots_get_slot_data (slots, r->slot), size);
  return GST_FLOW_CUSTOM_SUCCESS_1;
}

/* The tiles of @buf that changed since the frame sent before. */
static void
note_damage (GstShmSink * self, GstBuffer * buf, ShmRecord * r)
{
  GstShmDamageSender *ds = &self->damage;

  if (!ds->grid.tile)
    return;
  gst_shm_damage_sender_compute (ds, buf, r);
  GST_OBJECT_LOCK (self);
  self->damage_frames = ds->frames;
  self->damage_tiles = ds->tiles;
  self->damage_changed = ds->tiles_changed;
  self->damage_ns = ds->time_ns;
  GST_OBJECT_UNLOCK (self);
}

static GstFlowReturn
render_once (GstShmSink * self, GstBuffer * buf)
{
  g_autoptr (ShmSlots) slots = shm_sender_get_slots (self->sender);
  GstMemory *mem = gst_buffer_n_memory (buf) == 1
      ? gst_buffer_peek_memory (buf, 0) : NULL;
  ShmRecord r = { 0, };
  ShmSlots *mslots;
  GstFlowReturn ret = GST_FLOW_OK;
  gboolean copied = FALSE;
  gsize offset;

  if (!slots) {
    GST_ELEMENT_ERROR (self, CORE, NEGOTIATION, ("No caps before the first "
            "buffer."), (NULL));
    return GST_FLOW_NOT_NEGOTIATED;
  }
  if (mem && gst_shm_slot_memory_get_slot (mem, &mslots, &r.slot, &offset)
      && mslots == slots) {
    /* upstream rendered into our pool: announce the slot, copy nothing */
    r.offset = offset;
    r.size = mem->size;
  } else {
    ret = copy_into_slot (self, slots, buf, &r);
    if (ret != GST_FLOW_CUSTOM_SUCCESS_1)
      return ret;
    copied = TRUE;
  }
  describe (self, buf, &r);
  note_damage (self, buf, &r);
  ret = shm_sender_send (self->sender, slots, &r, copied)
      == SHM_SEND_REPLACED ? GST_FLOW_CUSTOM_SUCCESS : GST_FLOW_OK;
  if (copied)
    shm_slots_unclaim (slots, r.slot);
  if (ret == GST_FLOW_OK)
    gst_shm_damage_sender_sent (&self->damage, buf);
  return ret;
}

static GstFlowReturn
gst_shm_sink_render (GstBaseSink * bsink, GstBuffer * buf)
{
  GstShmSink *self = GST_SHM_SINK (bsink);
  GstFlowReturn ret;

  do {
    ret = wait_for_receiver (self);
    if (ret == GST_FLOW_OK)
      ret = render_once (self, buf);
    /* (the area was replaced or grown: again, in the new one) */
  } while (ret == GST_FLOW_CUSTOM_SUCCESS);
  return ret;
}

static gboolean
gst_shm_sink_event (GstBaseSink * bsink, GstEvent * event)
{
  GstShmSink *self = GST_SHM_SINK (bsink);

  if (GST_EVENT_TYPE (event) == GST_EVENT_EOS)
    shm_sender_send_eos (self->sender);
  return GST_BASE_SINK_CLASS (parent_class)->event (bsink, event);
}

/* unlock() and unlock_stop(): every wait of the streaming thread (for a
 * receiver, a slot, room in a channel) ends, or may wait again. */
static gboolean
set_flushing (GstBaseSink * bsink, gboolean flushing)
{
  shm_sender_set_flushing (GST_SHM_SINK (bsink)->sender, flushing);
  return TRUE;
}

static gboolean
gst_shm_sink_unlock (GstBaseSink * bsink)
{
  return set_flushing (bsink, TRUE);
}

static gboolean
gst_shm_sink_unlock_stop (GstBaseSink * bsink)
{
  return set_flushing (bsink, FALSE);
}

static GstStateChangeReturn
gst_shm_sink_change_state (GstElement * element, GstStateChange transition)
{
  GstShmSink *self = GST_SHM_SINK (element);

  switch (transition) {
    case GST_STATE_CHANGE_READY_TO_PAUSED:
    case GST_STATE_CHANGE_PAUSED_TO_PLAYING:
      GST_OBJECT_LOCK (self);
      self->query_may_wait = TRUE;
      GST_OBJECT_UNLOCK (self);
      break;
    case GST_STATE_CHANGE_PLAYING_TO_PAUSED:
    case GST_STATE_CHANGE_PAUSED_TO_READY:
      GST_OBJECT_LOCK (self);
      self->query_may_wait = FALSE;
      GST_OBJECT_UNLOCK (self);
      if (self->sender)
        shm_sender_wake_waits (self->sender);
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

static GstStructure *
get_stats (GObject * object)
{
  GstShmSink *self = GST_SHM_SINK (object);
  GstStructure *s = gst_base_sink_get_stats (GST_BASE_SINK (self));
  ShmSenderStats st = { 0, };

  if (self->sender)
    shm_sender_get_stats (self->sender, &st);
  gst_structure_set_name (s, "GstShmSinkStats");
  gst_structure_set (s,
      "frames-rendered", G_TYPE_UINT64, st.frames_rendered,
      "frames-sent", G_TYPE_UINT64, st.frames_sent,
      "frames-zero-copy", G_TYPE_UINT64, st.frames_zero_copy,
      "frames-copied", G_TYPE_UINT64, st.frames_copied,
      "bytes-copied", G_TYPE_UINT64, st.bytes_copied,
      "frames-dropped", G_TYPE_UINT64, st.frames_dropped,
      "frames-unsent", G_TYPE_UINT64, st.frames_unsent,
      "frames-skipped", G_TYPE_UINT64, st.frames_skipped,
      "frames-inline", G_TYPE_UINT64, st.frames_inline,
      "bytes-inline", G_TYPE_UINT64, st.bytes_inline,
      "doorbells", G_TYPE_UINT64, st.doorbells,
      "receivers", G_TYPE_UINT, st.receivers,
      "receivers-connected", G_TYPE_UINT64, st.receivers_connected,
      "sessions", G_TYPE_UINT64, st.sessions,
      "area-size", G_TYPE_UINT64, st.area_size,
      "n-slots", G_TYPE_UINT, st.n_slots,
      "slot-size", G_TYPE_UINT64, st.slot_size, NULL);
  GST_OBJECT_LOCK (self);
  gst_structure_set (s,
      "damage-frames", G_TYPE_UINT64, self->damage_frames,
      "damage-tiles", G_TYPE_UINT64, self->damage_tiles,
      "damage-tiles-changed", G_TYPE_UINT64, self->damage_changed,
      "damage-time", G_TYPE_UINT64, self->damage_ns, NULL);
  GST_OBJECT_UNLOCK (self);
  return s;
}

/* Properties that may change while running. */
static void
running_property_changed (GObject * object, guint prop_id)
{
  GstShmSink *self = GST_SHM_SINK (object);

  if (!self->sender)
    return;
  shm_sender_set_min_ready (self->sender, min_ready (self));
  shm_sender_wake_waits (self->sender);
  GST_OBJECT_LOCK (self);
  shm_sender_set_timeouts (self->sender, GST_CLOCK_TIME_IS_VALID
      (self->slot_timeout) ? (gint64) (self->slot_timeout / GST_USECOND) : -1,
      self->props.peer_timeout / GST_USECOND);
  GST_OBJECT_UNLOCK (self);
}

static void
set_own_property (GObject * object, guint prop_id, const GValue * value,
    GParamSpec * pspec)
{
  GstShmSink *self = GST_SHM_SINK (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_NUM_SLOTS:
      self->num_slots = g_value_get_uint (value);
      break;
    case PROP_SIZE:
      self->size = g_value_get_uint64 (value);
      break;
    case PROP_MODE:
      self->mode = g_value_get_uint (value);
      break;
    case PROP_WAIT_FOR_RECEIVER:
      self->wait_for_receiver = g_value_get_boolean (value);
      break;
    case PROP_MIN_RECEIVERS:
      self->min_receivers = g_value_get_uint (value);
      break;
    case PROP_SLOT_TIMEOUT:
      self->slot_timeout = g_value_get_uint64 (value);
      break;
    case PROP_GROUP:
      g_free (self->group);
      self->group = g_value_dup_string (value);
      break;
    case PROP_DAMAGE:
      self->damage_mode = g_value_get_enum (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
  running_property_changed (object, prop_id);
}

static void
get_own_property (GObject * object, guint prop_id, GValue * value,
    GParamSpec * pspec)
{
  GstShmSink *self = GST_SHM_SINK (object);

  if (prop_id == PROP_RECEIVERS) {
    if (self->sender)
      gst_shm_report_receivers (self->sender, value);
    return;
  }
  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_NUM_SLOTS:
      g_value_set_uint (value, self->num_slots);
      break;
    case PROP_SIZE:
      g_value_set_uint64 (value, self->size);
      break;
    case PROP_MODE:
      g_value_set_uint (value, self->mode);
      break;
    case PROP_WAIT_FOR_RECEIVER:
      g_value_set_boolean (value, self->wait_for_receiver);
      break;
    case PROP_MIN_RECEIVERS:
      g_value_set_uint (value, self->min_receivers);
      break;
    case PROP_SLOT_TIMEOUT:
      g_value_set_uint64 (value, self->slot_timeout);
      break;
    case PROP_GROUP:
      g_value_set_string (value, self->group);
      break;
    case PROP_DAMAGE:
      g_value_set_enum (value, self->damage_mode);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static const GstShmPropClass prop_class = {
  &gst_shm_sink_texts,
  G_STRUCT_OFFSET (GstShmSink, props),
  get_stats,
  set_own_property,
  get_own_property,
  running_property_changed,
};

static void
gst_shm_sink_finalize (GObject * object)
{
  GstShmSink *self = GST_SHM_SINK (object);

  g_free (self->area_path);
  g_free (self->group);
  gst_shm_negotiator_free (self->negotiator);
  gst_shm_props_clear (&self->props);
  G_OBJECT_CLASS (parent_class)->finalize (object);
}

static GstPadProbeReturn
note_upstream_damage (GstPad * pad, GstPadProbeInfo * info, gpointer data)
{
  GstShmSink *self = data;

  if (self->damage.mode != GST_SHM_DAMAGE_UPSTREAM)
    return GST_PAD_PROBE_OK;
  if (info->type & GST_PAD_PROBE_TYPE_BUFFER) {
    gst_shm_damage_sender_note (&self->damage, GST_PAD_PROBE_INFO_BUFFER
        (info));
  } else {
    GstBufferList *list = GST_PAD_PROBE_INFO_BUFFER_LIST (info);
    for (guint i = 0; i < gst_buffer_list_length (list); i++)
      gst_shm_damage_sender_note (&self->damage, gst_buffer_list_get (list, i));
  }
  return GST_PAD_PROBE_OK;
}

static void
gst_shm_sink_init (GstShmSink * self)
{
  self->negotiator = gst_shm_negotiator_new ();
  gst_shm_props_init (&self->props);
  self->num_slots = DEFAULT_NUM_SLOTS;
  self->size = DEFAULT_SIZE;
  self->mode = DEFAULT_MODE;
  self->wait_for_receiver = DEFAULT_WAIT_FOR_RECEIVER;
  self->min_receivers = DEFAULT_MIN_RECEIVERS;
  self->slot_timeout = DEFAULT_SLOT_TIMEOUT;
  self->damage_mode = DEFAULT_DAMAGE;
  /* damage=upstream takes the damage of every buffer that arrives, also
   * of those the sink drops (late) before rendering */
  gst_pad_add_probe (GST_BASE_SINK_PAD (self), GST_PAD_PROBE_TYPE_BUFFER
      | GST_PAD_PROBE_TYPE_BUFFER_LIST, note_upstream_damage, self, NULL);
  /* A last sample would pin a slot after every frame. */
  gst_base_sink_set_last_sample_enabled (GST_BASE_SINK (self), FALSE);
  /* Rendering is an announcement of a few microseconds: no deadline to
   * reserve (a live source without buffering, such as ximagesrc, then
   * needs no queue in front). */
  gst_base_sink_set_processing_deadline (GST_BASE_SINK (self), 0);
}

static void
install_own_properties (GObjectClass * gobject_class)
{
  const GParamFlags ready = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS
      | GST_PARAM_MUTABLE_READY;

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
          "Permissions of the area file and control socket shmsink creates, "
          "and the most an existing area file may give",
          0, 0777, DEFAULT_MODE, ready));
  g_object_class_install_property (gobject_class, PROP_GROUP,
      g_param_spec_string ("group", "Group",
          "Group (a name or a gid) of the area file and control socket "
          "shmsink creates, for a mode that shares them with a group "
          "(NULL: the user's own)", NULL, ready));
  g_object_class_install_property (gobject_class, PROP_WAIT_FOR_RECEIVER,
      g_param_spec_boolean ("wait-for-receiver", "Wait for receiver",
          "Block the stream until a receiver is ready (FALSE: frames with "
          "no receiver go nowhere)", DEFAULT_WAIT_FOR_RECEIVER,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS));
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
  gst_shm_report_install_property (gobject_class, PROP_RECEIVERS);
  g_object_class_install_property (gobject_class, PROP_DAMAGE,
      g_param_spec_enum ("damage", "Damage",
          "Tell receivers which tiles of each frame changed, so that those "
          "that copy frames (out of a PCI BAR, inline, or for a downstream "
          "that keeps them) copy only those (takes effect at the next caps)",
          GST_TYPE_SHM_DAMAGE_MODE, DEFAULT_DAMAGE,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS));
  gst_type_mark_as_plugin_api (GST_TYPE_SHM_DAMAGE_MODE, 0);
}

/**
 * GstShmSink:mode:
 *
 * The permissions of the area file and the control socket that shmsink
 * creates (0600 by default: the sink's user only; the umask plays no
 * part).  Receivers of another user need the read and write bits of their
 * class: mode=0660 with #GstShmSink:group for the members of a group,
 * mode=0666 for everyone.  Receivers that connect to the socket are
 * checked by their credentials too: a process of another user (not root)
 * is refused unless the mode shares the area with its group or with
 * everyone.
 *
 * An existing file is used only when it belongs to the sink's user and
 * gives no access beyond this mode (nor to another group than
 * #GstShmSink:group), or when root made it (a QEMU backing file, a PCI
 * BAR): such a file is used as it is, with a warning when it gives more.
 * Another user's file is refused with an error that names its owner and
 * mode: another local user may have created it first to read the frames.
 */
/**
 * GstShmSink:group:
 *
 * The group of the area file and the control socket that shmsink creates,
 * as a name or a number: with mode=0660, the members of this group may
 * receive.  shmsink's user must be root or a member of the group.  NULL
 * (the default) leaves the group the system gives a new file.
 */
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
/**
 * GstShmSink:min-receivers:
 *
 * With #GstShmSink:wait-for-receiver, how many receivers the caps are
 * negotiated with and must be ready before frames flow: every one of
 * them gets every frame from the first.
 */
static void
gst_shm_sink_class_init (GstShmSinkClass * klass)
{
  gst_shm_class_init_element (GST_ELEMENT_CLASS (klass), &prop_class,
      &sink_template, "Shared memory video sink", "Sink/Video",
      "Sends frames through a token-verified shared memory area "
      "(/dev/shm or QEMU ivshmem) to shmsrc, zero-copy");
  G_OBJECT_CLASS (klass)->finalize = gst_shm_sink_finalize;
  install_own_properties (G_OBJECT_CLASS (klass));

  GST_ELEMENT_CLASS (klass)->set_clock =
      GST_DEBUG_FUNCPTR (gst_shm_sink_set_clock);
  GST_ELEMENT_CLASS (klass)->change_state =
      GST_DEBUG_FUNCPTR (gst_shm_sink_change_state);
  GST_BASE_SINK_CLASS (klass)->start = GST_DEBUG_FUNCPTR (gst_shm_sink_start);
  GST_BASE_SINK_CLASS (klass)->stop = GST_DEBUG_FUNCPTR (gst_shm_sink_stop);
  GST_BASE_SINK_CLASS (klass)->set_caps =
      GST_DEBUG_FUNCPTR (gst_shm_sink_set_caps);
  GST_BASE_SINK_CLASS (klass)->get_caps =
      GST_DEBUG_FUNCPTR (gst_shm_sink_get_caps);
  GST_BASE_SINK_CLASS (klass)->propose_allocation =
      GST_DEBUG_FUNCPTR (gst_shm_sink_propose_allocation);
  GST_BASE_SINK_CLASS (klass)->render = GST_DEBUG_FUNCPTR (gst_shm_sink_render);
  GST_BASE_SINK_CLASS (klass)->event = GST_DEBUG_FUNCPTR (gst_shm_sink_event);
  GST_BASE_SINK_CLASS (klass)->unlock = GST_DEBUG_FUNCPTR (gst_shm_sink_unlock);
  GST_BASE_SINK_CLASS (klass)->unlock_stop =
      GST_DEBUG_FUNCPTR (gst_shm_sink_unlock_stop);
}

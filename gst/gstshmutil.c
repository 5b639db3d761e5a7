/* gst-shm: helpers shared by shmsink and shmsrc
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstshmutil.h"
#include "shmhandshake.h"

#include <string.h>

/**
 * gst_shm_post_peer_message:
 * @event: "connected", "left", "lost", "stalled", "refused"
 *
 * Posts an element message named "shm-peer" with the fields event, peer,
 * session and (when given) reason.
 */
void
gst_shm_post_peer_message (GstElement * element, const gchar * event,
    const gchar * peer, guint64 session, const gchar * reason)
{
  GstStructure *s = gst_structure_new (GST_SHM_PEER_MESSAGE,
      "event", G_TYPE_STRING, event,
      "peer", G_TYPE_STRING, peer ? peer : "",
      "session", G_TYPE_UINT64, session, NULL);

  if (reason)
    gst_structure_set (s, "reason", G_TYPE_STRING, reason, NULL);
  gst_element_post_message (element,
      gst_message_new_element (GST_OBJECT_CAST (element), s));
}

gboolean
gst_shm_clock_is_monotonic (GstClock * clock)
{
  GstClockType type;

  if (clock == NULL || G_OBJECT_TYPE (clock) != GST_TYPE_SYSTEM_CLOCK)
    return FALSE;
  g_object_get (clock, "clock-type", &type, NULL);
  return type == GST_CLOCK_TYPE_MONOTONIC;
}

/* CLOCK_MONOTONIC minus the element's clock, 0 when they are the same. */
GstClockTimeDiff
gst_shm_clock_diff (GstElement * element, gboolean uses_monotonic)
{
  GstClock *clock;
  GstClockTimeDiff diff = 0;

  if (uses_monotonic)
    return 0;
  clock = gst_element_get_clock (element);
  if (clock) {
    diff = GST_CLOCK_DIFF (gst_clock_get_time (clock),
        g_get_monotonic_time () * GST_USECOND);
    gst_object_unref (clock);
  }
  return diff;
}

/**
 * gst_shm_to_monotonic:
 * @diff: CLOCK_MONOTONIC minus the pipeline clock (gst_shm_clock_diff())
 *
 * The sender's side of time: the instant on CLOCK_MONOTONIC at which its
 * sink renders a buffer of timestamp @ts (running time, plus base time and
 * latency), or G_MAXUINT64 ("none").
 */
guint64
gst_shm_to_monotonic (const GstSegment * segment, GstClockTime ts,
    GstClockTime base_time, GstClockTime latency, GstClockTimeDiff diff)
{
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

/**
 * gst_shm_prepare_path:
 * @kind: (out): whether the path is a PCI BAR, and of which kind
 *
 * Turns the "path" property into the file to map: resolves the ivshmem
 * discovery form (ivshmem:N, ivshmem:PCI-ADDRESS), and for a BAR checks
 * that the device is an ivshmem device and enables it when it is disabled
 * (which needs root).  Posts an element error when that fails.
 *
 * Returns: (transfer full) (nullable): the path to map.
 */
static gchar *
prepare_path (GstElement * element, const gchar * path, ShmBarKind * kind)
{
  g_autoptr (GError) err = NULL;
  gchar *file;

  file = shm_ivshmem_resolve (path, "/sys", &err);
  if (!file) {
    GST_ELEMENT_ERROR (element, RESOURCE, NOT_FOUND, ("%s (path=%s).",
            err->message, path), (NULL));
    return NULL;
  }
  if (!shm_ivshmem_prepare (file, TRUE, kind, &err)) {
    GST_ELEMENT_ERROR (element, RESOURCE, OPEN_READ_WRITE, ("%s.",
            err->message), (NULL));
    g_free (file);
    return NULL;
  }
  return file;
}

/* The control channel when none is set: a unix socket PATH.sock beside an
 * area file, the in-band rings for a PCI BAR (a guest has no place to
 * share a socket with its peer). */
static gchar *
default_control (const gchar * path, ShmBarKind kind)
{
  if (kind != SHM_BAR_NONE)
    return g_strdup ("ring");
  return g_strdup_printf ("unix:%s.sock", path);
}

/* --- the properties both elements have ------------------------------------ */

/* The longer documentation of the properties both elements have, each
 * element's (docs/gen-elements.py reads these with the elements'). */
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
 * the failed check is an error for that receiver (and a warning here), as
 * it always is over a unix socket or the in-band rings.
 */
/**
 * GstShmSink:secret:
 *
 * Frames inline let whoever connects read every frame: the token proves
 * shared memory, not identity.  So over a TCP listener that is not a
 * loopback address (tcp:0.0.0.0:PORT, a host's own address), or over
 * vsock, frames go inline only to a receiver that proves this secret,
 * and without a secret such a receiver is refused with an error that
 * says so.  When set, it is required over loopback too.  Each side sends
 * a random challenge in its hello and answers the other's with an
 * HMAC-SHA256 keyed by the secret (docs/protocol.md, "Access"): the
 * secret itself never travels.  Receivers that map the area (the token
 * check passes) need no secret.  Write-only.
 */
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
/**
 * GstShmSrc:secret:
 *
 * The secret to prove to a sender that gives frames inline only to
 * receivers that know it (see shmsink's secret); with it, this receiver
 * also takes frames inline only from a sender that proves the same
 * secret, and fails with an error naming the sender otherwise.  The
 * secret itself never travels.  Write-only.
 */

#define DEFAULT_PEER_TIMEOUT (5 * GST_SECOND)

/* How shmsink and shmsrc word the properties they share (each element's
 * source has their documentation). */
const GstShmPropTexts gst_shm_sink_texts = {
  "Shared memory file, e.g. /dev/shm/NAME (created when missing; an "
      "existing file is used as it is); in a QEMU guest the ivshmem BAR, "
      "/sys/bus/pci/devices/ADDRESS/resource2_wc, or ivshmem:N",
  "Control address receivers connect to: unix:PATH, tcp:HOST:PORT, "
      "vsock:CID:PORT or ring (default: unix:<path>.sock; ring for a PCI "
      "BAR)",
  "A receiver silent this long (no heartbeat) is dropped and its slots "
      "freed; at EOS, the longest wait for every receiver to read what was "
      "sent to it (ns)",
  "Send frames through a TCP/vsock connection when the receiver does not "
      "map the same memory (FALSE: that is an error)",
  "Shared secret a receiver must prove (challenge and HMAC; the secret "
      "never travels) to get frames inline; needed for frames inline over a "
      "TCP listener that is not a loopback address, or over vsock "
      "(write-only)",
  "Frame and receiver counters (with GstBaseSink's)",
  "No path set: set the \"path\" property to the shared memory file, e.g. "
      "path=/dev/shm/NAME.",
};

const GstShmPropTexts gst_shm_src_texts = {
  "Shared memory file the sender uses, as seen from here: /dev/shm/NAME, "
      "or in a QEMU guest an ivshmem BAR such as "
      "/sys/bus/pci/devices/0000:00:04.0/resource2_wc, or ivshmem:N",
  "Control address of the sender: unix:PATH, tcp:HOST:PORT, "
      "vsock:CID:PORT or ring (default: unix:<path>.sock; ring for a PCI "
      "BAR)",
  "Post a \"stalled\" shm-peer message when the sender is silent this "
      "long; on the in-band rings a sender whose heartbeat stops this long "
      "is \"lost\", and a sender that does not answer the hello this long "
      "is given up and looked for again (ns)",
  "Receive frames through a TCP/vsock connection when the sender's area "
      "is not the memory mapped here (FALSE: that is an error)",
  "Shared secret to prove to the sender, and that the sender must prove, "
      "for frames inline (challenge and HMAC; the secret never travels) "
      "(write-only)",
  "Frame counters",
  "No path set: set the \"path\" property to the shared memory file the "
      "sender uses, e.g. path=/dev/shm/NAME.",
};

static GQuark
prop_class_quark (void)
{
  static GQuark q;

  if (!q)
    q = g_quark_from_static_string ("gst-shm-prop-class");
  return q;
}

static const GstShmPropClass *
prop_class (GObject * object, GstShmProps ** props)
{
  const GstShmPropClass *pc = g_type_get_qdata (G_OBJECT_TYPE (object),
      prop_class_quark ());

  *props = (GstShmProps *) G_STRUCT_MEMBER_P (object, pc->props_offset);
  return pc;
}

static void
set_property (GObject * object, guint prop_id, const GValue * value,
    GParamSpec * pspec)
{
  GstShmProps *p;
  const GstShmPropClass *pc = prop_class (object, &p);

  if (prop_id >= GST_SHM_PROP_FIRST_OWN) {
    pc->set_own (object, prop_id, value, pspec);
    return;
  }
  GST_OBJECT_LOCK (object);
  switch (prop_id) {
    case GST_SHM_PROP_PATH:
      g_free (p->path);
      p->path = g_value_dup_string (value);
      break;
    case GST_SHM_PROP_CONTROL:
      g_free (p->control);
      p->control = g_value_dup_string (value);
      break;
    case GST_SHM_PROP_PEER_TIMEOUT:
      p->peer_timeout = g_value_get_uint64 (value);
      break;
    case GST_SHM_PROP_ALLOW_SYMLINK:
      p->allow_symlink = g_value_get_boolean (value);
      break;
    case GST_SHM_PROP_INLINE_FALLBACK:
      p->inline_fallback = g_value_get_boolean (value);
      break;
    case GST_SHM_PROP_SECRET:
      g_free (p->secret);
      p->secret = g_value_dup_string (value);
      if (p->secret && !*p->secret)
        g_clear_pointer (&p->secret, g_free);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (object);
  if (pc->changed)
    pc->changed (object, prop_id);
}

static void
get_property (GObject * object, guint prop_id, GValue * value,
    GParamSpec * pspec)
{
  GstShmProps *p;
  const GstShmPropClass *pc = prop_class (object, &p);

  if (prop_id >= GST_SHM_PROP_FIRST_OWN) {
    pc->get_own (object, prop_id, value, pspec);
    return;
  }
  if (prop_id == GST_SHM_PROP_STATS) {
    g_value_take_boxed (value, pc->stats (object));
    return;
  }
  GST_OBJECT_LOCK (object);
  switch (prop_id) {
    case GST_SHM_PROP_PATH:
      g_value_set_string (value, p->path);
      break;
    case GST_SHM_PROP_CONTROL:
      g_value_set_string (value, p->control);
      break;
    case GST_SHM_PROP_PEER_TIMEOUT:
      g_value_set_uint64 (value, p->peer_timeout);
      break;
    case GST_SHM_PROP_ALLOW_SYMLINK:
      g_value_set_boolean (value, p->allow_symlink);
      break;
    case GST_SHM_PROP_INLINE_FALLBACK:
      g_value_set_boolean (value, p->inline_fallback);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (object);
}

/**
 * gst_shm_class_init_element:
 *
 * What both elements' class_init do: metadata, pad template, the
 * properties both have, and set_property and get_property functions that
 * handle those and hand the element's own to @pc's functions.
 */
void
gst_shm_class_init_element (GstElementClass * element_class,
    const GstShmPropClass * pc, GstStaticPadTemplate * templ,
    const gchar * longname, const gchar * classification,
    const gchar * description)
{
  GObjectClass *klass = G_OBJECT_CLASS (element_class);
  const GstShmPropTexts *t = pc->texts;
  const GParamFlags ready = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS
      | GST_PARAM_MUTABLE_READY;

  g_type_set_qdata (G_OBJECT_CLASS_TYPE (klass), prop_class_quark (),
      (gpointer) pc);
  klass->set_property = set_property;
  klass->get_property = get_property;
  g_object_class_install_property (klass, GST_SHM_PROP_PATH,
      g_param_spec_string ("path", "Path", t->path, NULL, ready));
  g_object_class_install_property (klass, GST_SHM_PROP_CONTROL,
      g_param_spec_string ("control", "Control address", t->control, NULL,
          ready));
  g_object_class_install_property (klass, GST_SHM_PROP_PEER_TIMEOUT,
      g_param_spec_uint64 ("peer-timeout", "Peer timeout", t->peer_timeout,
          GST_SECOND, G_MAXUINT64, DEFAULT_PEER_TIMEOUT,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS));
  g_object_class_install_property (klass, GST_SHM_PROP_ALLOW_SYMLINK,
      g_param_spec_boolean ("allow-symlink", "Allow symlink",
          "Follow a symbolic link at path (refused by default)", FALSE, ready));
  g_object_class_install_property (klass, GST_SHM_PROP_INLINE_FALLBACK,
      g_param_spec_boolean ("inline-fallback", "Inline fallback",
          t->inline_fallback, TRUE, ready));
  g_object_class_install_property (klass, GST_SHM_PROP_SECRET,
      g_param_spec_string ("secret", "Shared secret", t->secret, NULL,
          G_PARAM_WRITABLE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (klass, GST_SHM_PROP_STATS,
      g_param_spec_boxed ("stats", "Statistics", t->stats,
          GST_TYPE_STRUCTURE, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));
  gst_element_class_set_static_metadata (element_class, longname,
      classification, description, "gst-shm developers");
  gst_element_class_add_static_pad_template (element_class, templ);
}

void
gst_shm_props_init (GstShmProps * p)
{
  memset (p, 0, sizeof *p);
  p->peer_timeout = DEFAULT_PEER_TIMEOUT;
  p->inline_fallback = TRUE;
}

void
gst_shm_props_clear (GstShmProps * p)
{
  g_clear_pointer (&p->path, g_free);
  g_clear_pointer (&p->control, g_free);
  g_clear_pointer (&p->secret, g_free);
}

/**
 * gst_shm_props_resolve:
 * @path: (out): the file to map
 * @control: (out): the control address (the default when none is set)
 * @bar: (out): whether @path is a PCI BAR
 *
 * What start() makes of the path and control properties: an element error
 * when the path is missing or does not lead to a file that may be mapped.
 */
gboolean
gst_shm_props_resolve (GstElement * element, GstShmProps * p,
    const GstShmPropTexts * t, gchar ** path, gchar ** control,
    ShmBarKind * bar)
{
  g_autofree gchar *prop = NULL, *dir = NULL;

  GST_OBJECT_LOCK (element);
  prop = g_strdup (p->path);
  *control = g_strdup (p->control);
  GST_OBJECT_UNLOCK (element);
  *path = NULL;
  if (prop == NULL || *prop == '\0') {
    GST_ELEMENT_ERROR (element, RESOURCE, NOT_FOUND, ("%s", t->no_path),
        (NULL));
    goto failed;
  }
  *path = prepare_path (element, prop, bar);
  if (!*path)
    goto failed;
  dir = g_path_get_dirname (*path);
  if (!g_file_test (dir, G_FILE_TEST_IS_DIR)) {
    GST_ELEMENT_ERROR (element, RESOURCE, NOT_FOUND,
        ("Directory \"%s\" does not exist (path=%s).", dir, *path), (NULL));
    goto failed;
  }
  if (!*control)
    *control = default_control (*path, *bar);
  return TRUE;

failed:
  g_clear_pointer (path, g_free);
  g_clear_pointer (control, g_free);
  return FALSE;
}

/**
 * gst_shm_raw_video_info:
 *
 * Like gst_video_info_from_caps(), but only for raw video: encoded caps
 * (image/jpeg, video/x-h264...) have no frame layout here.
 */
gboolean
gst_shm_raw_video_info (GstVideoInfo * info, GstCaps * caps)
{
  return gst_video_info_from_caps (info, caps)
      && GST_VIDEO_INFO_FORMAT (info) != GST_VIDEO_FORMAT_ENCODED;
}

/**
 * gst_shm_post_error:
 * @fatal: an error (else a warning)
 *
 * Posts what an engine reports as an element error or warning, in the
 * category its code names.
 */
void
gst_shm_post_error (GstElement * element, gboolean fatal,
    const GError * error, const gchar * debug)
{
  GQuark domain = GST_RESOURCE_ERROR;
  gint code = GST_RESOURCE_ERROR_FAILED;

  if (error->domain == SHM_ENGINE_ERROR) {
    switch (error->code) {
      case SHM_ENGINE_ERROR_SETTINGS:
        code = GST_RESOURCE_ERROR_SETTINGS;
        break;
      case SHM_ENGINE_ERROR_NOT_FOUND:
        code = GST_RESOURCE_ERROR_NOT_FOUND;
        break;
      case SHM_ENGINE_ERROR_BUSY:
        code = GST_RESOURCE_ERROR_BUSY;
        break;
      case SHM_ENGINE_ERROR_OPEN_READ:
        code = GST_RESOURCE_ERROR_OPEN_READ;
        break;
      case SHM_ENGINE_ERROR_OPEN_WRITE:
        code = GST_RESOURCE_ERROR_OPEN_WRITE;
        break;
      case SHM_ENGINE_ERROR_READ:
        code = GST_RESOURCE_ERROR_READ;
        break;
      case SHM_ENGINE_ERROR_WRITE:
        code = GST_RESOURCE_ERROR_WRITE;
        break;
      case SHM_ENGINE_ERROR_NEGOTIATION:
        domain = GST_CORE_ERROR;
        code = GST_CORE_ERROR_NEGOTIATION;
        break;
      case SHM_ENGINE_ERROR_FORMAT:
        domain = GST_STREAM_ERROR;
        code = GST_STREAM_ERROR_FORMAT;
        break;
      default:
        break;
    }
  } else if (error->domain == SHM_AREA_ERROR) {
    switch (error->code) {
      case SHM_AREA_ERROR_NOT_FOUND:
        code = GST_RESOURCE_ERROR_NOT_FOUND;
        break;
      case SHM_AREA_ERROR_PERMISSION:
        code = GST_RESOURCE_ERROR_OPEN_READ_WRITE;
        break;
      case SHM_AREA_ERROR_NO_SPACE:
      case SHM_AREA_ERROR_TOO_SMALL:
      case SHM_AREA_ERROR_EMPTY:
        code = GST_RESOURCE_ERROR_NO_SPACE_LEFT;
        break;
      case SHM_AREA_ERROR_BUSY:
        code = GST_RESOURCE_ERROR_BUSY;
        break;
      case SHM_AREA_ERROR_SYMLINK:
      case SHM_AREA_ERROR_FOREIGN:
      case SHM_AREA_ERROR_NOT_REGULAR:
        code = GST_RESOURCE_ERROR_SETTINGS;
        break;
      default:
        break;
    }
  }
  gst_element_message_full (element, fatal ? GST_MESSAGE_ERROR
      : GST_MESSAGE_WARNING, domain, code, g_strdup (error->message),
      g_strdup (debug), __FILE__, GST_FUNCTION, __LINE__);
}

/* The engines' callbacks (any thread), as the elements take them. */
void
gst_shm_on_peer_event (const gchar * event, const gchar * peer,
    guint64 session, const gchar * reason, gpointer element)
{
  GST_INFO_OBJECT (element, "peer %s %s: %s", peer, event,
      reason ? reason : "");
  gst_shm_post_peer_message (element, event, peer, session, reason);
}

void
gst_shm_on_message (gboolean fatal, const GError * error,
    const gchar * debug, gpointer element)
{
  gst_shm_post_error (element, fatal, error, debug);
}

static const struct
{
  guint32 gst, wire;
} flag_map[] = {
  {GST_BUFFER_FLAG_LIVE, SHM_BUFFER_FLAG_LIVE},
  {GST_BUFFER_FLAG_DISCONT, SHM_BUFFER_FLAG_DISCONT},
  {GST_BUFFER_FLAG_RESYNC, SHM_BUFFER_FLAG_RESYNC},
  {GST_BUFFER_FLAG_CORRUPTED, SHM_BUFFER_FLAG_CORRUPTED},
  {GST_BUFFER_FLAG_MARKER, SHM_BUFFER_FLAG_MARKER},
  {GST_BUFFER_FLAG_HEADER, SHM_BUFFER_FLAG_HEADER},
  {GST_BUFFER_FLAG_GAP, SHM_BUFFER_FLAG_GAP},
  {GST_BUFFER_FLAG_DROPPABLE, SHM_BUFFER_FLAG_DROPPABLE},
  {GST_BUFFER_FLAG_DELTA_UNIT, SHM_BUFFER_FLAG_DELTA_UNIT},
  {GST_BUFFER_FLAG_NON_DROPPABLE, SHM_BUFFER_FLAG_NON_DROPPABLE},
  {GST_VIDEO_BUFFER_FLAG_INTERLACED, SHM_BUFFER_FLAG_INTERLACED},
  {GST_VIDEO_BUFFER_FLAG_TFF, SHM_BUFFER_FLAG_TFF},
  {GST_VIDEO_BUFFER_FLAG_RFF, SHM_BUFFER_FLAG_RFF},
  {GST_VIDEO_BUFFER_FLAG_ONEFIELD, SHM_BUFFER_FLAG_ONEFIELD},
  {GST_VIDEO_BUFFER_FLAG_MULTIPLE_VIEW, SHM_BUFFER_FLAG_MULTIPLE_VIEW},
  {GST_VIDEO_BUFFER_FLAG_FIRST_IN_BUNDLE, SHM_BUFFER_FLAG_FIRST_IN_BUNDLE},
};

/* Buffer flags that cross, in the record's own bit values. */
guint32
gst_shm_flags_to_wire (GstBufferFlags flags)
{
  guint32 wire = 0;

  for (guint i = 0; i < G_N_ELEMENTS (flag_map); i++)
    if ((flags & flag_map[i].gst) == flag_map[i].gst)
      wire |= flag_map[i].wire;
  return wire;
}

GstBufferFlags
gst_shm_flags_from_wire (guint32 wire)
{
  guint32 flags = 0;

  for (guint i = 0; i < G_N_ELEMENTS (flag_map); i++)
    if (wire & flag_map[i].wire)
      flags |= flag_map[i].gst;
  return flags;
}

/**
 * gst_shm_frame_layout:
 * @info: (nullable): raw video, or NULL for anything else
 *
 * What a receiver checks of every frame of these caps: for each plane its
 * smallest stride, its rows and its smallest size (a palette is 1024
 * bytes), or, for tiled formats, the exact default layout.
 */
void
gst_shm_frame_layout (const GstVideoInfo * info, ShmFrameLayout * l)
{
  const GstVideoFormatInfo *finfo;

  memset (l, 0, sizeof *l);
  if (!info)
    return;
  finfo = info->finfo;
  if (GST_VIDEO_INFO_FPS_N (info) > 0 && GST_VIDEO_INFO_FPS_D (info) > 0)
    l->frame_duration = gst_util_uint64_scale_int (GST_SECOND,
        GST_VIDEO_INFO_FPS_D (info), GST_VIDEO_INFO_FPS_N (info));
  l->n_planes = GST_VIDEO_INFO_N_PLANES (info);
  l->fixed = GST_VIDEO_FORMAT_INFO_IS_TILED (finfo);
  if (l->fixed)
    l->min_size = GST_VIDEO_INFO_SIZE (info);
  for (guint p = 0; p < l->n_planes; p++) {
    gint comp[GST_VIDEO_MAX_COMPONENTS];

    l->min_stride[p] = GST_VIDEO_INFO_PLANE_STRIDE (info, p);
    l->offset[p] = GST_VIDEO_INFO_PLANE_OFFSET (info, p);
    l->stride[p] = GST_VIDEO_INFO_PLANE_STRIDE (info, p);
    gst_video_format_info_component (finfo, p, comp);
    l->rows[p] = comp[0] >= 0 ? GST_VIDEO_FORMAT_INFO_SCALE_HEIGHT (finfo,
        comp[0], GST_VIDEO_INFO_FIELD_HEIGHT (info)) : 1;
    if (GST_VIDEO_FORMAT_INFO_HAS_PALETTE (finfo) && p == 1)
      l->min_bytes[p] = 256 * 4;
  }
}

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
gchar *
gst_shm_prepare_path (GstElement * element, const gchar * path,
    ShmBarKind * kind)
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
gchar *
gst_shm_default_control (const gchar * path, ShmBarKind kind)
{
  if (kind != SHM_BAR_NONE)
    return g_strdup ("ring");
  return g_strdup_printf ("unix:%s.sock", path);
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

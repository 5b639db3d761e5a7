/* gst-shm: caps on the wire
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstshmcaps.h"
#include "shmproto.h"

#include <gst/video/video.h>
#include <string.h>

gchar *
gst_shm_caps_serialize (GstCaps * caps)
{
  return gst_caps_to_string (caps);
}

static gboolean
check_format_value (const GValue * v, GError ** error)
{
  if (G_VALUE_HOLDS_STRING (v)) {
    const gchar *f = g_value_get_string (v);
    if (gst_video_format_from_string (f) == GST_VIDEO_FORMAT_UNKNOWN) {
      g_set_error (error, GST_CORE_ERROR, GST_CORE_ERROR_NEGOTIATION,
          "caps name an unknown video format \"%s\"", f);
      return FALSE;
    }
    return TRUE;
  }
  if (GST_VALUE_HOLDS_LIST (v)) {
    for (guint i = 0; i < gst_value_list_get_size (v); i++)
      if (!check_format_value (gst_value_list_get_value (v, i), error))
        return FALSE;
    return TRUE;
  }
  g_set_error (error, GST_CORE_ERROR, GST_CORE_ERROR_NEGOTIATION,
      "caps have a video format field of type %s", G_VALUE_TYPE_NAME (v));
  return FALSE;
}

/**
 * gst_shm_caps_parse:
 * @need_fixed: the caps describe a stream and must be fixed
 *
 * Parses caps received from a peer: bounded in size and structure count,
 * every raw video format checked against the formats GStreamer knows.
 */
GstCaps *
gst_shm_caps_parse (const gchar * str, gboolean need_fixed, GError ** error)
{
  g_autoptr (GstCaps) caps = NULL;
  guint n;

  if (strlen (str) > SHM_MAX_CAPS) {
    g_set_error (error, GST_CORE_ERROR, GST_CORE_ERROR_NEGOTIATION,
        "caps of %" G_GSIZE_FORMAT " bytes exceed the limit of %d",
        strlen (str), SHM_MAX_CAPS);
    return NULL;
  }
  caps = gst_caps_from_string (str);
  if (!caps) {
    g_set_error (error, GST_CORE_ERROR, GST_CORE_ERROR_NEGOTIATION,
        "caps \"%.200s\" do not parse", str);
    return NULL;
  }
  n = gst_caps_get_size (caps);
  if (n > GST_SHM_CAPS_MAX_STRUCTURES) {
    g_set_error (error, GST_CORE_ERROR, GST_CORE_ERROR_NEGOTIATION,
        "caps have %u structures, the limit is %d", n,
        GST_SHM_CAPS_MAX_STRUCTURES);
    return NULL;
  }
  for (guint i = 0; i < n; i++) {
    GstStructure *s = gst_caps_get_structure (caps, i);
    const GValue *f;

    if (gst_structure_has_name (s, "video/x-raw")
        && (f = gst_structure_get_value (s, "format"))
        && !check_format_value (f, error))
      return NULL;
  }
  if (need_fixed && !gst_caps_is_fixed (caps)) {
    g_set_error (error, GST_CORE_ERROR, GST_CORE_ERROR_NEGOTIATION,
        "stream caps \"%.200s\" are not fixed", str);
    return NULL;
  }
  return g_steal_pointer (&caps);
}

/**
 * gst_shm_caps_sysmem:
 *
 * Returns: (transfer full): @caps with every structure's features set to
 * system memory (what a shared area carries), duplicates merged.
 */
GstCaps *
gst_shm_caps_sysmem (GstCaps * caps)
{
  GstCaps *out;

  if (gst_caps_is_any (caps) || gst_caps_is_empty (caps))
    return gst_caps_ref (caps);
  out = gst_caps_new_empty ();
  for (guint i = 0; i < gst_caps_get_size (caps); i++) {
    GstCapsFeatures *f = gst_caps_get_features (caps, i);
    if (f && !gst_caps_features_is_any (f)
        && !gst_caps_features_is_equal (f,
            GST_CAPS_FEATURES_MEMORY_SYSTEM_MEMORY))
      continue;
    out = gst_caps_merge_structure (out,
        gst_structure_copy (gst_caps_get_structure (caps, i)));
  }
  return out;
}

/* gst-shm: the caps negotiation unit
 *
 * Capabilities cross in hellos and caps messages as two keys:
 *   "caps"          s  GstCaps in GStreamer's string form (gst_caps_to_string)
 *   "caps-version"  u  1; a peer of a newer version keeps "caps" readable
 *                      by version 1 and adds keys of its own
 * A receiver's hello carries the caps its downstream accepts; the sink's
 * caps messages carry the fixed caps of the frames that follow.
 * docs/protocol.md describes the mapping and its bounds.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstshmnegotiator.h"
#include "shmproto.h"

#include <gst/video/video.h>
#include <string.h>

typedef struct
{
  gconstpointer id;
  gchar *name;
  GstCaps *caps;
} Receiver;

struct _GstShmNegotiator
{
  GMutex lock;
  GPtrArray *receivers;         /* Receiver*, in the order they said hello */
};

static void
receiver_free (Receiver * r)
{
  g_free (r->name);
  gst_caps_unref (r->caps);
  g_free (r);
}

GstShmNegotiator *
gst_shm_negotiator_new (void)
{
  GstShmNegotiator *n = g_new0 (GstShmNegotiator, 1);

  g_mutex_init (&n->lock);
  n->receivers = g_ptr_array_new_with_free_func ((GDestroyNotify)
      receiver_free);
  return n;
}

void
gst_shm_negotiator_free (GstShmNegotiator * n)
{
  g_ptr_array_unref (n->receivers);
  g_mutex_clear (&n->lock);
  g_free (n);
}

/* --- caps <-> text ------------------------------------------------------- */

gchar *
gst_shm_negotiator_serialize (GstCaps * caps)
{
  return gst_caps_to_string (caps);
}

static gboolean
check_format_value (const GValue * v, GError ** error)
{
  if (G_VALUE_HOLDS_STRING (v)) {
    const gchar *f = g_value_get_string (v);
    /* (the text NULL reads as a string that is no string) */
    if (!f || gst_video_format_from_string (f) == GST_VIDEO_FORMAT_UNKNOWN) {
      g_set_error (error, GST_CORE_ERROR, GST_CORE_ERROR_NEGOTIATION,
          "caps name an unknown video format \"%s\"", f ? f : "NULL");
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

/* Inside quotes: steps over an escaped character, or sees the quotes
 * close. */
static void
skip_quoted (const gchar ** c, gboolean * quoted)
{
  if (**c == '\\' && (*c)[1])
    (*c)++;
  else if (**c == '"')
    *quoted = FALSE;
}

/* GStreamer's parser asserts (a critical warning) on a structure name
 * that does not start with a letter: such caps are refused before it sees
 * them.  Structures start at the beginning and after each ';' outside
 * quotes; ANY, EMPTY and NONE start with letters too. */
static gboolean
check_structure_names (const gchar * str, GError ** error)
{
  gboolean quoted = FALSE, start = TRUE;

  for (const gchar * c = str; *c; c++) {
    if (quoted) {
      skip_quoted (&c, &quoted);
      continue;
    }
    if (start) {
      if (g_ascii_isspace (*c))
        continue;
      if (!g_ascii_isalpha (*c)) {
        g_set_error (error, GST_CORE_ERROR, GST_CORE_ERROR_NEGOTIATION,
            "caps \"%.200s\" have a structure name that does not start "
            "with a letter", str);
        return FALSE;
      }
      start = FALSE;
    }
    if (*c == '"')
      quoted = TRUE;
    else if (*c == ';')
      start = TRUE;
  }
  return TRUE;
}

/* GStreamer's parser takes time exponential in the depth of brackets
 * that do not close: every bracket outside quotes must close, at most
 * MAX_NESTING deep (caps that describe video need two or three). */
#define MAX_NESTING 8

static gboolean
check_nesting (const gchar * str, GError ** error)
{
  gchar open[MAX_NESTING];
  gboolean quoted = FALSE;
  guint depth = 0;

  for (const gchar * c = str; *c; c++) {
    const gchar *pair;

    if (quoted) {
      skip_quoted (&c, &quoted);
      continue;
    }
    if (*c == '"') {
      quoted = TRUE;
    } else if ((pair = strchr ("([{<", *c))) {
      if (depth == MAX_NESTING)
        goto refuse;
      open[depth++] = ")]}>"[pair - "([{<"];
    } else if (strchr (")]}>", *c)) {
      if (depth == 0 || open[depth - 1] != *c)
        goto refuse;
      depth--;
    }
  }
  if (depth == 0 && !quoted)
    return TRUE;
refuse:
  g_set_error (error, GST_CORE_ERROR, GST_CORE_ERROR_NEGOTIATION,
      "caps \"%.200s\" have brackets that do not match, or nest more than "
      "%d deep", str, MAX_NESTING);
  return FALSE;
}

/* ... and on a fraction whose numerator or denominator reads as -2^31
 * (2^31 wraps to it): a number outside quotes must be within
 * +-(2^31 - 1). */
static gboolean
check_numbers (const gchar * str, GError ** error)
{
  gboolean quoted = FALSE;

  for (const gchar * c = str; *c; c++) {
    if (quoted) {
      skip_quoted (&c, &quoted);
      continue;
    }
    if (*c == '"')
      quoted = TRUE;
    else if (g_ascii_isdigit (*c) && (c == str
            || !(g_ascii_isalnum (c[-1]) || c[-1] == '_' || c[-1] == '.'))) {
      gchar *end;
      guint64 v = g_ascii_strtoull (c, &end, 10);
      if (v > G_MAXINT32) {
        g_set_error (error, GST_CORE_ERROR, GST_CORE_ERROR_NEGOTIATION,
            "caps \"%.200s\" have a number beyond %d", str, G_MAXINT32);
        return FALSE;
      }
      c = end - 1;
    }
  }
  return TRUE;
}

/* The types a peer's caps may name: what caps of video, images and
 * encoded streams use.  GStreamer's deserializers of other types (caps and
 * structures inside caps, samples, tag lists...) are more than a peer
 * needs, and some assert on bad text. */
static const gchar *const allowed_casts[] = {
  "int", "i", "uint", "u", "int64", "uint64", "double", "d", "float", "f",
  "fraction", "string", "str", "s", "boolean", "bool", "b", "bitmask",
  "GstVideoMultiviewFlagsSet", "buffer", NULL
};

/* A buffer's value, or an array or list of them: hexadecimal digits, two
 * a byte (GStreamer's reader asserts on anything else). */
static gboolean
hex_value (const gchar * v)
{
  gchar close = 0;

  while (*v == ' ')
    v++;
  if (*v == '<' || *v == '{')
    close = *v++ == '<' ? '>' : '}';
  for (;;) {
    gsize n = 0;

    while (*v == ' ')
      v++;
    while (g_ascii_isxdigit (v[n]))
      n++;
    if (n % 2)
      return FALSE;
    v += n;
    while (*v == ' ')
      v++;
    if (!close)
      return !*v || strchr (",;}]>", *v);
    if (*v != ',')
      return *v == close;
    v++;
  }
}

/* ... and every "(type)" before a value (not the features after a
 * structure's name) must name one of those. */
static gboolean
check_casts (const gchar * str, GError ** error)
{
  gboolean quoted = FALSE, in_name = TRUE;

  for (const gchar * c = str; *c; c++) {
    g_autofree gchar *type = NULL;
    const gchar *close;

    if (quoted) {
      skip_quoted (&c, &quoted);
      continue;
    }
    if (*c == '"')
      quoted = TRUE;
    else if (*c == ';')
      in_name = TRUE;
    else if (*c == ',')
      in_name = FALSE;
    if (*c != '(' || in_name)
      continue;
    close = strchr (c, ')');
    if (!close)
      break;                    /* (check_nesting refused it) */
    type = g_strstrip (g_strndup (c + 1, close - c - 1));
    if (!g_strv_contains (allowed_casts, type)
        || (g_str_equal (type, "buffer") && !hex_value (close + 1))) {
      g_set_error (error, GST_CORE_ERROR, GST_CORE_ERROR_NEGOTIATION,
          "caps \"%.200s\" have a value of type \"%.64s\" that is not "
          "accepted from a peer, or not valid", str, type);
      return FALSE;
    }
    c = close;
  }
  return TRUE;
}

/* One bound of a range: an integer, a decimal number or a fraction. */
static gboolean
range_bound (const gchar * text, gdouble * v, gint64 * i, gboolean * integer)
{
  g_autofree gchar *t = g_strstrip (g_strdup (text));
  const gchar *slash = strchr (t, '/');
  gchar *end;

  *integer = FALSE;
  if (!*t)
    return FALSE;
  if (slash) {
    gint64 num = g_ascii_strtoll (t, &end, 10), den;
    if (end != slash)
      return FALSE;
    den = g_ascii_strtoll (slash + 1, &end, 10);
    if (*end || den == 0)
      return FALSE;
    *v = (gdouble) num / (gdouble) den;
    return TRUE;
  }
  *i = g_ascii_strtoll (t, &end, 10);
  if (!*end) {
    /* (GStreamer reads an integer range as 32-bit: a bound beyond wraps) */
    if (*i < G_MININT32 || *i > G_MAXINT32)
      return FALSE;
    *integer = TRUE;
    *v = (gdouble) * i;
    return TRUE;
  }
  *v = g_ascii_strtod (t, &end);
  return !*end;
}

/* GStreamer's parser also asserts on a range whose start is not below its
 * end, or whose step does not divide both: every [a, b] or [a, b, step]
 * outside quotes must be one it takes. */
static gboolean
check_ranges (const gchar * str, GError ** error)
{
  gboolean quoted = FALSE;

  for (const gchar * c = str; *c; c++) {
    g_autofree gchar *inner = NULL;
    g_auto (GStrv) parts = NULL;
    const gchar *close;
    gdouble v[3];
    gint64 iv[3];
    gboolean integer[3], ok;
    guint n;

    if (quoted) {
      skip_quoted (&c, &quoted);
      continue;
    }
    if (*c == '"')
      quoted = TRUE;
    if (*c != '[')
      continue;
    close = strchr (c, ']');
    if (!close)
      break;                    /* (check_nesting refused it) */
    inner = g_strndup (c + 1, close - c - 1);
    parts = g_strsplit (inner, ",", 4);
    n = g_strv_length (parts);
    ok = n == 2 || n == 3;
    for (guint k = 0; ok && k < n; k++)
      ok = range_bound (parts[k], &v[k], &iv[k], &integer[k]);
    ok = ok && v[0] < v[1];
    if (ok && n == 3)
      ok = integer[0] && integer[1] && integer[2] && iv[2] > 0
          && iv[0] % iv[2] == 0 && iv[1] % iv[2] == 0;
    if (!ok) {
      g_set_error (error, GST_CORE_ERROR, GST_CORE_ERROR_NEGOTIATION,
          "caps \"%.200s\" have an invalid range [%.100s]", str, inner);
      return FALSE;
    }
    c = close;
  }
  return TRUE;
}

/**
 * gst_shm_negotiator_parse:
 * @stream: the caps describe a stream: they must be fixed, and raw video
 *   caps must describe a frame
 *
 * Parses caps received from a peer: at most 64 KiB of text, 64 structures
 * of 64 fields, every raw video format one GStreamer knows.
 */
GstCaps *
gst_shm_negotiator_parse (const gchar * str, gboolean stream, GError ** error)
{
  g_autoptr (GstCaps) caps = NULL;
  gsize len = strlen (str);
  guint n;

  if (len > GST_SHM_CAPS_MAX_BYTES) {
    g_set_error (error, GST_CORE_ERROR, GST_CORE_ERROR_NEGOTIATION,
        "caps of %" G_GSIZE_FORMAT " bytes exceed the limit of %d", len,
        GST_SHM_CAPS_MAX_BYTES);
    return NULL;
  }
  if (!check_nesting (str, error) || !check_structure_names (str, error)
      || !check_ranges (str, error) || !check_numbers (str, error)
      || !check_casts (str, error))
    return NULL;
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

    if (gst_structure_n_fields (s) > GST_SHM_CAPS_MAX_FIELDS) {
      g_set_error (error, GST_CORE_ERROR, GST_CORE_ERROR_NEGOTIATION,
          "caps structure %s has %d fields, the limit is %d",
          gst_structure_get_name (s), gst_structure_n_fields (s),
          GST_SHM_CAPS_MAX_FIELDS);
      return NULL;
    }
    if (gst_structure_has_name (s, "video/x-raw")
        && (f = gst_structure_get_value (s, "format"))
        && !check_format_value (f, error))
      return NULL;
  }
  if (stream) {
    GstVideoInfo info;
    GstCapsFeatures *features;
    if (gst_caps_is_any (caps) || gst_caps_is_empty (caps)
        || !gst_caps_is_fixed (caps)) {
      g_set_error (error, GST_CORE_ERROR, GST_CORE_ERROR_NEGOTIATION,
          "stream caps \"%.200s\" are not fixed", str);
      return NULL;
    }
    /* the area carries system memory: anything else would be misused */
    features = gst_caps_get_features (caps, 0);
    if (features && !gst_caps_features_is_equal (features,
            GST_CAPS_FEATURES_MEMORY_SYSTEM_MEMORY)) {
      g_autofree gchar *f = gst_caps_features_to_string (features);
      g_set_error (error, GST_CORE_ERROR, GST_CORE_ERROR_NEGOTIATION,
          "stream caps have memory features %s; a shared area carries "
          "system memory", f);
      return NULL;
    }
    if (gst_structure_has_name (gst_caps_get_structure (caps, 0),
            "video/x-raw") && (!gst_video_info_from_caps (&info, caps)
            || GST_VIDEO_INFO_SIZE (&info) == 0)) {
      g_set_error (error, GST_CORE_ERROR, GST_CORE_ERROR_NEGOTIATION,
          "raw video caps \"%.200s\" do not describe a frame", str);
      return NULL;
    }
  }
  return g_steal_pointer (&caps);
}

/**
 * gst_shm_negotiator_write:
 *
 * Puts @caps in a hello or caps message.
 */
void
gst_shm_negotiator_write (GVariantDict * dict, GstCaps * caps)
{
  g_autofree gchar *str = gst_shm_negotiator_serialize (caps);

  g_variant_dict_insert (dict, GST_SHM_CAPS_KEY, "s", str);
  g_variant_dict_insert (dict, GST_SHM_CAPS_VERSION_KEY, "u",
      GST_SHM_CAPS_VERSION);
}

/**
 * gst_shm_negotiator_read:
 *
 * Returns: (transfer full) (nullable): the caps of a hello or caps
 * message; NULL with @error unset when the message has none.
 */
GstCaps *
gst_shm_negotiator_read (GVariant * body, gboolean stream, GError ** error)
{
  const gchar *str;
  guint32 version;

  if (!shm_msg_has (body, GST_SHM_CAPS_KEY))
    return NULL;
  /* caps-version is informational: "caps" stays readable by version 1 */
  if (shm_msg_has (body, GST_SHM_CAPS_VERSION_KEY)
      && !shm_msg_get_u32 (body, GST_SHM_CAPS_VERSION_KEY, 1, G_MAXUINT32,
          &version, error))
    return NULL;
  if (!shm_msg_get_string (body, GST_SHM_CAPS_KEY, GST_SHM_CAPS_MAX_BYTES,
          &str, error))
    return NULL;
  return gst_shm_negotiator_parse (str, stream, error);
}

/**
 * gst_shm_negotiator_sysmem:
 *
 * Returns: (transfer full): @caps without the structures whose features are
 * not system memory: a shared area carries system memory only.
 */
GstCaps *
gst_shm_negotiator_sysmem (GstCaps * caps)
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

/**
 * gst_shm_negotiator_fit:
 * @caps: (transfer full)
 * @max: the largest frame a slot holds (0: any)
 *
 * Returns: (transfer full): @caps without the raw video formats whose
 * frames (of a fixed size, in the slots' layout) do not fit @max bytes.
 */
GstCaps *
gst_shm_negotiator_fit (GstCaps * caps, guint64 max)
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

/* --- video layout ------------------------------------------------------- */

/**
 * gst_shm_video_info_align:
 *
 * Pads strides to GST_SHM_STRIDE_ALIGN bytes (for formats whose planes can
 * be padded) and recomputes offsets and size.
 */
gboolean
gst_shm_video_info_align (GstVideoInfo * info)
{
  GstVideoAlignment align;

  gst_video_alignment_reset (&align);
  for (guint i = 0; i < GST_VIDEO_MAX_PLANES; i++)
    align.stride_align[i] = GST_SHM_STRIDE_ALIGN - 1;
  return gst_video_info_align (info, &align);
}

/* --- receivers ------------------------------------------------------------ */

static gint
find_locked (GstShmNegotiator * n, gconstpointer id)
{
  for (guint i = 0; i < n->receivers->len; i++)
    if (((Receiver *) g_ptr_array_index (n->receivers, i))->id == id)
      return i;
  return -1;
}

/**
 * gst_shm_negotiator_set_receiver:
 * @accepted: (nullable): what the receiver's downstream accepts; NULL for
 *   anything
 */
void
gst_shm_negotiator_set_receiver (GstShmNegotiator * n, gconstpointer id,
    const gchar * name, GstCaps * accepted)
{
  Receiver *r;
  gint i;

  g_mutex_lock (&n->lock);
  i = find_locked (n, id);
  if (i >= 0) {
    r = g_ptr_array_index (n->receivers, i);
    gst_caps_unref (r->caps);
  } else {
    r = g_new0 (Receiver, 1);
    r->id = id;
    r->name = g_strdup (name);
    g_ptr_array_add (n->receivers, r);
  }
  r->caps = accepted ? gst_shm_negotiator_sysmem (accepted)
      : gst_caps_new_any ();
  g_mutex_unlock (&n->lock);
}

void
gst_shm_negotiator_remove_receiver (GstShmNegotiator * n, gconstpointer id)
{
  gint i;

  g_mutex_lock (&n->lock);
  i = find_locked (n, id);
  if (i >= 0)
    g_ptr_array_remove_index (n->receivers, i);
  g_mutex_unlock (&n->lock);
}

guint
gst_shm_negotiator_n_receivers (GstShmNegotiator * n)
{
  guint len;

  g_mutex_lock (&n->lock);
  len = n->receivers->len;
  g_mutex_unlock (&n->lock);
  return len;
}

/**
 * gst_shm_negotiator_intersect:
 * @filter: (nullable): what upstream may produce
 * @conflict: (out) (optional): when the receivers accept no common caps, a
 *   message that names each receiver and its caps
 *
 * Returns: (transfer full): what every receiver accepts, in the first
 * receiver's order of preference, intersected with @filter (ANY when no
 * receiver said what it accepts).
 */
GstCaps *
gst_shm_negotiator_intersect (GstShmNegotiator * n, GstCaps * filter,
    gchar ** conflict)
{
  GstCaps *all = gst_caps_new_any ();
  GstCaps *out;

  if (conflict)
    *conflict = NULL;
  g_mutex_lock (&n->lock);
  for (guint i = 0; i < n->receivers->len; i++) {
    Receiver *r = g_ptr_array_index (n->receivers, i);
    GstCaps *tmp = gst_caps_intersect_full (all, r->caps,
        GST_CAPS_INTERSECT_FIRST);
    gst_caps_unref (all);
    all = tmp;
  }
  if (gst_caps_is_empty (all) && conflict) {
    GString *s = g_string_new ("the receivers accept no common caps:");
    for (guint i = 0; i < n->receivers->len; i++) {
      Receiver *r = g_ptr_array_index (n->receivers, i);
      gchar *c = gst_caps_to_string (r->caps);
      g_string_append_printf (s, "%s %s accepts %s", i ? ";" : "", r->name, c);
      g_free (c);
    }
    *conflict = g_string_free (s, FALSE);
  }
  g_mutex_unlock (&n->lock);

  if (!filter)
    return all;
  out = gst_caps_intersect_full (all, filter, GST_CAPS_INTERSECT_FIRST);
  gst_caps_unref (all);
  return out;
}

/**
 * gst_shm_negotiator_accepts:
 *
 * Returns: whether the receiver @id accepts @stream_caps (TRUE for an
 * unknown receiver: nothing to refuse it on).
 */
gboolean
gst_shm_negotiator_accepts (GstShmNegotiator * n, gconstpointer id,
    GstCaps * stream_caps)
{
  gboolean ok = TRUE;
  gint i;

  g_mutex_lock (&n->lock);
  i = find_locked (n, id);
  if (i >= 0)
    ok = gst_caps_can_intersect (stream_caps,
        ((Receiver *) g_ptr_array_index (n->receivers, i))->caps);
  g_mutex_unlock (&n->lock);
  return ok;
}

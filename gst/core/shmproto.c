/* gst-shm: control messages
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "shmproto.h"

#include <string.h>

G_DEFINE_QUARK (shm - proto - error - quark, shm_proto_error);

static const gchar *const type_names[SHM_MSG_LAST] = {
  [SHM_MSG_HELLO] = "hello",
  [SHM_MSG_MMAP] = "mmap",
  [SHM_MSG_MMAP_REPLY] = "mmap-reply",
  [SHM_MSG_READY] = "ready",
  [SHM_MSG_CAPS] = "caps",
  [SHM_MSG_PING] = "ping",
  [SHM_MSG_BYE] = "bye",
  [SHM_MSG_ERROR] = "error",
  [SHM_MSG_ACCEPT] = "accept",
  [SHM_MSG_RECORD] = "record",
  [SHM_MSG_DOORBELL] = "doorbell",
  [SHM_MSG_REPORT] = "report",
  [SHM_MSG_REFRESH] = "refresh",
};

const gchar *
shm_msg_type_name (guint32 type)
{
  if (type < SHM_MSG_LAST && type_names[type])
    return type_names[type];
  return "unknown";
}

static void
put32 (guint8 * p, guint32 v)
{
  v = GUINT32_TO_LE (v);
  memcpy (p, &v, 4);
}

static guint32
get32 (const guint8 * p)
{
  guint32 v;
  memcpy (&v, p, 4);
  return GUINT32_FROM_LE (v);
}

/**
 * shm_msg_encode_into:
 * @body: (transfer floating) (nullable): an a{sv}; NULL for an empty one
 * @payload_len: bytes of raw payload the caller sends right after
 *
 * Appends the frame header and body of one message to @out.
 *
 * Returns: the number of bytes appended.
 */
gsize
shm_msg_encode_into (GByteArray * out, guint32 type, GVariant * body,
    guint32 payload_len)
{
  g_autoptr (GVariant) le = NULL;
  guint8 hdr[SHM_MSG_HEADER_SIZE];
  gsize len;

  if (body == NULL)
    body = g_variant_new_array (G_VARIANT_TYPE ("{sv}"), NULL, 0);
  g_variant_ref_sink (body);
  g_return_val_if_fail (g_variant_is_of_type (body, G_VARIANT_TYPE_VARDICT), 0);

  if (G_BYTE_ORDER == G_BIG_ENDIAN)
    le = g_variant_byteswap (body);
  else
    le = g_variant_ref (body);
  g_variant_unref (body);

  len = g_variant_get_size (le);
  g_return_val_if_fail (len <= SHM_MSG_MAX_BODY, 0);

  put32 (hdr, SHM_MSG_MAGIC);
  put32 (hdr + 4, type);
  put32 (hdr + 8, len);
  put32 (hdr + 12, payload_len);
  g_byte_array_append (out, hdr, sizeof hdr);
  /* g_variant_get_data() serialises into an aligned buffer of its own; a
   * message inside @out may start at any offset. */
  g_byte_array_append (out, g_variant_get_data (le), len);
  return sizeof hdr + len;
}

GBytes *
shm_msg_encode (guint32 type, GVariant * body)
{
  GByteArray *out = g_byte_array_new ();

  shm_msg_encode_into (out, type, body, 0);
  return g_byte_array_free_to_bytes (out);
}

/**
 * shm_msg_parse:
 * @max_payload: the largest raw payload the caller accepts
 * @consumed: (out): bytes used by the message when SHM_PARSE_OK
 * @body: (out) (transfer full): the body, in normal form
 * @payload: (out) (transfer none): raw payload inside @data
 *
 * Parses one message from the front of @data.  Every field of the frame
 * header is checked before the body is touched; the body must be a GVariant
 * a{sv} in normal form.
 */
ShmParseResult
shm_msg_parse (const guint8 * data, gsize len, guint32 max_payload,
    gsize * consumed, guint32 * type, GVariant ** body,
    const guint8 ** payload, gsize * payload_len, GError ** error)
{
  guint32 magic, t, blen, plen;
  GVariant *v;
  GBytes *bytes;

  if (len < SHM_MSG_HEADER_SIZE)
    return SHM_PARSE_NEED_MORE;

  magic = get32 (data);
  t = get32 (data + 4);
  blen = get32 (data + 8);
  plen = get32 (data + 12);
  if (magic != SHM_MSG_MAGIC) {
    g_set_error (error, SHM_PROTO_ERROR, SHM_PROTO_ERROR_MALFORMED,
        "malformed control message: bad magic 0x%08x", magic);
    return SHM_PARSE_ERROR;
  }
  if (t == 0 || t > G_MAXUINT16) {
    g_set_error (error, SHM_PROTO_ERROR, SHM_PROTO_ERROR_MALFORMED,
        "malformed control message: invalid type %u", t);
    return SHM_PARSE_ERROR;
  }
  if (blen > SHM_MSG_MAX_BODY) {
    g_set_error (error, SHM_PROTO_ERROR, SHM_PROTO_ERROR_MALFORMED,
        "malformed control message: %s body of %u bytes exceeds the limit "
        "of %d", shm_msg_type_name (t), blen, SHM_MSG_MAX_BODY);
    return SHM_PARSE_ERROR;
  }
  if (plen > max_payload || plen > SHM_MSG_MAX_PAYLOAD) {
    g_set_error (error, SHM_PROTO_ERROR, SHM_PROTO_ERROR_MALFORMED,
        "malformed control message: %s payload of %u bytes exceeds the "
        "limit of %u", shm_msg_type_name (t), plen,
        MIN (max_payload, SHM_MSG_MAX_PAYLOAD));
    return SHM_PARSE_ERROR;
  }
  if (len - SHM_MSG_HEADER_SIZE < (gsize) blen + plen)
    return SHM_PARSE_NEED_MORE;

  bytes = g_bytes_new (data + SHM_MSG_HEADER_SIZE, blen);
  v = g_variant_new_from_bytes (G_VARIANT_TYPE_VARDICT, bytes, FALSE);
  g_bytes_unref (bytes);
  g_variant_ref_sink (v);
  if (!g_variant_is_normal_form (v)) {
    g_variant_unref (v);
    g_set_error (error, SHM_PROTO_ERROR, SHM_PROTO_ERROR_MALFORMED,
        "malformed control message: %s body of %u bytes is not a valid "
        "dictionary", shm_msg_type_name (t), blen);
    return SHM_PARSE_ERROR;
  }
  if (G_BYTE_ORDER == G_BIG_ENDIAN) {
    GVariant *sw = g_variant_byteswap (v);
    g_variant_unref (v);
    v = sw;
  }

  *consumed = SHM_MSG_HEADER_SIZE + (gsize) blen + plen;
  *type = t;
  *body = v;
  *payload = data + SHM_MSG_HEADER_SIZE + blen;
  *payload_len = plen;
  return SHM_PARSE_OK;
}

/* --- accessors ---------------------------------------------------------- */

static GVariant *
lookup (GVariant * body, const gchar * key, const GVariantType * type,
    GError ** error)
{
  GVariant *v = g_variant_lookup_value (body, key, NULL);

  if (v == NULL) {
    g_set_error (error, SHM_PROTO_ERROR, SHM_PROTO_ERROR_INVALID,
        "field \"%s\" is missing", key);
    return NULL;
  }
  if (!g_variant_is_of_type (v, type)) {
    g_set_error (error, SHM_PROTO_ERROR, SHM_PROTO_ERROR_INVALID,
        "field \"%s\" has type %s, expected %s", key,
        g_variant_get_type_string (v), (const gchar *) type);
    g_variant_unref (v);
    return NULL;
  }
  return v;
}

gboolean
shm_msg_has (GVariant * body, const gchar * key)
{
  g_autoptr (GVariant) v = g_variant_lookup_value (body, key, NULL);
  return v != NULL;
}

gboolean
shm_msg_get_u32 (GVariant * body, const gchar * key, guint32 min,
    guint32 max, guint32 * out, GError ** error)
{
  g_autoptr (GVariant) v = lookup (body, key, G_VARIANT_TYPE_UINT32, error);
  guint32 x;

  if (!v)
    return FALSE;
  x = g_variant_get_uint32 (v);
  if (x < min || x > max) {
    g_set_error (error, SHM_PROTO_ERROR, SHM_PROTO_ERROR_INVALID,
        "field \"%s\" is %u, outside %u..%u", key, x, min, max);
    return FALSE;
  }
  *out = x;
  return TRUE;
}

gboolean
shm_msg_get_u64 (GVariant * body, const gchar * key, guint64 min,
    guint64 max, guint64 * out, GError ** error)
{
  g_autoptr (GVariant) v = lookup (body, key, G_VARIANT_TYPE_UINT64, error);
  guint64 x;

  if (!v)
    return FALSE;
  x = g_variant_get_uint64 (v);
  if (x < min || x > max) {
    g_set_error (error, SHM_PROTO_ERROR, SHM_PROTO_ERROR_INVALID,
        "field \"%s\" is %" G_GUINT64_FORMAT ", outside %" G_GUINT64_FORMAT
        "..%" G_GUINT64_FORMAT, key, x, min, max);
    return FALSE;
  }
  *out = x;
  return TRUE;
}

/* An optional boolean: absent means @out untouched; a wrong type fails. */
gboolean
shm_msg_get_bool (GVariant * body, const gchar * key, gboolean * out,
    GError ** error)
{
  g_autoptr (GVariant) v = NULL;

  if (!shm_msg_has (body, key))
    return TRUE;
  v = lookup (body, key, G_VARIANT_TYPE_BOOLEAN, error);
  if (!v)
    return FALSE;
  *out = g_variant_get_boolean (v);
  return TRUE;
}

gboolean
shm_msg_get_i64 (GVariant * body, const gchar * key, gint64 * out,
    GError ** error)
{
  g_autoptr (GVariant) v = lookup (body, key, G_VARIANT_TYPE_INT64, error);

  if (!v)
    return FALSE;
  *out = g_variant_get_int64 (v);
  return TRUE;
}

/**
 * shm_msg_get_string:
 * @out: (out) (transfer none): valid as long as @body
 */
gboolean
shm_msg_get_string (GVariant * body, const gchar * key, gsize max_len,
    const gchar ** out, GError ** error)
{
  g_autoptr (GVariant) v = lookup (body, key, G_VARIANT_TYPE_STRING, error);
  gsize len;
  const gchar *s;

  if (!v)
    return FALSE;
  s = g_variant_get_string (v, &len);
  if (len > max_len) {
    g_set_error (error, SHM_PROTO_ERROR, SHM_PROTO_ERROR_INVALID,
        "field \"%s\" is %" G_GSIZE_FORMAT " bytes long, the limit is %"
        G_GSIZE_FORMAT, key, len, max_len);
    return FALSE;
  }
  /* The string lives inside @body, which the caller keeps alive. */
  *out = s;
  return TRUE;
}

gboolean
shm_msg_get_bytes (GVariant * body, const gchar * key, gsize min_len,
    gsize max_len, const guint8 ** out, gsize * out_len, GError ** error)
{
  g_autoptr (GVariant) v = lookup (body, key, G_VARIANT_TYPE_BYTESTRING, error);
  gsize n;
  const guint8 *d;

  if (!v)
    return FALSE;
  d = g_variant_get_fixed_array (v, &n, 1);
  if (n < min_len || n > max_len) {
    g_set_error (error, SHM_PROTO_ERROR, SHM_PROTO_ERROR_INVALID,
        "field \"%s\" is %" G_GSIZE_FORMAT " bytes, outside %" G_GSIZE_FORMAT
        "..%" G_GSIZE_FORMAT, key, n, min_len, max_len);
    return FALSE;
  }
  *out = d;
  *out_len = n;
  return TRUE;
}

gboolean
shm_msg_get_u64_array (GVariant * body, const gchar * key, gsize max_n,
    guint64 * out, gsize * n, GError ** error)
{
  g_autoptr (GVariant) v = lookup (body, key, G_VARIANT_TYPE ("at"), error);
  const guint64 *d;
  gsize len;

  if (!v)
    return FALSE;
  d = g_variant_get_fixed_array (v, &len, sizeof (guint64));
  if (len > max_n) {
    g_set_error (error, SHM_PROTO_ERROR, SHM_PROTO_ERROR_INVALID,
        "field \"%s\" has %" G_GSIZE_FORMAT " entries, the limit is %"
        G_GSIZE_FORMAT, key, len, max_n);
    return FALSE;
  }
  memcpy (out, d, len * sizeof (guint64));
  *n = len;
  return TRUE;
}

const gchar *
shm_msg_get_text (GVariant * body, const gchar * key)
{
  const gchar *s = NULL;

  if (body && shm_msg_get_string (body, key, SHM_MAX_TEXT, &s, NULL))
    return s;
  return NULL;
}

/* gst-shm: the handshake's messages, and what both engines share
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "shmhandshake.h"

#include <string.h>

G_DEFINE_QUARK (shm - engine - error - quark, shm_engine_error);

#define CAPS_VERSION 1
#define BOOT_ID_MAX 64

const gchar *
shm_wake_name (ShmWake wake)
{
  switch (wake) {
    case SHM_WAKE_FUTEX:
      return "futex";
    case SHM_WAKE_DOORBELL:
      return "doorbell";
    case SHM_WAKE_POLL:
      return "poll";
  }
  return "unknown";
}

static gpointer
read_boot_id (gpointer data)
{
  gchar *contents = NULL;

  if (g_file_get_contents ("/proc/sys/kernel/random/boot_id", &contents,
          NULL, NULL))
    g_strstrip (contents);
  else
    contents = g_strdup ("");
  return contents;
}

/* Identifies this kernel's boot: two processes share CLOCK_MONOTONIC, and
 * futexes on a shared file, exactly when their boot ids are equal. */
const gchar *
shm_boot_id (void)
{
  static GOnce once = G_ONCE_INIT;

  g_once (&once, read_boot_id, NULL);
  return once.retval;
}

static gboolean
opt_string (GVariant * body, const gchar * key, gsize max, gchar ** out,
    GError ** error)
{
  const gchar *s;

  if (!shm_msg_has (body, key))
    return TRUE;
  if (!shm_msg_get_string (body, key, max, &s, error))
    return FALSE;
  *out = g_strdup (s);
  return TRUE;
}

static void
insert_bytes (GVariantDict * d, const gchar * key, const guint8 * data,
    gsize len)
{
  g_variant_dict_insert_value (d, key,
      g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, data, len, 1));
}

/* An optional field of exactly @len bytes. */
static gboolean
opt_bytes (GVariant * body, const gchar * key, gsize len, guint8 * out,
    gboolean * present, GError ** error)
{
  const guint8 *d;
  gsize n;

  *present = FALSE;
  if (!shm_msg_has (body, key))
    return TRUE;
  if (!shm_msg_get_bytes (body, key, len, len, &d, &n, error))
    return FALSE;
  memcpy (out, d, len);
  *present = TRUE;
  return TRUE;
}

/* --- shared secret ------------------------------------------------------- */

/**
 * shm_secret_proof:
 * @role: "sender" or "receiver": who answers (so that an answer cannot be
 *   sent back to its author as its own)
 * @challenge: the other side's challenge, answered
 * @other: our own challenge (binds the answer to this handshake)
 * @proof: (out caller-allocates): SHM_PROOF_BYTES bytes
 *
 * HMAC-SHA256, keyed by @secret, of "gst-shm/ROLE/" and both challenges.
 */
void
shm_secret_proof (const gchar * secret, const gchar * role,
    const guint8 * challenge, const guint8 * other, guint8 * proof)
{
  GHmac *h = g_hmac_new (G_CHECKSUM_SHA256, (const guchar *) secret,
      strlen (secret));
  g_autofree gchar *label = g_strdup_printf ("gst-shm/%s/", role);
  gsize len = SHM_PROOF_BYTES;

  g_hmac_update (h, (const guchar *) label, strlen (label));
  g_hmac_update (h, challenge, SHM_NONCE_BYTES);
  g_hmac_update (h, other, SHM_NONCE_BYTES);
  g_hmac_get_digest (h, proof, &len);
  g_hmac_unref (h);
}

/* Compares in constant time. */
gboolean
shm_secret_check (const gchar * secret, const gchar * role,
    const guint8 * challenge, const guint8 * other, const guint8 * proof)
{
  guint8 want[SHM_PROOF_BYTES];
  guint8 diff = 0;

  shm_secret_proof (secret, role, challenge, other, want);
  for (gsize i = 0; i < SHM_PROOF_BYTES; i++)
    diff |= want[i] ^ proof[i];
  return diff == 0;
}

/* --- report ---------------------------------------------------------------- */

GVariant *
shm_report_encode (const ShmReport * r)
{
  GVariantDict d;

  g_variant_dict_init (&d, NULL);
  g_variant_dict_insert (&d, "interval", "t", r->interval_ns);
  g_variant_dict_insert (&d, "received", "t", r->received);
  g_variant_dict_insert (&d, "dropped", "t", r->dropped);
  g_variant_dict_insert (&d, "missed", "t", r->missed);
  g_variant_dict_insert (&d, "latency-p50", "t", r->latency_p50_ns);
  g_variant_dict_insert (&d, "latency-max", "t", r->latency_max_ns);
  g_variant_dict_insert (&d, "queued", "u", r->queued);
  g_variant_dict_insert (&d, "qos-events", "u", r->qos_events);
  /* (in millionths: the accessors read integers) */
  g_variant_dict_insert (&d, "qos-proportion", "t",
      (guint64) (CLAMP (r->qos_proportion, 0, SHM_REPORT_MAX_PROPORTION)
          * 1e6));
  g_variant_dict_insert (&d, "qos-jitter", "x", r->qos_jitter_ns);
  return g_variant_dict_end (&d);
}

/**
 * shm_report_decode:
 *
 * Every field typed and bounded: latencies up to a minute, a proportion up
 * to SHM_REPORT_MAX_PROPORTION, a jitter within +-a minute.
 */
gboolean
shm_report_decode (GVariant * body, ShmReport * r, GError ** error)
{
  guint64 millionths;

  memset (r, 0, sizeof *r);
  if (!shm_msg_get_u64 (body, "interval", 0, SHM_REPORT_MAX_LATENCY_NS,
          &r->interval_ns, error)
      || !shm_msg_get_u64 (body, "received", 0, G_MAXUINT64, &r->received,
          error)
      || !shm_msg_get_u64 (body, "dropped", 0, G_MAXUINT64, &r->dropped, error)
      || !shm_msg_get_u64 (body, "missed", 0, G_MAXUINT64, &r->missed, error)
      || !shm_msg_get_u64 (body, "latency-p50", 0, SHM_REPORT_MAX_LATENCY_NS,
          &r->latency_p50_ns, error)
      || !shm_msg_get_u64 (body, "latency-max", 0, SHM_REPORT_MAX_LATENCY_NS,
          &r->latency_max_ns, error)
      || !shm_msg_get_u32 (body, "queued", 0, G_MAXUINT32, &r->queued, error)
      || !shm_msg_get_u32 (body, "qos-events", 0, G_MAXUINT32,
          &r->qos_events, error)
      || !shm_msg_get_u64 (body, "qos-proportion", 0,
          SHM_REPORT_MAX_PROPORTION * G_GUINT64_CONSTANT (1000000),
          &millionths, error)
      || !shm_msg_get_i64 (body, "qos-jitter", &r->qos_jitter_ns, error))
    return FALSE;
  if (r->qos_jitter_ns > (gint64) SHM_REPORT_MAX_LATENCY_NS
      || r->qos_jitter_ns < -(gint64) SHM_REPORT_MAX_LATENCY_NS) {
    g_set_error (error, SHM_PROTO_ERROR, SHM_PROTO_ERROR_INVALID,
        "field \"qos-jitter\" is %" G_GINT64_FORMAT ", beyond a minute",
        r->qos_jitter_ns);
    return FALSE;
  }
  r->qos_proportion = millionths / 1e6;
  return TRUE;
}

/* --- caps ---------------------------------------------------------------- */

/* "caps" (GStreamer's string form), "caps-version" (1) and "caps-gen". */
void
shm_caps_insert (GVariantDict * d, const gchar * caps, guint32 gen)
{
  g_variant_dict_insert (d, "caps", "s", caps);
  g_variant_dict_insert (d, "caps-version", "u", CAPS_VERSION);
  if (gen)
    g_variant_dict_insert (d, "caps-gen", "u", gen);
}

/**
 * shm_caps_lookup:
 * @caps: (out) (transfer full): NULL when the message has none
 * @gen: (out) (optional): the caps' generation, 0 when absent
 *
 * Returns: FALSE when a field is malformed, or missing while @required.
 */
gboolean
shm_caps_lookup (GVariant * body, gboolean required, gchar ** caps,
    guint32 * gen, GError ** error)
{
  const gchar *s;
  guint32 v;

  *caps = NULL;
  if (gen)
    *gen = 0;
  if (!shm_msg_has (body, "caps")) {
    if (required)
      g_set_error (error, SHM_PROTO_ERROR, SHM_PROTO_ERROR_INVALID,
          "field \"caps\" is missing");
    return !required;
  }
  /* caps-version is informational: "caps" stays readable by version 1 */
  if (shm_msg_has (body, "caps-version")
      && !shm_msg_get_u32 (body, "caps-version", 1, G_MAXUINT32, &v, error))
    return FALSE;
  if (gen && shm_msg_has (body, "caps-gen")
      && !shm_msg_get_u32 (body, "caps-gen", 1, G_MAXUINT32, gen, error))
    return FALSE;
  if (!shm_msg_get_string (body, "caps", SHM_MAX_CAPS, &s, error))
    return FALSE;
  *caps = g_strdup (s);
  return TRUE;
}

/* --- hello --------------------------------------------------------------- */

GVariant *
shm_hello_encode (const ShmHello * h)
{
  GVariantDict d;

  g_variant_dict_init (&d, NULL);
  /* "version" is the highest: a peer of version 1 names it in its error */
  g_variant_dict_insert (&d, "version", "u", h->version_max);
  g_variant_dict_insert (&d, "version-min", "u", h->version_min);
  g_variant_dict_insert (&d, "features", "t", h->features);
  g_variant_dict_insert (&d, "live", "b", h->live);
  if (h->path)
    g_variant_dict_insert (&d, "path", "s", h->path);
  if (h->caps)
    shm_caps_insert (&d, h->caps, 0);
  g_variant_dict_insert (&d, "boot-id", "s", h->boot_id ? h->boot_id : "");
  if (h->has_nonce)
    insert_bytes (&d, "nonce", h->nonce, SHM_NONCE_BYTES);
  return g_variant_dict_end (&d);
}

/**
 * shm_hello_decode:
 *
 * A hello of any version decodes: the version range is checked by the
 * caller, which names both ranges when they do not overlap.  Features a
 * side does not know are kept (and ignored by whoever reads them).
 */
gboolean
shm_hello_decode (GVariant * body, ShmHello * h, GError ** error)
{
  memset (h, 0, sizeof *h);
  if (!shm_msg_get_u32 (body, "version", 0, G_MAXUINT32, &h->version_max,
          error))
    return FALSE;
  h->version_min = h->version_max;
  if ((shm_msg_has (body, "version-min")
          && !shm_msg_get_u32 (body, "version-min", 0, h->version_max,
              &h->version_min, error))
      || (shm_msg_has (body, "features")
          && !shm_msg_get_u64 (body, "features", 0, G_MAXUINT64,
              &h->features, error))
      || !shm_msg_get_bool (body, "live", &h->live, error)
      || !opt_string (body, "path", SHM_MAX_PATH, &h->path, error)
      || !opt_string (body, "boot-id", BOOT_ID_MAX, &h->boot_id, error)
      || !opt_bytes (body, "nonce", SHM_NONCE_BYTES, h->nonce, &h->has_nonce,
          error)
      || !shm_caps_lookup (body, FALSE, &h->caps, NULL, error)) {
    shm_hello_clear (h);
    return FALSE;
  }
  return TRUE;
}

void
shm_hello_clear (ShmHello * h)
{
  g_clear_pointer (&h->path, g_free);
  g_clear_pointer (&h->caps, g_free);
  g_clear_pointer (&h->boot_id, g_free);
}

/* --- mmap ------------------------------------------------------------------ */

GVariant *
shm_mmap_encode (const ShmMmapInfo * m)
{
  const ShmGeometry *g = &m->geo;
  GVariantDict d;

  g_variant_dict_init (&d, NULL);
  g_variant_dict_insert (&d, "version", "u", m->version);
  g_variant_dict_insert (&d, "features", "t", m->features);
  g_variant_dict_insert (&d, "session", "t", g->session_id);
  g_variant_dict_insert (&d, "file", "s", m->file);
  g_variant_dict_insert (&d, "size", "t", g->area_size);
  g_variant_dict_insert_value (&d, "token",
      g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, m->token,
          m->token_bytes, 1));
  g_variant_dict_insert (&d, "token_index", "t", m->token_index);
  g_variant_dict_insert (&d, "token_bytes", "u", m->token_bytes);
  g_variant_dict_insert (&d, "lane", "u", m->lane);
  g_variant_dict_insert (&d, "lane-gen", "u", m->lane_gen);
  g_variant_dict_insert (&d, "token-offset", "t", g->token_offset);
  g_variant_dict_insert (&d, "token-lanes", "u", g->token_lanes);
  g_variant_dict_insert (&d, "token-lane-size", "u", g->token_lane_size);
  g_variant_dict_insert (&d, "ring-offset", "t", g->ring_offset);
  g_variant_dict_insert (&d, "ring-size", "t", g->ring_size);
  g_variant_dict_insert (&d, "chan-offset", "t", g->chan_offset);
  g_variant_dict_insert (&d, "chan-stride", "u", g->chan_stride);
  g_variant_dict_insert (&d, "chan-depth", "u", g->chan_depth);
  g_variant_dict_insert (&d, "slots-offset", "t", g->slots_offset);
  g_variant_dict_insert (&d, "slot-size", "t", g->slot_size);
  g_variant_dict_insert (&d, "n-slots", "u", g->n_slots);
  g_variant_dict_insert (&d, "flags", "u", g->flags);
  g_variant_dict_insert (&d, "boot-id", "s", m->boot_id ? m->boot_id : "");
  if (m->has_nonce)
    insert_bytes (&d, "nonce", m->nonce, SHM_NONCE_BYTES);
  if (m->has_proof)
    insert_bytes (&d, "proof", m->proof, SHM_PROOF_BYTES);
  return g_variant_dict_end (&d);
}

static gboolean
geometry_decode (GVariant * b, ShmGeometry * g, GError ** error)
{
  return shm_msg_get_u64 (b, "session", 1, G_MAXUINT64, &g->session_id, error)
      && shm_msg_get_u64 (b, "size", 0, SHM_AREA_MAX_SIZE, &g->area_size, error)
      && shm_msg_get_u64 (b, "token-offset", 0, G_MAXUINT64,
      &g->token_offset, error)
      && shm_msg_get_u32 (b, "token-lanes", 0, G_MAXUINT32, &g->token_lanes,
      error)
      && shm_msg_get_u32 (b, "token-lane-size", 0, G_MAXUINT32,
      &g->token_lane_size, error)
      && shm_msg_get_u64 (b, "ring-offset", 0, G_MAXUINT64, &g->ring_offset,
      error)
      && shm_msg_get_u64 (b, "ring-size", 0, G_MAXUINT64, &g->ring_size, error)
      && shm_msg_get_u64 (b, "chan-offset", 0, G_MAXUINT64, &g->chan_offset,
      error)
      && shm_msg_get_u32 (b, "chan-stride", 0, G_MAXUINT32, &g->chan_stride,
      error)
      && shm_msg_get_u32 (b, "chan-depth", 0, G_MAXUINT32, &g->chan_depth,
      error)
      && shm_msg_get_u64 (b, "slots-offset", 0, G_MAXUINT64,
      &g->slots_offset, error)
      && shm_msg_get_u64 (b, "slot-size", 0, G_MAXUINT64, &g->slot_size, error)
      && shm_msg_get_u32 (b, "n-slots", 0, G_MAXUINT32, &g->n_slots, error)
      && shm_msg_get_u32 (b, "flags", 0, G_MAXUINT32, &g->flags, error)
      && shm_geometry_validate (g, G_MAXUINT64, error);
}

/**
 * shm_mmap_decode:
 *
 * Decodes the sender's mmap hello: every field typed and bounded, the
 * geometry checked on its own (the area itself is checked against it
 * later), the token bounded to 8..64 bytes.  The version is checked by the
 * caller.
 */
gboolean
shm_mmap_decode (GVariant * body, ShmMmapInfo * m, GError ** error)
{
  const guint8 *token;
  gsize token_len;
  const gchar *file;

  memset (m, 0, sizeof *m);
  if (!shm_msg_get_u32 (body, "version", 0, G_MAXUINT32, &m->version, error))
    return FALSE;
  if (m->version < SHM_PROTO_VERSION_MIN)
    return TRUE;                /* the caller names both versions */
  if ((shm_msg_has (body, "features")
          && !shm_msg_get_u64 (body, "features", 0, G_MAXUINT64,
              &m->features, error))
      || !shm_msg_get_string (body, "file", SHM_MAX_PATH, &file, error)
      || !shm_msg_get_bytes (body, "token", SHM_TOKEN_MIN_BYTES,
          SHM_TOKEN_MAX_BYTES, &token, &token_len, error)
      || !shm_msg_get_u64 (body, "token_index", 0, G_MAXUINT64,
          &m->token_index, error)
      || !shm_msg_get_u32 (body, "token_bytes", token_len, token_len,
          &m->token_bytes, error)
      || !shm_msg_get_u32 (body, "lane", 0, SHM_AREA_TOKEN_LANES - 1,
          &m->lane, error)
      || !shm_msg_get_u32 (body, "lane-gen", 0, G_MAXUINT32, &m->lane_gen,
          error)
      || !geometry_decode (body, &m->geo, error)
      || !opt_string (body, "boot-id", BOOT_ID_MAX, &m->boot_id, error)
      || !opt_bytes (body, "nonce", SHM_NONCE_BYTES, m->nonce, &m->has_nonce,
          error)
      || !opt_bytes (body, "proof", SHM_PROOF_BYTES, m->proof, &m->has_proof,
          error)) {
    shm_mmap_clear (m);
    return FALSE;
  }
  memcpy (m->token, token, token_len);
  m->file = g_strdup (file);
  return TRUE;
}

void
shm_mmap_clear (ShmMmapInfo * m)
{
  g_clear_pointer (&m->file, g_free);
  g_clear_pointer (&m->boot_id, g_free);
}

/* --- mmap-reply ------------------------------------------------------------ */

GVariant *
shm_reply_encode (const ShmReply * r)
{
  GVariantDict d;

  g_variant_dict_init (&d, NULL);
  g_variant_dict_insert (&d, "session", "t", r->session);
  if (r->want_inline) {
    g_variant_dict_insert (&d, "inline", "b", TRUE);
    g_variant_dict_insert (&d, "reason", "s", r->reason ? r->reason : "");
    if (r->has_proof)
      insert_bytes (&d, "proof", r->proof, SHM_PROOF_BYTES);
  } else {
    g_variant_dict_insert_value (&d, "token",
        g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, r->token,
            r->token_bytes, 1));
    g_variant_dict_insert (&d, "token_index", "t", r->token_index);
    g_variant_dict_insert (&d, "token_bytes", "u", r->token_bytes);
  }
  return g_variant_dict_end (&d);
}

gboolean
shm_reply_decode (GVariant * body, ShmReply * r, GError ** error)
{
  const guint8 *token;
  gsize len;

  memset (r, 0, sizeof *r);
  if (!shm_msg_get_u64 (body, "session", 0, G_MAXUINT64, &r->session, error)
      || !shm_msg_get_bool (body, "inline", &r->want_inline, error)
      || !opt_string (body, "reason", SHM_MAX_TEXT, &r->reason, error))
    goto failed;
  if (r->want_inline) {
    if (!opt_bytes (body, "proof", SHM_PROOF_BYTES, r->proof, &r->has_proof,
            error))
      goto failed;
    return TRUE;
  }
  if (!shm_msg_get_bytes (body, "token", SHM_TOKEN_MIN_BYTES,
          SHM_TOKEN_MAX_BYTES, &token, &len, error)
      || !shm_msg_get_u64 (body, "token_index", 0, G_MAXUINT64,
          &r->token_index, error)
      || !shm_msg_get_u32 (body, "token_bytes", len, len, &r->token_bytes,
          error))
    goto failed;
  memcpy (r->token, token, len);
  return TRUE;

failed:
  shm_reply_clear (r);
  return FALSE;
}

void
shm_reply_clear (ShmReply * r)
{
  g_clear_pointer (&r->reason, g_free);
}

/* --- ready ----------------------------------------------------------------- */

GVariant *
shm_ready_encode (const ShmReady * r)
{
  GVariantDict d;

  g_variant_dict_init (&d, NULL);
  g_variant_dict_insert (&d, "session", "t", r->session);
  g_variant_dict_insert (&d, "wake", "u", (guint32) r->wake);
  if (r->frames_inline)
    g_variant_dict_insert (&d, "inline", "b", TRUE);
  if (r->caps)
    shm_caps_insert (&d, r->caps, r->caps_gen);
  return g_variant_dict_end (&d);
}

gboolean
shm_ready_decode (GVariant * body, ShmReady * r, GError ** error)
{
  guint32 wake;

  memset (r, 0, sizeof *r);
  if (!shm_msg_get_u64 (body, "session", 0, G_MAXUINT64, &r->session, error)
      || !shm_msg_get_u32 (body, "wake", SHM_WAKE_FUTEX, SHM_WAKE_POLL,
          &wake, error)
      || !shm_msg_get_bool (body, "inline", &r->frames_inline, error)
      || !shm_caps_lookup (body, FALSE, &r->caps, &r->caps_gen, error))
    return FALSE;
  if (r->caps && r->caps_gen == 0) {
    g_set_error (error, SHM_PROTO_ERROR, SHM_PROTO_ERROR_INVALID,
        "field \"caps-gen\" is missing");
    shm_ready_clear (r);
    return FALSE;
  }
  r->wake = wake;
  return TRUE;
}

void
shm_ready_clear (ShmReady * r)
{
  g_clear_pointer (&r->caps, g_free);
}

/* --- small messages ---------------------------------------------------- */

void
shm_send_error (ShmConn * conn, const gchar * code, const gchar * message)
{
  GVariantDict d;

  g_variant_dict_init (&d, NULL);
  g_variant_dict_insert (&d, "code", "s", code);
  g_variant_dict_insert (&d, "message", "s", message);
  shm_conn_send (conn, SHM_MSG_ERROR, g_variant_dict_end (&d), NULL);
}

void
shm_send_bye (ShmConn * conn, const gchar * message)
{
  GVariantDict d;

  g_variant_dict_init (&d, NULL);
  g_variant_dict_insert (&d, "message", "s", message);
  shm_conn_send (conn, SHM_MSG_BYE, g_variant_dict_end (&d), NULL);
}

gboolean
shm_send_doorbell (ShmConn * conn)
{
  return shm_conn_send (conn, SHM_MSG_DOORBELL, NULL, NULL);
}

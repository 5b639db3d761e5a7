/* gst-shm: a fuzz target for what the core reads from a peer
 *
 * The first byte of an input picks what the rest is fed to:
 *   0  a control byte stream (shm_msg_parse, then every typed accessor on
 *      each body it accepts)
 *   1  an area header (shm_area_read_header on an area whose first bytes
 *      are the input, with a valid magic)
 *   2  the in-band rings (the input is written over the lane table and the
 *      ring indices and data of an area with rings; a receiver-side ring
 *      connection then reads what it finds)
 *   3  a frame channel (the input is written over the indices, releases
 *      and records of lane 0's channel; the receiver's side then reads and
 *      checks every record it finds, the sender's side every release)
 *
 * Every message body a stream yields also goes through the handshake's
 * decoders (hello, mmap, mmap-reply, ready, report, caps).
 *
 * Built with clang's -fsanitize=fuzzer it is a libFuzzer target (meson
 * option fuzzing=true).  Otherwise its main() runs the files it is given,
 * or, with --random N, N inputs made by mutating valid ones (the test suite
 * runs that, under ASan in the sanitizer pass).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "shmarea.h"
#include "shmchannel.h"
#include "shmconn.h"
#include "shmhandshake.h"
#include "shmproto.h"
#include "shmrecord.h"
#include "shmring.h"

#include <glib/gstdio.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t * data, size_t size);

/* how many inputs got past the first checks, per kind */
static guint n_messages, n_headers, n_ring_messages, n_records;

static ShmArea *area;
static ShmGeometry geo;
static gchar *area_path;

static void
setup_area (void)
{
  g_autoptr (GError) err = NULL;
  guint64 size = shm_geometry_size_needed (2, 4096, SHM_RING_REGION_SIZE);
  g_autofree gchar *dir = g_dir_make_tmp ("gst-shm-fuzz-XXXXXX", &err);

  g_assert_no_error (err);
  area_path = g_build_filename (dir, "area", NULL);
  area = shm_area_create (area_path, size, 0600, 0, NULL, &err);
  g_assert_no_error (err);
  g_assert_true (shm_geometry_compute (&geo, size, 2, 4096,
          SHM_RING_REGION_SIZE, &err));
  geo.session_id = 1;
}

static void
teardown_area (void)
{
  g_autofree gchar *dir = g_path_get_dirname (area_path);

  shm_area_unlink (area, NULL);
  shm_area_unref (area);
  g_rmdir (dir);
  g_free (area_path);
}

/* The handshake's decoders: whatever they accept is within its bounds. */
static void
use_handshake (GVariant * body)
{
  ShmHello h;
  ShmMmapInfo m;
  ShmReply r;
  ShmReady rd;
  ShmReport rep;
  gchar *caps = NULL;
  guint32 gen;

  if (shm_hello_decode (body, &h, NULL)) {
    g_assert (h.version_min <= h.version_max);
    g_assert (!h.caps || strlen (h.caps) <= SHM_MAX_CAPS);
    shm_hello_clear (&h);
  }
  if (shm_mmap_decode (body, &m, NULL)) {
    if (m.version >= SHM_PROTO_VERSION_MIN) {
      g_assert (m.token_bytes >= SHM_TOKEN_MIN_BYTES
          && m.token_bytes <= SHM_TOKEN_MAX_BYTES);
      g_assert (m.lane < SHM_AREA_TOKEN_LANES);
      g_assert (shm_geometry_validate (&m.geo, G_MAXUINT64, NULL));
    }
    shm_mmap_clear (&m);
  }
  if (shm_reply_decode (body, &r, NULL)) {
    g_assert (r.want_inline || (r.token_bytes >= SHM_TOKEN_MIN_BYTES
            && r.token_bytes <= SHM_TOKEN_MAX_BYTES));
    shm_reply_clear (&r);
  }
  if (shm_ready_decode (body, &rd, NULL)) {
    g_assert (rd.wake >= SHM_WAKE_FUTEX && rd.wake <= SHM_WAKE_POLL);
    shm_ready_clear (&rd);
  }
  if (shm_report_decode (body, &rep, NULL)) {
    g_assert (rep.latency_max_ns <= SHM_REPORT_MAX_LATENCY_NS);
    g_assert (rep.qos_proportion >= 0
        && rep.qos_proportion <= SHM_REPORT_MAX_PROPORTION);
  }
  if (shm_caps_lookup (body, TRUE, &caps, &gen, NULL))
    g_assert (caps && strlen (caps) <= SHM_MAX_CAPS);
  g_free (caps);
}

static void
use_body (GVariant * body)
{
  const gchar *s;
  const guint8 *b;
  guint64 t, arr[8];
  gint64 i;
  guint32 u;
  gsize n;

  shm_msg_get_u32 (body, "version", 0, 10, &u, NULL);
  shm_msg_get_u64 (body, "session", 1, G_MAXUINT64, &t, NULL);
  shm_msg_get_i64 (body, "time", &i, NULL);
  shm_msg_get_string (body, "file", SHM_MAX_PATH, &s, NULL);
  shm_msg_get_string (body, "caps", SHM_MAX_CAPS, &s, NULL);
  shm_msg_get_bytes (body, "token", SHM_TOKEN_MIN_BYTES,
      SHM_TOKEN_MAX_BYTES, &b, &n, NULL);
  shm_msg_get_u64_array (body, "plane-offsets", G_N_ELEMENTS (arr), arr, &n,
      NULL);
  shm_msg_has (body, "inline");
  shm_msg_get_text (body, "message");
  use_handshake (body);
}

static void
fuzz_stream (const guint8 * data, gsize size)
{
  while (size > 0) {
    GVariant *body = NULL;
    const guint8 *payload;
    gsize consumed, plen;
    guint32 type;
    GError *err = NULL;

    if (shm_msg_parse (data, size, 4096, &consumed, &type, &body, &payload,
            &plen, &err) != SHM_PARSE_OK) {
      g_clear_error (&err);
      return;
    }
    g_assert (consumed > 0 && consumed <= size);
    g_assert (plen <= 4096);
    use_body (body);
    g_variant_unref (body);
    n_messages++;
    data += consumed;
    size -= consumed;
  }
}

static void
fuzz_header (const guint8 * data, gsize size)
{
  guint8 *mem = shm_area_get_data (area);
  guint64 magic = GUINT64_TO_LE (SHM_AREA_MAGIC);
  ShmGeometry g;

  memset (mem, 0, SHM_AREA_HEADER_SIZE);
  memcpy (mem, data, MIN (size, SHM_AREA_HEADER_SIZE));
  memcpy (mem, &magic, 8);
  if (shm_area_read_header (area, &g, NULL)) {
    guint64 offset;
    n_headers++;
    /* an accepted geometry is inside the mapping */
    g_assert (g.area_size <= shm_area_get_size (area));
    for (guint32 s = 0; s < g.n_slots; s++) {
      g_assert (shm_geometry_slot_range (&g, s, &offset));
      g_assert (offset + g.slot_size <= g.area_size);
    }
  }
}

static void
on_message (ShmConn * c, guint32 type, GVariant * body,
    const guint8 * payload, gsize payload_len, gpointer user_data)
{
  use_body (body);
  (*(guint *) user_data)++;
}

static void
on_closed (ShmConn * c, const GError * error, gpointer user_data)
{
}

static void
fuzz_ring (const guint8 * data, gsize size)
{
  static const ShmConnCallbacks callbacks = { on_message, on_closed };
  GMainContext *ctx = g_main_context_new ();
  guint8 *rings = shm_area_get_data (area) + geo.ring_offset;
  guint lane = 0, n = 0;
  gsize table = MIN (size, 64);
  ShmConn *conn;

  shm_area_init_header (area, &geo);
  /* our claim on lane 0, acknowledged, then whatever the input says about
   * the lane table and the sink->receiver ring of lane 0 */
  g_assert (shm_ring_claim (area, &geo, 7, &lane, NULL));
  memcpy (rings + 8, data, MIN (table, 24));
  {
    guint64 ack = GUINT64_TO_LE (7);
    memcpy (rings + 8, &ack, 8);
  }
  if (size > table)
    memcpy (rings + SHM_RING_TABLE, data + table, MIN (size - table,
            SHM_RING_HALF));
  conn = shm_conn_new_ring (area, &geo, lane, 7, FALSE, "fuzz");
  shm_conn_set_max_payload (conn, 4096);
  shm_conn_start (conn, ctx, &callbacks, &n);
  for (guint i = 0; i < 8; i++)
    g_main_context_iteration (ctx, FALSE);
  shm_conn_close (conn);
  shm_conn_unref (conn);
  while (g_main_context_iteration (ctx, FALSE));
  g_main_context_unref (ctx);
  n_ring_messages += n;
}

/* A record the receiver accepted lies inside its slot, and its planes
 * inside the frame. */
static void
check_accepted (const ShmRecord * r, const ShmFrameLayout * l)
{
  g_assert (r->slot < geo.n_slots);
  g_assert (r->offset + r->size <= geo.slot_size);
  for (guint p = 0; p < r->n_planes; p++) {
    g_assert (r->plane_offset[p] <= r->size);
    g_assert ((guint64) r->plane_stride[p] * l->rows[p] <= r->size
        - r->plane_offset[p]);
  }
  n_records++;
}

static void
fuzz_channel (const guint8 * data, gsize size)
{
  guint8 *chan = shm_area_channel (area, &geo, 0);
  gsize room = geo.chan_stride;
  ShmFrameLayout layout = { 0, };
  guint8 bytes[SHM_RECORD_SIZE];
  ShmChanRx rx;
  ShmChanTx tx;
  ShmRelease rel;
  ShmRecord r;
  guint32 pending;

  /* a 32x32 NV12 stream: two planes, 32 and 16 rows */
  layout.n_planes = 2;
  layout.min_stride[0] = layout.min_stride[1] = 32;
  layout.rows[0] = 32;
  layout.rows[1] = 16;
  memset (chan, 0, room);
  memcpy (chan, data, MIN (size, room));
  shm_chan_rx_init (&rx, chan, geo.chan_depth, 1);
  for (guint i = 0; i < geo.chan_depth + 1; i++) {
    if (!shm_chan_rx_pending (&rx, &pending, NULL) || pending == 0)
      break;
    g_assert (pending <= geo.chan_depth);
    shm_chan_rx_peek (&rx, bytes);
    if (shm_record_decode (bytes, &r, NULL) && r.type == SHM_RECORD_FRAME
        && shm_record_check_frame (&r, geo.n_slots, geo.slot_size, &layout,
            NULL))
      check_accepted (&r, &layout);
    shm_chan_rx_pop (&rx);
  }
  shm_chan_rx_clear (&rx);
  /* the sender's side: what it reads of the releases */
  tx.base = chan;
  tx.depth = geo.chan_depth;
  tx.rec_head = 0;
  tx.rel_tail = 0;
  tx.lane_gen = 1;
  for (guint i = 0; i < geo.chan_depth + 1
      && shm_chan_tx_take_release (&tx, &rel, NULL) > 0; i++);
}

int
LLVMFuzzerTestOneInput (const uint8_t * data, size_t size)
{
  if (!area)
    setup_area ();
  if (size < 1)
    return 0;
  switch (data[0] % 4) {
    case 0:
      fuzz_stream (data + 1, size - 1);
      break;
    case 1:
      fuzz_header (data + 1, size - 1);
      break;
    case 2:
      fuzz_ring (data + 1, size - 1);
      break;
    default:
      fuzz_channel (data + 1, size - 1);
      break;
  }
  return 0;
}

#ifndef SHM_LIBFUZZER

/* A channel with two frame records of a 32x32 NV12 stream (strides
 * padded to 64) and a release. */
static const guint8 *
channel_seed (void)
{
  static guint8 chan[65536];
  ShmRecord r = { 0, };
  guint8 bytes[SHM_RECORD_SIZE];
  ShmChanTx tx;
  ShmChanRx rx;

  g_assert (geo.chan_stride <= sizeof chan);
  shm_chan_tx_init (&tx, chan, geo.chan_depth, 1);
  r.type = SHM_RECORD_FRAME;
  r.size = 64 * 48;
  r.n_planes = 2;
  r.plane_stride[0] = r.plane_stride[1] = 64;
  r.plane_offset[1] = 64 * 32;
  for (guint i = 0; i < 2; i++) {
    r.seq = i;
    r.slot = i;
    shm_record_encode (&r, bytes);
    shm_chan_tx_push (&tx, bytes);
  }
  shm_chan_rx_init (&rx, chan, geo.chan_depth, 1);
  shm_chan_rx_release (&rx, 0, 0);
  shm_chan_rx_clear (&rx);
  return chan;
}

/* Valid inputs of each kind, for the mutations to start from. */
static GBytes *
seed (guint kind)
{
  GByteArray *a = g_byte_array_new ();
  guint8 k = kind;
  GVariantDict d;
  GVariant *body;

  g_byte_array_append (a, &k, 1);
  g_variant_dict_init (&d, NULL);
  g_variant_dict_insert (&d, "version", "u", 1);
  g_variant_dict_insert (&d, "session", "t", (guint64) 1);
  g_variant_dict_insert (&d, "file", "s", "/dev/shm/x");
  g_variant_dict_insert (&d, "caps", "s", "video/x-raw,format=BGRx");
  body = g_variant_ref_sink (g_variant_dict_end (&d));
  if (kind == 0) {
    ShmHello h = { 2, 2, SHM_FEATURE_FUTEX, TRUE, "/dev/shm/x",
      "video/x-raw,format=BGRx", "b00t"
    };
    ShmMmapInfo m = { 0, };
    ShmReady r = { 1, FALSE, SHM_WAKE_FUTEX, "video/x-raw", 1 };
    m.version = 2;
    m.geo = geo;
    m.file = "/dev/shm/x";
    m.token_bytes = 16;
    m.token_index = geo.token_offset;
    shm_msg_encode_into (a, SHM_MSG_HELLO, body, 0);
    shm_msg_encode_into (a, SHM_MSG_HELLO, shm_hello_encode (&h), 0);
    shm_msg_encode_into (a, SHM_MSG_MMAP, shm_mmap_encode (&m), 0);
    shm_msg_encode_into (a, SHM_MSG_READY, shm_ready_encode (&r), 0);
    shm_msg_encode_into (a, SHM_MSG_PING, NULL, 0);
  } else if (kind == 1) {
    ShmArea *tmp;
    g_autofree gchar *p = g_build_filename (g_get_tmp_dir (),
        "gst-shm-fuzz-seed", NULL);
    tmp = shm_area_create (p, geo.area_size, 0600, 0, NULL, NULL);
    g_assert (tmp);
    shm_area_init_header (tmp, &geo);
    g_byte_array_append (a, shm_area_get_data (tmp), 192);
    shm_area_unlink (tmp, NULL);
    shm_area_unref (tmp);
  } else if (kind == 3) {
    g_byte_array_append (a, channel_seed (), geo.chan_stride);
  } else {
    guint8 table[64] = { 0, };
    guint8 half[128] = { 0, };
    GByteArray *msgs = g_byte_array_new ();
    guint32 prod;
    shm_msg_encode_into (msgs, SHM_MSG_MMAP, body, 0);
    prod = GUINT32_TO_LE (msgs->len);
    memcpy (half, &prod, 4);
    g_byte_array_append (a, table, sizeof table);
    g_byte_array_append (a, half, sizeof half);
    g_byte_array_append (a, msgs->data, msgs->len);
    g_byte_array_unref (msgs);
  }
  g_variant_unref (body);
  return g_byte_array_free_to_bytes (a);
}

int
main (int argc, char **argv)
{
  if (argc == 3 && g_str_equal (argv[1], "--random")) {
    guint n = atoi (argv[2]);
    GRand *rand = g_rand_new_with_seed (20261123);
    GBytes *seeds[4];

    setup_area ();
    for (guint k = 0; k < 4; k++)
      seeds[k] = seed (k);
    for (guint i = 0; i < n; i++) {
      gsize len;
      const guint8 *s = g_bytes_get_data (seeds[i % 4], &len);
      guint8 *buf = g_memdup2 (s, len);
      guint flips = 1 + g_rand_int_range (rand, 0, 16);

      for (guint f = 0; f < flips; f++) {
        gsize at = 1 + g_rand_int_range (rand, 0, len - 1);
        buf[at] = g_rand_boolean (rand) ? g_rand_int (rand)
            : buf[at] ^ (1u << g_rand_int_range (rand, 0, 8));
      }
      LLVMFuzzerTestOneInput (buf, g_rand_int_range (rand, 1, len + 1));
      g_free (buf);
    }
    for (guint k = 0; k < 4; k++)
      g_bytes_unref (seeds[k]);
    g_rand_free (rand);
    teardown_area ();
    g_print ("%u inputs: %u messages parsed, %u headers accepted, %u "
        "messages read from rings, %u frame records accepted\n", n,
        n_messages, n_headers, n_ring_messages, n_records);
    /* the mutations must leave some inputs valid, or nothing deep ran */
    return n_messages && n_headers && n_ring_messages && n_records ? 0 : 1;
  }
  if (argc == 3 && g_str_equal (argv[1], "--write-corpus")) {
    /* the seeds, as files: a libFuzzer corpus to start from */
    setup_area ();
    for (guint k = 0; k < 4; k++) {
      g_autoptr (GBytes) b = seed (k);
      g_autofree gchar *name = g_strdup_printf ("%s/seed-%u", argv[2], k);
      if (!g_file_set_contents (name, g_bytes_get_data (b, NULL),
              g_bytes_get_size (b), NULL))
        return 2;
    }
    teardown_area ();
    return 0;
  }
  for (gint i = 1; i < argc; i++) {
    gchar *contents;
    gsize len;
    if (!g_file_get_contents (argv[i], &contents, &len, NULL)) {
      g_printerr ("cannot read %s\n", argv[i]);
      return 2;
    }
    LLVMFuzzerTestOneInput ((const guint8 *) contents, len);
    g_free (contents);
  }
  if (area)
    teardown_area ();
  return 0;
}

#endif

/* gst-shm: unit tests of the in-band control rings (no GStreamer)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "shmarea.h"
#include "shmproto.h"
#include "shmring.h"

#include <glib/gstdio.h>
#include <string.h>

static gchar *tmpdir;

typedef struct
{
  ShmArea *area;
  ShmGeometry geo;
  gchar *path;
} Area;

static void
area_setup (Area * a, guint64 ring_size)
{
  g_autoptr (GError) err = NULL;
  guint64 size = shm_geometry_size_needed (2, 4096, ring_size);

  a->path = g_build_filename (tmpdir, "ring-area", NULL);
  a->area = shm_area_create (a->path, size, 0600, 0, NULL, &err);
  g_assert_no_error (err);
  g_assert_true (shm_geometry_compute (&a->geo, size, 2, 4096, ring_size,
          &err));
  a->geo.session_id = 42;
  shm_area_init_header (a->area, &a->geo);
}

static void
area_teardown (Area * a)
{
  g_assert_true (shm_area_unlink (a->area, NULL));
  shm_area_unref (a->area);
  g_assert_false (g_file_test (a->path, G_FILE_TEST_EXISTS));
  g_free (a->path);
}

/* Messages received on one end of a ring connection. */
typedef struct
{
  GMainLoop *loop;
  GPtrArray *bodies;            /* of GVariant */
  guint want;
  gboolean closed;
  gchar *close_error;
} End;

static void
end_message (ShmConn * c, guint32 type, GVariant * body,
    const guint8 * payload, gsize payload_len, gpointer data)
{
  End *e = data;

  g_ptr_array_add (e->bodies, g_variant_ref (body));
  if (e->bodies->len >= e->want)
    g_main_loop_quit (e->loop);
}

static void
end_closed (ShmConn * c, const GError * error, gpointer data)
{
  End *e = data;

  e->closed = TRUE;
  e->close_error = error ? g_strdup (error->message) : NULL;
  g_main_loop_quit (e->loop);
}

static const ShmConnCallbacks end_callbacks = { end_message, end_closed };

static void
end_init (End * e, GMainLoop * loop)
{
  memset (e, 0, sizeof *e);
  e->loop = loop;
  e->bodies = g_ptr_array_new_with_free_func ((GDestroyNotify)
      g_variant_unref);
}

static void
end_clear (End * e)
{
  g_ptr_array_unref (e->bodies);
  g_free (e->close_error);
}

/* A body with @n bytes of a pattern that depends on @seed. */
static GVariant *
pattern_body (guint seed, gsize n)
{
  g_autofree guint8 *bytes = g_malloc (n);
  GVariantDict d;

  for (gsize i = 0; i < n; i++)
    bytes[i] = (guint8) (i * 7 + seed);
  g_variant_dict_init (&d, NULL);
  g_variant_dict_insert (&d, "seed", "u", seed);
  g_variant_dict_insert_value (&d, "data",
      g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, bytes, n, 1));
  return g_variant_dict_end (&d);
}

static void
check_pattern (GVariant * body, guint seed, gsize n)
{
  g_autoptr (GVariant) data = g_variant_lookup_value (body, "data",
      G_VARIANT_TYPE_BYTESTRING);
  const guint8 *bytes;
  gsize len;
  guint32 got;

  g_assert_true (g_variant_lookup (body, "seed", "u", &got));
  g_assert_cmpuint (got, ==, seed);
  g_assert_nonnull (data);
  bytes = g_variant_get_fixed_array (data, &len, 1);
  g_assert_cmpuint (len, ==, n);
  for (gsize i = 0; i < n; i++)
    if (bytes[i] != (guint8) (i * 7 + seed))
      g_error ("message %u: byte %" G_GSIZE_FORMAT " differs", seed, i);
}

/* Claim, accept, acknowledge; then messages both ways, many of them and
 * some bigger than the ring, with their content checked; then the
 * receiver leaves and the sink sees the end. */
static void
test_messages (void)
{
  GMainContext *ctx = g_main_context_new ();
  GMainLoop *loop = g_main_loop_new (ctx, FALSE);
  g_autoptr (GError) err = NULL;
  guint64 served[SHM_RING_LANES] = { 0, };
  guint64 id = 0;
  guint lane;
  gint accepted;
  ShmConn *sink, *recv;
  End se, re;
  Area a;
  const gsize sizes[] = { 10, 1000, 30000, 100 * 1024, 5 };

  area_setup (&a, SHM_RING_REGION_SIZE);
  g_assert_cmpint (shm_ring_accept (a.area, &a.geo, served, &id), ==, -1);

  g_assert_true (shm_ring_claim (a.area, &a.geo, 0x1234, &lane, &err));
  g_assert_no_error (err);
  g_assert_false (shm_ring_acked (a.area, &a.geo, lane, 0x1234));
  accepted = shm_ring_accept (a.area, &a.geo, served, &id);
  g_assert_cmpint (accepted, ==, (gint) lane);
  g_assert_cmpuint (id, ==, 0x1234);
  served[lane] = id;
  /* served lanes are not accepted twice */
  g_assert_cmpint (shm_ring_accept (a.area, &a.geo, served, &id), ==, -1);
  g_assert_true (shm_ring_acked (a.area, &a.geo, lane, 0x1234));
  g_assert_true (shm_ring_claimed (a.area, &a.geo, lane, 0x1234));

  sink = shm_conn_new_ring (a.area, &a.geo, lane, 0x1234, TRUE, "sink");
  recv = shm_conn_new_ring (a.area, &a.geo, lane, 0x1234, FALSE, "recv");
  end_init (&se, loop);
  end_init (&re, loop);
  shm_conn_start (sink, ctx, &end_callbacks, &se);
  shm_conn_start (recv, ctx, &end_callbacks, &re);

  /* receiver -> sink, then sink -> receiver, each more than the ring */
  se.want = re.want = 3 * G_N_ELEMENTS (sizes);
  for (guint i = 0; i < se.want; i++) {
    g_assert_true (shm_conn_send (recv, SHM_MSG_PING, pattern_body (i,
                sizes[i % G_N_ELEMENTS (sizes)]), &err));
    g_assert_true (shm_conn_send (sink, SHM_MSG_PING, pattern_body (100 + i,
                sizes[(i + 1) % G_N_ELEMENTS (sizes)]), &err));
  }
  while (se.bodies->len < se.want || re.bodies->len < re.want)
    g_main_context_iteration (ctx, TRUE);
  for (guint i = 0; i < se.want; i++) {
    check_pattern (se.bodies->pdata[i], i, sizes[i % G_N_ELEMENTS (sizes)]);
    check_pattern (re.bodies->pdata[i], 100 + i,
        sizes[(i + 1) % G_N_ELEMENTS (sizes)]);
  }
  g_assert_false (se.closed);
  g_assert_false (re.closed);

  /* the receiver leaves: its lane is free again, the sink sees the end
   * (no error: leaving is not a fault) */
  shm_conn_close (recv);
  shm_conn_unref (recv);
  g_assert_false (shm_ring_claimed (a.area, &a.geo, lane, 0x1234));
  while (!se.closed)
    g_main_context_iteration (ctx, TRUE);
  g_assert_null (se.close_error);
  shm_conn_close (sink);
  shm_conn_unref (sink);
  g_assert_true (shm_ring_claim (a.area, &a.geo, 0x99, &lane, &err));
  g_assert_cmpuint (lane, ==, 0);

  end_clear (&se);
  end_clear (&re);
  area_teardown (&a);
  g_main_loop_unref (loop);
  g_main_context_unref (ctx);
}

/* The peer's producer index runs further ahead than the ring holds: the
 * connection ends with an error that says so. */
static void
test_index_beyond_ring (void)
{
  GMainContext *ctx = g_main_context_new ();
  GMainLoop *loop = g_main_loop_new (ctx, FALSE);
  g_autoptr (GError) err = NULL;
  guint64 served[SHM_RING_LANES] = { 0, };
  guint64 id;
  guint lane;
  ShmConn *recv;
  guint8 *s2r;
  guint32 prod;
  End re;
  Area a;

  area_setup (&a, SHM_RING_REGION_SIZE);
  g_assert_true (shm_ring_claim (a.area, &a.geo, 7, &lane, &err));
  g_assert_cmpint (shm_ring_accept (a.area, &a.geo, served, &id), ==, 0);
  recv = shm_conn_new_ring (a.area, &a.geo, lane, 7, FALSE, "recv");
  end_init (&re, loop);
  re.want = 1;
  shm_conn_start (recv, ctx, &end_callbacks, &re);

  /* a hostile sink: prod - cons = ring size + 1 */
  s2r = shm_area_get_data (a.area) + a.geo.ring_offset + SHM_RING_TABLE;
  prod = GUINT32_TO_LE (SHM_RING_DATA + 1);
  memcpy (s2r, &prod, 4);
  g_main_loop_run (loop);
  g_assert_true (re.closed);
  g_assert_cmpstr (re.close_error, ==, "the peer's ring index is beyond the "
      "ring (producer 32769, consumer 0, ring of 32768 bytes)");
  g_assert_cmpuint (re.bodies->len, ==, 0);
  shm_conn_unref (recv);
  end_clear (&re);
  area_teardown (&a);

  /* the same with the consumer index of the ring the receiver writes: its
   * next send ends the connection */
  area_setup (&a, SHM_RING_REGION_SIZE);
  memset (served, 0, sizeof served);
  g_assert_true (shm_ring_claim (a.area, &a.geo, 7, &lane, &err));
  g_assert_cmpint (shm_ring_accept (a.area, &a.geo, served, &id), ==, 0);
  recv = shm_conn_new_ring (a.area, &a.geo, lane, 7, FALSE, "recv");
  end_init (&re, loop);
  shm_conn_start (recv, ctx, &end_callbacks, &re);
  prod = GUINT32_TO_LE (SHM_RING_DATA + 1);
  memcpy (shm_area_get_data (a.area) + a.geo.ring_offset + SHM_RING_TABLE
      + SHM_RING_HALF + 64, &prod, 4);
  g_assert_false (shm_conn_send (recv, SHM_MSG_PING, NULL, &err));
  g_assert_nonnull (strstr (err->message, "beyond the ring"));
  g_main_loop_run (loop);
  g_assert_true (re.closed);
  g_assert_nonnull (re.close_error);
  g_assert_nonnull (strstr (re.close_error, "the peer's ring index is "
          "beyond the ring"));

  shm_conn_unref (recv);
  end_clear (&re);
  area_teardown (&a);
  g_main_loop_unref (loop);
  g_main_context_unref (ctx);
}

static void
test_lanes (void)
{
  g_autoptr (GError) err = NULL;
  guint lane;
  Area a;

  area_setup (&a, SHM_RING_REGION_SIZE);
  for (guint i = 0; i < SHM_RING_LANES; i++) {
    g_assert_true (shm_ring_claim (a.area, &a.geo, 100 + i, &lane, &err));
    g_assert_cmpuint (lane, ==, i);
  }
  g_assert_false (shm_ring_claim (a.area, &a.geo, 999, &lane, &err));
  g_assert_cmpstr (err->message, ==, "all 8 in-band lanes of the area are "
      "taken");
  g_clear_error (&err);
  /* someone else's claim is not given back by a wrong id */
  shm_ring_unclaim (a.area, &a.geo, 3, 12345);
  g_assert_true (shm_ring_claimed (a.area, &a.geo, 3, 103));
  shm_ring_unclaim (a.area, &a.geo, 3, 103);
  g_assert_true (shm_ring_claim (a.area, &a.geo, 999, &lane, &err));
  g_assert_cmpuint (lane, ==, 3);
  {
    /* a lane the sink still serves for its old receiver is not set up
     * for the new claim until the sink has dropped the old connection */
    guint64 served[SHM_RING_LANES] = { 0, };
    guint64 id = 0;
    for (guint i = 0; i < SHM_RING_LANES; i++)
      served[i] = 100 + i;
    g_assert_cmpint (shm_ring_accept (a.area, &a.geo, served, &id), ==, -1);
    served[3] = 0;
    g_assert_cmpint (shm_ring_accept (a.area, &a.geo, served, &id), ==, 3);
    g_assert_cmpuint (id, ==, 999);
  }
  /* the header's set-up clears every claim */
  shm_area_init_header (a.area, &a.geo);
  g_assert_false (shm_ring_claimed (a.area, &a.geo, 3, 999));
  area_teardown (&a);

  /* an area without rings */
  area_setup (&a, 0);
  g_assert_false (shm_ring_claim (a.area, &a.geo, 1, &lane, &err));
  g_assert_nonnull (strstr (err->message, "the sender does not use "
          "control=ring"));
  area_teardown (&a);
}

int
main (int argc, char **argv)
{
  gint ret;

  g_test_init (&argc, &argv, NULL);
  tmpdir = g_dir_make_tmp ("gst-shm-ring-XXXXXX", NULL);
  g_test_add_func ("/ring/messages", test_messages);
  g_test_add_func ("/ring/index-beyond-ring", test_index_beyond_ring);
  g_test_add_func ("/ring/lanes", test_lanes);
  ret = g_test_run ();
  g_rmdir (tmpdir);
  g_free (tmpdir);
  return ret;
}

/* gst-shm: element tests
 *
 * The pool and the zero-copy path in one process, and every protocol-level
 * mistake a peer can make, produced by a fake peer written against the
 * core, with the element's answer checked by its message.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <gst/check/gstcheck.h>
#include "check-main.h"
#include <gst/check/gstharness.h>
#include <gst/video/video.h>
#include <gio/gunixsocketaddress.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "shmarea.h"
#include "shmchannel.h"
#include "shmhandshake.h"
#include "shmproto.h"
#include "shmrecord.h"
#include "shmring.h"

static gchar *tmpdir;
static gchar *area_path;
static gchar *sock_path;

/* Every test that loads the elements checks that they are ours, not
 * gst-plugins-bad's elements of the same names. */
static void
check_plugin_is_ours (void)
{
  const gchar *dir = g_getenv ("GST_SHM_PLUGIN_DIR");
  const gchar *names[] = { "shmsink", "shmsrc" };

  fail_unless (dir != NULL, "GST_SHM_PLUGIN_DIR not set");
  for (guint i = 0; i < G_N_ELEMENTS (names); i++) {
    GstElementFactory *f = gst_element_factory_find (names[i]);
    GstPlugin *p;
    fail_unless (f != NULL);
    p = gst_plugin_feature_get_plugin (GST_PLUGIN_FEATURE (f));
    fail_unless (p != NULL);
    fail_unless (g_str_has_prefix (gst_plugin_get_filename (p), dir),
        "%s comes from %s", names[i], gst_plugin_get_filename (p));
    gst_object_unref (p);
    gst_object_unref (f);
  }
}

static void
setup (void)
{
  check_plugin_is_ours ();
  tmpdir = g_strdup ("/dev/shm/gst-shm-check-XXXXXX");
  fail_unless (g_mkdtemp (tmpdir) != NULL);
  area_path = g_build_filename (tmpdir, "area", NULL);
  sock_path = g_strdup_printf ("%s.sock", area_path);
}

static void
teardown (void)
{
  /* The elements removed what they created. */
  fail_if (g_file_test (area_path, G_FILE_TEST_EXISTS), "%s left behind",
      area_path);
  fail_if (g_file_test (sock_path, G_FILE_TEST_EXISTS), "%s left behind",
      sock_path);
  fail_unless (g_rmdir (tmpdir) == 0, "%s not empty", tmpdir);
  g_clear_pointer (&tmpdir, g_free);
  g_clear_pointer (&area_path, g_free);
  g_clear_pointer (&sock_path, g_free);
}

/* --- bus ------------------------------------------------------------------ */

/* Waits for an error, a warning or an "shm-peer" element message whose
 * text contains @needle; fails the test after 10 s. */
static gchar *
wait_message (GstElement * pipeline, GstMessageType type, const gchar * needle)
{
  GstBus *bus = gst_element_get_bus (pipeline);
  gint64 end = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  gchar *found = NULL;

  while (!found && g_get_monotonic_time () < end) {
    GstMessage *msg = gst_bus_timed_pop_filtered (bus, 100 * GST_MSECOND,
        GST_MESSAGE_ERROR | GST_MESSAGE_WARNING | GST_MESSAGE_ELEMENT);
    gchar *text = NULL;
    if (!msg)
      continue;
    if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR
        || GST_MESSAGE_TYPE (msg) == GST_MESSAGE_WARNING) {
      GError *err;
      if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR)
        gst_message_parse_error (msg, &err, NULL);
      else
        gst_message_parse_warning (msg, &err, NULL);
      text = g_strdup (err->message);
      g_error_free (err);
    } else if (gst_message_has_name (msg, "shm-peer")) {
      const GstStructure *st = gst_message_get_structure (msg);
      const gchar *reason = gst_structure_get_string (st, "reason");
      text = g_strdup_printf ("event=%s reason=%s",
          gst_structure_get_string (st, "event"), reason ? reason : "");
    }
    if (text && GST_MESSAGE_TYPE (msg) == type && strstr (text, needle))
      found = g_strdup (text);
    else if (text)
      GST_INFO ("skipping message: %s", text);
    g_free (text);
    gst_message_unref (msg);
  }
  gst_object_unref (bus);
  fail_unless (found != NULL, "no message with \"%s\"", needle);
  return found;
}

static void
stop_pipeline (GstElement * pipeline)
{
  fail_unless (gst_element_set_state (pipeline, GST_STATE_NULL) ==
      GST_STATE_CHANGE_SUCCESS);
  gst_object_unref (pipeline);
}

/* --- a fake peer speaking the protocol (or not) ---------------------------- */

typedef struct
{
  GSocket *sock;
  GByteArray *in;
} Peer;

static Peer *
peer_connect (const gchar * path)
{
  Peer *p = g_new0 (Peer, 1);
  GSocketAddress *sa = g_unix_socket_address_new (path);
  gint64 end = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;

  p->in = g_byte_array_new ();
  p->sock = g_socket_new (G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM, 0, NULL);
  while (!g_socket_connect (p->sock, sa, NULL, NULL)) {
    fail_unless (g_get_monotonic_time () < end, "cannot connect to %s", path);
    g_usleep (20000);
  }
  g_object_unref (sa);
  g_socket_set_timeout (p->sock, 10);
  return p;
}

static GSocket *
fake_listen (const gchar * path)
{
  GSocket *l = g_socket_new (G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM, 0,
      NULL);
  GSocketAddress *sa = g_unix_socket_address_new (path);

  fail_unless (g_socket_bind (l, sa, TRUE, NULL));
  fail_unless (g_socket_listen (l, NULL));
  g_socket_set_timeout (l, 10);
  g_object_unref (sa);
  return l;
}

static Peer *
peer_accept (GSocket * listener)
{
  Peer *p = g_new0 (Peer, 1);

  p->in = g_byte_array_new ();
  p->sock = g_socket_accept (listener, NULL, NULL);
  fail_unless (p->sock != NULL, "nobody connected");
  g_socket_set_timeout (p->sock, 10);
  return p;
}

static void
peer_free (Peer * p)
{
  g_socket_close (p->sock, NULL);
  g_object_unref (p->sock);
  g_byte_array_unref (p->in);
  g_free (p);
}

static void
peer_send_raw (Peer * p, const void *data, gsize len)
{
  fail_unless (g_socket_send (p->sock, data, len, NULL, NULL) == (gssize) len);
}

static void
peer_send (Peer * p, guint32 type, GVariant * body)
{
  GBytes *b = shm_msg_encode (type, body);
  gsize n;
  const guint8 *d = g_bytes_get_data (b, &n);

  peer_send_raw (p, d, n);
  g_bytes_unref (b);
}

/* Reads the next message; skips pings. */
static GVariant *
peer_recv (Peer * p, guint32 * type)
{
  for (;;) {
    GVariant *body;
    const guint8 *payload;
    gsize consumed, plen;
    GError *err = NULL;
    guint8 buf[65536];
    gssize n;

    if (shm_msg_parse (p->in->data, p->in->len, 0, &consumed, type, &body,
            &payload, &plen, &err) == SHM_PARSE_OK) {
      g_byte_array_remove_range (p->in, 0, consumed);
      if (*type == SHM_MSG_PING) {
        g_variant_unref (body);
        continue;
      }
      return body;
    }
    fail_unless (err == NULL);
    n = g_socket_receive (p->sock, (gchar *) buf, sizeof buf, NULL, NULL);
    if (n <= 0)
      return NULL;
    g_byte_array_append (p->in, buf, n);
  }
}

static GVariant *
peer_expect (Peer * p, guint32 want)
{
  guint32 type = 0;
  GVariant *body = peer_recv (p, &type);

  fail_unless (body != NULL, "connection closed, expected %s",
      shm_msg_type_name (want));
  fail_unless_equals_string (shm_msg_type_name (type),
      shm_msg_type_name (want));
  return body;
}

/* A receiver's hello of versions @min to @max that announces, besides
 * futexes, two feature bits no version defines (they must be ignored). */
static GVariant *
hello_range (guint32 min, guint32 max, const gchar * caps)
{
  ShmHello h = { 0, };

  h.version_min = min;
  h.version_max = max;
  h.features = SHM_FEATURE_FUTEX | (G_GUINT64_CONSTANT (3) << 62);
  h.path = area_path;
  h.caps = (gchar *) caps;
  h.boot_id = "not this kernel";
  return shm_hello_encode (&h);
}

static GVariant *
hello_body (guint32 version, const gchar * caps)
{
  return hello_range (version, version, caps);
}

static GstElement *
start_sender (const gchar * extra)
{
  gchar *desc = g_strdup_printf ("videotestsrc is-live=true ! "
      "video/x-raw,format=BGRx,width=64,height=48,framerate=30/1 ! "
      "shmsink name=sink path=%s %s", area_path, extra ? extra : "");
  GstElement *pipeline = gst_parse_launch (desc, NULL);

  fail_unless (pipeline != NULL);
  g_free (desc);
  fail_if (gst_element_set_state (pipeline, GST_STATE_PLAYING) ==
      GST_STATE_CHANGE_FAILURE);
  /* the control socket exists once started; the area comes with the caps,
   * which wait for a receiver's hello */
  for (guint i = 0; i < 500 && !g_file_test (sock_path, G_FILE_TEST_EXISTS);
      i++)
    g_usleep (10000);
  fail_unless (g_file_test (sock_path, G_FILE_TEST_EXISTS));
  return pipeline;
}

/* A complete handshake with a real sink, as shmsrc does it; the channel
 * of its lane is @chan (shm_chan_rx_clear() it). */
static ShmArea *
fake_receiver_handshake (Peer * p, ShmMmapInfo * m, ShmChanRx * chan)
{
  GVariant *mmap, *ready;
  ShmReply r = { 0, };
  ShmArea *area;
  ShmReady rd;

  peer_send (p, SHM_MSG_HELLO, hello_body (SHM_PROTO_VERSION, NULL));
  mmap = peer_expect (p, SHM_MSG_MMAP);
  fail_unless (shm_mmap_decode (mmap, m, NULL));
  g_variant_unref (mmap);
  area = shm_area_open (area_path, 0, NULL);
  fail_unless (area != NULL);
  fail_unless (shm_area_check_header (area, &m->geo, NULL));
  fail_unless (shm_area_check_token (area, &m->geo, m->lane, m->token,
          m->token_bytes, m->token_index));
  fail_unless (shm_area_write_token (area, &m->geo, m->lane, m->token_index,
          r.token, 16, &r.token_index, NULL));
  r.session = m->geo.session_id;
  r.token_bytes = 16;
  peer_send (p, SHM_MSG_MMAP_REPLY, shm_reply_encode (&r));
  ready = peer_expect (p, SHM_MSG_READY);
  fail_unless (shm_ready_decode (ready, &rd, NULL));
  /* another boot id: woken by doorbell messages, not futexes */
  fail_unless_equals_int (rd.wake, SHM_WAKE_DOORBELL);
  shm_ready_clear (&rd);
  g_variant_unref (ready);
  shm_chan_rx_init (chan, shm_area_channel (area, &m->geo, m->lane),
      m->geo.chan_depth, m->lane_gen);
  return area;
}

/* --- pool ---------------------------------------------------------------- */

GST_START_TEST (test_pool)
{
  GstHarness *h;
  GstQuery *q;
  GstBufferPool *pool;
  GstStructure *config;
  GstBuffer *bufs[3], *extra = NULL;
  GstBufferPoolAcquireParams params = { 0, };
  GstCaps *caps;
  guint size, min, max;
  gchar *props;

  props = g_strdup_printf ("shmsink path=%s num-slots=3 "
      "wait-for-receiver=false", area_path);
  h = gst_harness_new_parse (props);
  g_free (props);
  gst_harness_set_src_caps_str (h, "video/x-raw,format=I420,width=330,"
      "height=240,framerate=30/1");
  gst_harness_play (h);
  /* the caps event reaches the sink with the first buffer */
  fail_unless_equals_int (gst_harness_push (h,
          gst_buffer_new_allocate (NULL, 330 * 240 * 3 / 2 + 1000, NULL)),
      GST_FLOW_OK);

  caps = gst_caps_from_string ("video/x-raw,format=I420,width=330,"
      "height=240,framerate=30/1");
  q = gst_query_new_allocation (caps, TRUE);
  fail_unless (gst_pad_peer_query (h->srcpad, q));
  fail_unless (gst_query_get_n_allocation_pools (q) == 1);
  fail_unless (gst_query_find_allocation_meta (q, GST_VIDEO_META_API_TYPE,
          NULL));
  gst_query_parse_nth_allocation_pool (q, 0, &pool, &size, &min, &max);
  fail_unless_equals_int (max, 3);
  fail_unless_equals_string (G_OBJECT_TYPE_NAME (pool), "GstShmPool");

  config = gst_buffer_pool_get_config (pool);
  gst_buffer_pool_config_add_option (config, GST_BUFFER_POOL_OPTION_VIDEO_META);
  fail_unless (gst_buffer_pool_set_config (pool, config));
  fail_unless (gst_buffer_pool_set_active (pool, TRUE));

  for (guint i = 0; i < 3; i++) {
    GstVideoMeta *vm;
    GstMemory *mem;
    fail_unless_equals_int (gst_buffer_pool_acquire_buffer (pool, &bufs[i],
            NULL), GST_FLOW_OK);
    mem = gst_buffer_peek_memory (bufs[i], 0);
    fail_unless (gst_memory_is_type (mem, "GstShmSlotMemory"));
    vm = gst_buffer_get_video_meta (bufs[i]);
    fail_unless (vm != NULL);
    /* strides padded for SIMD */
    for (guint p = 0; p < vm->n_planes; p++)
      fail_unless_equals_int (vm->stride[p] % 64, 0);
    fail_unless_equals_int (vm->stride[0], 384);
  }
  /* every slot is out: no fourth */
  params.flags = GST_BUFFER_POOL_ACQUIRE_FLAG_DONTWAIT;
  fail_unless_equals_int (gst_buffer_pool_acquire_buffer (pool, &extra,
          &params), GST_FLOW_EOS);
  /* a slot comes back when its buffer does */
  gst_buffer_unref (bufs[1]);
  fail_unless_equals_int (gst_buffer_pool_acquire_buffer (pool, &bufs[1],
          &params), GST_FLOW_OK);
  for (guint i = 0; i < 3; i++)
    gst_buffer_unref (bufs[i]);
  fail_unless (gst_buffer_pool_set_active (pool, FALSE));
  gst_object_unref (pool);
  gst_query_unref (q);
  gst_caps_unref (caps);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* --- one process, both elements ------------------------------------------ */

GST_START_TEST (test_roundtrip_in_process)
{
  GstHarness *hsink, *hsrc;
  GstBufferPool *pool;
  GstQuery *q;
  GstCaps *caps;
  GstStructure *stats;
  GstEvent *ev;
  guint64 n;
  gchar *desc;
  const guint N = 12, FRAME = 64 * 48 * 4;

  desc = g_strdup_printf ("shmsrc path=%s is-live=false", area_path);
  hsrc = gst_harness_new_parse (desc);
  g_free (desc);
  gst_harness_play (hsrc);

  desc = g_strdup_printf ("shmsink path=%s", area_path);
  hsink = gst_harness_new_parse (desc);
  g_free (desc);
  gst_harness_set_src_caps_str (hsink, "video/x-raw,format=BGRx,width=64,"
      "height=48,framerate=30/1");
  gst_harness_play (hsink);

  caps = gst_caps_from_string ("video/x-raw,format=BGRx,width=64,height=48,"
      "framerate=30/1");
  /* the first frame is copied: it also brings the caps (the pool comes
   * with the area, which the caps create) */
  {
    GstBuffer *b = gst_buffer_new_allocate (NULL, FRAME, NULL);
    gst_buffer_memset (b, 0, 0xa0, FRAME);
    GST_BUFFER_PTS (b) = 0;
    GST_BUFFER_DURATION (b) = GST_SECOND / 30;
    fail_unless_equals_int (gst_harness_push (hsink, b), GST_FLOW_OK);
  }
  q = gst_query_new_allocation (caps, TRUE);
  fail_unless (gst_pad_peer_query (hsink->srcpad, q));
  gst_query_parse_nth_allocation_pool (q, 0, &pool, NULL, NULL, NULL);
  fail_unless (pool != NULL);
  fail_unless (gst_buffer_pool_set_active (pool, TRUE));

  for (guint i = 1; i < N; i++) {
    GstBuffer *b;
    fail_unless_equals_int (gst_buffer_pool_acquire_buffer (pool, &b, NULL),
        GST_FLOW_OK);
    gst_buffer_memset (b, 0, 0xa0 + i, FRAME);
    GST_BUFFER_PTS (b) = i * GST_SECOND / 30;
    GST_BUFFER_DURATION (b) = GST_SECOND / 30;
    GST_BUFFER_FLAG_SET (b, GST_BUFFER_FLAG_DISCONT);
    fail_unless_equals_int (gst_harness_push (hsink, b), GST_FLOW_OK);
  }
  gst_harness_push_event (hsink, gst_event_new_eos ());

  /* let shmsrc push everything before anything is released */
  {
    GstElement *src = gst_harness_find_element (hsrc, "shmsrc");
    guint64 pushed = 0;
    for (guint k = 0; k < 1000 && pushed < N; k++) {
      g_object_get (src, "stats", &stats, NULL);
      gst_structure_get_uint64 (stats, "frames-pushed", &pushed);
      gst_structure_free (stats);
      g_usleep (10000);
    }
    fail_unless_equals_uint64 (pushed, N);
    gst_object_unref (src);
  }

  for (guint i = 0; i < N; i++) {
    GstBuffer *b = gst_harness_pull (hsrc);
    GstMapInfo map;
    fail_unless (b != NULL);
    fail_unless_equals_uint64 (GST_BUFFER_PTS (b), i * GST_SECOND / 30);
    fail_unless_equals_uint64 (GST_BUFFER_DURATION (b), GST_SECOND / 30);
    /* the flags of the sender's buffers (basesrc marks the first) */
    fail_unless (GST_BUFFER_FLAG_IS_SET (b, GST_BUFFER_FLAG_DISCONT));
    fail_unless (gst_buffer_map (b, &map, GST_MAP_READ));
    fail_unless_equals_int (map.size, FRAME);
    for (guint k = 0; k < FRAME; k += 97)
      fail_unless_equals_int (map.data[k], 0xa0 + i);
    gst_buffer_unmap (b, &map);
    /* The harness keeps every buffer until it is pulled: the first three
     * are slots (read-only, in place); then shmsrc keeps one slot of the
     * four for the sender and copies. */
    fail_unless (GST_MEMORY_IS_READONLY (gst_buffer_peek_memory (b, 0)) ==
        (i < 3), "frame %u: read-only %d", i,
        GST_MEMORY_IS_READONLY (gst_buffer_peek_memory (b, 0)));
    gst_buffer_unref (b);
  }
  {
    GstCaps *got = gst_pad_get_current_caps (hsrc->sinkpad);
    fail_unless (gst_caps_is_equal (got, caps));
    gst_caps_unref (got);
  }
  while ((ev = gst_harness_pull_event (hsrc))) {
    gboolean eos = GST_EVENT_TYPE (ev) == GST_EVENT_EOS;
    gst_event_unref (ev);
    if (eos)
      break;
  }
  fail_unless (ev != NULL, "no EOS");

  {
    GstElement *sink = gst_harness_find_element (hsink, "shmsink");
    g_object_get (sink, "stats", &stats, NULL);
    gst_object_unref (sink);
  }
  fail_unless (gst_structure_get_uint64 (stats, "frames-zero-copy", &n));
  fail_unless_equals_uint64 (n, N - 1);
  fail_unless (gst_structure_get_uint64 (stats, "frames-copied", &n));
  fail_unless_equals_uint64 (n, 1);
  fail_unless (gst_structure_get_uint64 (stats, "bytes-copied", &n));
  fail_unless_equals_uint64 (n, FRAME);
  gst_structure_free (stats);
  {
    GstElement *src = gst_harness_find_element (hsrc, "shmsrc");
    g_object_get (src, "stats", &stats, NULL);
    gst_object_unref (src);
  }
  fail_unless (gst_structure_get_uint64 (stats, "frames-zero-copy", &n));
  fail_unless_equals_uint64 (n, 3);
  fail_unless (gst_structure_get_uint64 (stats, "frames-copied", &n));
  fail_unless_equals_uint64 (n, N - 3);
  gst_structure_free (stats);

  gst_buffer_pool_set_active (pool, FALSE);
  gst_object_unref (pool);
  gst_query_unref (q);
  gst_caps_unref (caps);
  gst_harness_teardown (hsink);
  gst_harness_teardown (hsrc);
}

GST_END_TEST;

/* --- receivers' reports ---------------------------------------------------- */

typedef struct
{
  gint qos;
  gdouble max_proportion;
} QosSeen;

static GstPadProbeReturn
qos_probe (GstPad * pad, GstPadProbeInfo * info, gpointer data)
{
  GstEvent *ev = GST_PAD_PROBE_INFO_EVENT (info);
  QosSeen *seen = data;
  gdouble proportion;

  if (GST_EVENT_TYPE (ev) == GST_EVENT_QOS) {
    gst_event_parse_qos (ev, NULL, &proportion, NULL, NULL);
    g_atomic_int_inc (&seen->qos);
    if (proportion > seen->max_proportion)
      seen->max_proportion = proportion;
  }
  return GST_PAD_PROBE_OK;
}

static GstElement *
play (const gchar * desc)
{
  GstElement *p = gst_parse_launch (desc, NULL);

  fail_unless (p != NULL, "%s", desc);
  fail_if (gst_element_set_state (p, GST_STATE_PLAYING) ==
      GST_STATE_CHANGE_FAILURE);
  return p;
}

/* Of @receivers (shmsink's view), the one whose last report says that
 * its downstream falls behind (QoS proportion above 1), or the other;
 * @lost: what it dropped and missed in that report's interval. */
static const GstStructure *
receiver_report (const GValue * receivers, gboolean slow, guint64 * lost)
{
  for (guint i = 0; i < gst_value_array_get_size (receivers); i++) {
    const GstStructure *r =
        gst_value_get_structure (gst_value_array_get_value (receivers, i));
    gdouble proportion = 0;
    guint64 d = 0, m = 0;

    if (!gst_structure_get_double (r, "qos-proportion", &proportion))
      continue;
    gst_structure_get_uint64 (r, "dropped", &d);
    gst_structure_get_uint64 (r, "missed", &m);
    if (slow == (proportion > 1.0)) {
      *lost = d + m;
      return r;
    }
  }
  return NULL;
}

/* Two receivers, one whose downstream is too slow (a sink with sync=true
 * behind an identity that sleeps longer than a frame): its QoS reaches
 * upstream of shmsink, and shmsink's view of it shows its drops and
 * latency; the fast one's stays clean. */
GST_START_TEST (test_reports_qos)
{
  gchar *desc = g_strdup_printf ("videotestsrc is-live=true ! "
      "video/x-raw,format=BGRx,width=64,height=48,framerate=30/1 ! "
      "identity name=up ! shmsink name=sink path=%s min-receivers=2",
      area_path);
  GstElement *snd = play (desc), *slow, *fast, *sink, *up;
  gchar *sd = g_strdup_printf ("shmsrc path=%s ! identity sleep-time=60000 "
      "! fakesink sync=true qos=true", area_path);
  gchar *fd = g_strdup_printf ("shmsrc path=%s ! fakesink sync=true "
      "qos=true", area_path);
  gint64 end = g_get_monotonic_time () + 20 * G_USEC_PER_SEC;
  QosSeen seen = { 0, };
  GstPad *pad;
  gboolean done = FALSE;

  g_free (desc);
  slow = play (sd);
  fast = play (fd);
  g_free (sd);
  g_free (fd);
  sink = gst_bin_get_by_name (GST_BIN (snd), "sink");
  up = gst_bin_get_by_name (GST_BIN (snd), "up");
  pad = gst_element_get_static_pad (up, "src");
  gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_EVENT_UPSTREAM, qos_probe,
      &seen, NULL);
  while (!done) {
    GValue receivers = G_VALUE_INIT;
    const GstStructure *s, *f;
    guint64 slow_lost = 0, fast_lost = 0, p50 = 0;

    fail_unless (g_get_monotonic_time () < end, "no QoS upstream (%d seen, "
        "proportion %f) or no reports", g_atomic_int_get (&seen.qos),
        seen.max_proportion);
    g_usleep (200000);
    g_value_init (&receivers, GST_TYPE_ARRAY);
    g_object_get_property (G_OBJECT (sink), "receivers", &receivers);
    s = receiver_report (&receivers, TRUE, &slow_lost);
    f = receiver_report (&receivers, FALSE, &fast_lost);
    if (s && f && g_atomic_int_get (&seen.qos) > 0) {
      fail_unless (seen.max_proportion > 1.0, "proportion %f",
          seen.max_proportion);
      fail_unless (gst_structure_get_uint64 (s, "latency-p50", &p50));
      if (slow_lost > 0 && p50 > 0) {
        fail_unless_equals_int (fast_lost, 0);
        done = TRUE;
      }
    }
    g_value_unset (&receivers);
  }
  gst_object_unref (pad);
  gst_object_unref (up);
  gst_object_unref (sink);
  stop_pipeline (slow);
  stop_pipeline (fast);
  stop_pipeline (snd);
}

GST_END_TEST;

/* --- a fake receiver against shmsink --------------------------------------- */

GST_START_TEST (test_sink_garbage)
{
  GstElement *pipeline = start_sender (NULL);
  Peer *p = peer_connect (sock_path);
  gchar *msg;

  peer_send_raw (p, "GARBAGE GARBAGE GARBAGE", 23);
  msg = wait_message (pipeline, GST_MESSAGE_ELEMENT, "event=lost");
  fail_unless (strstr (msg, "sent a malformed control message: bad magic "
          "0x42524147") != NULL, "%s", msg);
  g_free (msg);
  peer_free (p);
  stop_pipeline (pipeline);
}

GST_END_TEST;

GST_START_TEST (test_sink_truncated)
{
  GstElement *pipeline = start_sender (NULL);
  Peer *p = peer_connect (sock_path);
  GBytes *m = shm_msg_encode (SHM_MSG_HELLO, hello_body (2, NULL));
  gsize n;
  const guint8 *d = g_bytes_get_data (m, &n);
  gchar *msg;

  peer_send_raw (p, d, n - 3);
  peer_free (p);
  msg = wait_message (pipeline, GST_MESSAGE_ELEMENT, "event=lost");
  fail_unless (strstr (msg, "closed the connection in the middle of a "
          "message") != NULL, "%s", msg);
  g_free (msg);
  g_bytes_unref (m);
  stop_pipeline (pipeline);
}

GST_END_TEST;

GST_START_TEST (test_sink_peer_closes_mid_handshake)
{
  GstElement *pipeline = start_sender (NULL);
  Peer *p = peer_connect (sock_path);
  GVariant *mmap;
  gchar *msg;

  peer_send (p, SHM_MSG_HELLO, hello_body (2, NULL));
  mmap = peer_expect (p, SHM_MSG_MMAP);
  g_variant_unref (mmap);
  peer_free (p);
  msg = wait_message (pipeline, GST_MESSAGE_ELEMENT, "event=lost");
  fail_unless (strstr (msg, "closed the connection without saying bye")
      != NULL, "%s", msg);
  g_free (msg);

  /* the sink still serves a real receiver */
  {
    gchar *desc = g_strdup_printf ("shmsrc path=%s num-buffers=3 ! fakesink",
        area_path);
    GstElement *recv = gst_parse_launch (desc, NULL);
    GstMessage *m;
    g_free (desc);
    gst_element_set_state (recv, GST_STATE_PLAYING);
    m = gst_bus_timed_pop_filtered (GST_ELEMENT_BUS (recv), 10 * GST_SECOND,
        GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
    fail_unless (m != NULL && GST_MESSAGE_TYPE (m) == GST_MESSAGE_EOS);
    gst_message_unref (m);
    stop_pipeline (recv);
  }
  stop_pipeline (pipeline);
}

GST_END_TEST;

/* After a hostile peer: the sink posted no error, and an honest receiver
 * that comes next gets frames. */
static void
still_serving (GstElement * pipeline)
{
  GstBus *bus = gst_element_get_bus (pipeline);
  GstMessage *error = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  Peer *p = peer_connect (sock_path);
  gint64 end = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  ShmMmapInfo m;
  ShmChanRx chan;
  ShmArea *area;
  guint32 pending = 0;

  fail_unless (error == NULL, "the sink failed");
  gst_object_unref (bus);
  area = fake_receiver_handshake (p, &m, &chan);
  while (shm_chan_rx_pending (&chan, &pending, NULL) && pending == 0) {
    fail_unless (g_get_monotonic_time () < end, "no frame for an honest "
        "receiver");
    g_usleep (5000);
  }
  shm_chan_rx_clear (&chan);
  shm_mmap_clear (&m);
  shm_area_unref (area);
  peer_free (p);
}

GST_START_TEST (test_sink_bad_hello)
{
  GstElement *pipeline = start_sender (NULL);
  struct
  {
    GVariant *body;
    const gchar *text;
  } cases[] = {
    {hello_body (7, NULL), "protocol version 7 is not supported: this "
          "shmsink speaks version 2"},
    {hello_range (3, 5, NULL), "protocol versions 3 to 5 are not "
          "supported: this shmsink speaks version 2"},
    {hello_body (1, NULL), "protocol version 1 is not supported: this "
          "shmsink speaks version 2"},
    {NULL, "invalid hello: field \"version\" has type s, expected u"},
    {hello_body (2, "video/x-raw,format=NOPE"), "invalid hello: caps name "
          "an unknown video format \"NOPE\""},
    {hello_body (2, "video/x-raw,,,,=="), "invalid hello: caps "},
    {NULL, "invalid hello: field \"caps\" is 70000 bytes long, the limit "
          "is 65536"},
    {hello_body (2, "EMPTY"), "its hello accepts no caps at all (EMPTY)"},
  };
  GVariantDict d;
  gchar *huge = g_strnfill (70000, 'x');

  memcpy (huge, "video/x-raw,a=", 14);
  g_variant_dict_init (&d, NULL);
  g_variant_dict_insert (&d, "version", "s", "1");
  cases[3].body = g_variant_dict_end (&d);
  cases[6].body = hello_body (2, huge);
  g_free (huge);

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    Peer *p = peer_connect (sock_path);
    GVariant *err;
    const gchar *text;
    gchar *msg;

    peer_send (p, SHM_MSG_HELLO, cases[i].body);
    err = peer_expect (p, SHM_MSG_ERROR);
    text = shm_msg_get_text (err, "message");
    fail_unless (text && strstr (text, cases[i].text), "got %s", text);
    msg = wait_message (pipeline, GST_MESSAGE_ELEMENT, "event=refused");
    fail_unless (strstr (msg, cases[i].text) != NULL, "%s", msg);
    g_free (msg);
    g_variant_unref (err);
    peer_free (p);
  }
  still_serving (pipeline);
  stop_pipeline (pipeline);
}

GST_END_TEST;

static void
forged_reply (gboolean echo)
{
  GstElement *pipeline = start_sender (NULL);
  Peer *p = peer_connect (sock_path);
  GVariant *mmap, *err;
  GVariantDict d;
  const guint8 *tok;
  gsize tlen;
  guint64 session, idx;
  guint8 forged[16] = { 9, 9, 9 };
  gchar *msg;

  peer_send (p, SHM_MSG_HELLO, hello_body (2, NULL));
  mmap = peer_expect (p, SHM_MSG_MMAP);
  fail_unless (shm_msg_get_u64 (mmap, "session", 0, G_MAXUINT64, &session,
          NULL));
  fail_unless (shm_msg_get_bytes (mmap, "token", 16, 16, &tok, &tlen, NULL));
  fail_unless (shm_msg_get_u64 (mmap, "token_index", 0, G_MAXUINT64, &idx,
          NULL));
  g_variant_dict_init (&d, NULL);
  g_variant_dict_insert (&d, "session", "t", session);
  /* either the sink's own token sent back, or one never written */
  g_variant_dict_insert_value (&d, "token",
      g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, echo ? tok : forged,
          16, 1));
  g_variant_dict_insert (&d, "token_index", "t", echo ? idx : idx + 1);
  g_variant_dict_insert (&d, "token_bytes", "u", 16);
  peer_send (p, SHM_MSG_MMAP_REPLY, g_variant_dict_end (&d));
  g_variant_unref (mmap);

  err = peer_expect (p, SHM_MSG_ERROR);
  fail_unless_equals_string (shm_msg_get_text (err, "code"), "token");
  g_variant_unref (err);
  /* a warning: that receiver is dropped, the sender goes on */
  msg = wait_message (pipeline, GST_MESSAGE_WARNING, "do not map the same "
      "memory");
  fail_unless (strstr (msg, area_path) != NULL, "%s", msg);
  g_free (msg);
  peer_free (p);
  still_serving (pipeline);
  stop_pipeline (pipeline);
}

/* A receiver that floods the sink with messages, and one that sends the
 * handshake's messages out of order: neither stops it for an honest
 * receiver. */
GST_START_TEST (test_sink_flood_and_reorder)
{
  GstElement *pipeline = start_sender (NULL);
  Peer *flood = peer_connect (sock_path), *reorder;
  GVariant *err;
  GVariantDict d;
  gchar *msg;

  peer_send (flood, SHM_MSG_HELLO, hello_body (2, NULL));
  for (guint i = 0; i < 20000; i++)
    peer_send (flood, i % 2 ? SHM_MSG_PING : 200, NULL);

  reorder = peer_connect (sock_path);
  g_variant_dict_init (&d, NULL);
  g_variant_dict_insert (&d, "session", "t", (guint64) 1);
  g_variant_dict_insert (&d, "inline", "b", TRUE);
  peer_send (reorder, SHM_MSG_MMAP_REPLY, g_variant_dict_end (&d));
  err = peer_expect (reorder, SHM_MSG_ERROR);
  fail_unless_equals_string (shm_msg_get_text (err, "code"), "protocol");
  g_variant_unref (err);
  msg = wait_message (pipeline, GST_MESSAGE_ELEMENT, "event=refused");
  g_free (msg);

  still_serving (pipeline);
  peer_free (flood);
  peer_free (reorder);
  stop_pipeline (pipeline);
}

GST_END_TEST;

/* A receiver that may write the file truncates it under the sink: no
 * SIGBUS; the sink fails with an error that says what happened. */
GST_START_TEST (test_sink_area_truncated)
{
  GstElement *pipeline = start_sender (NULL);
  Peer *p = peer_connect (sock_path);
  ShmMmapInfo m;
  ShmChanRx chan;
  ShmArea *area = fake_receiver_handshake (p, &m, &chan);
  gchar *msg;

  fail_unless (truncate (area_path, 4096) == 0);
  msg = wait_message (pipeline, GST_MESSAGE_ERROR, "was truncated by another "
      "process while this shmsink used it");
  g_free (msg);
  shm_chan_rx_clear (&chan);
  shm_mmap_clear (&m);
  shm_area_unref (area);
  peer_free (p);
  stop_pipeline (pipeline);
}

GST_END_TEST;

GST_START_TEST (test_sink_forged_token)
{
  forged_reply (FALSE);
}

GST_END_TEST;

GST_START_TEST (test_sink_echoed_token)
{
  forged_reply (TRUE);
}

GST_END_TEST;

GST_START_TEST (test_sink_release_not_held)
{
  GstElement *pipeline = start_sender ("num-slots=4");
  Peer *p = peer_connect (sock_path);
  gint64 end = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  guint8 bytes[SHM_RECORD_SIZE];
  ShmMmapInfo m;
  ShmChanRx chan;
  ShmRecord rec;
  ShmArea *area = fake_receiver_handshake (p, &m, &chan);
  guint32 pending = 0;
  gchar *msg;

  fail_unless_equals_int (m.geo.n_slots, 4);
  /* a frame arrives in the channel; give back a slot no frame was in */
  while (shm_chan_rx_pending (&chan, &pending, NULL) && pending == 0) {
    fail_unless (g_get_monotonic_time () < end, "no frame");
    g_usleep (5000);
  }
  shm_chan_rx_peek (&chan, bytes);
  fail_unless (shm_record_decode (bytes, &rec, NULL));
  fail_unless_equals_int (rec.type, SHM_RECORD_FRAME);
  shm_chan_rx_pop (&chan);
  fail_unless (shm_chan_rx_release (&chan, rec.seq + 1000, 5));
  msg = wait_message (pipeline, GST_MESSAGE_ELEMENT, "event=refused");
  fail_unless (strstr (msg, "released slot 5 (frame") != NULL, "%s", msg);
  fail_unless (strstr (msg, "which it does not hold") != NULL, "%s", msg);
  g_free (msg);
  shm_chan_rx_clear (&chan);
  shm_mmap_clear (&m);
  shm_area_unref (area);
  peer_free (p);
  stop_pipeline (pipeline);
}

GST_END_TEST;

/* A receiver that stops releasing while every slot is taken starves the
 * others: past peer-timeout it is dropped, with a warning, and the honest
 * receiver beside it gets frames again. */
GST_START_TEST (test_sink_receiver_never_releases)
{
  GstElement *pipeline = start_sender ("num-slots=4 peer-timeout=1000000000 "
      "slot-timeout=100000000");
  Peer *bad = peer_connect (sock_path), *good;
  ShmMmapInfo mb, mg;
  ShmChanRx cb, cg;
  ShmArea *ab = fake_receiver_handshake (bad, &mb, &cb), *ag;
  gint64 end = g_get_monotonic_time () + 20 * G_USEC_PER_SEC, last_ping = 0;
  GstBus *bus = gst_element_get_bus (pipeline);
  guint after = 0;
  gboolean dropped = FALSE;

  good = peer_connect (sock_path);
  ag = fake_receiver_handshake (good, &mg, &cg);
  while (after < 10) {
    guint8 bytes[SHM_RECORD_SIZE];
    guint32 pending = 0;
    ShmRecord rec;
    GstMessage *msg;

    fail_unless (g_get_monotonic_time () < end, "the honest receiver got %u "
        "frames after the other was dropped (dropped: %d)", after, dropped);
    /* both say they are alive; only one gives slots back */
    if (g_get_monotonic_time () - last_ping > 200000) {
      last_ping = g_get_monotonic_time ();
      peer_send (good, SHM_MSG_PING, NULL);
      if (!dropped)
        peer_send (bad, SHM_MSG_PING, NULL);
    }
    while ((msg = gst_bus_pop_filtered (bus, GST_MESSAGE_WARNING
                | GST_MESSAGE_ERROR))) {
      GError *err;
      fail_if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR);
      gst_message_parse_warning (msg, &err, NULL);
      if (strstr (err->message, "Dropped receiver")
          && strstr (err->message, "kept its frames while every slot was "
              "taken"))
        dropped = TRUE;
      g_error_free (err);
      gst_message_unref (msg);
    }
    if (!shm_chan_rx_pending (&cg, &pending, NULL) || pending == 0) {
      g_usleep (2000);
      continue;
    }
    shm_chan_rx_peek (&cg, bytes);
    fail_unless (shm_record_decode (bytes, &rec, NULL));
    shm_chan_rx_pop (&cg);
    if (rec.type == SHM_RECORD_FRAME) {
      fail_unless (shm_chan_rx_release (&cg, rec.seq, rec.slot));
      if (dropped)
        after++;
    }
  }
  gst_object_unref (bus);
  shm_chan_rx_clear (&cb);
  shm_chan_rx_clear (&cg);
  shm_mmap_clear (&mb);
  shm_mmap_clear (&mg);
  shm_area_unref (ab);
  shm_area_unref (ag);
  peer_free (bad);
  peer_free (good);
  stop_pipeline (pipeline);
}

GST_END_TEST;

typedef struct
{
  GstPad *pad;
  GstCaps *caps;
  gint done;
} CapsQuery;

static gpointer
query_caps_thread (gpointer data)
{
  CapsQuery *q = data;

  q->caps = gst_pad_query_caps (q->pad, NULL);
  g_atomic_int_set (&q->done, 1);
  return NULL;
}

GST_START_TEST (test_sink_caps_query_flush)
{
  /* A caps query that waits for the first receiver ends at a flush (as a
   * flushing seek needs: the source's streaming thread may be in it). */
  GstElement *sink = gst_element_factory_make ("shmsink", NULL);
  CapsQuery q = { NULL, NULL, 0 };
  GThread *thread;
  gint i;

  g_object_set (sink, "path", area_path, NULL);
  q.pad = gst_element_get_static_pad (sink, "sink");
  fail_unless (gst_element_set_state (sink, GST_STATE_PAUSED) !=
      GST_STATE_CHANGE_FAILURE);
  thread = g_thread_new ("caps-query", query_caps_thread, &q);
  g_usleep (200 * 1000);
  fail_if (g_atomic_int_get (&q.done), "the caps query did not wait");
  fail_unless (gst_pad_send_event (q.pad, gst_event_new_flush_start ()));
  for (i = 0; i < 500 && !g_atomic_int_get (&q.done); i++)
    g_usleep (10 * 1000);
  fail_unless (g_atomic_int_get (&q.done), "a flush did not end the wait");
  g_thread_join (thread);
  fail_unless (q.caps != NULL);
  gst_caps_unref (q.caps);
  fail_unless (gst_pad_send_event (q.pad, gst_event_new_flush_stop (TRUE)));
  gst_element_set_state (sink, GST_STATE_NULL);
  gst_object_unref (q.pad);
  gst_object_unref (sink);
  fail_if (g_file_test (sock_path, G_FILE_TEST_EXISTS));
}

GST_END_TEST;

GST_START_TEST (test_sink_receiver_timeout)
{
  /* A receiver that stops answering (no release, no heartbeat) is
   * dropped, its slots freed. */
  GstElement *pipeline = start_sender ("peer-timeout=1000000000");
  Peer *p = peer_connect (sock_path);
  ShmMmapInfo m;
  ShmChanRx chan;
  ShmArea *area = fake_receiver_handshake (p, &m, &chan);
  gchar *msg;

  msg = wait_message (pipeline, GST_MESSAGE_ELEMENT, "event=lost");
  fail_unless (strstr (msg, "no message for") != NULL, "%s", msg);
  g_free (msg);
  shm_chan_rx_clear (&chan);
  shm_mmap_clear (&m);
  shm_area_unref (area);
  peer_free (p);
  stop_pipeline (pipeline);
}

GST_END_TEST;

GST_START_TEST (test_sink_receiver_leaves)
{
  /* A receiver that stops says bye: "connected", then "left". */
  GstElement *pipeline = start_sender (NULL);
  gchar *desc = g_strdup_printf ("shmsrc path=%s ! fakesink", area_path);
  GstElement *recv = gst_parse_launch (desc, NULL);
  gchar *msg;

  g_free (desc);
  gst_element_set_state (recv, GST_STATE_PLAYING);
  msg = wait_message (pipeline, GST_MESSAGE_ELEMENT, "event=connected");
  g_free (msg);
  stop_pipeline (recv);
  msg = wait_message (pipeline, GST_MESSAGE_ELEMENT, "event=left");
  fail_unless (strstr (msg, "shmsrc stopped") != NULL, "%s", msg);
  g_free (msg);
  stop_pipeline (pipeline);
}

GST_END_TEST;

/* --- a fake sender against shmsrc ---------------------------------------- */

typedef struct
{
  GstElement *pipeline;
  GSocket *listener;
  Peer *p;
  gchar *fake_sock;
  gchar *fake_area;
  ShmArea *area;
  ShmGeometry geo;
  ShmChanTx chan;
} FakeSender;

static FakeSender *
fake_sender_new (const gchar * extra)
{
  FakeSender *f = g_new0 (FakeSender, 1);
  gchar *desc;

  f->fake_sock = g_build_filename (tmpdir, "fake.sock", NULL);
  f->fake_area = g_build_filename (tmpdir, "fake-area", NULL);
  f->listener = fake_listen (f->fake_sock);
  desc = g_strdup_printf ("shmsrc name=src path=%s control=unix:%s %s ! "
      "fakesink", f->fake_area, f->fake_sock, extra ? extra : "");
  f->pipeline = gst_parse_launch (desc, NULL);
  g_free (desc);
  fail_if (gst_element_set_state (f->pipeline, GST_STATE_PLAYING) ==
      GST_STATE_CHANGE_FAILURE);
  f->p = peer_accept (f->listener);
  return f;
}

static void
fake_sender_free (FakeSender * f)
{
  stop_pipeline (f->pipeline);
  if (f->p)
    peer_free (f->p);
  g_socket_close (f->listener, NULL);
  g_object_unref (f->listener);
  g_unlink (f->fake_sock);
  if (f->area) {
    shm_area_unlink (f->area, NULL);
    shm_area_unref (f->area);
  }
  g_free (f->fake_sock);
  g_free (f->fake_area);
  g_free (f);
}

/* Reads the receiver's hello and sends an mmap hello over a real area;
 * @tweak may spoil one field. */
static guint64
fake_sender_mmap (FakeSender * f, void (*tweak) (GVariantDict * d))
{
  GVariant *hello = peer_expect (f->p, SHM_MSG_HELLO);
  guint64 size = shm_geometry_size_needed (4, 64 * 48 * 4, 0);
  ShmMmapInfo m = { 0, };
  GVariantDict d;

  g_variant_unref (hello);
  f->area = shm_area_create (f->fake_area, size, 0600, 0, NULL, NULL);
  fail_unless (f->area != NULL);
  fail_unless (shm_geometry_compute (&f->geo, size, 4, 64 * 48 * 4, 0, NULL));
  f->geo.session_id = 42;
  shm_area_init_header (f->area, &f->geo);
  fail_unless (shm_area_write_token (f->area, &f->geo, 0, G_MAXUINT64,
          m.token, 16, &m.token_index, NULL));
  shm_chan_tx_init (&f->chan, shm_area_channel (f->area, &f->geo, 0),
      f->geo.chan_depth, 1);
  m.version = SHM_PROTO_VERSION;
  m.geo = f->geo;
  m.file = f->fake_area;
  m.token_bytes = 16;
  m.lane = 0;
  m.lane_gen = 1;
  g_variant_dict_init (&d, shm_mmap_encode (&m));
  if (tweak)
    tweak (&d);
  peer_send (f->p, SHM_MSG_MMAP, g_variant_dict_end (&d));
  return f->geo.session_id;
}

static void
fake_sender_ready (FakeSender * f, const gchar * caps)
{
  GVariant *reply = peer_expect (f->p, SHM_MSG_MMAP_REPLY);
  ShmReady r = { 0, };

  g_variant_unref (reply);
  r.session = f->geo.session_id;
  r.wake = SHM_WAKE_DOORBELL;
  r.caps = (gchar *) caps;
  r.caps_gen = 1;
  peer_send (f->p, SHM_MSG_READY, shm_ready_encode (&r));
}

/* A frame record of one plane in @slot. */
static void
frame_record (ShmRecord * r, guint32 slot, guint64 size, guint32 stride)
{
  memset (r, 0, sizeof *r);
  r->type = SHM_RECORD_FRAME;
  r->slot = slot;
  r->caps_gen = 1;
  r->size = size;
  r->dts = r->duration = r->mono_pts = r->mono_dts = G_MAXUINT64;
  r->buffer_offset = r->buffer_offset_end = G_MAXUINT64;
  r->n_planes = 1;
  r->plane_stride[0] = stride;
}

/* Publishes @r in the receiver's channel, and rings its doorbell. */
static void
fake_sender_publish (FakeSender * f, const ShmRecord * r)
{
  guint8 bytes[SHM_RECORD_SIZE];

  shm_record_encode (r, bytes);
  shm_chan_tx_push (&f->chan, bytes);
  peer_send (f->p, SHM_MSG_DOORBELL, NULL);
}

#define CAPS_64x48 "video/x-raw,format=BGRx,width=64,height=48," \
    "framerate=30/1"

GST_START_TEST (test_src_garbage)
{
  FakeSender *f = fake_sender_new (NULL);
  gchar *msg;

  peer_send_raw (f->p, "NOT A MESSAGE AT ALL", 20);
  msg = wait_message (f->pipeline, GST_MESSAGE_ERROR,
      "sent a malformed control message: bad magic");
  g_free (msg);
  fake_sender_free (f);
}

GST_END_TEST;

GST_START_TEST (test_src_huge_length)
{
  FakeSender *f = fake_sender_new (NULL);
  guint8 hdr[16];
  guint32 v;
  gchar *msg;

  v = GUINT32_TO_LE (SHM_MSG_MAGIC);
  memcpy (hdr, &v, 4);
  v = GUINT32_TO_LE (SHM_MSG_MMAP);
  memcpy (hdr + 4, &v, 4);
  v = GUINT32_TO_LE (0x80000000u);
  memcpy (hdr + 8, &v, 4);
  memset (hdr + 12, 0, 4);
  peer_send_raw (f->p, hdr, sizeof hdr);
  msg = wait_message (f->pipeline, GST_MESSAGE_ERROR,
      "mmap body of 2147483648 bytes exceeds the limit of 1048576");
  g_free (msg);
  fake_sender_free (f);
}

GST_END_TEST;

GST_START_TEST (test_src_truncated)
{
  FakeSender *f = fake_sender_new (NULL);
  GBytes *m = shm_msg_encode (SHM_MSG_PING, NULL);
  gsize n;
  const guint8 *d = g_bytes_get_data (m, &n);
  GVariant *hello = peer_expect (f->p, SHM_MSG_HELLO);
  gchar *msg;

  /* (read first: closing with unread data would reset the connection) */
  g_variant_unref (hello);
  peer_send_raw (f->p, d, n - 1);
  peer_free (f->p);
  f->p = NULL;
  msg = wait_message (f->pipeline, GST_MESSAGE_ERROR,
      "closed the connection in the middle of a message");
  g_free (msg);
  g_bytes_unref (m);
  fake_sender_free (f);
}

GST_END_TEST;

GST_START_TEST (test_src_sender_closes_mid_handshake)
{
  FakeSender *f = fake_sender_new ("timeout=500000000");
  GVariant *hello = peer_expect (f->p, SHM_MSG_HELLO);
  gchar *msg;

  g_variant_unref (hello);
  peer_free (f->p);
  f->p = NULL;
  msg = wait_message (f->pipeline, GST_MESSAGE_WARNING,
      "The sender closed the connection during the handshake");
  g_free (msg);
  /* nobody comes back: the timeout ends the wait */
  g_socket_close (f->listener, NULL);
  g_unlink (f->fake_sock);
  msg = wait_message (f->pipeline, GST_MESSAGE_ERROR, "No sender at unix:");
  g_free (msg);
  fake_sender_free (f);
}

GST_END_TEST;

static void
bad_lane (GVariantDict * d)
{
  g_variant_dict_insert (d, "lane", "u", 99);
}

static void
bad_slot_size (GVariantDict * d)
{
  g_variant_dict_insert (d, "slot-size", "t", G_GUINT64_CONSTANT (1) << 39);
}

static void
one_slot (GVariantDict * d)
{
  g_variant_dict_insert (d, "n-slots", "u", 1);
}

static void
bad_channels (GVariantDict * d)
{
  g_variant_dict_insert (d, "chan-depth", "u", 3);
}

static void
bad_token_bytes (GVariantDict * d)
{
  g_variant_dict_insert (d, "token_bytes", "u", 4096);
}

/* A sender that takes the hello and then says nothing: the receiver gives
 * the handshake up after peer-timeout, says so, and connects again. */
GST_START_TEST (test_src_sender_silent_handshake)
{
  FakeSender *f = fake_sender_new ("peer-timeout=1000000000");
  GVariant *hello = peer_expect (f->p, SHM_MSG_HELLO);
  gchar *msg;
  Peer *again;

  g_variant_unref (hello);
  msg = wait_message (f->pipeline, GST_MESSAGE_WARNING, "The sender stopped "
      "answering during the handshake");
  fail_unless (strstr (msg, "it did not answer this receiver's hello in")
      != NULL, "%s", msg);
  g_free (msg);
  again = peer_accept (f->listener);
  hello = peer_expect (again, SHM_MSG_HELLO);
  g_variant_unref (hello);
  peer_free (again);
  fake_sender_free (f);
}

GST_END_TEST;

GST_START_TEST (test_src_bad_mmap)
{
  struct
  {
    void (*tweak) (GVariantDict * d);
    const gchar *text;
  } cases[] = {
    {bad_lane, "invalid mmap hello from the sender: field \"lane\" is 99, "
          "outside 0..63"},
    {bad_channels, "invalid mmap hello from the sender: invalid channel "
          "region in area geometry"},
    {bad_slot_size, "invalid slot size in area geometry"},
    {bad_token_bytes, "field \"token_bytes\" is 4096, outside 16..16"},
    {one_slot, "invalid mmap hello from the sender: invalid slot count in "
          "area geometry"},
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    FakeSender *f = fake_sender_new (NULL);
    gchar *msg;
    fake_sender_mmap (f, cases[i].tweak);
    msg = wait_message (f->pipeline, GST_MESSAGE_ERROR, cases[i].text);
    g_free (msg);
    fake_sender_free (f);
  }
}

GST_END_TEST;

GST_START_TEST (test_src_bad_caps)
{
  FakeSender *f = fake_sender_new (NULL);
  gchar *msg;

  fake_sender_mmap (f, NULL);
  fake_sender_ready (f, "video/x-raw,format=NOPE,width=64,height=48");
  msg = wait_message (f->pipeline, GST_MESSAGE_ERROR,
      "The sender's caps are invalid: caps name an unknown video format "
      "\"NOPE\"");
  g_free (msg);
  fake_sender_free (f);
}

GST_END_TEST;

GST_START_TEST (test_src_caps_too_big)
{
  /* caps that do not fit the sender's own slots: refused, not read */
  FakeSender *f = fake_sender_new (NULL);
  gchar *msg;

  fake_sender_mmap (f, NULL);
  fake_sender_ready (f, "video/x-raw,format=BGRx,width=1920,height=1080,"
      "framerate=30/1");
  msg = wait_message (f->pipeline, GST_MESSAGE_ERROR,
      "The sender's caps are invalid: caps need frames of 8294400 bytes but "
      "the slots hold 12288");
  g_free (msg);
  fake_sender_free (f);
}

GST_END_TEST;

GST_START_TEST (test_src_dmabuf_caps)
{
  FakeSender *f = fake_sender_new (NULL);
  gchar *msg;

  fake_sender_mmap (f, NULL);
  fake_sender_ready (f, "video/x-raw(memory:DMABuf),format=BGRx,width=64,"
      "height=48,framerate=30/1");
  msg = wait_message (f->pipeline, GST_MESSAGE_ERROR,
      "memory features memory:DMABuf; a shared area carries system memory");
  g_free (msg);
  fake_sender_free (f);
}

GST_END_TEST;

static GstPadProbeReturn
collect_pts_probe (GstPad * pad, GstPadProbeInfo * info, gpointer data)
{
  GArray *pts = data;
  GstClockTime t = GST_BUFFER_PTS (GST_PAD_PROBE_INFO_BUFFER (info));

  g_array_append_val (pts, t);
  return GST_PAD_PROBE_OK;
}

GST_START_TEST (test_src_live_reordered_pts)
{
  /* A live receiver keeps the order of the sender's PTS (an encoded
   * stream's reordered frames: 0, 3, 1, 2 frames ahead), only their
   * origin changes, and keeps DTS increasing. */
  static const gint order[] = { 0, 3, 1, 2 };
  FakeSender *f = fake_sender_new (NULL);
  GArray *pts = g_array_new (FALSE, FALSE, sizeof (GstClockTime));
  GstIterator *it = gst_bin_iterate_sinks (GST_BIN (f->pipeline));
  GValue v = G_VALUE_INIT;
  GstPad *pad;
  guint64 base;

  fail_unless (gst_iterator_next (it, &v) == GST_ITERATOR_OK);
  pad = gst_element_get_static_pad (g_value_get_object (&v), "sink");
  gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_BUFFER, collect_pts_probe, pts,
      NULL);
  g_value_unset (&v);
  gst_iterator_free (it);

  fake_sender_mmap (f, NULL);
  fake_sender_ready (f, "video/x-h264,stream-format=byte-stream,"
      "alignment=au");
  base = g_get_monotonic_time () * 1000 + 50 * GST_MSECOND;
  for (guint i = 0; i < G_N_ELEMENTS (order); i++) {
    ShmRecord r;
    frame_record (&r, i, 100, 0);
    r.n_planes = 0;
    r.seq = i;
    r.pts = order[i] * 10 * GST_MSECOND;
    r.mono_pts = base + order[i] * 10 * GST_MSECOND;
    r.mono_dts = base + i * GST_MSECOND;
    fake_sender_publish (f, &r);
    /* one at a time: a live receiver drops its oldest frames when they
     * pile up */
    for (gint j = 0; j < 500 && pts->len <= i; j++)
      g_usleep (10 * 1000);
    fail_unless_equals_int (pts->len, i + 1);
  }
  for (guint i = 1; i < G_N_ELEMENTS (order); i++) {
    GstClockTimeDiff got = GST_CLOCK_DIFF (g_array_index (pts, GstClockTime,
            0), g_array_index (pts, GstClockTime, i));
    fail_unless_equals_int64 (got, order[i] * 10 * GST_MSECOND);
  }
  gst_object_unref (pad);
  g_array_unref (pts);
  fake_sender_free (f);
}

GST_END_TEST;

static void
beyond_index (FakeSender * f, const ShmRecord * r)
{
  guint32 head = GUINT32_TO_LE (f->geo.chan_depth + 7);

  memcpy (f->chan.base + SHM_CHAN_REC_HEAD, &head, 4);
  peer_send (f->p, SHM_MSG_DOORBELL, NULL);
}

static void
five_planes (FakeSender * f, const ShmRecord * r)
{
  guint8 bytes[SHM_RECORD_SIZE];
  guint32 n = GUINT32_TO_LE (5);

  shm_record_encode (r, bytes);
  memcpy (bytes + 108, &n, 4);
  shm_chan_tx_push (&f->chan, bytes);
  peer_send (f->p, SHM_MSG_DOORBELL, NULL);
}

/* Every field of a frame record the receiver bounds: no read outside the
 * frame, or the mapping, whatever the sender says. */
GST_START_TEST (test_src_bad_frames)
{
  struct
  {
    const gchar *caps;
    guint32 slot;
    guint64 offset, size, plane_offset;
    guint32 stride;
    void (*publish) (FakeSender * f, const ShmRecord * r);
    const gchar *text;
  } cases[] = {
    {CAPS_64x48, 9, 0, 64 * 48 * 4, 0, 256, NULL,
        "The sender sent an invalid frame: frame in slot 9 of 4"},
    {CAPS_64x48, 0, 0, G_GUINT64_CONSTANT (1) << 40, 0, 256, NULL,
        "frame of 1099511627776 bytes at 0 does not fit a slot of 12288"},
    {CAPS_64x48, 0, 12288, 1, 0, 256, NULL, "frame of 1 bytes at 12288 "
          "does not fit a slot of 12288 bytes"},
    {CAPS_64x48, 0, G_MAXUINT64, 2, 0, 256, NULL, "does not fit a slot"},
    {CAPS_64x48, 0, 0, 64 * 48 * 4, 0, 100, NULL, "plane 0 (offset 0, "
          "stride 100) does not fit"},
    {CAPS_64x48, 0, 0, 64 * 48 * 4, 0, 1 << 20, NULL, "plane 0 (offset 0, "
          "stride 1048576) does not fit a frame of 12288 bytes"},
    {CAPS_64x48, 0, 0, 64 * 48 * 4, 0, 0x80000000u, NULL, "plane 0 (offset "
          "0, stride 2147483648) does not fit"},
    {CAPS_64x48, 0, 0, 64 * 48 * 4, G_MAXUINT64 - 10, 256, NULL,
        "plane 0 (offset 18446744073709551605, stride 256) does not fit"},
    {CAPS_64x48, 0, 0, 64 * 48 * 4, 0, 256, five_planes,
        "record with 5 planes (at most 4)"},
    {CAPS_64x48, 0, 0, 64 * 48 * 4, 0, 256, beyond_index,
        "the peer's record index is beyond the channel"},
    /* a palette is 1024 bytes, whatever the height */
    {"video/x-raw,format=RGB8P,width=64,height=16,framerate=30/1", 0, 0,
        64 * 16 + 64, 0, 64, NULL, "does not fit a frame of 1088 bytes"},
    /* tiled: the layout must be the default one, whole */
    {"video/x-raw,format=NV12_4L4,width=64,height=48,framerate=30/1", 0, 0,
        64 * 48, 0, 64, NULL, "a frame of 3072 bytes, the caps need 4608"},
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    FakeSender *f = fake_sender_new (NULL);
    ShmRecord r;
    gchar *msg;

    fake_sender_mmap (f, NULL);
    fake_sender_ready (f, cases[i].caps);
    frame_record (&r, cases[i].slot, cases[i].size, cases[i].stride);
    r.offset = cases[i].offset;
    r.plane_offset[0] = cases[i].plane_offset;
    if (strstr (cases[i].caps, "RGB8P")) {
      r.n_planes = 2;
      r.plane_offset[1] = 64 * 16;
      r.plane_stride[1] = 4;
    } else if (strstr (cases[i].caps, "NV12_4L4")) {
      r.n_planes = 2;
      r.plane_offset[1] = 64 * 48;
      r.plane_stride[1] = 64;
    }
    (cases[i].publish ? cases[i].publish : fake_sender_publish) (f, &r);
    msg = wait_message (f->pipeline, GST_MESSAGE_ERROR, cases[i].text);
    g_free (msg);
    fake_sender_free (f);
  }
}

GST_END_TEST;

/* The sender rewrites the area's geometry after the handshake: the
 * receiver goes by the geometry it checked then (a frame beyond it is an
 * error, a frame within it goes through). */
GST_START_TEST (test_src_geometry_changed)
{
  FakeSender *f = fake_sender_new (NULL);
  GstElement *src = gst_bin_get_by_name (GST_BIN (f->pipeline), "src");
  guint8 *hdr;
  guint64 pushed = 0;
  gint64 end = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  ShmRecord r;
  gchar *msg;

  fake_sender_mmap (f, NULL);
  fake_sender_ready (f, CAPS_64x48);
  hdr = shm_area_get_data (f->area);
  /* 64 slots of 1 GiB, says the header now */
  hdr[80] = 64;
  memset (hdr + 72, 0, 8);
  hdr[72 + 3] = 0x40;
  frame_record (&r, 0, 64 * 48 * 4, 256);
  fake_sender_publish (f, &r);
  while (pushed == 0) {
    GstStructure *st;
    fail_unless (g_get_monotonic_time () < end, "the frame was not pushed");
    g_usleep (10000);
    g_object_get (src, "stats", &st, NULL);
    gst_structure_get_uint64 (st, "frames-pushed", &pushed);
    gst_structure_free (st);
  }
  frame_record (&r, 9, 64 * 48 * 4, 256);
  r.seq = 1;
  fake_sender_publish (f, &r);
  msg = wait_message (f->pipeline, GST_MESSAGE_ERROR, "frame in slot 9 of 4");
  g_free (msg);
  gst_object_unref (src);
  fake_sender_free (f);
}

GST_END_TEST;

/* A second mmap hello mid-stream with another session id than the area
 * holds: a clear error, nothing read from a session that is not there. */
GST_START_TEST (test_src_session_swapped)
{
  FakeSender *f = fake_sender_new (NULL);
  ShmRecord r;
  gchar *msg;

  fake_sender_mmap (f, NULL);
  fake_sender_ready (f, CAPS_64x48);
  frame_record (&r, 0, 64 * 48 * 4, 256);
  fake_sender_publish (f, &r);
  {
    ShmMmapInfo m = { 0, };
    m.version = SHM_PROTO_VERSION;
    m.geo = f->geo;
    m.geo.session_id = 43;
    m.file = f->fake_area;
    m.token_bytes = 16;
    m.token_index = f->geo.token_offset;
    m.lane_gen = 2;
    peer_send (f->p, SHM_MSG_MMAP, shm_mmap_encode (&m));
  }
  msg = wait_message (f->pipeline, GST_MESSAGE_ERROR, "holds session "
      "000000000000002a, the sender announced 000000000000002b");
  g_free (msg);
  fake_sender_free (f);
}

GST_END_TEST;

/* The sender truncates the area file under the receiver: no SIGBUS, the
 * pages past the end read as zeros, and the receiver fails with an error
 * that says what happened. */
GST_START_TEST (test_src_area_truncated)
{
  FakeSender *f = fake_sender_new (NULL);
  ShmRecord r;
  gchar *msg;

  fake_sender_mmap (f, NULL);
  fake_sender_ready (f, CAPS_64x48);
  frame_record (&r, 0, 64 * 48 * 4, 256);
  fake_sender_publish (f, &r);
  fail_unless (truncate (f->fake_area, 4096) == 0);
  frame_record (&r, 1, 64 * 48 * 4, 256);
  r.seq = 1;
  fake_sender_publish (f, &r);
  msg = wait_message (f->pipeline, GST_MESSAGE_ERROR, "was truncated under "
      "this receiver (by its sender, or another process that may write the "
      "file)");
  g_free (msg);
  fake_sender_free (f);
}

GST_END_TEST;

GST_START_TEST (test_src_frame_before_ready)
{
  FakeSender *f = fake_sender_new (NULL);
  GVariant *hello = peer_expect (f->p, SHM_MSG_HELLO);
  guint8 bytes[SHM_RECORD_SIZE] = { 1, };
  GBytes *m;
  gchar *msg;

  g_variant_unref (hello);
  {
    GByteArray *a = g_byte_array_new ();
    shm_msg_encode_into (a, SHM_MSG_RECORD, NULL, sizeof bytes);
    g_byte_array_append (a, bytes, sizeof bytes);
    m = g_byte_array_free_to_bytes (a);
  }
  peer_send_raw (f->p, g_bytes_get_data (m, NULL), g_bytes_get_size (m));
  g_bytes_unref (m);
  /* (before ready, no payload is expected at all) */
  msg = wait_message (f->pipeline, GST_MESSAGE_ERROR,
      "malformed control message: record payload of 256 bytes exceeds the "
      "limit of 0");
  g_free (msg);
  fake_sender_free (f);
}

GST_END_TEST;

/* --- damage -------------------------------------------------------------- */

/* 96x32 BGRx: 12288 bytes, a slot of the fake area; two tiles of 64 (the
 * second 32 pixels wide). */
#define CAPS_96x32 "video/x-raw,format=BGRx,width=96,height=32," \
    "framerate=30/1"
#define SIZE_96x32 (96 * 32 * 4)

static GstPadProbeReturn
collect_probe (GstPad * pad, GstPadProbeInfo * info, gpointer data)
{
  g_async_queue_push (data, gst_buffer_ref (GST_PAD_PROBE_INFO_BUFFER (info)));
  return GST_PAD_PROBE_OK;
}

/* Collects the buffers shmsrc pushes. */
static GAsyncQueue *
collect_pushed (FakeSender * f)
{
  GstElement *src = gst_bin_get_by_name (GST_BIN (f->pipeline), "src");
  GstPad *pad = gst_element_get_static_pad (src, "src");
  GAsyncQueue *q = g_async_queue_new_full ((GDestroyNotify) gst_buffer_unref);

  gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_BUFFER, collect_probe,
      g_async_queue_ref (q), (GDestroyNotify) g_async_queue_unref);
  gst_object_unref (pad);
  gst_object_unref (src);
  return q;
}

/* The next buffer pushed has the bytes @want. */
static void
expect_pushed (GAsyncQueue * q, const guint8 * want, gsize size)
{
  GstBuffer *buf = g_async_queue_timeout_pop (q, 10 * G_USEC_PER_SEC);

  fail_unless (buf != NULL, "no buffer pushed");
  fail_unless_equals_uint64 (gst_buffer_get_size (buf), size);
  fail_unless (gst_buffer_memcmp (buf, 0, want, size) == 0,
      "the pushed frame differs from the sender's");
  gst_buffer_unref (buf);
}

static void
damage_record (ShmRecord * r, guint64 seq, guint64 base, guint bits)
{
  frame_record (r, seq % 4, SIZE_96x32, 96 * 4);
  r->seq = seq;
  r->record_flags = SHM_RECORD_FLAG_DAMAGE;
  r->damage_base = base;
  r->tile = 64;
  r->cols = 2;
  r->rows = 1;
  r->damage.bits[0] = bits;
}

static void
fill_frame (guint8 * data, guint8 seed)
{
  for (guint i = 0; i < SIZE_96x32; i++)
    data[i] = (guint8) (i * 7 + seed);
}

/* Tile maps that are not on the receiver's grid, or set tiles beyond it,
 * are not used: the frame is copied whole (read-mode=copy), and right. */
GST_START_TEST (test_src_damage_maps_checked)
{
  FakeSender *f = fake_sender_new ("read-mode=copy");
  GAsyncQueue *q = collect_pushed (f);
  guint8 *slot;
  ShmRecord r;

  fake_sender_mmap (f, NULL);
  fake_sender_ready (f, CAPS_96x32);
  /* (frame N in slot N) */
  slot = shm_area_get_data (f->area) + f->geo.slots_offset;
  fill_frame (slot, 1);
  damage_record (&r, 0, G_MAXUINT64, 3);
  fake_sender_publish (f, &r);
  expect_pushed (q, slot, SIZE_96x32);
  /* the whole frame changes, the map says only tile 1 on another grid */
  slot += f->geo.slot_size;
  fill_frame (slot, 2);
  damage_record (&r, 1, 0, 2);
  r.tile = 32;
  r.cols = 3;
  fake_sender_publish (f, &r);
  expect_pushed (q, slot, SIZE_96x32);
  /* ... or a bit past the grid's two tiles */
  slot += f->geo.slot_size;
  fill_frame (slot, 3);
  damage_record (&r, 2, 1, 2 | 4);
  fake_sender_publish (f, &r);
  expect_pushed (q, slot, SIZE_96x32);
  fake_sender_free (f);
  g_async_queue_unref (q);
}

GST_END_TEST;

/* Sends @r inline, and @len bytes of @data after it. */
static void
send_inline (FakeSender * f, const ShmRecord * r, const guint8 * data,
    gsize len)
{
  GByteArray *a = g_byte_array_new ();
  guint8 bytes[SHM_RECORD_SIZE];

  shm_record_encode (r, bytes);
  shm_msg_encode_into (a, SHM_MSG_RECORD, NULL, sizeof bytes + len);
  g_byte_array_append (a, bytes, sizeof bytes);
  g_byte_array_append (a, data, len);
  peer_send_raw (f->p, a->data, a->len);
  g_byte_array_unref (a);
}

/* A fake sender that listens on loopback TCP, and a shmsrc whose path is
 * not the fake sender's area: it asks for frames inline. */
static FakeSender *
fake_sender_new_tcp (void)
{
  FakeSender *f = g_new0 (FakeSender, 1);
  GInetAddress *lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  GSocketAddress *sa = g_inet_socket_address_new (lo, 0), *bound;
  gchar *desc;

  f->fake_sock = g_build_filename (tmpdir, "fake.sock", NULL);
  f->fake_area = g_build_filename (tmpdir, "fake-area", NULL);
  f->listener = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
      G_SOCKET_PROTOCOL_TCP, NULL);
  fail_unless (g_socket_bind (f->listener, sa, TRUE, NULL));
  fail_unless (g_socket_listen (f->listener, NULL));
  g_socket_set_timeout (f->listener, 10);
  bound = g_socket_get_local_address (f->listener, NULL);
  desc = g_strdup_printf ("shmsrc name=src path=%s/elsewhere "
      "control=tcp:127.0.0.1:%u ! fakesink", tmpdir,
      g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound)));
  f->pipeline = gst_parse_launch (desc, NULL);
  fail_if (gst_element_set_state (f->pipeline, GST_STATE_PLAYING) ==
      GST_STATE_CHANGE_FAILURE);
  f->p = peer_accept (f->listener);
  g_free (desc);
  g_object_unref (bound);
  g_object_unref (sa);
  g_object_unref (lo);
  return f;
}

/* The handshake of a receiver that gets frames inline. */
static void
inline_ready (FakeSender * f)
{
  ShmReady ready = { 0, };
  GVariant *v;

  fake_sender_mmap (f, NULL);
  v = peer_expect (f->p, SHM_MSG_MMAP_REPLY);
  g_variant_unref (v);
  ready.session = f->geo.session_id;
  ready.wake = SHM_WAKE_DOORBELL;
  ready.caps = (gchar *) CAPS_96x32;
  ready.caps_gen = 1;
  ready.frames_inline = TRUE;
  peer_send (f->p, SHM_MSG_READY, shm_ready_encode (&ready));
}

/* The next message that is not a report. */
static GVariant *
expect_not_report (Peer * p, guint32 want)
{
  for (;;) {
    guint32 type = 0;
    GVariant *body = peer_recv (p, &type);
    fail_unless (body != NULL, "connection closed, expected %s",
        shm_msg_type_name (want));
    if (type == SHM_MSG_REPORT) {
      g_variant_unref (body);
      continue;
    }
    fail_unless_equals_string (shm_msg_type_name (type),
        shm_msg_type_name (want));
    return body;
  }
}

/* Frames inline that carry only their changed tiles: one that patches the
 * frame the receiver holds is pushed whole and right; one of a wrong
 * length, or that patches a frame the receiver never had, is dropped and
 * the receiver asks for a whole frame; a partial frame without a tile map
 * is a protocol error. */
GST_START_TEST (test_src_partial_frames)
{
  FakeSender *f = fake_sender_new_tcp ();
  GAsyncQueue *q = collect_pushed (f);
  guint8 frame[SIZE_96x32], tile[32 * 32 * 4];
  GVariant *v;
  ShmRecord r;
  gchar *msg;

  inline_ready (f);
  /* whole */
  fill_frame (frame, 1);
  damage_record (&r, 0, G_MAXUINT64, 3);
  send_inline (f, &r, frame, sizeof frame);
  expect_pushed (q, frame, sizeof frame);
  /* tile 1 (pixels 64..95 of each row) changed, sent alone */
  for (guint y = 0; y < 32; y++)
    for (guint x = 0; x < 32 * 4; x++)
      frame[y * 96 * 4 + 64 * 4 + x] = tile[y * 32 * 4 + x] = y + x;
  damage_record (&r, 1, 0, 2);
  r.record_flags |= SHM_RECORD_FLAG_PARTIAL;
  send_inline (f, &r, tile, sizeof tile);
  expect_pushed (q, frame, sizeof frame);
  /* the same, but its bytes are not what the map makes */
  damage_record (&r, 2, 1, 2);
  r.record_flags |= SHM_RECORD_FLAG_PARTIAL;
  send_inline (f, &r, tile, sizeof tile - 4);
  v = expect_not_report (f->p, SHM_MSG_REFRESH);
  g_variant_unref (v);
  /* then whole again, then tiles of a frame it never had */
  fill_frame (frame, 9);
  damage_record (&r, 3, 2, 3);
  send_inline (f, &r, frame, sizeof frame);
  expect_pushed (q, frame, sizeof frame);
  damage_record (&r, 4, 77, 2);
  r.record_flags |= SHM_RECORD_FLAG_PARTIAL;
  send_inline (f, &r, tile, sizeof tile);
  v = expect_not_report (f->p, SHM_MSG_REFRESH);
  g_variant_unref (v);
  fail_unless (g_async_queue_timeout_pop (q, 300 * 1000) == NULL,
      "a frame was patched onto one the receiver does not have");
  /* partial without a map */
  frame_record (&r, 0, SIZE_96x32, 96 * 4);
  r.seq = 5;
  r.record_flags = SHM_RECORD_FLAG_PARTIAL;
  send_inline (f, &r, tile, sizeof tile);
  msg = wait_message (f->pipeline, GST_MESSAGE_ERROR,
      "a partial frame without a tile map");
  g_free (msg);
  fake_sender_free (f);
  g_async_queue_unref (q);

  /* partial, and longer than its frame */
  f = fake_sender_new_tcp ();
  inline_ready (f);
  damage_record (&r, 0, 5, 2);
  r.record_flags |= SHM_RECORD_FLAG_PARTIAL;
  r.size = 100;
  send_inline (f, &r, tile, sizeof tile);
  msg = wait_message (f->pipeline, GST_MESSAGE_ERROR,
      "The sender sent an invalid frame: its bytes do not match its size");
  g_free (msg);
  fake_sender_free (f);
}

GST_END_TEST;

/* The next record message: its record and payload length (skips other
 * messages); FALSE when none comes. */
static gboolean
recv_record (Peer * p, ShmRecord * r, gsize * len)
{
  for (;;) {
    GVariant *body;
    const guint8 *payload;
    gsize consumed, plen;
    guint32 type;
    guint8 buf[65536];
    gssize n;

    if (shm_msg_parse (p->in->data, p->in->len, 1 << 24, &consumed, &type,
            &body, &payload, &plen, NULL) == SHM_PARSE_OK) {
      gboolean rec = type == SHM_MSG_RECORD && plen >= SHM_RECORD_SIZE;
      if (rec) {
        fail_unless (shm_record_decode (payload, r, NULL));
        *len = plen - SHM_RECORD_SIZE;
      }
      g_variant_unref (body);
      g_byte_array_remove_range (p->in, 0, consumed);
      if (rec)
        return TRUE;
      continue;
    }
    n = g_socket_receive (p->sock, (gchar *) buf, sizeof buf, NULL, NULL);
    if (n <= 0)
      return FALSE;
    g_byte_array_append (p->in, buf, n);
  }
}

/* A live receiver of inline frames with damage that stops reading: the
 * sink skips it, and the first frame after the gap has a map (and tiles)
 * that lead from the last frame it got. */
GST_START_TEST (test_sink_inline_damage_skipped)
{
  GSocket *tmp = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
      G_SOCKET_PROTOCOL_TCP, NULL);
  GInetAddress *lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  GSocketAddress *sa = g_inet_socket_address_new (lo, 0), *bound;
  const guint zero[] = { 0 }, four[] = { 4 };
  ShmHello h = { 0, };
  ShmReply reply = { 0, };
  ShmMmapInfo m;
  ShmTileGrid grid;
  GstElement *pipeline, *sink;
  GstStructure *stats;
  ShmRecord prev = { 0, }, r;
  guint64 skipped = 0;
  guint gaps = 0, frames = 0;
  gsize len;
  GVariant *v;
  Peer *p = g_new0 (Peer, 1);
  gchar *desc;
  guint port;

  /* a free port */
  fail_unless (g_socket_bind (tmp, sa, TRUE, NULL));
  bound = g_socket_get_local_address (tmp, NULL);
  port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
  g_socket_close (tmp, NULL);
  g_object_unref (tmp);
  g_object_unref (bound);
  g_object_unref (sa);
  desc = g_strdup_printf ("videotestsrc is-live=true pattern=ball ! "
      "video/x-raw,format=BGRx,width=256,height=128,framerate=100/1 ! "
      "shmsink name=sink path=%s control=tcp:127.0.0.1:%u damage=compute",
      area_path, port);
  pipeline = play (desc);
  g_free (desc);
  sink = gst_bin_get_by_name (GST_BIN (pipeline), "sink");
  g_assert_true (shm_tile_grid_init (&grid, 256, 128, 1, zero, zero, four));

  /* a receiver with a small receive buffer, so that it fills soon */
  p->in = g_byte_array_new ();
  p->sock = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
      G_SOCKET_PROTOCOL_TCP, NULL);
  g_socket_set_option (p->sock, SOL_SOCKET, SO_RCVBUF, 4096, NULL);
  sa = g_inet_socket_address_new (lo, port);
  for (guint i = 0; !g_socket_connect (p->sock, sa, NULL, NULL); i++) {
    fail_unless (i < 500, "cannot connect");
    g_usleep (10000);
  }
  g_object_unref (sa);
  g_object_unref (lo);
  g_socket_set_timeout (p->sock, 10);
  h.version_min = h.version_max = SHM_PROTO_VERSION;
  h.features = SHM_FEATURE_DAMAGE;
  h.live = TRUE;
  h.path = area_path;
  peer_send (p, SHM_MSG_HELLO, shm_hello_encode (&h));
  v = peer_expect (p, SHM_MSG_MMAP);
  fail_unless (shm_mmap_decode (v, &m, NULL));
  g_variant_unref (v);
  reply.session = m.geo.session_id;
  reply.want_inline = TRUE;
  reply.reason = (gchar *) "another machine";
  peer_send (p, SHM_MSG_MMAP_REPLY, shm_reply_encode (&reply));
  shm_mmap_clear (&m);

  /* it stops reading until the sink has skipped it */
  for (guint i = 0; i < 200 && skipped == 0; i++) {
    g_usleep (50000);
    g_object_get (sink, "stats", &stats, NULL);
    gst_structure_get_uint64 (stats, "frames-skipped", &skipped);
    gst_structure_free (stats);
  }
  fail_unless (skipped > 0, "the sink never skipped the receiver");
  while (gaps == 0 && frames < 2000 && recv_record (p, &r, &len)) {
    if (r.type != SHM_RECORD_FRAME)
      continue;
    fail_unless (r.record_flags & SHM_RECORD_FLAG_DAMAGE);
    if (r.record_flags & SHM_RECORD_FLAG_PARTIAL) {
      fail_unless_equals_uint64 (len, shm_damage_bytes (&grid, &r.damage));
    } else {
      fail_unless_equals_uint64 (len, r.size);
    }
    /* every frame relative to the last one it got, also after a gap */
    if (frames > 0) {
      fail_unless_equals_uint64 (r.damage_base, prev.seq);
      gaps += r.seq != prev.seq + 1;
    }
    prev = r;
    frames++;
  }
  fail_unless (gaps > 0, "no gap in %u frames", frames);
  peer_free (p);
  gst_object_unref (sink);
  stop_pipeline (pipeline);
}

GST_END_TEST;

/* --- in-band rings ------------------------------------------------------ */

/* Moves the producer index of one ring of @lane beyond the ring, as a
 * hostile or broken peer would. */
static void
spoil_ring (ShmArea * area, const ShmGeometry * geo, guint lane, gboolean r2s)
{
  guint8 *half = shm_area_get_data (area) + geo->ring_offset + SHM_RING_TABLE
      + ((gsize) lane * 2 + (r2s ? 1 : 0)) * SHM_RING_HALF;
  guint32 prod;

  memcpy (&prod, half, 4);
  prod = GUINT32_TO_LE (GUINT32_FROM_LE (prod) + SHM_RING_DATA + 1);
  memcpy (half, &prod, 4);
}

GST_START_TEST (test_src_ring_index_beyond)
{
  guint64 size = shm_geometry_size_needed (2, 4096, SHM_RING_REGION_SIZE);
  guint64 served[SHM_RING_LANES] = { 0, }, id;
  ShmArea *area = shm_area_create (area_path, size, 0600, 0, NULL, NULL);
  gint64 end = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  GstElement *pipeline;
  ShmGeometry geo;
  gchar *desc, *msg;
  gint lane;

  /* a sender's area with rings, served by this test */
  fail_unless (area != NULL);
  fail_unless (shm_geometry_compute (&geo, size, 2, 4096,
          SHM_RING_REGION_SIZE, NULL));
  geo.session_id = 42;
  shm_area_init_header (area, &geo);
  desc = g_strdup_printf ("shmsrc path=%s control=ring ! fakesink", area_path);
  pipeline = gst_parse_launch (desc, NULL);
  g_free (desc);
  fail_if (gst_element_set_state (pipeline, GST_STATE_PLAYING) ==
      GST_STATE_CHANGE_FAILURE);
  while ((lane = shm_ring_accept (area, &geo, served, &id)) < 0) {
    fail_unless (g_get_monotonic_time () < end, "no lane claimed");
    g_usleep (5000);
  }
  spoil_ring (area, &geo, lane, FALSE);
  msg = wait_message (pipeline, GST_MESSAGE_ERROR, "the peer's ring index "
      "is beyond the ring (producer 32769, consumer 0, ring of 32768 bytes)");
  g_free (msg);
  stop_pipeline (pipeline);
  /* the receiver gave its lane back */
  fail_if (shm_ring_claimed (area, &geo, lane, id));
  shm_area_unlink (area, NULL);
  shm_area_unref (area);
}

GST_END_TEST;

GST_START_TEST (test_sink_ring_index_beyond)
{
  GstElement *pipeline;
  ShmArea *area;
  ShmGeometry geo;
  gint64 end = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  guint lane;
  gchar *desc, *msg;

  desc = g_strdup_printf ("videotestsrc is-live=true ! video/x-raw,"
      "format=BGRx,width=64,height=48,framerate=30/1 ! shmsink path=%s "
      "control=ring size=4194304", area_path);
  pipeline = gst_parse_launch (desc, NULL);
  g_free (desc);
  fail_if (gst_element_set_state (pipeline, GST_STATE_PLAYING) ==
      GST_STATE_CHANGE_FAILURE);
  /* the area and its rings exist from the start */
  for (;;) {
    area = shm_area_open (area_path, 0, NULL);
    if (area && shm_area_read_header (area, &geo, NULL))
      break;
    g_clear_pointer (&area, shm_area_unref);
    fail_unless (g_get_monotonic_time () < end, "no area with rings");
    g_usleep (10000);
  }
  fail_unless (shm_ring_claim (area, &geo, 77, &lane, NULL));
  while (!shm_ring_acked (area, &geo, lane, 77)) {
    fail_unless (g_get_monotonic_time () < end, "lane not acknowledged");
    g_usleep (5000);
  }
  spoil_ring (area, &geo, lane, TRUE);
  msg = wait_message (pipeline, GST_MESSAGE_WARNING, "Dropped receiver "
      "in-band lane 0: the peer's ring index is beyond the ring");
  g_free (msg);
  /* the sink gave the lane up */
  while (shm_ring_claimed (area, &geo, lane, 77)) {
    fail_unless (g_get_monotonic_time () < end, "lane still claimed");
    g_usleep (5000);
  }
  stop_pipeline (pipeline);
  shm_area_unref (area);
}

GST_END_TEST;

static Suite *
shm_suite (void)
{
  Suite *s = suite_create ("shm");
  TCase *tc = tcase_create ("general");

  tcase_add_checked_fixture (tc, setup, teardown);
  tcase_set_timeout (tc, 60);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_pool);
  tcase_add_test (tc, test_roundtrip_in_process);
  tcase_add_test (tc, test_sink_garbage);
  tcase_add_test (tc, test_sink_truncated);
  tcase_add_test (tc, test_sink_peer_closes_mid_handshake);
  tcase_add_test (tc, test_sink_bad_hello);
  tcase_add_test (tc, test_sink_forged_token);
  tcase_add_test (tc, test_sink_echoed_token);
  tcase_add_test (tc, test_sink_release_not_held);
  tcase_add_test (tc, test_sink_flood_and_reorder);
  tcase_add_test (tc, test_reports_qos);
  tcase_add_test (tc, test_sink_receiver_never_releases);
  tcase_add_test (tc, test_sink_receiver_timeout);
  tcase_add_test (tc, test_sink_receiver_leaves);
  tcase_add_test (tc, test_src_garbage);
  tcase_add_test (tc, test_src_huge_length);
  tcase_add_test (tc, test_src_truncated);
  tcase_add_test (tc, test_src_sender_closes_mid_handshake);
  tcase_add_test (tc, test_src_sender_silent_handshake);
  tcase_add_test (tc, test_src_bad_mmap);
  tcase_add_test (tc, test_src_bad_caps);
  tcase_add_test (tc, test_src_caps_too_big);
  tcase_add_test (tc, test_src_dmabuf_caps);
  tcase_add_test (tc, test_src_bad_frames);
  tcase_add_test (tc, test_src_damage_maps_checked);
  tcase_add_test (tc, test_src_partial_frames);
  tcase_add_test (tc, test_sink_inline_damage_skipped);
  tcase_add_test (tc, test_src_frame_before_ready);
  tcase_add_test (tc, test_src_geometry_changed);
  tcase_add_test (tc, test_src_area_truncated);
  tcase_add_test (tc, test_sink_area_truncated);
  tcase_add_test (tc, test_src_session_swapped);
  tcase_add_test (tc, test_src_ring_index_beyond);
  tcase_add_test (tc, test_sink_ring_index_beyond);
  tcase_add_test (tc, test_sink_caps_query_flush);
  tcase_add_test (tc, test_src_live_reordered_pts);
  return s;
}

SHM_CHECK_MAIN (shm);

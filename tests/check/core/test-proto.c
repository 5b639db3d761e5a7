/* gst-shm: unit tests of the control messages and addresses (no GStreamer)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "shmproto.h"
#include "shmaddress.h"
#include "shmconn.h"
#include "shmhandshake.h"

#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static GVariant *
sample_body (void)
{
  GVariantDict d;
  guint8 tok[16] = { 1, 2, 3 };

  g_variant_dict_init (&d, NULL);
  g_variant_dict_insert (&d, "version", "u", 1);
  g_variant_dict_insert (&d, "file", "s", "/sys/bus/pci/devices/0000:00:04.0/"
      "resource2_wc");
  g_variant_dict_insert (&d, "size", "t", G_GUINT64_CONSTANT (1) << 30);
  g_variant_dict_insert_value (&d, "token",
      g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, tok, 16, 1));
  return g_variant_dict_end (&d);
}

static void
test_roundtrip (void)
{
  GByteArray *out = g_byte_array_new ();
  g_autoptr (GError) err = NULL;
  GVariant *body;
  const guint8 *payload, *tok;
  gsize consumed, plen, tlen;
  guint32 type, v;
  guint64 size;
  const gchar *file;
  gsize first;

  first = shm_msg_encode_into (out, SHM_MSG_MMAP, sample_body (), 0);
  shm_msg_encode_into (out, SHM_MSG_PING, NULL, 0);
  g_byte_array_append (out, (const guint8 *) "xyz", 3);

  /* every prefix of a message asks for more */
  for (gsize n = 0; n < first; n++)
    g_assert_cmpint (shm_msg_parse (out->data, n, 0, &consumed, &type, &body,
            &payload, &plen, &err), ==, SHM_PARSE_NEED_MORE);

  g_assert_cmpint (shm_msg_parse (out->data, out->len, 0, &consumed, &type,
          &body, &payload, &plen, &err), ==, SHM_PARSE_OK);
  g_assert_cmpuint (consumed, ==, first);
  g_assert_cmpuint (type, ==, SHM_MSG_MMAP);
  g_assert_true (shm_msg_get_u32 (body, "version", 1, 1, &v, &err));
  g_assert_true (shm_msg_get_string (body, "file", 4096, &file, &err));
  /* a PCI path keeps its ':' */
  g_assert_cmpstr (file, ==, "/sys/bus/pci/devices/0000:00:04.0/"
      "resource2_wc");
  g_assert_true (shm_msg_get_u64 (body, "size", 0, G_MAXUINT64, &size, &err));
  g_assert_cmpuint (size, ==, G_GUINT64_CONSTANT (1) << 30);
  g_assert_true (shm_msg_get_bytes (body, "token", 8, 64, &tok, &tlen, &err));
  g_assert_cmpuint (tlen, ==, 16);
  g_assert_cmpuint (tok[2], ==, 3);

  /* bounded accessors name the key */
  g_assert_false (shm_msg_get_u32 (body, "version", 2, 9, &v, &err));
  g_assert_nonnull (strstr (err->message, "\"version\" is 1, outside 2..9"));
  g_clear_error (&err);
  g_assert_false (shm_msg_get_u64 (body, "version", 0, 9, &size, &err));
  g_assert_nonnull (strstr (err->message, "has type u, expected t"));
  g_clear_error (&err);
  g_assert_false (shm_msg_get_u32 (body, "missing", 0, 9, &v, &err));
  g_assert_nonnull (strstr (err->message, "\"missing\" is missing"));
  g_clear_error (&err);
  g_assert_false (shm_msg_get_string (body, "file", 10, &file, &err));
  g_assert_nonnull (strstr (err->message, "the limit is 10"));
  g_clear_error (&err);
  g_assert_false (shm_msg_get_bytes (body, "token", 32, 64, &tok, &tlen, &err));
  g_clear_error (&err);
  g_variant_unref (body);

  g_assert_cmpint (shm_msg_parse (out->data + first, out->len - first, 0,
          &consumed, &type, &body, &payload, &plen, &err), ==, SHM_PARSE_OK);
  g_assert_cmpuint (type, ==, SHM_MSG_PING);
  g_variant_unref (body);
  g_byte_array_unref (out);
}

static void
put32 (guint8 * p, guint32 v)
{
  v = GUINT32_TO_LE (v);
  memcpy (p, &v, 4);
}

static void
test_malformed (void)
{
  guint8 buf[64] = { 0 };
  g_autoptr (GError) err = NULL;
  GVariant *body;
  const guint8 *payload;
  gsize consumed, plen;
  guint32 type;

  /* bad magic */
  memcpy (buf, "JUNKJUNKJUNKJUNK", 16);
  g_assert_cmpint (shm_msg_parse (buf, 16, 0, &consumed, &type, &body,
          &payload, &plen, &err), ==, SHM_PARSE_ERROR);
  g_assert_nonnull (strstr (err->message, "malformed control message: bad "
          "magic"));
  g_clear_error (&err);

  /* a body longer than allowed is refused before it is read */
  put32 (buf, SHM_MSG_MAGIC);
  put32 (buf + 4, SHM_MSG_HELLO);
  put32 (buf + 8, 0x7fffffff);
  put32 (buf + 12, 0);
  g_assert_cmpint (shm_msg_parse (buf, 16, 0, &consumed, &type, &body,
          &payload, &plen, &err), ==, SHM_PARSE_ERROR);
  g_assert_nonnull (strstr (err->message, "exceeds the limit"));
  g_clear_error (&err);

  /* a payload the reader does not accept */
  put32 (buf + 8, 0);
  put32 (buf + 12, 100);
  g_assert_cmpint (shm_msg_parse (buf, 16, 50, &consumed, &type, &body,
          &payload, &plen, &err), ==, SHM_PARSE_ERROR);
  g_clear_error (&err);

  /* type 0 */
  put32 (buf + 4, 0);
  put32 (buf + 12, 0);
  g_assert_cmpint (shm_msg_parse (buf, 16, 0, &consumed, &type, &body,
          &payload, &plen, &err), ==, SHM_PARSE_ERROR);
  g_clear_error (&err);

  /* a body that is not a valid a{sv} */
  put32 (buf + 4, SHM_MSG_HELLO);
  put32 (buf + 8, 7);
  memcpy (buf + 16, "\xff\xff\xff\xff\xff\xff\xff", 7);
  g_assert_cmpint (shm_msg_parse (buf, 23, 0, &consumed, &type, &body,
          &payload, &plen, &err), ==, SHM_PARSE_ERROR);
  g_assert_nonnull (strstr (err->message, "is not a valid dictionary"));
  g_clear_error (&err);
}

/* Random bytes and random mutations of valid messages never crash the
 * parser or the accessors. */
static void
test_random_input (void)
{
  GRand *rand = g_rand_new_with_seed (12345);
  GBytes *valid = shm_msg_encode (SHM_MSG_MMAP, sample_body ());
  gsize vlen;
  const guint8 *vdata = g_bytes_get_data (valid, &vlen);
  guint ok = 0;

  for (guint i = 0; i < 20000; i++) {
    guint8 buf[512];
    gsize len;
    GVariant *body = NULL;
    const guint8 *payload;
    gsize consumed, plen;
    guint32 type, v;
    GError *err = NULL;

    if (i % 2) {
      len = MIN (vlen, sizeof buf);
      memcpy (buf, vdata, len);
      for (gint k = 0; k < 1 + g_rand_int_range (rand, 0, 8); k++)
        buf[g_rand_int_range (rand, 0, len)] = g_rand_int (rand);
      len = g_rand_int_range (rand, 0, len + 1);
    } else {
      len = g_rand_int_range (rand, 0, sizeof buf);
      for (gsize k = 0; k < len; k++)
        buf[k] = g_rand_int (rand);
      if (len >= 16 && g_rand_boolean (rand)) {
        put32 (buf, SHM_MSG_MAGIC);
        put32 (buf + 8, g_rand_int_range (rand, 0, len - 15));
        put32 (buf + 12, 0);
      }
    }
    if (shm_msg_parse (buf, len, 1024, &consumed, &type, &body, &payload,
            &plen, &err) == SHM_PARSE_OK) {
      const gchar *s;
      const guint8 *b;
      gsize blen;
      guint64 t;
      g_assert_cmpuint (consumed, <=, len);
      shm_msg_get_u32 (body, "version", 0, 10, &v, NULL);
      shm_msg_get_string (body, "file", 4096, &s, NULL);
      shm_msg_get_bytes (body, "token", 8, 64, &b, &blen, NULL);
      shm_msg_get_u64 (body, "size", 0, G_MAXUINT64, &t, NULL);
      g_variant_unref (body);
      ok++;
    }
    g_clear_error (&err);
  }
  g_assert_cmpuint (ok, >, 0);
  g_bytes_unref (valid);
  g_rand_free (rand);
}

static void
test_addresses (void)
{
  g_autoptr (GError) err = NULL;
  ShmAddress a;

  g_assert_true (shm_address_parse ("unix:/dev/shm/x:y.sock", &a, &err));
  g_assert_cmpint (a.kind, ==, SHM_ADDRESS_UNIX);
  g_assert_cmpstr (a.path, ==, "/dev/shm/x:y.sock");
  shm_address_clear (&a);

  g_assert_true (shm_address_parse ("tcp:10.0.2.2:5000", &a, &err));
  g_assert_cmpint (a.kind, ==, SHM_ADDRESS_TCP);
  g_assert_cmpstr (a.host, ==, "10.0.2.2");
  g_assert_cmpuint (a.port, ==, 5000);
  shm_address_clear (&a);

  g_assert_true (shm_address_parse ("tcp:[::1]:7", &a, &err));
  g_assert_cmpstr (a.host, ==, "::1");
  g_assert_cmpuint (a.port, ==, 7);
  {
    g_autofree gchar *s = shm_address_to_string (&a);
    g_assert_cmpstr (s, ==, "tcp:[::1]:7");
  }
  shm_address_clear (&a);

  g_assert_true (shm_address_parse ("tcp:0.0.0.0:0", &a, &err));
  shm_address_clear (&a);

  g_assert_true (shm_address_parse ("vsock:3:1234", &a, &err));
  g_assert_cmpint (a.kind, ==, SHM_ADDRESS_VSOCK);
  g_assert_cmpuint (a.cid, ==, 3);
  g_assert_cmpuint (a.port, ==, 1234);
  shm_address_clear (&a);
  g_assert_true (shm_address_parse ("vsock:any:1234", &a, &err));
  g_assert_cmpuint (a.cid, ==, SHM_VSOCK_CID_ANY);
  shm_address_clear (&a);
  g_assert_true (shm_address_parse ("vsock:host:1", &a, &err));
  g_assert_cmpuint (a.cid, ==, SHM_VSOCK_CID_HOST);
  shm_address_clear (&a);

  g_assert_true (shm_address_parse ("ring", &a, &err));
  g_assert_cmpint (a.kind, ==, SHM_ADDRESS_RING);

  {
    const gchar *bad[] = { "", "unix:", "tcp:host", "tcp::80",
      "tcp:host:99999", "tcp:host:-1", "tcp:::1:80", "tcp:[::1:80",
      "vsock:3", "vsock:3:0", "vsock:x:5", "vsock:3:5:6", "vsock:4294967295:1",
      "udp:1.2.3.4:5", "/dev/shm/x", "rings",
    };
    for (guint i = 0; i < G_N_ELEMENTS (bad); i++) {
      g_assert_false (shm_address_parse (bad[i], &a, &err));
      g_assert_nonnull (strstr (err->message, "invalid control address"));
      g_clear_error (&err);
    }
  }
}

/* Two connections over a socketpair: messages cross, a queue that the peer
 * does not read is bounded, a close is seen. */
typedef struct
{
  GMainLoop *loop;
  guint n_msgs;
  gboolean closed;
  gchar *close_error;
} ConnState;

static void
on_msg (ShmConn * c, guint32 type, GVariant * body, const guint8 * payload,
    gsize plen, gpointer data)
{
  ConnState *st = data;
  st->n_msgs++;
  if (type == SHM_MSG_BYE)
    g_main_loop_quit (st->loop);
}

static void
on_closed (ShmConn * c, const GError * error, gpointer data)
{
  ConnState *st = data;
  st->closed = TRUE;
  st->close_error = error ? g_strdup (error->message) : NULL;
  g_main_loop_quit (st->loop);
}

static void
test_conn (void)
{
  ShmConnCallbacks cb = { on_msg, on_closed };
  GMainContext *ctx = g_main_context_new ();
  ConnState st = { g_main_loop_new (ctx, FALSE), 0, FALSE, NULL };
  g_autoptr (GError) err = NULL;
  int fds[2];
  GSocket *a, *b;
  ShmConn *ca, *cb_;

  g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM, 0, fds), ==, 0);
  a = g_socket_new_from_fd (fds[0], &err);
  b = g_socket_new_from_fd (fds[1], &err);
  ca = shm_conn_new_socket (a, "a");
  cb_ = shm_conn_new_socket (b, "b");
  shm_conn_start (cb_, ctx, &cb, &st);

  for (guint i = 0; i < 100; i++)
    g_assert_true (shm_conn_send (ca, SHM_MSG_PING, sample_body (), &err));
  g_assert_true (shm_conn_send (ca, SHM_MSG_BYE, NULL, &err));
  g_main_loop_run (st.loop);
  g_assert_cmpuint (st.n_msgs, ==, 101);

  /* nobody reads ca: its queue fills up to the limit, then sends fail */
  shm_conn_set_max_queue (cb_, 64 * 1024);
  {
    guint8 big[16384] = { 0 };
    gboolean failed = FALSE;
    for (guint i = 0; i < 1000 && !failed; i++) {
      GVariantDict d;
      g_variant_dict_init (&d, NULL);
      g_variant_dict_insert_value (&d, "x",
          g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, big, sizeof big, 1));
      failed = !shm_conn_send (cb_, SHM_MSG_PING, g_variant_dict_end (&d),
          &err);
    }
    g_assert_true (failed);
    g_assert_error (err, SHM_PROTO_ERROR, SHM_PROTO_ERROR_OVERFLOW);
    g_assert_nonnull (strstr (err->message, "does not read its messages"));
    g_clear_error (&err);
  }
  /* the overflow closes cb_ */
  g_main_loop_run (st.loop);
  g_assert_true (st.closed);
  g_assert_nonnull (strstr (st.close_error, "does not read"));

  shm_conn_close (ca);
  shm_conn_unref (ca);
  shm_conn_unref (cb_);
  g_free (st.close_error);
  g_main_loop_unref (st.loop);
  g_main_context_unref (ctx);
}

static void
on_msg_pause_first (ShmConn * c, guint32 type, GVariant * body,
    const guint8 * payload, gsize plen, gpointer data)
{
  ConnState *st = data;

  if (++st->n_msgs == 1) {
    shm_conn_set_reading (c, FALSE);
    g_main_loop_quit (st->loop);
  }
  if (type == SHM_MSG_BYE)
    g_main_loop_quit (st->loop);
}

static gboolean
quit_cb (gpointer data)
{
  g_main_loop_quit (data);
  return G_SOURCE_REMOVE;
}

/* A paused connection dispatches nothing more, leaves what the peer sends
 * in the transport (the peer sees it unread), and goes on in order. */
static void
test_conn_pause (void)
{
  ShmConnCallbacks cb = { on_msg_pause_first, on_closed };
  GMainContext *ctx = g_main_context_new ();
  ConnState st = { g_main_loop_new (ctx, FALSE), 0, FALSE, NULL };
  g_autoptr (GError) err = NULL;
  int fds[2];
  ShmConn *ca, *cb_;
  GSource *t;

  g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM, 0, fds), ==, 0);
  ca = shm_conn_new_socket (g_socket_new_from_fd (fds[0], NULL), "a");
  cb_ = shm_conn_new_socket (g_socket_new_from_fd (fds[1], NULL), "b");
  shm_conn_start (cb_, ctx, &cb, &st);

  for (guint i = 0; i < 5; i++)
    g_assert_true (shm_conn_send (ca, SHM_MSG_PING, sample_body (), &err));
  g_main_loop_run (st.loop);
  g_assert_cmpuint (st.n_msgs, ==, 1);

  /* paused: more messages stay in the socket, nothing is dispatched */
  for (guint i = 0; i < 5; i++)
    g_assert_true (shm_conn_send (ca, SHM_MSG_PING, sample_body (), &err));
  g_assert_true (shm_conn_send (ca, SHM_MSG_BYE, NULL, &err));
  t = g_timeout_source_new (200);
  g_source_set_callback (t, quit_cb, st.loop, NULL);
  g_source_attach (t, ctx);
  g_source_unref (t);
  g_main_loop_run (st.loop);
  g_assert_cmpuint (st.n_msgs, ==, 1);
  g_assert_false (st.closed);
  g_assert_cmpuint (shm_conn_get_unread (ca), >, 0);

  /* going on: the rest, in order, up to the goodbye */
  shm_conn_set_reading (cb_, TRUE);
  g_main_loop_run (st.loop);
  g_assert_cmpuint (st.n_msgs, ==, 11);
  g_assert_cmpuint (shm_conn_get_unread (ca), ==, 0);

  /* the end of stream comes once reading goes on, with nothing lost */
  shm_conn_set_reading (cb_, FALSE);
  shm_conn_close (ca);
  t = g_timeout_source_new (100);
  g_source_set_callback (t, quit_cb, st.loop, NULL);
  g_source_attach (t, ctx);
  g_source_unref (t);
  g_main_loop_run (st.loop);
  g_assert_false (st.closed);
  shm_conn_set_reading (cb_, TRUE);
  g_main_loop_run (st.loop);
  g_assert_true (st.closed);
  g_assert_null (st.close_error);

  shm_conn_unref (ca);
  shm_conn_unref (cb_);
  g_main_loop_unref (st.loop);
  g_main_context_unref (ctx);
}

static void
test_conn_garbage (void)
{
  ShmConnCallbacks cb = { on_msg, on_closed };
  GMainContext *ctx = g_main_context_new ();
  ConnState st = { g_main_loop_new (ctx, FALSE), 0, FALSE, NULL };
  int fds[2];
  ShmConn *c;

  g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM, 0, fds), ==, 0);
  c = shm_conn_new_socket (g_socket_new_from_fd (fds[1], NULL), "peer");
  shm_conn_start (c, ctx, &cb, &st);
  g_assert_cmpint (write (fds[0], "GARBAGE-GARBAGE-GARBAGE", 23), ==, 23);
  g_main_loop_run (st.loop);
  g_assert_true (st.closed);
  g_assert_cmpstr (st.close_error, ==, "peer sent a malformed control "
      "message: bad magic 0x42524147");
  g_free (st.close_error);

  /* truncated: a valid header, then the end */
  st.closed = FALSE;
  st.close_error = NULL;
  shm_conn_unref (c);
  close (fds[0]);
  g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM, 0, fds), ==, 0);
  c = shm_conn_new_socket (g_socket_new_from_fd (fds[1], NULL), "peer");
  shm_conn_start (c, ctx, &cb, &st);
  {
    GBytes *m = shm_msg_encode (SHM_MSG_HELLO, sample_body ());
    gsize n;
    const guint8 *d = g_bytes_get_data (m, &n);
    g_assert_cmpint (write (fds[0], d, n - 5), ==, (gssize) n - 5);
    g_bytes_unref (m);
  }
  close (fds[0]);
  g_main_loop_run (st.loop);
  g_assert_true (st.closed);
  g_assert_nonnull (strstr (st.close_error, "peer closed the connection in "
          "the middle of a message"));
  g_free (st.close_error);
  shm_conn_unref (c);
  g_main_loop_unref (st.loop);
  g_main_context_unref (ctx);
}

/* The shared-secret proofs: HMAC-SHA256 of the role and both challenges,
 * keyed by the secret; any change of secret, role or challenge changes
 * them; the challenges and proofs travel in hello, mmap and mmap-reply,
 * of exactly their length. */
static void
test_secret (void)
{
  guint8 a[SHM_NONCE_BYTES], b[SHM_NONCE_BYTES], proof[SHM_PROOF_BYTES];
  guint8 msg[64], want[SHM_PROOF_BYTES];
  gsize want_len = sizeof want;
  GHmac *h;
  ShmHello hello = { 0, }, hello2;
  ShmReply reply = { 0, }, reply2;
  GVariant *v;
  g_autoptr (GError) err = NULL;

  for (guint i = 0; i < SHM_NONCE_BYTES; i++) {
    a[i] = i;
    b[i] = 0xf0 + i;
  }
  shm_secret_proof ("s3cret", "receiver", a, b, proof);
  memcpy (msg, "gst-shm/receiver/", 17);
  memcpy (msg + 17, a, SHM_NONCE_BYTES);
  memcpy (msg + 17 + SHM_NONCE_BYTES, b, SHM_NONCE_BYTES);
  h = g_hmac_new (G_CHECKSUM_SHA256, (const guchar *) "s3cret", 6);
  g_hmac_update (h, msg, 17 + 2 * SHM_NONCE_BYTES);
  g_hmac_get_digest (h, want, &want_len);
  g_hmac_unref (h);
  g_assert_cmpmem (proof, SHM_PROOF_BYTES, want, want_len);
  g_assert_true (shm_secret_check ("s3cret", "receiver", a, b, proof));
  g_assert_false (shm_secret_check ("s3cret!", "receiver", a, b, proof));
  g_assert_false (shm_secret_check ("s3cret", "sender", a, b, proof));
  g_assert_false (shm_secret_check ("s3cret", "receiver", b, a, proof));
  proof[SHM_PROOF_BYTES - 1] ^= 1;
  g_assert_false (shm_secret_check ("s3cret", "receiver", a, b, proof));

  hello.version_min = hello.version_max = SHM_PROTO_VERSION;
  hello.has_nonce = TRUE;
  memcpy (hello.nonce, a, SHM_NONCE_BYTES);
  v = g_variant_ref_sink (shm_hello_encode (&hello));
  g_assert_true (shm_hello_decode (v, &hello2, &err));
  g_assert_true (hello2.has_nonce);
  g_assert_cmpmem (hello2.nonce, SHM_NONCE_BYTES, a, SHM_NONCE_BYTES);
  shm_hello_clear (&hello2);
  g_variant_unref (v);

  reply.session = 7;
  reply.want_inline = TRUE;
  reply.has_proof = TRUE;
  memcpy (reply.proof, want, SHM_PROOF_BYTES);
  v = g_variant_ref_sink (shm_reply_encode (&reply));
  g_assert_true (shm_reply_decode (v, &reply2, &err));
  g_assert_true (reply2.has_proof);
  g_assert_cmpmem (reply2.proof, SHM_PROOF_BYTES, want, SHM_PROOF_BYTES);
  shm_reply_clear (&reply2);
  g_variant_unref (v);

  /* a proof of another length is malformed */
  {
    GVariantDict d;
    g_variant_dict_init (&d, NULL);
    g_variant_dict_insert (&d, "session", "t", (guint64) 7);
    g_variant_dict_insert (&d, "inline", "b", TRUE);
    g_variant_dict_insert_value (&d, "proof",
        g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, want, 31, 1));
    v = g_variant_ref_sink (g_variant_dict_end (&d));
    g_assert_false (shm_reply_decode (v, &reply2, &err));
    g_assert_nonnull (err);
    g_clear_error (&err);
    g_variant_unref (v);
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/proto/roundtrip", test_roundtrip);
  g_test_add_func ("/proto/secret", test_secret);
  g_test_add_func ("/proto/malformed", test_malformed);
  g_test_add_func ("/proto/random-input", test_random_input);
  g_test_add_func ("/proto/addresses", test_addresses);
  g_test_add_func ("/proto/conn", test_conn);
  g_test_add_func ("/proto/conn-garbage", test_conn_garbage);
  g_test_add_func ("/proto/conn-pause", test_conn_pause);
  return g_test_run ();
}

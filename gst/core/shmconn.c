/* gst-shm: one control connection
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "shmconn.h"
#include "shmproto.h"

#include <gio/gunixsocketaddress.h>
#include <linux/sockios.h>
#include <string.h>
#include <sys/ioctl.h>

#define READ_CHUNK (64 * 1024)
#define DEFAULT_MAX_QUEUE (4 * 1024 * 1024)

struct _ShmConn
{
  gint ref_count;
  const ShmTransportFuncs *funcs;
  gpointer transport;
  gchar *description;

  GMutex lock;
  /* protected by lock */
  GMainContext *context;
  GByteArray *out;              /* bytes not written yet, from out_pos */
  gsize out_pos;
  gsize max_queue;
  GSource *out_source;
  GSource *in_source;
  GSource *close_source;
  GError *close_error;
  GError *write_error;          /* the transport refused a write */
  gboolean closed;              /* no more sends, no more callbacks */
  gboolean closing;             /* a close notification is scheduled */
  gboolean paused;              /* the owner does not want messages now */

  /* only touched in the context */
  GByteArray *in;
  guint32 max_payload;
  ShmConnCallbacks cb;
  gpointer user_data;
};

ShmConn *
shm_conn_new (const ShmTransportFuncs * funcs, gpointer transport,
    const gchar * description)
{
  ShmConn *conn = g_new0 (ShmConn, 1);

  conn->ref_count = 1;
  conn->funcs = funcs;
  conn->transport = transport;
  conn->description = g_strdup (description);
  g_mutex_init (&conn->lock);
  conn->out = g_byte_array_new ();
  conn->in = g_byte_array_new ();
  conn->max_queue = DEFAULT_MAX_QUEUE;
  return conn;
}

ShmConn *
shm_conn_ref (ShmConn * conn)
{
  g_atomic_int_inc (&conn->ref_count);
  return conn;
}

static void
destroy_source (GSource ** source)
{
  if (*source) {
    g_source_destroy (*source);
    g_source_unref (*source);
    *source = NULL;
  }
}

void
shm_conn_unref (ShmConn * conn)
{
  if (!g_atomic_int_dec_and_test (&conn->ref_count))
    return;
  destroy_source (&conn->in_source);
  destroy_source (&conn->out_source);
  destroy_source (&conn->close_source);
  conn->funcs->free (conn->transport);
  g_byte_array_unref (conn->out);
  g_byte_array_unref (conn->in);
  g_clear_error (&conn->close_error);
  g_clear_error (&conn->write_error);
  if (conn->context)
    g_main_context_unref (conn->context);
  g_mutex_clear (&conn->lock);
  g_free (conn->description);
  g_free (conn);
}

const gchar *
shm_conn_get_description (ShmConn * conn)
{
  return conn->description;
}

void
shm_conn_set_max_queue (ShmConn * conn, gsize max_queue)
{
  g_mutex_lock (&conn->lock);
  conn->max_queue = max_queue;
  g_mutex_unlock (&conn->lock);
}

void
shm_conn_set_max_payload (ShmConn * conn, guint32 max_payload)
{
  conn->max_payload = max_payload;
}

gsize
shm_conn_get_queued (ShmConn * conn)
{
  gsize n;

  g_mutex_lock (&conn->lock);
  n = conn->out->len - conn->out_pos;
  g_mutex_unlock (&conn->lock);
  return n;
}

/**
 * shm_conn_get_unread:
 *
 * Bytes sent that the peer has not read yet: still queued here, or still
 * in the transport (a socket's send queue, a ring).  0 once the connection
 * is closed.
 */
gsize
shm_conn_get_unread (ShmConn * conn)
{
  gsize n;

  g_mutex_lock (&conn->lock);
  if (conn->closed || conn->write_error)
    n = 0;
  else
    n = conn->out->len - conn->out_pos + conn->funcs->unread (conn->transport);
  g_mutex_unlock (&conn->lock);
  return n;
}

gboolean
shm_conn_is_closed (ShmConn * conn)
{
  gboolean closed;

  g_mutex_lock (&conn->lock);
  closed = conn->closed || conn->closing;
  g_mutex_unlock (&conn->lock);
  return closed;
}

/* --- closing ------------------------------------------------------------ */

static gboolean
close_notify_cb (gpointer data)
{
  ShmConn *conn = data;
  GError *error;

  g_mutex_lock (&conn->lock);
  if (conn->closed) {
    g_mutex_unlock (&conn->lock);
    return G_SOURCE_REMOVE;
  }
  conn->closed = TRUE;
  destroy_source (&conn->in_source);
  destroy_source (&conn->out_source);
  error = g_steal_pointer (&conn->close_error);
  g_mutex_unlock (&conn->lock);

  conn->funcs->shutdown (conn->transport);
  if (conn->cb.closed)
    conn->cb.closed (conn, error, conn->user_data);
  g_clear_error (&error);
  return G_SOURCE_REMOVE;
}

/* Called with the lock held: arranges for the closed callback to run once,
 * in the connection's context. */
static void
schedule_close_locked (ShmConn * conn, GError * error)
{
  if (conn->closed || conn->closing) {
    g_clear_error (&error);
    return;
  }
  conn->closing = TRUE;
  conn->close_error = error;
  if (conn->context) {
    conn->close_source = g_idle_source_new ();
    g_source_set_priority (conn->close_source, G_PRIORITY_HIGH);
    g_source_set_callback (conn->close_source, close_notify_cb,
        shm_conn_ref (conn), (GDestroyNotify) shm_conn_unref);
    g_source_attach (conn->close_source, conn->context);
  }
}

/**
 * shm_conn_close:
 *
 * Ends the connection from the owner's side: no callback runs after the
 * sources are destroyed (a callback already running in the context
 * finishes).
 */
void
shm_conn_close (ShmConn * conn)
{
  gboolean was_closed;

  g_mutex_lock (&conn->lock);
  was_closed = conn->closed;
  conn->closed = TRUE;
  destroy_source (&conn->in_source);
  destroy_source (&conn->out_source);
  destroy_source (&conn->close_source);
  g_mutex_unlock (&conn->lock);
  if (!was_closed)
    conn->funcs->shutdown (conn->transport);
}

/* --- writing ------------------------------------------------------------ */

static gboolean on_writable (gpointer data);

/* With the lock held: writes what is queued; returns FALSE on error. */
static gboolean
flush_locked (ShmConn * conn, GError ** error)
{
  while (conn->out_pos < conn->out->len) {
    gssize n = conn->funcs->send (conn->transport,
        conn->out->data + conn->out_pos, conn->out->len - conn->out_pos,
        error);
    if (n < 0) {
      if (g_error_matches (*error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK)) {
        g_clear_error (error);
        break;
      }
      return FALSE;
    }
    conn->out_pos += n;
  }

  if (conn->out_pos == conn->out->len) {
    g_byte_array_set_size (conn->out, 0);
    conn->out_pos = 0;
    destroy_source (&conn->out_source);
  } else if (!conn->out_source && conn->context) {
    conn->out_source = conn->funcs->create_source (conn->transport,
        G_IO_OUT, on_writable, conn);
    g_source_attach (conn->out_source, conn->context);
  }
  return TRUE;
}

/* The transport refused a write.  When the peer is gone or going, drop
 * what is queued and fail further sends, but keep reading: what the peer
 * sent before it left (an EOS, a goodbye) is still to be read, and the
 * reader reports the end.  Any other failure (a ring index of the peer's
 * beyond the ring) ends the connection now.  Called with the lock. */
static void
write_failed_locked (ShmConn * conn, GError * error)
{
  if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE)
      && !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED))
    schedule_close_locked (conn, g_error_copy (error));
  if (!conn->write_error)
    conn->write_error = error;
  else
    g_clear_error (&error);
  g_byte_array_set_size (conn->out, 0);
  conn->out_pos = 0;
  destroy_source (&conn->out_source);
}

static gboolean
on_writable (gpointer data)
{
  ShmConn *conn = data;
  GError *error = NULL;

  g_mutex_lock (&conn->lock);
  if (!conn->closed && !flush_locked (conn, &error))
    write_failed_locked (conn, error);
  g_mutex_unlock (&conn->lock);
  return G_SOURCE_CONTINUE;
}

/**
 * shm_conn_send_parts:
 * @body: (transfer floating) (nullable)
 * @head: (nullable): raw bytes sent after the body
 * @data: (nullable): more raw bytes, after @head
 *
 * Queues one message whose payload is @head then @data, and writes as
 * much as the transport takes without blocking.  Thread-safe.  Fails when
 * the connection is closed or when the peer has left more than the queue
 * limit unread.
 */
gboolean
shm_conn_send_parts (ShmConn * conn, guint32 type, GVariant * body,
    const guint8 * head, gsize head_len, const guint8 * data, gsize data_len,
    GError ** error)
{
  GError *err = NULL;
  gsize before, payload_len = head_len + data_len;

  g_return_val_if_fail (payload_len <= SHM_MSG_MAX_PAYLOAD, FALSE);

  g_mutex_lock (&conn->lock);
  if (conn->closed || conn->closing || conn->write_error) {
    if (conn->write_error)
      g_set_error (error, SHM_PROTO_ERROR, SHM_PROTO_ERROR_CLOSED,
          "connection to %s is broken: %s", conn->description,
          conn->write_error->message);
    else
      g_set_error (error, SHM_PROTO_ERROR, SHM_PROTO_ERROR_CLOSED,
          "connection to %s is closed", conn->description);
    g_mutex_unlock (&conn->lock);
    if (body)
      g_variant_unref (g_variant_ref_sink (body));
    return FALSE;
  }

  before = conn->out->len - conn->out_pos;
  shm_msg_encode_into (conn->out, type, body, payload_len);
  if (head_len)
    g_byte_array_append (conn->out, head, head_len);
  if (data_len)
    g_byte_array_append (conn->out, data, data_len);

  if (before > 0 && before + payload_len > conn->max_queue) {
    /* The peer is there but does not read: end the connection. */
    g_set_error (&err, SHM_PROTO_ERROR, SHM_PROTO_ERROR_OVERFLOW,
        "%s does not read its messages (%" G_GSIZE_FORMAT " bytes queued)",
        conn->description, before);
    if (error)
      *error = g_error_copy (err);
    schedule_close_locked (conn, err);
    g_mutex_unlock (&conn->lock);
    return FALSE;
  }
  if (before == 0 && !flush_locked (conn, &err)) {
    /* Nothing was pending, so we wrote at once, and the transport
     * refused: the reader will see the end. */
    if (error)
      *error = g_error_copy (err);
    write_failed_locked (conn, err);
    g_mutex_unlock (&conn->lock);
    return FALSE;
  }
  g_mutex_unlock (&conn->lock);
  return TRUE;
}

gboolean
shm_conn_send (ShmConn * conn, guint32 type, GVariant * body, GError ** error)
{
  return shm_conn_send_parts (conn, type, body, NULL, 0, NULL, 0, error);
}

/* --- reading ------------------------------------------------------------ */

static gboolean
on_readable (gpointer data)
{
  ShmConn *conn = data;
  GError *error = NULL;
  gboolean eof = FALSE;
  gsize pos = 0;
  guint reads = 0;

  /* Read what is there (bounded, so that one busy peer cannot starve the
   * other sources of the context). */
  while (reads++ < 16) {
    guint oldlen = conn->in->len;
    gssize n;

    g_byte_array_set_size (conn->in, oldlen + READ_CHUNK);
    n = conn->funcs->recv (conn->transport, conn->in->data + oldlen,
        READ_CHUNK, &error);
    g_byte_array_set_size (conn->in, oldlen + MAX (n, 0));
    if (n < 0) {
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK)) {
        g_clear_error (&error);
        break;
      }
      goto failed;
    }
    if (n == 0) {
      eof = TRUE;
      break;
    }
    if (n < READ_CHUNK)
      break;
  }

  shm_conn_ref (conn);
  while (pos < conn->in->len) {
    guint32 type;
    GVariant *body;
    const guint8 *payload;
    gsize consumed, payload_len;
    ShmParseResult r;

    r = shm_msg_parse (conn->in->data + pos, conn->in->len - pos,
        conn->max_payload, &consumed, &type, &body, &payload, &payload_len,
        &error);
    if (r == SHM_PARSE_NEED_MORE)
      break;
    if (r == SHM_PARSE_ERROR) {
      g_prefix_error (&error, "%s sent a ", conn->description);
      shm_conn_unref (conn);
      goto failed;
    }
    pos += consumed;
    if (conn->cb.message)
      conn->cb.message (conn, type, body, payload, payload_len,
          conn->user_data);
    g_variant_unref (body);
    if (shm_conn_is_closed (conn)) {
      shm_conn_unref (conn);
      return G_SOURCE_REMOVE;
    }
    if (g_atomic_int_get (&conn->paused))
      break;
  }
  shm_conn_unref (conn);
  if (pos > 0)
    g_byte_array_remove_range (conn->in, 0, pos);

  /* paused: the rest (and an end of stream, which reads again) waits */
  if (g_atomic_int_get (&conn->paused))
    return G_SOURCE_CONTINUE;

  if (eof) {
    if (conn->in->len > 0)
      g_set_error (&error, SHM_PROTO_ERROR, SHM_PROTO_ERROR_MALFORMED,
          "%s closed the connection in the middle of a message "
          "(%u bytes of a truncated message)", conn->description,
          conn->in->len);
    goto failed;
  }
  return G_SOURCE_CONTINUE;

failed:
  g_mutex_lock (&conn->lock);
  schedule_close_locked (conn, error);
  destroy_source (&conn->in_source);
  g_mutex_unlock (&conn->lock);
  return G_SOURCE_REMOVE;
}

static gboolean
resume_cb (gpointer data)
{
  ShmConn *conn = data;
  gboolean closed;

  g_mutex_lock (&conn->lock);
  closed = conn->closed || conn->closing || conn->paused || !conn->in_source;
  g_mutex_unlock (&conn->lock);
  if (!closed)
    on_readable (conn);
  return G_SOURCE_REMOVE;
}

/**
 * shm_conn_set_reading:
 * @reading: FALSE to stop reading (the peer's messages wait in the
 *   transport, which slows the peer down), TRUE to go on
 *
 * Called from a message callback to stop after that message, or from any
 * thread to go on (the messages already read come first).
 */
void
shm_conn_set_reading (ShmConn * conn, gboolean reading)
{
  GSource *idle;

  g_mutex_lock (&conn->lock);
  g_atomic_int_set (&conn->paused, !reading);
  if (!reading) {
    destroy_source (&conn->in_source);
  } else if (!conn->in_source && !conn->closed && !conn->closing
      && conn->context) {
    conn->in_source = conn->funcs->create_source (conn->transport,
        G_IO_IN | G_IO_HUP | G_IO_ERR, on_readable, conn);
    g_source_attach (conn->in_source, conn->context);
    /* what was read before the pause may hold whole messages */
    idle = g_idle_source_new ();
    g_source_set_callback (idle, resume_cb, shm_conn_ref (conn),
        (GDestroyNotify) shm_conn_unref);
    g_source_attach (idle, conn->context);
    g_source_unref (idle);
  }
  g_mutex_unlock (&conn->lock);
}

/**
 * shm_conn_start:
 *
 * Starts reading in @context; callbacks run there.
 */
void
shm_conn_start (ShmConn * conn, GMainContext * context,
    const ShmConnCallbacks * callbacks, gpointer user_data)
{
  conn->cb = *callbacks;
  conn->user_data = user_data;

  g_mutex_lock (&conn->lock);
  conn->context = g_main_context_ref (context);
  conn->in_source = conn->funcs->create_source (conn->transport,
      G_IO_IN | G_IO_HUP | G_IO_ERR, on_readable, conn);
  g_source_attach (conn->in_source, context);
  /* Something may have been queued before the context was known. */
  if (conn->out_pos < conn->out->len && !conn->out_source) {
    conn->out_source = conn->funcs->create_source (conn->transport,
        G_IO_OUT, on_writable, conn);
    g_source_attach (conn->out_source, context);
  }
  if (conn->closing && !conn->close_source) {
    conn->close_source = g_idle_source_new ();
    g_source_set_callback (conn->close_source, close_notify_cb,
        shm_conn_ref (conn), (GDestroyNotify) shm_conn_unref);
    g_source_attach (conn->close_source, context);
  }
  g_mutex_unlock (&conn->lock);
}

/* --- socket transport ---------------------------------------------------- */

static gssize
socket_recv (gpointer t, guint8 * buf, gsize len, GError ** error)
{
  return g_socket_receive_with_blocking (t, (gchar *) buf, len, FALSE, NULL,
      error);
}

static gssize
socket_send (gpointer t, const guint8 * buf, gsize len, GError ** error)
{
  return g_socket_send_with_blocking (t, (const gchar *) buf, len, FALSE,
      NULL, error);
}

typedef struct
{
  GSourceFunc func;
  gpointer data;
} Trampoline;

static gboolean
socket_source_cb (GSocket * socket, GIOCondition cond, gpointer data)
{
  Trampoline *t = data;
  return t->func (t->data);
}

static GSource *
socket_create_source (gpointer t, GIOCondition cond, GSourceFunc func,
    gpointer data)
{
  GSource *source = g_socket_create_source (t, cond, NULL);
  Trampoline *tr = g_new (Trampoline, 1);

  /* The callbacks never iterate the context.  Without this GLib takes the
   * socket out of its poll set and puts it back around every dispatch,
   * each time waking its own poll: four more system calls per message. */
  g_source_set_can_recurse (source, TRUE);
  tr->func = func;
  tr->data = data;
  g_source_set_callback (source, (GSourceFunc) (void (*)(void))
      socket_source_cb, tr, g_free);
  return source;
}

static void
socket_shutdown (gpointer t)
{
  g_socket_shutdown (t, TRUE, TRUE, NULL);
}

static void
socket_free (gpointer t)
{
  g_socket_close (t, NULL);
  g_object_unref (t);
}

/* The socket's send queue: for TCP the bytes the peer's kernel has not
 * acknowledged, for a unix socket those its process has not read. */
static gsize
socket_unread (gpointer t)
{
  int n = 0;

  if (ioctl (g_socket_get_fd (t), SIOCOUTQ, &n) < 0 || n < 0)
    return 0;
  return n;
}

static const ShmTransportFuncs socket_funcs = {
  socket_recv,
  socket_send,
  socket_create_source,
  socket_shutdown,
  socket_free,
  socket_unread,
};

/**
 * shm_conn_new_socket:
 * @socket: (transfer full): a connected socket
 */
ShmConn *
shm_conn_new_socket (GSocket * socket, const gchar * description)
{
  g_socket_set_blocking (socket, FALSE);
  return shm_conn_new (&socket_funcs, socket, description);
}

gchar *
shm_socket_describe (GSocket * socket, gboolean remote)
{
  g_autoptr (GSocketAddress) addr = NULL;

  if (g_socket_get_family (socket) == G_SOCKET_FAMILY_UNIX) {
    g_autoptr (GCredentials) creds = NULL;

    if (remote) {
      creds = g_socket_get_credentials (socket, NULL);
      if (creds) {
        pid_t pid = g_credentials_get_unix_pid (creds, NULL);
        return g_strdup_printf ("process %d", (int) pid);
      }
      return g_strdup ("a unix socket peer");
    }
    addr = g_socket_get_local_address (socket, NULL);
    if (addr && G_IS_UNIX_SOCKET_ADDRESS (addr))
      return g_strdup_printf ("unix:%s",
          g_unix_socket_address_get_path (G_UNIX_SOCKET_ADDRESS (addr)));
    return g_strdup ("unix socket");
  }

  addr = remote ? g_socket_get_remote_address (socket, NULL)
      : g_socket_get_local_address (socket, NULL);
  if (addr && G_IS_INET_SOCKET_ADDRESS (addr)) {
    GInetSocketAddress *ia = G_INET_SOCKET_ADDRESS (addr);
    g_autofree gchar *ip =
        g_inet_address_to_string (g_inet_socket_address_get_address (ia));
    return g_strdup_printf ("tcp:%s:%u", ip,
        g_inet_socket_address_get_port (ia));
  }
  return g_strdup ("a socket peer");
}

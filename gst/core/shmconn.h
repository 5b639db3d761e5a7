/* gst-shm: one control connection
 *
 * Part of the core (GLib/GIO only).  A connection carries framed messages
 * (shmproto.h) over a byte transport: a GSocket (unix, TCP, vsock) or the
 * in-band ring.  It reads in its GMainContext, never blocks a sender: what
 * cannot be written at once is queued (bounded) and flushed from the
 * context.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#ifndef __SHM_CONN_H__
#define __SHM_CONN_H__

#include <gio/gio.h>

G_BEGIN_DECLS

typedef struct _ShmConn ShmConn;

/* A byte transport.  recv/send never block: they return the bytes moved,
 * or -1 with G_IO_ERROR_WOULD_BLOCK; recv returns 0 at end of stream.
 * create_source returns a source that calls @func (@data) when @cond may
 * hold.  unread returns the bytes sent that the peer has not taken yet
 * (as far as the transport can tell). */
typedef struct
{
  gssize (*recv) (gpointer t, guint8 * buf, gsize len, GError ** error);
  gssize (*send) (gpointer t, const guint8 * buf, gsize len, GError ** error);
  GSource *(*create_source) (gpointer t, GIOCondition cond, GSourceFunc func,
      gpointer data);
  void (*shutdown) (gpointer t);
  void (*free) (gpointer t);
  gsize (*unread) (gpointer t);
} ShmTransportFuncs;

typedef struct
{
  /* Called in the connection's context for each message.  @body and
   * @payload are only valid during the call. */
  void (*message) (ShmConn * conn, guint32 type, GVariant * body,
      const guint8 * payload, gsize payload_len, gpointer user_data);
  /* Called once in the context when the connection ends: @error is NULL
   * at a clean end of stream. */
  void (*closed) (ShmConn * conn, const GError * error, gpointer user_data);
} ShmConnCallbacks;

ShmConn *shm_conn_new (const ShmTransportFuncs * funcs, gpointer transport,
    const gchar * description);
ShmConn *shm_conn_new_socket (GSocket * socket, const gchar * description);
void shm_conn_start (ShmConn * conn, GMainContext * context,
    const ShmConnCallbacks * callbacks, gpointer user_data);
gboolean shm_conn_send (ShmConn * conn, guint32 type, GVariant * body,
    GError ** error);
gboolean shm_conn_send_parts (ShmConn * conn, guint32 type, GVariant * body,
    const guint8 * head, gsize head_len, const guint8 * data, gsize data_len,
    GError ** error);
void shm_conn_close (ShmConn * conn);
gboolean shm_conn_is_closed (ShmConn * conn);
gsize shm_conn_get_queued (ShmConn * conn);
gsize shm_conn_get_unread (ShmConn * conn);
void shm_conn_set_reading (ShmConn * conn, gboolean reading);
const gchar *shm_conn_get_description (ShmConn * conn);
void shm_conn_set_max_queue (ShmConn * conn, gsize max_queue);
void shm_conn_set_max_payload (ShmConn * conn, guint32 max_payload);

ShmConn *shm_conn_ref (ShmConn * conn);
void shm_conn_unref (ShmConn * conn);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ShmConn, shm_conn_unref);

/* Socket helpers shared by every socket transport. */
gchar *shm_socket_describe (GSocket * socket, gboolean remote);

G_END_DECLS

#endif /* __SHM_CONN_H__ */

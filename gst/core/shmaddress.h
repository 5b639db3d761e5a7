/* gst-shm: control addresses
 *
 * Part of the core (GLib/GIO only).
 *
 *   unix:PATH        a unix socket (PATH taken verbatim, ':' included)
 *   tcp:HOST:PORT    TCP; HOST may be [IPv6]; the sink listens on HOST
 *   vsock:CID:PORT   AF_VSOCK; CID a number, or "any" (sink), "host" (2)
 *   ring             the in-band ring inside the area (no socket)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#ifndef __SHM_ADDRESS_H__
#define __SHM_ADDRESS_H__

#include <gio/gio.h>

G_BEGIN_DECLS

typedef enum
{
  SHM_ADDRESS_UNIX,
  SHM_ADDRESS_TCP,
  SHM_ADDRESS_VSOCK,
  SHM_ADDRESS_RING,
} ShmAddressKind;

#define SHM_VSOCK_CID_ANY   G_MAXUINT32
#define SHM_VSOCK_CID_HOST  2

typedef struct
{
  ShmAddressKind kind;
  gchar *path;                  /* unix */
  gchar *host;                  /* tcp */
  guint16 port;                 /* tcp, vsock */
  guint32 cid;                  /* vsock */
} ShmAddress;

gboolean shm_address_parse (const gchar * str, ShmAddress * addr,
    GError ** error);
void shm_address_clear (ShmAddress * addr);
gchar *shm_address_to_string (const ShmAddress * addr);

GSocket *shm_address_listen (const ShmAddress * addr, guint mode,
    gint64 gid, GError ** error);
GSocket *shm_address_connect (const ShmAddress * addr, GError ** error);

/* Provided by sys/ (vsock support), or failing when not built. */
GSocket *shm_vsock_socket_new (guint32 cid, guint16 port, gboolean listen,
    GError ** error);

G_END_DECLS

#endif /* __SHM_ADDRESS_H__ */

/* gst-shm: control addresses
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "shmaddress.h"

#include <gio/gunixsocketaddress.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/un.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static gboolean
parse_port (const gchar * s, guint16 * port, gboolean allow_zero)
{
  guint64 v;

  if (!g_ascii_string_to_unsigned (s, 10, allow_zero ? 0 : 1, 65535, &v, NULL))
    return FALSE;
  *port = v;
  return TRUE;
}

static gboolean
fail (GError ** error, const gchar * str, const gchar * why)
{
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
      "invalid control address \"%s\": %s (expected unix:PATH, "
      "tcp:HOST:PORT, vsock:CID:PORT or ring)", str, why);
  return FALSE;
}

/**
 * shm_address_parse:
 *
 * Parses a control address.  Only the scheme prefix and, for tcp and vsock,
 * the last ':' are significant: a unix path is taken verbatim.
 */
gboolean
shm_address_parse (const gchar * str, ShmAddress * addr, GError ** error)
{
  const gchar *rest;
  const gchar *colon;

  memset (addr, 0, sizeof *addr);
  if (str == NULL || *str == '\0')
    return fail (error, "", "empty");

  if (g_str_has_prefix (str, "unix:")) {
    rest = str + 5;
    if (*rest == '\0')
      return fail (error, str, "no path");
    if (strlen (rest) >= sizeof (((struct sockaddr_un *) 0)->sun_path))
      return fail (error, str, "unix socket path too long");
    addr->kind = SHM_ADDRESS_UNIX;
    addr->path = g_strdup (rest);
    return TRUE;
  }

  if (g_str_equal (str, "ring")) {
    addr->kind = SHM_ADDRESS_RING;
    return TRUE;
  }

  if (g_str_has_prefix (str, "tcp:")) {
    rest = str + 4;
    colon = strrchr (rest, ':');
    if (!colon || colon == rest)
      return fail (error, str, "no host or no port");
    if (!parse_port (colon + 1, &addr->port, TRUE))
      return fail (error, str, "port must be 0..65535");
    if (rest[0] == '[') {
      if (colon[-1] != ']' || colon - rest < 3)
        return fail (error, str, "unterminated [IPv6] host");
      addr->host = g_strndup (rest + 1, colon - rest - 2);
    } else {
      addr->host = g_strndup (rest, colon - rest);
      if (strchr (addr->host, ':')) {
        g_clear_pointer (&addr->host, g_free);
        return fail (error, str, "write IPv6 hosts as [ADDRESS]");
      }
    }
    addr->kind = SHM_ADDRESS_TCP;
    return TRUE;
  }

  if (g_str_has_prefix (str, "vsock:")) {
    g_auto (GStrv) parts = NULL;
    guint64 cid;

    rest = str + 6;
    parts = g_strsplit (rest, ":", -1);
    if (g_strv_length (parts) != 2)
      return fail (error, str, "vsock takes CID:PORT");
    if (g_str_equal (parts[0], "any"))
      cid = SHM_VSOCK_CID_ANY;
    else if (g_str_equal (parts[0], "host"))
      cid = SHM_VSOCK_CID_HOST;
    else if (!g_ascii_string_to_unsigned (parts[0], 10, 0, G_MAXUINT32 - 1,
            &cid, NULL))
      return fail (error, str, "CID must be a number, \"any\" or \"host\"");
    if (!parse_port (parts[1], &addr->port, FALSE))
      return fail (error, str, "port must be 1..65535");
    addr->cid = cid;
    addr->kind = SHM_ADDRESS_VSOCK;
    return TRUE;
  }

  return fail (error, str, "unknown scheme");
}

void
shm_address_clear (ShmAddress * addr)
{
  g_clear_pointer (&addr->path, g_free);
  g_clear_pointer (&addr->host, g_free);
}

gchar *
shm_address_to_string (const ShmAddress * addr)
{
  switch (addr->kind) {
    case SHM_ADDRESS_UNIX:
      return g_strdup_printf ("unix:%s", addr->path);
    case SHM_ADDRESS_TCP:
      return strchr (addr->host, ':')
          ? g_strdup_printf ("tcp:[%s]:%u", addr->host, addr->port)
          : g_strdup_printf ("tcp:%s:%u", addr->host, addr->port);
    case SHM_ADDRESS_VSOCK:
      if (addr->cid == SHM_VSOCK_CID_ANY)
        return g_strdup_printf ("vsock:any:%u", addr->port);
      return g_strdup_printf ("vsock:%u:%u", addr->cid, addr->port);
    case SHM_ADDRESS_RING:
    default:
      return g_strdup ("ring");
  }
}

static GSocketAddress *
inet_address (const ShmAddress * addr, GError ** error)
{
  GInetAddress *ia = g_inet_address_new_from_string (addr->host);
  GSocketAddress *sa;

  if (!ia) {
    g_autoptr (GResolver) resolver = g_resolver_get_default ();
    GList *list = g_resolver_lookup_by_name (resolver, addr->host, NULL,
        error);
    if (!list)
      return NULL;
    ia = g_object_ref (list->data);
    g_resolver_free_addresses (list);
  }
  sa = g_inet_socket_address_new (ia, addr->port);
  g_object_unref (ia);
  return sa;
}

/* A unix socket path that still answers belongs to a running sink. */
static gboolean
unix_path_prepare (const gchar * path, GError ** error)
{
  struct stat st;
  g_autoptr (GSocket) probe = NULL;
  g_autoptr (GSocketAddress) sa = NULL;

  if (lstat (path, &st) < 0)
    return TRUE;
  if (!S_ISSOCK (st.st_mode)) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_EXISTS,
        "\"%s\" exists and is not a socket", path);
    return FALSE;
  }
  probe = g_socket_new (G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM,
      G_SOCKET_PROTOCOL_DEFAULT, error);
  if (!probe)
    return FALSE;
  sa = g_unix_socket_address_new (path);
  if (g_socket_connect (probe, sa, NULL, NULL)) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE,
        "Another shmsink owns \"%s\"", path);
    return FALSE;
  }
  /* Stale: left by a sink that did not stop cleanly. */
  if (unlink (path) < 0 && errno != ENOENT) {
    g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno),
        "Could not remove stale socket \"%s\": %s", path, g_strerror (errno));
    return FALSE;
  }
  return TRUE;
}

/**
 * shm_address_listen:
 * @mode: permissions of a unix socket
 * @gid: the group of a unix socket, or -1 to leave it
 *
 * Returns: (transfer full): a listening socket
 */
GSocket *
shm_address_listen (const ShmAddress * addr, guint mode, gint64 gid,
    GError ** error)
{
  g_autoptr (GSocketAddress) sa = NULL;
  g_autoptr (GSocket) sock = NULL;

  switch (addr->kind) {
    case SHM_ADDRESS_UNIX:
      if (!unix_path_prepare (addr->path, error))
        return NULL;
      sa = g_unix_socket_address_new (addr->path);
      sock = g_socket_new (G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM,
          G_SOCKET_PROTOCOL_DEFAULT, error);
      break;
    case SHM_ADDRESS_TCP:
      sa = inet_address (addr, error);
      if (!sa)
        return NULL;
      sock = g_socket_new (g_socket_address_get_family (sa),
          G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, error);
      break;
    case SHM_ADDRESS_VSOCK:
      return shm_vsock_socket_new (addr->cid, addr->port, TRUE, error);
    case SHM_ADDRESS_RING:
    default:
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
          "the ring is not a socket");
      return NULL;
  }
  if (!sock)
    return NULL;
  if (!g_socket_bind (sock, sa, TRUE, error)) {
    g_prefix_error (error, "Could not bind %s: ",
        addr->kind == SHM_ADDRESS_UNIX ? addr->path : addr->host);
    return NULL;
  }
  /* the group first, then the mode that lets it in; a connection in
   * between is checked by its credentials (shmsender.c) */
  if (addr->kind == SHM_ADDRESS_UNIX && gid >= 0
      && chown (addr->path, (uid_t) - 1, (gid_t) gid) < 0) {
    g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno),
        "Could not give \"%s\" to gid %u: %s", addr->path, (guint) gid,
        g_strerror (errno));
    unlink (addr->path);
    return NULL;
  }
  if (addr->kind == SHM_ADDRESS_UNIX && chmod (addr->path, mode & 0777) < 0) {
    g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno),
        "Could not set the mode of \"%s\": %s", addr->path, g_strerror (errno));
    unlink (addr->path);
    return NULL;
  }
  if (!g_socket_listen (sock, error)) {
    if (addr->kind == SHM_ADDRESS_UNIX)
      unlink (addr->path);
    return NULL;
  }
  g_socket_set_blocking (sock, FALSE);
  return g_steal_pointer (&sock);
}

/**
 * shm_address_connect:
 *
 * Connects (blocking; callers run it in their control thread).
 */
GSocket *
shm_address_connect (const ShmAddress * addr, GError ** error)
{
  g_autoptr (GSocketAddress) sa = NULL;
  g_autoptr (GSocket) sock = NULL;

  switch (addr->kind) {
    case SHM_ADDRESS_UNIX:
      sa = g_unix_socket_address_new (addr->path);
      sock = g_socket_new (G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM,
          G_SOCKET_PROTOCOL_DEFAULT, error);
      break;
    case SHM_ADDRESS_TCP:
      sa = inet_address (addr, error);
      if (!sa)
        return NULL;
      sock = g_socket_new (g_socket_address_get_family (sa),
          G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, error);
      if (sock) {
        g_socket_set_option (sock, IPPROTO_TCP, TCP_NODELAY, 1, NULL);
        g_socket_set_timeout (sock, 5);
      }
      break;
    case SHM_ADDRESS_VSOCK:
      return shm_vsock_socket_new (addr->cid, addr->port, FALSE, error);
    case SHM_ADDRESS_RING:
    default:
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
          "the ring is not a socket");
      return NULL;
  }
  if (!sock)
    return NULL;
  if (!g_socket_connect (sock, sa, NULL, error))
    return NULL;
  g_socket_set_timeout (sock, 0);
  return g_steal_pointer (&sock);
}

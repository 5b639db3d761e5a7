/* gst-shm: AF_VSOCK sockets (host <-> guest control)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "shmaddress.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#if defined(HAVE_LINUX_VM_SOCKETS_H) && defined(SHM_HAVE_VSOCK)
#include <linux/vm_sockets.h>

/**
 * shm_vsock_socket_new:
 * @cid: the peer's CID to connect to, or the CID to bind (SHM_VSOCK_CID_ANY
 *   for VMADDR_CID_ANY)
 * @do_listen: bind and listen instead of connecting
 *
 * Returns: (transfer full): a GSocket over AF_VSOCK.
 */
GSocket *
shm_vsock_socket_new (guint32 cid, guint16 port, gboolean do_listen,
    GError ** error)
{
  struct sockaddr_vm svm;
  const gchar *what;
  GSocket *sock;
  int fd, r;

  fd = socket (AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno),
        "Could not create a vsock socket: %s", g_strerror (errno));
    return NULL;
  }
  memset (&svm, 0, sizeof svm);
  svm.svm_family = AF_VSOCK;
  svm.svm_cid = cid == SHM_VSOCK_CID_ANY ? VMADDR_CID_ANY : cid;
  svm.svm_port = port;
  if (do_listen) {
    what = "listen on";
    r = bind (fd, (struct sockaddr *) &svm, sizeof svm);
    if (r == 0)
      r = listen (fd, 16);
  } else {
    what = "connect to";
    r = connect (fd, (struct sockaddr *) &svm, sizeof svm);
  }
  if (r < 0) {
    int err = errno;
    close (fd);
    g_set_error (error, G_IO_ERROR, g_io_error_from_errno (err),
        "Could not %s vsock:%u:%u: %s", what, cid, port, g_strerror (err));
    return NULL;
  }
  sock = g_socket_new_from_fd (fd, error);
  if (!sock)
    close (fd);
  else if (do_listen)
    g_socket_set_blocking (sock, FALSE);
  return sock;
}

#else

GSocket *
shm_vsock_socket_new (guint32 cid, guint16 port, gboolean do_listen,
    GError ** error)
{
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
      "vsock control (vsock:%u:%u) is not available: gst-shm was built "
      "without vsock support", cid, port);
  return NULL;
}

#endif

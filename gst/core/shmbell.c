/* gst-shm: bells, the wake-ups of the frame path
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "shmbell.h"

#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int
shm_futex_wake (guint32 * word, int n)
{
  return syscall (SYS_futex, word, FUTEX_WAKE, n, NULL, NULL, 0);
}

int
shm_futex_wait (guint32 * word, guint32 seen, gint64 timeout_ns)
{
  struct timespec ts;

  if (timeout_ns == 0)
    return 0;
  if (timeout_ns > 0) {
    ts.tv_sec = timeout_ns / G_GINT64_CONSTANT (1000000000);
    ts.tv_nsec = timeout_ns % G_GINT64_CONSTANT (1000000000);
  }
  /* FUTEX_WAIT: sleeps only if *word == seen, atomically with the check */
  return syscall (SYS_futex, word, FUTEX_WAIT, seen, timeout_ns > 0 ? &ts
      : NULL, NULL, 0);
}

/* gst-shm: bells, the wake-ups of the frame path
 *
 * Part of the core (GLib only).  A bell is a 32-bit wake-up counter: a
 * side that waits reads it, says that it waits (a flag the other side
 * reads), checks for work once more, then sleeps on the counter with a
 * futex; a side that made work adds 1 to the counter and wakes the
 * sleepers, but only when the flag says someone waits.  Since a sleeper
 * sleeps only while the counter still holds the value it read, no wake-up
 * is lost (docs/protocol.md, "Waiting and waking").
 *
 * The counter lives in the shared area when both sides run on one kernel
 * (futexes on a shared file mapping work across processes), or in the
 * waiter's own memory when the wake-up comes another way (a doorbell
 * message read by the control thread, or a timer in ring mode).  Its value
 * carries no information: anyone may add to it, and a waiter only learns
 * that it should look again.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#ifndef __SHM_BELL_H__
#define __SHM_BELL_H__

#include <glib.h>
#include <stdint.h>

G_BEGIN_DECLS

/* futex(2) on @word (shared: works across processes on a shared mapping).
 * Returns what the system call returns (-1 with errno on failure). */
int shm_futex_wake (guint32 * word, int n);
int shm_futex_wait (guint32 * word, guint32 seen, gint64 timeout_ns);

static inline guint32
shm_bell_read (guint32 * bell)
{
  return __atomic_load_n (bell, __ATOMIC_ACQUIRE);
}

/* Adds 1 to @bell and wakes every thread that sleeps on it. */
static inline void
shm_bell_ring (guint32 * bell)
{
  __atomic_fetch_add (bell, 1, __ATOMIC_SEQ_CST);
  shm_futex_wake (bell, G_MAXINT);
}

/* Sleeps while @bell still holds @seen, at most @timeout_ns (< 0: no
 * limit).  Returns early on any ring, and may return spuriously. */
static inline void
shm_bell_wait (guint32 * bell, guint32 seen, gint64 timeout_ns)
{
  shm_futex_wait (bell, seen, timeout_ns);
}

/* One step of a busy wait: tells the CPU (and a hypervisor that watches
 * for it) that this thread spins. */
static inline void
shm_cpu_relax (void)
{
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause ();
#elif defined(__aarch64__)
  __asm__ __volatile__ ("yield");
#endif
}

G_END_DECLS

#endif /* __SHM_BELL_H__ */

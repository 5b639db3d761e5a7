/* gst-shm: mappings that a peer may shrink under us
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "shmguard.h"

#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MAX_GUARDED 256

/* Read by the signal handler: an entry is in use while its base is not 0;
 * its length and flag are stored before its base (release), and its base
 * cleared before the mapping goes. */
static struct
{
  uintptr_t base;
  gsize len;
  gint *truncated;
} guarded[MAX_GUARDED];

static struct sigaction previous;
static GMutex lock;

static void
on_sigbus (int sig, siginfo_t * info, void *context)
{
  uintptr_t addr = (uintptr_t) info->si_addr;
  uintptr_t page = (uintptr_t) sysconf (_SC_PAGESIZE);

  for (guint i = 0; i < MAX_GUARDED; i++) {
    uintptr_t base = __atomic_load_n (&guarded[i].base, __ATOMIC_ACQUIRE);
    if (base && addr >= base && addr - base < guarded[i].len) {
      /* zeros where the file ended: the access goes on, the engine sees
       * the flag */
      if (mmap ((void *) (addr & ~(page - 1)), page, PROT_READ | PROT_WRITE,
              MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) != MAP_FAILED) {
        __atomic_store_n (guarded[i].truncated, 1, __ATOMIC_RELEASE);
        return;
      }
      break;
    }
  }
  /* not ours: as if we were not there */
  if (previous.sa_flags & SA_SIGINFO) {
    previous.sa_sigaction (sig, info, context);
  } else if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
    previous.sa_handler (sig);
  } else {
    signal (SIGBUS, SIG_DFL);
    raise (SIGBUS);
  }
}

static gpointer
install (gpointer data)
{
  struct sigaction sa;

  memset (&sa, 0, sizeof sa);
  sa.sa_sigaction = on_sigbus;
  sa.sa_flags = SA_SIGINFO | SA_NODEFER;
  sigemptyset (&sa.sa_mask);
  sigaction (SIGBUS, &sa, &previous);
  return NULL;
}

/**
 * shm_guard_add:
 * @truncated: set to 1 (from the signal handler) when an access past the
 *   file's end was made harmless
 *
 * Returns: the guard, for shm_guard_remove(); -1 when all are in use (the
 *   mapping is then not guarded).
 */
gint
shm_guard_add (gpointer base, gsize len, gint * truncated)
{
  static GOnce once = G_ONCE_INIT;
  gint slot = -1;

  g_once (&once, install, NULL);
  g_mutex_lock (&lock);
  for (gint i = 0; i < MAX_GUARDED && slot < 0; i++) {
    if (__atomic_load_n (&guarded[i].base, __ATOMIC_RELAXED) == 0) {
      guarded[i].len = len;
      guarded[i].truncated = truncated;
      __atomic_store_n (&guarded[i].base, (uintptr_t) base, __ATOMIC_RELEASE);
      slot = i;
    }
  }
  g_mutex_unlock (&lock);
  return slot;
}

void
shm_guard_remove (gint slot)
{
  if (slot < 0)
    return;
  g_mutex_lock (&lock);
  __atomic_store_n (&guarded[slot].base, 0, __ATOMIC_SEQ_CST);
  g_mutex_unlock (&lock);
}

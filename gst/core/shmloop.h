/* gst-shm: an engine's control thread
 *
 * Part of the core (GLib only): a GMainContext run by a thread of its own,
 * in which a sender or receiver engine reads its connections and runs its
 * timers.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#ifndef __SHM_LOOP_H__
#define __SHM_LOOP_H__

#include <glib.h>

G_BEGIN_DECLS

typedef struct
{
  GMainContext *context;
  GMainLoop *loop;
  GThread *thread;
} ShmLoop;

void shm_loop_init (ShmLoop * loop);
void shm_loop_run (ShmLoop * loop, const gchar * name);
void shm_loop_stop (ShmLoop * loop);
void shm_loop_clear (ShmLoop * loop);
GSource *shm_loop_add_timeout (ShmLoop * loop, guint ms, GSourceFunc func,
    gpointer data);
void shm_source_clear (GSource ** source);

G_END_DECLS

#endif /* __SHM_LOOP_H__ */

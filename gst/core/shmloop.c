/* gst-shm: an engine's control thread
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "shmloop.h"

/* The context and its loop; sources may be attached before it runs. */
void
shm_loop_init (ShmLoop * l)
{
  l->context = g_main_context_new ();
  l->loop = g_main_loop_new (l->context, FALSE);
  l->thread = NULL;
}

static gpointer
run (gpointer data)
{
  ShmLoop *l = data;

  g_main_context_push_thread_default (l->context);
  g_main_loop_run (l->loop);
  g_main_context_pop_thread_default (l->context);
  return NULL;
}

void
shm_loop_run (ShmLoop * l, const gchar * name)
{
  l->thread = g_thread_new (name, run, l);
}

static gboolean
quit_cb (gpointer loop)
{
  g_main_loop_quit (loop);
  return G_SOURCE_REMOVE;
}

/**
 * shm_loop_stop:
 *
 * Stops the thread.  The quit runs as a source of the loop's own context: a
 * g_main_loop_quit() called before the thread entered g_main_loop_run()
 * would be lost, and the join would wait forever.
 */
void
shm_loop_stop (ShmLoop * l)
{
  GSource *source;

  if (!l->thread)
    return;
  source = g_idle_source_new ();
  g_source_set_priority (source, G_PRIORITY_HIGH);
  g_source_set_callback (source, quit_cb, g_main_loop_ref (l->loop),
      (GDestroyNotify) g_main_loop_unref);
  g_source_attach (source, l->context);
  g_source_unref (source);
  g_thread_join (l->thread);
  l->thread = NULL;
}

void
shm_loop_clear (ShmLoop * l)
{
  shm_loop_stop (l);
  g_clear_pointer (&l->loop, g_main_loop_unref);
  g_clear_pointer (&l->context, g_main_context_unref);
}

GSource *
shm_loop_add_timeout (ShmLoop * l, guint ms, GSourceFunc func, gpointer data)
{
  GSource *source = g_timeout_source_new (ms);

  g_source_set_callback (source, func, data, NULL);
  g_source_attach (source, l->context);
  return source;
}

void
shm_source_clear (GSource ** source)
{
  if (*source) {
    g_source_destroy (*source);
    g_clear_pointer (source, g_source_unref);
  }
}

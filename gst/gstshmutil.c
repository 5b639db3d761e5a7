/* gst-shm: helpers shared by shmsink and shmsrc
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstshmutil.h"

#include <string.h>

/**
 * gst_shm_post_peer_message:
 * @event: "connected", "left", "lost", "stalled", "refused"
 *
 * Posts an element message named "shm-peer" with the fields event, peer,
 * session and (when given) reason.
 */
void
gst_shm_post_peer_message (GstElement * element, const gchar * event,
    const gchar * peer, guint64 session, const gchar * reason)
{
  GstStructure *s = gst_structure_new (GST_SHM_PEER_MESSAGE,
      "event", G_TYPE_STRING, event,
      "peer", G_TYPE_STRING, peer ? peer : "",
      "session", G_TYPE_UINT64, session, NULL);

  if (reason)
    gst_structure_set (s, "reason", G_TYPE_STRING, reason, NULL);
  gst_element_post_message (element,
      gst_message_new_element (GST_OBJECT_CAST (element), s));
}

static gpointer
read_boot_id (gpointer data)
{
  gchar *contents = NULL;

  if (g_file_get_contents ("/proc/sys/kernel/random/boot_id", &contents,
          NULL, NULL))
    g_strstrip (contents);
  else
    contents = g_strdup ("");
  return contents;
}

/* Identifies this kernel's boot: two processes share CLOCK_MONOTONIC
 * exactly when their boot ids are equal. */
const gchar *
gst_shm_boot_id (void)
{
  static GOnce once = G_ONCE_INIT;

  g_once (&once, read_boot_id, NULL);
  return once.retval;
}

gboolean
gst_shm_clock_is_monotonic (GstClock * clock)
{
  GstClockType type;

  if (clock == NULL || G_OBJECT_TYPE (clock) != GST_TYPE_SYSTEM_CLOCK)
    return FALSE;
  g_object_get (clock, "clock-type", &type, NULL);
  return type == GST_CLOCK_TYPE_MONOTONIC;
}

/* CLOCK_MONOTONIC minus the element's clock, 0 when they are the same. */
GstClockTimeDiff
gst_shm_clock_diff (GstElement * element, gboolean uses_monotonic)
{
  GstClock *clock;
  GstClockTimeDiff diff = 0;

  if (uses_monotonic)
    return 0;
  clock = gst_element_get_clock (element);
  if (clock) {
    diff = GST_CLOCK_DIFF (gst_clock_get_time (clock),
        g_get_monotonic_time () * GST_USECOND);
    gst_object_unref (clock);
  }
  return diff;
}

/**
 * gst_shm_prepare_path:
 * @kind: (out): whether the path is a PCI BAR, and of which kind
 *
 * Turns the "path" property into the file to map: resolves the ivshmem
 * discovery form (ivshmem:N, ivshmem:PCI-ADDRESS), and for a BAR checks
 * that the device is an ivshmem device and enables it when it is disabled
 * (which needs root).  Posts an element error when that fails.
 *
 * Returns: (transfer full) (nullable): the path to map.
 */
gchar *
gst_shm_prepare_path (GstElement * element, const gchar * path,
    ShmBarKind * kind)
{
  g_autoptr (GError) err = NULL;
  gchar *file;

  file = shm_ivshmem_resolve (path, "/sys", &err);
  if (!file) {
    GST_ELEMENT_ERROR (element, RESOURCE, NOT_FOUND, ("%s (path=%s).",
            err->message, path), (NULL));
    return NULL;
  }
  if (!shm_ivshmem_prepare (file, TRUE, kind, &err)) {
    GST_ELEMENT_ERROR (element, RESOURCE, OPEN_READ_WRITE, ("%s.",
            err->message), (NULL));
    g_free (file);
    return NULL;
  }
  return file;
}

/* The control channel when none is set: a unix socket PATH.sock beside an
 * area file, the in-band rings for a PCI BAR (a guest has no place to
 * share a socket with its peer). */
gchar *
gst_shm_default_control (const gchar * path, ShmBarKind kind)
{
  if (kind != SHM_BAR_NONE)
    return g_strdup ("ring");
  return g_strdup_printf ("unix:%s.sock", path);
}

static gboolean
quit_cb (gpointer loop)
{
  g_main_loop_quit (loop);
  return G_SOURCE_REMOVE;
}

/**
 * gst_shm_quit_and_join:
 *
 * Stops a control thread.  The quit runs as a source of the loop's own
 * context: a g_main_loop_quit() called before the thread entered
 * g_main_loop_run() would be lost, and the join would wait forever.
 */
void
gst_shm_quit_and_join (GMainContext * context, GMainLoop * loop,
    GThread * thread)
{
  GSource *source = g_idle_source_new ();

  g_source_set_priority (source, G_PRIORITY_HIGH);
  g_source_set_callback (source, quit_cb, g_main_loop_ref (loop),
      (GDestroyNotify) g_main_loop_unref);
  g_source_attach (source, context);
  g_source_unref (source);
  g_thread_join (thread);
}

/**
 * gst_shm_raw_video_info:
 *
 * Like gst_video_info_from_caps(), but only for raw video: encoded caps
 * (image/jpeg, video/x-h264...) have no frame layout here.
 */
gboolean
gst_shm_raw_video_info (GstVideoInfo * info, GstCaps * caps)
{
  return gst_video_info_from_caps (info, caps)
      && GST_VIDEO_INFO_FORMAT (info) != GST_VIDEO_FORMAT_ENCODED;
}

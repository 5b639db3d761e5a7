/* gst-shm benchmark: one side of a damage measurement
 *
 *   gst-shm-damage send PATH CONTROL PATTERN DAMAGE FRAMES
 *     videotestsrc is-live=true pattern=PATTERN num-buffers=FRAMES
 *       ! video/x-raw,format=BGRx,width=1920,height=1080,framerate=60/1
 *       ! shmsink path=PATH control=CONTROL damage=DAMAGE
 *   gst-shm-damage recv PATH CONTROL
 *     shmsrc path=PATH control=CONTROL read-mode=copy ! fakesink
 *
 * Each runs until the end of the stream and prints key=value lines: the
 * element's stats and the process's CPU time (getrusage, all threads).
 * bench/damage.sh runs the pairs and writes bench/damage.md.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <gst/gst.h>
#include <sys/resource.h>

static gint64
cpu_ns (void)
{
  struct rusage ru;

  getrusage (RUSAGE_SELF, &ru);
  return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * G_GINT64_CONSTANT
      (1000000000) + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000;
}

static gboolean
print_field (GQuark field, const GValue * value, gpointer data)
{
  if (G_VALUE_HOLDS_UINT64 (value))
    g_print ("%s=%" G_GUINT64_FORMAT "\n", g_quark_to_string (field),
        g_value_get_uint64 (value));
  return TRUE;
}

int
main (int argc, char **argv)
{
  g_autofree gchar *desc = NULL;
  g_autoptr (GError) err = NULL;
  GstElement *pipeline, *el;
  GstStructure *stats;
  GstMessage *msg;
  gint64 start, cpu;
  gboolean send;

  gst_init (&argc, &argv);
  send = argc == 7 && g_str_equal (argv[1], "send");
  if (!send && !(argc == 4 && g_str_equal (argv[1], "recv"))) {
    g_printerr ("usage: gst-shm-damage send PATH CONTROL PATTERN DAMAGE "
        "FRAMES | recv PATH CONTROL\n");
    return 2;
  }
  if (send)
    desc = g_strdup_printf ("videotestsrc is-live=true pattern=%s "
        "num-buffers=%s ! video/x-raw,format=BGRx,width=1920,height=1080,"
        "framerate=60/1 ! shmsink name=el path=%s control=%s damage=%s",
        argv[4], argv[6], argv[2], argv[3], argv[5]);
  else
    desc = g_strdup_printf ("shmsrc name=el path=%s control=%s "
        "read-mode=copy timeout=20000000000 ! fakesink", argv[2], argv[3]);
  pipeline = gst_parse_launch (desc, &err);
  if (!pipeline) {
    g_printerr ("%s\n", err->message);
    return 1;
  }
  el = gst_bin_get_by_name (GST_BIN (pipeline), "el");
  start = g_get_monotonic_time ();
  cpu = cpu_ns ();
  gst_element_set_state (pipeline, GST_STATE_PLAYING);
  msg = gst_bus_timed_pop_filtered (GST_ELEMENT_BUS (pipeline),
      120 * GST_SECOND, GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
  if (!msg || GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR) {
    if (msg)
      gst_message_parse_error (msg, &err, NULL);
    g_printerr ("%s: %s\n", argv[1], err ? err->message : "timed out");
    return 1;
  }
  gst_message_unref (msg);
  g_print ("cpu-ns=%" G_GINT64_FORMAT "\nwall-ns=%" G_GINT64_FORMAT "\n",
      cpu_ns () - cpu, (g_get_monotonic_time () - start) * 1000);
  g_object_get (el, "stats", &stats, NULL);
  gst_structure_foreach (stats, print_field, NULL);
  gst_structure_free (stats);
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (el);
  gst_object_unref (pipeline);
  return 0;
}

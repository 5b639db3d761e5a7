/* gst-shm benchmark: one pipeline in a child process
 *
 * Roles:
 *   inspect  loads the shm plugin the environment selects and says which
 *            file it came from (and fills this process's registry);
 *   alone    videotestsrc ! caps ! benchtimer ! fakesink (the producer
 *            alone) or ! benchpoolsink (the producer into a pool of K
 *            buffers: the fair zero-copy ceiling);
 *   send     videotestsrc ! caps ! benchtimer ! shmsink (ours or
 *            gst-plugins-bad's), a stamp written into each frame by a probe
 *            on shmsink's sink pad;
 *   recv     shmsrc [! caps] ! fakesink, the stamp read by a probe on
 *            shmsrc's source pad.
 *
 * Each writes a key file with what it measured: frames, the time and CPU
 * time (getrusage, all threads) from the end of the warm-up (frame `warmup`,
 * and `warmup_ms` after the first frame: a live source that waited for its
 * receiver sends its backlog in a burst first) to the last frame, peak
 * RSS, latencies, the sink's render times and the elements' stats.  A
 * receiver that sees no frame for a while writes "hang" and exits; SIGTERM
 * writes "terminated" and exits; nothing waits for a pipeline that does not
 * stop.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "bench.h"

#include <glib-unix.h>
#include <glib/gstdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct
{
  const BenchChildOptions *opts;
  GMainLoop *loop;
  GstElement *pipeline;
  GstElement *sink;
  GstElement *src;
  GstElement *timer;
  gchar *plugin_file;

  GMutex lock;
  guint64 count;                /* frames seen by the probe */
  gint64 activity_ns;           /* last frame (or start) */
  gint64 first_ns;              /* first frame */
  gint64 start_ns, start_cpu;   /* at the end of the warm-up */
  guint64 start_index;
  gint64 last_ns, last_cpu;     /* at the last frame */
  guint64 last_index;
  gboolean have_start;
  GArray *latency;              /* gint64 ns, frames after the warm-up */
  guint64 unstamped;
  guint64 max_seq;
  gboolean have_seq;
  gboolean all_received;

  gboolean eos;
  gboolean finished;
  GString *warnings;
} Child;

static void
measure_locked (Child * c, gint64 now)
{
  guint64 index = c->count++;

  c->activity_ns = now;
  if (index == 0)
    c->first_ns = now;
  if (!c->have_start && ((gint64) index < c->opts->warmup
          || now - c->first_ns < (gint64) c->opts->warmup_ms * 1000000))
    return;
  if (!c->have_start) {
    c->have_start = TRUE;
    c->start_index = index;
    c->start_ns = now;
    c->start_cpu = c->opts->no_cpu ? 0 : bench_cpu_ns (NULL);
    c->last_ns = c->start_ns;
    c->last_cpu = c->start_cpu;
    c->last_index = index;
    return;
  }
  c->last_ns = now;
  c->last_cpu = c->opts->no_cpu ? 0 : bench_cpu_ns (NULL);
  c->last_index = index;
}

static gboolean all_received_cb (gpointer data);

/* Sender: stamp the frame just before the sink, and count it. */
static GstPadProbeReturn
stamp_probe (GstPad * pad, GstPadProbeInfo * info, gpointer user_data)
{
  Child *c = user_data;
  GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER (info);
  GstMapInfo map;
  gint64 now;
  guint32 seq;

  g_mutex_lock (&c->lock);
  seq = (guint32) c->count;
  now = bench_now_ns ();
  if (gst_buffer_map (buf, &map, GST_MAP_WRITE)) {
    if (map.size >= BENCH_STAMP_SIZE) {
      guint32 magic = GUINT32_TO_LE (BENCH_STAMP_MAGIC);
      guint32 le_seq = GUINT32_TO_LE (seq);
      guint64 le_now = GUINT64_TO_LE ((guint64) now);

      memcpy (map.data, &magic, 4);
      memcpy (map.data + 4, &le_seq, 4);
      memcpy (map.data + 8, &le_now, 8);
    } else {
      c->unstamped++;
    }
    gst_buffer_unmap (buf, &map);
  } else {
    c->unstamped++;
  }
  measure_locked (c, now);
  g_mutex_unlock (&c->lock);
  return GST_PAD_PROBE_OK;
}

/* Receiver: read the stamp as the source pushes the frame. */
static GstPadProbeReturn
read_probe (GstPad * pad, GstPadProbeInfo * info, gpointer user_data)
{
  Child *c = user_data;
  GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER (info);
  guint8 stamp[BENCH_STAMP_SIZE];
  gint64 now = bench_now_ns ();
  gboolean done = FALSE;

  g_mutex_lock (&c->lock);
  if (gst_buffer_extract (buf, 0, stamp, sizeof stamp) == sizeof stamp) {
    guint32 magic, seq;
    guint64 sent;

    memcpy (&magic, stamp, 4);
    memcpy (&seq, stamp + 4, 4);
    memcpy (&sent, stamp + 8, 8);
    magic = GUINT32_FROM_LE (magic);
    seq = GUINT32_FROM_LE (seq);
    sent = GUINT64_FROM_LE (sent);
    measure_locked (c, now);
    if (magic == BENCH_STAMP_MAGIC) {
      if (c->have_start) {
        gint64 lat = now - (gint64) sent;
        g_array_append_val (c->latency, lat);
      }
      if (!c->have_seq || seq > c->max_seq)
        c->max_seq = seq;
      c->have_seq = TRUE;
    } else {
      c->unstamped++;
    }
  } else {
    measure_locked (c, now);
    c->unstamped++;
  }
  if (c->opts->frames > 0 && c->count == (guint64) c->opts->frames
      && !c->all_received) {
    c->all_received = TRUE;
    done = TRUE;
  }
  g_mutex_unlock (&c->lock);
  if (done)
    g_idle_add (all_received_cb, c);
  return GST_PAD_PROBE_OK;
}

/* Copy path: the producer gets no answer to its allocation query, so it
 * renders into a pool of its own and the sink copies every frame. */
static GstPadProbeReturn
drop_allocation_probe (GstPad * pad, GstPadProbeInfo * info, gpointer data)
{
  if (GST_QUERY_TYPE (GST_PAD_PROBE_INFO_QUERY (info)) == GST_QUERY_ALLOCATION)
    return GST_PAD_PROBE_DROP;
  return GST_PAD_PROBE_OK;
}

static gchar *
stats_string (GstElement * element)
{
  GstStructure *s = NULL;
  gchar *str;

  if (!element || !g_object_class_find_property (G_OBJECT_GET_CLASS
          (element), "stats"))
    return g_strdup ("");
  g_object_get (element, "stats", &s, NULL);
  if (!s)
    return g_strdup ("");
  str = gst_structure_to_string (s);
  gst_structure_free (s);
  return str;
}

static void
write_result (Child * c, const gchar * status, const gchar * message)
{
  const BenchChildOptions *o = c->opts;
  GKeyFile *kf = g_key_file_new ();
  g_autofree gchar *data = NULL;
  g_autoptr (GError) err = NULL;
  glong maxrss = 0;
  gsize len;

  bench_cpu_ns (&maxrss);
  g_mutex_lock (&c->lock);
  g_key_file_set_string (kf, "result", "role", o->role);
  g_key_file_set_string (kf, "result", "status", status);
  g_key_file_set_string (kf, "result", "message", message ? message : "");
  g_key_file_set_uint64 (kf, "result", "frames", c->count);
  if (c->have_start && c->last_index > c->start_index) {
    g_key_file_set_uint64 (kf, "result", "measured-frames",
        c->last_index - c->start_index);
    g_key_file_set_int64 (kf, "result", "measured-ns",
        c->last_ns - c->start_ns);
    g_key_file_set_int64 (kf, "result", "cpu-ns", c->last_cpu - c->start_cpu);
  }
  g_key_file_set_int64 (kf, "result", "maxrss-kb", maxrss);
  g_key_file_set_uint64 (kf, "result", "unstamped", c->unstamped);
  if (c->have_seq)
    g_key_file_set_uint64 (kf, "result", "missing",
        c->max_seq + 1 > c->count ? c->max_seq + 1 - c->count : 0);
  g_key_file_set_boolean (kf, "result", "eos", c->eos);
  /* (the streaming thread may still add to it) */
  if (c->latency->len) {
    GString *s = g_string_new (NULL);
    for (guint i = 0; i < c->latency->len; i++)
      g_string_append_printf (s, "%s%" G_GINT64_FORMAT, i ? ";" : "",
          g_array_index (c->latency, gint64, i));
    g_key_file_set_value (kf, "result", "latency-ns", s->str);
    g_string_free (s, TRUE);
  }
  g_mutex_unlock (&c->lock);

  if (c->timer) {
    GArray *d = bench_timer_copy_durations (c->timer);
    guint n = d->len;
    guint from = c->have_start ? (guint) c->start_index : n;
    GString *s = g_string_new (NULL);
    for (guint i = from; i < n; i++)
      g_string_append_printf (s, "%s%" G_GINT64_FORMAT, i > from ? ";" : "",
          g_array_index (d, gint64, i));
    g_key_file_set_value (kf, "result", "render-ns", s->str);
    g_key_file_set_uint64 (kf, "result", "rendered", n);
    g_string_free (s, TRUE);
    g_array_unref (d);
  }
  if (c->sink) {
    g_autofree gchar *st = stats_string (c->sink);
    g_key_file_set_string (kf, "result", "sink-stats", st);
  }
  if (c->src && g_str_equal (o->role, "recv")) {
    g_autofree gchar *st = stats_string (c->src);
    g_key_file_set_string (kf, "result", "src-stats", st);
  }
  g_key_file_set_string (kf, "result", "warnings", c->warnings->str);
  g_key_file_set_string (kf, "result", "plugin",
      c->plugin_file ? c->plugin_file : "");

  data = g_key_file_to_data (kf, &len, NULL);
  if (o->result && !g_file_set_contents (o->result, data, len, &err))
    g_printerr ("could not write %s: %s\n", o->result, err->message);
  else if (!o->result)
    g_print ("%s", data);
  g_key_file_free (kf);
}

static void
finish (Child * c, const gchar * status, const gchar * message)
{
  if (c->finished)
    return;
  c->finished = TRUE;
  write_result (c, status, message);
  if (g_str_equal (status, "hang")) {
    /* A pipeline that hangs may not stop either: leave now (the parent
     * removes what it leaves in /dev/shm). */
    _exit (0);
  }
  /* stop the pipeline, so that its elements clean up (the watchdog set
   * after the main loop bounds it) */
  g_main_loop_quit (c->loop);
}

static gboolean
eos_wait_done (gpointer data)
{
  Child *c = data;

  finish (c, "ok", NULL);
  return G_SOURCE_REMOVE;
}

static gboolean
all_received_cb (gpointer data)
{
  Child *c = data;

  /* Every frame is here: wait a little for EOS (which tells whether the
   * transport passes it), then finish either way. */
  g_timeout_add (c->opts->eos_wait_ms, eos_wait_done, c);
  return G_SOURCE_REMOVE;
}

static gboolean
check_stall (gpointer data)
{
  Child *c = data;
  const BenchChildOptions *o = c->opts;
  gint64 idle;
  guint64 count;
  gboolean all;

  g_mutex_lock (&c->lock);
  idle = bench_now_ns () - c->activity_ns;
  count = c->count;
  all = c->all_received;
  g_mutex_unlock (&c->lock);
  if (all)
    return G_SOURCE_CONTINUE;
  if (idle / 1000000 > (count ? o->stall_ms : o->first_ms)) {
    g_autofree gchar *msg = g_strdup_printf ("no frame for %.1f s after %"
        G_GUINT64_FORMAT " of %d frames", idle / 1e9, count, o->frames);
    finish (c, "hang", msg);
    return G_SOURCE_REMOVE;
  }
  return G_SOURCE_CONTINUE;
}

static gboolean
on_term (gpointer data)
{
  Child *c = data;

  finish (c, "terminated", NULL);
  return G_SOURCE_REMOVE;
}

static gboolean
on_bus (GstBus * bus, GstMessage * msg, gpointer data)
{
  Child *c = data;

  switch (GST_MESSAGE_TYPE (msg)) {
    case GST_MESSAGE_ERROR:{
      g_autoptr (GError) err = NULL;
      g_autofree gchar *dbg = NULL;
      g_autofree gchar *text = NULL;

      gboolean all;

      gst_message_parse_error (msg, &err, &dbg);
      text = g_strdup_printf ("%s: %s", GST_OBJECT_NAME (msg->src),
          err->message);
      g_mutex_lock (&c->lock);
      all = c->all_received;
      g_mutex_unlock (&c->lock);
      if (all) {
        /* every frame arrived, then the transport failed instead of
         * passing EOS: a note, not a failed run */
        g_string_append_printf (c->warnings, "%serror after the last frame "
            "(no EOS): %s", c->warnings->len ? "; " : "", text);
        finish (c, "ok", NULL);
        break;
      }
      finish (c, "error", text);
      break;
    }
    case GST_MESSAGE_WARNING:{
      g_autoptr (GError) err = NULL;
      g_autofree gchar *dbg = NULL;

      gst_message_parse_warning (msg, &err, &dbg);
      if (c->warnings->len < 1024)
        g_string_append_printf (c->warnings, "%s%s: %s",
            c->warnings->len ? "; " : "", GST_OBJECT_NAME (msg->src),
            err->message);
      break;
    }
    case GST_MESSAGE_EOS:
      c->eos = TRUE;
      finish (c, "ok", NULL);
      break;
    default:
      break;
  }
  return G_SOURCE_CONTINUE;
}

static gchar *
caps_string (const BenchChildOptions * o)
{
  return g_strdup_printf ("video/x-raw,format=%s,width=%d,height=%d,"
      "framerate=%s", o->format, o->width, o->height, o->live ? "60/1" : "0/1");
}

static gchar *
pipeline_description (const BenchChildOptions * o)
{
  g_autofree gchar *caps = caps_string (o);
  g_autofree gchar *sink = NULL;
  const gchar *keep = o->keep_last ? "true" : "false";
  gboolean bad = g_strcmp0 (o->transport, "bad") == 0;

  if (g_str_equal (o->role, "recv")) {
    if (bad)
      return g_strdup_printf ("shmsrc name=src socket-path=\"%s\" is-live=true "
          "do-timestamp=true ! %s ! fakesink name=sink sync=false "
          "enable-last-sample=%s", o->path, caps, keep);
    return g_strdup_printf ("shmsrc name=src path=\"%s\"%s%s is-live=%s%s ! "
        "fakesink name=sink sync=false enable-last-sample=%s", o->path,
        o->control ? " control=" : "", o->control ? o->control : "",
        o->live ? "true" : "false", o->no_spin ? " spin-time=0" : "", keep);
  }

  if (g_str_equal (o->role, "alone")) {
    if (o->ceiling)
      sink = g_strdup_printf ("benchpoolsink name=sink sync=false "
          "pool-buffers=%d", o->slots);
    else
      sink = g_strdup ("fakesink name=sink sync=false "
          "enable-last-sample=false");
  } else if (bad) {
    sink = g_strdup_printf ("shmsink name=sink socket-path=\"%s\" "
        "shm-size=%" G_GUINT64_FORMAT " wait-for-connection=true sync=false "
        "enable-last-sample=false", o->path, o->shm_size);
  } else {
    g_autofree gchar *size = o->area_size ?
        g_strdup_printf (" size=%" G_GUINT64_FORMAT, o->area_size) :
        g_strdup ("");

    sink = g_strdup_printf ("shmsink name=sink path=\"%s\"%s%s%s "
        "num-slots=%d sync=false%s", o->path, o->control ? " control=" : "",
        o->control ? o->control : "", size, o->slots,
        o->no_receiver ? " wait-for-receiver=false" : "");
  }
  return g_strdup_printf ("videotestsrc name=src pattern=solid-color "
      "num-buffers=%d is-live=%s ! %s ! benchtimer name=timer ! %s",
      o->frames, o->live ? "true" : "false", caps, sink);
}

/* Which file the shm elements come from; checks it is the one asked for:
 * ours from plugin_dir, gst-plugins-bad's from anywhere else. */
static gboolean
check_plugin (Child * c, gchar ** why)
{
  const BenchChildOptions *o = c->opts;
  GstElementFactory *f = gst_element_factory_find ("shmsink");
  GstPlugin *plugin;
  g_autofree gchar *dir = NULL, *real_dir = NULL, *real_want = NULL;
  gboolean ours;

  if (!f) {
    *why = g_strdup ("no shmsink element");
    return FALSE;
  }
  plugin = gst_plugin_feature_get_plugin (GST_PLUGIN_FEATURE (f));
  gst_object_unref (f);
  if (!plugin) {
    *why = g_strdup ("shmsink has no plugin");
    return FALSE;
  }
  c->plugin_file = g_strdup_printf ("%s (%s %s)",
      gst_plugin_get_filename (plugin), gst_plugin_get_source (plugin),
      gst_plugin_get_version (plugin));
  dir = g_path_get_dirname (gst_plugin_get_filename (plugin));
  gst_object_unref (plugin);
  real_dir = realpath (dir, NULL);
  real_want = o->plugin_dir ? realpath (o->plugin_dir, NULL) : NULL;
  ours = real_dir && real_want && g_str_equal (real_dir, real_want);
  if (g_strcmp0 (o->transport, "ours") == 0 && !ours) {
    *why = g_strdup_printf ("shmsink comes from %s, not from %s",
        c->plugin_file, o->plugin_dir ? o->plugin_dir : "(no --plugin-dir)");
    return FALSE;
  }
  if (g_strcmp0 (o->transport, "bad") == 0 && ours) {
    *why = g_strdup_printf ("shmsink comes from %s: gst-shm, not "
        "gst-plugins-bad", c->plugin_file);
    return FALSE;
  }
  return TRUE;
}

gint
bench_child_run (const BenchChildOptions * o)
{
  Child c = { 0, };
  g_autofree gchar *desc = NULL;
  g_autofree gchar *why = NULL;
  g_autoptr (GError) err = NULL;
  GstBus *bus;
  GstPad *pad;

  if (o->pid_file) {
    /* the parent signals this process, not the program it runs under
     * (strace, perf), and knows the name of its segments */
    g_autofree gchar *pid = g_strdup_printf ("%d\n", (int) getpid ());
    g_file_set_contents (o->pid_file, pid, -1, NULL);
  }

  c.opts = o;
  g_mutex_init (&c.lock);
  c.latency = g_array_new (FALSE, FALSE, sizeof (gint64));
  c.warnings = g_string_new (NULL);
  c.loop = g_main_loop_new (NULL, FALSE);
  bench_elements_register ();

  if (g_strcmp0 (o->transport, "none") != 0 && !check_plugin (&c, &why)) {
    finish (&c, "error", why);
    return 0;
  }
  if (g_str_equal (o->role, "inspect")) {
    finish (&c, "ok", NULL);
    return 0;
  }

  desc = pipeline_description (o);
  c.pipeline = gst_parse_launch (desc, &err);
  if (!c.pipeline || err) {
    g_autofree gchar *msg = g_strdup_printf ("could not build \"%s\": %s",
        desc, err ? err->message : "?");
    finish (&c, "error", msg);
    return 0;
  }
  c.sink = gst_bin_get_by_name (GST_BIN (c.pipeline), "sink");
  c.src = gst_bin_get_by_name (GST_BIN (c.pipeline), "src");
  c.timer = gst_bin_get_by_name (GST_BIN (c.pipeline), "timer");

  if (g_str_equal (o->role, "recv")) {
    pad = gst_element_get_static_pad (c.src, "src");
    gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_BUFFER, read_probe, &c, NULL);
  } else {
    pad = gst_element_get_static_pad (c.sink, "sink");
    gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_BUFFER, stamp_probe, &c, NULL);
  }
  gst_object_unref (pad);
  if (o->copy) {
    pad = gst_element_get_static_pad (c.src, "src");
    gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_QUERY_DOWNSTREAM,
        drop_allocation_probe, NULL, NULL);
    gst_object_unref (pad);
  }

  bus = gst_element_get_bus (c.pipeline);
  gst_bus_add_watch (bus, on_bus, &c);
  gst_object_unref (bus);
  g_unix_signal_add (SIGTERM, on_term, &c);
  g_unix_signal_add (SIGINT, on_term, &c);
  if (!g_str_equal (o->role, "send"))
    g_timeout_add (50, check_stall, &c);

  c.activity_ns = bench_now_ns ();
  gst_element_set_state (c.pipeline, GST_STATE_PLAYING);
  g_main_loop_run (c.loop);

  /* The result is written: a stop that hangs only costs the watchdog. */
  alarm (5);
  gst_element_set_state (c.pipeline, GST_STATE_NULL);
  return 0;
}

/* gst-shm-demo: a sender and a receiver on one shared area
 *
 * With no arguments: a live test picture goes through /dev/shm from a
 * shmsink pipeline to a shmsrc pipeline in this process; a progress line
 * shows frames, frames/s, GB/s, latency and whether the frames moved
 * without a copy; a PNG snapshot of a received frame is written every few
 * seconds; a window shows the frames when a display is available.  Ctrl-C
 * stops and prints a summary.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <gst/gst.h>
#include <gst/video/video.h>
#include <glib-unix.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static gchar *opt_role = "both";
static gchar *opt_path = "/dev/shm/gst-shm-demo";
static gchar *opt_control;
static gchar *opt_size = "1280x720";
static gchar *opt_format = "BGRx";
static gint opt_fps = 60;
static gchar *opt_source = "videotestsrc";
static gint opt_duration;
static gchar *opt_snapshot_dir = ".";
static gint opt_snapshot_every = 5;
static gboolean opt_no_window;
static gboolean opt_no_snapshots;

static GOptionEntry entries[] = {
  {"role", 'r', 0, G_OPTION_ARG_STRING, &opt_role,
      "both (default): sender and receiver in this process; sender: only "
        "the shmsink pipeline; receiver: only the shmsrc pipeline (e.g. in a "
        "guest, with --path on the ivshmem BAR)", "ROLE"},
  {"path", 'p', 0, G_OPTION_ARG_FILENAME, &opt_path,
      "Shared area: a /dev/shm file, or in a guest the ivshmem BAR "
        "(/sys/bus/pci/devices/0000:00:04.0/resource2_wc); default "
        "/dev/shm/gst-shm-demo", "PATH"},
  {"control", 'c', 0, G_OPTION_ARG_STRING, &opt_control,
      "Control address (unix:PATH, tcp:HOST:PORT, vsock:CID:PORT, or ring: "
        "inside the area, for a QEMU guest and its host); default: the unix "
        "socket PATH.sock, ring for a BAR", "ADDR"},
  {"size", 's', 0, G_OPTION_ARG_STRING, &opt_size,
      "Frame size WIDTHxHEIGHT (default 1280x720)", "WxH"},
  {"format", 'f', 0, G_OPTION_ARG_STRING, &opt_format,
      "Raw video format, e.g. BGRx (default), NV12, I420", "FORMAT"},
  {"fps", 0, 0, G_OPTION_ARG_INT, &opt_fps, "Frames per second (default 60)",
      "N"},
  {"source", 0, 0, G_OPTION_ARG_STRING, &opt_source,
        "videotestsrc (default) or ximagesrc (the X screen of $DISPLAY)",
      "SOURCE"},
  {"duration", 'd', 0, G_OPTION_ARG_INT, &opt_duration,
      "Stop after this many seconds (default: run until Ctrl-C)", "S"},
  {"snapshot-dir", 0, 0, G_OPTION_ARG_FILENAME, &opt_snapshot_dir,
        "Where received frames are saved as gst-shm-demo-N.png (default .)",
      "DIR"},
  {"snapshot-every", 0, 0, G_OPTION_ARG_INT, &opt_snapshot_every,
      "Seconds between snapshots (default 5)", "S"},
  {"no-snapshots", 0, 0, G_OPTION_ARG_NONE, &opt_no_snapshots,
      "Write no snapshots", NULL},
  {"no-window", 0, 0, G_OPTION_ARG_NONE, &opt_no_window,
      "Never open a window, even with a display", NULL},
  {NULL}
};

typedef struct
{
  GMainLoop *loop;
  GstElement *sender, *receiver;
  GstElement *sink, *src;
  gint width, height;
  guint64 frame_size;           /* bytes of one frame of --size/--format */
  gint64 start_us, last_us;
  guint64 last_frames, last_bytes;
  /* counted in the receiver's streaming thread */
  guint64 frames;               /* atomic */
  guint64 bytes;                /* atomic */
  gboolean want_snapshot;       /* atomic */
  GMutex lock;
  GstSample *snapshot;          /* lock */
  guint n_snapshots;
  gboolean tty;
  gboolean failed;
  gdouble latency_sum_ms;
  guint latency_n;
  gdouble latency_max_ms;
} Demo;

static Demo demo;

static gboolean
bus_cb (GstBus * bus, GstMessage * msg, gpointer data)
{
  const gchar *who = data;

  switch (GST_MESSAGE_TYPE (msg)) {
    case GST_MESSAGE_ERROR:{
      GError *err;
      gchar *dbg;
      gst_message_parse_error (msg, &err, &dbg);
      g_printerr ("\n%s: error: %s\n", who, err->message);
      if (dbg)
        g_printerr ("  (%s)\n", dbg);
      g_error_free (err);
      g_free (dbg);
      demo.failed = TRUE;
      g_main_loop_quit (demo.loop);
      break;
    }
    case GST_MESSAGE_EOS:
      g_main_loop_quit (demo.loop);
      break;
    case GST_MESSAGE_ELEMENT:{
      const GstStructure *s = gst_message_get_structure (msg);
      if (s && gst_structure_has_name (s, "shm-peer")) {
        const gchar *reason = gst_structure_get_string (s, "reason");
        g_print ("%s%s: peer %s %s%s%s\n", demo.tty ? "\n" : "", who,
            gst_structure_get_string (s, "peer"),
            gst_structure_get_string (s, "event"), reason ? ": " : "",
            reason ? reason : "");
      }
      break;
    }
    default:
      break;
  }
  return TRUE;
}

static GstPadProbeReturn
count_probe (GstPad * pad, GstPadProbeInfo * info, gpointer data)
{
  GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER (info);

  __atomic_fetch_add (&demo.frames, 1, __ATOMIC_RELAXED);
  __atomic_fetch_add (&demo.bytes, gst_buffer_get_size (buf), __ATOMIC_RELAXED);
  if (g_atomic_int_compare_and_exchange (&demo.want_snapshot, TRUE, FALSE)) {
    /* a private copy: the slot goes back to the sender at once */
    GstCaps *caps = gst_pad_get_current_caps (pad);
    GstBuffer *copy = gst_buffer_copy_deep (buf);
    g_mutex_lock (&demo.lock);
    if (demo.snapshot)
      gst_sample_unref (demo.snapshot);
    demo.snapshot = gst_sample_new (copy, caps, NULL, NULL);
    g_mutex_unlock (&demo.lock);
    gst_buffer_unref (copy);
    gst_caps_unref (caps);
  }
  return GST_PAD_PROBE_OK;
}

static void
write_snapshot (void)
{
  GstSample *sample, *png;
  GstCaps *caps;
  GError *err = NULL;
  GstMapInfo map;
  gchar *name, *path;

  g_mutex_lock (&demo.lock);
  sample = g_steal_pointer (&demo.snapshot);
  g_mutex_unlock (&demo.lock);
  if (!sample)
    return;
  caps = gst_caps_new_simple ("image/png", NULL, NULL);
  png = gst_video_convert_sample (sample, caps, GST_SECOND, &err);
  gst_caps_unref (caps);
  gst_sample_unref (sample);
  if (!png) {
    g_printerr ("\nsnapshot: %s\n", err ? err->message : "conversion failed");
    g_clear_error (&err);
    return;
  }
  name = g_strdup_printf ("gst-shm-demo-%u.png", demo.n_snapshots++);
  path = g_build_filename (opt_snapshot_dir, name, NULL);
  if (gst_buffer_map (gst_sample_get_buffer (png), &map, GST_MAP_READ)) {
    if (!g_file_set_contents (path, (const gchar *) map.data, map.size, &err)) {
      g_printerr ("\nsnapshot: %s\n", err->message);
      g_clear_error (&err);
    }
    gst_buffer_unmap (gst_sample_get_buffer (png), &map);
  }
  gst_sample_unref (png);
  g_free (name);
  g_free (path);
}

static guint64
stat_u64 (GstElement * e, const gchar * field)
{
  GstStructure *s = NULL;
  guint64 v = 0;

  if (!e)
    return 0;
  g_object_get (e, "stats", &s, NULL);
  if (s) {
    gst_structure_get_uint64 (s, field, &v);
    gst_structure_free (s);
  }
  return v;
}

static const gchar *
zero_copy_text (gchar * buf, gsize len)
{
  guint64 sink_copied = stat_u64 (demo.sink, "frames-copied");
  guint64 sink_sent = stat_u64 (demo.sink, "frames-sent");
  guint64 src_copied = stat_u64 (demo.src, "frames-copied");
  guint64 src_pushed = stat_u64 (demo.src, "frames-pushed");
  guint64 src_inline = stat_u64 (demo.src, "frames-inline");

  if (src_inline > 0)
    return "no: frames come inline over the connection";
  if (sink_copied == 0 && src_copied == 0)
    return "yes";
  /* a guest's BAR is not cached: shmsrc copies each frame out once */
  if (sink_copied == 0 && src_copied == src_pushed
      && (g_str_has_prefix (opt_path, "/sys/")
          || g_str_has_prefix (opt_path, "ivshmem:")))
    return "in the area, copied out of the BAR once (read-mode=auto)";
  g_snprintf (buf, len, "partly (%" G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT
      " copied in, %" G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT " out)",
      sink_copied, sink_sent, src_copied, src_pushed);
  return buf;
}

static gboolean
tick (gpointer data)
{
  gint64 now = g_get_monotonic_time ();
  guint64 frames, bytes;
  gdouble dt = (now - demo.last_us) / 1e6;
  gdouble fps, gbps, lat_ms = -1;
  gchar zbuf[128];
  GstStructure *s = NULL;

  if (demo.src) {
    frames = __atomic_load_n (&demo.frames, __ATOMIC_RELAXED);
    bytes = __atomic_load_n (&demo.bytes, __ATOMIC_RELAXED);
    g_object_get (demo.src, "stats", &s, NULL);
    if (s) {
      gint64 l;
      if (gst_structure_get_int64 (s, "last-latency", &l) && l > 0) {
        lat_ms = l / 1e6;
        demo.latency_sum_ms += lat_ms;
        demo.latency_n++;
        demo.latency_max_ms = MAX (demo.latency_max_ms, lat_ms);
      }
      gst_structure_free (s);
    }
  } else {
    frames = stat_u64 (demo.sink, "frames-sent");
    bytes = frames * demo.frame_size;
  }
  fps = (frames - demo.last_frames) / dt;
  gbps = (bytes - demo.last_bytes) / dt / 1e9;
  demo.last_frames = frames;
  demo.last_bytes = bytes;
  demo.last_us = now;

  if (lat_ms >= 0)
    g_print ("%sframes %" G_GUINT64_FORMAT "  %.1f fps  %.2f GB/s  latency "
        "%.2f ms  zero-copy %s%s", demo.tty ? "\r" : "", frames, fps, gbps,
        lat_ms, zero_copy_text (zbuf, sizeof zbuf), demo.tty ? "   " : "\n");
  else
    g_print ("%sframes %" G_GUINT64_FORMAT "  %.1f fps  %.2f GB/s  "
        "zero-copy %s%s", demo.tty ? "\r" : "", frames, fps, gbps,
        zero_copy_text (zbuf, sizeof zbuf), demo.tty ? "   " : "\n");
  fflush (stdout);

  write_snapshot ();
  if (opt_duration > 0 && now - demo.start_us >= opt_duration * G_USEC_PER_SEC)
    g_main_loop_quit (demo.loop);
  return G_SOURCE_CONTINUE;
}

static gboolean
request_snapshot (gpointer data)
{
  g_atomic_int_set (&demo.want_snapshot, TRUE);
  return G_SOURCE_CONTINUE;
}

static gboolean
on_sigint (gpointer data)
{
  g_main_loop_quit (demo.loop);
  return G_SOURCE_REMOVE;
}

static GstElement *
launch (const gchar * desc, const gchar * who)
{
  GError *err = NULL;
  GstElement *p = gst_parse_launch (desc, &err);

  if (!p) {
    g_printerr ("%s: %s\n", who, err->message);
    g_error_free (err);
    return NULL;
  }
  gst_bus_add_watch (GST_ELEMENT_BUS (p), bus_cb, (gpointer) who);
  return p;
}

static gboolean
have_display (void)
{
  return g_getenv ("DISPLAY") || g_getenv ("WAYLAND_DISPLAY");
}

int
main (int argc, char **argv)
{
  GOptionContext *ctx = g_option_context_new ("- stream video through "
      "shared memory with gst-shm");
  GError *err = NULL;
  gboolean send, recv;
  gchar *sender_desc = NULL, *receiver_desc = NULL, *control = NULL;
  gdouble secs;

  g_option_context_set_summary (ctx, "Runs a shmsink pipeline and a shmsrc "
      "pipeline on one shared area and shows how fast frames cross.\n"
      "Run with no options for the demo on this host.  To a QEMU guest "
      "(docs/ivshmem.md): on the host\n"
      "  gst-shm-demo --role sender --path /dev/shm/ivshmem --control ring\n"
      "and in the guest, as root\n"
      "  gst-shm-demo --role receiver "
      "--path /sys/bus/pci/devices/0000:00:04.0/resource2_wc");
  g_option_context_add_main_entries (ctx, entries, NULL);
  g_option_context_add_group (ctx, gst_init_get_option_group ());
  if (!g_option_context_parse (ctx, &argc, &argv, &err)) {
    g_printerr ("%s (see --help)\n", err->message);
    return 2;
  }
  g_option_context_free (ctx);

  send = g_str_equal (opt_role, "both") || g_str_equal (opt_role, "sender");
  recv = g_str_equal (opt_role, "both") || g_str_equal (opt_role, "receiver");
  if (!send && !recv) {
    g_printerr ("--role must be both, sender or receiver\n");
    return 2;
  }
  if (sscanf (opt_size, "%dx%d", &demo.width, &demo.height) != 2
      || demo.width < 16 || demo.height < 16) {
    g_printerr ("--size must be WIDTHxHEIGHT, e.g. 1920x1080\n");
    return 2;
  }
  {
    GstVideoInfo info;
    GstVideoFormat fmt = gst_video_format_from_string (opt_format);
    if (fmt == GST_VIDEO_FORMAT_UNKNOWN
        || !gst_video_info_set_format (&info, fmt, demo.width, demo.height)) {
      g_printerr ("unknown --format %s\n", opt_format);
      return 2;
    }
    demo.frame_size = GST_VIDEO_INFO_SIZE (&info);
  }
  if (opt_fps < 1 || opt_fps > 1000) {
    g_printerr ("--fps must be 1..1000\n");
    return 2;
  }
  if (!g_str_equal (opt_source, "videotestsrc")
      && !g_str_equal (opt_source, "ximagesrc")) {
    g_printerr ("--source must be videotestsrc or ximagesrc\n");
    return 2;
  }
  if (g_str_equal (opt_source, "ximagesrc") && !g_getenv ("DISPLAY")) {
    g_printerr ("--source ximagesrc needs an X display ($DISPLAY)\n");
    return 2;
  }
  if (opt_control)
    control = g_strdup_printf (" control=%s", opt_control);
  else
    control = g_strdup ("");

  demo.loop = g_main_loop_new (NULL, FALSE);
  demo.tty = isatty (STDOUT_FILENO);
  g_mutex_init (&demo.lock);

  if (send) {
    gchar *caps = g_strdup_printf ("video/x-raw,format=%s,width=%d,height=%d,"
        "framerate=%d/1", opt_format, demo.width, demo.height, opt_fps);
    if (g_str_equal (opt_source, "ximagesrc"))
      sender_desc = g_strdup_printf ("ximagesrc use-damage=false ! "
          "videoconvert ! videoscale ! videorate ! %s ! shmsink name=sink "
          "path=\"%s\"%s", caps, opt_path, control);
    else
      sender_desc =
          g_strdup_printf
          ("videotestsrc is-live=true pattern=smpte horizontal-speed=4 "
          "! %s ! shmsink name=sink path=\"%s\"%s", caps, opt_path, control);
    g_free (caps);
    demo.sender = launch (sender_desc, "sender");
    if (!demo.sender)
      return 1;
    demo.sink = gst_bin_get_by_name (GST_BIN (demo.sender), "sink");
  }
  if (recv) {
    const gchar *out = (!opt_no_window && have_display ())
        ? "queue max-size-buffers=2 leaky=downstream ! videoconvert ! "
        "autovideosink sync=false" : "fakesink sync=false";
    GstPad *pad;
    receiver_desc = g_strdup_printf ("shmsrc name=src path=\"%s\"%s ! %s",
        opt_path, control, out);
    demo.receiver = launch (receiver_desc, "receiver");
    if (!demo.receiver)
      return 1;
    demo.src = gst_bin_get_by_name (GST_BIN (demo.receiver), "src");
    pad = gst_element_get_static_pad (demo.src, "src");
    gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_BUFFER, count_probe, NULL, NULL);
    gst_object_unref (pad);
  }

  g_print ("gst-shm-demo: %s %dx%d %s at %d fps through %s\n",
      send && recv ? "sender and receiver," : send ? "sender," : "receiver,",
      demo.width, demo.height, opt_format, opt_fps, opt_path);
  if (sender_desc)
    g_print ("  sender:   %s\n", sender_desc);
  if (receiver_desc)
    g_print ("  receiver: %s\n", receiver_desc);
  g_print ("Ctrl-C stops.\n");

  if (demo.receiver)
    gst_element_set_state (demo.receiver, GST_STATE_PLAYING);
  if (demo.sender)
    gst_element_set_state (demo.sender, GST_STATE_PLAYING);

  demo.start_us = demo.last_us = g_get_monotonic_time ();
  g_timeout_add_seconds (1, tick, NULL);
  if (recv && !opt_no_snapshots && opt_snapshot_every > 0)
    g_timeout_add_seconds (opt_snapshot_every, request_snapshot, NULL);
  g_unix_signal_add (SIGINT, on_sigint, NULL);
  g_unix_signal_add (SIGTERM, on_sigint, NULL);
  g_main_loop_run (demo.loop);

  secs = (g_get_monotonic_time () - demo.start_us) / 1e6;
  if (demo.receiver) {
    guint64 frames = __atomic_load_n (&demo.frames, __ATOMIC_RELAXED);
    guint64 bytes = __atomic_load_n (&demo.bytes, __ATOMIC_RELAXED);
    gchar zbuf[128];
    g_print ("\nsummary: %" G_GUINT64_FORMAT " frames received in %.1f s: "
        "%.1f fps, %.2f GB/s", frames, secs, frames / secs, bytes / secs / 1e9);
    if (demo.latency_n)
      g_print (", latency %.2f ms average, %.2f ms max", demo.latency_sum_ms
          / demo.latency_n, demo.latency_max_ms);
    g_print (", zero-copy %s, %u snapshot%s\n", zero_copy_text (zbuf,
            sizeof zbuf), demo.n_snapshots, demo.n_snapshots == 1 ? "" : "s");
  } else {
    guint64 frames = stat_u64 (demo.sink, "frames-sent");
    g_print ("\nsummary: %" G_GUINT64_FORMAT " frames sent in %.1f s: %.1f "
        "fps, %" G_GUINT64_FORMAT " dropped\n", frames, secs, frames / secs,
        stat_u64 (demo.sink, "frames-dropped"));
  }

  if (demo.receiver) {
    gst_element_set_state (demo.receiver, GST_STATE_NULL);
    gst_object_unref (demo.src);
    gst_object_unref (demo.receiver);
  }
  if (demo.sender) {
    gst_element_set_state (demo.sender, GST_STATE_NULL);
    gst_object_unref (demo.sink);
    gst_object_unref (demo.sender);
  }
  if (demo.snapshot)
    gst_sample_unref (demo.snapshot);
  g_free (sender_desc);
  g_free (receiver_desc);
  g_free (control);
  g_main_loop_unref (demo.loop);
  return demo.failed ? 1 : 0;
}

/* gst-shm tests: one side of a two-process test
 *
 *   shm-peer send --path P [--frames N] [--live] [--copy] ...
 *   shm-peer recv --path P --expect N [--expect-caps CAPS] [--hold K] ...
 *   shm-peer recv --path P --sessions [--progress N] ...
 *
 * The sender stamps every frame (tests/tools/stamp.h); the receiver checks
 * every frame's stamp and checksum, the frame sequence, the caps, the
 * timestamps, and whether the pixels it reads lie inside its mapping of the
 * area (zero-copy).  Each prints one result line and exits 0 only when
 * everything held.
 *
 * With --sessions a receiver outlives its senders: a frame whose counter
 * starts again (a new sender, marked DISCONT) begins a new session instead
 * of counting as a gap, and the receiver prints a SESSION line for each;
 * --progress N prints what it checked every N frames, for a receiver that
 * may be killed before its result line.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <gst/gst.h>
#include <gst/app/gstappsink.h>
#include <glib-unix.h>
#include <gst/video/video.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>

#include "stamp.h"

static gchar *opt_path;
static gchar *opt_control;
static gint opt_frames = 30;
static gchar *opt_format = "BGRx";
static gint opt_width = 320;
static gint opt_height = 240;
static gint opt_fps = 30;
static gboolean opt_live;
static gboolean opt_copy;
static gint opt_num_slots = 0;
static gint opt_timeout_s = 60;
static gboolean opt_no_wait;
static gchar *opt_pattern = "ball";
static gint opt_expect = -1;
static gchar *opt_expect_caps;
static gint opt_hold;
static gboolean opt_meta;
static gboolean opt_require_zero_copy;
static gboolean opt_not_live;
static gint opt_queue;
static gint opt_sleep_ms;
static gchar *opt_src_props;
static gchar *opt_sink_props;
static gboolean opt_allow_late_start;
static gint opt_exit_after;
static gchar *opt_ts;
static gboolean opt_convert;
static gint opt_switch_at;
static gchar *opt_switch_caps;
static gchar *opt_encode;
static gchar *opt_caps;
static gboolean opt_allow_gaps;
static gboolean opt_free;
static gboolean opt_sessions;
static gint opt_progress;
static gboolean opt_eos_on_sigint;
static gboolean opt_handle_term;
static gboolean opt_check_damage;

static GOptionEntry entries[] = {
  {"path", 0, 0, G_OPTION_ARG_STRING, &opt_path, "Area path", "PATH"},
  {"control", 0, 0, G_OPTION_ARG_STRING, &opt_control, "Control address",
      "ADDR"},
  {"frames", 0, 0, G_OPTION_ARG_INT, &opt_frames, "Frames to send", "N"},
  {"format", 0, 0, G_OPTION_ARG_STRING, &opt_format, "Video format", "F"},
  {"width", 0, 0, G_OPTION_ARG_INT, &opt_width, "Width", "W"},
  {"height", 0, 0, G_OPTION_ARG_INT, &opt_height, "Height", "H"},
  {"fps", 0, 0, G_OPTION_ARG_INT, &opt_fps, "Frame rate", "N"},
  {"live", 0, 0, G_OPTION_ARG_NONE, &opt_live, "Live sender (sync)", NULL},
  {"copy", 0, 0, G_OPTION_ARG_NONE, &opt_copy,
      "Sender: keep upstream off the pool (copy path)", NULL},
  {"num-slots", 0, 0, G_OPTION_ARG_INT, &opt_num_slots, "Slots", "N"},
  {"timeout", 0, 0, G_OPTION_ARG_INT, &opt_timeout_s, "Watchdog", "S"},
  {"no-wait", 0, 0, G_OPTION_ARG_NONE, &opt_no_wait,
      "Sender: wait-for-receiver=false", NULL},
  {"pattern", 0, 0, G_OPTION_ARG_STRING, &opt_pattern, "Pattern", "P"},
  {"expect", 0, 0, G_OPTION_ARG_INT, &opt_expect, "Receiver: frames", "N"},
  {"expect-caps", 0, 0, G_OPTION_ARG_STRING, &opt_expect_caps,
      "Receiver: caps it must get", "CAPS"},
  {"hold", 0, 0, G_OPTION_ARG_INT, &opt_hold,
      "Receiver: keep the last K buffers", "K"},
  {"meta", 0, 0, G_OPTION_ARG_NONE, &opt_meta,
      "Receiver: announce GstVideoMeta support downstream", NULL},
  {"require-zero-copy", 0, 0, G_OPTION_ARG_NONE, &opt_require_zero_copy,
      "Receiver: every frame must be read inside the area", NULL},
  {"not-live", 0, 0, G_OPTION_ARG_NONE, &opt_not_live,
      "Receiver: is-live=false (timestamps unchanged)", NULL},
  {"queue", 0, 0, G_OPTION_ARG_INT, &opt_queue,
      "Receiver: a queue of N buffers before the sink", "N"},
  {"sleep-ms", 0, 0, G_OPTION_ARG_INT, &opt_sleep_ms,
      "Receiver: time spent on each frame", "MS"},
  {"src-props", 0, 0, G_OPTION_ARG_STRING, &opt_src_props,
      "Receiver: extra shmsrc properties", "PROPS"},
  {"sink-props", 0, 0, G_OPTION_ARG_STRING, &opt_sink_props,
      "Sender: extra shmsink properties", "PROPS"},
  {"late", 0, 0, G_OPTION_ARG_NONE, &opt_allow_late_start,
      "Receiver: may join after the first frame", NULL},
  {"exit-after", 0, 0, G_OPTION_ARG_INT, &opt_exit_after,
      "Receiver: leave after N frames (no EOS expected)", "N"},
  {"convert", 0, 0, G_OPTION_ARG_NONE, &opt_convert,
      "Sender: videoconvert ! videoscale before shmsink (it produces what "
        "the receivers accept)", NULL},
  {"switch-at", 0, 0, G_OPTION_ARG_INT, &opt_switch_at,
      "Change the caps (--switch-caps) at this frame", "N"},
  {"switch-caps", 0, 0, G_OPTION_ARG_STRING, &opt_switch_caps,
        "Sender: the source's new caps; receiver: the capsfilter's new caps",
      "CAPS"},
  {"encode", 0, 0, G_OPTION_ARG_STRING, &opt_encode,
      "Sender: an encoder before shmsink (non-raw caps); frames are then "
        "checked by the checksums both sides print", "ELEMENT"},
  {"caps", 0, 0, G_OPTION_ARG_STRING, &opt_caps,
        "Receiver: a capsfilter before the sink (what downstream accepts)",
      "CAPS"},
  {"free", 0, 0, G_OPTION_ARG_NONE, &opt_free,
      "Sender: only the frame rate is fixed; the source produces what the "
        "receivers prefer", NULL},
  {"allow-gaps", 0, 0, G_OPTION_ARG_NONE, &opt_allow_gaps,
        "Receiver: missed frames are allowed (they must be marked DISCONT)",
      NULL},
  {"sessions", 0, 0, G_OPTION_ARG_NONE, &opt_sessions,
      "Receiver: frames from several senders in turn; a counter that "
        "starts again (DISCONT, from 0) begins a new session", NULL},
  {"progress", 0, 0, G_OPTION_ARG_INT, &opt_progress,
      "Receiver: print the counts every N frames", "N"},
  {"eos-on-sigint", 0, 0, G_OPTION_ARG_NONE, &opt_eos_on_sigint,
      "Sender: SIGINT sends EOS down the pipeline and waits for it (as "
        "gst-launch-1.0 -e)", NULL},
  {"check-damage", 0, 0, G_OPTION_ARG_NONE, &opt_check_damage,
      "Receiver: every frame carries damage metas, and no pixel outside "
        "them differs from the frame before", NULL},
  {"handle-term", 0, 0, G_OPTION_ARG_NONE, &opt_handle_term,
      "SIGTERM stops as SIGINT does (by default it kills)", NULL},
  {"ts", 0, 0, G_OPTION_ARG_STRING, &opt_ts,
        "Receiver: timestamp check: exact (default with --not-live), "
        "intervals (live sender and receiver), none (default otherwise)",
      "MODE"},
  {NULL}
};

static GMainLoop *loop;
static GstElement *the_pipeline;
static gboolean got_eos, interrupted;
/* shm-peer messages seen: connected, left, lost, stalled */
static guint n_peer_connected, n_peer_left, n_peer_lost, n_peer_stalled;
static gchar *error_message;

/* --- receiver state (streaming thread, then main after EOS) ------------- */
static GMutex lock;
static guint n_frames, n_bad, n_gaps, n_in_area, n_ts_bad, n_discont;
static guint n_caps, n_unmarked_gaps;
static GstCaps *last_caps;
static GstElement *switch_target;
static gint64 first_frame = -1, last_frame = -1;
static guint n_sessions;
static gboolean caps_ok = TRUE, caps_seen;
static GstClockTime first_pts = GST_CLOCK_TIME_NONE;
static guint64 first_stamp_pts;
static GQueue held = G_QUEUE_INIT;
/* --check-damage: the frame before, plane by plane (visible bytes) */
static GstVideoInfo prev_info;
static GByteArray *prev_planes[GST_VIDEO_MAX_PLANES];
static guint n_damage_frames, n_damage_rects, n_damage_missing;
static guint n_damage_outside, n_damage_nothing;
static void check_damage (GstBuffer * buf, const GstVideoFrame * frame);
static GArray *area_ranges;     /* pairs of guint64: start, end */

static void
check_plugin (void)
{
  const gchar *dir = g_getenv ("GST_SHM_PLUGIN_DIR");
  GstElementFactory *f = gst_element_factory_find ("shmsink");
  GstPlugin *plugin;
  const gchar *file;

  if (!f) {
    g_printerr ("FATAL: no shmsink element\n");
    exit (3);
  }
  plugin = gst_plugin_feature_get_plugin (GST_PLUGIN_FEATURE (f));
  file = plugin ? gst_plugin_get_filename (plugin) : NULL;
  if (dir && (!file || !g_str_has_prefix (file, dir))) {
    g_printerr ("FATAL: shmsink comes from %s, not from %s\n",
        file ? file : "(static)", dir);
    exit (3);
  }
  g_print ("PLUGIN %s\n", file ? file : "(static)");
  if (plugin)
    gst_object_unref (plugin);
  gst_object_unref (f);
}

static gboolean
bus_cb (GstBus * bus, GstMessage * msg, gpointer data)
{
  switch (GST_MESSAGE_TYPE (msg)) {
    case GST_MESSAGE_EOS:
      got_eos = TRUE;
      g_main_loop_quit (loop);
      break;
    case GST_MESSAGE_ERROR:{
      GError *err;
      gchar *dbg;
      gst_message_parse_error (msg, &err, &dbg);
      g_printerr ("ERROR from %s: %s\n", GST_OBJECT_NAME (msg->src),
          err->message);
      if (!error_message)
        error_message = g_strdup (err->message);
      g_error_free (err);
      g_free (dbg);
      g_main_loop_quit (loop);
      break;
    }
    case GST_MESSAGE_WARNING:{
      GError *err;
      gst_message_parse_warning (msg, &err, NULL);
      g_print ("WARNING from %s: %s\n", GST_OBJECT_NAME (msg->src),
          err->message);
      g_error_free (err);
      break;
    }
    case GST_MESSAGE_ELEMENT:{
      const GstStructure *s = gst_message_get_structure (msg);
      if (s && gst_structure_has_name (s, "shm-peer")) {
        gchar *str = gst_structure_to_string (s);
        const gchar *ev = gst_structure_get_string (s, "event");
        g_print ("PEER %s\n", str);
        g_free (str);
        if (!g_strcmp0 (ev, "connected"))
          n_peer_connected++;
        else if (!g_strcmp0 (ev, "left"))
          n_peer_left++;
        else if (!g_strcmp0 (ev, "lost"))
          n_peer_lost++;
        else if (!g_strcmp0 (ev, "stalled"))
          n_peer_stalled++;
      }
      break;
    }
    default:
      break;
  }
  return TRUE;
}

static gboolean
on_sigint (gpointer data)
{
  if (opt_eos_on_sigint && the_pipeline && !interrupted) {
    /* as gst-launch-1.0 -e: the stream ends, then the pipeline stops */
    g_print ("INTERRUPTED: sending EOS\n");
    interrupted = TRUE;
    gst_element_send_event (the_pipeline, gst_event_new_eos ());
    return G_SOURCE_CONTINUE;
  }
  g_print ("INTERRUPTED\n");
  interrupted = TRUE;
  g_main_loop_quit (loop);
  return G_SOURCE_REMOVE;
}

static gboolean
watchdog (gpointer data)
{
  g_printerr ("ERROR: watchdog: no end after %d s\n", opt_timeout_s);
  if (!error_message)
    error_message = g_strdup ("watchdog");
  g_main_loop_quit (loop);
  return G_SOURCE_REMOVE;
}

/* --- sender ------------------------------------------------------------- */

static guint64
buffer_checksum (GstBuffer * buf)
{
  GstMapInfo map;
  guint64 h = G_GUINT64_CONSTANT (0xcbf29ce484222325);

  if (gst_buffer_map (buf, &map, GST_MAP_READ)) {
    h = stamp_hash_bytes (h, map.data, map.size);
    gst_buffer_unmap (buf, &map);
  }
  return h;
}

/* On shmsink's sink pad: every frame as it goes into shared memory.  Raw
 * video is stamped in place (on the pool path, the slot itself); other
 * data is checksummed and listed. */
static GstPadProbeReturn
stamp_probe (GstPad * pad, GstPadProbeInfo * info, gpointer data)
{
  static guint32 counter;
  GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER (info);
  GstVideoInfo vinfo;
  GstVideoFrame frame;
  GstCaps *caps = gst_pad_get_current_caps (pad);
  gboolean video = caps && gst_video_info_from_caps (&vinfo, caps)
      && GST_VIDEO_INFO_FORMAT (&vinfo) != GST_VIDEO_FORMAT_ENCODED;

  if (caps)
    gst_caps_unref (caps);
  if (opt_switch_at && counter == (guint32) opt_switch_at && switch_target) {
    GstCaps *c = gst_caps_from_string (opt_switch_caps);
    g_print ("SWITCH at %u to %s\n", counter, opt_switch_caps);
    g_object_set (switch_target, "caps", c, NULL);
    gst_caps_unref (c);
  }
  if (!video) {
    g_print ("SENT %u %" G_GSIZE_FORMAT " %016" G_GINT64_MODIFIER "x\n",
        counter++, gst_buffer_get_size (buf), buffer_checksum (buf));
    return GST_PAD_PROBE_OK;
  }
  if (!gst_buffer_is_writable (buf)) {
    buf = gst_buffer_make_writable (buf);
    GST_PAD_PROBE_INFO_DATA (info) = buf;
  }
  if (!gst_video_frame_map (&frame, &vinfo, buf, GST_MAP_READWRITE))
    return GST_PAD_PROBE_OK;
  stamp_write (&frame, counter++, g_get_monotonic_time () * 1000,
      GST_BUFFER_PTS (buf));
  gst_video_frame_unmap (&frame);
  return GST_PAD_PROBE_OK;
}

static GstPadProbeReturn
no_pool_probe (GstPad * pad, GstPadProbeInfo * info, gpointer data)
{
  GstQuery *q = GST_PAD_PROBE_INFO_QUERY (info);

  if (GST_QUERY_TYPE (q) == GST_QUERY_ALLOCATION)
    return GST_PAD_PROBE_DROP;
  return GST_PAD_PROBE_OK;
}

static gchar *
video_caps (void)
{
  if (opt_free)
    return g_strdup_printf ("video/x-raw,framerate=%d/1", opt_fps);
  return g_strdup_printf ("video/x-raw,format=%s,width=%d,height=%d,"
      "framerate=%d/1", opt_format, opt_width, opt_height, opt_fps);
}

static int
run_sender (void)
{
  g_autofree gchar *caps = video_caps ();
  g_autofree gchar *desc = NULL;
  g_autoptr (GError) err = NULL;
  GstElement *pipeline, *src, *sink;
  GstPad *pad;
  GstStructure *stats = NULL;
  gchar *stats_str;
  int ret;

  {
    GString *d = g_string_new (NULL);
    g_string_append_printf (d, "videotestsrc name=src num-buffers=%d "
        "pattern=%s is-live=%d ! capsfilter name=cf caps=\"%s\" ! ",
        opt_frames, opt_pattern, opt_live, caps);
    if (opt_convert)
      g_string_append (d, "videoconvert ! videoscale ! ");
    if (opt_encode)
      g_string_append_printf (d, "%s ! ", opt_encode);
    g_string_append_printf (d, "shmsink name=sink path=%s sync=%d",
        opt_path, opt_live);
    if (opt_control)
      g_string_append_printf (d, " control=%s", opt_control);
    if (opt_num_slots)
      g_string_append_printf (d, " num-slots=%d", opt_num_slots);
    if (opt_no_wait)
      g_string_append (d, " wait-for-receiver=false");
    if (opt_sink_props)
      g_string_append_printf (d, " %s", opt_sink_props);
    desc = g_string_free (d, FALSE);
  }
  pipeline = gst_parse_launch (desc, &err);
  if (!pipeline) {
    g_printerr ("ERROR: %s\n", err->message);
    return 2;
  }
  src = gst_bin_get_by_name (GST_BIN (pipeline), "src");
  sink = gst_bin_get_by_name (GST_BIN (pipeline), "sink");
  switch_target = gst_bin_get_by_name (GST_BIN (pipeline), "cf");
  pad = gst_element_get_static_pad (sink, "sink");
  gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_BUFFER, stamp_probe, NULL, NULL);
  gst_object_unref (pad);
  if (opt_copy) {
    pad = gst_element_get_static_pad (src, "src");
    gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_QUERY_DOWNSTREAM,
        no_pool_probe, NULL, NULL);
    gst_object_unref (pad);
  }

  gst_bus_add_watch (GST_ELEMENT_BUS (pipeline), bus_cb, NULL);
  the_pipeline = pipeline;
  gst_element_set_state (pipeline, GST_STATE_PLAYING);
  g_print ("STARTED\n");
  g_timeout_add_seconds (opt_timeout_s, watchdog, NULL);
  g_main_loop_run (loop);
  the_pipeline = NULL;

  g_object_get (sink, "stats", &stats, NULL);
  stats_str = gst_structure_to_string (stats);
  {
    GstPad *sinkpad = gst_element_get_static_pad (sink, "sink");
    GstCaps *c = gst_pad_get_current_caps (sinkpad);
    gchar *cs = c ? gst_caps_to_string (c) : g_strdup ("none");
    g_print ("CAPS %s\n", cs);
    g_free (cs);
    if (c)
      gst_caps_unref (c);
    gst_object_unref (sinkpad);
  }
  gst_element_set_state (pipeline, GST_STATE_NULL);
  g_print ("SENDER eos=%d error=%s peers=%u/%u/%u/%u stats=%s\n", got_eos,
      error_message ? "yes" : "no", n_peer_connected, n_peer_left,
      n_peer_lost, n_peer_stalled, stats_str);
  /* a sender stopped by SIGINT stopped cleanly */
  ret = (got_eos || interrupted) && !error_message ? 0 : 1;
  g_free (stats_str);
  gst_structure_free (stats);
  gst_object_unref (src);
  gst_object_unref (sink);
  gst_clear_object (&switch_target);
  gst_object_unref (pipeline);
  return ret;
}

/* --- receiver ------------------------------------------------------------ */

/* A sysfs BAR path goes through symbolic links: the mapping is listed
 * under the real path. */
static gchar *area_real;

static gboolean
mapping_is (const gchar * p, const gchar * path)
{
  gsize n = strlen (path);

  return strncmp (p, path, n) == 0 && (p[n] == '\0'
      || g_str_equal (p + n, " (deleted)"));
}

static void
read_area_ranges (void)
{
  gchar *maps = NULL;
  gchar **lines;

  if (!area_real)
    area_real = realpath (opt_path, NULL);
  g_array_set_size (area_ranges, 0);
  if (!g_file_get_contents ("/proc/self/maps", &maps, NULL, NULL))
    return;
  lines = g_strsplit (maps, "\n", -1);
  for (gchar ** l = lines; *l; l++) {
    const gchar *p = strchr (*l, '/');
    guint64 start, end;
    if (!p)
      continue;
    if (!mapping_is (p, opt_path) && !(area_real && mapping_is (p, area_real)))
      continue;
    if (sscanf (*l, "%" G_GINT64_MODIFIER "x-%" G_GINT64_MODIFIER "x",
            &start, &end) == 2) {
      g_array_append_val (area_ranges, start);
      g_array_append_val (area_ranges, end);
    }
  }
  g_strfreev (lines);
  g_free (maps);
}

static gboolean
in_area (const void *ptr)
{
  guint64 p = (guint64) (guintptr) ptr;

  for (int pass = 0; pass < 2; pass++) {
    for (guint i = 0; i + 1 < area_ranges->len; i += 2)
      if (p >= g_array_index (area_ranges, guint64, i)
          && p < g_array_index (area_ranges, guint64, i + 1))
        return TRUE;
    read_area_ranges ();
  }
  return FALSE;
}

static GstFlowReturn
new_sample (GstAppSink * appsink, gpointer data)
{
  GstSample *sample = gst_app_sink_pull_sample (appsink);
  GstBuffer *buf = gst_sample_get_buffer (sample);
  GstCaps *caps = gst_sample_get_caps (sample);
  GstVideoInfo vinfo;
  GstVideoFrame frame;
  Stamp st;
  guint64 sum;

  g_mutex_lock (&lock);
  if (!last_caps || !gst_caps_is_equal (last_caps, caps)) {
    gchar *cs = gst_caps_to_string (caps);
    g_print ("CAPS %s\n", cs);
    g_free (cs);
    gst_caps_replace (&last_caps, caps);
    n_caps++;
  }
  if (!caps_seen) {
    caps_seen = TRUE;
    if (opt_expect_caps) {
      GstCaps *want = gst_caps_from_string (opt_expect_caps);
      caps_ok = want && gst_caps_is_equal (want, caps);
      if (!caps_ok) {
        gchar *cs = gst_caps_to_string (caps);
        g_printerr ("caps differ: got %s\n", cs);
        g_free (cs);
      }
      if (want)
        gst_caps_unref (want);
    }
  }
  if (GST_BUFFER_FLAG_IS_SET (buf, GST_BUFFER_FLAG_DISCONT))
    n_discont++;
  if (opt_switch_at && n_frames == (guint) opt_switch_at && switch_target) {
    GstCaps *c = gst_caps_from_string (opt_switch_caps);
    g_print ("SWITCH at %u to %s\n", n_frames, opt_switch_caps);
    g_object_set (switch_target, "caps", c, NULL);
    gst_caps_unref (c);
  }
  if (!gst_video_info_from_caps (&vinfo, caps)
      || GST_VIDEO_INFO_FORMAT (&vinfo) == GST_VIDEO_FORMAT_ENCODED) {
    /* non-raw: the bytes, and where they are (a private copy) */
    GstMapInfo map;
    if (gst_buffer_map (buf, &map, GST_MAP_READ)) {
      if (in_area (map.data))
        n_in_area++;
      g_print ("GOT %u %" G_GSIZE_FORMAT " %016" G_GINT64_MODIFIER "x\n",
          n_frames, map.size, stamp_hash_bytes (G_GUINT64_CONSTANT
              (0xcbf29ce484222325), map.data, map.size));
      gst_buffer_unmap (buf, &map);
    }
    goto done;
  }
  if (!gst_video_frame_map (&frame, &vinfo, buf, GST_MAP_READ)) {
    n_bad++;
    goto done;
  }
  if (in_area (GST_VIDEO_FRAME_PLANE_DATA (&frame, 0)))
    n_in_area++;
  if (opt_check_damage)
    check_damage (buf, &frame);
  if (!stamp_read (&frame, &st, &sum)) {
    if (n_bad++ < 5)
      g_printerr ("frame %u: bad stamp (magic %08x, checksum %016"
          G_GINT64_MODIFIER "x, computed %016" G_GINT64_MODIFIER "x)\n",
          n_frames, st.magic, st.checksum, sum);
  } else {
    gboolean new_session = first_frame < 0;

    /* a new sender: its counter starts again, after a discontinuity */
    if (opt_sessions && first_frame >= 0 && (gint64) st.frame <= last_frame
        && GST_BUFFER_FLAG_IS_SET (buf, GST_BUFFER_FLAG_DISCONT))
      new_session = TRUE;
    if (new_session) {
      if (opt_sessions) {
        g_print ("SESSION %u first=%u after=%" G_GINT64_FORMAT
            " frames=%u\n", n_sessions + 1, st.frame, last_frame, n_frames);
        /* a sender's frames go to a receiver that is there from its
         * first frame; a receiver that joins late (--late) may start
         * anywhere in its first session */
        if (st.frame != 0 && (n_sessions > 0 || !opt_allow_late_start)
            && !opt_allow_gaps) {
          if (n_gaps++ < 5)
            g_printerr ("session %u starts at frame %u\n", n_sessions + 1,
                st.frame);
        }
      }
      n_sessions++;
      if (first_frame < 0)
        first_frame = st.frame;
      first_pts = GST_BUFFER_PTS (buf);
      first_stamp_pts = st.pts;
    } else if ((gint64) st.frame != last_frame + 1) {
      if (n_gaps++ < 5 && !opt_allow_gaps)
        g_printerr ("frame %u after %" G_GINT64_FORMAT "\n", st.frame,
            last_frame);
      if (!GST_BUFFER_FLAG_IS_SET (buf, GST_BUFFER_FLAG_DISCONT))
        n_unmarked_gaps++;
    }
    last_frame = st.frame;
    /* exact: PTS unchanged; intervals: the differences kept exactly */
    if ((g_str_equal (opt_ts, "exact") && GST_BUFFER_PTS (buf) != st.pts)
        || (g_str_equal (opt_ts, "intervals")
            && (GST_BUFFER_PTS (buf) - first_pts) !=
            (st.pts - first_stamp_pts))) {
      if (n_ts_bad++ < 5)
        g_printerr ("frame %u: pts %" GST_TIME_FORMAT " stamp pts %"
            GST_TIME_FORMAT "\n", st.frame,
            GST_TIME_ARGS (GST_BUFFER_PTS (buf)), GST_TIME_ARGS (st.pts));
    }
  }
  gst_video_frame_unmap (&frame);
done:
  n_frames++;
  if (opt_progress > 0 && n_frames % opt_progress == 0)
    g_print ("PROGRESS frames=%u bad=%u gaps=%u unmarked_gaps=%u "
        "sessions=%u last=%" G_GINT64_FORMAT "\n", n_frames, n_bad, n_gaps,
        n_unmarked_gaps, n_sessions, last_frame);
  if (opt_hold > 0) {
    g_queue_push_tail (&held, gst_buffer_ref (buf));
    while (g_queue_get_length (&held) > (guint) opt_hold)
      gst_buffer_unref (g_queue_pop_head (&held));
  }
  if (opt_exit_after && n_frames == (guint) opt_exit_after)
    g_main_loop_quit (loop);
  g_mutex_unlock (&lock);
  gst_sample_unref (sample);
  if (opt_sleep_ms)
    g_usleep (opt_sleep_ms * 1000);
  return GST_FLOW_OK;
}

/* Whether luma pixel (@x, @y) lies in one of @rects. */
static gboolean
in_rects (const GArray * rects, guint x, guint y)
{
  for (guint i = 0; i < rects->len; i++) {
    const GstVideoRegionOfInterestMeta *r =
        g_array_index (rects, GstVideoRegionOfInterestMeta *, i);
    if (x >= r->x && x < r->x + r->w && y >= r->y && y < r->y + r->h)
      return TRUE;
  }
  return FALSE;
}

/* --check-damage: the frame's damage metas cover every pixel that differs
 * from the frame before (of the same caps); then it becomes that frame. */
static void
check_damage (GstBuffer * buf, const GstVideoFrame * frame)
{
  GArray *rects = g_array_new (FALSE, FALSE, sizeof (gpointer));
  gpointer state = NULL;
  GstMeta *m;
  const GstVideoFormatInfo *finfo = frame->info.finfo;
  gboolean same = prev_planes[0]
      && gst_video_info_is_equal (&prev_info, &frame->info);

  while ((m = gst_buffer_iterate_meta_filtered (buf, &state,
              GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE))) {
    GstVideoRegionOfInterestMeta *r = (GstVideoRegionOfInterestMeta *) m;
    if (r->roi_type == g_quark_from_string ("damage"))
      g_array_append_val (rects, r);
  }
  n_damage_frames++;
  n_damage_rects += rects->len;
  if (rects->len == 0 && n_damage_missing++ < 5)
    g_printerr ("frame %u: no damage meta\n", n_frames);
  if (rects->len == 1
      && g_array_index (rects, GstVideoRegionOfInterestMeta *, 0)->w == 0)
    n_damage_nothing++;
  for (guint p = 0; p < GST_VIDEO_FRAME_N_PLANES (frame); p++) {
    gint comp[GST_VIDEO_MAX_COMPONENTS];
    const guint8 *base = GST_VIDEO_FRAME_PLANE_DATA (frame, p);
    gsize stride = GST_VIDEO_FRAME_PLANE_STRIDE (frame, p);
    gsize row = stamp_row_bytes (frame, p);
    guint rows = stamp_rows (frame, p), ps, ws, hs;

    gst_video_format_info_component (finfo, p, comp);
    ps = GST_VIDEO_FORMAT_INFO_PSTRIDE (finfo, comp[0]);
    ws = GST_VIDEO_FORMAT_INFO_W_SUB (finfo, comp[0]);
    hs = GST_VIDEO_FORMAT_INFO_H_SUB (finfo, comp[0]);
    for (guint y = 0; same && rows && y < rows; y++) {
      const guint8 *now = base + y * stride;
      const guint8 *was = prev_planes[p]->data + y * row;
      for (gsize x = 0; ps && x + ps <= row; x += ps) {
        if (memcmp (now + x, was + x, ps) != 0
            && !in_rects (rects, (x / ps) << ws, y << hs)) {
          if (n_damage_outside++ < 5)
            g_printerr ("frame %u: plane %u pixel %" G_GSIZE_FORMAT ",%u "
                "changed outside the damage\n", n_frames, p, x / ps, y);
          break;
        }
      }
    }
    if (!prev_planes[p])
      prev_planes[p] = g_byte_array_new ();
    g_byte_array_set_size (prev_planes[p], row * rows);
    for (guint y = 0; y < rows; y++)
      memcpy (prev_planes[p]->data + y * row, base + y * stride, row);
  }
  prev_info = frame->info;
  g_array_unref (rects);
}

static GstPadProbeReturn
meta_probe (GstPad * pad, GstPadProbeInfo * info, gpointer data)
{
  GstQuery *q = GST_PAD_PROBE_INFO_QUERY (info);

  if (GST_QUERY_TYPE (q) == GST_QUERY_ALLOCATION) {
    gst_query_add_allocation_meta (q, GST_VIDEO_META_API_TYPE, NULL);
    return GST_PAD_PROBE_HANDLED;
  }
  return GST_PAD_PROBE_OK;
}

static int
run_receiver (void)
{
  g_autofree gchar *desc = NULL;
  g_autoptr (GError) err = NULL;
  GstElement *pipeline, *src, *sink;
  GstAppSinkCallbacks cb = { NULL, NULL, new_sample };
  GstStructure *stats = NULL;
  gchar *stats_str;
  gboolean ok;
  GstPad *pad;

  area_ranges = g_array_new (FALSE, FALSE, sizeof (guint64));
  {
    GString *d = g_string_new (NULL);
    g_string_append_printf (d, "shmsrc name=src path=%s is-live=%d",
        opt_path, !opt_not_live);
    if (opt_control)
      g_string_append_printf (d, " control=%s", opt_control);
    if (opt_src_props)
      g_string_append_printf (d, " %s", opt_src_props);
    if (opt_queue)
      g_string_append_printf (d, " ! queue max-size-buffers=%d "
          "max-size-bytes=0 max-size-time=0", opt_queue);
    if (opt_caps)
      g_string_append_printf (d, " ! capsfilter name=rcf caps=\"%s\"",
          opt_caps);
    g_string_append (d, " ! appsink name=sink sync=false max-buffers=0");
    desc = g_string_free (d, FALSE);
  }
  pipeline = gst_parse_launch (desc, &err);
  if (!pipeline) {
    g_printerr ("ERROR: %s\n", err->message);
    return 2;
  }
  src = gst_bin_get_by_name (GST_BIN (pipeline), "src");
  sink = gst_bin_get_by_name (GST_BIN (pipeline), "sink");
  switch_target = gst_bin_get_by_name (GST_BIN (pipeline), "rcf");
  gst_app_sink_set_callbacks (GST_APP_SINK (sink), &cb, NULL, NULL);
  if (opt_meta) {
    pad = gst_element_get_static_pad (sink, "sink");
    gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_QUERY_DOWNSTREAM, meta_probe,
        NULL, NULL);
    gst_object_unref (pad);
  }

  gst_bus_add_watch (GST_ELEMENT_BUS (pipeline), bus_cb, NULL);
  gst_element_set_state (pipeline, GST_STATE_PLAYING);
  /* the base time is set: a sender started now is in this one's future */
  g_print ("STARTED\n");
  g_timeout_add_seconds (opt_timeout_s, watchdog, NULL);
  g_main_loop_run (loop);

  g_object_get (src, "stats", &stats, NULL);
  stats_str = gst_structure_to_string (stats);
  gst_element_set_state (pipeline, GST_STATE_NULL);
  g_mutex_lock (&lock);
  while (!g_queue_is_empty (&held))
    gst_buffer_unref (g_queue_pop_head (&held));

  if (opt_check_damage)
    g_print ("DAMAGE frames=%u rects=%u nothing=%u missing=%u outside=%u\n",
        n_damage_frames, n_damage_rects, n_damage_nothing, n_damage_missing,
        n_damage_outside);
  ok = !error_message && n_bad == 0
      && (!opt_check_damage || (n_damage_missing == 0
          && n_damage_outside == 0)) && (opt_allow_gaps || n_gaps == 0)
      && n_unmarked_gaps == 0 && n_ts_bad == 0
      && caps_ok && (opt_exit_after ? n_frames >= (guint) opt_exit_after
      : got_eos)
      && (opt_expect < 0 || n_frames == (guint) opt_expect)
      && (opt_allow_late_start || opt_allow_gaps || first_frame <= 0)
      && (!opt_require_zero_copy || n_in_area == n_frames);
  g_print ("RECEIVER frames=%u first=%" G_GINT64_FORMAT " last=%"
      G_GINT64_FORMAT " bad=%u gaps=%u ts_bad=%u in_area=%u caps_ok=%d "
      "eos=%d caps_changes=%u discont=%u unmarked_gaps=%u error=%s "
      "sessions=%u peers=%u/%u/%u/%u stats=%s\n", n_frames, first_frame,
      last_frame, n_bad, n_gaps, n_ts_bad, n_in_area, caps_ok, got_eos,
      n_caps, n_discont, n_unmarked_gaps,
      error_message ? error_message : "no", n_sessions, n_peer_connected,
      n_peer_left, n_peer_lost, n_peer_stalled, stats_str);
  g_mutex_unlock (&lock);
  g_free (stats_str);
  gst_structure_free (stats);
  gst_object_unref (src);
  gst_object_unref (sink);
  gst_clear_object (&switch_target);
  gst_clear_caps (&last_caps);
  gst_object_unref (pipeline);
  g_array_unref (area_ranges);
  return ok ? 0 : 1;
}

int
main (int argc, char **argv)
{
  g_autoptr (GOptionContext) ctx = g_option_context_new ("send|recv");
  g_autoptr (GError) err = NULL;
  int ret;

  g_option_context_add_main_entries (ctx, entries, NULL);
  g_option_context_add_group (ctx, gst_init_get_option_group ());
  if (!g_option_context_parse (ctx, &argc, &argv, &err) || argc != 2
      || !opt_path) {
    g_printerr ("usage: shm-peer send|recv --path PATH [options] (%s)\n",
        err ? err->message : "see --help");
    return 2;
  }
  if (!opt_ts)
    opt_ts = opt_not_live ? "exact" : "none";
  check_plugin ();
  loop = g_main_loop_new (NULL, FALSE);
  /* stopped by SIGINT: shut the pipeline down cleanly */
  g_unix_signal_add (SIGINT, on_sigint, NULL);
  if (opt_handle_term)
    g_unix_signal_add (SIGTERM, on_sigint, NULL);
  if (g_str_equal (argv[1], "send"))
    ret = run_sender ();
  else if (g_str_equal (argv[1], "recv"))
    ret = run_receiver ();
  else
    ret = 2;
  g_main_loop_unref (loop);
  g_free (error_message);
  gst_deinit ();
  return ret;
}

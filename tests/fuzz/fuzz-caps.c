/* gst-shm: a fuzz target for the caps a peer sends
 *
 * A hello's and an accept's caps (what a receiver accepts) and the caps of
 * a stream (mmap-time "ready" and "caps" messages) are text from the peer:
 * gst_shm_negotiator_parse() bounds them before anything uses them.  This
 * target feeds it arbitrary text, both ways (as accepted caps and as a
 * stream's), and checks what it accepts: within the limits, and for a
 * stream fixed, in system memory, and (raw video) a frame GStreamer can
 * lay out.
 *
 * Built with clang's -fsanitize=fuzzer it is a libFuzzer target (meson
 * option fuzzing=true).  Otherwise its main() runs the files it is given,
 * or, with --random N, N inputs made by mutating valid caps.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "gstshmnegotiator.h"

#include <gst/video/video.h>
#include <stdint.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput (const uint8_t * data, size_t size);

static guint n_accepted, n_streams;
static const gchar *current;    /* the input, for the messages */

static void
check_caps (GstCaps * caps, gboolean stream)
{
  guint n = gst_caps_get_size (caps);

  g_assert_cmpuint (n, <=, GST_SHM_CAPS_MAX_STRUCTURES);
  for (guint i = 0; i < n; i++)
    g_assert_cmpint (gst_structure_n_fields (gst_caps_get_structure (caps,
                i)), <=, GST_SHM_CAPS_MAX_FIELDS);
  if (stream) {
    GstCapsFeatures *f = gst_caps_get_features (caps, 0);
    GstVideoInfo info;

    g_assert_true (gst_caps_is_fixed (caps));
    g_assert_true (!f || gst_caps_features_is_equal (f,
            GST_CAPS_FEATURES_MEMORY_SYSTEM_MEMORY));
    if (gst_structure_has_name (gst_caps_get_structure (caps, 0),
            "video/x-raw")) {
      g_assert_true (gst_video_info_from_caps (&info, caps));
      g_assert_cmpuint (GST_VIDEO_INFO_SIZE (&info), >, 0);
    }
    n_streams++;
  }
  n_accepted++;
}


static void
quiet (const gchar * domain, GLogLevelFlags level, const gchar * message,
    gpointer data)
{
}

/* A critical warning: says which input caused it, then fails. */
static void
critical (const gchar * domain, GLogLevelFlags level, const gchar * message,
    gpointer data)
{
  g_printerr ("%s: %s\ninput: \"%s\"\n", domain, message, current);
  g_error ("a critical warning from the caps a peer sent");
}

int
LLVMFuzzerTestOneInput (const uint8_t * data, size_t size)
{
  static gboolean inited;
  g_autofree gchar *str = NULL;

  if (!inited) {
    gst_init (NULL, NULL);
    /* a critical warning is a failure (a peer must not be able to cause
     * one); GStreamer's warnings about bad text are not */
    g_log_set_handler ("GStreamer", G_LOG_LEVEL_WARNING, quiet, NULL);
    g_log_set_handler ("GStreamer", G_LOG_LEVEL_CRITICAL, critical, NULL);
    g_log_set_handler ("GStreamer-Video", G_LOG_LEVEL_CRITICAL, critical, NULL);
    g_log_set_handler (NULL, G_LOG_LEVEL_CRITICAL, critical, NULL);
    inited = TRUE;
  }
  /* (text: up to the first NUL, as the message's string is) */
  str = g_strndup ((const gchar *) data, size);
  current = str;
  for (gint stream = 0; stream < 2; stream++) {
    g_autoptr (GError) err = NULL;
    GstCaps *caps = gst_shm_negotiator_parse (str, stream, &err);

    if (caps) {
      check_caps (caps, stream);
      gst_caps_unref (caps);
    } else {
      g_assert_nonnull (err);
      g_assert_nonnull (err->message);
    }
  }
  return 0;
}

#ifndef SHM_LIBFUZZER

/* An input that takes seconds is a failure too (a peer could stall the
 * thread that reads its caps): the watchdog names it. */
static void
too_slow (int sig)
{
  static const char msg[] = "an input took more than 5 s: ";
  (void) sig;
  if (write (2, msg, sizeof msg - 1) < 0 || write (2, current,
          strlen (current)) < 0 || write (2, "\n", 1) < 0)
    _exit (3);
  _exit (2);
}

static const gchar *seeds[] = {
  "video/x-raw, format=(string)BGRx, width=(int)1920, height=(int)1080, "
      "framerate=(fraction)60/1, pixel-aspect-ratio=(fraction)1/1",
  "video/x-raw, format=(string)NV12, width=(int)320, height=(int)240, "
      "framerate=(fraction)30/1, interlace-mode=(string)progressive",
  "video/x-raw, format=(string)RGB8P, width=(int)64, height=(int)16",
  "video/x-raw, format=(string)NV12_4L4, width=(int)64, height=(int)48",
  "video/x-raw, format=(string){ BGRx, NV12, I420 }, "
      "width=(int)[ 1, 4096 ], height=(int)[ 1, 4096 ]",
  "video/x-raw(memory:DMABuf), format=(string)NV12, width=(int)64, "
      "height=(int)48",
  "image/jpeg, width=(int)640, height=(int)480; video/x-vp8",
  "video/x-raw, format=(string)v210, width=(int)1281, height=(int)3, "
      "colorimetry=(string)bt709, chroma-site=(string)mpeg2",
};

static const gchar specials[] = ",;=(){}[]<>\"\\ :/-+.0123456789abcxyzINF";

/* One mutation of @s: a byte replaced, inserted or removed, a piece
 * repeated, or the end cut. */
static void
mutate (GString * s, GRand * r)
{
  guint len = s->len;
  guint at = len ? g_rand_int_range (r, 0, len) : 0;
  gchar c = g_rand_boolean (r) ? specials[g_rand_int_range (r, 0,
          sizeof specials - 1)] : (gchar) g_rand_int_range (r, 1, 256);

  switch (g_rand_int_range (r, 0, 6)) {
    case 0:
      if (len)
        s->str[at] = c;
      break;
    case 1:
      g_string_insert_c (s, at, c);
      break;
    case 2:
      if (len)
        g_string_erase (s, at, 1);
      break;
    case 3:{
      guint n = g_rand_int_range (r, 1, 32);
      g_autofree gchar *piece = g_strndup (s->str + at, n);
      guint times = g_rand_int_range (r, 1, 200);
      for (guint i = 0; i < times; i++)
        g_string_insert (s, at, piece);
      break;
    }
    case 4:
      g_string_truncate (s, at);
      break;
    default:
      /* a number changed: sizes and fractions at their limits */
      g_string_insert (s, at, g_rand_boolean (r) ? "2147483647"
          : "-2147483648");
      break;
  }
}

int
main (int argc, char **argv)
{
  if (argc == 3 && g_str_equal (argv[1], "--random")) {
    guint n = atoi (argv[2]);
    GRand *r = g_rand_new_with_seed (0x5eed);

    signal (SIGALRM, too_slow);

    for (guint i = 0; i < n; i++) {
      GString *s = g_string_new (seeds[i % G_N_ELEMENTS (seeds)]);
      guint k = g_rand_int_range (r, 1, 6);
      for (guint j = 0; j < k; j++)
        mutate (s, r);
      alarm (5);
      LLVMFuzzerTestOneInput ((const uint8_t *) s->str, s->len);
      alarm (0);
      g_string_free (s, TRUE);
    }
    g_rand_free (r);
    g_print ("%u inputs: %u accepted, %u as a stream's caps\n", n,
        n_accepted, n_streams);
    return 0;
  }
  if (argc == 3 && g_str_equal (argv[1], "--write-corpus")) {
    for (guint i = 0; i < G_N_ELEMENTS (seeds); i++) {
      g_autofree gchar *p = g_strdup_printf ("%s/seed-%u", argv[2], i);
      g_assert_true (g_file_set_contents (p, seeds[i], -1, NULL));
    }
    return 0;
  }
  for (gint i = 1; i < argc; i++) {
    g_autofree gchar *data = NULL;
    gsize len;
    g_assert_true (g_file_get_contents (argv[i], &data, &len, NULL));
    LLVMFuzzerTestOneInput ((const uint8_t *) data, len);
  }
  g_print ("%d files: %u accepted, %u as a stream's caps\n", argc - 1,
      n_accepted, n_streams);
  return 0;
}

#endif

/* gst-shm: the caps negotiation unit, both ways
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <gst/check/gstcheck.h>
#include "check-main.h"
#include <gst/video/video.h>
#include <string.h>

#include "gstshmnegotiator.h"
#include "shmproto.h"

/* caps -> hello -> bytes on the wire -> hello -> caps */
static GstCaps *
through_the_wire (GstCaps * caps, gboolean stream, GError ** error)
{
  GVariantDict d;
  GBytes *msg;
  GVariant *body;
  const guint8 *payload;
  gsize consumed, plen, len;
  guint32 type;
  GstCaps *out;
  const guint8 *data;

  g_variant_dict_init (&d, NULL);
  gst_shm_negotiator_write (&d, caps);
  msg = shm_msg_encode (SHM_MSG_HELLO, g_variant_dict_end (&d));
  data = g_bytes_get_data (msg, &len);
  fail_unless_equals_int (shm_msg_parse (data, len, 0, &consumed, &type,
          &body, &payload, &plen, NULL), SHM_PARSE_OK);
  out = gst_shm_negotiator_read (body, stream, error);
  g_variant_unref (body);
  g_bytes_unref (msg);
  return out;
}

GST_START_TEST (test_every_raw_format)
{
  guint n = 0;
  const GstVideoFormat *formats = gst_video_formats_raw (&n);

  fail_unless (n > 90, "only %u raw formats", n);
  for (guint i = 0; i < n; i++) {
    GstVideoInfo info;
    GstCaps *caps, *back;
    GError *err = NULL;

    gst_video_info_init (&info);
    fail_unless (gst_video_info_set_format (&info, formats[i], 128, 96),
        "%s", gst_video_format_to_string (formats[i]));
    GST_VIDEO_INFO_FPS_N (&info) = 30;
    caps = gst_video_info_to_caps (&info);
    back = through_the_wire (caps, TRUE, &err);
    fail_unless (back != NULL, "%s: %s",
        gst_video_format_to_string (formats[i]), err ? err->message : "");
    fail_unless (gst_caps_is_equal (caps, back), "%" GST_PTR_FORMAT " != %"
        GST_PTR_FORMAT, caps, back);
    gst_caps_unref (caps);
    gst_caps_unref (back);
  }
  /* and all of them at once, as a receiver's accepted caps */
  {
    GstCaps *all = gst_caps_from_string ("video/x-raw,format=(string){ "
        GST_VIDEO_FORMATS_ALL " },width=[1,32767],height=[1,32767],"
        "framerate=[0/1,2147483647/1]");
    GstCaps *back = through_the_wire (all, FALSE, NULL);
    fail_unless (back && gst_caps_is_equal (all, back));
    gst_caps_unref (all);
    gst_caps_unref (back);
  }
}

GST_END_TEST;

GST_START_TEST (test_non_raw)
{
  const gchar *cases[] = {
    "image/jpeg, width=(int)640, height=(int)480, framerate=(fraction)30/1, "
        "sof-marker=(int)0",
    "video/x-h264, stream-format=(string)avc, alignment=(string)au, "
        "codec_data=(buffer)0164001fffe1001a6764001facd9405005bb016a02020280"
        "00000300800000", "video/x-vp8, width=(int)320, height=(int)240",
    "application/x-rtp, media=(string)video, clock-rate=(int)90000, "
        "encoding-name=(string)H264",
    "video/x-raw(memory:DMABuf), format=(string)NV12, width=(int)64, "
        "height=(int)64, framerate=(fraction)30/1",
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    GstCaps *caps = gst_caps_from_string (cases[i]);
    /* (DMABuf caps cross as accepted caps, never as a stream's) */
    GstCaps *back = through_the_wire (caps, !strstr (cases[i], "DMABuf"),
        NULL);
    fail_unless (caps != NULL, "%s", cases[i]);
    fail_unless (back != NULL && gst_caps_is_equal (caps, back), "%s",
        cases[i]);
    gst_caps_unref (caps);
    gst_caps_unref (back);
  }
  /* ANY and EMPTY cross as accepted caps */
  {
    GstCaps *any = gst_caps_new_any (), *back;
    back = through_the_wire (any, FALSE, NULL);
    fail_unless (gst_caps_is_any (back));
    gst_caps_unref (back);
    gst_caps_unref (any);
  }
}

GST_END_TEST;

GST_START_TEST (test_bounds)
{
  GError *err = NULL;
  GString *s;
  GstCaps *caps;

  /* too long */
  s = g_string_new ("video/x-raw, format=BGRx, width=64, height=64, x=\"");
  while (s->len <= GST_SHM_CAPS_MAX_BYTES)
    g_string_append (s, "xxxxxxxxxxxxxxxx");
  g_string_append (s, "\"");
  fail_if (gst_shm_negotiator_parse (s->str, FALSE, &err));
  fail_unless (strstr (err->message, "exceed the limit of 65536"), "%s",
      err->message);
  g_clear_error (&err);
  g_string_free (s, TRUE);

  /* too many structures */
  s = g_string_new ("");
  for (guint i = 0; i < 65; i++)
    g_string_append_printf (s, "%svideo/x-raw, width=%u", i ? "; " : "", i + 1);
  fail_if (gst_shm_negotiator_parse (s->str, FALSE, &err));
  fail_unless (strstr (err->message, "65 structures, the limit is 64"));
  g_clear_error (&err);
  g_string_free (s, TRUE);

  /* too many fields */
  s = g_string_new ("video/x-raw");
  for (guint i = 0; i < 65; i++)
    g_string_append_printf (s, ", f%u=(int)%u", i, i);
  fail_if (gst_shm_negotiator_parse (s->str, FALSE, &err));
  fail_unless (strstr (err->message, "has 65 fields, the limit is 64"));
  g_clear_error (&err);
  g_string_free (s, TRUE);

  /* what fuzz-caps found GStreamer's parser to assert or stall on: each
   * refused first, with its reason; valid neighbours still pass */
  {
    struct
    {
      const gchar *caps;
      gboolean stream;
      const gchar *text;
    } cases[] = {
      {"video/x-raw; 3abc", FALSE, "structure name that does not start "
            "with a letter"},
      {"1video", FALSE, "structure name that does not start with a letter"},
      {"video/x-raw, w=(int)[ 5, 5 ]", FALSE, "invalid range [ 5, 5 ]"},
      {"video/x-raw, w=(int)[ 2, 9, 3 ]", FALSE, "invalid range"},
      {"video/x-raw, w=(int)[ 1, 4094096096 ]", FALSE, "invalid range"},
      {"video/x-raw, f=(fraction)[ 1/2, 1/3 ]", FALSE, "invalid range"},
      {"video/x-raw, f=(double)[ 2.0, 1.0 ]", FALSE, "invalid range"},
      {"video/x-raw, f=(fraction)-2147483648/1", FALSE, "beyond 2147483647"},
      {"video/x-raw, f=(fraction)1/2147483648", FALSE, "beyond 2147483647"},
      {"image/jpeg, width=[ine/jpeg, width=[ine/jpeg, width=[int)640", FALSE,
          "brackets that do not match"},
      {"video/x-raw, a=<<<<<<<<<1>>>>>>>>>", FALSE, "nest more than 8 deep"},
      {"video/x-raw, format=(string){ BGRx, NULL }", FALSE,
          "unknown video format \"NULL\""},
      {"video/x-raw, format=(buffer)NV06", FALSE, "type \"buffer\" that is "
            "not accepted from a peer, or not valid"},
      {"video/x-raw, c=(GstCaps)\"video/x-raw\"", FALSE, "type \"GstCaps\""},
      {"video/x-raw, format=BGRx, width=64, height=0", TRUE,
          "do not describe a frame"},
    };
    const gchar *good[] = {
      "video/x-raw, format=(string){ BGRx, NV12 }, width=(int)[ 1, 4096 ], "
          "height=(int)[ 1, 4096, 1 ], framerate=(fraction)[ 0/1, "
          "2147483647/1 ]",
      "video/x-raw, format=BGRx, width=64, height=48, s=\"[ 5, 5 ; 3x\"",
      "video/x-raw, colorimetry=bt709, f=-5, d=1.5",
      "video/x-vp8, streamheader=(buffer)< 4f5650, 0001 >, width=(int)64",
    };

    for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
      fail_if (gst_shm_negotiator_parse (cases[i].caps, cases[i].stream,
              &err), "%s", cases[i].caps);
      fail_unless (strstr (err->message, cases[i].text), "%s: %s",
          cases[i].caps, err->message);
      g_clear_error (&err);
    }
    for (guint i = 0; i < G_N_ELEMENTS (good); i++) {
      caps = gst_shm_negotiator_parse (good[i], FALSE, &err);
      fail_unless (caps != NULL, "%s: %s", good[i], err ? err->message : "");
      gst_caps_unref (caps);
    }
  }

  /* unknown formats, alone and in lists */
  fail_if (gst_shm_negotiator_parse ("video/x-raw,format=NOPE", FALSE, &err));
  fail_unless (strstr (err->message, "unknown video format \"NOPE\""));
  g_clear_error (&err);
  fail_if (gst_shm_negotiator_parse ("video/x-raw,format={BGRx,WHAT}", FALSE,
          &err));
  fail_unless (strstr (err->message, "unknown video format \"WHAT\""));
  g_clear_error (&err);

  /* not caps */
  fail_if (gst_shm_negotiator_parse ("video/x-raw,,,,==", FALSE, &err));
  fail_unless (strstr (err->message, "do not parse"));
  g_clear_error (&err);

  /* a stream's caps are fixed and, for raw video, a frame */
  fail_if (gst_shm_negotiator_parse ("video/x-raw,format=BGRx,width=[1,8],"
          "height=8", TRUE, &err));
  fail_unless (strstr (err->message, "are not fixed"));
  g_clear_error (&err);
  fail_if (gst_shm_negotiator_parse ("video/x-raw,format=BGRx,height=8,"
          "framerate=0/1", TRUE, &err));
  fail_unless (strstr (err->message, "do not describe a frame"));
  g_clear_error (&err);
  fail_if (gst_shm_negotiator_parse ("ANY", TRUE, &err));
  g_clear_error (&err);
  fail_if (gst_shm_negotiator_parse ("video/x-raw(memory:DMABuf),format=NV12,"
          "width=8,height=8,framerate=30/1", TRUE, &err));
  fail_unless (strstr (err->message, "memory features memory:DMABuf; a "
          "shared area carries system memory"), "%s", err->message);
  g_clear_error (&err);

  /* what is fine */
  caps = gst_shm_negotiator_parse ("video/x-raw,format=BGRx,width=8,"
      "height=8,framerate=30/1", TRUE, &err);
  fail_unless (caps != NULL);
  gst_caps_unref (caps);
}

GST_END_TEST;

GST_START_TEST (test_hello_keys)
{
  GVariantDict d;
  GVariant *body;
  GError *err = NULL;
  GstCaps *caps;

  /* no caps: nothing to say, no error */
  g_variant_dict_init (&d, NULL);
  g_variant_dict_insert (&d, "unknown-key", "s", "ignored");
  body = g_variant_ref_sink (g_variant_dict_end (&d));
  fail_unless (gst_shm_negotiator_read (body, FALSE, &err) == NULL);
  fail_unless (err == NULL);
  g_variant_unref (body);

  /* a newer caps-version with readable caps is read */
  g_variant_dict_init (&d, NULL);
  g_variant_dict_insert (&d, "caps", "s", "video/x-raw,format=NV12");
  g_variant_dict_insert (&d, "caps-version", "u", 7);
  body = g_variant_ref_sink (g_variant_dict_end (&d));
  caps = gst_shm_negotiator_read (body, FALSE, &err);
  fail_unless (caps != NULL);
  gst_caps_unref (caps);
  g_variant_unref (body);

  /* wrong types are errors that name the key */
  g_variant_dict_init (&d, NULL);
  g_variant_dict_insert (&d, "caps", "u", 5);
  body = g_variant_ref_sink (g_variant_dict_end (&d));
  fail_if (gst_shm_negotiator_read (body, FALSE, &err));
  fail_unless (strstr (err->message, "\"caps\" has type u, expected s"));
  g_clear_error (&err);
  g_variant_unref (body);
}

GST_END_TEST;

GST_START_TEST (test_receivers)
{
  GstShmNegotiator *n = gst_shm_negotiator_new ();
  GstCaps *a = gst_caps_from_string ("video/x-raw,format={NV12,I420,BGRx}");
  GstCaps *b = gst_caps_from_string ("video/x-raw,format={BGRx,I420}");
  GstCaps *c = gst_caps_from_string ("video/x-raw,format=YUY2");
  GstCaps *dma = gst_caps_from_string ("video/x-raw(memory:DMABuf),"
      "format=BGRx; video/x-raw,format=I420");
  GstCaps *out, *want;
  gchar *conflict = NULL;
  int r1, r2, r3;

  /* nobody: anything */
  out = gst_shm_negotiator_intersect (n, NULL, &conflict);
  fail_unless (gst_caps_is_any (out) && conflict == NULL);
  gst_caps_unref (out);

  /* two receivers: what both accept, in the first one's order */
  gst_shm_negotiator_set_receiver (n, &r1, "receiver one", a);
  gst_shm_negotiator_set_receiver (n, &r2, "receiver two", b);
  fail_unless_equals_int (gst_shm_negotiator_n_receivers (n), 2);
  out = gst_shm_negotiator_intersect (n, NULL, &conflict);
  want = gst_caps_from_string ("video/x-raw,format={I420,BGRx}");
  fail_unless (gst_caps_is_equal (out, want), "%" GST_PTR_FORMAT, out);
  fail_unless (conflict == NULL);
  gst_caps_unref (out);
  gst_caps_unref (want);

  /* stream caps accepted by one, not another */
  want = gst_caps_from_string ("video/x-raw,format=NV12,width=8,height=8");
  fail_unless (gst_shm_negotiator_accepts (n, &r1, want));
  fail_if (gst_shm_negotiator_accepts (n, &r2, want));
  gst_caps_unref (want);

  /* a third with nothing in common: a message naming everyone's caps */
  gst_shm_negotiator_set_receiver (n, &r3, "receiver three", c);
  out = gst_shm_negotiator_intersect (n, NULL, &conflict);
  fail_unless (gst_caps_is_empty (out));
  fail_unless (conflict != NULL);
  fail_unless (strstr (conflict, "the receivers accept no common caps: "
          "receiver one accepts video/x-raw, format=(string){ NV12, I420, "
          "BGRx }; receiver two accepts video/x-raw, format=(string){ BGRx, "
          "I420 }; receiver three accepts video/x-raw, format=(string)YUY2"),
      "%s", conflict);
  g_free (conflict);
  gst_caps_unref (out);

  /* it leaves; one changes (memory features other than system memory are
   * dropped: a shared area carries system memory) */
  gst_shm_negotiator_remove_receiver (n, &r3);
  gst_shm_negotiator_set_receiver (n, &r2, "receiver two", dma);
  out = gst_shm_negotiator_intersect (n, NULL, NULL);
  want = gst_caps_from_string ("video/x-raw,format=I420");
  fail_unless (gst_caps_is_equal (out, want), "%" GST_PTR_FORMAT, out);
  gst_caps_unref (out);
  gst_caps_unref (want);

  /* with what upstream can do */
  want = gst_caps_from_string ("video/x-raw,format=BGRx");
  out = gst_shm_negotiator_intersect (n, want, NULL);
  fail_unless (gst_caps_is_empty (out));
  gst_caps_unref (out);
  gst_caps_unref (want);

  gst_caps_unref (a);
  gst_caps_unref (b);
  gst_caps_unref (c);
  gst_caps_unref (dma);
  gst_shm_negotiator_free (n);
}

GST_END_TEST;

static Suite *
negotiator_suite (void)
{
  Suite *s = suite_create ("negotiator");
  TCase *tc = tcase_create ("general");

  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_every_raw_format);
  tcase_add_test (tc, test_non_raw);
  tcase_add_test (tc, test_bounds);
  tcase_add_test (tc, test_hello_keys);
  tcase_add_test (tc, test_receivers);
  return s;
}

SHM_CHECK_MAIN (negotiator);

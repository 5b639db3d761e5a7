/* gst-shm tests: a stamp in the first pixels of a frame
 *
 * The sender writes, at the start of plane 0:
 *   u32 magic, u32 frame number, u64 checksum, u64 monotonic ns, u64 pts
 * (little-endian).  The checksum covers every visible byte of every plane
 * except the stamp itself, row by row, so it does not depend on strides:
 * a receiver can check a frame in any layout.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#ifndef __SHM_TEST_STAMP_H__
#define __SHM_TEST_STAMP_H__

#include <gst/video/video.h>
#include <string.h>

#define STAMP_MAGIC 0x504d5453u /* "STMP" */
#define STAMP_SIZE 32

typedef struct
{
  guint32 magic;
  guint32 frame;
  guint64 checksum;
  guint64 mono_ns;
  guint64 pts;
} Stamp;

static inline guint64
stamp_hash_bytes (guint64 h, const guint8 * p, gsize n)
{
  while (n >= 8) {
    guint64 w;
    memcpy (&w, p, 8);
    h = (h ^ w) * G_GUINT64_CONSTANT (0x100000001b3);
    h ^= h >> 29;
    p += 8;
    n -= 8;
  }
  while (n--)
    h = (h ^ *p++) * G_GUINT64_CONSTANT (0x100000001b3);
  return h;
}

static inline gsize
stamp_row_bytes (const GstVideoFrame * f, guint plane)
{
  gint comp[GST_VIDEO_MAX_COMPONENTS];
  GstVideoInfo def;

  gst_video_format_info_component (f->info.finfo, plane, comp);
  if (GST_VIDEO_FRAME_COMP_PSTRIDE (f, comp[0]) > 0)
    return (gsize) GST_VIDEO_FRAME_COMP_WIDTH (f, comp[0])
        * GST_VIDEO_FRAME_COMP_PSTRIDE (f, comp[0]);
  /* pixels of no whole bytes (v210 and the like): the default stride */
  gst_video_info_set_format (&def, GST_VIDEO_FRAME_FORMAT (f),
      GST_VIDEO_FRAME_WIDTH (f), GST_VIDEO_FRAME_HEIGHT (f));
  return GST_VIDEO_INFO_PLANE_STRIDE (&def, plane);
}

static inline guint
stamp_rows (const GstVideoFrame * f, guint plane)
{
  gint comp[GST_VIDEO_MAX_COMPONENTS];

  gst_video_format_info_component (f->info.finfo, plane, comp);
  return GST_VIDEO_FRAME_COMP_HEIGHT (f, comp[0]);
}

static inline guint64
stamp_checksum (const GstVideoFrame * f)
{
  guint64 h = G_GUINT64_CONSTANT (0xcbf29ce484222325);

  for (guint p = 0; p < GST_VIDEO_FRAME_N_PLANES (f); p++) {
    const guint8 *base = GST_VIDEO_FRAME_PLANE_DATA (f, p);
    gsize stride = GST_VIDEO_FRAME_PLANE_STRIDE (f, p);
    gsize row = stamp_row_bytes (f, p);
    guint rows = stamp_rows (f, p);

    for (guint y = 0; y < rows; y++) {
      const guint8 *line = base + y * stride;
      if (p == 0 && y == 0)
        h = stamp_hash_bytes (h, line + STAMP_SIZE, row - STAMP_SIZE);
      else
        h = stamp_hash_bytes (h, line, row);
    }
  }
  return h;
}

static inline void
stamp_write (GstVideoFrame * f, guint32 frame, guint64 mono_ns, guint64 pts)
{
  guint8 *d = GST_VIDEO_FRAME_PLANE_DATA (f, 0);
  Stamp s;

  s.magic = GUINT32_TO_LE (STAMP_MAGIC);
  s.frame = GUINT32_TO_LE (frame);
  s.checksum = GUINT64_TO_LE (stamp_checksum (f));
  s.mono_ns = GUINT64_TO_LE (mono_ns);
  s.pts = GUINT64_TO_LE (pts);
  memcpy (d, &s, sizeof s);
}

/* Returns FALSE when the magic or the checksum is wrong. */
static inline gboolean
stamp_read (const GstVideoFrame * f, Stamp * out, guint64 * computed)
{
  Stamp s;

  memcpy (&s, GST_VIDEO_FRAME_PLANE_DATA (f, 0), sizeof s);
  out->magic = GUINT32_FROM_LE (s.magic);
  out->frame = GUINT32_FROM_LE (s.frame);
  out->checksum = GUINT64_FROM_LE (s.checksum);
  out->mono_ns = GUINT64_FROM_LE (s.mono_ns);
  out->pts = GUINT64_FROM_LE (s.pts);
  *computed = stamp_checksum (f);
  return out->magic == STAMP_MAGIC && out->checksum == *computed;
}

G_STATIC_ASSERT (sizeof (Stamp) == STAMP_SIZE);

#endif /* __SHM_TEST_STAMP_H__ */

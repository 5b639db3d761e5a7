/* gst-shm: helpers shared by shmsink and shmsrc
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#ifndef __GST_SHM_UTIL_H__
#define __GST_SHM_UTIL_H__

#include <gst/gst.h>
#include <gst/video/video.h>

#include "shmivshmem.h"

G_BEGIN_DECLS

/* Name of the element messages posted on the bus about peers. */
#define GST_SHM_PEER_MESSAGE "shm-peer"

void gst_shm_post_peer_message (GstElement * element, const gchar * event,
    const gchar * peer, guint64 session, const gchar * reason);

const gchar *gst_shm_boot_id (void);

gboolean gst_shm_clock_is_monotonic (GstClock * clock);
GstClockTimeDiff gst_shm_clock_diff (GstElement * element,
    gboolean uses_monotonic);

/* Buffer flags that cross (the others are local to one pipeline). */
#define GST_SHM_BUFFER_FLAGS_MASK (GST_BUFFER_FLAG_LIVE \
    | GST_BUFFER_FLAG_DISCONT | GST_BUFFER_FLAG_RESYNC \
    | GST_BUFFER_FLAG_CORRUPTED | GST_BUFFER_FLAG_MARKER \
    | GST_BUFFER_FLAG_HEADER | GST_BUFFER_FLAG_GAP \
    | GST_BUFFER_FLAG_DROPPABLE | GST_BUFFER_FLAG_DELTA_UNIT \
    | GST_BUFFER_FLAG_NON_DROPPABLE \
    | GST_VIDEO_BUFFER_FLAG_INTERLACED | GST_VIDEO_BUFFER_FLAG_TFF \
    | GST_VIDEO_BUFFER_FLAG_RFF | GST_VIDEO_BUFFER_FLAG_ONEFIELD \
    | GST_VIDEO_BUFFER_FLAG_MULTIPLE_VIEW \
    | GST_VIDEO_BUFFER_FLAG_FIRST_IN_BUNDLE \
    | GST_VIDEO_BUFFER_FLAG_TOP_FIELD | GST_VIDEO_BUFFER_FLAG_BOTTOM_FIELD)

/* Time values on the wire: GST_CLOCK_TIME_NONE is G_MAXUINT64. */
static inline guint64
gst_shm_time_to_wire (GstClockTime t)
{
  return GST_CLOCK_TIME_IS_VALID (t) ? t : G_MAXUINT64;
}

gchar *gst_shm_prepare_path (GstElement * element, const gchar * path,
    ShmBarKind * kind);
gchar *gst_shm_default_control (const gchar * path, ShmBarKind kind);

gboolean gst_shm_raw_video_info (GstVideoInfo * info, GstCaps * caps);

void gst_shm_quit_and_join (GMainContext * context, GMainLoop * loop,
    GThread * thread);

G_END_DECLS

#endif /* __GST_SHM_UTIL_H__ */

/* gst-shm: helpers shared by shmsink and shmsrc
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#ifndef __GST_SHM_UTIL_H__
#define __GST_SHM_UTIL_H__

#include <gst/gst.h>
#include <gst/video/video.h>

#include "shmivshmem.h"
#include "shmrecord.h"

G_BEGIN_DECLS

/* Name of the element messages posted on the bus about peers. */
#define GST_SHM_PEER_MESSAGE "shm-peer"

void gst_shm_post_peer_message (GstElement * element, const gchar * event,
    const gchar * peer, guint64 session, const gchar * reason);

gboolean gst_shm_clock_is_monotonic (GstClock * clock);
GstClockTimeDiff gst_shm_clock_diff (GstElement * element,
    gboolean uses_monotonic);

/* Buffer flags that cross (the others are local to one pipeline), in the
 * records' own bit values (shmrecord.h). */
guint32 gst_shm_flags_to_wire (GstBufferFlags flags);
GstBufferFlags gst_shm_flags_from_wire (guint32 wire);

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

void gst_shm_post_error (GstElement * element, gboolean fatal,
    const GError * error, const gchar * debug);
void gst_shm_frame_layout (const GstVideoInfo * info, ShmFrameLayout * l);

G_END_DECLS

#endif /* __GST_SHM_UTIL_H__ */

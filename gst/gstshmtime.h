/* gst-shm: timestamps in frame records and out of them (docs/protocol.md,
 * section 3)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#ifndef __GST_SHM_TIME_H__
#define __GST_SHM_TIME_H__

#include <gst/gst.h>
#include <gst/base/gstbasesink.h>

#include "shmrecord.h"

G_BEGIN_DECLS

/* The streaming thread's state: the session it is of, and for a live
 * source the sender's clock offset and the last timestamps; for a non-live
 * one the segment of the session's frames. */
typedef struct
{
  guint64 session;              /* 0: none yet */
  gpointer clock;               /* (identity only) the clock last seen */
  gboolean clock_monotonic;     /* it is CLOCK_MONOTONIC */
  gboolean have_offset;
  gint64 offset;                /* receiver minus sender CLOCK_MONOTONIC */
  GstClockTime last_pts, last_dts;
  gboolean need_segment;
  /* the running time where the frames so far end */
  GstClockTime seg_start, seg_base, seg_end_running;
} GstShmTimes;

void gst_shm_times_reset (GstShmTimes * t);
void gst_shm_times_live (GstShmTimes * t, GstElement * element,
    GstBuffer * buf, const ShmRecord * r, gboolean same_boot, guint64 session);
gboolean gst_shm_times_segment (GstShmTimes * t, const ShmRecord * r,
    guint64 session, GstSegment * segment);
void gst_shm_times_record (GstBaseSink * sink, gboolean clock_monotonic,
    GstBuffer * buf, ShmRecord * r);

G_END_DECLS

#endif /* __GST_SHM_TIME_H__ */

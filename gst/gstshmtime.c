/* gst-shm: timestamps in frame records and out of them (docs/protocol.md,
 * section 3)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstshmtime.h"
#include "gstshmutil.h"

#include <string.h>

void
gst_shm_times_reset (GstShmTimes * t)
{
  memset (t, 0, sizeof *t);
  t->last_pts = t->last_dts = GST_CLOCK_TIME_NONE;
  t->need_segment = TRUE;
}

/* The sender's due time on CLOCK_MONOTONIC, as running time here.  Frames
 * due before this pipeline started playing (the backlog of a sender that
 * waited for this receiver) get running times from 0 up, one nanosecond
 * apart; the frames after them keep their exact times. */
static GstClockTime
from_monotonic (GstShmTimes * t, guint64 mono, GstClockTime base_time,
    GstClockTimeDiff diff, gboolean increasing, GstClockTime * last)
{
  gint64 v;
  GstClockTime rt;
  gboolean early;

  if (mono == G_MAXUINT64 || !GST_CLOCK_TIME_IS_VALID (base_time))
    return GST_CLOCK_TIME_NONE;
  v = (gint64) mono + t->offset - diff;
  early = v <= (gint64) base_time;
  rt = early ? 0 : (GstClockTime) (v - base_time);
  /* DTS never go back.  PTS may (reordered frames of an encoded stream),
   * except those of frames from before our base time, which would all be
   * 0 otherwise. */
  if ((increasing || early) && GST_CLOCK_TIME_IS_VALID (*last) && rt <= *last)
    rt = *last + 1;
  if (!GST_CLOCK_TIME_IS_VALID (*last) || rt > *last)
    *last = rt;
  return rt;
}

/**
 * gst_shm_times_live:
 * @same_boot: the sender's CLOCK_MONOTONIC is ours
 * @session: the frame's session (it may be gone: its id)
 *
 * A live source: the buffer's PTS and DTS from the frame's due times,
 * mapped onto @element's clock and base time.
 */
void
gst_shm_times_live (GstShmTimes * t, GstElement * element, GstBuffer * buf,
    const ShmRecord * r, gboolean same_boot, guint64 session)
{
  GstClockTime base_time = GST_CLOCK_TIME_NONE;
  GstClockTimeDiff diff = 0;
  GstClock *clock;

  /* (one lock for the clock and the base time) */
  GST_OBJECT_LOCK (element);
  clock = GST_ELEMENT_CLOCK (element) ?
      gst_object_ref (GST_ELEMENT_CLOCK (element)) : NULL;
  if (clock)
    base_time = element->base_time;
  GST_OBJECT_UNLOCK (element);
  if (clock) {
    /* (asked once per clock: it is a property lookup) */
    if ((gpointer) clock != t->clock) {
      t->clock = clock;
      t->clock_monotonic = gst_shm_clock_is_monotonic (clock);
    }
    if (!t->clock_monotonic)
      diff = gst_shm_clock_diff (element, FALSE);
    gst_object_unref (clock);
  }
  if (session != t->session) {
    t->session = session;
    t->have_offset = FALSE;
    t->offset = 0;
    t->last_pts = t->last_dts = GST_CLOCK_TIME_NONE;
  }
  if (!same_boot && !t->have_offset) {
    /* another kernel's CLOCK_MONOTONIC: align on this first frame */
    t->offset = g_get_monotonic_time () * 1000 - (gint64) r->send_time;
    t->have_offset = TRUE;
  }
  GST_BUFFER_PTS (buf) = from_monotonic (t, r->mono_pts, base_time, diff,
      FALSE, &t->last_pts);
  GST_BUFFER_DTS (buf) = from_monotonic (t, r->mono_dts, base_time, diff,
      TRUE, &t->last_dts);
}

/**
 * gst_shm_times_segment:
 * @segment: (out caller-allocates): the segment to push first, when TRUE
 *
 * A non-live source pushes the sender's timestamps unchanged, after a
 * segment that starts at the session's first PTS.  Another sender's
 * timestamps start afresh: a segment of their own, whose running time goes
 * on from where the last session's frames ended.
 */
gboolean
gst_shm_times_segment (GstShmTimes * t, const ShmRecord * r, guint64 session,
    GstSegment * segment)
{
  gboolean new_segment = FALSE;

  if (session != t->session) {
    if (t->session)
      t->need_segment = TRUE;
    t->session = session;
  }
  if (t->need_segment && GST_CLOCK_TIME_IS_VALID (r->pts)) {
    gst_segment_init (segment, GST_FORMAT_TIME);
    segment->start = segment->time = segment->position = r->pts;
    segment->base = t->seg_end_running;
    t->seg_start = r->pts;
    t->seg_base = segment->base;
    t->need_segment = FALSE;
    new_segment = TRUE;
  }
  if (GST_CLOCK_TIME_IS_VALID (r->pts) && r->pts >= t->seg_start) {
    GstClockTime end = r->pts - t->seg_start + t->seg_base
        + (GST_CLOCK_TIME_IS_VALID (r->duration) ? r->duration : 0);
    t->seg_end_running = MAX (t->seg_end_running, end);
  }
  return new_segment;
}

/**
 * gst_shm_times_record:
 * @clock_monotonic: @sink's clock is CLOCK_MONOTONIC
 *
 * A sender's side: the frame record's timestamps, flags and offsets from
 * @buf, its due times on CLOCK_MONOTONIC from @sink's segment, base time
 * and latency.
 */
void
gst_shm_times_record (GstBaseSink * sink, gboolean clock_monotonic,
    GstBuffer * buf, ShmRecord * r)
{
  GstElement *element = GST_ELEMENT (sink);
  GstClockTime base_time = GST_CLOCK_TIME_NONE, latency;
  GstClockTimeDiff diff = 0;
  gboolean have_clock;

  GST_OBJECT_LOCK (sink);
  have_clock = GST_ELEMENT_CLOCK (element) != NULL;
  GST_OBJECT_UNLOCK (sink);
  if (have_clock) {
    base_time = gst_element_get_base_time (element);
    diff = gst_shm_clock_diff (element, clock_monotonic);
  }
  latency = gst_base_sink_get_latency (sink);
  r->pts = gst_shm_time_to_wire (GST_BUFFER_PTS (buf));
  r->dts = gst_shm_time_to_wire (GST_BUFFER_DTS (buf));
  r->duration = gst_shm_time_to_wire (GST_BUFFER_DURATION (buf));
  r->mono_pts = gst_shm_to_monotonic (&sink->segment, GST_BUFFER_PTS (buf),
      base_time, latency, diff);
  r->mono_dts = gst_shm_to_monotonic (&sink->segment, GST_BUFFER_DTS (buf),
      base_time, latency, diff);
  r->buffer_offset = GST_BUFFER_OFFSET (buf);
  r->buffer_offset_end = GST_BUFFER_OFFSET_END (buf);
  r->buffer_flags = gst_shm_flags_to_wire (GST_BUFFER_FLAGS (buf));
}

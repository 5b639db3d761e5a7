/* gst-shm: receivers' reports, as shmsink shows them
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstshmreport.h"

/**
 * GstShmSink:receivers:
 *
 * Each receiver reports every second (docs/protocol.md, "report"): the
 * frames it received, dropped itself and missed (gaps: frames the sender
 * skipped for it) in that second, the latency from a frame's publication
 * to its push (median and maximum, same host only), the records waiting
 * in its channel, and the QoS its downstream sent it (the number of QoS
 * events, the last proportion and jitter).  This property holds one
 * structure "receiver" per connected receiver: peer, live, ready, inline,
 * skipped (frames the sender skipped for it so far) and the figures of its
 * last report: interval, received, dropped, missed, latency-p50,
 * latency-max (ns), queued, qos-events, qos-proportion, qos-jitter (ns),
 * report-age (ns).  Each report is also posted as an element message
 * "shm-report" with the same figures and the peer.  When a report carries
 * QoS, shmsink sends a QoS event upstream from its sink pad with the
 * proportion and jitter of the worst receiver (the highest proportion),
 * so that elements that honour QoS upstream (videorate, encoders, live
 * sources) adapt to the slowest receiver's downstream.
 */

/* The report's figures, on @s. */
static void
set_report (GstStructure * s, const ShmReport * r)
{
  gst_structure_set (s,
      "interval", G_TYPE_UINT64, r->interval_ns,
      "received", G_TYPE_UINT64, r->received,
      "dropped", G_TYPE_UINT64, r->dropped,
      "missed", G_TYPE_UINT64, r->missed,
      "latency-p50", G_TYPE_UINT64, r->latency_p50_ns,
      "latency-max", G_TYPE_UINT64, r->latency_max_ns,
      "queued", G_TYPE_UINT, r->queued,
      "qos-events", G_TYPE_UINT, r->qos_events,
      "qos-proportion", G_TYPE_DOUBLE, r->qos_proportion,
      "qos-jitter", G_TYPE_INT64, r->qos_jitter_ns, NULL);
}

/**
 * gst_shm_report_structure:
 *
 * Returns: the element message "shm-report" of one receiver's report.
 */
GstStructure *
gst_shm_report_structure (const gchar * peer, const ShmReport * report)
{
  GstStructure *s = gst_structure_new ("shm-report", "peer", G_TYPE_STRING,
      peer, NULL);

  set_report (s, report);
  return s;
}

static void
add_receiver (const ShmReceiverInfo * info, gpointer data)
{
  GstStructure *s = gst_structure_new ("receiver",
      "peer", G_TYPE_STRING, info->name,
      "live", G_TYPE_BOOLEAN, info->live,
      "ready", G_TYPE_BOOLEAN, info->ready,
      "inline", G_TYPE_BOOLEAN, info->frames_inline,
      "skipped", G_TYPE_UINT64, info->missed, NULL);
  GValue v = G_VALUE_INIT;

  if (info->report) {
    set_report (s, info->report);
    gst_structure_set (s, "report-age", G_TYPE_UINT64,
        (guint64) info->report_age_us * GST_USECOND, NULL);
  }
  g_value_init (&v, GST_TYPE_STRUCTURE);
  g_value_take_boxed (&v, s);
  gst_value_array_append_and_take_value (data, &v);
}

/**
 * gst_shm_report_receivers:
 * @array: a GstValueArray (GST_TYPE_ARRAY)
 *
 * Appends a structure "receiver" for each receiver connected now: its
 * peer, live, ready, inline, the frames the sender skipped for it, and the
 * figures of its last report with their age.
 */
void
gst_shm_report_receivers (ShmSender * sender, GValue * array)
{
  shm_sender_foreach_receiver (sender, add_receiver, array);
}

typedef struct
{
  gboolean found;
  gdouble proportion;
  gint64 jitter;
} Worst;

/* (reports at most two intervals old, whose receiver's downstream sent
 * QoS in that interval) */
static void
take_worst (const ShmReceiverInfo * info, gpointer data)
{
  Worst *w = data;
  const ShmReport *r = info->report;

  if (!r || !r->qos_events
      || info->report_age_us > 2 * SHM_REPORT_INTERVAL_MS * 1000)
    return;
  if (!w->found || r->qos_proportion > w->proportion) {
    w->found = TRUE;
    w->proportion = r->qos_proportion;
    w->jitter = r->qos_jitter_ns;
  }
}

/**
 * gst_shm_report_qos:
 * @timestamp: the running time of the frame it is about
 *
 * Returns: (nullable): a QoS event for upstream with the proportion and
 *   jitter of the worst receiver (the highest proportion: the one whose
 *   downstream falls furthest behind) among those whose last report
 *   carried QoS, or NULL when none did.
 */
GstEvent *
gst_shm_report_qos (ShmSender * sender, GstClockTime timestamp)
{
  Worst w = { 0, };

  shm_sender_foreach_receiver (sender, take_worst, &w);
  if (!w.found || !GST_CLOCK_TIME_IS_VALID (timestamp))
    return NULL;
  return gst_event_new_qos (w.proportion > 1.0 ? GST_QOS_TYPE_UNDERFLOW
      : GST_QOS_TYPE_OVERFLOW, w.proportion, w.jitter, timestamp);
}

/**
 * gst_shm_report_forward:
 *
 * A receiver's report: posted as an element message "shm-report", and
 * when it carries QoS, the worst receiver's QoS goes upstream from @sink's
 * pad, as if it were the sink's own (its timestamp: the running time now,
 * that of the frame the sink syncs on).
 */
void
gst_shm_report_forward (GstBaseSink * sink, ShmSender * sender,
    ShmPeer * peer, const ShmReport * report)
{
  GstEvent *qos;

  gst_element_post_message (GST_ELEMENT (sink),
      gst_message_new_element (GST_OBJECT (sink),
          gst_shm_report_structure (shm_peer_get_name (peer), report)));
  if (report->qos_events && (qos = gst_shm_report_qos (sender,
              gst_element_get_current_running_time (GST_ELEMENT (sink)))))
    gst_pad_push_event (GST_BASE_SINK_PAD (sink), qos);
}

/* shmsink's receivers property (gst_shm_report_receivers() fills it). */
void
gst_shm_report_install_property (GObjectClass * klass, guint prop_id)
{
  g_object_class_install_property (klass, prop_id,
      gst_param_spec_array ("receivers", "Receivers",
          "One structure per connected receiver: its peer, live or not, the "
          "frames skipped for it, and the figures of its last report",
          g_param_spec_boxed ("receiver", "Receiver", "A receiver",
              GST_TYPE_STRUCTURE, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS),
          G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));
}

/* gst-shm benchmark: two small elements the pipelines need
 *
 * benchtimer: passes buffers through unchanged and records, for each one,
 * how long the push downstream took (for a sink right after it, the time
 * the sink spent on the buffer: shmsink's render, copy included).  Caps
 * and allocation queries go through it, so the sink's pool still reaches
 * the producer.
 *
 * benchpoolsink: a sink that does nothing with the frames but proposes a
 * GstVideoBufferPool of exactly pool-buffers buffers (min = max), so that
 * the producer rotates through as many frames as an area has slots: the
 * fair ceiling of a zero-copy transport, which writes every frame into one
 * of K slots rather than into one buffer that stays in the cache.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "bench.h"

#include <gst/base/gstbasesink.h>
#include <gst/video/video.h>
#include <sys/resource.h>
#include <time.h>

gint64
bench_now_ns (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (gint64) ts.tv_sec * G_GINT64_CONSTANT (1000000000) + ts.tv_nsec;
}

/* CPU time (user + system) of every thread of this process. */
gint64
bench_cpu_ns (glong * maxrss_kb)
{
  struct rusage ru;

  getrusage (RUSAGE_SELF, &ru);
  if (maxrss_kb)
    *maxrss_kb = ru.ru_maxrss;
  return ((gint64) ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) *
      G_GINT64_CONSTANT (1000000000) + ((gint64) ru.ru_utime.tv_usec +
      ru.ru_stime.tv_usec) * 1000;
}

/* benchtimer */

#define BENCH_TYPE_TIMER (bench_timer_get_type ())
G_DECLARE_FINAL_TYPE (BenchTimer, bench_timer, BENCH, TIMER, GstElement);

struct _BenchTimer
{
  GstElement parent;
  GstPad *sinkpad;
  GstPad *srcpad;
  GArray *durations;            /* gint64 ns, object lock */
};

G_DEFINE_TYPE (BenchTimer, bench_timer, GST_TYPE_ELEMENT);

static GstStaticPadTemplate timer_sink_template =
GST_STATIC_PAD_TEMPLATE ("sink", GST_PAD_SINK, GST_PAD_ALWAYS,
    GST_STATIC_CAPS_ANY);
static GstStaticPadTemplate timer_src_template =
GST_STATIC_PAD_TEMPLATE ("src", GST_PAD_SRC, GST_PAD_ALWAYS,
    GST_STATIC_CAPS_ANY);

static GstFlowReturn
bench_timer_chain (GstPad * pad, GstObject * parent, GstBuffer * buf)
{
  BenchTimer *self = BENCH_TIMER (parent);
  gint64 t0, t1;
  GstFlowReturn ret;

  t0 = bench_now_ns ();
  ret = gst_pad_push (self->srcpad, buf);
  t1 = bench_now_ns ();
  if (ret == GST_FLOW_OK) {
    gint64 d = t1 - t0;
    GST_OBJECT_LOCK (self);
    g_array_append_val (self->durations, d);
    GST_OBJECT_UNLOCK (self);
  }
  return ret;
}

static void
bench_timer_finalize (GObject * object)
{
  BenchTimer *self = BENCH_TIMER (object);

  g_array_unref (self->durations);
  G_OBJECT_CLASS (bench_timer_parent_class)->finalize (object);
}

static void
bench_timer_init (BenchTimer * self)
{
  self->sinkpad = gst_pad_new_from_static_template (&timer_sink_template,
      "sink");
  gst_pad_set_chain_function (self->sinkpad, bench_timer_chain);
  GST_PAD_SET_PROXY_CAPS (self->sinkpad);
  GST_PAD_SET_PROXY_ALLOCATION (self->sinkpad);
  GST_PAD_SET_PROXY_SCHEDULING (self->sinkpad);
  gst_element_add_pad (GST_ELEMENT (self), self->sinkpad);

  self->srcpad = gst_pad_new_from_static_template (&timer_src_template, "src");
  GST_PAD_SET_PROXY_CAPS (self->srcpad);
  GST_PAD_SET_PROXY_SCHEDULING (self->srcpad);
  gst_element_add_pad (GST_ELEMENT (self), self->srcpad);

  self->durations = g_array_new (FALSE, FALSE, sizeof (gint64));
}

static void
bench_timer_class_init (BenchTimerClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);

  gobject_class->finalize = bench_timer_finalize;
  gst_element_class_add_static_pad_template (element_class,
      &timer_sink_template);
  gst_element_class_add_static_pad_template (element_class,
      &timer_src_template);
  gst_element_class_set_static_metadata (element_class, "Bench timer",
      "Generic", "Times the push of each buffer downstream",
      "gst-shm developers");
}

/**
 * bench_timer_copy_durations:
 *
 * Returns: (transfer full): the time each buffer so far spent downstream
 * of @timer, in ns (the streaming thread may go on adding to its own).
 */
GArray *
bench_timer_copy_durations (GstElement * timer)
{
  BenchTimer *self = BENCH_TIMER (timer);
  GArray *copy;

  GST_OBJECT_LOCK (self);
  copy = g_array_sized_new (FALSE, FALSE, sizeof (gint64),
      self->durations->len);
  g_array_append_vals (copy, self->durations->data, self->durations->len);
  GST_OBJECT_UNLOCK (self);
  return copy;
}

/* benchpoolsink */

#define BENCH_TYPE_POOL_SINK (bench_pool_sink_get_type ())
G_DECLARE_FINAL_TYPE (BenchPoolSink, bench_pool_sink, BENCH, POOL_SINK,
    GstBaseSink);

struct _BenchPoolSink
{
  GstBaseSink parent;
  guint pool_buffers;
};

enum
{
  PROP_0,
  PROP_POOL_BUFFERS,
};

G_DEFINE_TYPE (BenchPoolSink, bench_pool_sink, GST_TYPE_BASE_SINK);

static GstStaticPadTemplate pool_sink_template =
GST_STATIC_PAD_TEMPLATE ("sink", GST_PAD_SINK, GST_PAD_ALWAYS,
    GST_STATIC_CAPS ("video/x-raw"));

static gboolean
bench_pool_sink_propose_allocation (GstBaseSink * bsink, GstQuery * query)
{
  BenchPoolSink *self = BENCH_POOL_SINK (bsink);
  GstBufferPool *pool;
  GstStructure *config;
  GstVideoInfo info;
  GstCaps *caps;
  gboolean need_pool;

  gst_query_parse_allocation (query, &caps, &need_pool);
  if (caps == NULL || !gst_video_info_from_caps (&info, caps))
    return FALSE;
  gst_query_add_allocation_meta (query, GST_VIDEO_META_API_TYPE, NULL);
  if (self->pool_buffers == 0)
    return TRUE;

  pool = gst_video_buffer_pool_new ();
  config = gst_buffer_pool_get_config (pool);
  gst_buffer_pool_config_set_params (config, caps, GST_VIDEO_INFO_SIZE (&info),
      self->pool_buffers, self->pool_buffers);
  gst_buffer_pool_config_add_option (config, GST_BUFFER_POOL_OPTION_VIDEO_META);
  if (!gst_buffer_pool_set_config (pool, config)) {
    gst_object_unref (pool);
    return FALSE;
  }
  gst_query_add_allocation_pool (query, pool, GST_VIDEO_INFO_SIZE (&info),
      self->pool_buffers, self->pool_buffers);
  gst_object_unref (pool);
  return TRUE;
}

static GstFlowReturn
bench_pool_sink_render (GstBaseSink * bsink, GstBuffer * buf)
{
  return GST_FLOW_OK;
}

static void
bench_pool_sink_set_property (GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec)
{
  BenchPoolSink *self = BENCH_POOL_SINK (object);

  switch (prop_id) {
    case PROP_POOL_BUFFERS:
      self->pool_buffers = g_value_get_uint (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
}

static void
bench_pool_sink_get_property (GObject * object, guint prop_id, GValue * value,
    GParamSpec * pspec)
{
  BenchPoolSink *self = BENCH_POOL_SINK (object);

  switch (prop_id) {
    case PROP_POOL_BUFFERS:
      g_value_set_uint (value, self->pool_buffers);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
}

static void
bench_pool_sink_init (BenchPoolSink * self)
{
  gst_base_sink_set_sync (GST_BASE_SINK (self), FALSE);
  gst_base_sink_set_last_sample_enabled (GST_BASE_SINK (self), FALSE);
}

static void
bench_pool_sink_class_init (BenchPoolSinkClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseSinkClass *basesink_class = GST_BASE_SINK_CLASS (klass);

  gobject_class->set_property = bench_pool_sink_set_property;
  gobject_class->get_property = bench_pool_sink_get_property;
  g_object_class_install_property (gobject_class, PROP_POOL_BUFFERS,
      g_param_spec_uint ("pool-buffers", "Pool buffers",
          "Buffers of the pool proposed upstream (min = max; 0: no pool)",
          0, 64, 0, G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS));

  gst_element_class_add_static_pad_template (element_class,
      &pool_sink_template);
  gst_element_class_set_static_metadata (element_class, "Bench pool sink",
      "Sink/Video", "Drops frames rendered into a pool of N buffers",
      "gst-shm developers");

  basesink_class->propose_allocation = bench_pool_sink_propose_allocation;
  basesink_class->render = bench_pool_sink_render;
}

void
bench_elements_register (void)
{
  gst_element_register (NULL, "benchtimer", GST_RANK_NONE, BENCH_TYPE_TIMER);
  gst_element_register (NULL, "benchpoolsink", GST_RANK_NONE,
      BENCH_TYPE_POOL_SINK);
}

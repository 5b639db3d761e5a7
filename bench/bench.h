/* gst-shm benchmark: declarations shared by its parts
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#ifndef __GST_SHM_BENCH_H__
#define __GST_SHM_BENCH_H__

#include <gst/gst.h>

G_BEGIN_DECLS
/* The stamp a sender writes into the first bytes of plane 0 of every
 * frame, just before its sink, and a receiver reads when its source pushes
 * the frame (little-endian). */
#define BENCH_STAMP_MAGIC 0x48434e42u   /* "BNCH" */
#define BENCH_STAMP_SIZE 16
/* Options of a child process (one pipeline). */
    typedef struct
{
  const gchar *role;            /* "inspect", "alone", "send", "recv" */
  const gchar *transport;       /* "ours", "bad", "none" */
  const gchar *format;
  gint width;
  gint height;
  gboolean live;
  gint frames;                  /* sender: frames to send; receiver: expected */
  gint warmup;                  /* frames left out of the measurement */
  gint warmup_ms;               /* and the frames of this long after the
                                 * first one */
  gint slots;                   /* ours: num-slots; ceiling: pool buffers */
  gboolean keep_last;           /* receiver: fakesink enable-last-sample */
  gboolean copy;                /* sender: keep upstream off the sink's pool */
  gboolean ceiling;             /* alone: a sink that proposes a pool */
  const gchar *path;            /* ours: area file; bad: socket path */
  guint64 shm_size;             /* bad: shm-size */
  const gchar *result;          /* key file written at the end */
  const gchar *plugin_dir;      /* ours: the plugin must come from here */
  gint stall_ms;                /* no frame for this long: hang */
  gint first_ms;                /* no first frame for this long: hang */
  gint eos_wait_ms;             /* receiver: wait for EOS after the frames */
  gboolean no_receiver;         /* ours: wait-for-receiver=false */
  const gchar *control;         /* ours: control address (NULL: default) */
  guint64 area_size;            /* ours sender: size of the area (0: auto) */
  gboolean no_spin;             /* ours receiver: spin-time=0 */
  const gchar *pid_file;        /* the child writes its process id here */
  gboolean no_cpu;              /* no getrusage per frame (under strace) */
} BenchChildOptions;

gint bench_child_run (const BenchChildOptions * opts);

/* benchtimer: a pass-through element that times how long each buffer takes
 * downstream of it (the push into the sink: for shmsink, its render). */
void bench_elements_register (void);
GArray *bench_timer_copy_durations (GstElement * timer);

gint64 bench_now_ns (void);
gint64 bench_cpu_ns (glong * maxrss_kb);

G_END_DECLS
#endif /* __GST_SHM_BENCH_H__ */

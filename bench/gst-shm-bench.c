/* gst-shm-bench: gst-shm against the machine's limits and gst-plugins-bad
 *
 *   gst-shm-bench --plugin-dir DIR [--quick] [--runs N] [--output FILE]
 *
 * Runs, side by side and on the same pipelines: the memcpy limit for one
 * frame, the producer alone, the producer into a pool of K buffers (the
 * fair zero-copy ceiling), gst-shm zero-copy (over its unix socket and over
 * the in-band control rings) and on its copy path, and gst-plugins-bad's
 * shmsink/shmsrc; for each size, format, live or not, slot count and
 * receiver (keeps its last frame or not).  Every pipeline runs in a child
 * process of this program (the same binary, --child) with a hard timeout,
 * so that a case that hangs is a row that says so.  Then (--syscalls) a few
 * pipelines again under strace -f -c, for their system calls per frame.
 * Writes a Markdown report and prints a short table.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "bench.h"

#include <glib/gstdio.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

/* options */
static gboolean opt_quick;
static gint opt_runs;
static gchar *opt_output;
static gchar *opt_plugin_dir;
static gchar *opt_notes;
static gchar *opt_only;
static gboolean opt_list;
static gchar *opt_perf;
static gdouble opt_live_seconds;
static gchar *opt_command;
static gchar *opt_source;
static gboolean opt_syscalls;
static gboolean opt_no_syscalls;
/* child options */
static gchar *opt_child;
static gchar *opt_transport = "none";
static gchar *opt_format = "BGRx";
static gint opt_width = 1920;
static gint opt_height = 1080;
static gboolean opt_live;
static gint opt_frames = 300;
static gint opt_warmup = 0;
static gint opt_warmup_ms = 0;
static gint opt_slots = 4;
static gboolean opt_keep_last;
static gboolean opt_copy;
static gboolean opt_ceiling;
static gchar *opt_path;
static gint64 opt_shm_size;
static gchar *opt_result;
static gint opt_stall_ms = 3000;
static gint opt_first_ms = 10000;
static gint opt_eos_wait_ms = 250;
static gboolean opt_no_receiver;
static gchar *opt_control;
static gint64 opt_area_size;
static gboolean opt_no_spin;
static gchar *opt_pid_file;
static gboolean opt_no_cpu;

static GOptionEntry entries[] = {
  {"quick", 0, 0, G_OPTION_ARG_NONE, &opt_quick,
        "One size, one format, one run of each case, a few hundred frames",
      NULL},
  {"runs", 0, 0, G_OPTION_ARG_INT, &opt_runs,
      "Runs of each case (default 3; 1 with --quick)", "N"},
  {"output", 'o', 0, G_OPTION_ARG_FILENAME, &opt_output,
      "Markdown report to write (default results.md)", "FILE"},
  {"plugin-dir", 0, 0, G_OPTION_ARG_FILENAME, &opt_plugin_dir,
        "Directory of gst-shm's libgstshm.so (default: $GST_PLUGIN_PATH_1_0)",
      "DIR"},
  {"notes", 0, 0, G_OPTION_ARG_FILENAME, &opt_notes,
      "Markdown file included in the report as the profile of the missed "
        "targets", "FILE"},
  {"only", 0, 0, G_OPTION_ARG_STRING, &opt_only,
      "Run only the cases whose name contains this", "TEXT"},
  {"list", 0, 0, G_OPTION_ARG_NONE, &opt_list,
      "Print the name of every case and exit", NULL},
  {"perf", 0, 0, G_OPTION_ARG_FILENAME, &opt_perf,
      "Run every pipeline under perf record, data files into DIR", "DIR"},
  {"live-seconds", 0, 0, G_OPTION_ARG_DOUBLE, &opt_live_seconds,
        "Measured seconds of each live run (default 1.25; 0.5 with --quick)",
      "S"},
  {"command", 0, 0, G_OPTION_ARG_STRING, &opt_command,
      "Command line to record in the report (default: this one)", "CMD"},
  {"source", 0, 0, G_OPTION_ARG_STRING, &opt_source,
      "Source revision to record in the report", "TEXT"},
  {"syscalls", 0, 0, G_OPTION_ARG_NONE, &opt_syscalls,
      "After the passes, count the system calls per frame of a few "
        "pipelines under strace -f -c (default in a full run; not with "
        "--quick or --only unless given)", NULL},
  {"no-syscalls", 0, 0, G_OPTION_ARG_NONE, &opt_no_syscalls,
      "Skip the system call counts", NULL},
  {"child", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_STRING, &opt_child,
      "Run one pipeline: inspect, alone, send or recv", "ROLE"},
  {"transport", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_STRING, &opt_transport,
      NULL, NULL},
  {"format", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_STRING, &opt_format, NULL,
      NULL},
  {"width", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_INT, &opt_width, NULL, NULL},
  {"height", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_INT, &opt_height, NULL,
      NULL},
  {"live", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_NONE, &opt_live, NULL, NULL},
  {"frames", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_INT, &opt_frames, NULL,
      NULL},
  {"warmup", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_INT, &opt_warmup, NULL,
      NULL},
  {"warmup-ms", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_INT, &opt_warmup_ms,
      NULL, NULL},
  {"slots", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_INT, &opt_slots, NULL, NULL},
  {"keep-last", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_NONE, &opt_keep_last,
      NULL, NULL},
  {"copy", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_NONE, &opt_copy, NULL, NULL},
  {"ceiling", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_NONE, &opt_ceiling, NULL,
      NULL},
  {"path", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_FILENAME, &opt_path, NULL,
      NULL},
  {"shm-size", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_INT64, &opt_shm_size,
      NULL, NULL},
  {"result", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_FILENAME, &opt_result,
      NULL, NULL},
  {"stall-ms", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_INT, &opt_stall_ms, NULL,
      NULL},
  {"first-ms", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_INT, &opt_first_ms, NULL,
      NULL},
  {"eos-wait-ms", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_INT, &opt_eos_wait_ms,
      NULL, NULL},
  {"no-receiver", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_NONE,
      &opt_no_receiver, NULL, NULL},
  {"control", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_STRING, &opt_control,
      NULL, NULL},
  {"area-size", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_INT64, &opt_area_size,
      NULL, NULL},
  {"no-spin", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_NONE, &opt_no_spin, NULL,
      NULL},
  {"pid-file", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_FILENAME, &opt_pid_file,
      NULL, NULL},
  {"no-cpu", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_NONE, &opt_no_cpu, NULL,
      NULL},
  {NULL}
};

/* Cases */

typedef enum
{
  KIND_PRODUCER,
  KIND_CEILING,
  KIND_COPY_STEP,
  KIND_OURS_ZC,
  KIND_OURS_RING,
  KIND_OURS_NO_SPIN,
  KIND_OURS_COPY,
  KIND_BAD,
} Kind;

static const gchar *kind_names[] = {
  "producer", "ceiling", "ours-copy-step", "ours-zero-copy", "ours-ring",
  "ours-no-spin", "ours-copy", "bad"
};

typedef struct
{
  const gchar *name;
  gint width;
  gint height;
} Size;

typedef struct
{
  gchar *status;                /* "ok", "hang: ...", "error: ..." */
  gboolean ok;
  gdouble fps;
  gdouble cpu_snd_ms;           /* per frame; < 0: none */
  gdouble cpu_rcv_ms;
  gdouble rss_snd_mb;
  gdouble rss_rcv_mb;
  gdouble render_us;            /* median time in the sender's sink */
  GArray *latency;              /* gint64 ns */
  gboolean rcv_eos;
  gboolean snd_eos;
  guint64 snd_copied;           /* ours: frames shmsink copied */
  guint64 snd_sent;
  guint64 rcv_copied;           /* ours: frames shmsrc copied out */
  guint64 rcv_dropped;
  guint64 rcv_frames;
  guint64 rcv_missing;
  guint64 unstamped;
  gchar *warnings;
  gchar *snd_trace;             /* strace -c summaries (system call pass) */
  gchar *rcv_trace;
} Run;

typedef struct
{
  gchar *id;
  Kind kind;
  const Size *size;
  const gchar *format;
  gboolean live;
  gint slots;
  gboolean keep;
  gint frames;
  gint warmup;
  guint64 frame_bytes;
  GPtrArray *runs;              /* Run */
  /* aggregates */
  gchar *status;
  guint n_ok;
  gdouble fps_min, fps_med, fps_max;
  gdouble lat_p50, lat_p99, lat_max;    /* µs; < 0: none */
  gdouble cpu_snd, cpu_rcv;
  gdouble rss_snd, rss_rcv;
  gdouble render_us;
  gchar *notes;
} Case;

typedef struct
{
  const Size *size;
  const gchar *format;
  guint64 bytes;
  gint ndst;                    /* 1: between two buffers; K: into K */
  gboolean shm;                 /* into K slots of a /dev/shm mapping */
  gdouble gbps[16];
  guint n;
  gdouble med;
} Memcpy;

typedef struct
{
  gchar *self;
  gchar *tmpdir;
  gchar **env_ours;
  gchar **env_bad;
  gchar *plugin_dir;
  gint runs;
  gdouble live_seconds;
  gint stall_ms;
  gint first_ms;
  GPtrArray *cases;
  GPtrArray *memcpys;
  gchar *plugin_ours;
  gchar *plugin_bad;
  gchar *bad_error;
  guint seq;
  GArray *floor[2];             /* wake-up latencies, 1 and 2 hops */
  gboolean syscalls;            /* run the system call pass */
  gchar *strace;                /* its program; NULL: not found */
  gboolean tracing;             /* run_case: children under strace */
  GPtrArray *sys_cases;         /* Case, one run each under strace */
} Bench;

static const Size sizes_full[] = {
  {"1080p", 1920, 1080},
  {"4K", 3840, 2160},
};

static const Size sizes_quick[] = {
  {"720p", 1280, 720},
};

static const gint slot_counts[] = { 2, 4, 8 };

static guint64
frame_bytes (const gchar * format, gint w, gint h)
{
  if (g_str_equal (format, "NV12"))
    return (guint64) w *h + 2 * (guint64) ((w + 1) / 2) * ((h + 1) / 2);
  return (guint64) w *h * 4;
}

static Case *
case_new (Kind kind, const Size * size, const gchar * format, gboolean live,
    gint slots, gboolean keep)
{
  Case *c = g_new0 (Case, 1);
  GString *id = g_string_new (NULL);

  c->kind = kind;
  c->size = size;
  c->format = format;
  c->live = live;
  c->slots = slots;
  c->keep = keep;
  c->frame_bytes = frame_bytes (format, size->width, size->height);
  c->runs = g_ptr_array_new ();
  g_string_append_printf (id, "%s/%s/%s/", size->name, format,
      live ? "live60" : "non-live");
  if (kind != KIND_PRODUCER)
    g_string_append_printf (id, "K%d/", slots);
  if (kind >= KIND_OURS_ZC)
    g_string_append (id, keep ? "keep-last/" : "no-keep/");
  g_string_append (id, kind_names[kind]);
  c->id = g_string_free (id, FALSE);
  return c;
}

static void
build_cases (Bench * b)
{
  const Size *sizes = opt_quick ? sizes_quick : sizes_full;
  guint n_sizes = opt_quick ? G_N_ELEMENTS (sizes_quick) :
      G_N_ELEMENTS (sizes_full);
  const gchar *formats_full[] = { "BGRx", "NV12" };
  guint n_formats = opt_quick ? 1 : 2;

  b->cases = g_ptr_array_new ();
  for (guint s = 0; s < n_sizes; s++) {
    for (guint f = 0; f < n_formats; f++) {
      for (gint live = 0; live <= 1; live++) {
        Case *c = case_new (KIND_PRODUCER, &sizes[s], formats_full[f], live, 0,
            FALSE);
        g_ptr_array_add (b->cases, c);
        for (guint k = 0; k < G_N_ELEMENTS (slot_counts); k++) {
          /* the ceiling and the copy step are throughput bounds: live
           * runs are paced */
          if (!live) {
            g_ptr_array_add (b->cases, case_new (KIND_CEILING, &sizes[s],
                    formats_full[f], live, slot_counts[k], FALSE));
            g_ptr_array_add (b->cases, case_new (KIND_COPY_STEP, &sizes[s],
                    formats_full[f], live, slot_counts[k], FALSE));
          }
          for (gint keep = 1; keep >= 0; keep--)
            for (Kind kind = KIND_OURS_ZC; kind <= KIND_BAD; kind++) {
              /* (spinning needs a frame rate: live rows only) */
              if (kind == KIND_OURS_NO_SPIN && (!live || slot_counts[k] < 4))
                continue;
              g_ptr_array_add (b->cases, case_new (kind, &sizes[s],
                      formats_full[f], live, slot_counts[k], keep));
            }
        }
      }
    }
  }
  for (guint i = 0; i < b->cases->len; i++) {
    Case *c = g_ptr_array_index (b->cases, i);
    if (c->live) {
      /* warm-up: the frames of the first 1/2 s (1/6 s quick), and a
       * reserve for the burst of a source that waited for its receiver */
      c->warmup = opt_quick ? 10 : 30;
      c->frames = c->warmup * 3 / 2 + (gint) (b->live_seconds * 60 + 0.5);
    } else if (opt_quick) {
      c->warmup = 20;
      c->frames = 200;
    } else {
      c->warmup = 20;
      c->frames = c->size->width >= 3840 ? 140 : 320;
      if (g_str_equal (c->format, "NV12"))
        c->frames = c->warmup + (c->frames - c->warmup) * 2;
    }
  }
}

/* Child processes */

static gchar **
child_env (const gchar * registry, const gchar * plugin_dir)
{
  gchar **env = g_get_environ ();

  env = g_environ_unsetenv (env, "GST_PLUGIN_PATH");
  env = g_environ_unsetenv (env, "GST_PLUGIN_PATH_1_0");
  env = g_environ_unsetenv (env, "GST_REGISTRY");
  env = g_environ_setenv (env, "GST_REGISTRY_1_0", registry, TRUE);
  if (plugin_dir)
    env = g_environ_setenv (env, "GST_PLUGIN_PATH_1_0", plugin_dir, TRUE);
  return env;
}

typedef struct
{
  pid_t pid;
  gboolean done;
  gint status;
  struct rusage ru;
  gint64 end_ns;
  gboolean signalled;
  gchar *pid_file;              /* under perf or strace: the child's pid */
} Proc;

/* Starts this program with @args as a child process: under strace -f -c
 * (its summary into @trace) when @trace is set, else under perf record
 * when --perf is given.  Under either, the child writes its process id into
 * a file: signals go to it, not to the program it runs under. */
static void
spawn (Bench * b, Proc * p, GPtrArray * args, gchar ** env, const gchar * log,
    const gchar * perf_name, const gchar * trace)
{
  GPtrArray *argv = g_ptr_array_new_with_free_func (g_free);
  gboolean perf = opt_perf && !trace;
  pid_t pid;

  if (trace) {
    g_ptr_array_add (argv, g_strdup (b->strace));
    g_ptr_array_add (argv, g_strdup ("-f"));
    g_ptr_array_add (argv, g_strdup ("-c"));
    g_ptr_array_add (argv, g_strdup ("-o"));
    g_ptr_array_add (argv, g_strdup (trace));
    g_ptr_array_add (argv, g_strdup ("--"));
    g_unlink (trace);
  } else if (perf) {
    g_ptr_array_add (argv, g_strdup ("perf"));
    g_ptr_array_add (argv, g_strdup ("record"));
    g_ptr_array_add (argv, g_strdup ("-q"));
    g_ptr_array_add (argv, g_strdup ("-e"));
    g_ptr_array_add (argv, g_strdup ("cpu-clock"));
    g_ptr_array_add (argv, g_strdup ("-g"));
    g_ptr_array_add (argv, g_strdup ("-o"));
    g_ptr_array_add (argv, g_strdup_printf ("%s/%s.data", opt_perf, perf_name));
    g_ptr_array_add (argv, g_strdup ("--"));
  }
  g_ptr_array_add (argv, g_strdup (b->self));
  for (guint i = 0; i < args->len; i++)
    g_ptr_array_add (argv, g_strdup (g_ptr_array_index (args, i)));
  g_free (p->pid_file);
  p->pid_file = NULL;
  if (trace || perf) {
    p->pid_file = g_strconcat (log, ".pid", NULL);
    g_unlink (p->pid_file);
    g_ptr_array_add (argv, g_strdup_printf ("--pid-file=%s", p->pid_file));
  }
  g_ptr_array_add (argv, NULL);

  fflush (stdout);
  fflush (stderr);
  pid = fork ();
  if (pid == 0) {
    int fd = open (log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      dup2 (fd, 1);
      dup2 (fd, 2);
      close (fd);
    }
    if (trace)
      execve (b->strace, (gchar **) argv->pdata, env);
    else if (perf)
      execvpe ("perf", (gchar **) argv->pdata, env);
    else
      execve (b->self, (gchar **) argv->pdata, env);
    _exit (127);
  }
  if (pid < 0)
    g_printerr ("Could not start a child process: %s\n", g_strerror (errno));
  g_ptr_array_unref (argv);
  p->pid = pid;
}

/* The child itself: the process in the pid file of a child that runs under
 * perf or strace (once it has written it), else the process started. */
static pid_t
proc_child_pid (Proc * p)
{
  g_autofree gchar *text = NULL;
  gint64 pid;

  if (!p->pid_file || !g_file_get_contents (p->pid_file, &text, NULL, NULL))
    return p->pid;
  pid = g_ascii_strtoll (text, NULL, 10);
  return pid > 0 && pid < G_MAXINT ? (pid_t) pid : p->pid;
}

/* gst-plugins-bad's shmsink names its segment /dev/shm/shmpipe.PID.N
 * (PID and N padded to 5 characters) and removes it only when it stops
 * cleanly: remove what a sender that hung or was killed left. */
static void
remove_shmpipe_segments (pid_t pid)
{
  g_autofree gchar *prefix = g_strdup_printf ("shmpipe.%5d.", (int) pid);
  GDir *d = g_dir_open ("/dev/shm", 0, NULL);
  const gchar *name;

  if (!d || pid <= 0) {
    if (d)
      g_dir_close (d);
    return;
  }
  while ((name = g_dir_read_name (d)))
    if (g_str_has_prefix (name, prefix)) {
      g_autofree gchar *path = g_build_filename ("/dev/shm", name, NULL);
      g_unlink (path);
    }
  g_dir_close (d);
}

static void
add_arg (GPtrArray * args, const gchar * fmt, ...)
{
  va_list ap;

  va_start (ap, fmt);
  g_ptr_array_add (args, g_strdup_vprintf (fmt, ap));
  va_end (ap);
}

/* ours-ring: with control=ring shmsink needs the size of the area file
 * it creates.  gst/core lays it out as a header (4096 bytes), the token
 * lanes (65536), the control rings (532480), the channels (294912), then
 * the slots, which take all the room left: give each slot the frame with
 * room to spare for aligned strides, in whole pages. */
static guint64
ring_area_size (const Case * c)
{
  guint64 slot = (guint64) (c->frame_bytes * 1.1) + 65536;

  slot = (slot + 4095) / 4096 * 4096;
  return 4096 + 65536 + 532480 + 294912 + (guint64) c->slots * slot;
}

static GPtrArray *
child_args (Bench * b, Case * c, const gchar * role, const gchar * transport,
    const gchar * result)
{
  GPtrArray *args = g_ptr_array_new_with_free_func (g_free);

  add_arg (args, "--child=%s", role);
  add_arg (args, "--transport=%s", transport);
  add_arg (args, "--result=%s", result);
  add_arg (args, "--plugin-dir=%s", b->plugin_dir);
  add_arg (args, "--stall-ms=%d", b->stall_ms);
  add_arg (args, "--first-ms=%d", b->first_ms);
  if (!c)
    return args;
  add_arg (args, "--format=%s", c->format);
  add_arg (args, "--width=%d", c->size->width);
  add_arg (args, "--height=%d", c->size->height);
  add_arg (args, "--frames=%d", c->frames);
  add_arg (args, "--warmup=%d", c->warmup);
  if (c->live)
    add_arg (args, "--warmup-ms=%d", c->warmup * 1000 / 60);
  add_arg (args, "--slots=%d", c->slots);
  if (c->live)
    add_arg (args, "--live");
  if (c->keep)
    add_arg (args, "--keep-last");
  if ((c->kind == KIND_OURS_COPY || c->kind == KIND_COPY_STEP)
      && g_str_equal (role, "send"))
    add_arg (args, "--copy");
  if (c->kind == KIND_COPY_STEP)
    add_arg (args, "--no-receiver");
  if (c->kind == KIND_CEILING)
    add_arg (args, "--ceiling");
  if (c->kind == KIND_BAD)
    add_arg (args, "--shm-size=%" G_GUINT64_FORMAT, c->frame_bytes * c->slots);
  /* under strace: no getrusage of the benchmark's own in the counts */
  if (b->tracing)
    add_arg (args, "--no-cpu");
  if (c->kind == KIND_OURS_NO_SPIN && g_str_equal (role, "recv"))
    add_arg (args, "--no-spin");
  if (c->kind == KIND_OURS_RING) {
    add_arg (args, "--control=ring");
    if (g_str_equal (role, "send"))
      add_arg (args, "--area-size=%" G_GUINT64_FORMAT, ring_area_size (c));
  }
  /* ours passes EOS: wait for it; gst-plugins-bad's never does */
  add_arg (args, "--eos-wait-ms=%d", c->kind == KIND_BAD ? 250 : 3000);
  return args;
}

static void
proc_poll (Proc * p)
{
  pid_t r;

  if (p->done)
    return;
  if (p->pid <= 0) {
    /* never started (or fork failed): nothing to wait for */
    p->done = TRUE;
    p->status = 127 << 8;
    return;
  }
  r = wait4 (p->pid, &p->status, WNOHANG, &p->ru);
  if (r == p->pid) {
    p->done = TRUE;
    p->end_ns = bench_now_ns ();
  }
}

static void
proc_kill (Proc * p, int sig)
{
  if (p->pid > 0 && !p->done) {
    kill (proc_child_pid (p), sig);
    p->signalled = TRUE;
  }
}

/* Waits until @p ends, up to @ms; then SIGTERM, a second, SIGKILL. */
static void
proc_finish (Proc * p, gint ms)
{
  gint64 until = bench_now_ns () + (gint64) ms * 1000000;

  while (!p->done && bench_now_ns () < until) {
    proc_poll (p);
    if (!p->done)
      g_usleep (2000);
  }
  if (p->done)
    return;
  proc_kill (p, SIGTERM);
  until = bench_now_ns () + G_GINT64_CONSTANT (1000000000);
  while (!p->done && bench_now_ns () < until) {
    proc_poll (p);
    if (!p->done)
      g_usleep (2000);
  }
  if (!p->done) {
    proc_kill (p, SIGKILL);
    /* the program it runs under ends with it; if not, it goes too */
    until = bench_now_ns () + G_GINT64_CONSTANT (1000000000);
    while (!p->done) {
      proc_poll (p);
      if (!p->done && bench_now_ns () > until && proc_child_pid (p) != p->pid) {
        kill (p->pid, SIGKILL);
        until = G_MAXINT64;
      }
      if (!p->done)
        g_usleep (2000);
    }
  }
}

static gchar *
last_log_line (const gchar * log)
{
  g_autofree gchar *text = NULL;
  gchar **lines;
  gchar *last = NULL;

  if (!g_file_get_contents (log, &text, NULL, NULL))
    return g_strdup ("");
  lines = g_strsplit (text, "\n", -1);
  for (gint i = g_strv_length (lines) - 1; i >= 0 && !last; i--) {
    g_strstrip (lines[i]);
    if (lines[i][0])
      last = g_strdup (lines[i]);
  }
  g_strfreev (lines);
  return last ? last : g_strdup ("");
}

static GKeyFile *
read_result (const gchar * file, Proc * p, const gchar * log, gchar ** error)
{
  GKeyFile *kf = g_key_file_new ();

  if (g_key_file_load_from_file (kf, file, G_KEY_FILE_NONE, NULL))
    return kf;
  g_key_file_free (kf);
  if (p->done && WIFSIGNALED (p->status))
    *error = g_strdup_printf ("killed by signal %d (%s)",
        WTERMSIG (p->status), last_log_line (log));
  else if (p->done)
    *error = g_strdup_printf ("exit status %d without a result (%s)",
        WEXITSTATUS (p->status), last_log_line (log));
  else
    *error = g_strdup ("no result");
  return NULL;
}

static gchar *
kf_string (GKeyFile * kf, const gchar * key)
{
  gchar *s = kf ? g_key_file_get_string (kf, "result", key, NULL) : NULL;
  return s ? s : g_strdup ("");
}

static guint64
kf_u64 (GKeyFile * kf, const gchar * key)
{
  return kf ? g_key_file_get_uint64 (kf, "result", key, NULL) : 0;
}

static gint64
kf_i64 (GKeyFile * kf, const gchar * key)
{
  return kf ? g_key_file_get_int64 (kf, "result", key, NULL) : 0;
}

static GArray *
kf_list (GKeyFile * kf, const gchar * key)
{
  GArray *a = g_array_new (FALSE, FALSE, sizeof (gint64));
  g_autofree gchar *v = kf ? g_key_file_get_value (kf, "result", key,
      NULL) : NULL;
  gchar **parts;

  if (!v || !v[0])
    return a;
  parts = g_strsplit (v, ";", -1);
  for (guint i = 0; parts[i]; i++) {
    gint64 x = g_ascii_strtoll (parts[i], NULL, 10);
    g_array_append_val (a, x);
  }
  g_strfreev (parts);
  return a;
}

/* A counter out of a serialised GstStructure: "key=(guint64)N". */
static guint64
stat_u64 (const gchar * stats, const gchar * key)
{
  g_autofree gchar *pat = g_strdup_printf (" %s=(guint64)", key);
  const gchar *p = stats ? strstr (stats, pat) : NULL;

  return p ? g_ascii_strtoull (p + strlen (pat), NULL, 10) : 0;
}

static gint
cmp_i64 (gconstpointer a, gconstpointer b)
{
  gint64 x = *(const gint64 *) a, y = *(const gint64 *) b;
  return x < y ? -1 : x > y;
}

static gint
cmp_double (gconstpointer a, gconstpointer b)
{
  gdouble x = *(const gdouble *) a, y = *(const gdouble *) b;
  return x < y ? -1 : x > y;
}

static gdouble
percentile_i64 (GArray * sorted, gdouble p)
{
  guint i;

  if (sorted->len == 0)
    return -1;
  i = (guint) ceil (p * sorted->len) - 1;
  if (i >= sorted->len)
    i = sorted->len - 1;
  return (gdouble) g_array_index (sorted, gint64, i);
}

static gdouble
median_double (gdouble * v, guint n)
{
  if (n == 0)
    return -1;
  qsort (v, n, sizeof (gdouble), cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static gboolean
wait_for_file (const gchar * file, Proc * p, gint ms)
{
  gint64 until = bench_now_ns () + (gint64) ms * 1000000;

  while (bench_now_ns () < until) {
    if (g_file_test (file, G_FILE_TEST_EXISTS))
      return TRUE;
    proc_poll (p);
    if (p->done)
      return FALSE;
    g_usleep (2000);
  }
  return FALSE;
}

/* Fills @r from a child's result; sender or "alone" side when @snd. */
static void
take_side (Run * r, GKeyFile * kf, gboolean snd, gdouble * fps)
{
  guint64 mf = kf_u64 (kf, "measured-frames");
  gint64 mns = kf_i64 (kf, "measured-ns");
  gint64 cpu = kf_i64 (kf, "cpu-ns");
  gdouble rss = kf_i64 (kf, "maxrss-kb") / 1024.0;
  gdouble cpu_ms = mf ? cpu / 1e6 / mf : -1;
  g_autofree gchar *warn = kf_string (kf, "warnings");

  if (fps)
    *fps = (mf && mns > 0) ? mf * 1e9 / mns : 0;
  if (snd) {
    GArray *d = kf_list (kf, "render-ns");
    g_autofree gchar *st = kf_string (kf, "sink-stats");

    r->cpu_snd_ms = cpu_ms;
    r->rss_snd_mb = rss;
    r->snd_eos = kf ? g_key_file_get_boolean (kf, "result", "eos", NULL) : 0;
    if (d->len) {
      g_array_sort (d, cmp_i64);
      r->render_us = percentile_i64 (d, 0.5) / 1e3;
    }
    g_array_unref (d);
    r->snd_copied = stat_u64 (st, "frames-copied");
    r->snd_sent = stat_u64 (st, "frames-sent");
    r->unstamped += kf_u64 (kf, "unstamped");
  } else {
    g_autofree gchar *st = kf_string (kf, "src-stats");

    r->cpu_rcv_ms = cpu_ms;
    r->rss_rcv_mb = rss;
    r->rcv_eos = kf ? g_key_file_get_boolean (kf, "result", "eos", NULL) : 0;
    r->latency = kf_list (kf, "latency-ns");
    r->rcv_copied = stat_u64 (st, "frames-copied");
    r->rcv_dropped = stat_u64 (st, "frames-dropped");
    r->rcv_frames = kf_u64 (kf, "frames");
    r->rcv_missing = kf_u64 (kf, "missing");
    r->unstamped += kf_u64 (kf, "unstamped");
  }
  if (warn[0]) {
    gchar *w = g_strdup_printf ("%s%s%s", r->warnings ? r->warnings : "",
        r->warnings ? "; " : "", warn);
    g_free (r->warnings);
    r->warnings = w;
  }
}

static gchar *
side_status (GKeyFile * kf, const gchar * error, const gchar * side)
{
  g_autofree gchar *st = NULL, *msg = NULL;

  if (!kf)
    return g_strdup_printf ("error: %s: %s", side, error);
  st = kf_string (kf, "status");
  msg = kf_string (kf, "message");
  if (g_str_equal (st, "ok"))
    return NULL;
  if (g_str_equal (st, "hang"))
    return g_strdup_printf ("hang: %s %s", side, msg);
  return g_strdup_printf ("%s: %s %s", st, side, msg);
}

static Run *
run_case (Bench * b, Case * c, guint run_index)
{
  Run *r = g_new0 (Run, 1);
  guint seq = b->seq++;
  g_autofree gchar *base = g_strdup_printf ("%s/run%u", b->tmpdir, seq);
  g_autofree gchar *snd_res = g_strconcat (base, "-snd.result", NULL);
  g_autofree gchar *rcv_res = g_strconcat (base, "-rcv.result", NULL);
  g_autofree gchar *snd_log = g_strconcat (base, "-snd.log", NULL);
  g_autofree gchar *rcv_log = g_strconcat (base, "-rcv.log", NULL);
  g_autofree gchar *perf_name = NULL;
  gchar *snd_trace = NULL, *rcv_trace = NULL;
  gint64 hard_ms = c->live ? (gint64) (c->frames * 1000 / 60) + 30000 : 60000;
  Proc snd = { 0, }, rcv = { 0, };
  GKeyFile *skf = NULL, *rkf = NULL;
  g_autofree gchar *serr = NULL, *rerr = NULL;
  gboolean shm = c->kind >= KIND_OURS_ZC;
  gboolean bad = c->kind == KIND_BAD;
  gboolean ring = c->kind == KIND_OURS_RING;
  gchar **env = bad || !shm ? b->env_bad : b->env_ours;
  GPtrArray *args;
  gint64 deadline;

  r->cpu_snd_ms = r->cpu_rcv_ms = -1;
  r->render_us = -1;
  if (b->tracing) {
    snd_trace = r->snd_trace = g_strconcat (base, "-snd.strace", NULL);
    rcv_trace = r->rcv_trace = g_strconcat (base, "-rcv.strace", NULL);
  }
  perf_name = g_strdup_printf ("%s-run%u", c->id, run_index);
  g_strdelimit (perf_name, "/", '_');

  if (bad && b->bad_error) {
    r->status = g_strdup_printf ("error: %s", b->bad_error);
    return r;
  }

  if (c->kind == KIND_COPY_STEP) {
    /* shmsink alone (no receiver, wait-for-receiver=false) copying every
     * frame into its slots in turn: the copy step without any wait */
    g_autofree gchar *pname = g_strconcat (perf_name, "-snd", NULL);
    g_autofree gchar *area = g_strconcat (base, ".area", NULL);
    args = child_args (b, c, "send", "ours", snd_res);
    add_arg (args, "--path=%s", area);
    spawn (b, &snd, args, b->env_ours, snd_log, pname, snd_trace);
    g_ptr_array_unref (args);
    proc_finish (&snd, (gint) hard_ms);
    skf = read_result (snd_res, &snd, snd_log, &serr);
    r->status = side_status (skf, serr, "");
    take_side (r, skf, TRUE, &r->fps);
    goto done;
  }

  if (!shm) {
    g_autofree gchar *pname = g_strconcat (perf_name, "-alone", NULL);
    args = child_args (b, c, "alone", "none", snd_res);
    spawn (b, &snd, args, env, snd_log, pname, snd_trace);
    g_ptr_array_unref (args);
    proc_finish (&snd, (gint) hard_ms);
    skf = read_result (snd_res, &snd, snd_log, &serr);
    r->status = side_status (skf, serr, "");
    take_side (r, skf, TRUE, &r->fps);
    goto done;
  }

  {
    g_autofree gchar *area = g_strconcat (base, bad ? ".sock" : ".area",
        NULL);
    /* what the receiver needs to find: the control socket, or with the
     * in-band rings the area file (its receiver waits for the header) */
    g_autofree gchar *sock = bad || ring ? g_strdup (area) :
        g_strconcat (area, ".sock", NULL);
    const gchar *what = ring ? "no area file" : "no control socket";
    g_autofree gchar *spname = g_strconcat (perf_name, "-snd", NULL);
    g_autofree gchar *rpname = g_strconcat (perf_name, "-rcv", NULL);
    const gchar *transport = bad ? "bad" : "ours";

    args = child_args (b, c, "send", transport, snd_res);
    add_arg (args, "--path=%s", area);
    spawn (b, &snd, args, env, snd_log, spname, snd_trace);
    g_ptr_array_unref (args);

    /* gst-plugins-bad's shmsrc fails when the socket is not there yet */
    if (!wait_for_file (sock, &snd, 20000)) {
      proc_finish (&snd, 0);
      skf = read_result (snd_res, &snd, snd_log, &serr);
      r->status = side_status (skf, serr ? serr : what, "sender");
      if (!r->status)
        r->status = g_strdup_printf ("error: sender: %s", what);
      goto done;
    }

    args = child_args (b, c, "recv", transport, rcv_res);
    add_arg (args, "--path=%s", area);
    spawn (b, &rcv, args, env, rcv_log, rpname, rcv_trace);
    g_ptr_array_unref (args);
  }

  deadline = bench_now_ns () + hard_ms * 1000000;
  while (!rcv.done && bench_now_ns () < deadline) {
    proc_poll (&rcv);
    proc_poll (&snd);
    if (snd.done && !rcv.done) {
      /* the sender ended first: its frames are all out, or it failed */
      proc_finish (&rcv, 3000);
      break;
    }
    if (!rcv.done)
      g_usleep (2000);
  }
  if (!rcv.done) {
    proc_kill (&snd, SIGTERM);
    proc_finish (&rcv, 0);
  }
  /* the receiver is done: the sender has a moment to pass EOS and stop
   * (gst-plugins-bad's often does not: no need to wait long) */
  proc_finish (&snd, bad ? 500 : 3000);

  skf = read_result (snd_res, &snd, snd_log, &serr);
  rkf = read_result (rcv_res, &rcv, rcv_log, &rerr);
  r->status = side_status (rkf, rerr, "receiver");
  if (!r->status) {
    g_autofree gchar *st = kf_string (skf, "status");
    /* a sender stopped after its frames went through is only a note */
    if (!skf || !(g_str_equal (st, "ok") || g_str_equal (st, "terminated")))
      r->status = side_status (skf, serr, "sender");
  }
  take_side (r, skf, TRUE, NULL);
  take_side (r, rkf, FALSE, &r->fps);

done:
  if (bad)
    remove_shmpipe_segments (proc_child_pid (&snd));
  g_free (snd.pid_file);
  g_free (rcv.pid_file);
  if (!r->status) {
    r->ok = r->fps > 0;
    r->status = g_strdup (r->ok ? "ok" : "error: nothing measured");
  }
  if (skf)
    g_key_file_free (skf);
  if (rkf)
    g_key_file_free (rkf);
  if (!r->latency)
    r->latency = g_array_new (FALSE, FALSE, sizeof (gint64));
  return r;
}

static void
aggregate (Case * c)
{
  gdouble fps[16], cs[16], cr[16], rend[16];
  guint n = 0, ncs = 0, ncr = 0, nrend = 0;
  GArray *lat = g_array_new (FALSE, FALSE, sizeof (gint64));
  GString *notes = g_string_new (NULL);
  guint64 snd_copied = 0, snd_sent = 0, rcv_copied = 0, rcv_dropped = 0,
      rcv_frames = 0, rcv_missing = 0, unstamped = 0;
  gboolean all_rcv_eos = TRUE, all_snd_eos = TRUE;
  const gchar *warnings = NULL;

  c->rss_snd = c->rss_rcv = 0;
  g_free (c->status);
  c->status = NULL;
  for (guint i = 0; i < c->runs->len; i++) {
    Run *r = g_ptr_array_index (c->runs, i);

    if (!r->ok) {
      if (!c->status)
        c->status = c->runs->len > 1 ?
            g_strdup_printf ("%s (run %u of %u)", r->status, i + 1,
            c->runs->len) : g_strdup (r->status);
      continue;
    }
    if (n < G_N_ELEMENTS (fps))
      fps[n++] = r->fps;
    if (r->cpu_snd_ms >= 0 && ncs < G_N_ELEMENTS (cs))
      cs[ncs++] = r->cpu_snd_ms;
    if (r->cpu_rcv_ms >= 0 && ncr < G_N_ELEMENTS (cr))
      cr[ncr++] = r->cpu_rcv_ms;
    if (r->render_us >= 0 && nrend < G_N_ELEMENTS (rend))
      rend[nrend++] = r->render_us;
    c->rss_snd = MAX (c->rss_snd, r->rss_snd_mb);
    c->rss_rcv = MAX (c->rss_rcv, r->rss_rcv_mb);
    g_array_append_vals (lat, r->latency->data, r->latency->len);
    snd_copied += r->snd_copied;
    snd_sent += r->snd_sent;
    rcv_copied += r->rcv_copied;
    rcv_dropped += r->rcv_dropped;
    rcv_frames += r->rcv_frames;
    rcv_missing += r->rcv_missing;
    unstamped += r->unstamped;
    all_rcv_eos &= r->rcv_eos;
    all_snd_eos &= r->snd_eos;
    if (r->warnings && !warnings)
      warnings = r->warnings;
  }
  c->n_ok = n;
  if (!c->status)
    c->status = g_strdup ("ok");
  c->fps_min = c->fps_max = -1;
  if (n) {
    c->fps_med = median_double (fps, n);
    c->fps_min = fps[0];
    c->fps_max = fps[n - 1];
  }
  c->cpu_snd = median_double (cs, ncs);
  c->cpu_rcv = median_double (cr, ncr);
  c->render_us = median_double (rend, nrend);
  g_array_sort (lat, cmp_i64);
  c->lat_p50 = lat->len ? percentile_i64 (lat, 0.50) / 1e3 : -1;
  c->lat_p99 = lat->len ? percentile_i64 (lat, 0.99) / 1e3 : -1;
  c->lat_max = lat->len ? percentile_i64 (lat, 1.0) / 1e3 : -1;
  g_array_unref (lat);

  if (n && c->kind >= KIND_OURS_ZC) {
    if (c->kind != KIND_BAD) {
      if (snd_sent)
        g_string_append_printf (notes, "shmsink copied %" G_GUINT64_FORMAT
            "/%" G_GUINT64_FORMAT "; ", snd_copied, snd_sent);
      g_string_append_printf (notes, "shmsrc copied %" G_GUINT64_FORMAT
          "/%" G_GUINT64_FORMAT "; ", rcv_copied, rcv_frames);
      if (rcv_dropped)
        g_string_append_printf (notes, "shmsrc dropped %" G_GUINT64_FORMAT
            "; ", rcv_dropped);
    }
    if (rcv_missing)
      g_string_append_printf (notes, "frames missed %" G_GUINT64_FORMAT "; ",
          rcv_missing);
    if (!all_rcv_eos)
      g_string_append (notes, "no EOS at the receiver; ");
    if (!all_snd_eos)
      g_string_append (notes, "sender did not finish EOS; ");
  }
  if (unstamped)
    g_string_append_printf (notes, "%" G_GUINT64_FORMAT " frames without "
        "stamp; ", unstamped);
  if (warnings)
    g_string_append_printf (notes, "warning: %s; ", warnings);
  if (notes->len >= 2)
    g_string_truncate (notes, notes->len - 2);
  g_free (c->notes);
  c->notes = g_string_free (notes, FALSE);
}

/* memcpy */

static volatile guint8 memcpy_sink;

/* GB/s of memcpy() of @bytes from one buffer into @ndst buffers in turn:
 * allocated with posix_memalign(), or slots of a file in @shm_dir mapped
 * shared (as shmsink's area is). */
static gdouble
memcpy_gbps (guint64 bytes, gint ndst, gdouble seconds, const gchar * shm_dir)
{
  guint8 *src, *dst[64], *area = NULL;
  guint64 slot = (bytes + 4095) & ~G_GUINT64_CONSTANT (4095);
  gint64 t0, t1;
  guint64 iters = 0;
  guint8 acc = 0;

  if (posix_memalign ((void **) &src, 4096, bytes))
    return -1;
  memset (src, 0x5a, bytes);
  if (shm_dir) {
    g_autofree gchar *file = g_build_filename (shm_dir, "memcpy.area", NULL);
    int fd = open (file, O_RDWR | O_CREAT | O_TRUNC, 0600);

    if (fd < 0 || ftruncate (fd, slot * ndst) < 0) {
      if (fd >= 0)
        close (fd);
      free (src);
      return -1;
    }
    area = mmap (NULL, slot * ndst, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close (fd);
    g_unlink (file);
    if (area == MAP_FAILED) {
      free (src);
      return -1;
    }
  }
  for (gint i = 0; i < ndst; i++) {
    if (area)
      dst[i] = area + i * slot;
    else if (posix_memalign ((void **) &dst[i], 4096, bytes))
      return -1;
    memset (dst[i], 0, bytes);
    memcpy (dst[i], src, bytes);
  }
  t0 = t1 = bench_now_ns ();
  while (iters < 10 || t1 - t0 < seconds * 1e9) {
    guint8 *d = dst[iters % ndst];
    memcpy (d, src, bytes);
    acc ^= d[bytes - 1];
    iters++;
    t1 = bench_now_ns ();
  }
  memcpy_sink = acc;
  free (src);
  if (area)
    munmap (area, slot * ndst);
  else
    for (gint i = 0; i < ndst; i++)
      free (dst[i]);
  return bytes * (gdouble) iters / (t1 - t0);
}

static void
setup_memcpy (Bench * b)
{
  const Size *sizes = opt_quick ? sizes_quick : sizes_full;
  guint n_sizes = opt_quick ? 1 : 2;
  const gchar *formats[] = { "BGRx", "NV12" };
  guint n_formats = opt_quick ? 1 : 2;
  gint ndsts[] = { 1, 2, 4, 8, -2, -4, -8 };    /* < 0: shm */

  b->memcpys = g_ptr_array_new ();
  for (guint s = 0; s < n_sizes; s++) {
    for (guint f = 0; f < n_formats; f++) {
      for (guint k = 0; k < G_N_ELEMENTS (ndsts); k++) {
        Memcpy *m = g_new0 (Memcpy, 1);

        m->size = &sizes[s];
        m->format = formats[f];
        m->ndst = ABS (ndsts[k]);
        m->shm = ndsts[k] < 0;
        m->bytes = frame_bytes (m->format, m->size->width, m->size->height);
        g_ptr_array_add (b->memcpys, m);
      }
    }
  }
}

/* One sample of every memcpy case (a pass of the benchmark runs one). */
static void
memcpy_pass (Bench * b)
{
  for (guint i = 0; i < b->memcpys->len; i++) {
    Memcpy *m = g_ptr_array_index (b->memcpys, i);
    gdouble v[G_N_ELEMENTS (m->gbps)];

    if (m->n >= G_N_ELEMENTS (m->gbps))
      continue;
    m->gbps[m->n++] = memcpy_gbps (m->bytes, m->ndst,
        opt_quick ? 0.05 : 0.2, m->shm ? b->tmpdir : NULL);
    memcpy (v, m->gbps, sizeof v);
    m->med = median_double (v, m->n);
    g_printerr ("memcpy %s %s 1 -> %d%s: %.2f GB/s\n", m->size->name,
        m->format, m->ndst, m->shm ? " (shm)" : "", m->gbps[m->n - 1]);
  }
}

static Memcpy *
find_memcpy (Bench * b, const Size * size, const gchar * format, gint ndst,
    gboolean shm)
{
  for (guint i = 0; i < b->memcpys->len; i++) {
    Memcpy *m = g_ptr_array_index (b->memcpys, i);
    if (m->size == size && g_str_equal (m->format, format) && m->ndst == ndst
        && m->shm == shm)
      return m;
  }
  return NULL;
}

static Case *
find_case (Bench * b, Case * like, Kind kind, gint slots, gboolean keep)
{
  for (guint i = 0; i < b->cases->len; i++) {
    Case *c = g_ptr_array_index (b->cases, i);
    if (c->kind == kind && c->size == like->size
        && g_str_equal (c->format, like->format) && c->live == like->live
        && (kind == KIND_PRODUCER || c->slots == slots)
        && (kind < KIND_OURS_ZC || c->keep == keep))
      return c;
  }
  return NULL;
}

/* The machine's own wake-up latency at 60 Hz: a process writes
 * CLOCK_MONOTONIC into a unix socket every 1/60 s; the other reads it (one
 * hop, as gst-plugins-bad's shmsrc reads its socket in its streaming
 * thread) or reads it in one thread and hands it to another through a
 * queue (two hops, as shmsrc's control thread hands frames to its streaming
 * thread).  No pixels, no GStreamer: the floor under any transport's
 * latency on this machine. */

typedef struct
{
  int fd;
  GAsyncQueue *queue;
  gint n;
} FloorReader;

static gpointer
floor_reader (gpointer data)
{
  FloorReader *fr = data;

  for (gint i = 0; i < fr->n; i++) {
    gint64 *sent = g_new (gint64, 1);
    if (read (fr->fd, sent, sizeof *sent) != sizeof *sent) {
      g_free (sent);
      break;
    }
    g_async_queue_push (fr->queue, sent);
  }
  g_async_queue_push (fr->queue, g_new0 (gint64, 1));
  return NULL;
}

static void
wakeup_floor_once (gboolean two_hops, gint n, gint warmup, GArray * lat)
{
  int sv[2];
  pid_t pid;

  if (socketpair (AF_UNIX, SOCK_SEQPACKET, 0, sv) < 0)
    return;
  fflush (stdout);
  fflush (stderr);
  pid = fork ();
  if (pid == 0) {
    struct timespec t;
    gint64 start;

    close (sv[0]);
    clock_gettime (CLOCK_MONOTONIC, &t);
    start = t.tv_sec * G_GINT64_CONSTANT (1000000000) + t.tv_nsec;
    for (gint i = 0; i < n; i++) {
      gint64 due = start + (i + 1) * G_GINT64_CONSTANT (1000000000) / 60;
      gint64 now;
      t.tv_sec = due / 1000000000;
      t.tv_nsec = due % 1000000000;
      clock_nanosleep (CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL);
      now = bench_now_ns ();
      if (write (sv[1], &now, sizeof now) != sizeof now)
        break;
    }
    _exit (0);
  }
  close (sv[1]);
  if (two_hops) {
    FloorReader fr = { sv[0], g_async_queue_new (), n };
    GThread *t = g_thread_new ("floor-reader", floor_reader, &fr);
    for (gint i = 0;; i++) {
      gint64 *sent = g_async_queue_pop (fr.queue);
      gint64 now = bench_now_ns (), d = now - *sent;
      gboolean end = *sent == 0;
      g_free (sent);
      if (end)
        break;
      if (i >= warmup)
        g_array_append_val (lat, d);
    }
    g_thread_join (t);
    g_async_queue_unref (fr.queue);
  } else {
    for (gint i = 0; i < n; i++) {
      gint64 sent, d;
      if (read (sv[0], &sent, sizeof sent) != sizeof sent)
        break;
      d = bench_now_ns () - sent;
      if (i >= warmup)
        g_array_append_val (lat, d);
    }
  }
  close (sv[0]);
  waitpid (pid, NULL, 0);
}

static void
run_wakeup_floor (Bench * b)
{
  gint n = (gint) (b->live_seconds * 60 + 0.5) + 10;

  for (gint hops = 0; hops < 2; hops++) {
    b->floor[hops] = g_array_new (FALSE, FALSE, sizeof (gint64));
    for (gint run = 0; run < b->runs; run++)
      wakeup_floor_once (hops == 1, n, 10, b->floor[hops]);
    g_array_sort (b->floor[hops], cmp_i64);
    g_printerr ("wake-up floor, %d hop%s: p50 %.0f us, p99 %.0f us, max "
        "%.0f us\n", hops + 1, hops ? "s" : "",
        percentile_i64 (b->floor[hops], 0.5) / 1e3,
        percentile_i64 (b->floor[hops], 0.99) / 1e3,
        percentile_i64 (b->floor[hops], 1.0) / 1e3);
  }
}

static gchar *
load_average (void)
{
  gchar *text = NULL;

  if (!g_file_get_contents ("/proc/loadavg", &text, NULL, NULL))
    return g_strdup ("?");
  return g_strstrip (text);
}

/* Report */

static gchar *
cpu_model (guint * cores)
{
  g_autofree gchar *text = NULL;
  gchar *model = NULL;
  gchar **lines;

  *cores = 0;
  if (!g_file_get_contents ("/proc/cpuinfo", &text, NULL, NULL))
    return g_strdup ("unknown");
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i]; i++) {
    if (g_str_has_prefix (lines[i], "processor"))
      (*cores)++;
    if (!model && g_str_has_prefix (lines[i], "model name")) {
      const gchar *colon = strchr (lines[i], ':');
      if (colon)
        model = g_strstrip (g_strdup (colon + 1));
    }
  }
  g_strfreev (lines);
  return model ? model : g_strdup ("unknown");
}

static gchar *
fmt_num (gdouble v, gint digits)
{
  if (v < 0)
    return g_strdup ("–");
  return g_strdup_printf ("%.*f", digits, v);
}

static gchar *
fmt_triple (gdouble a, gdouble b, gdouble c, gint digits)
{
  g_autofree gchar *x = fmt_num (a, digits), *y = fmt_num (b, digits), *z =
      fmt_num (c, digits);
  if (a < 0 && b < 0 && c < 0)
    return g_strdup ("–");
  return g_strdup_printf ("%s / %s / %s", x, y, z);
}

static gdouble
ratio (gdouble a, gdouble b)
{
  return a > 0 && b > 0 ? a / b : -1;
}

static const gchar *
short_status (Case * c)
{
  return c->status ? c->status : "not run";
}

static gchar *
md_escape (const gchar * s)
{
  GString *out = g_string_new (NULL);
  for (; *s; s++) {
    if (*s == '|')
      g_string_append (out, "\\|");
    else if (*s == '\n')
      g_string_append_c (out, ' ');
    else
      g_string_append_c (out, *s);
  }
  return g_string_free (out, FALSE);
}

static void
write_case_row (GString * md, Bench * b, Case * c)
{
  Case *prod = find_case (b, c, KIND_PRODUCER, 0, FALSE);
  Case *ceil_ = c->kind >= KIND_OURS_ZC && !c->live ?
      find_case (b, c, KIND_CEILING, c->slots, FALSE) : NULL;
  gdouble gb = c->frame_bytes / 1e9;
  gboolean has = c->n_ok > 0;
  g_autofree gchar *fps = has ? fmt_triple (c->fps_min, c->fps_med,
      c->fps_max, 1) : g_strdup ("–");
  g_autofree gchar *gbs = has ? fmt_triple (c->fps_min * gb, c->fps_med * gb,
      c->fps_max * gb, 2) : g_strdup ("–");
  g_autofree gchar *rp = fmt_num (has && prod && prod != c ?
      ratio (c->fps_med, prod->fps_med) : -1, 3);
  g_autofree gchar *rc = fmt_num (has && ceil_ ? ratio (c->fps_med,
          ceil_->fps_med) : -1, 3);
  g_autofree gchar *lat = has ? fmt_triple (c->lat_p50, c->lat_p99,
      c->lat_max, 0) : g_strdup ("–");
  g_autofree gchar *cs = fmt_num (has ? c->cpu_snd : -1, 2);
  g_autofree gchar *cr = fmt_num (has ? c->cpu_rcv : -1, 2);
  /* live: the receiver's CPU time per second, as a share of one core */
  g_autofree gchar *crp = fmt_num (has && c->live && c->kind >= KIND_OURS_ZC
      && c->cpu_rcv >= 0 && c->fps_med > 0 ? c->cpu_rcv * c->fps_med / 10 :
      -1, 1);
  g_autofree gchar *rs = fmt_num (has ? c->rss_snd : -1, 0);
  g_autofree gchar *rr = fmt_num (has && c->kind >= KIND_OURS_ZC ?
      c->rss_rcv : -1, 0);
  g_autofree gchar *rend = fmt_num (has && c->render_us >= 0 ? c->render_us :
      -1, 0);
  g_autofree gchar *st = md_escape (short_status (c));
  g_autofree gchar *notes = md_escape (c->notes ? c->notes : "");

  g_string_append_printf (md, "| `%s` | %s | %s | %s | %s | %s | %s | %s | "
      "%s / %s | %s | %s / %s | %s |\n", c->id, st, fps, gbs, rp, rc, lat,
      rend, cs, cr, crp, rs, rr, notes);
}

typedef struct
{
  gdouble worst;
  gchar *worst_id;
  guint n;
  guint n_met;
  GString *missed;
} Target;

static void
target_add (Target * t, const gchar * id, gdouble value, gboolean met)
{
  if (value < 0)
    return;
  t->n++;
  if (met)
    t->n_met++;
  else
    g_string_append_printf (t->missed, "%s`%s` (%.3f)", t->missed->len ?
        ", " : "", id, value);
}

/* A target whose value is a difference (it may be negative). */
static void
target_add_diff (Target * t, const gchar * id, gdouble d, gboolean met)
{
  t->n++;
  if (met)
    t->n_met++;
  else
    g_string_append_printf (t->missed, "%s`%s` (%+.3f)", t->missed->len ?
        ", " : "", id, d);
  if (t->worst_id == NULL || d > t->worst) {
    t->worst = d;
    g_free (t->worst_id);
    t->worst_id = g_strdup (id);
  }
}

static void
target_init (Target * t)
{
  t->worst = -1;
  t->worst_id = NULL;
  t->n = t->n_met = 0;
  t->missed = g_string_new (NULL);
}

static void
target_worst (Target * t, const gchar * id, gdouble value, gboolean lower)
{
  if (value < 0)
    return;
  if (t->worst < 0 || (lower ? value < t->worst : value > t->worst)) {
    t->worst = value;
    g_free (t->worst_id);
    t->worst_id = g_strdup (id);
  }
}

static void
target_write (GString * md, Target * t, const gchar * what)
{
  g_string_append_printf (md, "- **%s**: %s — met on %u of %u rows; worst "
      "%.3f (`%s`).", what, t->n && t->n_met == t->n ? "MET" : "MISSED",
      t->n_met, t->n, t->worst, t->worst_id ? t->worst_id : "–");
  if (t->missed->len)
    g_string_append_printf (md, " Missed on: %s.", t->missed->str);
  g_string_append (md, "\n");
  g_string_free (t->missed, TRUE);
  g_free (t->worst_id);
}

static gboolean
bad_ran (Case * bad)
{
  return bad && bad->n_ok > 0 && g_str_equal (bad->status, "ok");
}

/* A live row of ours against gst-plugins-bad's: p50 and p99 latency at or
 * below (ratio ours/bad, the larger of the two: ≤ 1 is met). */
static void
target_latency (Target * t, Case * c, Case * bad)
{
  gdouble r50, r99, r;

  if (!bad_ran (bad) || c->n_ok == 0)
    return;
  r50 = ratio (c->lat_p50, bad->lat_p50);
  r99 = ratio (c->lat_p99, bad->lat_p99);
  r = MAX (r50, r99);
  target_add (t, c->id, r, r50 >= 0 && r99 >= 0 && r <= 1.0);
  target_worst (t, c->id, r, FALSE);
}

/* Non-live frames/s at or above gst-plugins-bad's (ratio ours/bad). */
static void
target_fps (Target * t, Case * c, Case * bad)
{
  gdouble r;

  if (!bad_ran (bad))
    return;
  r = c->n_ok ? ratio (c->fps_med, bad->fps_med) : -1;
  target_add (t, c->id, r, r >= 1.0);
  target_worst (t, c->id, r, TRUE);
}

/* CPU per frame: the receiver's at or below gst-plugins-bad's receiver's
 * (difference in ms); the sender's within 0.03 ms of the ceiling's. */
static void
target_cpu (Target * rcv, Target * snd, Case * c, Case * bad, Case * ce)
{
  if (bad_ran (bad) && c->n_ok && c->cpu_rcv >= 0 && bad->cpu_rcv >= 0) {
    gdouble d = c->cpu_rcv - bad->cpu_rcv;
    target_add_diff (rcv, c->id, d, d <= 0.0);
  }
  if (snd && ce && ce->n_ok && c->n_ok && c->cpu_snd >= 0 && ce->cpu_snd >= 0) {
    gdouble d = c->cpu_snd - ce->cpu_snd;
    target_add_diff (snd, c->id, d, d <= 0.03);
  }
}

/* control=ring at 1080p, 60 fps: p99 below 1 ms, and the receiver's CPU
 * below 5 % of a core (the larger of p99 / 1 ms and CPU / 5 %). */
static void
target_ring (Target * t, Case * c)
{
  gdouble cpu_pct, r;

  if (c->n_ok == 0 || c->cpu_rcv < 0)
    return;
  cpu_pct = c->cpu_rcv * c->fps_med / 10;
  r = MAX (c->lat_p99 / 1000.0, cpu_pct / 5.0);
  target_add (t, c->id, r, c->lat_p99 < 1000 && cpu_pct < 5);
  target_worst (t, c->id, r, FALSE);
}

static void
write_targets (GString * md, Bench * b)
{
  Target lat, lat_ns, cpu_live, cpu_live_ns, ring, fps, zc, cpu_rcv, cpu_snd,
      cp, step;

  target_init (&lat);
  target_init (&lat_ns);
  target_init (&cpu_live);
  target_init (&cpu_live_ns);
  target_init (&ring);
  target_init (&fps);
  target_init (&zc);
  target_init (&cpu_rcv);
  target_init (&cpu_snd);
  target_init (&cp);
  target_init (&step);

  for (guint i = 0; i < b->cases->len; i++) {
    Case *c = g_ptr_array_index (b->cases, i);
    Case *prod = find_case (b, c, KIND_PRODUCER, 0, FALSE);
    Case *bad = find_case (b, c, KIND_BAD, c->slots, c->keep);
    Case *ce = find_case (b, c, KIND_CEILING, c->slots, FALSE);
    Memcpy *m = find_memcpy (b, c->size, c->format, 1, FALSE);
    gboolean k48 = c->slots == 4 || c->slots == 8;

    if (c->kind == KIND_OURS_ZC && c->live && k48) {
      target_latency (&lat, c, bad);
      target_cpu (&cpu_live, NULL, c, bad, NULL);
    }
    if (c->kind == KIND_OURS_NO_SPIN && c->live && k48) {
      target_latency (&lat_ns, c, bad);
      target_cpu (&cpu_live_ns, NULL, c, bad, NULL);
    }
    if (c->kind == KIND_OURS_RING && c->live && c->size->height == 1080)
      target_ring (&ring, c);
    if (c->kind == KIND_OURS_ZC && !c->live) {
      target_fps (&fps, c, bad);
      if (k48) {
        gdouble r = ce && c->n_ok ? ratio (c->fps_med, ce->fps_med) : -1;
        target_add (&zc, c->id, r, r >= 0.9);
        target_worst (&zc, c->id, r, TRUE);
        target_cpu (&cpu_rcv, &cpu_snd, c, bad, ce);
      }
    }
    if (c->kind == KIND_OURS_COPY && !c->live && prod && m && c->n_ok) {
      gdouble mfps = m->med * 1e9 / c->frame_bytes;
      gdouble bound = 1.0 / (1.0 / prod->fps_med + 1.0 / mfps);
      gdouble r = ratio (c->fps_med, bound);

      target_add (&cp, c->id, r, r >= 0.9);
      target_worst (&cp, c->id, r, TRUE);
    }
    if (c->kind == KIND_COPY_STEP && m && c->n_ok) {
      gdouble copy_gbps = c->render_us > 0 ?
          c->frame_bytes / (c->render_us * 1e3) : -1;
      gdouble rs = ratio (copy_gbps, m->med);

      target_add (&step, c->id, rs, rs >= 0.9);
      target_worst (&step, c->id, rs, TRUE);
    }
  }

  g_string_append (md, "## Targets\n\n");
  g_string_append (md, "From the table above (medians over the runs; "
      "latency percentiles over the frames of all runs). Rows where "
      "gst-plugins-bad hung or failed are left out of the comparisons with "
      "it.\n\n");
  target_write (md, &lat, "60 fps latency, p50 and p99 at or below "
      "gst-plugins-bad's, zero-copy, K = 4 and 8 (value: the larger of "
      "ours/bad at p50 and at p99)");
  target_write (md, &lat_ns, "the same with spin-time=0 (ours-no-spin)");
  target_write (md, &ring, "control=ring, 1080p, 60 fps: p99 below 1 ms and "
      "the receiver's CPU below 5 % of a core (value: the larger of p99 / "
      "1 ms and CPU / 5 %)");
  target_write (md, &fps, "non-live zero-copy frames/s at or above "
      "gst-plugins-bad's (value: ours/bad)");
  target_write (md, &zc, "non-live zero-copy ≥ 0.9 × the fair ceiling, "
      "K = 4 and 8 (value: ours/ceiling)");
  target_write (md, &cpu_rcv, "receiver CPU per frame at or below "
      "gst-plugins-bad's receiver, non-live zero-copy, K = 4 and 8 (value: "
      "ours − bad, ms)");
  target_write (md, &cpu_snd, "sender CPU per frame within 0.03 ms of the "
      "fair ceiling's, non-live zero-copy, K = 4 and 8 (value: ours − "
      "ceiling, ms)");
  target_write (md, &cpu_live, "receiver CPU per frame at or below "
      "gst-plugins-bad's receiver at 60 fps, zero-copy, K = 4 and 8 (value: "
      "ours − bad, ms)");
  target_write (md, &cpu_live_ns, "the same with spin-time=0 "
      "(ours-no-spin)");
  target_write (md, &cp, "copy path ≥ 0.9 × 1/(1/producer + 1/memcpy) end "
      "to end, non-live");
  target_write (md, &step, "copy step alone ≥ 0.9 × memcpy bandwidth "
      "(frame bytes / median time of shmsink's render on the copy path with "
      "no receiver to wait for, over memcpy between two buffers; see “Copy "
      "step alone” below)");
  g_string_append (md, "\n");
}

static void
write_copy_step (GString * md, Bench * b)
{
  g_string_append (md, "### Copy step alone\n\n");
  g_string_append (md, "What is measured: the time shmsink spends on one "
      "frame on its copy path, in the process and with the pipeline of the "
      "copy-path rows, but with no receiver (`wait-for-receiver=false`, "
      "the `ours-copy-step` rows), so that it never waits for a slot: "
      "`benchtimer`, right before shmsink, times each push into it, i.e. "
      "shmsink's render (claim the next slot, copy the frame into it with "
      "`gst_buffer_extract()`, count it as unsent). Copy GB/s = frame bytes "
      "/ median render time. The same render time with a receiver (copy-path "
      "rows, no-keep) adds the waits for a free slot and the message. "
      "memcpy columns: between two buffers (the limit the target names), "
      "from one buffer into K buffers in turn, and into K slots of a shared "
      "/dev/shm mapping in turn (what shmsink writes into).\n\n");
  g_string_append (md,
      "| case | render µs alone / with receiver | copy GB/s | "
      "memcpy GB/s 1→1 | 1→K | 1→K /dev/shm | × memcpy 1→1 | × 1→K "
      "/dev/shm |\n");
  g_string_append (md, "|---|---|---|---|---|---|---|---|\n");
  for (guint i = 0; i < b->cases->len; i++) {
    Case *c = g_ptr_array_index (b->cases, i);
    Case *cp;
    Memcpy *m1, *mk, *ms;
    gdouble gbps;

    if (c->kind != KIND_COPY_STEP || c->n_ok == 0)
      continue;
    cp = find_case (b, c, KIND_OURS_COPY, c->slots, FALSE);
    m1 = find_memcpy (b, c->size, c->format, 1, FALSE);
    mk = find_memcpy (b, c->size, c->format, c->slots, FALSE);
    ms = find_memcpy (b, c->size, c->format, c->slots, TRUE);
    gbps = c->render_us > 0 ? c->frame_bytes / (c->render_us * 1e3) : -1;
    g_string_append_printf (md, "| `%s` | %.0f / %.0f | %.2f | %.2f | %.2f | "
        "%.2f | %.3f | %.3f |\n", c->id, c->render_us,
        cp && cp->n_ok ? cp->render_us : -1, gbps, m1 ? m1->med : -1,
        mk ? mk->med : -1, ms ? ms->med : -1,
        ratio (gbps, m1 ? m1->med : -1), ratio (gbps, ms ? ms->med : -1));
  }
  g_string_append (md, "\n");
}

/* System calls: a few pipelines, one 1000-frame and one 100-frame run
 * each, every child process under strace -f -c. */

#define SYS_FRAMES 1000
#define SYS_FRAMES_SHORT 100
#define SYS_TOP 4

typedef struct
{
  gchar name[48];
  guint64 calls;
} SysCount;

static gint
cmp_sys_count (gconstpointer a, gconstpointer b)
{
  const SysCount *x = a, *y = b;

  if (x->calls != y->calls)
    return x->calls > y->calls ? -1 : 1;
  return strcmp (x->name, y->name);
}

/* strace -c's summary: a header "% time seconds usecs/call calls errors
 * syscall", rows (the errors column may be empty), dashes, a "total" row;
 * one table per personality when there are several: they add up.  The
 * system calls by calls, most first, and the total; NULL when the file
 * holds no summary. */
static GArray *
parse_strace (const gchar * file, guint64 * total)
{
  g_autofree gchar *text = NULL;
  gchar **lines;
  GArray *a;
  gboolean in_table = FALSE, have_total = FALSE;

  *total = 0;
  if (!file || !g_file_get_contents (file, &text, NULL, NULL))
    return NULL;
  a = g_array_new (FALSE, TRUE, sizeof (SysCount));
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i]; i++) {
    gchar *f[8];
    guint n = 0;
    gchar *save = NULL, *tok;
    guint64 calls;

    g_strstrip (lines[i]);
    if (g_str_has_prefix (lines[i], "% time")) {
      in_table = TRUE;
      continue;
    }
    if (!in_table || !lines[i][0] || lines[i][0] == '-')
      continue;
    for (tok = strtok_r (lines[i], " \t", &save); tok && n < G_N_ELEMENTS (f);
        tok = strtok_r (NULL, " \t", &save))
      f[n++] = tok;
    if (n < 5)
      continue;
    calls = g_ascii_strtoull (f[3], NULL, 10);
    if (g_str_equal (f[n - 1], "total")) {
      *total += calls;
      have_total = TRUE;
      in_table = FALSE;
      continue;
    }
    {
      guint j;
      for (j = 0; j < a->len; j++) {
        SysCount *sc = &g_array_index (a, SysCount, j);
        if (g_str_equal (sc->name, f[n - 1])) {
          sc->calls += calls;
          break;
        }
      }
      if (j == a->len) {
        SysCount sc = { {0}, calls };
        g_strlcpy (sc.name, f[n - 1], sizeof sc.name);
        g_array_append_val (a, sc);
      }
    }
  }
  g_strfreev (lines);
  if (!have_total) {
    g_array_unref (a);
    return NULL;
  }
  g_array_sort (a, cmp_sys_count);
  return a;
}

static void
build_sys_cases (Bench * b)
{
  const Size *size = opt_quick ? &sizes_quick[0] : &sizes_full[0];
  const Kind kinds[] = { KIND_OURS_ZC, KIND_OURS_NO_SPIN, KIND_OURS_RING,
    KIND_BAD
  };

  b->sys_cases = g_ptr_array_new ();
  for (gint live = 1; live >= 0; live--) {
    for (guint k = 0; k < G_N_ELEMENTS (kinds); k++) {
      Case *c;

      if (kinds[k] == KIND_OURS_NO_SPIN && !live)
        continue;
      c = case_new (kinds[k], size, "BGRx", live, 4, FALSE);

      c->frames = SYS_FRAMES;
      c->warmup = live ? 30 : 20;
      g_ptr_array_add (b->sys_cases, c);
    }
  }
}

static void
run_syscalls (Bench * b, gint64 t_start)
{
  if (!b->strace)
    return;
  b->tracing = TRUE;
  for (guint i = 0; i < b->sys_cases->len; i++) {
    Case *c = g_ptr_array_index (b->sys_cases, i);

    /* the run, then the short run whose counts are taken off it */
    for (guint k = 0; k < 2; k++) {
      Run *r;

      c->frames = k ? SYS_FRAMES_SHORT : SYS_FRAMES;
      r = run_case (b, c, k);
      g_ptr_array_add (c->runs, r);
      g_printerr ("[strace %u/%u %.0fs] %s, %d frames: %s, %"
          G_GUINT64_FORMAT " received\n", i + 1, b->sys_cases->len,
          (bench_now_ns () - t_start) / 1e9, c->id, c->frames, r->status,
          r->rcv_frames);
      if (!r->ok)
        break;
    }
    c->frames = SYS_FRAMES;
  }
  b->tracing = FALSE;
}

static guint64
sys_calls_of (GArray * a, const gchar * name)
{
  for (guint i = 0; i < a->len; i++)
    if (g_str_equal (g_array_index (a, SysCount, i).name, name))
      return g_array_index (a, SysCount, i).calls;
  return 0;
}

typedef struct
{
  const gchar *name;
  gdouble per_frame;
} SysDiff;

static gint
cmp_sys_diff (gconstpointer a, gconstpointer b)
{
  const SysDiff *x = a, *y = b;

  if (x->per_frame != y->per_frame)
    return x->per_frame > y->per_frame ? -1 : 1;
  return strcmp (x->name, y->name);
}

/* One side's cells: calls per frame, and the SYS_TOP system calls made
 * most per frame, from the summaries of the run (@file) and of the short
 * run (@file_short), @frames apart. */
static void
sys_side (const gchar * file, const gchar * file_short, gint64 frames,
    gchar ** per_frame, gchar ** top)
{
  guint64 total, total_short;
  GArray *a = parse_strace (file, &total);
  GArray *s = parse_strace (file_short, &total_short);
  GArray *d;
  GString *t;

  if (!a || !s || frames <= 0) {
    *per_frame = g_strdup ("–");
    *top = g_strdup (a && s ? "–" : "no strace summary");
    if (a)
      g_array_unref (a);
    if (s)
      g_array_unref (s);
    return;
  }
  *per_frame = g_strdup_printf ("%.2f", ((gdouble) total - total_short) /
      frames);
  d = g_array_new (FALSE, FALSE, sizeof (SysDiff));
  for (guint i = 0; i < a->len; i++) {
    SysCount *sc = &g_array_index (a, SysCount, i);
    SysDiff x = { sc->name, ((gdouble) sc->calls -
          sys_calls_of (s, sc->name)) / frames
    };
    g_array_append_val (d, x);
  }
  g_array_sort (d, cmp_sys_diff);
  t = g_string_new (NULL);
  for (guint i = 0; i < d->len && i < SYS_TOP; i++) {
    SysDiff *x = &g_array_index (d, SysDiff, i);
    g_string_append_printf (t, "%s%s %.2f", i ? ", " : "", x->name,
        x->per_frame);
  }
  *top = g_string_free (t, FALSE);
  g_array_unref (d);
  g_array_unref (a);
  g_array_unref (s);
}

static void
write_syscalls (GString * md, Bench * b)
{
  Case *c0 = b->sys_cases->len ? g_ptr_array_index (b->sys_cases, 0) : NULL;

  g_string_append (md, "## System calls per frame\n\n");
  if (!b->strace) {
    g_string_append (md, "strace was not found (not in PATH, not "
        "/usr/bin/strace): no system call counts.\n\n");
    return;
  }
  g_string_append_printf (md, "`strace -f -c` over a %d-frame run of each "
      "pipeline (%s BGRx, K = 4, no-keep; live: %d frames at 60 fps), both "
      "processes, each under a strace of its own (every thread, from the "
      "start of the process to its end). Start-up and shut-down (loading "
      "GStreamer and the plugin, building and stopping the pipeline: about "
      "a thousand calls per process) would add about one call per frame, "
      "so the same pipeline runs again with %d frames and its counts are "
      "taken off: calls per frame = (calls of the %d-frame run − calls of "
      "the %d-frame run) / (frames the receiver received in the one − in "
      "the other, the frames column). How long each process waits for the "
      "other at the start varies from run to run, and so do the calls it "
      "makes meanwhile: a few tenths per frame either way are noise (a "
      "negative value too). The benchmark's own probes make no "
      "system call per frame in these runs (their getrusage is off). The "
      "counts show the waking discipline: gst-shm wakes the other side (a "
      "futex wake) only when it sleeps, gst-plugins-bad sends a socket "
      "message per frame each way. strace slows every system call down, so "
      "the counts are what matters here, not the time: these runs give no "
      "frames/s or latency. Top %d: the system calls made most, with their "
      "calls per frame. A run whose receiver stops seeing frames is a row "
      "that says “hang”.\n\n", SYS_FRAMES, c0 ? c0->size->name : "?",
      SYS_FRAMES, SYS_FRAMES_SHORT, SYS_FRAMES, SYS_FRAMES_SHORT, SYS_TOP);
  g_string_append (md, "| case | status | frames | sender calls/frame | "
      "sender top 4 | receiver calls/frame | receiver top 4 |\n"
      "|---|---|---|---|---|---|---|\n");
  for (guint i = 0; i < b->sys_cases->len; i++) {
    Case *c = g_ptr_array_index (b->sys_cases, i);
    Run *r = c->runs->len ? g_ptr_array_index (c->runs, 0) : NULL;
    Run *rs = c->runs->len > 1 ? g_ptr_array_index (c->runs, 1) : NULL;
    Run *bad_run = !r || !r->ok ? r : rs && !rs->ok ? rs : NULL;
    g_autofree gchar *st = NULL, *frames = NULL;
    g_autofree gchar *sf = NULL, *stop = NULL, *rf = NULL, *rtop = NULL;

    if (!r)
      st = g_strdup ("not run");
    else if (bad_run)
      st = g_strdup_printf ("%s (%d-frame run)", bad_run->status,
          bad_run == r ? SYS_FRAMES : SYS_FRAMES_SHORT);
    else
      st = g_strdup ("ok");
    if (r && rs && !bad_run) {
      gint64 n = (gint64) r->rcv_frames - (gint64) rs->rcv_frames;

      frames = g_strdup_printf ("%" G_GUINT64_FORMAT " − %" G_GUINT64_FORMAT,
          r->rcv_frames, rs->rcv_frames);
      sys_side (r->snd_trace, rs->snd_trace, n, &sf, &stop);
      sys_side (r->rcv_trace, rs->rcv_trace, n, &rf, &rtop);
    } else {
      frames = g_strdup ("–");
      sf = g_strdup ("–");
      stop = g_strdup ("–");
      rf = g_strdup ("–");
      rtop = g_strdup ("–");
    }
    {
      g_autofree gchar *est = md_escape (st);
      g_string_append_printf (md, "| `%s` | %s | %s | %s | %s | %s | %s |\n",
          c->id, est, frames, sf, stop, rf, rtop);
    }
  }
  g_string_append (md, "\n");
}

/* @path, relative to the current directory when it lies below it (the
 * report names no directory of the machine that wrote it) */
static const gchar *
display_path (const gchar * path)
{
  g_autofree gchar *cwd = g_get_current_dir ();
  gsize n = strlen (cwd);

  if (path && strncmp (path, cwd, n) == 0 && path[n] == '/')
    return path + n + 1;
  return path;
}

static void
write_report (Bench * b, const gchar * command, gint64 t_start,
    const gchar * load_start, const gchar * load_end)
{
  GString *md = g_string_new (NULL);
  guint cores;
  g_autofree gchar *model = cpu_model (&cores);
  g_autoptr (GDateTime) now = g_date_time_new_now_local ();
  g_autofree gchar *date = g_date_time_format (now, "%Y-%m-%d %H:%M %Z");
  struct utsname un;
  g_autoptr (GError) err = NULL;
  const gchar *group = NULL;

  uname (&un);
  g_string_append (md, "# gst-shm benchmark results\n\n");
  g_string_append_printf (md, "- Date: %s\n", date);
  g_string_append_printf (md, "- CPU: %s, %u cores (/proc/cpuinfo)\n", model,
      cores);
  g_string_append_printf (md, "- Kernel: %s %s %s\n", un.sysname, un.release,
      un.machine);
  g_string_append_printf (md, "- GStreamer: %u.%u.%u\n",
      GST_VERSION_MAJOR, GST_VERSION_MINOR, GST_VERSION_MICRO);
  g_string_append_printf (md, "- gst-shm: %s\n", b->plugin_ours ?
      display_path (b->plugin_ours) : "?");
  g_string_append_printf (md, "- gst-plugins-bad: %s\n", b->plugin_bad ?
      b->plugin_bad : b->bad_error);
  if (opt_source)
    g_string_append_printf (md, "- Source: %s\n", opt_source);
  g_string_append_printf (md, "- Command: `%s`\n", command);
  g_string_append_printf (md, "- Mode: %s; %d run%s per row; wall time %.0f "
      "s\n", opt_quick ? "quick" : "full", b->runs, b->runs > 1 ? "s" : "",
      (bench_now_ns () - t_start) / 1e9);
  g_string_append_printf (md, "- Load average (/proc/loadavg) at the start: "
      "%s; at the end: %s\n\n", load_start, load_end ? load_end : "?");

  g_string_append (md, "## How it is measured\n\n"
      "Every pipeline runs in a child process of its own; gst-shm's with "
      "GST_PLUGIN_PATH_1_0 set to its build directory, gst-plugins-bad's "
      "with no plugin path (each with a registry of its own; each child "
      "checks which file its shmsink comes from).\n\n"
      "- **producer**: `videotestsrc pattern=solid-color ! video/x-raw,"
      "format=F,width=W,height=H,framerate=0/1 (live: is-live=true, 60/1) ! "
      "benchtimer ! fakesink sync=false enable-last-sample=false` — one "
      "buffer reused.\n"
      "- **ceiling** (K): the same into `benchpoolsink`, which proposes a "
      "GstVideoBufferPool of exactly K buffers (min = max = K), so the "
      "producer rotates through K frames as it does through K slots.\n"
      "- **ours-zero-copy**: `… ! benchtimer ! shmsink path=… num-slots=K "
      "sync=false` → `shmsrc path=… is-live=(live) ! fakesink sync=false "
      "enable-last-sample=(keep)`; videotestsrc renders into shmsink's "
      "pool.\n"
      "- **ours-ring**: ours-zero-copy with the in-band control rings of "
      "the area instead of the unix socket: `shmsink … control=ring "
      "size=(area bytes)` → `shmsrc … control=ring` (not counted in the "
      "targets).\n"
      "- **ours-no-spin** (live, K = 4 and 8): ours-zero-copy with "
      "`shmsrc … spin-time=0`: the receiver always sleeps until the sender "
      "wakes it (the default spins up to 500 µs around each frame's likely "
      "arrival; see docs/elements.md).\n"
      "- **ours-copy**: the same, but a probe on videotestsrc's source pad "
      "drops the ALLOCATION query, so it renders into a pool of its own "
      "and shmsink copies every frame (see “shmsink copied” in the "
      "notes).\n"
      "- **bad**: gst-plugins-bad's `shmsink socket-path=… shm-size=K×frame "
      "wait-for-connection=true sync=false enable-last-sample=false` → "
      "`shmsrc socket-path=… is-live=true do-timestamp=true ! video/x-raw,"
      "… ! fakesink sync=false enable-last-sample=(keep)`; its shmsink "
      "offers its allocator upstream, so it is zero-copy on the sender "
      "side too.\n"
      "- **keep-last / no-keep**: the receiver's fakesink keeps its last "
      "frame (enable-last-sample=true, fakesink's default) or not.\n\n"
      "frames/s: frames from the consumer's point of view (the receiver's "
      "shmsrc source pad; the sink for producer and ceiling), between frame "
      "`warmup` and the last, per run: min / median / max over the runs. "
      "GB/s = frames/s × frame bytes. × producer, × ceiling: ratio of "
      "medians (ceiling with the same K). Latency: a probe on shmsink's "
      "sink pad writes CLOCK_MONOTONIC into the first 16 bytes of the "
      "frame's pixels; a probe on shmsrc's source pad reads it when the "
      "frame is pushed (p50 / p99 / max over the frames of all runs; in "
      "non-live rows this is mostly time spent waiting for a free slot). "
      "render µs: median time of the push into the sender's sink. CPU "
      "ms/frame: getrusage (user + system, all threads) of each process "
      "between the same two frames, over the frames; rcv CPU % of a core "
      "(live rows with a receiver): receiver CPU ms/frame × frames/s / 10, "
      "the medians; peak RSS: ru_maxrss "
      "of each process (it counts the shared pages a process touched). "
      "A receiver that sees no frame for a while is stopped and the row "
      "says “hang”; only the runs that passed count in the numbers.\n\n");
  {
    Case *c0 = b->cases->len ? g_ptr_array_index (b->cases, 0) : NULL;
    GString *frames = g_string_new (NULL);
    for (guint i = 0; i < b->cases->len; i++) {
      Case *c = g_ptr_array_index (b->cases, i);
      if (c->kind == KIND_PRODUCER)
        g_string_append_printf (frames, "%s%s/%s/%s %d (warmup %d)",
            frames->len ? ", " : "", c->size->name, c->format,
            c->live ? "live60" : "non-live", c->frames, c->warmup);
    }
    if (c0)
      g_string_append_printf (md, "Frames per run: %s.\n\n", frames->str);
    g_string_free (frames, TRUE);
  }

  g_string_append (md, "## memcpy limit\n\n");
  g_string_append (md, "One frame copied with memcpy() between buffers "
      "allocated and touched beforehand, again and again for 0.2 s; min / "
      "median / max GB/s over the runs (one at the start of each pass over "
      "the cases). 1 → K: from one buffer into K buffers in turn; "
      "/dev/shm slots: into K slots of a file in /dev/shm mapped shared, as "
      "shmsink's area is.\n\n");
  g_string_append (md, "| frame | bytes | copy | GB/s min / med / max | "
      "frames/s (median) |\n|---|---|---|---|---|\n");
  for (guint i = 0; i < b->memcpys->len; i++) {
    Memcpy *m = g_ptr_array_index (b->memcpys, i);

    if (m->n == 0)
      continue;
    qsort (m->gbps, m->n, sizeof (gdouble), cmp_double);
    g_string_append_printf (md, "| %s %s | %" G_GUINT64_FORMAT " | 1 → %d%s "
        "| %.2f / %.2f / %.2f | %.0f |\n", m->size->name, m->format, m->bytes,
        m->ndst, m->shm ? " (/dev/shm slots)" : "", m->gbps[0], m->med,
        m->gbps[m->n - 1], m->med * 1e9 / m->bytes);
  }
  if (b->floor[0] && b->floor[1]) {
    g_string_append (md, "\n## Wake-up floor at 60 fps\n\n"
        "No pixels and no GStreamer: one process writes CLOCK_MONOTONIC into "
        "a unix socket every 1/60 s, the other reads it in the thread that "
        "measures (1 hop), or in a thread that hands it to the measuring "
        "one through a GAsyncQueue (2 hops, like a control thread feeding a "
        "streaming thread). Latency µs over the frames of all runs: the "
        "floor of any transport's latency on this machine.\n\n"
        "| hops | samples | p50 | p99 | max |\n|---|---|---|---|---|\n");
    for (gint h = 0; h < 2; h++)
      g_string_append_printf (md, "| %d | %u | %.0f | %.0f | %.0f |\n", h + 1,
          b->floor[h]->len, percentile_i64 (b->floor[h], 0.5) / 1e3,
          percentile_i64 (b->floor[h], 0.99) / 1e3,
          percentile_i64 (b->floor[h], 1.0) / 1e3);
  }
  g_string_append (md, "\n## Results\n\n");
  for (guint i = 0; i < b->cases->len; i++) {
    Case *c = g_ptr_array_index (b->cases, i);
    g_autofree gchar *g = g_strdup_printf ("%s %s %s", c->size->name,
        c->format, c->live ? "live 60 fps" : "non-live");

    if (!group || !g_str_equal (group, g)) {
      g_free ((gchar *) group);
      group = g_strdup (g);
      g_string_append_printf (md, "\n### %s\n\n", g);
      g_string_append (md, "| case | status | frames/s min / med / max | "
          "GB/s min / med / max | × producer | × ceiling | latency µs p50 / "
          "p99 / max | render µs | CPU ms/frame snd / rcv | rcv CPU % of a "
          "core | peak RSS MB snd / rcv | notes |\n");
      g_string_append (md, "|---|---|---|---|---|---|---|---|---|---|---|---|"
          "\n");
    }
    write_case_row (md, b, c);
  }
  g_free ((gchar *) group);
  g_string_append (md, "\n");
  write_targets (md, b);
  write_copy_step (md, b);
  if (b->syscalls)
    write_syscalls (md, b);

  if (opt_notes) {
    g_autofree gchar *notes = NULL;
    if (g_file_get_contents (opt_notes, &notes, NULL, NULL)) {
      g_string_append (md, notes);
      if (md->len && md->str[md->len - 1] != '\n')
        g_string_append_c (md, '\n');
    }
  }

  if (!g_file_set_contents (opt_output, md->str, md->len, &err))
    g_printerr ("Could not write %s: %s\n", opt_output, err->message);
  g_string_free (md, TRUE);
}

static void
print_summary (Bench * b)
{
  g_print ("%-46s %-8s %10s %7s %7s %9s\n", "case", "status", "frames/s",
      "x prod", "x ceil", "p99 us");
  for (guint i = 0; i < b->cases->len; i++) {
    Case *c = g_ptr_array_index (b->cases, i);
    Case *prod = find_case (b, c, KIND_PRODUCER, 0, FALSE);
    Case *ce = c->kind >= KIND_OURS_ZC && !c->live ?
        find_case (b, c, KIND_CEILING, c->slots, FALSE) : NULL;
    g_autofree gchar *fps = NULL, *rp = NULL, *rc = NULL, *p99 = NULL;
    gchar st[9];

    if (!c->status)
      continue;
    g_strlcpy (st, c->status, sizeof st);
    if (strchr (st, ':'))
      *strchr (st, ':') = '\0';
    fps = c->n_ok ? g_strdup_printf ("%.1f", c->fps_med) : g_strdup ("-");
    rp = c->n_ok && prod && prod != c && prod->n_ok ?
        g_strdup_printf ("%.3f", ratio (c->fps_med, prod->fps_med)) :
        g_strdup ("-");
    rc = c->n_ok && ce && ce->n_ok ?
        g_strdup_printf ("%.3f", ratio (c->fps_med, ce->fps_med)) :
        g_strdup ("-");
    p99 = c->n_ok && c->lat_p99 >= 0 ? g_strdup_printf ("%.0f", c->lat_p99) :
        g_strdup ("-");
    g_print ("%-46s %-8s %10s %7s %7s %9s\n", c->id, st, fps, rp, rc, p99);
  }
}

static void
remove_tree (const gchar * dir)
{
  GDir *d = g_dir_open (dir, 0, NULL);
  const gchar *name;

  if (!d)
    return;
  while ((name = g_dir_read_name (d))) {
    g_autofree gchar *p = g_build_filename (dir, name, NULL);
    if (g_file_test (p, G_FILE_TEST_IS_DIR)
        && !g_file_test (p, G_FILE_TEST_IS_SYMLINK))
      remove_tree (p);
    else
      g_unlink (p);
  }
  g_dir_close (d);
  g_rmdir (dir);
}

static gboolean
preflight (Bench * b, const gchar * transport, gchar ** plugin, gchar ** error)
{
  g_autofree gchar *res = g_strdup_printf ("%s/inspect-%s.result", b->tmpdir,
      transport);
  g_autofree gchar *log = g_strdup_printf ("%s/inspect-%s.log", b->tmpdir,
      transport);
  GPtrArray *args = child_args (b, NULL, "inspect", transport, res);
  Proc p = { 0, };
  GKeyFile *kf;
  g_autofree gchar *st = NULL;
  gchar *saved_perf = opt_perf;

  opt_perf = NULL;
  spawn (b, &p, args, g_str_equal (transport, "bad") ? b->env_bad :
      b->env_ours, log, "inspect", NULL);
  opt_perf = saved_perf;
  g_ptr_array_unref (args);
  proc_finish (&p, 120000);
  kf = read_result (res, &p, log, error);
  if (!kf)
    return FALSE;
  st = kf_string (kf, "status");
  *plugin = kf_string (kf, "plugin");
  if (!g_str_equal (st, "ok")) {
    *error = kf_string (kf, "message");
    g_key_file_free (kf);
    return FALSE;
  }
  g_key_file_free (kf);
  return TRUE;
}

static gint
run_bench (gint argc, gchar ** argv)
{
  Bench b = { 0, };
  g_autofree gchar *reg_ours = NULL, *reg_bad = NULL;
  g_autofree gchar *err_ours = NULL;
  g_autoptr (GString) command = g_string_new (NULL);
  gint64 t_start = bench_now_ns ();
  guint total = 0, done = 0;
  g_autofree gchar *load_start = load_average ();
  g_autofree gchar *load_end = NULL;

  b.runs = opt_runs > 0 ? opt_runs : opt_quick ? 1 : 3;
  b.live_seconds = opt_live_seconds > 0 ? opt_live_seconds :
      opt_quick ? 0.5 : 1.25;
  b.stall_ms = opt_quick ? 2000 : 3000;
  b.first_ms = 10000;
  if (!opt_output)
    opt_output = g_strdup ("results.md");
  if (opt_command) {
    g_string_assign (command, opt_command);
  } else {
    for (gint i = 0; i < argc; i++)
      g_string_append_printf (command, "%s%s", i ? " " : "", argv[i]);
  }

  build_cases (&b);
  /* the system call pass: by default in a full run only */
  b.syscalls = !opt_no_syscalls && (opt_syscalls || (!opt_quick && !opt_only));
  build_sys_cases (&b);
  if (opt_list) {
    for (guint i = 0; i < b.cases->len; i++)
      g_print ("%s\n", ((Case *) g_ptr_array_index (b.cases, i))->id);
    return 0;
  }

  b.plugin_dir = opt_plugin_dir ? g_strdup (opt_plugin_dir) :
      g_strdup (g_getenv ("GST_PLUGIN_PATH_1_0"));
  if (!b.plugin_dir || !b.plugin_dir[0]) {
    g_printerr ("No plugin directory: give --plugin-dir (the directory of "
        "gst-shm's libgstshm.so).\n");
    return 2;
  }
  b.self = g_file_read_link ("/proc/self/exe", NULL);
  b.tmpdir = g_strdup ("/dev/shm/gst-shm-bench-XXXXXX");
  if (!b.self || !g_mkdtemp (b.tmpdir)) {
    g_printerr ("Could not create a directory in /dev/shm: %s\n",
        g_strerror (errno));
    return 2;
  }
  if (opt_perf)
    g_mkdir_with_parents (opt_perf, 0755);
  reg_ours = g_build_filename (b.tmpdir, "registry-ours.bin", NULL);
  reg_bad = g_build_filename (b.tmpdir, "registry-bad.bin", NULL);
  b.env_ours = child_env (reg_ours, b.plugin_dir);
  b.env_bad = child_env (reg_bad, NULL);

  if (!preflight (&b, "ours", &b.plugin_ours, &err_ours)) {
    g_printerr ("gst-shm's plugin is not usable: %s\n", err_ours);
    remove_tree (b.tmpdir);
    return 2;
  }
  if (!preflight (&b, "bad", &b.plugin_bad, &b.bad_error))
    g_printerr ("gst-plugins-bad's shm elements are not usable: %s\n",
        b.bad_error);
  g_printerr ("gst-shm: %s\ngst-plugins-bad: %s\n", b.plugin_ours,
      b.plugin_bad ? b.plugin_bad : b.bad_error);

  setup_memcpy (&b);
  if (b.syscalls) {
    b.strace = g_find_program_in_path ("strace");
    if (!b.strace && g_file_test ("/usr/bin/strace", G_FILE_TEST_IS_EXECUTABLE))
      b.strace = g_strdup ("/usr/bin/strace");
    if (!b.strace)
      g_printerr ("strace not found: no system call counts\n");
  }

  for (guint i = 0; i < b.cases->len; i++) {
    Case *c = g_ptr_array_index (b.cases, i);
    if (!opt_only || strstr (c->id, opt_only))
      total++;
  }
  /* Run 1 of every case, then run 2 of every case...: a slow moment of
   * the machine spreads over all the rows instead of skewing one. */
  total *= b.runs;
  for (gint run = 0; run < b.runs; run++) {
    memcpy_pass (&b);
    for (guint i = 0; i < b.cases->len; i++) {
      Case *c = g_ptr_array_index (b.cases, i);
      Run *r;

      if (opt_only && !strstr (c->id, opt_only))
        continue;
      done++;
      /* a case that hung or failed once says so: no more runs of it */
      if (c->runs->len && !((Run *) g_ptr_array_index (c->runs,
                  c->runs->len - 1))->ok)
        continue;
      r = run_case (&b, c, run);
      g_ptr_array_add (c->runs, r);
      g_printerr ("[%u/%u %.0fs] %s run %d: %s, %.1f frames/s\n", done,
          total, (bench_now_ns () - t_start) / 1e9, c->id, run + 1,
          r->status, r->fps);
    }
  }
  for (guint i = 0; i < b.cases->len; i++) {
    Case *c = g_ptr_array_index (b.cases, i);
    if (c->runs->len)
      aggregate (c);
  }
  if (b.syscalls)
    run_syscalls (&b, t_start);
  run_wakeup_floor (&b);
  load_end = load_average ();

  write_report (&b, command->str, t_start, load_start, load_end);
  print_summary (&b);
  g_print ("\nReport: %s (%.0f s)\n", opt_output,
      (bench_now_ns () - t_start) / 1e9);
  remove_tree (b.tmpdir);
  return 0;
}

gint
main (gint argc, gchar ** argv)
{
  GOptionContext *ctx;
  g_autoptr (GError) err = NULL;
  gchar **saved = g_strdupv (argv);
  gint ret;

  ctx = g_option_context_new ("- benchmark gst-shm against memcpy, the "
      "producer alone and gst-plugins-bad's shm elements");
  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &err)) {
    g_printerr ("%s\n", err->message);
    return 2;
  }
  g_option_context_free (ctx);

  if (opt_child) {
    BenchChildOptions o = {
      .role = opt_child,
      .transport = opt_transport,
      .format = opt_format,
      .width = opt_width,
      .height = opt_height,
      .live = opt_live,
      .frames = opt_frames,
      .warmup = opt_warmup,
      .warmup_ms = opt_warmup_ms,
      .slots = opt_slots,
      .keep_last = opt_keep_last,
      .copy = opt_copy,
      .ceiling = opt_ceiling,
      .path = opt_path,
      .shm_size = (guint64) opt_shm_size,
      .result = opt_result,
      .plugin_dir = opt_plugin_dir,
      .stall_ms = opt_stall_ms,
      .first_ms = opt_first_ms,
      .eos_wait_ms = opt_eos_wait_ms,
      .no_receiver = opt_no_receiver,
      .control = opt_control,
      .area_size = (guint64) opt_area_size,
      .no_spin = opt_no_spin,
      .pid_file = opt_pid_file,
      .no_cpu = opt_no_cpu,
    };
    gst_init (NULL, NULL);
    return bench_child_run (&o);
  }

  ret = run_bench (g_strv_length (saved), saved);
  g_strfreev (saved);
  return ret;
}

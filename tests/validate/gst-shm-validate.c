/* gst-shm-validate: runs gst-validate scenario files (GStreamer 1.22
 * format) on one pipeline, for the action types gst-shm's scenarios use,
 * with the meaning gst-validate-1.0 gives them.
 *
 *   gst-shm-validate --set-scenario=FILE [checks] PIPELINE-DESCRIPTION
 *
 * gst-validate is not packaged for Debian 12; the scenario files in this
 * directory are also valid for a real gst-validate-1.0 --set-scenario.
 *
 * Scenario files: one GstStructure per line (the action; the structure
 * name is its type), '#' starts a comment, a line that ends with ',' '{'
 * '\' '[' or '<' continues on the next.  Supported actions: meta (or
 * description: handles-states, ignore-eos, allow-errors), set-state, play,
 * pause (duration), stop, eos, wait (duration | message-type with
 * expected-values | signal-name with target-element-name), set-property,
 * check-property, check-properties, check-current-pad-caps; the common
 * fields playback-time, repeat and name.  An unknown action type or a
 * missing mandatory field stops the run before it starts (exit 238, "Bail
 * out!"), a failed action or an error on the bus is a critical report
 * (exit 18), as with gst-validate-1.0.
 *
 * Checks the harness adds (not part of gst-validate):
 *   --stamp=ELEMENT         stamp every raw frame on ELEMENT's sink pad
 *   --check-stamps=ELEMENT  check every frame's stamp and checksum there
 *   --min-frames=N --expect-caps-changes=N --expect-eos --allow-gaps
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <gst/gst.h>
#include <gst/video/video.h>
#include <glib-unix.h>
#include <stdio.h>
#include <string.h>

#include "stamp.h"

#define RC_CRITICAL 18
#define RC_BAIL_OUT 238

typedef enum
{
  DONE,
  ASYNC,
  FAILED,
} ActionResult;

typedef struct _Action Action;
struct _Action
{
  GstStructure *s;
  const gchar *type;
  gchar *where;                 /* file:line */
  gdouble playback_time;        /* < 0: none */
  gboolean done;
};

static GMainLoop *loop;
static GstElement *pipeline;
static GQueue actions = G_QUEUE_INIT;
static Action *current;         /* an ASYNC action in progress */
static GList *all_actions;
static guint n_criticals, n_issues;
static gboolean handles_states, ignore_eos, allow_errors, stopping;
static gboolean got_eos;
static GstState wanted_state = GST_STATE_VOID_PENDING;
static gulong signal_id;
static GstElement *signal_target;

/* harness checks */
static gchar *opt_scenario, *opt_stamp, *opt_check;
static gint opt_min_frames = -1, opt_caps_changes = -1;
static gboolean opt_expect_eos, opt_allow_gaps;
static GMutex lock;
static guint n_frames, n_bad, n_gaps, n_caps_changes;
static gint64 last_frame = -1;
static GstCaps *last_caps;

static void
report (const gchar * level, const gchar * summary, const gchar * where,
    const gchar * details)
{
  if (g_str_equal (level, "critical"))
    n_criticals++;
  else
    n_issues++;
  g_print ("%10s : %s\n", level, summary);
  if (where)
    g_print ("             Detected on <%s>\n", where);
  if (details)
    g_print ("             Details : %s\n", details);
}

/* --- scenario files ------------------------------------------------------ */

/* Joins continued lines and drops comments, as gst-validate does. */
static GPtrArray *
logical_lines (const gchar * text, GArray * linenos)
{
  GPtrArray *out = g_ptr_array_new_with_free_func (g_free);
  gchar **lines = g_strsplit (text, "\n", -1);
  GString *cur = NULL;
  guint start = 0;

  for (guint i = 0; lines[i]; i++) {
    gchar *l = lines[i];
    gboolean quoted = FALSE;
    gsize len;

    for (gchar * p = l; *p; p++) {
      if (*p == '"' && (p == l || p[-1] != '\\'))
        quoted = !quoted;
      else if (*p == '#' && !quoted) {
        *p = '\0';
        break;
      }
    }
    g_strstrip (l);
    if (!cur && *l == '\0')
      continue;
    if (!cur) {
      cur = g_string_new (NULL);
      start = i + 1;
    }
    len = strlen (l);
    if (len && strchr (",{\\[<", l[len - 1])) {
      if (l[len - 1] == '\\')
        l[len - 1] = '\0';
      g_string_append (cur, l);
      g_string_append_c (cur, ' ');
      continue;
    }
    g_string_append (cur, l);
    g_ptr_array_add (out, g_string_free (cur, FALSE));
    g_array_append_val (linenos, start);
    cur = NULL;
  }
  if (cur) {
    g_ptr_array_add (out, g_string_free (cur, FALSE));
    g_array_append_val (linenos, start);
  }
  g_strfreev (lines);
  return out;
}

static const struct
{
  const gchar *type;
  const gchar *mandatory[3];
} known_types[] = {
  {"meta", {NULL}},
  {"description", {NULL}},
  {"set-state", {"state", NULL}},
  {"play", {NULL}},
  {"pause", {NULL}},
  {"stop", {NULL}},
  {"eos", {NULL}},
  {"wait", {NULL}},
  {"set-property", {"property-name", "property-value", NULL}},
  {"check-property", {"property-name", "property-value", NULL}},
  {"check-properties", {NULL}},
  {"check-current-pad-caps", {NULL}},
};

static gboolean
bail_out (const gchar * fmt, ...)
{
  va_list args;
  gchar *msg;

  va_start (args, fmt);
  msg = g_strdup_vprintf (fmt, args);
  va_end (args);
  g_printerr ("Bail out! ERROR: %s\n", msg);
  g_free (msg);
  return FALSE;
}

static gboolean
load_scenario (const gchar * path)
{
  gchar *text = NULL;
  GError *err = NULL;
  GArray *linenos = g_array_new (FALSE, FALSE, sizeof (guint));
  GPtrArray *lines;
  gboolean ok = TRUE;

  if (!g_file_get_contents (path, &text, NULL, &err))
    return bail_out ("Could not load scenario %s: %s", path, err->message);
  lines = logical_lines (text, linenos);
  for (guint i = 0; ok && i < lines->len; i++) {
    guint lineno = g_array_index (linenos, guint, i);
    GstStructure *s = gst_structure_from_string (lines->pdata[i], NULL);
    const gchar *type;
    gboolean known = FALSE;
    gint repeat = 1;

    if (!s) {
      ok = bail_out ("Could not get structures from %s:\n\n%s:%u: Invalid "
          "structure\n     %u | %s", path, path, lineno, lineno,
          (gchar *) lines->pdata[i]);
      break;
    }
    type = gst_structure_get_name (s);
    for (guint k = 0; k < G_N_ELEMENTS (known_types); k++) {
      if (!g_str_equal (type, known_types[k].type))
        continue;
      known = TRUE;
      for (guint m = 0; known_types[k].mandatory[m]; m++)
        if (!gst_structure_has_field (s, known_types[k].mandatory[m])) {
          gchar *str = gst_structure_to_string (s);
          ok = bail_out ("%s:%u: Mandatory field '%s' not present in "
              "structure: %s", path, lineno, known_types[k].mandatory[m], str);
          g_free (str);
        }
    }
    if (!known) {
      ok = bail_out ("%s:%u: Unknown action type: '%s'", path, lineno, type);
      gst_structure_free (s);
      break;
    }
    if (g_str_equal (type, "meta") || g_str_equal (type, "description")) {
      gst_structure_get_boolean (s, "handles-states", &handles_states);
      gst_structure_get_boolean (s, "ignore-eos", &ignore_eos);
      gst_structure_get_boolean (s, "allow-errors", &allow_errors);
      gst_structure_free (s);
      continue;
    }
    gst_structure_get_int (s, "repeat", &repeat);
    for (gint r = 0; r < MAX (repeat, 1); r++) {
      Action *a = g_new0 (Action, 1);
      a->s = gst_structure_copy (s);
      a->type = gst_structure_get_name (a->s);
      a->where = g_strdup_printf ("%s:%u", g_path_get_basename (path), lineno);
      a->playback_time = -1;
      if (gst_structure_has_field (a->s, "playback-time")
          && !gst_structure_get_double (a->s, "playback-time",
              &a->playback_time)) {
        gint t;
        if (gst_structure_get_int (a->s, "playback-time", &t))
          a->playback_time = t;
      }
      g_queue_push_tail (&actions, a);
      all_actions = g_list_append (all_actions, a);
    }
    gst_structure_free (s);
  }
  g_ptr_array_unref (lines);
  g_array_unref (linenos);
  g_free (text);
  return ok;
}

/* --- actions ------------------------------------------------------------- */

static void action_done (Action * a);

static GstElement *
target_element (Action * a)
{
  const gchar *name = gst_structure_get_string (a->s, "target-element-name");
  GstElement *e;

  if (!name)
    return NULL;
  e = gst_bin_get_by_name (GST_BIN (pipeline), name);
  if (!e)
    report ("critical", "The execution of an action did not properly happen",
        a->where, "no such element");
  return e;
}

static gboolean
value_from_string (GValue * v, GType type, const GValue * given)
{
  g_value_init (v, type);
  if (G_VALUE_TYPE (given) == type) {
    g_value_copy (given, v);
    return TRUE;
  }
  if (G_VALUE_HOLDS_STRING (given))
    return gst_value_deserialize (v, g_value_get_string (given));
  return g_value_transform (given, v);
}

static ActionResult
set_or_check_property (Action * a, GstElement * e, const gchar * prop,
    const GValue * given, gboolean check)
{
  GParamSpec *pspec = g_object_class_find_property (G_OBJECT_GET_CLASS (e),
      prop);
  GValue want = G_VALUE_INIT, have = G_VALUE_INIT;
  ActionResult res = DONE;

  if (!pspec || !value_from_string (&want, pspec->value_type, given)) {
    report ("critical", "The execution of an action did not properly happen",
        a->where, "no such property, or a value that does not convert");
    if (G_IS_VALUE (&want))
      g_value_unset (&want);
    return FAILED;
  }
  if (!check) {
    g_object_set_property (G_OBJECT (e), prop, &want);
  } else {
    g_value_init (&have, pspec->value_type);
    g_object_get_property (G_OBJECT (e), prop, &have);
    if (gst_value_compare (&want, &have) != GST_VALUE_EQUAL) {
      gchar *w = gst_value_serialize (&want), *h = gst_value_serialize (&have);
      const gchar *tn = g_type_name (pspec->value_type);
      gchar *d = g_strdup_printf ("<%s>::%s expected value: '(%s)%s' "
          "different than observed: '(%s)%s'", GST_OBJECT_NAME (e), prop, tn,
          w, tn, h);
      report ("critical", "The execution of an action did not properly "
          "happen", a->where, d);
      g_free (w);
      g_free (h);
      g_free (d);
      res = FAILED;
    }
    g_value_unset (&have);
  }
  g_value_unset (&want);
  return res;
}

typedef struct
{
  Action *a;
  gboolean ok;
} PropCheck;

static gboolean
check_one_property (GQuark field, const GValue * value, gpointer data)
{
  PropCheck *pc = data;
  gchar **parts = g_strsplit (g_quark_to_string (field), "::", 2);
  GstElement *e;

  if (g_strv_length (parts) == 2
      && (e = gst_bin_get_by_name (GST_BIN (pipeline), parts[0]))) {
    if (set_or_check_property (pc->a, e, parts[1], value, TRUE) != DONE)
      pc->ok = FALSE;
    gst_object_unref (e);
  } else if (!g_str_equal (g_quark_to_string (field), "playback-time")
      && !g_str_equal (g_quark_to_string (field), "name")) {
    report ("critical", "The execution of an action did not properly happen",
        pc->a->where, "no such element");
    pc->ok = FALSE;
  }
  g_strfreev (parts);
  return TRUE;
}

static ActionResult
check_pad_caps (Action * a)
{
  GstElement *e = target_element (a);
  const gchar *padname = gst_structure_get_string (a->s, "pad");
  const gchar *mode = gst_structure_get_string (a->s, "comparision-mode");
  const GValue *expected = gst_structure_get_value (a->s, "expected-caps");
  GstCaps *want = NULL, *have;
  GstPad *pad;
  ActionResult res = DONE;

  if (!e)
    return FAILED;
  /* as in gst-validate 1.22, the pad must be named */
  pad = padname ? gst_element_get_static_pad (e, padname) : NULL;
  if (!pad) {
    gchar *d = g_strdup_printf ("Could not find pad %s in <%s>",
        padname ? padname : "(null)", GST_OBJECT_NAME (e));
    report ("critical", "The execution of an action did not properly happen",
        a->where, d);
    g_free (d);
    gst_object_unref (e);
    return FAILED;
  }
  have = gst_pad_get_current_caps (pad);
  /* caps, or a [structure]; a plain string is not caps (gst-validate
   * 1.22: "Can't intersect with NULL expected caps") */
  if (expected && GST_VALUE_HOLDS_STRUCTURE (expected))
    want = gst_caps_new_full (gst_structure_copy (gst_value_get_structure
            (expected)), NULL);
  else if (expected && GST_VALUE_HOLDS_CAPS (expected))
    want = gst_caps_copy (gst_value_get_caps (expected));
  if (expected && !want) {
    report ("critical", "The execution of an action did not properly happen",
        a->where, "Can't intersect with NULL expected caps");
    res = FAILED;
  } else if (!have || (want && !(g_strcmp0 (mode, "equal") == 0
              ? gst_caps_is_equal (want, have)
              : gst_caps_can_intersect (want, have)))) {
    gchar *d = g_strdup_printf ("caps %" GST_PTR_FORMAT " do not match %"
        GST_PTR_FORMAT, have, want);
    report ("critical", "The execution of an action did not properly happen",
        a->where, d);
    g_free (d);
    res = FAILED;
  }
  if (want)
    gst_caps_unref (want);
  if (have)
    gst_caps_unref (have);
  gst_object_unref (pad);
  gst_object_unref (e);
  return res;
}

static gboolean
back_to_playing (gpointer data)
{
  g_print ("--> Back to playing\n");
  gst_element_set_state (pipeline, GST_STATE_PLAYING);
  return G_SOURCE_REMOVE;
}

static gboolean
wait_timeout (gpointer data)
{
  action_done (data);
  return G_SOURCE_REMOVE;
}

static gboolean
signal_seen (gpointer data)
{
  if (signal_id) {
    g_signal_handler_disconnect (signal_target, signal_id);
    signal_id = 0;
    gst_clear_object (&signal_target);
    if (current)
      action_done (current);
  }
  return G_SOURCE_REMOVE;
}

/* Any signal, whatever its arguments: complete the wait in the main loop
 * (the signal may come from a streaming thread). */
static void
any_signal_marshal (GClosure * closure, GValue * ret, guint n_params,
    const GValue * params, gpointer hint, gpointer marshal_data)
{
  g_idle_add (signal_seen, NULL);
}

static ActionResult
set_state (Action * a, GstState state)
{
  GstStateChangeReturn r = gst_element_set_state (pipeline, state);

  if (r == GST_STATE_CHANGE_FAILURE) {
    report ("critical", "The execution of an action did not properly happen",
        a->where, "state change failure");
    return FAILED;
  }
  if (r == GST_STATE_CHANGE_ASYNC) {
    wanted_state = state;
    return ASYNC;
  }
  return DONE;
}

static ActionResult
execute (Action * a)
{
  const gchar *t = a->type;
  gchar *str = gst_structure_to_string (a->s);

  g_print ("Executing `%s` at %s ( %s )\n", a->type, a->where, str);
  g_free (str);

  if (g_str_equal (t, "stop"))
    return DONE;
  if (g_str_equal (t, "eos")) {
    gst_element_send_event (pipeline, gst_event_new_eos ());
    return DONE;
  }
  if (g_str_equal (t, "play"))
    return set_state (a, GST_STATE_PLAYING);
  if (g_str_equal (t, "pause")) {
    gdouble d = 0;
    gst_structure_get_double (a->s, "duration", &d);
    if (d > 0)
      g_timeout_add (d * 1000, back_to_playing, NULL);
    return set_state (a, GST_STATE_PAUSED);
  }
  if (g_str_equal (t, "set-state")) {
    const gchar *name = gst_structure_get_string (a->s, "state");
    GstState st = g_str_equal (name, "null") ? GST_STATE_NULL
        : g_str_equal (name, "ready") ? GST_STATE_READY
        : g_str_equal (name, "paused") ? GST_STATE_PAUSED
        : g_str_equal (name, "playing") ? GST_STATE_PLAYING
        : GST_STATE_VOID_PENDING;
    if (st == GST_STATE_VOID_PENDING) {
      report ("critical", "The execution of an action did not properly "
          "happen", a->where, "unknown state");
      return FAILED;
    }
    return set_state (a, st);
  }
  if (g_str_equal (t, "wait")) {
    gdouble d;
    const gchar *sig = gst_structure_get_string (a->s, "signal-name");
    if (gst_structure_get_double (a->s, "duration", &d)) {
      g_timeout_add (d * 1000, wait_timeout, a);
      return ASYNC;
    }
    if (gst_structure_get_string (a->s, "message-type"))
      return ASYNC;             /* completed by bus_cb */
    if (sig) {
      GClosure *closure;
      signal_target = target_element (a);
      if (!signal_target)
        return FAILED;
      closure = g_closure_new_simple (sizeof (GClosure), NULL);
      g_closure_set_marshal (closure, any_signal_marshal);
      signal_id = g_signal_connect_closure (signal_target, sig, closure, FALSE);
      if (!signal_id)
        return FAILED;
      return ASYNC;
    }
    report ("critical", "The execution of an action did not properly happen",
        a->where, "Action wait failed");
    return FAILED;
  }
  if (g_str_equal (t, "set-property") || g_str_equal (t, "check-property")) {
    GstElement *e = target_element (a);
    ActionResult r;
    if (!e)
      return FAILED;
    r = set_or_check_property (a, e, gst_structure_get_string (a->s,
            "property-name"), gst_structure_get_value (a->s,
            "property-value"), g_str_equal (t, "check-property"));
    gst_object_unref (e);
    return r;
  }
  if (g_str_equal (t, "check-properties")) {
    PropCheck pc = { a, TRUE };
    gst_structure_foreach (a->s, check_one_property, &pc);
    return pc.ok ? DONE : FAILED;
  }
  if (g_str_equal (t, "check-current-pad-caps"))
    return check_pad_caps (a);
  return FAILED;
}

static void
do_stop (void)
{
  GString *left = g_string_new (NULL);
  guint n = 0;

  if (stopping)
    return;
  stopping = TRUE;
  for (GList * l = all_actions; l; l = l->next) {
    Action *a = l->data;
    if (!a->done && !g_str_equal (a->type, "stop")
        && !g_str_equal (a->type, "eos")) {
      g_string_append_printf (left, "\n    - `%s` at %s", a->type, a->where);
      n++;
    }
  }
  if (n) {
    gchar *d = g_strdup_printf ("%u actions were not executed:%s", n,
        left->str);
    report ("critical", "The program stopped before some actions were "
        "executed", opt_scenario, d);
    g_free (d);
  }
  g_string_free (left, TRUE);
  g_main_loop_quit (loop);
}

static void
action_done (Action * a)
{
  a->done = TRUE;
  if (current == a)
    current = NULL;
}

static gboolean
position_reached (gdouble t)
{
  gint64 pos = -1;

  if (t < 0)
    return TRUE;
  gst_element_query_position (pipeline, GST_FORMAT_TIME, &pos);
  return pos >= 0 && pos >= t * GST_SECOND;
}

/* Runs the head of the list when its time has come; strictly one after
 * the other, an ASYNC action blocks the next. */
static gboolean
schedule (gpointer data)
{
  GstState state;

  if (stopping)
    return G_SOURCE_REMOVE;
  while (!current && !g_queue_is_empty (&actions)) {
    Action *a = g_queue_peek_head (&actions);
    ActionResult r;

    gst_element_get_state (pipeline, &state, NULL, 0);
    /* actions start once the pipeline is PAUSED, unless the scenario
     * handles the states; below PAUSED they run whatever their time */
    if (!handles_states && state < GST_STATE_PAUSED)
      break;
    if (state >= GST_STATE_PAUSED && !position_reached (a->playback_time))
      break;
    g_queue_pop_head (&actions);
    if (g_str_equal (a->type, "stop")) {
      a->done = TRUE;
      do_stop ();
      return G_SOURCE_REMOVE;
    }
    current = a;
    r = execute (a);
    /* (a failure was reported where it happened) */
    if (r == FAILED || r == DONE) {
      action_done (a);
    }
  }
  return G_SOURCE_CONTINUE;
}

static gboolean
message_matches (Action * a, GstMessage * msg)
{
  const gchar *type = gst_structure_get_string (a->s, "message-type");
  const GstStructure *ms = gst_message_get_structure (msg);
  const GValue *ev = gst_structure_get_value (a->s, "expected-values");
  const GstStructure *want;
  gboolean ok = TRUE;
  guint n;

  if (!type || g_ascii_strcasecmp (type, gst_message_type_get_name
          (GST_MESSAGE_TYPE (msg))) != 0)
    return FALSE;
  if (!ev || !GST_VALUE_HOLDS_STRUCTURE (ev))
    return TRUE;
  if (!ms)
    return FALSE;
  want = gst_value_get_structure (ev);
  n = gst_structure_n_fields (want);
  for (guint i = 0; ok && i < n; i++) {
    const gchar *f = gst_structure_nth_field_name (want, i);
    const GValue *have = gst_structure_get_value (ms, f);
    ok = have && gst_value_compare (have, gst_structure_get_value (want,
            f)) == GST_VALUE_EQUAL;
  }
  return ok;
}

static gboolean
bus_cb (GstBus * bus, GstMessage * msg, gpointer data)
{
  if (current && g_str_equal (current->type, "wait")
      && message_matches (current, msg))
    action_done (current);

  switch (GST_MESSAGE_TYPE (msg)) {
    case GST_MESSAGE_ERROR:{
      GError *err;
      gchar *dbg, *d;
      gst_message_parse_error (msg, &err, &dbg);
      d = g_strdup_printf ("Got error: %s -- Debug message: %s",
          err->message, dbg ? dbg : "");
      report ("critical", "We got an ERROR message on the bus",
          GST_OBJECT_NAME (pipeline), d);
      g_free (d);
      g_error_free (err);
      g_free (dbg);
      if (!allow_errors)
        do_stop ();
      break;
    }
    case GST_MESSAGE_EOS:
      got_eos = TRUE;
      if (!ignore_eos)
        do_stop ();
      break;
    case GST_MESSAGE_STATE_CHANGED:
      if (GST_MESSAGE_SRC (msg) == GST_OBJECT (pipeline)) {
        GstState old, new, pending;
        gst_message_parse_state_changed (msg, &old, &new, &pending);
        if (current && new == wanted_state && pending == GST_STATE_VOID_PENDING) {
          wanted_state = GST_STATE_VOID_PENDING;
          action_done (current);
        }
      }
      break;
    case GST_MESSAGE_ELEMENT:{
      const GstStructure *s = gst_message_get_structure (msg);
      if (s && gst_structure_has_name (s, "shm-peer")) {
        gchar *str = gst_structure_to_string (s);
        g_print ("message: %s\n", str);
        g_free (str);
      }
      break;
    }
    default:
      break;
  }
  return TRUE;
}

/* --- frames ---------------------------------------------------------------- */

static GstPadProbeReturn
frame_probe (GstPad * pad, GstPadProbeInfo * info, gpointer data)
{
  static guint32 counter;
  gboolean stamp = GPOINTER_TO_INT (data);
  GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER (info);
  GstCaps *caps = gst_pad_get_current_caps (pad);
  GstVideoInfo vinfo;
  GstVideoFrame frame;
  Stamp st;
  guint64 sum;

  if (!caps)
    return GST_PAD_PROBE_OK;
  g_mutex_lock (&lock);
  if (!last_caps || !gst_caps_is_equal (last_caps, caps)) {
    gst_caps_replace (&last_caps, caps);
    n_caps_changes++;
  }
  if (!gst_video_info_from_caps (&vinfo, caps)
      || GST_VIDEO_INFO_FORMAT (&vinfo) == GST_VIDEO_FORMAT_ENCODED)
    goto out;
  if (stamp && !gst_buffer_is_writable (buf)) {
    buf = gst_buffer_make_writable (buf);
    GST_PAD_PROBE_INFO_DATA (info) = buf;
  }
  if (!gst_video_frame_map (&frame, &vinfo, buf,
          stamp ? GST_MAP_READWRITE : GST_MAP_READ))
    goto out;
  if (stamp) {
    stamp_write (&frame, counter++, g_get_monotonic_time () * 1000,
        GST_BUFFER_PTS (buf));
  } else if (!stamp_read (&frame, &st, &sum)) {
    n_bad++;
  } else {
    if (last_frame >= 0 && (gint64) st.frame != last_frame + 1)
      n_gaps++;
    last_frame = st.frame;
  }
  gst_video_frame_unmap (&frame);
  n_frames++;
out:
  g_mutex_unlock (&lock);
  gst_caps_unref (caps);
  return GST_PAD_PROBE_OK;
}

static gboolean
add_probe (const gchar * name, gboolean stamp)
{
  GstElement *e = gst_bin_get_by_name (GST_BIN (pipeline), name);
  GstPad *pad = e ? gst_element_get_static_pad (e, "sink") : NULL;

  if (!pad) {
    g_printerr ("no element %s with a sink pad\n", name);
    return FALSE;
  }
  gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_BUFFER, frame_probe,
      GINT_TO_POINTER (stamp), NULL);
  gst_object_unref (pad);
  gst_object_unref (e);
  return TRUE;
}

static void
check_frames (void)
{
  gchar *d = g_strdup_printf ("frames=%u bad=%u gaps=%u caps-changes=%u "
      "eos=%d", n_frames, n_bad, n_gaps, n_caps_changes, got_eos);

  g_print ("FRAMES %s\n", d);
  if (opt_check && (n_bad || (!opt_allow_gaps && n_gaps)))
    report ("critical", "Frames arrived damaged or out of order", opt_check, d);
  if (opt_min_frames >= 0 && n_frames < (guint) opt_min_frames)
    report ("critical", "Fewer frames than expected", opt_check, d);
  if (opt_caps_changes >= 0 && n_caps_changes != (guint) opt_caps_changes)
    report ("critical", "Not the expected number of caps", opt_check, d);
  if (opt_expect_eos && !got_eos)
    report ("critical", "No EOS", NULL, d);
  g_free (d);
}

static gboolean
on_sigint (gpointer data)
{
  g_print ("interrupt received.\n");
  g_main_loop_quit (loop);
  return G_SOURCE_REMOVE;
}

int
main (int argc, char **argv)
{
  GOptionEntry entries[] = {
    {"set-scenario", 0, 0, G_OPTION_ARG_FILENAME, &opt_scenario,
        "Scenario file", "FILE"},
    {"stamp", 0, 0, G_OPTION_ARG_STRING, &opt_stamp,
        "Stamp frames on this element's sink pad", "ELEMENT"},
    {"check-stamps", 0, 0, G_OPTION_ARG_STRING, &opt_check,
        "Check the stamps of frames on this element's sink pad", "ELEMENT"},
    {"min-frames", 0, 0, G_OPTION_ARG_INT, &opt_min_frames,
        "At least this many frames", "N"},
    {"expect-caps-changes", 0, 0, G_OPTION_ARG_INT, &opt_caps_changes,
        "Exactly this many different caps", "N"},
    {"expect-eos", 0, 0, G_OPTION_ARG_NONE, &opt_expect_eos, "EOS must come",
        NULL},
    {"allow-gaps", 0, 0, G_OPTION_ARG_NONE, &opt_allow_gaps,
        "Missed frames are allowed", NULL},
    {NULL}
  };
  GOptionContext *ctx = g_option_context_new ("PIPELINE-DESCRIPTION");
  GError *err = NULL;
  gchar *desc;
  int rc;

  g_option_context_add_main_entries (ctx, entries, NULL);
  g_option_context_add_group (ctx, gst_init_get_option_group ());
  if (!g_option_context_parse (ctx, &argc, &argv, &err) || argc < 2) {
    g_printerr ("usage: gst-shm-validate --set-scenario=FILE PIPELINE (%s)\n",
        err ? err->message : "no pipeline");
    return 1;
  }
  g_option_context_free (ctx);

  if (opt_scenario && !load_scenario (opt_scenario))
    return RC_BAIL_OUT;

  desc = g_strjoinv (" ", argv + 1);
  pipeline = gst_parse_launch (desc, &err);
  g_free (desc);
  if (!pipeline) {
    g_printerr ("Erroneous pipeline: %s\n", err->message);
    return 1;
  }
  if ((opt_stamp && !add_probe (opt_stamp, TRUE))
      || (opt_check && !add_probe (opt_check, FALSE)))
    return 1;

  loop = g_main_loop_new (NULL, FALSE);
  gst_bus_add_watch (GST_ELEMENT_BUS (pipeline), bus_cb, NULL);
  g_unix_signal_add (SIGINT, on_sigint, NULL);
  g_timeout_add (10, schedule, NULL);
  if (handles_states) {
    g_print ("**-> Letting scenario handle set state**\n");
  } else if (gst_element_set_state (pipeline, GST_STATE_PLAYING) ==
      GST_STATE_CHANGE_FAILURE) {
    g_printerr ("Failed to set pipeline to PLAYING\n");
    return 255;
  }
  if (!opt_scenario)
    all_actions = NULL;
  g_main_loop_run (loop);

  gst_element_set_state (pipeline, GST_STATE_NULL);
  check_frames ();
  g_print ("\nIssues found: %u\n", n_criticals + n_issues);
  rc = n_criticals ? RC_CRITICAL : 0;
  if (rc)
    g_print ("Returning %d as errors were found\n", rc);
  g_print ("\n=======> Test %s (Return value: %d)\n", rc ? "FAILED" : "PASSED",
      rc);

  gst_object_unref (pipeline);
  g_main_loop_unref (loop);
  gst_clear_caps (&last_caps);
  return rc;
}

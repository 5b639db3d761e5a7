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
guint64 gst_shm_to_monotonic (const GstSegment * segment, GstClockTime ts,
    GstClockTime base_time, GstClockTime latency, GstClockTimeDiff diff);

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

/* The properties both elements have; each element's own come after
 * GST_SHM_PROP_FIRST_OWN. */
enum
{
  GST_SHM_PROP_PATH = 1,
  GST_SHM_PROP_CONTROL,
  GST_SHM_PROP_PEER_TIMEOUT,
  GST_SHM_PROP_ALLOW_SYMLINK,
  GST_SHM_PROP_INLINE_FALLBACK,
  GST_SHM_PROP_SECRET,
  GST_SHM_PROP_STATS,
  GST_SHM_PROP_FIRST_OWN,
};

/* Their values (GST_OBJECT_LOCK). */
typedef struct
{
  gchar *path;
  gchar *control;
  GstClockTime peer_timeout;
  gboolean allow_symlink;
  gboolean inline_fallback;
  gchar *secret;
} GstShmProps;

/* How each element words them. */
typedef struct
{
  const gchar *path;
  const gchar *control;
  const gchar *peer_timeout;
  const gchar *inline_fallback;
  const gchar *secret;
  const gchar *stats;
  const gchar *no_path;         /* the error when path is not set */
} GstShmPropTexts;

extern const GstShmPropTexts gst_shm_sink_texts;
extern const GstShmPropTexts gst_shm_src_texts;

/* An element's side of its properties: where its GstShmProps lie, its
 * stats, and its own properties (ids from GST_SHM_PROP_FIRST_OWN). */
typedef struct
{
  const GstShmPropTexts *texts;
  gsize props_offset;
  GstStructure *(*stats) (GObject * object);
  void (*set_own) (GObject * object, guint prop_id, const GValue * value,
      GParamSpec * pspec);
  void (*get_own) (GObject * object, guint prop_id, GValue * value,
      GParamSpec * pspec);
  /* a shared property changed (may be NULL) */
  void (*changed) (GObject * object, guint prop_id);
} GstShmPropClass;

void gst_shm_class_init_element (GstElementClass * klass,
    const GstShmPropClass * pc, GstStaticPadTemplate * templ,
    const gchar * longname, const gchar * classification,
    const gchar * description);
void gst_shm_props_init (GstShmProps * props);
void gst_shm_props_clear (GstShmProps * props);
gboolean gst_shm_props_resolve (GstElement * element, GstShmProps * props,
    const GstShmPropTexts * texts, gchar ** path, gchar ** control,
    ShmBarKind * bar);

gboolean gst_shm_raw_video_info (GstVideoInfo * info, GstCaps * caps);

void gst_shm_post_error (GstElement * element, gboolean fatal,
    const GError * error, const gchar * debug);
void gst_shm_on_peer_event (const gchar * event, const gchar * peer,
    guint64 session, const gchar * reason, gpointer element);
void gst_shm_on_message (gboolean fatal, const GError * error,
    const gchar * debug, gpointer element);
void gst_shm_frame_layout (const GstVideoInfo * info, ShmFrameLayout * l);

G_END_DECLS

#endif /* __GST_SHM_UTIL_H__ */

/* gst-shm: the caps negotiation unit
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#ifndef __GST_SHM_NEGOTIATOR_H__
#define __GST_SHM_NEGOTIATOR_H__

#include <gst/gst.h>
#include <gst/video/video.h>

G_BEGIN_DECLS

/* Hello keys (docs/protocol.md, "Caps in hellos"). */
#define GST_SHM_CAPS_KEY "caps"
#define GST_SHM_CAPS_VERSION_KEY "caps-version"
#define GST_SHM_CAPS_VERSION 1
#define GST_SHM_CAPS_MAX_BYTES (64 * 1024)
#define GST_SHM_CAPS_MAX_STRUCTURES 64
#define GST_SHM_CAPS_MAX_FIELDS 64

/**
 * GstShmNegotiator:
 *
 * Maps the capabilities in hellos and caps messages onto GstCaps and back,
 * with every size bounded; on the sink, keeps what each receiver accepts
 * and intersects it.  Thread-safe.
 */
typedef struct _GstShmNegotiator GstShmNegotiator;

GstShmNegotiator *gst_shm_negotiator_new (void);
void gst_shm_negotiator_free (GstShmNegotiator * n);

/* hello <-> GstCaps, both elements */
void gst_shm_negotiator_write (GVariantDict * dict, GstCaps * caps);
GstCaps *gst_shm_negotiator_read (GVariant * body, gboolean stream,
    GError ** error);
gchar *gst_shm_negotiator_serialize (GstCaps * caps);
GstCaps *gst_shm_negotiator_parse (const gchar * str, gboolean stream,
    GError ** error);
GstCaps *gst_shm_negotiator_sysmem (GstCaps * caps);
GstCaps *gst_shm_negotiator_fit (GstCaps * caps, guint64 max);

/* Video layout used for slots: strides aligned for SIMD. */
#define GST_SHM_STRIDE_ALIGN 64
gboolean gst_shm_video_info_align (GstVideoInfo * info);

/* receivers (sink) */
void gst_shm_negotiator_set_receiver (GstShmNegotiator * n, gconstpointer id,
    const gchar * name, GstCaps * accepted);
void gst_shm_negotiator_remove_receiver (GstShmNegotiator * n,
    gconstpointer id);
guint gst_shm_negotiator_n_receivers (GstShmNegotiator * n);
GstCaps *gst_shm_negotiator_intersect (GstShmNegotiator * n,
    GstCaps * filter, gchar ** conflict);
gboolean gst_shm_negotiator_accepts (GstShmNegotiator * n, gconstpointer id,
    GstCaps * stream_caps);

G_END_DECLS

#endif /* __GST_SHM_NEGOTIATOR_H__ */

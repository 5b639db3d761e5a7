/* gst-shm: slots of the area as GstMemory and as a GstBufferPool
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#ifndef __GST_SHM_POOL_H__
#define __GST_SHM_POOL_H__

#include <gst/gst.h>
#include <gst/video/video.h>

#include "shmarea.h"

G_BEGIN_DECLS

/* The sink's view of the slots of one area (one session).  Refcounted: the
 * slot memories, the pool and the sink each hold a reference, so that the
 * mapping outlives every buffer that points into it. */
typedef struct _GstShmSlots GstShmSlots;

GstShmSlots *gst_shm_slots_new (ShmArea * area, const ShmGeometry * geo);
GstShmSlots *gst_shm_slots_ref (GstShmSlots * slots);
void gst_shm_slots_unref (GstShmSlots * slots);
ShmArea *gst_shm_slots_get_area (GstShmSlots * slots);
const ShmGeometry *gst_shm_slots_get_geometry (GstShmSlots * slots);
guint8 *gst_shm_slots_get_slot_data (GstShmSlots * slots, guint slot);

void gst_shm_slots_set_flushing (GstShmSlots * slots, gboolean flushing);
void gst_shm_slots_set_timeout (GstShmSlots * slots, GstClockTime timeout);
GstFlowReturn gst_shm_slots_claim (GstShmSlots * slots, gboolean dontwait,
    guint * slot);
void gst_shm_slots_unclaim (GstShmSlots * slots, guint slot);
void gst_shm_slots_hold (GstShmSlots * slots, guint slot, guint64 lanes,
    guint64 seq);
gint gst_shm_slots_furthest_behind (GstShmSlots * slots, guint64 lanes,
    guint64 * oldest);
gboolean gst_shm_slots_release (GstShmSlots * slots, guint slot, guint lane);
void gst_shm_slots_drop_lane (GstShmSlots * slots, guint lane);
guint gst_shm_slots_count_free (GstShmSlots * slots);

/* Slot memory: a GstMemory over one slot of the sink's mapping. */
#define GST_SHM_SLOT_MEMORY_TYPE "GstShmSlotMemory"

GstMemory *gst_shm_slots_wrap (GstShmSlots * slots, guint slot, gsize size);
gboolean gst_shm_is_slot_memory (GstMemory * mem);
gboolean gst_shm_slot_memory_get_slot (GstMemory * mem, GstShmSlots ** slots,
    guint * slot, gsize * offset);

/* The pool offered to upstream. */
#define GST_TYPE_SHM_POOL (gst_shm_pool_get_type ())
G_DECLARE_FINAL_TYPE (GstShmPool, gst_shm_pool, GST, SHM_POOL, GstBufferPool);

GstBufferPool *gst_shm_pool_new (GstShmSlots * slots);
GstShmSlots *gst_shm_pool_get_slots (GstShmPool * pool);

/* Video layout used for slots: strides aligned for SIMD. */
#define GST_SHM_STRIDE_ALIGN 64
gboolean gst_shm_video_info_align (GstVideoInfo * info);

G_END_DECLS

#endif /* __GST_SHM_POOL_H__ */

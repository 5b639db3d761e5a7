/* gst-shm: slots of the area as GstMemory and as a GstBufferPool
 *
 * The slots themselves (which is free, who holds what) are the core's
 * ShmSlots; this wraps them for GStreamer.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#ifndef __GST_SHM_POOL_H__
#define __GST_SHM_POOL_H__

#include <gst/gst.h>
#include <gst/video/video.h>

#include "shmslots.h"

G_BEGIN_DECLS

/* Slot memory: a GstMemory over one slot of the sink's mapping. */
#define GST_SHM_SLOT_MEMORY_TYPE "GstShmSlotMemory"

GstMemory *gst_shm_slots_wrap (ShmSlots * slots, guint slot, gsize size);
gboolean gst_shm_is_slot_memory (GstMemory * mem);
gboolean gst_shm_slot_memory_get_slot (GstMemory * mem, ShmSlots ** slots,
    guint * slot, gsize * offset);

/* The pool offered to upstream. */
#define GST_TYPE_SHM_POOL (gst_shm_pool_get_type ())
G_DECLARE_FINAL_TYPE (GstShmPool, gst_shm_pool, GST, SHM_POOL, GstBufferPool);

GstBufferPool *gst_shm_pool_new (ShmSlots * slots);
ShmSlots *gst_shm_pool_get_slots (GstShmPool * pool);


G_END_DECLS

#endif /* __GST_SHM_POOL_H__ */

/* gst-shm: slots of the area as GstMemory and as a GstBufferPool
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstshmpool.h"
#include "gstshmnegotiator.h"
#include "gstshmutil.h"

#include <string.h>

GST_DEBUG_CATEGORY_STATIC (gst_shm_pool_debug);
#define GST_CAT_DEFAULT gst_shm_pool_debug

/* --- slot memory -------------------------------------------------------- */

typedef struct
{
  GstMemory mem;
  ShmSlots *slots;              /* root memory only */
  guint slot;
  guint8 *data;                 /* start of the slot */
} GstShmSlotMemory;

typedef GstAllocator GstShmSlotAllocator;
typedef GstAllocatorClass GstShmSlotAllocatorClass;

static GType gst_shm_slot_allocator_get_type (void);
G_DEFINE_TYPE (GstShmSlotAllocator, gst_shm_slot_allocator, GST_TYPE_ALLOCATOR);

static GstAllocator *slot_allocator;

static GstMemory *
slot_alloc (GstAllocator * allocator, gsize size, GstAllocationParams * params)
{
  /* Slots only come from gst_shm_slots_wrap(). */
  return NULL;
}

static void
slot_free (GstAllocator * allocator, GstMemory * mem)
{
  GstShmSlotMemory *m = (GstShmSlotMemory *) mem;

  if (mem->parent == NULL) {
    shm_slots_unclaim (m->slots, m->slot);
    shm_slots_unref (m->slots);
  }
  g_free (m);
}

static gpointer
slot_map (GstMemory * mem, gsize maxsize, GstMapFlags flags)
{
  return ((GstShmSlotMemory *) mem)->data;
}

static void
slot_unmap (GstMemory * mem)
{
}

static GstMemory *
slot_share (GstMemory * mem, gssize offset, gssize size)
{
  GstShmSlotMemory *m = (GstShmSlotMemory *) mem;
  GstShmSlotMemory *sub;
  GstMemory *parent = mem->parent ? mem->parent : mem;

  if (size == -1)
    size = mem->size - offset;
  sub = g_new0 (GstShmSlotMemory, 1);
  gst_memory_init (GST_MEMORY_CAST (sub),
      GST_MINI_OBJECT_FLAGS (parent) | GST_MINI_OBJECT_FLAG_LOCK_READONLY,
      mem->allocator, parent, mem->maxsize, mem->align, mem->offset + offset,
      size);
  sub->slot = m->slot;
  sub->data = m->data;
  return GST_MEMORY_CAST (sub);
}

static gboolean
slot_is_span (GstMemory * mem1, GstMemory * mem2, gsize * offset)
{
  GstShmSlotMemory *a = (GstShmSlotMemory *) mem1;
  GstShmSlotMemory *b = (GstShmSlotMemory *) mem2;

  if (a->data != b->data)
    return FALSE;
  if (offset)
    *offset = mem1->offset;
  return mem1->offset + mem1->size == mem2->offset;
}

static void
gst_shm_slot_allocator_class_init (GstShmSlotAllocatorClass * klass)
{
  klass->alloc = slot_alloc;
  klass->free = slot_free;
}

static void
gst_shm_slot_allocator_init (GstShmSlotAllocator * alloc)
{
  alloc->mem_type = GST_SHM_SLOT_MEMORY_TYPE;
  alloc->mem_map = slot_map;
  alloc->mem_unmap = slot_unmap;
  alloc->mem_share = slot_share;
  alloc->mem_is_span = slot_is_span;
  GST_OBJECT_FLAG_SET (alloc, GST_ALLOCATOR_FLAG_CUSTOM_ALLOC);
}

static gpointer
init_allocator (gpointer data)
{
  GST_DEBUG_CATEGORY_INIT (gst_shm_pool_debug, "shmpool", 0,
      "gst-shm slots and pool");
  slot_allocator = g_object_new (gst_shm_slot_allocator_get_type (), NULL);
  gst_object_ref_sink (slot_allocator);
  GST_OBJECT_FLAG_SET (slot_allocator, GST_OBJECT_FLAG_MAY_BE_LEAKED);
  return NULL;
}

static GstAllocator *
get_allocator (void)
{
  static GOnce once = G_ONCE_INIT;

  g_once (&once, init_allocator, NULL);
  return slot_allocator;
}

/**
 * gst_shm_slots_wrap:
 *
 * Wraps a claimed slot; when the memory is freed, the claim ends.
 */
GstMemory *
gst_shm_slots_wrap (ShmSlots * slots, guint slot, gsize size)
{
  const ShmGeometry *geo = shm_slots_get_geometry (slots);
  GstShmSlotMemory *m;

  g_return_val_if_fail (slot < geo->n_slots, NULL);
  g_return_val_if_fail (size <= geo->slot_size, NULL);

  m = g_new0 (GstShmSlotMemory, 1);
  gst_memory_init (GST_MEMORY_CAST (m), 0, get_allocator (), NULL,
      geo->slot_size, SHM_AREA_PAGE - 1, 0, size);
  m->slots = shm_slots_ref (slots);
  m->slot = slot;
  m->data = shm_slots_get_slot_data (slots, slot);
  return GST_MEMORY_CAST (m);
}

gboolean
gst_shm_is_slot_memory (GstMemory * mem)
{
  return mem && mem->allocator == get_allocator ();
}

gboolean
gst_shm_slot_memory_get_slot (GstMemory * mem, ShmSlots ** slots,
    guint * slot, gsize * offset)
{
  GstShmSlotMemory *root;

  if (!gst_shm_is_slot_memory (mem))
    return FALSE;
  root = (GstShmSlotMemory *) (mem->parent ? mem->parent : mem);
  *slots = root->slots;
  *slot = root->slot;
  *offset = mem->offset;
  return TRUE;
}

/* --- pool --------------------------------------------------------------- */

struct _GstShmPool
{
  GstBufferPool parent;

  ShmSlots *slots;
  GstAtomicQueue *queue;        /* empty GstBuffers */
  gint flushing;                /* atomic */

  /* set in set_config, read by acquire */
  GstVideoInfo info;
  gboolean is_video;
  gboolean add_meta;
  gsize size;
};

G_DEFINE_TYPE (GstShmPool, gst_shm_pool, GST_TYPE_BUFFER_POOL);

static const gchar **
gst_shm_pool_get_options (GstBufferPool * pool)
{
  static const gchar *options[] = { GST_BUFFER_POOL_OPTION_VIDEO_META, NULL };
  return options;
}

static gboolean
gst_shm_pool_set_config (GstBufferPool * pool, GstStructure * config)
{
  GstShmPool *self = GST_SHM_POOL (pool);
  GstCaps *caps;
  guint size, min, max;
  const ShmGeometry *geo = shm_slots_get_geometry (self->slots);
  guint64 slot_size = geo->slot_size;

  if (!gst_buffer_pool_config_get_params (config, &caps, &size, &min, &max))
    goto wrong_config;
  if (caps == NULL)
    goto no_caps;

  self->is_video = gst_shm_raw_video_info (&self->info, caps)
      && gst_caps_is_fixed (caps);
  self->add_meta = gst_buffer_pool_config_has_option (config,
      GST_BUFFER_POOL_OPTION_VIDEO_META);
  if (self->is_video) {
    /* Padded strides only when upstream reads the video meta. */
    if (self->add_meta && !gst_shm_video_info_align (&self->info))
      goto wrong_config;
    self->size = GST_VIDEO_INFO_SIZE (&self->info);
  } else {
    self->size = size;
  }
  if (self->size == 0 || self->size > slot_size)
    goto too_big;

  if (max == 0 || max > geo->n_slots)
    max = geo->n_slots;
  min = MIN (min, max);
  gst_buffer_pool_config_set_params (config, caps, self->size, min, max);

  GST_DEBUG_OBJECT (pool, "%" GST_PTR_FORMAT ": %" G_GSIZE_FORMAT " bytes in "
      "slots of %" G_GUINT64_FORMAT ", video meta %d", caps, self->size,
      slot_size, self->add_meta);

  return GST_BUFFER_POOL_CLASS (gst_shm_pool_parent_class)->set_config (pool,
      config);

  /* ERRORS */
wrong_config:
  {
    GST_WARNING_OBJECT (pool, "invalid config %" GST_PTR_FORMAT, config);
    return FALSE;
  }
no_caps:
  {
    GST_WARNING_OBJECT (pool, "no caps in config");
    return FALSE;
  }
too_big:
  {
    GST_WARNING_OBJECT (pool, "frames of %" G_GSIZE_FORMAT " bytes do not fit "
        "slots of %" G_GUINT64_FORMAT " bytes", self->size, slot_size);
    return FALSE;
  }
}

static void
set_video_meta (GstShmPool * self, GstBuffer * buf)
{
  GstVideoInfo *info = &self->info;
  GstVideoMeta *vmeta = gst_buffer_get_video_meta (buf);

  if (!vmeta) {
    vmeta = gst_buffer_add_video_meta_full (buf, GST_VIDEO_FRAME_FLAG_NONE,
        GST_VIDEO_INFO_FORMAT (info), GST_VIDEO_INFO_WIDTH (info),
        GST_VIDEO_INFO_HEIGHT (info), GST_VIDEO_INFO_N_PLANES (info),
        info->offset, info->stride);
    GST_META_FLAG_SET (vmeta, GST_META_FLAG_POOLED);
    return;
  }
  vmeta->format = GST_VIDEO_INFO_FORMAT (info);
  vmeta->width = GST_VIDEO_INFO_WIDTH (info);
  vmeta->height = GST_VIDEO_INFO_HEIGHT (info);
  vmeta->n_planes = GST_VIDEO_INFO_N_PLANES (info);
  memcpy (vmeta->offset, info->offset, sizeof vmeta->offset);
  memcpy (vmeta->stride, info->stride, sizeof vmeta->stride);
}

static GstFlowReturn
gst_shm_pool_acquire_buffer (GstBufferPool * pool, GstBuffer ** buffer,
    GstBufferPoolAcquireParams * params)
{
  GstShmPool *self = GST_SHM_POOL (pool);
  gboolean dontwait = params
      && (params->flags & GST_BUFFER_POOL_ACQUIRE_FLAG_DONTWAIT);
  ShmClaimResult ret;
  GstMemory *mem;
  GstBuffer *buf;
  guint slot;

  ret = shm_slots_claim (self->slots, dontwait, &self->flushing, &slot);
  if (ret == SHM_CLAIM_OK) {
    mem = gst_shm_slots_wrap (self->slots, slot, self->size);
  } else if (ret == SHM_CLAIM_NONE && !dontwait) {
    /* Every slot is held past the timeout: hand out plain memory so that
     * upstream never blocks on a receiver; the sink counts what it cannot
     * send. */
    GST_DEBUG_OBJECT (pool, "no free slot, handing out system memory");
    mem = gst_allocator_alloc (NULL, self->size, NULL);
  } else {
    return ret == SHM_CLAIM_FLUSHING ? GST_FLOW_FLUSHING : GST_FLOW_EOS;
  }

  buf = gst_atomic_queue_pop (self->queue);
  if (!buf)
    buf = gst_buffer_new ();
  gst_buffer_append_memory (buf, mem);
  if (self->is_video && self->add_meta)
    set_video_meta (self, buf);
  *buffer = buf;
  return GST_FLOW_OK;
}

static void
gst_shm_pool_reset_buffer (GstBufferPool * pool, GstBuffer * buffer)
{
  /* Dropping the memory ends the claim on the slot. */
  gst_buffer_remove_all_memory (buffer);
  GST_BUFFER_POOL_CLASS (gst_shm_pool_parent_class)->reset_buffer (pool,
      buffer);
  GST_BUFFER_FLAGS (buffer) = 0;
}

static void
gst_shm_pool_release_buffer (GstBufferPool * pool, GstBuffer * buffer)
{
  gst_atomic_queue_push (GST_SHM_POOL (pool)->queue, buffer);
}

static void
set_pool_flushing (GstShmPool * self, gboolean flushing)
{
  g_atomic_int_set (&self->flushing, flushing);
  shm_slots_wake (self->slots);
}

static void
gst_shm_pool_flush_start (GstBufferPool * pool)
{
  set_pool_flushing (GST_SHM_POOL (pool), TRUE);
}

static void
gst_shm_pool_flush_stop (GstBufferPool * pool)
{
  set_pool_flushing (GST_SHM_POOL (pool), FALSE);
}

static void
drain_queue (GstShmPool * self)
{
  GstBuffer *buf;

  while ((buf = gst_atomic_queue_pop (self->queue)))
    gst_buffer_unref (buf);
}

static gboolean
gst_shm_pool_stop (GstBufferPool * pool)
{
  drain_queue (GST_SHM_POOL (pool));
  return GST_BUFFER_POOL_CLASS (gst_shm_pool_parent_class)->stop (pool);
}

static void
gst_shm_pool_finalize (GObject * object)
{
  GstShmPool *self = GST_SHM_POOL (object);

  drain_queue (self);
  gst_atomic_queue_unref (self->queue);
  shm_slots_unref (self->slots);
  G_OBJECT_CLASS (gst_shm_pool_parent_class)->finalize (object);
}

static void
gst_shm_pool_class_init (GstShmPoolClass * klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GstBufferPoolClass *pool_class = GST_BUFFER_POOL_CLASS (klass);

  object_class->finalize = gst_shm_pool_finalize;
  pool_class->get_options = gst_shm_pool_get_options;
  pool_class->set_config = gst_shm_pool_set_config;
  pool_class->start = NULL;
  pool_class->stop = gst_shm_pool_stop;
  pool_class->acquire_buffer = gst_shm_pool_acquire_buffer;
  pool_class->reset_buffer = gst_shm_pool_reset_buffer;
  pool_class->release_buffer = gst_shm_pool_release_buffer;
  pool_class->flush_start = gst_shm_pool_flush_start;
  pool_class->flush_stop = gst_shm_pool_flush_stop;
}

static void
gst_shm_pool_init (GstShmPool * self)
{
  self->queue = gst_atomic_queue_new (8);
}

GstBufferPool *
gst_shm_pool_new (ShmSlots * slots)
{
  GstShmPool *pool;

  get_allocator ();
  pool = g_object_new (GST_TYPE_SHM_POOL, NULL);
  gst_object_ref_sink (pool);
  pool->slots = shm_slots_ref (slots);
  return GST_BUFFER_POOL (pool);
}

ShmSlots *
gst_shm_pool_get_slots (GstShmPool * pool)
{
  return pool->slots;
}

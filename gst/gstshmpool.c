/* gst-shm: slots of the area as GstMemory and as a GstBufferPool
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstshmpool.h"
#include "gstshmutil.h"

#include <string.h>

GST_DEBUG_CATEGORY_STATIC (gst_shm_pool_debug);
#define GST_CAT_DEFAULT gst_shm_pool_debug

/* --- slot table ----------------------------------------------------------
 *
 * A slot is free when no GstMemory of ours wraps it (in_use: upstream is
 * rendering into it, or the sink copies into it) and no receiver holds it
 * (holds: one count per receiver lane, a receiver may hold the same slot
 * more than once when a frame is sent twice).
 */

struct _GstShmSlots
{
  gint ref_count;
  ShmArea *area;
  ShmGeometry geo;

  GMutex lock;
  GCond cond;
  /* protected by lock */
  gboolean in_use[SHM_AREA_MAX_SLOTS];
  guint16 holds[SHM_AREA_MAX_SLOTS][SHM_AREA_TOKEN_LANES];
  guint32 total_holds[SHM_AREA_MAX_SLOTS];
  guint64 seq[SHM_AREA_MAX_SLOTS];      /* frame last published in a slot */
  gboolean flushing;
  gboolean starved;
  GstClockTime timeout;
  guint next;
};

GstShmSlots *
gst_shm_slots_new (ShmArea * area, const ShmGeometry * geo)
{
  GstShmSlots *slots = g_new0 (GstShmSlots, 1);

  slots->ref_count = 1;
  slots->area = shm_area_ref (area);
  slots->geo = *geo;
  slots->timeout = GST_SECOND;
  g_mutex_init (&slots->lock);
  g_cond_init (&slots->cond);
  return slots;
}

GstShmSlots *
gst_shm_slots_ref (GstShmSlots * slots)
{
  g_atomic_int_inc (&slots->ref_count);
  return slots;
}

void
gst_shm_slots_unref (GstShmSlots * slots)
{
  if (!g_atomic_int_dec_and_test (&slots->ref_count))
    return;
  shm_area_unref (slots->area);
  g_mutex_clear (&slots->lock);
  g_cond_clear (&slots->cond);
  g_free (slots);
}

ShmArea *
gst_shm_slots_get_area (GstShmSlots * slots)
{
  return slots->area;
}

const ShmGeometry *
gst_shm_slots_get_geometry (GstShmSlots * slots)
{
  return &slots->geo;
}

guint8 *
gst_shm_slots_get_slot_data (GstShmSlots * slots, guint slot)
{
  guint64 offset;

  if (!shm_geometry_slot_range (&slots->geo, slot, &offset))
    return NULL;
  return shm_area_get_data (slots->area) + offset;
}

void
gst_shm_slots_set_flushing (GstShmSlots * slots, gboolean flushing)
{
  g_mutex_lock (&slots->lock);
  slots->flushing = flushing;
  g_cond_broadcast (&slots->cond);
  g_mutex_unlock (&slots->lock);
}

void
gst_shm_slots_set_timeout (GstShmSlots * slots, GstClockTime timeout)
{
  g_mutex_lock (&slots->lock);
  slots->timeout = timeout;
  g_mutex_unlock (&slots->lock);
}

static void
wake (GstShmSlots * slots)
{
  g_mutex_lock (&slots->lock);
  g_cond_broadcast (&slots->cond);
  g_mutex_unlock (&slots->lock);
}

static gboolean
is_free_locked (GstShmSlots * slots, guint i)
{
  return !slots->in_use[i] && slots->total_holds[i] == 0;
}

/**
 * gst_shm_slots_claim_full:
 * @cancel: the flushing flag of the caller (the sink's or a pool's), read
 *   under the lock: the sink's unlock must not make upstream's pool flush
 *
 * Claims a free slot for writing.  Waits up to the timeout for one to be
 * released; once a wait has timed out, the slots are "starved" and further
 * claims do not wait until some slot is released.
 *
 * Returns: GST_FLOW_OK, GST_FLOW_FLUSHING, or GST_FLOW_EOS when no slot is
 * free (timeout, starved, or @dontwait).
 */
static GstFlowReturn
claim_full (GstShmSlots * slots, gboolean dontwait, const gboolean * cancel,
    guint * slot)
{
  gint64 end_time = -1;
  GstFlowReturn ret = GST_FLOW_EOS;

  g_mutex_lock (&slots->lock);
  if (slots->timeout != GST_CLOCK_TIME_NONE)
    end_time = g_get_monotonic_time () + slots->timeout / GST_USECOND;

  for (;;) {
    guint n = slots->geo.n_slots;

    if (*cancel) {
      ret = GST_FLOW_FLUSHING;
      break;
    }
    for (guint k = 0; k < n; k++) {
      guint i = (slots->next + k) % n;
      if (is_free_locked (slots, i)) {
        slots->in_use[i] = TRUE;
        slots->next = (i + 1) % n;
        slots->starved = FALSE;
        *slot = i;
        ret = GST_FLOW_OK;
        goto done;
      }
    }
    if (dontwait || slots->starved)
      break;
    if (end_time < 0) {
      g_cond_wait (&slots->cond, &slots->lock);
    } else if (!g_cond_wait_until (&slots->cond, &slots->lock, end_time)) {
      GST_DEBUG ("no slot released within %" GST_TIME_FORMAT,
          GST_TIME_ARGS (slots->timeout));
      slots->starved = TRUE;
      break;
    }
  }
done:
  g_mutex_unlock (&slots->lock);
  return ret;
}

GstFlowReturn
gst_shm_slots_claim (GstShmSlots * slots, gboolean dontwait, guint * slot)
{
  return claim_full (slots, dontwait, &slots->flushing, slot);
}

void
gst_shm_slots_unclaim (GstShmSlots * slots, guint slot)
{
  g_mutex_lock (&slots->lock);
  slots->in_use[slot] = FALSE;
  if (slots->total_holds[slot] == 0)
    g_cond_broadcast (&slots->cond);
  g_mutex_unlock (&slots->lock);
}

/* Marks @slot as held by every receiver lane set in @lanes.  Called before
 * the frame is announced, so that a quick release never comes first. */
void
gst_shm_slots_hold (GstShmSlots * slots, guint slot, guint64 lanes, guint64 seq)
{
  g_mutex_lock (&slots->lock);
  slots->seq[slot] = seq;
  for (guint lane = 0; lanes; lane++, lanes >>= 1) {
    if (lanes & 1) {
      slots->holds[slot][lane]++;
      slots->total_holds[slot]++;
    }
  }
  g_mutex_unlock (&slots->lock);
}

/**
 * gst_shm_slots_release:
 *
 * Returns: FALSE when @lane does not hold @slot (a protocol violation).
 */
gboolean
gst_shm_slots_release (GstShmSlots * slots, guint slot, guint lane)
{
  gboolean ok = FALSE;

  if (slot >= slots->geo.n_slots || lane >= SHM_AREA_TOKEN_LANES)
    return FALSE;
  g_mutex_lock (&slots->lock);
  if (slots->holds[slot][lane] > 0) {
    slots->holds[slot][lane]--;
    slots->total_holds[slot]--;
    slots->starved = FALSE;
    if (is_free_locked (slots, slot))
      g_cond_broadcast (&slots->cond);
    ok = TRUE;
  }
  g_mutex_unlock (&slots->lock);
  return ok;
}

void
gst_shm_slots_drop_lane (GstShmSlots * slots, guint lane)
{
  g_mutex_lock (&slots->lock);
  for (guint i = 0; i < slots->geo.n_slots; i++) {
    slots->total_holds[i] -= slots->holds[i][lane];
    slots->holds[i][lane] = 0;
  }
  slots->starved = FALSE;
  g_cond_broadcast (&slots->cond);
  g_mutex_unlock (&slots->lock);
}

guint
gst_shm_slots_count_free (GstShmSlots * slots)
{
  guint n = 0;

  g_mutex_lock (&slots->lock);
  for (guint i = 0; i < slots->geo.n_slots; i++)
    n += is_free_locked (slots, i);
  g_mutex_unlock (&slots->lock);
  return n;
}

/**
 * gst_shm_slots_furthest_behind:
 * @lanes: the receivers to consider
 * @oldest: (out): the frame number it holds
 *
 * Returns: the lane of @lanes that holds the oldest frame, or -1 when none
 * holds any.
 */
gint
gst_shm_slots_furthest_behind (GstShmSlots * slots, guint64 lanes,
    guint64 * oldest_out)
{
  guint64 oldest = G_MAXUINT64;
  gint found = -1;

  g_mutex_lock (&slots->lock);
  for (guint i = 0; i < slots->geo.n_slots; i++) {
    for (guint lane = 0; lane < SHM_AREA_TOKEN_LANES; lane++) {
      if ((lanes & (G_GUINT64_CONSTANT (1) << lane)) && slots->holds[i][lane]
          && slots->seq[i] < oldest) {
        oldest = slots->seq[i];
        found = lane;
      }
    }
  }
  g_mutex_unlock (&slots->lock);
  *oldest_out = oldest;
  return found;
}

/* --- slot memory -------------------------------------------------------- */

typedef struct
{
  GstMemory mem;
  GstShmSlots *slots;           /* root memory only */
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
    gst_shm_slots_unclaim (m->slots, m->slot);
    gst_shm_slots_unref (m->slots);
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
gst_shm_slots_wrap (GstShmSlots * slots, guint slot, gsize size)
{
  GstShmSlotMemory *m;

  g_return_val_if_fail (slot < slots->geo.n_slots, NULL);
  g_return_val_if_fail (size <= slots->geo.slot_size, NULL);

  m = g_new0 (GstShmSlotMemory, 1);
  gst_memory_init (GST_MEMORY_CAST (m), 0, get_allocator (), NULL,
      slots->geo.slot_size, SHM_AREA_PAGE - 1, 0, size);
  m->slots = gst_shm_slots_ref (slots);
  m->slot = slot;
  m->data = gst_shm_slots_get_slot_data (slots, slot);
  return GST_MEMORY_CAST (m);
}

gboolean
gst_shm_is_slot_memory (GstMemory * mem)
{
  return mem && mem->allocator == get_allocator ();
}

gboolean
gst_shm_slot_memory_get_slot (GstMemory * mem, GstShmSlots ** slots,
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

/* --- video layout ------------------------------------------------------- */

/**
 * gst_shm_video_info_align:
 *
 * Pads strides to GST_SHM_STRIDE_ALIGN bytes (for formats whose planes can
 * be padded) and recomputes offsets and size.
 */
gboolean
gst_shm_video_info_align (GstVideoInfo * info)
{
  GstVideoAlignment align;

  gst_video_alignment_reset (&align);
  for (guint i = 0; i < GST_VIDEO_MAX_PLANES; i++)
    align.stride_align[i] = GST_SHM_STRIDE_ALIGN - 1;
  return gst_video_info_align (info, &align);
}

/* --- pool --------------------------------------------------------------- */

struct _GstShmPool
{
  GstBufferPool parent;

  GstShmSlots *slots;
  GstAtomicQueue *queue;        /* empty GstBuffers */
  gboolean flushing;            /* protected by the slots' lock */

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
  guint64 slot_size = self->slots->geo.slot_size;

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

  if (max == 0 || max > self->slots->geo.n_slots)
    max = self->slots->geo.n_slots;
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
  GstFlowReturn ret;
  GstMemory *mem;
  GstBuffer *buf;
  guint slot;

  ret = claim_full (self->slots, dontwait, &self->flushing, &slot);
  if (ret == GST_FLOW_OK) {
    mem = gst_shm_slots_wrap (self->slots, slot, self->size);
  } else if (ret == GST_FLOW_EOS && !dontwait) {
    /* Every slot is held past the timeout: hand out plain memory so that
     * upstream never blocks on a receiver; the sink counts what it cannot
     * send. */
    GST_DEBUG_OBJECT (pool, "no free slot, handing out system memory");
    mem = gst_allocator_alloc (NULL, self->size, NULL);
  } else {
    return ret;
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
  GstShmSlots *slots = self->slots;

  g_mutex_lock (&slots->lock);
  self->flushing = flushing;
  g_mutex_unlock (&slots->lock);
  wake (slots);
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
  gst_shm_slots_unref (self->slots);
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
gst_shm_pool_new (GstShmSlots * slots)
{
  GstShmPool *pool;

  get_allocator ();
  pool = g_object_new (GST_TYPE_SHM_POOL, NULL);
  gst_object_ref_sink (pool);
  pool->slots = gst_shm_slots_ref (slots);
  return GST_BUFFER_POOL (pool);
}

GstShmSlots *
gst_shm_pool_get_slots (GstShmPool * pool)
{
  return pool->slots;
}

/* gst-shm: damage in the elements
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstshmdamage.h"
#include "shmcopy.h"

#include <string.h>

/* Buffers shmsrc keeps: the ones downstream still has, and one or two
 * free for the next frame. */
#define MAX_KEPT 4
/* Tile maps remembered, to patch a buffer several frames old. */
#define MAX_STEPS 16
/* Damage metas on one buffer at most (the last covers the rest). */
#define MAX_RECTS 64

GType
gst_shm_damage_mode_get_type (void)
{
  static gsize type;
  static const GEnumValue values[] = {
    {GST_SHM_DAMAGE_OFF, "No damage: receivers that copy copy whole frames",
        "off"},
    {GST_SHM_DAMAGE_COMPUTE, "Compare each frame with the one before, tile "
          "by tile", "compute"},
    {GST_SHM_DAMAGE_UPSTREAM, "Take the damage upstream attaches "
          "(GstVideoRegionOfInterestMeta of type \"damage\")", "upstream"},
    {0, NULL, NULL},
  };

  if (g_once_init_enter (&type))
    g_once_init_leave (&type, g_enum_register_static ("GstShmDamageMode",
            values));
  return type;
}

/**
 * gst_shm_tile_grid_from_info:
 *
 * The tile grid of raw video frames: FALSE for formats whose pixels are
 * not whole bytes (v210, tiled and paletted formats), which carry no
 * damage.
 */
gboolean
gst_shm_tile_grid_from_info (ShmTileGrid * grid, const GstVideoInfo * info)
{
  const GstVideoFormatInfo *finfo = info->finfo;
  guint n = GST_VIDEO_INFO_N_PLANES (info);
  guint w_sub[SHM_DAMAGE_MAX_PLANES], h_sub[SHM_DAMAGE_MAX_PLANES];
  guint pstride[SHM_DAMAGE_MAX_PLANES];

  memset (grid, 0, sizeof *grid);
  if (!finfo || GST_VIDEO_FORMAT_INFO_IS_TILED (finfo)
      || GST_VIDEO_FORMAT_INFO_HAS_PALETTE (finfo)
      || GST_VIDEO_INFO_FORMAT (info) == GST_VIDEO_FORMAT_ENCODED
      || n == 0 || n > SHM_DAMAGE_MAX_PLANES)
    return FALSE;
  for (guint p = 0; p < n; p++) {
    gint comp[GST_VIDEO_MAX_COMPONENTS];
    gint c = -1;
    guint width, row;

    /* (the component that steps furthest: U of YUY2, 4 bytes a 2 pixels) */
    gst_video_format_info_component (finfo, p, comp);
    for (guint i = 0; i < GST_VIDEO_MAX_COMPONENTS && comp[i] >= 0; i++)
      if (c < 0 || GST_VIDEO_FORMAT_INFO_W_SUB (finfo, comp[i])
          > GST_VIDEO_FORMAT_INFO_W_SUB (finfo, c))
        c = comp[i];
    if (c < 0 || GST_VIDEO_FORMAT_INFO_PSTRIDE (finfo, c) <= 0)
      return FALSE;
    w_sub[p] = GST_VIDEO_FORMAT_INFO_W_SUB (finfo, c);
    h_sub[p] = GST_VIDEO_FORMAT_INFO_H_SUB (finfo, c);
    pstride[p] = GST_VIDEO_FORMAT_INFO_PSTRIDE (finfo, c);
    /* a row of whole tiles must lie inside the row the receiver checks */
    width = GST_VIDEO_INFO_WIDTH (info);
    row = ((width + (1u << w_sub[p]) - 1) >> w_sub[p]) * pstride[p];
    if (row > (guint) GST_VIDEO_INFO_PLANE_STRIDE (info, p))
      return FALSE;
  }
  return shm_tile_grid_init (grid, GST_VIDEO_INFO_WIDTH (info),
      GST_VIDEO_INFO_FIELD_HEIGHT (info), n, w_sub, h_sub, pstride);
}

/* @meta as a damage rectangle, or NULL when it is another meta. */
static const GstVideoRegionOfInterestMeta *
damage_roi (const GstMeta * meta)
{
  static GQuark damage;

  if (!damage)
    damage = g_quark_from_static_string (GST_SHM_DAMAGE_ROI_TYPE);
  if (meta->info->api != GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE
      || ((const GstVideoRegionOfInterestMeta *) meta)->roi_type != damage)
    return NULL;
  return (const GstVideoRegionOfInterestMeta *) meta;
}

/* ------------------------------------------------------------------ */
/* shmsink */

void
gst_shm_damage_sender_reset (GstShmDamageSender * ds)
{
  gst_clear_buffer (&ds->prev);
  ds->have_prev = FALSE;
  memset (&ds->upstream, 0, sizeof ds->upstream);
  ds->upstream_all = FALSE;
}

/**
 * gst_shm_damage_sender_set_caps:
 * @info: (nullable): the new caps, or NULL when they are not raw video
 *
 * Frames of new caps start whole.
 */
void
gst_shm_damage_sender_set_caps (GstShmDamageSender * ds,
    GstShmDamageMode mode, const GstVideoInfo * info)
{
  gst_shm_damage_sender_reset (ds);
  ds->mode = mode;
  memset (&ds->grid, 0, sizeof ds->grid);
  if (mode != GST_SHM_DAMAGE_OFF && info) {
    ds->vinfo = *info;
    gst_shm_tile_grid_from_info (&ds->grid, info);
  }
}


/**
 * gst_shm_damage_sender_note:
 *
 * damage=upstream: takes in the damage of @buf, every buffer that reaches
 * the sink's pad, rendered or not (a buffer with no damage meta: all of it
 * changed).
 */
void
gst_shm_damage_sender_note (GstShmDamageSender * ds, GstBuffer * buf)
{
  gpointer state = NULL;
  const GstVideoRegionOfInterestMeta *roi;
  gboolean any = FALSE;
  GstMeta *meta;

  if (ds->mode != GST_SHM_DAMAGE_UPSTREAM || !ds->grid.tile)
    return;
  /* (regions of interest of other types say nothing of damage) */
  while ((meta = gst_buffer_iterate_meta_filtered (buf, &state,
              GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE))) {
    ShmRect rect;
    if (!(roi = damage_roi (meta)))
      continue;
    rect.x = roi->x;
    rect.y = roi->y;
    rect.w = roi->w;
    rect.h = roi->h;
    shm_tile_map_add_rect (&ds->upstream, &ds->grid, &rect);
    any = TRUE;
  }
  if (!any)
    ds->upstream_all = TRUE;
}

static void
planes_of (const GstVideoFrame * f, ShmPlanes * planes)
{
  for (guint p = 0; p < GST_VIDEO_FRAME_N_PLANES (f); p++) {
    planes->data[p] = GST_VIDEO_FRAME_PLANE_DATA (f, p);
    planes->stride[p] = GST_VIDEO_FRAME_PLANE_STRIDE (f, p);
  }
}

/* Compares @buf with the frame sent before, tile by tile. */
static gboolean
compare (GstShmDamageSender * ds, GstBuffer * buf, ShmTileMap * map)
{
  GstVideoFrame a, b;
  ShmPlanes pa = { {0}, {0} }, pb = { {0}, {0} };
  gboolean ok = FALSE;

  if (!gst_video_frame_map (&a, &ds->vinfo, buf, GST_MAP_READ))
    return FALSE;
  if (gst_video_frame_map (&b, &ds->vinfo, ds->prev, GST_MAP_READ)) {
    planes_of (&a, &pa);
    planes_of (&b, &pb);
    ds->tiles_changed += shm_damage_compute (&ds->grid, &pa, &pb, map);
    ok = TRUE;
    gst_video_frame_unmap (&b);
  }
  gst_video_frame_unmap (&a);
  return ok;
}

/**
 * gst_shm_damage_sender_compute:
 *
 * Fills in @r's tile map: the tiles of @buf that differ from the frame
 * sent before (the engine sets which frame that is).  A frame with
 * nothing before it has every tile set.
 */
void
gst_shm_damage_sender_compute (GstShmDamageSender * ds, GstBuffer * buf,
    ShmRecord * r)
{
  gint64 start = g_get_monotonic_time ();
  gboolean ok = FALSE;

  if (!ds->grid.tile)
    return;
  if (!ds->have_prev) {
    /* the first of its caps: all of it */
    shm_tile_map_fill (&r->damage, &ds->grid);
    ds->tiles_changed += shm_tile_grid_n_tiles (&ds->grid);
    ok = TRUE;
  } else if (ds->mode == GST_SHM_DAMAGE_COMPUTE) {
    ok = compare (ds, buf, &r->damage);
  } else if (ds->mode == GST_SHM_DAMAGE_UPSTREAM) {
    r->damage = ds->upstream;
    if (ds->upstream_all)
      shm_tile_map_fill (&r->damage, &ds->grid);
    ds->tiles_changed += shm_tile_map_count (&r->damage, &ds->grid);
    ok = TRUE;
  }
  if (!ok)
    return;
  r->record_flags |= SHM_RECORD_FLAG_DAMAGE;
  r->tile = ds->grid.tile;
  r->cols = ds->grid.cols;
  r->rows = ds->grid.rows;
  ds->frames++;
  ds->tiles += shm_tile_grid_n_tiles (&ds->grid);
  ds->time_ns += (g_get_monotonic_time () - start) * 1000;
}

/**
 * gst_shm_damage_sender_sent:
 *
 * @buf went out: the next frame's damage is relative to it.
 */
void
gst_shm_damage_sender_sent (GstShmDamageSender * ds, GstBuffer * buf)
{
  if (!ds->grid.tile)
    return;
  /* (only compute reads it: upstream holds no slot for nothing) */
  if (ds->mode == GST_SHM_DAMAGE_COMPUTE)
    gst_buffer_replace (&ds->prev, buf);
  ds->have_prev = TRUE;
  memset (&ds->upstream, 0, sizeof ds->upstream);
  ds->upstream_all = FALSE;
}

/* ------------------------------------------------------------------ */
/* shmsrc */

/* Which frame a buffer holds, in which layout. */
typedef struct
{
  guint64 session, seq;
  guint32 caps_gen;
  guint64 size;
  guint n_planes;
  guint64 offset[SHM_RECORD_MAX_PLANES];
  guint32 stride[SHM_RECORD_MAX_PLANES];
} FrameId;

typedef struct
{
  GstBuffer *buf;               /* ours: a ref */
  FrameId id;
} Kept;

typedef struct
{
  guint64 session, seq, base;
  guint32 caps_gen;
  ShmTileMap map;
} Step;

struct _GstShmDamageReceiver
{
  GstVideoInfo vinfo;
  ShmTileGrid grid;             /* tile 0: no damage for these caps */
  Kept kept[MAX_KEPT];
  Step steps[MAX_STEPS];
  guint n_steps;                /* ever noted */
  gboolean have_pushed;
  FrameId pushed;               /* the last frame pushed */
};

GstShmDamageReceiver *
gst_shm_damage_receiver_new (void)
{
  return g_new0 (GstShmDamageReceiver, 1);
}

static void
forget (GstShmDamageReceiver * dr)
{
  for (guint i = 0; i < MAX_KEPT; i++)
    gst_clear_buffer (&dr->kept[i].buf);
  dr->n_steps = 0;
  dr->have_pushed = FALSE;
}

void
gst_shm_damage_receiver_free (GstShmDamageReceiver * dr)
{
  if (!dr)
    return;
  forget (dr);
  g_free (dr);
}

/**
 * gst_shm_damage_receiver_set_info:
 * @info: (nullable): the caps set on the pad, NULL when not raw video
 */
void
gst_shm_damage_receiver_set_info (GstShmDamageReceiver * dr,
    const GstVideoInfo * info)
{
  forget (dr);
  memset (&dr->grid, 0, sizeof dr->grid);
  if (info) {
    dr->vinfo = *info;
    gst_shm_tile_grid_from_info (&dr->grid, info);
  }
}

/**
 * gst_shm_damage_receiver_active:
 *
 * Whether @r goes through the damage receiver: it carries a tile map (it
 * may not fit) or holds only tiles.
 */
gboolean
gst_shm_damage_receiver_active (GstShmDamageReceiver * dr, const ShmRecord * r)
{
  return (r->record_flags & (SHM_RECORD_FLAG_DAMAGE | SHM_RECORD_FLAG_PARTIAL))
      != 0;
}

static void
id_of (FrameId * id, const ShmRecord * r, guint64 session)
{
  memset (id, 0, sizeof *id);
  id->session = session;
  id->seq = r->seq;
  id->caps_gen = r->caps_gen;
  id->size = r->size;
  id->n_planes = r->n_planes;
  for (guint p = 0; p < r->n_planes; p++) {
    id->offset[p] = r->plane_offset[p];
    id->stride[p] = r->plane_stride[p];
  }
}

/* Same stream and layout (any frame). */
static gboolean
same_layout (const FrameId * a, const FrameId * b)
{
  if (a->session != b->session || a->caps_gen != b->caps_gen
      || a->size != b->size || a->n_planes != b->n_planes)
    return FALSE;
  for (guint p = 0; p < a->n_planes; p++)
    if (a->offset[p] != b->offset[p] || a->stride[p] != b->stride[p])
      return FALSE;
  return TRUE;
}

static void
note_step (GstShmDamageReceiver * dr, const ShmRecord * r, guint64 session)
{
  Step *s;

  if (!shm_record_damage_fits (r, &dr->grid))
    return;
  if (dr->n_steps > 0) {
    s = &dr->steps[(dr->n_steps - 1) % MAX_STEPS];
    if (s->seq == r->seq && s->session == session && s->caps_gen == r->caps_gen)
      return;
  }
  s = &dr->steps[dr->n_steps++ % MAX_STEPS];
  s->session = session;
  s->caps_gen = r->caps_gen;
  s->seq = r->seq;
  s->base = r->damage_base;
  s->map = r->damage;
}

/* The tiles that changed from frame @from to frame @to of @id's stream,
 * when the maps this receiver saw lead from one to the other. */
static gboolean
changed_since (GstShmDamageReceiver * dr, const FrameId * id, guint64 from,
    guint64 to, ShmTileMap * out)
{
  guint64 cur = to;

  memset (out, 0, sizeof *out);
  for (guint hops = 0; hops <= MAX_STEPS; hops++) {
    const Step *s = NULL;
    if (cur == from)
      return TRUE;
    for (guint i = 0; i < MIN (dr->n_steps, MAX_STEPS); i++)
      if (dr->steps[i].seq == cur && dr->steps[i].session == id->session
          && dr->steps[i].caps_gen == id->caps_gen)
        s = &dr->steps[i];
    if (!s)
      return FALSE;
    shm_tile_map_or (out, &s->map);
    cur = s->base;
  }
  return FALSE;
}

/* A buffer of ours that nothing else holds, and that we may write. */
static gboolean
kept_free (const Kept * k)
{
  return k->buf && GST_MINI_OBJECT_REFCOUNT_VALUE (k->buf) == 1
      && gst_buffer_is_all_memory_writable (k->buf);
}

static gboolean
map_planes (GstBuffer * buf, const FrameId * id, GstMapFlags flags,
    GstMapInfo * info, guint8 ** data, gsize * stride)
{
  if (!gst_buffer_map (buf, info, flags))
    return FALSE;
  if (info->size < id->size) {
    gst_buffer_unmap (buf, info);
    return FALSE;
  }
  for (guint p = 0; p < id->n_planes; p++) {
    data[p] = info->data + id->offset[p];
    stride[p] = id->stride[p];
  }
  return TRUE;
}

static gboolean
remove_damage_meta (GstBuffer * buf, GstMeta ** meta, gpointer data)
{
  if (damage_roi (*meta))
    *meta = NULL;
  return TRUE;
}

/* @buf (holding frames of @id's stream) described in the sender's
 * layout; returns @buf. */
static GstBuffer *
with_video_meta (GstShmDamageReceiver * dr, GstBuffer * buf, const FrameId * id)
{
  gsize offsets[GST_VIDEO_MAX_PLANES];
  gint strides[GST_VIDEO_MAX_PLANES];

  for (guint p = 0; p < id->n_planes; p++) {
    offsets[p] = id->offset[p];
    strides[p] = id->stride[p];
  }
  gst_buffer_add_video_meta_full (buf, GST_VIDEO_FRAME_FLAG_NONE,
      GST_VIDEO_INFO_FORMAT (&dr->vinfo), GST_VIDEO_INFO_WIDTH (&dr->vinfo),
      GST_VIDEO_INFO_HEIGHT (&dr->vinfo), id->n_planes, offsets, strides);
  return buf;
}

/* A new buffer of ours for @id's frames, in the sender's layout. */
static GstBuffer *
new_buffer (GstShmDamageReceiver * dr, const FrameId * id)
{
  GstBuffer *buf = gst_buffer_new_allocate (NULL, id->size, NULL);

  return buf ? with_video_meta (dr, buf, id) : NULL;
}

/* A place for a new buffer: an empty one, else a free one of another
 * layout, else the oldest that is not @spare. */
static Kept *
make_room (GstShmDamageReceiver * dr, const Kept * spare)
{
  Kept *oldest = NULL;

  for (guint i = 0; i < MAX_KEPT; i++)
    if (!dr->kept[i].buf)
      return &dr->kept[i];
  for (guint i = 0; i < MAX_KEPT; i++)
    if (kept_free (&dr->kept[i]))
      oldest = &dr->kept[i];
  if (!oldest) {
    for (guint i = 0; i < MAX_KEPT; i++)
      if (&dr->kept[i] != spare && (!oldest
              || dr->kept[i].id.seq < oldest->id.seq))
        oldest = &dr->kept[i];
  }
  gst_clear_buffer (&oldest->buf);
  return oldest;
}

/* A free buffer of ours brought up to frame @target, whole: the
 * tiles that changed since the frame it holds, when the maps tell them,
 * else all of it, from @src (frame @target, at @data).  NULL when no
 * memory could be had. */
static Kept *
bring_up (GstShmDamageReceiver * dr, const FrameId * target,
    const guint8 * data, const Kept * spare, gboolean from_wc, guint64 * copied)
{
  Kept *best = NULL, *k;
  ShmTileMap map, best_map;
  ShmPlanes src = { {0}, {0} };
  guint8 *dst[SHM_RECORD_MAX_PLANES];
  gsize dst_stride[SHM_RECORD_MAX_PLANES];
  GstMapInfo info;

  for (guint i = 0; i < MAX_KEPT; i++) {
    k = &dr->kept[i];
    if (kept_free (k) && same_layout (&k->id, target)
        && changed_since (dr, target, k->id.seq, target->seq, &map)
        && (!best || k->id.seq > best->id.seq)) {
      best = k;
      best_map = map;
    }
  }
  for (guint p = 0; p < target->n_planes; p++) {
    src.data[p] = data + target->offset[p];
    src.stride[p] = target->stride[p];
  }
  if (best && map_planes (best->buf, target, GST_MAP_WRITE, &info, dst,
          dst_stride)) {
    *copied += shm_damage_copy (&dr->grid, &best_map, dst, dst_stride, &src,
        from_wc);
    gst_buffer_unmap (best->buf, &info);
    best->id = *target;
    return best;
  }
  /* all of it: into a free buffer of this layout, or a new one */
  k = NULL;
  for (guint i = 0; i < MAX_KEPT && !k; i++)
    if (kept_free (&dr->kept[i]) && same_layout (&dr->kept[i].id, target))
      k = &dr->kept[i];
  if (!k) {
    k = make_room (dr, spare);
    k->buf = new_buffer (dr, target);
  }
  if (!k->buf || !gst_buffer_map (k->buf, &info, GST_MAP_WRITE)) {
    gst_clear_buffer (&k->buf);
    return NULL;
  }
  if (from_wc)
    shm_copy_from_wc (info.data, data, target->size);
  else
    memcpy (info.data, data, target->size);
  gst_buffer_unmap (k->buf, &info);
  *copied += target->size;
  k->id = *target;
  return k;
}

static void
add_rect (GstBuffer * buf, guint x, guint y, guint w, guint h)
{
  gst_buffer_add_video_region_of_interest_meta (buf, GST_SHM_DAMAGE_ROI_TYPE,
      x, y, w, h);
}

/**
 * gst_shm_damage_receiver_add_meta:
 * @buf: writable
 *
 * Attaches what changed since the frame pushed before, when @r carries a
 * tile map: the changed area as rectangles, one 0x0 rectangle when
 * nothing changed, the whole frame when this receiver cannot tell (it
 * missed a frame, or it is the first).
 */
void
gst_shm_damage_receiver_add_meta (GstShmDamageReceiver * dr, GstBuffer * buf,
    const ShmRecord * r, guint64 session)
{
  ShmRect rects[MAX_RECTS];
  ShmTileMap map;
  FrameId id;
  guint n;

  gst_buffer_foreach_meta (buf, remove_damage_meta, NULL);
  if (!shm_record_damage_fits (r, &dr->grid))
    return;
  id_of (&id, r, session);
  note_step (dr, r, session);
  if (dr->have_pushed && dr->pushed.session == session
      && dr->pushed.caps_gen == r->caps_gen
      && changed_since (dr, &id, dr->pushed.seq, r->seq, &map)) {
    n = shm_damage_rects (&dr->grid, &map, rects, MAX_RECTS);
    if (n == 0)
      add_rect (buf, 0, 0, 0, 0);
    for (guint i = 0; i < n; i++)
      add_rect (buf, rects[i].x, rects[i].y, rects[i].w, rects[i].h);
  } else {
    add_rect (buf, 0, 0, dr->grid.width, dr->grid.height);
  }
  dr->pushed = id;
  dr->have_pushed = TRUE;
}

static gboolean
copy_damage_meta (GstBuffer * buf, GstMeta ** meta, gpointer data)
{
  const GstVideoRegionOfInterestMeta *roi = damage_roi (*meta);

  if (roi)
    add_rect (data, roi->x, roi->y, roi->w, roi->h);
  return TRUE;
}

/**
 * gst_shm_damage_copy_meta:
 * @to: writable
 *
 * The damage metas of @from, on @to (a copy in another layout).
 */
void
gst_shm_damage_copy_meta (GstBuffer * from, GstBuffer * to)
{
  gst_buffer_foreach_meta (from, copy_damage_meta, to);
}

/* @k's buffer, ready to push: flags and metas of its last push gone, the
 * damage attached (not for a frame that is only applied, never pushed);
 * we keep our reference. */
static GstBuffer *
push_kept (GstShmDamageReceiver * dr, Kept * k, const ShmRecord * r,
    guint64 session, gboolean push)
{
  GstBuffer *buf = k->buf;

  GST_BUFFER_FLAGS (buf) = 0;
  GST_BUFFER_PTS (buf) = GST_BUFFER_DTS (buf) = GST_CLOCK_TIME_NONE;
  GST_BUFFER_DURATION (buf) = GST_CLOCK_TIME_NONE;
  if (push)
    gst_shm_damage_receiver_add_meta (dr, buf, r, session);
  return gst_buffer_ref (buf);
}

/**
 * gst_shm_damage_receiver_copy:
 * @data: the whole frame (in the area)
 * @from_wc: @data lies in a write-combined BAR
 * @copied: (inout): bytes copied are added
 *
 * The frame @r as a buffer of ours, patched from one that holds an
 * earlier frame when the tile maps allow it.  Downstream gets a buffer we
 * keep a reference to (it must copy it to write it).
 */
GstBuffer *
gst_shm_damage_receiver_copy (GstShmDamageReceiver * dr, const ShmRecord * r,
    guint64 session, const guint8 * data, gboolean from_wc, guint64 * copied)
{
  FrameId id;
  Kept *k;

  id_of (&id, r, session);
  note_step (dr, r, session);
  k = bring_up (dr, &id, data, NULL, from_wc, copied);
  return k ? push_kept (dr, k, r, session, TRUE) : NULL;
}

static Kept *
find_kept (GstShmDamageReceiver * dr, const FrameId * id)
{
  for (guint i = 0; i < MAX_KEPT; i++)
    if (dr->kept[i].buf && dr->kept[i].id.seq == id->seq
        && same_layout (&dr->kept[i].id, id))
      return &dr->kept[i];
  return NULL;
}

/* An inline frame sent whole: its bytes, kept (never written) for the
 * frames that will come as tiles. */
static GstBuffer *
keep_whole (GstShmDamageReceiver * dr, const ShmRecord * r, guint64 session,
    GBytes * payload, gboolean push)
{
  Kept *k = make_room (dr, NULL);
  FrameId id;

  id_of (&id, r, session);
  note_step (dr, r, session);
  k->buf = with_video_meta (dr, gst_buffer_new_wrapped_bytes (payload), &id);
  k->id = id;
  return push_kept (dr, k, r, session, push);
}

/**
 * gst_shm_damage_receiver_inline:
 * @payload: the frame's bytes as they came: whole, or its changed tiles
 * @push: FALSE for a frame that is only applied (dropped: the frames after
 *   it patch it), never pushed
 * @need_full: (out): set when a frame that came as tiles patches one this
 *   receiver does not have (ask the sender for a whole one)
 *
 * An inline frame of a stream with damage as a buffer.  NULL when it
 * cannot be made (@need_full, or no memory).
 */
GstBuffer *
gst_shm_damage_receiver_inline (GstShmDamageReceiver * dr,
    const ShmRecord * r, guint64 session, GBytes * payload, gboolean push,
    guint64 * copied, gboolean * need_full)
{
  FrameId id, base_id;
  Kept *base, *k;
  GstMapInfo src_info, info;
  guint8 *dst[SHM_RECORD_MAX_PLANES], *src[SHM_RECORD_MAX_PLANES];
  gsize dst_stride[SHM_RECORD_MAX_PLANES], src_stride[SHM_RECORD_MAX_PLANES];
  gsize len;
  const guint8 *bytes = g_bytes_get_data (payload, &len);
  gboolean ok;

  *need_full = FALSE;
  if (!(r->record_flags & SHM_RECORD_FLAG_PARTIAL))
    return keep_whole (dr, r, session, payload, push);
  id_of (&id, r, session);
  base_id = id;
  base_id.seq = r->damage_base;
  base = find_kept (dr, &base_id);
  if (!base || !shm_record_damage_fits (r, &dr->grid)
      || shm_damage_bytes (&dr->grid, &r->damage) != len) {
    *need_full = TRUE;
    return NULL;
  }
  note_step (dr, r, session);
  if (kept_free (base)) {
    k = base;
  } else {
    /* downstream still has it: another buffer of ours catches up */
    if (!map_planes (base->buf, &base_id, GST_MAP_READ, &src_info, src,
            src_stride))
      return NULL;
    k = bring_up (dr, &base_id, src_info.data, base, FALSE, copied);
    gst_buffer_unmap (base->buf, &src_info);
    if (!k)
      return NULL;
  }
  if (!map_planes (k->buf, &id, GST_MAP_WRITE, &info, dst, dst_stride))
    return NULL;
  ok = shm_damage_unpack (&dr->grid, &r->damage, bytes, len, dst, dst_stride);
  gst_buffer_unmap (k->buf, &info);
  if (!ok) {
    *need_full = TRUE;
    return NULL;
  }
  *copied += len;
  k->id = id;
  return push_kept (dr, k, r, session, push);
}

/* gst-shm: frame records
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "shmrecord.h"
#include "shmproto.h"

#include <string.h>

#define R_TYPE 0
#define R_RECORD_FLAGS 4
#define R_SEQ 8
#define R_SLOT 16
#define R_CAPS_GEN 20
#define R_OFFSET 24
#define R_SIZE 32
#define R_PTS 40
#define R_DTS 48
#define R_DURATION 56
#define R_MONO_PTS 64
#define R_MONO_DTS 72
#define R_SEND_TIME 80
#define R_BUFFER_OFFSET 88
#define R_BUFFER_OFFSET_END 96
#define R_BUFFER_FLAGS 104
#define R_N_PLANES 108
#define R_PLANE_OFFSET 112
#define R_PLANE_STRIDE 144
#define R_DAMAGE_BASE 160
#define R_TILE 168
#define R_COLS 170
#define R_ROWS 172
#define R_TILE_MAP 176
#define R_END (R_TILE_MAP + SHM_DAMAGE_MAP_BYTES)

static_assert (R_PLANE_OFFSET + 8 * SHM_RECORD_MAX_PLANES == R_PLANE_STRIDE,
    "plane offsets");
static_assert (R_PLANE_STRIDE + 4 * SHM_RECORD_MAX_PLANES == R_DAMAGE_BASE,
    "plane strides");
static_assert (R_END <= SHM_RECORD_SIZE, "record fits");

static inline void
put64 (guint8 * b, gsize off, guint64 v)
{
  v = GUINT64_TO_LE (v);
  memcpy (b + off, &v, 8);
}

static inline void
put32 (guint8 * b, gsize off, guint32 v)
{
  v = GUINT32_TO_LE (v);
  memcpy (b + off, &v, 4);
}

static inline void
put16 (guint8 * b, gsize off, guint16 v)
{
  v = GUINT16_TO_LE (v);
  memcpy (b + off, &v, 2);
}

static inline guint16
get16 (const guint8 * b, gsize off)
{
  guint16 v;
  memcpy (&v, b + off, 2);
  return GUINT16_FROM_LE (v);
}

static inline guint64
get64 (const guint8 * b, gsize off)
{
  guint64 v;
  memcpy (&v, b + off, 8);
  return GUINT64_FROM_LE (v);
}

static inline guint32
get32 (const guint8 * b, gsize off)
{
  guint32 v;
  memcpy (&v, b + off, 4);
  return GUINT32_FROM_LE (v);
}

/**
 * shm_record_encode:
 * @out: SHM_RECORD_SIZE bytes
 */
void
shm_record_encode (const ShmRecord * r, guint8 * out)
{
  memset (out, 0, SHM_RECORD_SIZE);
  put32 (out, R_TYPE, r->type);
  put32 (out, R_RECORD_FLAGS, r->record_flags);
  put64 (out, R_SEQ, r->seq);
  put32 (out, R_SLOT, r->slot);
  put32 (out, R_CAPS_GEN, r->caps_gen);
  put64 (out, R_OFFSET, r->offset);
  put64 (out, R_SIZE, r->size);
  put64 (out, R_PTS, r->pts);
  put64 (out, R_DTS, r->dts);
  put64 (out, R_DURATION, r->duration);
  put64 (out, R_MONO_PTS, r->mono_pts);
  put64 (out, R_MONO_DTS, r->mono_dts);
  put64 (out, R_SEND_TIME, r->send_time);
  put64 (out, R_BUFFER_OFFSET, r->buffer_offset);
  put64 (out, R_BUFFER_OFFSET_END, r->buffer_offset_end);
  put32 (out, R_BUFFER_FLAGS, r->buffer_flags);
  put32 (out, R_N_PLANES, r->n_planes);
  for (guint i = 0; i < SHM_RECORD_MAX_PLANES; i++) {
    put64 (out, R_PLANE_OFFSET + 8 * i, i < r->n_planes ? r->plane_offset[i]
        : 0);
    put32 (out, R_PLANE_STRIDE + 4 * i, i < r->n_planes ? r->plane_stride[i]
        : 0);
  }
  if (r->record_flags & SHM_RECORD_FLAG_DAMAGE) {
    put64 (out, R_DAMAGE_BASE, r->damage_base);
    put16 (out, R_TILE, r->tile);
    put16 (out, R_COLS, r->cols);
    put16 (out, R_ROWS, r->rows);
    memcpy (out + R_TILE_MAP, r->damage.bits, SHM_DAMAGE_MAP_BYTES);
  }
}

/**
 * shm_record_decode:
 * @in: SHM_RECORD_SIZE bytes, already copied out of shared memory
 *
 * Decodes a record and checks what holds for every record: a known type,
 * a plane count within bounds, no bits in the fields reserved for later.
 * What depends on the stream (slot, sizes, layout) is checked by
 * shm_record_check_frame().
 */
gboolean
shm_record_decode (const guint8 * in, ShmRecord * r, GError ** error)
{
  memset (r, 0, sizeof *r);
  r->type = get32 (in, R_TYPE);
  r->record_flags = get32 (in, R_RECORD_FLAGS) & SHM_RECORD_FLAGS_KNOWN;
  r->seq = get64 (in, R_SEQ);
  r->slot = get32 (in, R_SLOT);
  r->caps_gen = get32 (in, R_CAPS_GEN);
  r->offset = get64 (in, R_OFFSET);
  r->size = get64 (in, R_SIZE);
  r->pts = get64 (in, R_PTS);
  r->dts = get64 (in, R_DTS);
  r->duration = get64 (in, R_DURATION);
  r->mono_pts = get64 (in, R_MONO_PTS);
  r->mono_dts = get64 (in, R_MONO_DTS);
  r->send_time = get64 (in, R_SEND_TIME);
  r->buffer_offset = get64 (in, R_BUFFER_OFFSET);
  r->buffer_offset_end = get64 (in, R_BUFFER_OFFSET_END);
  r->buffer_flags = get32 (in, R_BUFFER_FLAGS) & SHM_BUFFER_FLAGS_KNOWN;
  r->n_planes = get32 (in, R_N_PLANES);

  if (r->type != SHM_RECORD_FRAME && r->type != SHM_RECORD_EOS) {
    g_set_error (error, SHM_PROTO_ERROR, SHM_PROTO_ERROR_INVALID,
        "record of unknown type %u", r->type);
    return FALSE;
  }
  if (r->n_planes > SHM_RECORD_MAX_PLANES) {
    g_set_error (error, SHM_PROTO_ERROR, SHM_PROTO_ERROR_INVALID,
        "record with %u planes (at most %d)", r->n_planes,
        SHM_RECORD_MAX_PLANES);
    return FALSE;
  }
  for (guint i = 0; i < r->n_planes; i++) {
    r->plane_offset[i] = get64 (in, R_PLANE_OFFSET + 8 * i);
    r->plane_stride[i] = get32 (in, R_PLANE_STRIDE + 4 * i);
  }
  if (r->record_flags & SHM_RECORD_FLAG_DAMAGE) {
    r->damage_base = get64 (in, R_DAMAGE_BASE);
    r->tile = get16 (in, R_TILE);
    r->cols = get16 (in, R_COLS);
    r->rows = get16 (in, R_ROWS);
    memcpy (r->damage.bits, in + R_TILE_MAP, SHM_DAMAGE_MAP_BYTES);
  } else if (r->record_flags & SHM_RECORD_FLAG_PARTIAL) {
    g_set_error (error, SHM_PROTO_ERROR, SHM_PROTO_ERROR_INVALID,
        "a partial frame without a tile map");
    return FALSE;
  }
  return TRUE;
}

/**
 * shm_record_damage_fits:
 * @grid: the receiver's own grid for the record's caps
 *
 * Whether the record's tile map can be used: it has one, on the grid the
 * receiver derives from the caps, and sets no tile beyond it.
 */
gboolean
shm_record_damage_fits (const ShmRecord * r, const ShmTileGrid * grid)
{
  return (r->record_flags & SHM_RECORD_FLAG_DAMAGE) && grid->tile
      && r->tile == grid->tile && r->cols == grid->cols
      && r->rows == grid->rows && shm_tile_map_valid (&r->damage, grid);
}

static gboolean
plane_fits (const ShmRecord * r, const ShmFrameLayout * l, guint p)
{
  guint64 need;

  if (l->fixed)
    return r->plane_offset[p] == l->offset[p]
        && r->plane_stride[p] == l->stride[p];
  /* a stride below 2^31 times rows below 2^31: no overflow in 64 bits */
  if (r->plane_stride[p] < l->min_stride[p]
      || r->plane_stride[p] > G_MAXINT32 || l->rows[p] > G_MAXINT32)
    return FALSE;
  need = MAX ((guint64) r->plane_stride[p] * l->rows[p], l->min_bytes[p]);
  return r->plane_offset[p] <= r->size && need <= r->size - r->plane_offset[p];
}

/**
 * shm_record_check_frame:
 * @n_slots: slots of the area, or 0 for a frame that comes inline
 * @slot_size: bytes of a slot (the largest inline frame)
 * @layout: the layout of the record's caps generation
 *
 * Checks a decoded frame record against the geometry the receiver verified
 * and the layout of its caps: the slot exists, the frame lies inside it,
 * and every plane lies inside the frame.  All arithmetic is bounded first.
 */
gboolean
shm_record_check_frame (const ShmRecord * r, guint32 n_slots,
    guint64 slot_size, const ShmFrameLayout * layout, GError ** error)
{
  if (n_slots > 0 && r->slot >= n_slots) {
    g_set_error (error, SHM_PROTO_ERROR, SHM_PROTO_ERROR_INVALID,
        "frame in slot %u of %u", r->slot, n_slots);
    return FALSE;
  }
  if (r->offset > slot_size || r->size == 0 || r->size > slot_size - r->offset) {
    g_set_error (error, SHM_PROTO_ERROR, SHM_PROTO_ERROR_INVALID,
        "frame of %" G_GUINT64_FORMAT " bytes at %" G_GUINT64_FORMAT
        " does not fit a slot of %" G_GUINT64_FORMAT " bytes", r->size,
        r->offset, slot_size);
    return FALSE;
  }
  if (r->n_planes != layout->n_planes) {
    g_set_error (error, SHM_PROTO_ERROR, SHM_PROTO_ERROR_INVALID,
        "%u planes, the caps have %u", r->n_planes, layout->n_planes);
    return FALSE;
  }
  if (r->size < layout->min_size) {
    g_set_error (error, SHM_PROTO_ERROR, SHM_PROTO_ERROR_INVALID,
        "a frame of %" G_GUINT64_FORMAT " bytes, the caps need %"
        G_GUINT64_FORMAT, r->size, layout->min_size);
    return FALSE;
  }
  for (guint p = 0; p < r->n_planes; p++) {
    if (!plane_fits (r, layout, p)) {
      g_set_error (error, SHM_PROTO_ERROR, SHM_PROTO_ERROR_INVALID,
          "plane %u (offset %" G_GUINT64_FORMAT ", stride %u) does not fit "
          "a frame of %" G_GUINT64_FORMAT " bytes", p, r->plane_offset[p],
          r->plane_stride[p], r->size);
      return FALSE;
    }
  }
  return TRUE;
}

/* gst-shm: damage, the tiles of a frame that changed
 *
 * Part of the core (GLib and ORC).  A frame is cut into square tiles
 * (SHM_DAMAGE_MIN_TILE pixels a side, doubled until the grid has at most
 * SHM_DAMAGE_MAX_TILES tiles) and a tile map has one bit per tile, row by
 * row: set when the tile differs from the frame the map is relative to.
 * The map travels in the frame record (shmrecord.h); docs/protocol.md is
 * the normative text.  Both sides derive the grid from the caps: a record
 * whose grid differs from the receiver's is not used.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#ifndef __SHM_DAMAGE_H__
#define __SHM_DAMAGE_H__

#include <glib.h>

G_BEGIN_DECLS

#define SHM_DAMAGE_MAP_BYTES 80
#define SHM_DAMAGE_MAX_TILES (SHM_DAMAGE_MAP_BYTES * 8)
#define SHM_DAMAGE_MIN_TILE 64
#define SHM_DAMAGE_MAX_PLANES 4

typedef struct
{
  guint8 bits[SHM_DAMAGE_MAP_BYTES];
} ShmTileMap;

/* How a raw video format's planes are addressed: plane p's pixel x lies
 * at byte (x >> w_sub[p]) * pstride[p] of its row, and row y is plane row
 * y >> h_sub[p]. */
typedef struct
{
  guint width, height;
  guint tile;                   /* pixels a side */
  guint cols, rows;
  guint n_planes;
  guint w_sub[SHM_DAMAGE_MAX_PLANES];
  guint h_sub[SHM_DAMAGE_MAX_PLANES];
  guint pstride[SHM_DAMAGE_MAX_PLANES];
} ShmTileGrid;

/* A frame's planes as the grid reads them. */
typedef struct
{
  const guint8 *data[SHM_DAMAGE_MAX_PLANES];
  gsize stride[SHM_DAMAGE_MAX_PLANES];
} ShmPlanes;

/* A rectangle of pixels. */
typedef struct
{
  guint x, y, w, h;
} ShmRect;

gboolean shm_tile_grid_init (ShmTileGrid * grid, guint width, guint height,
    guint n_planes, const guint * w_sub, const guint * h_sub,
    const guint * pstride);
gboolean shm_tile_grid_equal (const ShmTileGrid * a, const ShmTileGrid * b);
guint shm_tile_grid_n_tiles (const ShmTileGrid * grid);

static inline gboolean
shm_tile_map_test (const ShmTileMap * map, guint i)
{
  return (map->bits[i >> 3] >> (i & 7)) & 1;
}

static inline void
shm_tile_map_set (ShmTileMap * map, guint i)
{
  map->bits[i >> 3] |= 1 << (i & 7);
}

void shm_tile_map_fill (ShmTileMap * map, const ShmTileGrid * grid);
void shm_tile_map_or (ShmTileMap * map, const ShmTileMap * other);
guint shm_tile_map_count (const ShmTileMap * map, const ShmTileGrid * grid);
gboolean shm_tile_map_valid (const ShmTileMap * map, const ShmTileGrid * grid);
void shm_tile_map_add_rect (ShmTileMap * map, const ShmTileGrid * grid,
    const ShmRect * rect);

guint shm_damage_compute (const ShmTileGrid * grid, const ShmPlanes * a,
    const ShmPlanes * b, ShmTileMap * map);
guint64 shm_damage_bytes (const ShmTileGrid * grid, const ShmTileMap * map);
guint64 shm_damage_copy (const ShmTileGrid * grid, const ShmTileMap * map,
    guint8 * const *dst, const gsize * dst_stride, const ShmPlanes * src,
    gboolean from_wc);
guint64 shm_damage_pack (const ShmTileGrid * grid, const ShmTileMap * map,
    const ShmPlanes * src, guint8 * out);
gboolean shm_damage_unpack (const ShmTileGrid * grid, const ShmTileMap * map,
    const guint8 * in, gsize len, guint8 * const *dst,
    const gsize * dst_stride);
guint shm_damage_rects (const ShmTileGrid * grid, const ShmTileMap * map,
    ShmRect * rects, guint max_rects);

G_END_DECLS

#endif /* __SHM_DAMAGE_H__ */

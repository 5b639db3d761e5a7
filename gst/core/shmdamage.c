/* gst-shm: damage, the tiles of a frame that changed
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "shmdamage.h"
#include "shmcopy.h"
#include "shmtiles.h"

#include <string.h>

/* The bytes of one plane that a run of tiles covers. */
typedef struct
{
  gsize x, row_bytes;           /* bytes into a row, and how many */
  guint y, n_rows;              /* plane rows */
} PlaneRect;

/**
 * shm_tile_grid_init:
 * @n_planes: 1 to SHM_DAMAGE_MAX_PLANES
 * @w_sub: (array length=n_planes): each plane's horizontal subsampling
 *   shift (0 to 4)
 * @h_sub: (array length=n_planes): its vertical one
 * @pstride: (array length=n_planes): bytes of one (subsampled) pixel
 *
 * The grid of a frame: tiles of SHM_DAMAGE_MIN_TILE pixels a side,
 * doubled until at most SHM_DAMAGE_MAX_TILES tiles cover the frame.
 * Returns FALSE for what no grid describes (a plane of no whole bytes a
 * pixel, an empty frame).
 */
gboolean
shm_tile_grid_init (ShmTileGrid * grid, guint width, guint height,
    guint n_planes, const guint * w_sub, const guint * h_sub,
    const guint * pstride)
{
  memset (grid, 0, sizeof *grid);
  if (width == 0 || height == 0 || width > G_MAXUINT16 * 64
      || height > G_MAXUINT16 * 64 || n_planes == 0
      || n_planes > SHM_DAMAGE_MAX_PLANES)
    return FALSE;
  for (guint p = 0; p < n_planes; p++) {
    if (w_sub[p] > 4 || h_sub[p] > 4 || pstride[p] == 0 || pstride[p] > 64)
      return FALSE;
    grid->w_sub[p] = w_sub[p];
    grid->h_sub[p] = h_sub[p];
    grid->pstride[p] = pstride[p];
  }
  grid->width = width;
  grid->height = height;
  grid->n_planes = n_planes;
  grid->tile = SHM_DAMAGE_MIN_TILE;
  for (;;) {
    grid->cols = (width + grid->tile - 1) / grid->tile;
    grid->rows = (height + grid->tile - 1) / grid->tile;
    if (grid->cols * grid->rows <= SHM_DAMAGE_MAX_TILES)
      return TRUE;
    grid->tile *= 2;
  }
}

gboolean
shm_tile_grid_equal (const ShmTileGrid * a, const ShmTileGrid * b)
{
  return memcmp (a, b, sizeof *a) == 0;
}

guint
shm_tile_grid_n_tiles (const ShmTileGrid * grid)
{
  return grid->cols * grid->rows;
}

/* Plane @p's bytes of tiles [c0, c1) of tile row @row. */
static void
plane_rect (const ShmTileGrid * g, guint p, guint row, guint c0, guint c1,
    PlaneRect * r)
{
  guint x0 = c0 * g->tile, x1 = MIN (c1 * g->tile, g->width);
  guint y0 = row * g->tile, y1 = MIN ((row + 1) * g->tile, g->height);
  guint wm = (1u << g->w_sub[p]) - 1, hm = (1u << g->h_sub[p]) - 1;
  guint sx0 = x0 >> g->w_sub[p], sx1 = (x1 + wm) >> g->w_sub[p];

  r->x = (gsize) sx0 *g->pstride[p];
  r->row_bytes = (gsize) (sx1 - sx0) * g->pstride[p];
  r->y = y0 >> g->h_sub[p];
  r->n_rows = ((y1 + hm) >> g->h_sub[p]) - r->y;
}

/* Calls @func for each run of set tiles of each tile row, in order. */
static void
foreach_run (const ShmTileGrid * g, const ShmTileMap * map,
    void (*func) (const ShmTileGrid * g, guint row, guint c0, guint c1,
        gpointer data), gpointer data)
{
  for (guint row = 0; row < g->rows; row++) {
    guint base = row * g->cols, c = 0;
    while (c < g->cols) {
      guint c0;
      if (!shm_tile_map_test (map, base + c)) {
        c++;
        continue;
      }
      c0 = c;
      while (c < g->cols && shm_tile_map_test (map, base + c))
        c++;
      func (g, row, c0, c, data);
    }
  }
}

/**
 * shm_tile_map_fill:
 *
 * Sets every tile of @grid (a whole frame changed).
 */
void
shm_tile_map_fill (ShmTileMap * map, const ShmTileGrid * grid)
{
  memset (map, 0, sizeof *map);
  for (guint i = 0; i < shm_tile_grid_n_tiles (grid); i++)
    shm_tile_map_set (map, i);
}

void
shm_tile_map_or (ShmTileMap * map, const ShmTileMap * other)
{
  for (guint i = 0; i < SHM_DAMAGE_MAP_BYTES; i++)
    map->bits[i] |= other->bits[i];
}

guint
shm_tile_map_count (const ShmTileMap * map, const ShmTileGrid * grid)
{
  guint n = 0;

  for (guint i = 0; i < shm_tile_grid_n_tiles (grid); i++)
    n += shm_tile_map_test (map, i);
  return n;
}

/**
 * shm_tile_map_valid:
 *
 * Whether @map (from a peer) sets no bit beyond @grid's tiles.
 */
gboolean
shm_tile_map_valid (const ShmTileMap * map, const ShmTileGrid * grid)
{
  for (guint i = shm_tile_grid_n_tiles (grid); i < SHM_DAMAGE_MAX_TILES; i++)
    if (shm_tile_map_test (map, i))
      return FALSE;
  return TRUE;
}

/**
 * shm_tile_map_add_rect:
 *
 * Sets the tiles @rect touches (clipped to the frame).
 */
void
shm_tile_map_add_rect (ShmTileMap * map, const ShmTileGrid * grid,
    const ShmRect * rect)
{
  guint x1, y1;

  if (rect->w == 0 || rect->h == 0 || rect->x >= grid->width
      || rect->y >= grid->height)
    return;
  x1 = MIN ((guint64) rect->x + rect->w, grid->width);
  y1 = MIN ((guint64) rect->y + rect->h, grid->height);
  for (guint r = rect->y / grid->tile; r <= (y1 - 1) / grid->tile; r++)
    for (guint c = rect->x / grid->tile; c <= (x1 - 1) / grid->tile; c++)
      shm_tile_map_set (map, r * grid->cols + c);
}

/**
 * shm_damage_compute:
 * @a: a frame
 * @b: the frame it follows, same grid
 * @map: (out): the tiles where they differ
 *
 * Returns: how many tiles differ.
 */
guint
shm_damage_compute (const ShmTileGrid * grid, const ShmPlanes * a,
    const ShmPlanes * b, ShmTileMap * map)
{
  guint n = 0;
  PlaneRect r;

  memset (map, 0, sizeof *map);
  for (guint row = 0; row < grid->rows; row++) {
    for (guint c = 0; c < grid->cols; c++) {
      for (guint p = 0; p < grid->n_planes; p++) {
        plane_rect (grid, p, row, c, c + 1, &r);
        if (shm_tile_differs (a->data[p] + r.y * a->stride[p] + r.x,
                a->stride[p], b->data[p] + r.y * b->stride[p] + r.x,
                b->stride[p], r.row_bytes, r.n_rows)) {
          shm_tile_map_set (map, row * grid->cols + c);
          n++;
          break;
        }
      }
    }
  }
  return n;
}

static void
count_run (const ShmTileGrid * g, guint row, guint c0, guint c1, gpointer data)
{
  PlaneRect r;

  for (guint p = 0; p < g->n_planes; p++) {
    plane_rect (g, p, row, c0, c1, &r);
    *(guint64 *) data += (guint64) r.row_bytes * r.n_rows;
  }
}

/**
 * shm_damage_bytes:
 *
 * The bytes of the tiles @map sets, over every plane: what
 * shm_damage_copy() copies and shm_damage_pack() writes.
 */
guint64
shm_damage_bytes (const ShmTileGrid * grid, const ShmTileMap * map)
{
  guint64 n = 0;

  foreach_run (grid, map, count_run, &n);
  return n;
}

typedef struct
{
  guint8 *const *dst;
  const gsize *dst_stride;
  const ShmPlanes *src;
  gboolean from_wc;
  guint8 *out;                  /* pack: next byte; unpack: NULL */
  const guint8 *in;             /* unpack: next byte */
  guint64 bytes;
} CopyJob;

static void
copy_run (const ShmTileGrid * g, guint row, guint c0, guint c1, gpointer data)
{
  CopyJob *j = data;
  PlaneRect r;

  for (guint p = 0; p < g->n_planes; p++) {
    plane_rect (g, p, row, c0, c1, &r);
    for (guint y = r.y; y < r.y + r.n_rows; y++) {
      const guint8 *s = j->in ? j->in
          : j->src->data[p] + y * j->src->stride[p] + r.x;
      guint8 *d = j->out ? j->out : j->dst[p] + y * j->dst_stride[p] + r.x;
      if (j->from_wc)
        shm_copy_from_wc (d, s, r.row_bytes);
      else
        memcpy (d, s, r.row_bytes);
      if (j->out)
        j->out += r.row_bytes;
      if (j->in)
        j->in += r.row_bytes;
    }
    j->bytes += (guint64) r.row_bytes * r.n_rows;
  }
}

/**
 * shm_damage_copy:
 * @dst: planes of a frame that holds the frame @map is relative to
 * @from_wc: @src is a write-combined mapping (a PCI BAR)
 *
 * Copies the tiles @map sets from @src into @dst.  Returns the bytes
 * copied.
 */
guint64
shm_damage_copy (const ShmTileGrid * grid, const ShmTileMap * map,
    guint8 * const *dst, const gsize * dst_stride, const ShmPlanes * src,
    gboolean from_wc)
{
  CopyJob j = { dst, dst_stride, src, from_wc, NULL, NULL, 0 };

  foreach_run (grid, map, copy_run, &j);
  return j.bytes;
}

/**
 * shm_damage_pack:
 * @out: shm_damage_bytes() bytes
 *
 * Writes the tiles @map sets, one after the other: for each tile row, for
 * each run of set tiles in it, for each plane, the run's rows.  Returns the
 * bytes written.
 */
guint64
shm_damage_pack (const ShmTileGrid * grid, const ShmTileMap * map,
    const ShmPlanes * src, guint8 * out)
{
  CopyJob j = { NULL, NULL, src, FALSE, out, NULL, 0 };

  foreach_run (grid, map, copy_run, &j);
  return j.bytes;
}

/**
 * shm_damage_unpack:
 * @in: what shm_damage_pack() wrote (from a peer: its length is checked)
 *
 * Copies packed tiles into @dst.  Returns FALSE, having written nothing,
 * when @len is not what @map and @grid make.
 */
gboolean
shm_damage_unpack (const ShmTileGrid * grid, const ShmTileMap * map,
    const guint8 * in, gsize len, guint8 * const *dst, const gsize * dst_stride)
{
  CopyJob j = { dst, dst_stride, NULL, FALSE, NULL, in, 0 };

  if (!shm_tile_map_valid (map, grid) || shm_damage_bytes (grid, map) != len)
    return FALSE;
  foreach_run (grid, map, copy_run, &j);
  return TRUE;
}

typedef struct
{
  ShmRect *rects;
  guint max, n;
} RectJob;

static void
rect_run (const ShmTileGrid * g, guint row, guint c0, guint c1, gpointer data)
{
  RectJob *j = data;
  guint x = c0 * g->tile, w = MIN (c1 * g->tile, g->width) - x;
  guint y = row * g->tile, h = MIN ((row + 1) * g->tile, g->height) - y;

  /* the same run in the row above grows down */
  for (guint i = 0; i < j->n; i++) {
    ShmRect *r = &j->rects[i];
    if (r->x == x && r->w == w && r->y + r->h == y) {
      r->h += h;
      return;
    }
  }
  if (j->n < j->max) {
    j->rects[j->n++] = (ShmRect) {
    x, y, w, h};
  } else if (j->max > 0) {
    /* out of room: the last one grows to cover the rest */
    ShmRect *r = &j->rects[j->max - 1];
    guint x1 = MAX (r->x + r->w, x + w), y1 = MAX (r->y + r->h, y + h);
    r->x = MIN (r->x, x);
    r->y = MIN (r->y, y);
    r->w = x1 - r->x;
    r->h = y1 - r->y;
  }
}

/**
 * shm_damage_rects:
 * @rects: (out caller-allocates): room for @max_rects
 *
 * The changed area as rectangles of pixels: runs of set tiles in a row,
 * joined with the same run of the row above.  With more than @max_rects
 * of them the last one covers the rest.  Returns how many.
 */
guint
shm_damage_rects (const ShmTileGrid * grid, const ShmTileMap * map,
    ShmRect * rects, guint max_rects)
{
  RectJob j = { rects, max_rects, 0 };

  foreach_run (grid, map, rect_run, &j);
  return j.n;
}

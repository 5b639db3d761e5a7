/* gst-shm: damage (tile grids, maps, copies and the record's tile map)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "shmdamage.h"
#include "shmrecord.h"

#include <string.h>

/* A frame of I420-like planes (or packed pixels) in memory of its own. */
typedef struct
{
  guint8 *mem[SHM_DAMAGE_MAX_PLANES];
  ShmPlanes planes;
  guint rows[SHM_DAMAGE_MAX_PLANES];
  gsize row_bytes[SHM_DAMAGE_MAX_PLANES];
} Frame;

static void
frame_init (Frame * f, const ShmTileGrid * g, guint pad)
{
  memset (f, 0, sizeof *f);
  for (guint p = 0; p < g->n_planes; p++) {
    guint w = (g->width + (1u << g->w_sub[p]) - 1) >> g->w_sub[p];
    f->rows[p] = (g->height + (1u << g->h_sub[p]) - 1) >> g->h_sub[p];
    f->row_bytes[p] = (gsize) w *g->pstride[p];
    f->planes.stride[p] = f->row_bytes[p] + pad;
    f->mem[p] = g_malloc0 (f->planes.stride[p] * f->rows[p]);
    f->planes.data[p] = f->mem[p];
  }
}

static void
frame_clear (Frame * f)
{
  for (guint p = 0; p < SHM_DAMAGE_MAX_PLANES; p++)
    g_free (f->mem[p]);
}

static void
frame_random (Frame * f, const ShmTileGrid * g, GRand * r)
{
  for (guint p = 0; p < g->n_planes; p++)
    for (gsize i = 0; i < f->planes.stride[p] * f->rows[p]; i++)
      f->mem[p][i] = g_rand_int (r);
}

static void
frame_copy (Frame * dst, const Frame * src, const ShmTileGrid * g)
{
  for (guint p = 0; p < g->n_planes; p++)
    for (guint y = 0; y < src->rows[p]; y++)
      memcpy (dst->mem[p] + y * dst->planes.stride[p],
          src->mem[p] + y * src->planes.stride[p], src->row_bytes[p]);
}

/* The visible bytes of both frames are the same. */
static gboolean
frame_equal (const Frame * a, const Frame * b, const ShmTileGrid * g)
{
  for (guint p = 0; p < g->n_planes; p++)
    for (guint y = 0; y < a->rows[p]; y++)
      if (memcmp (a->mem[p] + y * a->planes.stride[p],
              b->mem[p] + y * b->planes.stride[p], a->row_bytes[p]) != 0)
        return FALSE;
  return TRUE;
}

/* Changes pixel (@x, @y) of @f in every plane. */
static void
poke (Frame * f, const ShmTileGrid * g, guint x, guint y)
{
  for (guint p = 0; p < g->n_planes; p++) {
    gsize off = (gsize) (y >> g->h_sub[p]) * f->planes.stride[p]
        + (gsize) (x >> g->w_sub[p]) * g->pstride[p];
    f->mem[p][off] ^= 0x5a;
  }
}

static gboolean
i420_grid (ShmTileGrid * g, guint w, guint h)
{
  const guint ws[] = { 0, 1, 1 }, hs[] = { 0, 1, 1 }, ps[] = { 1, 1, 1 };
  return shm_tile_grid_init (g, w, h, 3, ws, hs, ps);
}

static gboolean
bgrx_grid (ShmTileGrid * g, guint w, guint h)
{
  const guint zero[] = { 0 }, four[] = { 4 };
  return shm_tile_grid_init (g, w, h, 1, zero, zero, four);
}

static void
test_grid (void)
{
  ShmTileGrid g;
  const guint zero[] = { 0 }, none[] = { 0 };

  g_assert_true (bgrx_grid (&g, 1920, 1080));
  g_assert_cmpuint (g.tile, ==, 64);
  g_assert_cmpuint (g.cols, ==, 30);
  g_assert_cmpuint (g.rows, ==, 17);
  g_assert_true (bgrx_grid (&g, 3840, 2160));
  g_assert_cmpuint (g.tile, ==, 128);
  g_assert_cmpuint (g.cols * g.rows, <=, SHM_DAMAGE_MAX_TILES);
  g_assert_true (bgrx_grid (&g, 7680, 4320));
  g_assert_cmpuint (g.tile, ==, 256);
  g_assert_true (bgrx_grid (&g, 1, 1));
  g_assert_cmpuint (g.cols * g.rows, ==, 1);
  g_assert_false (bgrx_grid (&g, 0, 10));
  /* a plane of no whole bytes a pixel */
  g_assert_false (shm_tile_grid_init (&g, 64, 64, 1, zero, zero, none));
}

/* Each changed pixel sets its own tile only. */
static void
test_compute_exact (void)
{
  ShmTileGrid g;
  Frame a, b;
  ShmTileMap map;
  GRand *r = g_rand_new_with_seed (7);

  g_assert_true (i420_grid (&g, 333, 217));
  frame_init (&a, &g, 13);
  frame_init (&b, &g, 3);
  frame_random (&a, &g, r);
  frame_copy (&b, &a, &g);
  g_assert_cmpuint (shm_damage_compute (&g, &a.planes, &b.planes, &map), ==, 0);
  g_assert_cmpuint (shm_tile_map_count (&map, &g), ==, 0);
  for (guint i = 0; i < 200; i++) {
    guint x = g_rand_int_range (r, 0, g.width);
    guint y = g_rand_int_range (r, 0, g.height);
    guint tile = (y / g.tile) * g.cols + x / g.tile;
    frame_copy (&b, &a, &g);
    poke (&b, &g, x, y);
    g_assert_cmpuint (shm_damage_compute (&g, &a.planes, &b.planes, &map),
        ==, 1);
    g_assert_true (shm_tile_map_test (&map, tile));
  }
  /* the last pixel, of the last, partial, tile */
  frame_copy (&b, &a, &g);
  poke (&b, &g, g.width - 1, g.height - 1);
  shm_damage_compute (&g, &a.planes, &b.planes, &map);
  g_assert_true (shm_tile_map_test (&map, g.cols * g.rows - 1));
  frame_clear (&a);
  frame_clear (&b);
  g_rand_free (r);
}

/* Copying the changed tiles, or packing and unpacking them, onto the frame
 * before makes the frame after, whole, whatever the strides. */
static void
test_patch (void)
{
  GRand *r = g_rand_new_with_seed (99);

  for (guint round = 0; round < 60; round++) {
    ShmTileGrid g;
    Frame before, after, dst;
    ShmTileMap map;
    guint8 *packed;
    guint64 n;
    guint w = g_rand_int_range (r, 1, 700), h = g_rand_int_range (r, 1, 500);

    g_assert_true (round % 2 ? i420_grid (&g, w, h) : bgrx_grid (&g, w, h));
    frame_init (&before, &g, g_rand_int_range (r, 0, 40));
    frame_init (&after, &g, g_rand_int_range (r, 0, 40));
    frame_init (&dst, &g, g_rand_int_range (r, 0, 40));
    frame_random (&before, &g, r);
    frame_copy (&after, &before, &g);
    for (guint i = 0; i < round % 9; i++)
      poke (&after, &g, g_rand_int_range (r, 0, w), g_rand_int_range (r, 0, h));
    shm_damage_compute (&g, &after.planes, &before.planes, &map);

    frame_copy (&dst, &before, &g);
    n = shm_damage_copy (&g, &map, (guint8 **) dst.planes.data,
        dst.planes.stride, &after.planes, FALSE);
    g_assert_cmpuint (n, ==, shm_damage_bytes (&g, &map));
    g_assert_true (frame_equal (&dst, &after, &g));

    frame_copy (&dst, &before, &g);
    packed = g_malloc (n + 1);
    g_assert_cmpuint (shm_damage_pack (&g, &map, &after.planes, packed), ==, n);
    /* a wrong length is refused, and nothing is written */
    g_assert_false (shm_damage_unpack (&g, &map, packed, n + 1,
            (guint8 **) dst.planes.data, dst.planes.stride));
    if (n > 0)
      g_assert_false (frame_equal (&dst, &after, &g));
    g_assert_true (shm_damage_unpack (&g, &map, packed, n,
            (guint8 **) dst.planes.data, dst.planes.stride));
    g_assert_true (frame_equal (&dst, &after, &g));
    g_free (packed);
    frame_clear (&before);
    frame_clear (&after);
    frame_clear (&dst);
  }
  g_rand_free (r);
}

/* The rectangles cover the set tiles and nothing else, within the frame. */
static void
test_rects (void)
{
  GRand *r = g_rand_new_with_seed (5);
  ShmRect rects[SHM_DAMAGE_MAX_TILES];

  for (guint round = 0; round < 200; round++) {
    ShmTileGrid g;
    ShmTileMap map = { {0}
    }, back = { {0}
    };
    guint n;

    g_assert_true (bgrx_grid (&g, g_rand_int_range (r, 1, 2000),
            g_rand_int_range (r, 1, 1200)));
    for (guint i = 0; i < g.cols * g.rows; i++)
      if (g_rand_int_range (r, 0, 4) == 0 || (round % 3 == 0 && i % 7 < 4))
        shm_tile_map_set (&map, i);
    n = shm_damage_rects (&g, &map, rects, G_N_ELEMENTS (rects));
    for (guint i = 0; i < n; i++) {
      g_assert_cmpuint (rects[i].w, >, 0);
      g_assert_cmpuint (rects[i].h, >, 0);
      g_assert_cmpuint (rects[i].x + rects[i].w, <=, g.width);
      g_assert_cmpuint (rects[i].y + rects[i].h, <=, g.height);
      shm_tile_map_add_rect (&back, &g, &rects[i]);
    }
    g_assert_cmpmem (map.bits, sizeof map.bits, back.bits, sizeof back.bits);
    /* with little room the last one covers the rest */
    n = shm_damage_rects (&g, &map, rects, 2);
    g_assert_cmpuint (n, <=, 2);
    memset (&back, 0, sizeof back);
    for (guint i = 0; i < n; i++)
      shm_tile_map_add_rect (&back, &g, &rects[i]);
    for (guint i = 0; i < g.cols * g.rows; i++)
      if (shm_tile_map_test (&map, i))
        g_assert_true (shm_tile_map_test (&back, i));
  }
  g_rand_free (r);
}

/* The record carries the map; a map that is not on the receiver's grid,
 * or sets tiles beyond it, is not used; a partial frame needs a map. */
static void
test_record (void)
{
  ShmRecord rec = { 0, }, out;
  ShmTileGrid g, other;
  guint8 bytes[SHM_RECORD_SIZE];
  g_autoptr (GError) err = NULL;

  g_assert_true (bgrx_grid (&g, 1920, 1080));
  g_assert_true (bgrx_grid (&other, 1280, 720));
  rec.type = SHM_RECORD_FRAME;
  rec.record_flags = SHM_RECORD_FLAG_DAMAGE | SHM_RECORD_FLAG_PARTIAL;
  rec.seq = 8;
  rec.damage_base = 7;
  rec.tile = g.tile;
  rec.cols = g.cols;
  rec.rows = g.rows;
  shm_tile_map_set (&rec.damage, 0);
  shm_tile_map_set (&rec.damage, g.cols * g.rows - 1);
  shm_record_encode (&rec, bytes);
  g_assert_true (shm_record_decode (bytes, &out, NULL));
  g_assert_cmpuint (out.record_flags, ==, rec.record_flags);
  g_assert_cmpuint (out.damage_base, ==, 7);
  g_assert_cmpmem (out.damage.bits, sizeof out.damage.bits, rec.damage.bits,
      sizeof rec.damage.bits);
  g_assert_true (shm_record_damage_fits (&out, &g));
  g_assert_false (shm_record_damage_fits (&out, &other));
  shm_tile_map_set (&out.damage, g.cols * g.rows);
  g_assert_false (shm_record_damage_fits (&out, &g));

  /* partial with no map */
  rec.record_flags = SHM_RECORD_FLAG_PARTIAL;
  shm_record_encode (&rec, bytes);
  bytes[4] = SHM_RECORD_FLAG_PARTIAL;
  g_assert_false (shm_record_decode (bytes, &out, &err));
  g_assert_nonnull (strstr (err->message, "partial frame without a tile map"));
  /* no map: nothing of it survives */
  rec.record_flags = 0;
  shm_record_encode (&rec, bytes);
  g_assert_true (shm_record_decode (bytes, &out, NULL));
  g_assert_false (shm_record_damage_fits (&out, &g));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/damage/grid", test_grid);
  g_test_add_func ("/damage/compute-exact", test_compute_exact);
  g_test_add_func ("/damage/patch", test_patch);
  g_test_add_func ("/damage/rects", test_rects);
  g_test_add_func ("/damage/record", test_record);
  return g_test_run ();
}

/* gst-shm: the three tile comparisons agree
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "shmtiles.h"

#include <string.h>

static const struct
{
  const gchar *name;
  ShmTileCompare fn;
} ways[] = {
  {"orc", shm_tile_differs_orc},
  {"loop", shm_tile_differs_loop},
  {"memcmp", shm_tile_differs_memcmp},
  {"chosen", shm_tile_differs},
};

/* Random tiles of random sizes, strides and alignments, the same in both
 * frames or with one byte changed anywhere (the first, the last, any in
 * between, by 1 or by 255): every way gives the same, right answer. */
static void
test_agree (void)
{
  GRand *r = g_rand_new_with_seed (1234);
  const gsize size = 1 << 20;
  guint8 *a = g_malloc (size), *b = g_malloc (size);

  for (gsize i = 0; i < size; i++)
    a[i] = g_rand_int (r);
  for (guint round = 0; round < 3000; round++) {
    gint row_bytes = g_rand_int_range (r, 1, 300);
    gint rows = g_rand_int_range (r, 1, 70);
    gint a_stride = row_bytes + g_rand_int_range (r, 0, 64);
    gint b_stride = row_bytes + g_rand_int_range (r, 0, 64);
    gsize a_off = g_rand_int_range (r, 0, 64), b_off = g_rand_int_range (r,
        0, 64);
    gboolean change = round % 2;

    for (gint y = 0; y < rows; y++)
      memcpy (b + b_off + (gsize) y * b_stride,
          a + a_off + (gsize) y * a_stride, row_bytes);
    if (change) {
      gint y = round % 3 == 0 ? 0 : round % 3 == 1 ? rows - 1
          : g_rand_int_range (r, 0, rows);
      gint x = round % 5 == 0 ? 0 : round % 5 == 1 ? row_bytes - 1
          : g_rand_int_range (r, 0, row_bytes);
      guint8 *p = b + b_off + (gsize) y * b_stride + x;
      *p += round % 7 == 0 ? 255 : 1;
    }
    for (guint w = 0; w < G_N_ELEMENTS (ways); w++)
      g_assert_cmpint (ways[w].fn (a + a_off, a_stride, b + b_off, b_stride,
              row_bytes, rows), ==, change);
  }
  g_free (a);
  g_free (b);
  g_rand_free (r);
}

/* The largest tile the ORC sum takes (16 MiB - 1 bytes, every byte 255
 * apart) does not wrap its 32-bit sum into "the same". */
static void
test_no_wrap (void)
{
  const gint row = 4096, rows = 4095;
  guint8 *a = g_malloc0 ((gsize) row * rows);
  guint8 *b = g_malloc ((gsize) row * rows);

  memset (b, 255, (gsize) row * rows);
  for (guint w = 0; w < G_N_ELEMENTS (ways); w++)
    g_assert_true (ways[w].fn (a, row, b, row, row, rows));
  g_free (a);
  g_free (b);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/tiles/agree", test_agree);
  g_test_add_func ("/tiles/no-wrap", test_no_wrap);
  return g_test_run ();
}

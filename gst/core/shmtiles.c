/* gst-shm: whether a tile of a frame changed
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "shmtiles.h"
#include "shmtiles-orc.h"

#include <string.h>

/* The ORC kernel: the sum of the absolute differences of every byte pair
 * (at most 255 a byte: a tile of up to 16 million bytes cannot wrap the
 * 32-bit sum). */
gboolean
shm_tile_differs_orc (const guint8 * a, gint a_stride, const guint8 * b,
    gint b_stride, gint row_bytes, gint rows)
{
  orc_uint32 sad = 0;

  g_return_val_if_fail ((gint64) row_bytes * rows < (1 << 24), TRUE);
  shm_orc_tile_sad (&sad, a, a_stride, b, b_stride, row_bytes, rows);
  return sad != 0;
}

/* A plain loop, eight bytes at a time where it can, that stops at the
 * first difference. */
gboolean
shm_tile_differs_loop (const guint8 * a, gint a_stride, const guint8 * b,
    gint b_stride, gint row_bytes, gint rows)
{
  for (gint y = 0; y < rows; y++) {
    const guint8 *ra = a + (gsize) y * a_stride, *rb = b + (gsize) y *b_stride;
    gint x = 0;

    for (; x + 8 <= row_bytes; x += 8) {
      guint64 va, vb;
      memcpy (&va, ra + x, 8);
      memcpy (&vb, rb + x, 8);
      if (va != vb)
        return TRUE;
    }
    for (; x < row_bytes; x++)
      if (ra[x] != rb[x])
        return TRUE;
  }
  return FALSE;
}

/* memcmp() on each row, which stops at the first difference. */
gboolean
shm_tile_differs_memcmp (const guint8 * a, gint a_stride, const guint8 * b,
    gint b_stride, gint row_bytes, gint rows)
{
  for (gint y = 0; y < rows; y++)
    if (memcmp (a + (gsize) y * a_stride, b + (gsize) y * b_stride,
            row_bytes) != 0)
      return TRUE;
  return FALSE;
}

/**
 * shm_tile_differs:
 *
 * Whether the tile at @a differs from the one at @b: the fastest of the
 * three ways as measured (bench/tiles.md: memcmp() row by row).
 */
gboolean
shm_tile_differs (const guint8 * a, gint a_stride, const guint8 * b,
    gint b_stride, gint row_bytes, gint rows)
{
  return shm_tile_differs_memcmp (a, a_stride, b, b_stride, row_bytes, rows);
}

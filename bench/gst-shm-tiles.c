/* gst-shm-tiles: the tile comparison's three ways, side by side
 *
 *   gst-shm-tiles [--output FILE]
 *
 * Compares every 64x64-pixel tile of two frames (1080p BGRx, and the Y
 * plane of 1080p NV12) with each way of src/core/shmtiles.h: the ORC
 * kernel, the plain C loop and memcmp().  Three cases: frames equal (a
 * still picture: every byte read), each tile changed in its last byte
 * (every byte read, then a difference) and each changed in its first byte
 * (a way that stops at a difference reads a single byte of it).  For
 * each: the median time for a whole frame over 0.3 s of repeats, and the
 * frame bytes per second.  Writes a Markdown table (to FILE, or
 * standard output).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "shmtiles.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TILE 64

static const struct
{
  const gchar *name;
  ShmTileCompare fn;
} ways[] = {
  {"ORC (sum of absolute differences)", shm_tile_differs_orc},
  {"C loop (8 bytes at a time, stops at a difference)", shm_tile_differs_loop},
  {"memcmp() per row", shm_tile_differs_memcmp},
};

typedef enum
{
  SAME,
  LAST,
  FIRST,
} Case;

static const gchar *case_names[] = { "equal", "each tile's last byte changed",
  "each tile's first byte changed"
};

static gint
cmp_double (gconstpointer a, gconstpointer b)
{
  gdouble x = *(const gdouble *) a, y = *(const gdouble *) b;

  return x < y ? -1 : x > y;
}

/* One pass over every tile; returns how many changed (so that nothing is
 * optimised away). */
static guint
pass (ShmTileCompare fn, const guint8 * a, const guint8 * b, gint stride,
    gint row_bytes, gint rows, gint bpp)
{
  guint changed = 0;

  for (gint y = 0; y < rows; y += TILE)
    for (gint x = 0; x < row_bytes; x += TILE * bpp)
      changed += fn (a + (gsize) y * stride + x, stride,
          b + (gsize) y * stride + x, stride, MIN (TILE * bpp, row_bytes - x),
          MIN (TILE, rows - y));
  return changed;
}

static void
measure (FILE * out, const gchar * frame, gint row_bytes, gint rows, gint bpp)
{
  gsize size = (gsize) row_bytes * rows;
  guint8 *a = g_malloc (size), *b = g_malloc (size);
  GRand *r = g_rand_new_with_seed (42);

  for (gsize i = 0; i < size; i++)
    a[i] = g_rand_int (r);
  for (Case c = SAME; c <= FIRST; c++) {
    memcpy (b, a, size);
    for (gint y = 0; y < rows && c != SAME; y += TILE)
      for (gint x = 0; x < row_bytes; x += TILE * bpp) {
        gint ty = c == LAST ? MIN (y + TILE, rows) - 1 : y;
        gint tx = c == LAST ? MIN (x + TILE * bpp, row_bytes) - 1 : x;
        b[(gsize) ty * row_bytes + tx] ^= 0x5a;
      }
    for (guint w = 0; w < G_N_ELEMENTS (ways); w++) {
      gdouble t[4096];
      guint n = 0, changed = 0;
      gint64 end = g_get_monotonic_time () + 300000;

      while (n < G_N_ELEMENTS (t) && (n < 5 || g_get_monotonic_time () < end)) {
        gint64 t0 = g_get_monotonic_time ();
        changed += pass (ways[w].fn, a, b, row_bytes, row_bytes, rows, bpp);
        t[n++] = (g_get_monotonic_time () - t0) / 1e6;
      }
      qsort (t, n, sizeof t[0], cmp_double);
      fprintf (out, "| %s | %s | %s | %.3f | %.2f | %u |\n", frame,
          case_names[c], ways[w].name, t[n / 2] * 1e3,
          size / t[n / 2] / 1e9, changed / n);
    }
  }
  g_rand_free (r);
  g_free (a);
  g_free (b);
}

int
main (int argc, char **argv)
{
  FILE *out = stdout;

  if (argc == 3 && g_str_equal (argv[1], "--output")) {
    out = fopen (argv[2], "w");
    if (!out) {
      perror (argv[2]);
      return 1;
    }
  } else if (argc != 1) {
    fprintf (stderr, "usage: gst-shm-tiles [--output FILE]\n");
    return 2;
  }
  fprintf (out, "| frame | case | way | ms per frame (median) | frame GB/s "
      "| tiles changed |\n|---|---|---|---|---|---|\n");
  measure (out, "1080p BGRx (7680 × 1080 bytes)", 1920 * 4, 1080, 4);
  measure (out, "1080p NV12, Y plane (1920 × 1080 bytes)", 1920, 1080, 1);
  if (out != stdout)
    fclose (out);
  return 0;
}

/* gst-shm: whether a tile of a frame changed
 *
 * Part of the core (GLib and ORC).  Three ways to compare a tile of two
 * frames, the same answer each: an ORC kernel (the sum of absolute
 * differences of the bytes, compiled for this CPU at run time), a plain
 * C loop, and memcmp() row by row.  bench/gst-shm-tiles measures them
 * side by side (bench/tiles.md); shm_tile_differs() is the one the
 * measurement chose.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#ifndef __SHM_TILES_H__
#define __SHM_TILES_H__

#include <glib.h>

G_BEGIN_DECLS

typedef gboolean (*ShmTileCompare) (const guint8 * a, gint a_stride,
    const guint8 * b, gint b_stride, gint row_bytes, gint rows);

gboolean shm_tile_differs_orc (const guint8 * a, gint a_stride,
    const guint8 * b, gint b_stride, gint row_bytes, gint rows);
gboolean shm_tile_differs_loop (const guint8 * a, gint a_stride,
    const guint8 * b, gint b_stride, gint row_bytes, gint rows);
gboolean shm_tile_differs_memcmp (const guint8 * a, gint a_stride,
    const guint8 * b, gint b_stride, gint row_bytes, gint rows);
gboolean shm_tile_differs (const guint8 * a, gint a_stride,
    const guint8 * b, gint b_stride, gint row_bytes, gint rows);

G_END_DECLS

#endif /* __SHM_TILES_H__ */

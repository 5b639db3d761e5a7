/* gst-shm: frame records
 *
 * Part of the core (GLib only).  A frame record describes one frame (or
 * the end of the stream) in 256 little-endian bytes.  Records travel in a
 * receiver's channel inside the area (shmchannel.h), or, for a receiver
 * that does not map the area, at the start of a "record" message whose
 * payload then holds the frame's bytes.  docs/protocol.md is the normative
 * text.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#ifndef __SHM_RECORD_H__
#define __SHM_RECORD_H__

#include "shmarea.h"
#include "shmdamage.h"

G_BEGIN_DECLS

/*
 *   0   u32 type            SHM_RECORD_FRAME, SHM_RECORD_EOS
 *   4   u32 record_flags    SHM_RECORD_FLAG_*
 *   8   u64 seq             frame number in the session
 *   16  u32 slot            frame: < n_slots; eos: 0xffffffff
 *   20  u32 caps_gen        caps generation of the frame (2.3)
 *   24  u64 offset          start of the frame in its slot
 *   32  u64 size            bytes of the frame
 *   40  u64 pts, 48 dts, 56 duration        the buffer's, unchanged
 *   64  u64 mono_pts, 72 mono_dts           due times on CLOCK_MONOTONIC
 *   80  u64 send_time       sender's CLOCK_MONOTONIC when published
 *   88  u64 buffer_offset, 96 buffer_offset_end
 *   104 u32 buffer_flags    SHM_BUFFER_FLAG_*
 *   108 u32 n_planes        0 (not raw video) to SHM_RECORD_MAX_PLANES
 *   112 u64 plane_offset[4]
 *   144 u32 plane_stride[4]
 *   160 u64 damage_base     with SHM_RECORD_FLAG_DAMAGE: the frame number
 *                           the tile map is relative to (G_MAXUINT64:
 *                           none, every tile is set)
 *   168 u16 tile, 170 u16 cols, 172 u16 rows      the grid (shmdamage.h)
 *   174 u16 reserved, zero
 *   176 u8 tile_map[80]     a bit per tile, row by row, LSB first
 *
 * Time values are nanoseconds; G_MAXUINT64 means "none".
 */
#define SHM_RECORD_MAX_PLANES 4
#define SHM_RECORD_NO_SLOT G_MAXUINT32

typedef enum
{
  SHM_RECORD_FRAME = 1,
  SHM_RECORD_EOS = 2,
} ShmRecordType;

/* Record flags. */
typedef enum
{
  /* damage_base, the grid and the tile map are set: the tiles the map
   * sets are the only ones that differ from frame damage_base */
  SHM_RECORD_FLAG_DAMAGE = 1 << 0,
  /* (inline frames only, with DAMAGE) the payload holds only those tiles
   * (shm_damage_pack()); sent only to a receiver that offered
   * SHM_FEATURE_DAMAGE */
  SHM_RECORD_FLAG_PARTIAL = 1 << 1,
} ShmRecordFlags;
#define SHM_RECORD_FLAGS_KNOWN 0x3u

/* Buffer flags on the wire: their own bit values, mapped to and from
 * GstBufferFlags by the elements. */
typedef enum
{
  SHM_BUFFER_FLAG_LIVE = 1 << 0,
  SHM_BUFFER_FLAG_DISCONT = 1 << 1,
  SHM_BUFFER_FLAG_RESYNC = 1 << 2,
  SHM_BUFFER_FLAG_CORRUPTED = 1 << 3,
  SHM_BUFFER_FLAG_MARKER = 1 << 4,
  SHM_BUFFER_FLAG_HEADER = 1 << 5,
  SHM_BUFFER_FLAG_GAP = 1 << 6,
  SHM_BUFFER_FLAG_DROPPABLE = 1 << 7,
  SHM_BUFFER_FLAG_DELTA_UNIT = 1 << 8,
  SHM_BUFFER_FLAG_NON_DROPPABLE = 1 << 9,
  SHM_BUFFER_FLAG_INTERLACED = 1 << 16,
  SHM_BUFFER_FLAG_TFF = 1 << 17,
  SHM_BUFFER_FLAG_RFF = 1 << 18,
  SHM_BUFFER_FLAG_ONEFIELD = 1 << 19,
  SHM_BUFFER_FLAG_MULTIPLE_VIEW = 1 << 20,
  SHM_BUFFER_FLAG_FIRST_IN_BUNDLE = 1 << 21,
} ShmBufferFlags;

/* (a top field is ONEFIELD | TFF, a bottom field ONEFIELD alone) */
#define SHM_BUFFER_FLAGS_KNOWN 0x003f03ffu

typedef struct
{
  guint32 type;
  guint32 record_flags;
  guint64 seq;
  guint32 slot;
  guint32 caps_gen;
  guint64 offset;
  guint64 size;
  guint64 pts, dts, duration;
  guint64 mono_pts, mono_dts;
  guint64 send_time;
  guint64 buffer_offset, buffer_offset_end;
  guint32 buffer_flags;
  guint32 n_planes;
  guint64 plane_offset[SHM_RECORD_MAX_PLANES];
  guint32 plane_stride[SHM_RECORD_MAX_PLANES];
  guint64 damage_base;
  guint32 tile, cols, rows;
  ShmTileMap damage;
} ShmRecord;

/* How the frames of one caps generation are laid out, as far as the
 * receiver checks them: raw video has n_planes planes, each at least
 * min_stride bytes a row, rows rows and min_bytes bytes in all (a palette
 * is 1024 bytes whatever the height).  A format whose layout cannot be
 * described that way (tiled formats) has "fixed": its planes must sit
 * exactly at the default offsets and strides, in a frame of at least
 * min_size bytes.  Not raw video: n_planes 0, any bytes. */
typedef struct
{
  guint n_planes;
  gboolean fixed;
  guint64 min_size;
  guint32 min_stride[SHM_RECORD_MAX_PLANES];
  guint32 rows[SHM_RECORD_MAX_PLANES];
  guint64 min_bytes[SHM_RECORD_MAX_PLANES];
  guint64 offset[SHM_RECORD_MAX_PLANES];        /* fixed layouts */
  guint32 stride[SHM_RECORD_MAX_PLANES];        /* fixed layouts */
  guint64 frame_duration;       /* ns, from the caps' frame rate; 0: none */
} ShmFrameLayout;

void shm_record_encode (const ShmRecord * r, guint8 * out);
gboolean shm_record_decode (const guint8 * in, ShmRecord * r,
    GError ** error);
gboolean shm_record_damage_fits (const ShmRecord * r,
    const ShmTileGrid * grid);
gboolean shm_record_check_frame (const ShmRecord * r, guint32 n_slots,
    guint64 slot_size, const ShmFrameLayout * layout, GError ** error);

G_END_DECLS

#endif /* __SHM_RECORD_H__ */

/* gst-shm: the shared area
 *
 * This file is part of the area/protocol core: it uses GLib only, no
 * GStreamer types, so that it can be fuzzed and used by other programs.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#ifndef __SHM_AREA_H__
#define __SHM_AREA_H__

#include <glib.h>
#include <stdint.h>
#include <stddef.h>
#include <assert.h>
#include <sys/stat.h>
#include <sys/types.h>

G_BEGIN_DECLS

/*
 * Area layout (docs/protocol.md is the normative text):
 *
 *   0                     header (4096 bytes, ShmAreaHeader)
 *   token_offset          token region: token_lanes lanes of token_lane_size
 *   ring_offset           in-band control rings (ring_size bytes, may be 0)
 *   chan_offset           frame channels: token_lanes channels of chan_stride
 *                         bytes, one per receiver (shmchannel.h)
 *   slots_offset          n_slots frame slots of slot_size bytes each
 *
 * Every offset and size is a multiple of SHM_AREA_PAGE.  All integers are
 * little-endian.  The header is never read through this struct: readers copy
 * the bytes once and decode each field (shm_area_header_decode()); the struct
 * exists to pin the layout with compile-time checks.
 */

#define SHM_AREA_MAGIC          G_GUINT64_CONSTANT (0x31414552414d5347)  /* "GSMAREA1" */
#define SHM_AREA_VERSION        2
#define SHM_AREA_PAGE           4096
#define SHM_AREA_HEADER_SIZE    4096
#define SHM_AREA_TOKEN_OFFSET   SHM_AREA_HEADER_SIZE
#define SHM_AREA_TOKEN_LANES    64
#define SHM_AREA_TOKEN_LANE_SIZE 1024
#define SHM_AREA_TOKEN_SIZE     (SHM_AREA_TOKEN_LANES * SHM_AREA_TOKEN_LANE_SIZE)
#define SHM_AREA_MIN_SLOTS      2
#define SHM_AREA_MAX_SLOTS      64
#define SHM_TOKEN_BYTES         16
#define SHM_TOKEN_MIN_BYTES     8
#define SHM_TOKEN_MAX_BYTES     64
/* Frame channels (shmchannel.h): one per token lane, each a 256-byte head
 * of index lines, then chan_depth release entries, then chan_depth frame
 * records (shmrecord.h). */
#define SHM_RECORD_SIZE         256
#define SHM_RELEASE_SIZE        16
#define SHM_CHAN_HEAD_SIZE      256
#define SHM_CHAN_DEPTH          16
#define SHM_CHAN_MIN_DEPTH      2
#define SHM_CHAN_MAX_DEPTH      256
#define SHM_CHAN_STRIDE(depth) \
  (SHM_CHAN_HEAD_SIZE + (depth) * (SHM_RELEASE_SIZE + SHM_RECORD_SIZE))
/* Largest area we accept: 1 TiB; keeps every offset sum far from overflow. */
#define SHM_AREA_MAX_SIZE       (G_GUINT64_CONSTANT (1) << 40)

typedef struct
{
  /* Line 0: identity and geometry.  Written by the sink while magic is 0,
   * then magic is stored last with release ordering.  Never changes while
   * magic is set. */
  uint64_t magic;               /* 0 */
  uint32_t version;             /* 8 */
  uint32_t header_size;         /* 12 */
  uint64_t area_size;           /* 16 */
  uint64_t session_id;          /* 24 */
  uint64_t token_offset;        /* 32 */
  uint32_t token_lanes;         /* 40 */
  uint32_t token_lane_size;     /* 44 */
  uint64_t ring_offset;         /* 48 */
  uint64_t ring_size;           /* 56 */
  /* Line 1: frame slots. Same rules as line 0. */
  uint64_t slots_offset;        /* 64 */
  uint64_t slot_size;           /* 72 */
  uint32_t n_slots;             /* 80 */
  uint32_t flags;               /* 84 */
  uint64_t chan_offset;         /* 88 */
  uint32_t chan_stride;         /* 96 */
  uint32_t chan_depth;          /* 100 */
  uint32_t record_size;         /* 104 */
  uint8_t _pad1[20];            /* 108 */
  /* Line 2: written by the sink only, while it runs. */
  uint64_t sink_heartbeat;      /* 128: sink's CLOCK_MONOTONIC in ns */
  uint64_t sink_frames;         /* 136: frames published so far */
  uint32_t sink_waiters;        /* 144: sink threads waiting for a slot */
  uint8_t _pad2[44];            /* 148 */
  /* Line 3: the sink's bell, a wake-up counter any side may add 1 to. */
  uint32_t sink_bell;           /* 192 */
  uint8_t _pad3[60];            /* 196 */
  /* Lines 4..63: reserved, zero. */
  uint8_t _reserved[SHM_AREA_HEADER_SIZE - 256];
} ShmAreaHeader;

static_assert (sizeof (ShmAreaHeader) == SHM_AREA_HEADER_SIZE, "header size");
static_assert (offsetof (ShmAreaHeader, magic) == 0, "magic");
static_assert (offsetof (ShmAreaHeader, version) == 8, "version");
static_assert (offsetof (ShmAreaHeader, header_size) == 12, "header_size");
static_assert (offsetof (ShmAreaHeader, area_size) == 16, "area_size");
static_assert (offsetof (ShmAreaHeader, session_id) == 24, "session_id");
static_assert (offsetof (ShmAreaHeader, token_offset) == 32, "token_offset");
static_assert (offsetof (ShmAreaHeader, token_lanes) == 40, "token_lanes");
static_assert (offsetof (ShmAreaHeader, token_lane_size) == 44, "lane_size");
static_assert (offsetof (ShmAreaHeader, ring_offset) == 48, "ring_offset");
static_assert (offsetof (ShmAreaHeader, ring_size) == 56, "ring_size");
static_assert (offsetof (ShmAreaHeader, slots_offset) == 64, "slots_offset");
static_assert (offsetof (ShmAreaHeader, slot_size) == 72, "slot_size");
static_assert (offsetof (ShmAreaHeader, n_slots) == 80, "n_slots");
static_assert (offsetof (ShmAreaHeader, flags) == 84, "flags");
static_assert (offsetof (ShmAreaHeader, chan_offset) == 88, "chan_offset");
static_assert (offsetof (ShmAreaHeader, chan_stride) == 96, "chan_stride");
static_assert (offsetof (ShmAreaHeader, chan_depth) == 100, "chan_depth");
static_assert (offsetof (ShmAreaHeader, record_size) == 104, "record_size");
static_assert (offsetof (ShmAreaHeader, sink_heartbeat) == 128, "heartbeat");
static_assert ((offsetof (ShmAreaHeader, sink_heartbeat) & 63) == 0,
    "sink hot fields start a cache line");
static_assert (offsetof (ShmAreaHeader, sink_frames) == 136, "sink_frames");
static_assert (offsetof (ShmAreaHeader, sink_waiters) == 144, "waiters");
static_assert (offsetof (ShmAreaHeader, sink_bell) == 192, "sink_bell");
static_assert ((offsetof (ShmAreaHeader, sink_bell) & 63) == 0,
    "the bell has a cache line of its own");
static_assert (offsetof (ShmAreaHeader, _reserved) == 256, "reserved");

/* Header flags. */
#define SHM_AREA_FLAG_CREATED   (1u << 0)       /* the sink created the file
                                                 * and removes it at its stop */

/* Geometry of an area: what the sink decides and the hello announces. */
typedef struct
{
  guint64 area_size;
  guint64 session_id;
  guint64 token_offset;
  guint32 token_lanes;
  guint32 token_lane_size;
  guint64 ring_offset;
  guint64 ring_size;
  guint64 slots_offset;
  guint64 slot_size;
  guint32 n_slots;
  guint32 flags;
  guint64 chan_offset;
  guint32 chan_stride;
  guint32 chan_depth;
} ShmGeometry;

/* compared with memcmp(): no padding allowed */
static_assert (sizeof (ShmGeometry) == 88, "ShmGeometry has no padding");

typedef enum
{
  SHM_AREA_ERROR_FAILED,
  SHM_AREA_ERROR_NOT_FOUND,     /* file (or its directory) does not exist */
  SHM_AREA_ERROR_PERMISSION,
  SHM_AREA_ERROR_SYMLINK,
  SHM_AREA_ERROR_NOT_REGULAR,
  SHM_AREA_ERROR_TOO_SMALL,
  SHM_AREA_ERROR_NO_SPACE,
  SHM_AREA_ERROR_FOREIGN,       /* holds data that is not an area */
  SHM_AREA_ERROR_BAD_MAGIC,
  SHM_AREA_ERROR_BAD_VERSION,
  SHM_AREA_ERROR_BAD_HEADER,
  SHM_AREA_ERROR_SESSION,
  SHM_AREA_ERROR_TOKEN,
  SHM_AREA_ERROR_BUSY,          /* another sink owns the area */
  SHM_AREA_ERROR_EMPTY,         /* 0 bytes: a sink may be creating it */
} ShmAreaError;

#define SHM_AREA_ERROR (shm_area_error_quark ())
GQuark shm_area_error_quark (void);

typedef struct _ShmArea ShmArea;

typedef enum
{
  SHM_OPEN_ALLOW_SYMLINK = 1 << 0,
  SHM_OPEN_READONLY = 1 << 1,
  SHM_OPEN_LOCK = 1 << 2,       /* take an exclusive flock (sink) */
  SHM_OPEN_NO_CREATE = 1 << 3,  /* only open an existing file */
} ShmOpenFlags;

/* Sink side. */
gboolean shm_geometry_compute (ShmGeometry * geo, guint64 area_size,
    guint32 n_slots, guint64 frame_size, guint64 ring_size, GError ** error);
guint64 shm_geometry_size_needed (guint32 n_slots, guint64 frame_size,
    guint64 ring_size);

ShmArea *shm_area_create (const gchar * path, guint64 size, guint mode,
    ShmOpenFlags flags, gboolean * created, GError ** error);
ShmArea *shm_area_create_full (const gchar * path, guint64 size, guint mode,
    gint64 gid, ShmOpenFlags flags, gboolean * created, gchar ** warning,
    GError ** error);
void shm_area_init_header (ShmArea * area, const ShmGeometry * geo);
void shm_area_clear_magic (ShmArea * area);
void shm_area_retire (ShmArea * area);
void shm_area_heartbeat (ShmArea * area, guint64 now_ns, guint64 frames);
guint32 *shm_area_sink_waiters (ShmArea * area);
guint32 *shm_area_sink_bell (ShmArea * area);
gboolean shm_area_unlink (ShmArea * area, GError ** error);
gboolean shm_area_reclaim (ShmArea * area);

/* Who may use an area (docs/protocol.md 1.8).  The sink uses an existing
 * file only when it belongs to the sink's user or root and, unless root
 * made it, gives no more access than the sink's mode (and group, @gid >= 0);
 * a receiver trusts an area of its own user or root, or one whose mode
 * shares it with one of the receiver's groups or with everyone. */
gboolean shm_area_check_owner (const struct stat *st, uid_t euid, guint mode,
    gint64 gid, const gchar * path, gchar ** warning, GError ** error);
gboolean shm_area_check_reader (const struct stat *st, uid_t euid,
    const gid_t * groups, guint n_groups, const gchar * path, GError ** error);
gboolean shm_mode_shares (guint mode, gid_t gid, const gid_t * groups,
    guint n_groups);
gboolean shm_group_lookup (const gchar * group, gid_t * gid, GError ** error);
gchar *shm_describe_user (uid_t uid);
gchar *shm_describe_group (gid_t gid);

/* Receiver side. */
ShmArea *shm_area_open (const gchar * path, ShmOpenFlags flags,
    GError ** error);
gboolean shm_area_check_header (ShmArea * area, const ShmGeometry * expected,
    GError ** error);
gboolean shm_area_read_header (ShmArea * area, ShmGeometry * geo,
    GError ** error);
gboolean shm_area_peek_session (ShmArea * area, guint64 * session_id);
guint64 shm_area_peek_heartbeat (ShmArea * area);
gboolean shm_area_was_truncated (ShmArea * area);

/* Both sides. */
ShmArea *shm_area_ref (ShmArea * area);
void shm_area_unref (ShmArea * area);
const gchar *shm_area_get_path (ShmArea * area);
guint64 shm_area_get_size (ShmArea * area);
guint8 *shm_area_get_data (ShmArea * area);
gboolean shm_area_is_created (ShmArea * area);
gboolean shm_area_contains (ShmArea * area, gconstpointer ptr, gsize size);
gboolean shm_area_can_futex (ShmArea * area);

/* Token handshake. */
gboolean shm_random_bytes (gpointer buf, gsize len, GError ** error);
gboolean shm_token_lane_range (const ShmGeometry * geo, guint32 lane,
    guint64 * start, guint64 * end);
gboolean shm_area_write_token (ShmArea * area, const ShmGeometry * geo,
    guint32 lane, guint64 avoid_index, guint8 * token, guint32 token_bytes,
    guint64 * token_index, GError ** error);
gboolean shm_area_check_token (ShmArea * area, const ShmGeometry * geo,
    guint32 lane, const guint8 * token, guint32 token_bytes,
    guint64 token_index);

/* Ordering around the control messages that announce and release slots:
 * the writer fences after the pixels and before the frame message (it also
 * drains write-combining buffers of a BAR mapping); the reader fences after
 * its last read and before the release message. */
static inline void
shm_publish_fence (void)
{
  __atomic_thread_fence (__ATOMIC_SEQ_CST);
}

static inline void
shm_release_fence (void)
{
  __atomic_thread_fence (__ATOMIC_SEQ_CST);
}

/* Slots. */
gboolean shm_geometry_validate (const ShmGeometry * g, guint64 map_size,
    GError ** error);
gboolean shm_geometry_slot_range (const ShmGeometry * geo, guint32 slot,
    guint64 * offset);
guint8 *shm_area_channel (ShmArea * area, const ShmGeometry * geo,
    guint32 lane);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ShmArea, shm_area_unref);

G_END_DECLS

#endif /* __SHM_AREA_H__ */

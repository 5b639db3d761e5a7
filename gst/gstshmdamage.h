/* gst-shm: damage in the elements
 *
 * shmsink's side: which tiles of each frame changed since the frame it
 * sent before (shmdamage.h does the comparing).  shmsrc's side: frames it
 * copies are patched, changed tiles only, into buffers of its own that
 * already hold an earlier frame, and every buffer it pushes says what
 * changed as GstVideoRegionOfInterestMeta of type "damage".
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#ifndef __GST_SHM_DAMAGE_H__
#define __GST_SHM_DAMAGE_H__

#include <gst/gst.h>
#include <gst/video/video.h>

#include "shmrecord.h"

G_BEGIN_DECLS

/* The roi type of the damage metas, in and out. */
#define GST_SHM_DAMAGE_ROI_TYPE "damage"

typedef enum
{
  GST_SHM_DAMAGE_OFF,
  GST_SHM_DAMAGE_COMPUTE,
  GST_SHM_DAMAGE_UPSTREAM,
} GstShmDamageMode;

#define GST_TYPE_SHM_DAMAGE_MODE (gst_shm_damage_mode_get_type ())
GType gst_shm_damage_mode_get_type (void);

gboolean gst_shm_tile_grid_from_info (ShmTileGrid * grid,
    const GstVideoInfo * info);

/* shmsink: the frame sent before, and what computing damage cost. */
typedef struct
{
  GstShmDamageMode mode;
  GstVideoInfo vinfo;
  ShmTileGrid grid;             /* tile 0: frames of these caps carry none */
  GstBuffer *prev;              /* compute: the frame sent before */
  gboolean have_prev;           /* a frame was sent with these caps */
  ShmTileMap upstream;          /* damage upstream supplied since prev */
  gboolean upstream_all;        /* ... or a buffer that said none */
  guint64 frames, tiles_changed, tiles;
  guint64 time_ns;
} GstShmDamageSender;

void gst_shm_damage_sender_set_caps (GstShmDamageSender * ds,
    GstShmDamageMode mode, const GstVideoInfo * info);
void gst_shm_damage_sender_reset (GstShmDamageSender * ds);
void gst_shm_damage_sender_note (GstShmDamageSender * ds, GstBuffer * buf);
void gst_shm_damage_sender_compute (GstShmDamageSender * ds, GstBuffer * buf,
    ShmRecord * r);
void gst_shm_damage_sender_sent (GstShmDamageSender * ds, GstBuffer * buf);

/* shmsrc: its buffers that hold earlier frames, the tile maps that lead
 * from one frame to the next, and the whole last frame that came inline
 * as tiles. */
typedef struct _GstShmDamageReceiver GstShmDamageReceiver;

GstShmDamageReceiver *gst_shm_damage_receiver_new (void);
void gst_shm_damage_receiver_free (GstShmDamageReceiver * dr);
void gst_shm_damage_receiver_set_info (GstShmDamageReceiver * dr,
    const GstVideoInfo * info);
gboolean gst_shm_damage_receiver_active (GstShmDamageReceiver * dr,
    const ShmRecord * r);
GstBuffer *gst_shm_damage_receiver_copy (GstShmDamageReceiver * dr,
    const ShmRecord * r, guint64 session, const guint8 * data,
    gboolean from_wc, guint64 * copied);
GstBuffer *gst_shm_damage_receiver_inline (GstShmDamageReceiver * dr,
    const ShmRecord * r, guint64 session, GBytes * payload, gboolean push,
    guint64 * copied, gboolean * need_full);
void gst_shm_damage_copy_meta (GstBuffer * from, GstBuffer * to);
void gst_shm_damage_receiver_add_meta (GstShmDamageReceiver * dr,
    GstBuffer * buf, const ShmRecord * r, guint64 session);

G_END_DECLS

#endif /* __GST_SHM_DAMAGE_H__ */

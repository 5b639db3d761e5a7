/* gst-shm: the sender's slots and channels of one area
 *
 * Part of the core (GLib only).  The sender's view of one area session:
 * which slots are free, which receiver holds which frame, and the sending
 * end of each receiver's channel (shmchannel.h).  A slot is free when no
 * writer uses it (upstream renders into it, or the sender copies into it:
 * "claimed") and no receiver holds a frame in it.  Receivers give frames
 * back through their channels; the sender reads those releases whenever it
 * looks for a free slot, so that no message and no thread of its own is
 * involved.  Thread-safe.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#ifndef __SHM_SLOTS_H__
#define __SHM_SLOTS_H__

#include "shmarea.h"
#include "shmrecord.h"

G_BEGIN_DECLS

typedef struct _ShmSlots ShmSlots;

typedef enum
{
  SHM_CLAIM_OK,
  SHM_CLAIM_FLUSHING,
  SHM_CLAIM_NONE,               /* none free: timed out, starved, dontwait */
} ShmClaimResult;

ShmSlots *shm_slots_new (ShmArea * area, const ShmGeometry * geo);
ShmSlots *shm_slots_ref (ShmSlots * slots);
void shm_slots_unref (ShmSlots * slots);
ShmArea *shm_slots_get_area (ShmSlots * slots);
const ShmGeometry *shm_slots_get_geometry (ShmSlots * slots);
guint8 *shm_slots_get_slot_data (ShmSlots * slots, guint slot);

void shm_slots_set_flushing (ShmSlots * slots, gboolean flushing);
void shm_slots_set_timeout (ShmSlots * slots, gint64 timeout_us);
void shm_slots_set_poll (ShmSlots * slots, gboolean poll);
void shm_slots_wake (ShmSlots * slots);
ShmClaimResult shm_slots_claim (ShmSlots * slots, gboolean dontwait,
    const gint * cancel, guint * slot);
void shm_slots_unclaim (ShmSlots * slots, guint slot);
guint shm_slots_count_free (ShmSlots * slots);

/* Receivers' lanes. */
void shm_slots_open_lane (ShmSlots * slots, guint lane, guint32 lane_gen);
void shm_slots_close_lane (ShmSlots * slots, guint lane);
guint64 shm_slots_collect (ShmSlots * slots, gchar ** why);
gboolean shm_slots_lane_has_room (ShmSlots * slots, guint lane,
    gboolean frame);
guint64 shm_slots_lanes_with_room (ShmSlots * slots, guint64 lanes,
    guint64 live, guint32 live_max, guint64 * waiting);
guint64 shm_slots_wait_room (ShmSlots * slots, guint64 lanes,
    gboolean frame, gint64 deadline_us, const gint * cancel);
gboolean shm_slots_lane_drained (ShmSlots * slots, guint lane);
guint64 shm_slots_publish (ShmSlots * slots, guint64 lanes,
    const ShmRecord * record);
gint shm_slots_furthest_behind (ShmSlots * slots, guint64 lanes,
    guint64 seq, guint64 * age);
guint32 *shm_slots_lane_bell (ShmSlots * slots, guint lane);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ShmSlots, shm_slots_unref);

G_END_DECLS

#endif /* __SHM_SLOTS_H__ */

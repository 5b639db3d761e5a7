/* gst-shm: the sender engine
 *
 * Part of the core (GLib only).  Everything shmsink does that is not
 * GStreamer: it owns the area (creates, sizes, replaces, removes it),
 * listens for receivers (or serves the in-band rings), runs the token
 * handshake with each one in a control thread of its own, keeps the
 * receiver registry, and publishes frames into the receivers' channels
 * (or through their connections, inline), with the slot policy: live
 * receivers that lag miss frames, non-live ones pace the sender.  Caps
 * are opaque strings here: the element maps them (callbacks).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#ifndef __SHM_SENDER_H__
#define __SHM_SENDER_H__

#include "shmaddress.h"
#include "shmhandshake.h"
#include "shmrecord.h"
#include "shmslots.h"

G_BEGIN_DECLS

typedef struct _ShmSender ShmSender;
typedef struct _ShmPeer ShmPeer;

typedef struct
{
  const gchar *path;            /* the area file */
  const gchar *control;         /* a control address (shmaddress.h) */
  guint num_slots;
  guint64 size;                 /* of an area it creates; 0: from frames */
  guint mode;                   /* of the file and socket it creates */
  const gchar *group;           /* their group (a name or a gid), or NULL */
  gboolean allow_symlink;
  gboolean inline_fallback;
  const gchar *secret;          /* for frames inline; NULL: none */
  gint64 slot_timeout_us;       /* -1: forever */
  gint64 peer_timeout_us;
  guint64 features;             /* what it offers (tests turn some off) */
} ShmSenderConfig;

typedef struct
{
  /* Control thread.  A receiver said what it accepts (@update: it changed
   * its mind later); @caps NULL for anything.  Return NULL, or the reason
   * to refuse it (it gets an error of code "caps"). */
  gchar *(*accepts) (ShmSender * sender, ShmPeer * peer, const gchar * caps,
      gboolean update, gpointer user_data);
  /* Control thread: a receiver that said hello is gone. */
  void (*gone) (ShmSender * sender, ShmPeer * peer, gpointer user_data);
  ShmPeerEventFunc peer_event;
  ShmMessageFunc message;
  /* Control thread, may be NULL: a receiver's report (checked). */
  void (*report) (ShmSender * sender, ShmPeer * peer, const ShmReport * report,
      gpointer user_data);
} ShmSenderCallbacks;

/* What the sender knows of one receiver: shm_sender_foreach_receiver(). */
typedef struct
{
  const gchar *name;            /* "process 1234", "tcp:10.0.2.15:4000" */
  gboolean live, ready, frames_inline;
  guint64 missed;               /* frames it did not get (skipped) */
  const ShmReport *report;      /* its last, or NULL */
  gint64 report_age_us;
} ShmReceiverInfo;

typedef void (*ShmReceiverInfoFunc) (const ShmReceiverInfo * info,
    gpointer data);

typedef struct
{
  guint64 frames_rendered, frames_sent, frames_zero_copy, frames_copied;
  guint64 bytes_copied, frames_dropped, frames_unsent, frames_skipped;
  guint64 frames_inline, receivers_connected, sessions, doorbells;
  guint64 bytes_inline;         /* records and frames sent inline */
  guint receivers;
  guint64 area_size, slot_size;
  guint n_slots;
} ShmSenderStats;

typedef enum
{
  SHM_SEND_OK,
  SHM_SEND_FLUSHING,
  SHM_SEND_ERROR,
  SHM_SEND_REPLACED,            /* the area changed under the frame: again */
} ShmSendResult;

ShmSender *shm_sender_new (const ShmSenderConfig * config,
    const ShmSenderCallbacks * callbacks, gpointer user_data);
void shm_sender_free (ShmSender * sender);
gboolean shm_sender_start (ShmSender * sender, GError ** error);
void shm_sender_stop (ShmSender * sender);

const gchar *shm_peer_get_name (ShmPeer * peer);
void shm_sender_foreach_receiver (ShmSender * sender, ShmReceiverInfoFunc func,
    gpointer data);

/* Streaming side. */
gboolean shm_sender_set_caps (ShmSender * sender, const gchar * caps,
    guint64 frame_size, gboolean fit, GError ** error);
void shm_sender_set_grid (ShmSender * sender, const ShmTileGrid * grid);
gboolean shm_sender_grow (ShmSender * sender, guint64 frame_size,
    GError ** error);
ShmSlots *shm_sender_get_slots (ShmSender * sender);
guint64 shm_sender_max_frame_size (ShmSender * sender);
guint64 shm_sender_size_needed (ShmSender * sender, guint64 frame_size);
void shm_sender_set_min_ready (ShmSender * sender, guint min);
ShmSendResult shm_sender_wait_ready (ShmSender * sender);
gboolean shm_sender_wait_hellos (ShmSender * sender, guint min, guint unlocks,
    guint (*count) (gpointer data), gpointer data);
guint shm_sender_get_unlocks (ShmSender * sender);
void shm_sender_wake_waits (ShmSender * sender);
ShmSendResult shm_sender_send (ShmSender * sender, ShmSlots * slots,
    ShmRecord * record, gboolean copied);
void shm_sender_count_drop (ShmSender * sender);
void shm_sender_set_next_seq (ShmSender * sender, guint64 seq);
void shm_sender_send_eos (ShmSender * sender);
void shm_sender_set_flushing (ShmSender * sender, gboolean flushing);
const gint *shm_sender_flushing_flag (ShmSender * sender);
void shm_sender_get_stats (ShmSender * sender, ShmSenderStats * stats);
void shm_sender_set_timeouts (ShmSender * sender, gint64 slot_timeout_us,
    gint64 peer_timeout_us);

G_END_DECLS

#endif /* __SHM_SENDER_H__ */

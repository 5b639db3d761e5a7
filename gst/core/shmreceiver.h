/* gst-shm: the receiver engine
 *
 * Part of the core (GLib only).  Everything shmsrc does that is not
 * GStreamer: it finds a sender (connects and retries, or claims a lane of
 * the in-band rings), answers its token handshake in a control thread of
 * its own, and hands the frames of its channel to the streaming thread,
 * which waits on the channel itself (one hop: no thread between the
 * sender's publication and the push).  Caps are opaque here: the element
 * parses them (callbacks) and gets back the handle it made.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#ifndef __SHM_RECEIVER_H__
#define __SHM_RECEIVER_H__

#include "shmhandshake.h"
#include "shmrecord.h"
#include "shmivshmem.h"

G_BEGIN_DECLS

typedef struct _ShmReceiver ShmReceiver;
typedef struct _ShmRxSession ShmRxSession;

typedef struct
{
  const gchar *path;            /* our own path of the area */
  const gchar *control;         /* a control address (shmaddress.h) */
  ShmBarKind bar;               /* the path is a PCI BAR */
  gboolean allow_symlink;
  gboolean inline_fallback;
  const gchar *secret;          /* for frames inline; NULL: none */
  gboolean live;                /* may miss frames when it lags */
  gint64 timeout_us;            /* no sender for this long: error; 0 never */
  gint64 peer_timeout_us;
  gint64 spin_ns;               /* longest look without sleep per frame */
  guint64 features;             /* what it offers (tests turn some off) */
} ShmReceiverConfig;

typedef struct
{
  /* Control thread: the caps downstream accepts now, for the hello
   * (transfer full; NULL for anything). */
  gchar *(*get_accept) (ShmReceiver * rx, gpointer user_data);
  /* Control thread: caps announced by the sender (string form).  Returns a
   * handle of the element's (given back with SHM_RECV_CAPS) and fills
   * @layout, or NULL with @error. */
    gpointer (*parse_caps) (ShmReceiver * rx, const gchar * caps,
      guint64 slot_size, ShmFrameLayout * layout, GError ** error,
      gpointer user_data);
  GDestroyNotify free_caps;
  ShmPeerEventFunc peer_event;
  /* (after an error, shm_receiver_next() fails) */
  ShmMessageFunc message;
} ShmReceiverCallbacks;

typedef enum
{
  SHM_RECV_FRAME,
  SHM_RECV_CAPS,                /* new caps come before the next frame */
  SHM_RECV_EOS,
  SHM_RECV_FLUSHING,
  SHM_RECV_ERROR,
} ShmRecvResult;

/* A frame handed to the streaming thread.  Its slot stays the receiver's
 * until shm_rx_frame_free(). */
typedef struct
{
  ShmRecord record;
  ShmRxSession *session;
  const guint8 *data;           /* the frame's bytes */
  gboolean in_area;             /* data lies in the area (else a copy) */
  gboolean from_bar;            /* ... and the area is a PCI BAR */
  gboolean discont;             /* frames were missed before this one */
  gboolean same_boot;           /* the sender's CLOCK_MONOTONIC is ours */
  GBytes *payload;              /* an inline frame's bytes */
  gboolean held;
  /* an inline frame of a stream with damage that this receiver drops (its
   * downstream is too slow): not to be pushed, but the frame it patches
   * must be patched all the same, or the next ones could not be */
  gboolean apply_only;
} ShmRxFrame;

typedef struct
{
  guint64 frames_received, frames_dropped, frames_inline, sessions;
  guint64 frames_missed;        /* gaps in the frame numbers */
  guint64 wakeups, spins;
  gint64 last_latency_ns;
  guint n_slots;
} ShmReceiverStats;

ShmReceiver *shm_receiver_new (const ShmReceiverConfig * config,
    const ShmReceiverCallbacks * callbacks, gpointer user_data);
void shm_receiver_free (ShmReceiver * rx);
void shm_receiver_start (ShmReceiver * rx);
void shm_receiver_stop (ShmReceiver * rx);

ShmRecvResult shm_receiver_next (ShmReceiver * rx, ShmRxFrame ** frame,
    gpointer * caps);
void shm_receiver_set_flushing (ShmReceiver * rx, gboolean flushing);
void shm_receiver_set_discarding (ShmReceiver * rx, gboolean discarding);
void shm_receiver_drop_pending (ShmReceiver * rx);
void shm_receiver_request_full (ShmReceiver * rx);
void shm_receiver_send_accept (ShmReceiver * rx, const gchar * caps);
void shm_receiver_note_qos (ShmReceiver * rx, gdouble proportion,
    gint64 jitter);
void shm_receiver_get_stats (ShmReceiver * rx, ShmReceiverStats * stats);

void shm_rx_frame_hold (ShmRxFrame * frame);
guint shm_rx_session_held (ShmRxSession * session);
guint shm_rx_session_may_hold (ShmRxSession * session);
guint64 shm_rx_session_id (ShmRxSession * session);
void shm_rx_frame_free (ShmRxFrame * frame);

G_END_DECLS

#endif /* __SHM_RECEIVER_H__ */

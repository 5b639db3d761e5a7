/* gst-shm: the handshake's messages, and what both engines share
 *
 * Part of the core (GLib only).  Encoders and decoders of the messages
 * that set a receiver up (hello, mmap, mmap-reply, ready, caps), with
 * every field typed and bounded when read; docs/protocol.md, section 2.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#ifndef __SHM_HANDSHAKE_H__
#define __SHM_HANDSHAKE_H__

#include "shmarea.h"
#include "shmconn.h"
#include "shmproto.h"

G_BEGIN_DECLS

/* Errors of the engines that the elements turn into element errors. */
#define SHM_ENGINE_ERROR (shm_engine_error_quark ())
GQuark shm_engine_error_quark (void);

typedef enum
{
  SHM_ENGINE_ERROR_FAILED,
  SHM_ENGINE_ERROR_SETTINGS,    /* a property is wrong */
  SHM_ENGINE_ERROR_NOT_FOUND,
  SHM_ENGINE_ERROR_BUSY,
  SHM_ENGINE_ERROR_OPEN_READ,
  SHM_ENGINE_ERROR_OPEN_WRITE,
  SHM_ENGINE_ERROR_READ,        /* the peer sent something wrong */
  SHM_ENGINE_ERROR_WRITE,
  SHM_ENGINE_ERROR_TOKEN,       /* the two sides do not map the same memory */
  SHM_ENGINE_ERROR_NEGOTIATION,
  SHM_ENGINE_ERROR_FORMAT,      /* the peer's caps are invalid */
} ShmEngineError;

/* How a receiver learns that its channel has records, and the sender that
 * a slot came back (docs/protocol.md, "Waiting and waking"). */
typedef enum
{
  SHM_WAKE_FUTEX = 1,           /* futexes on the bells in the area */
  SHM_WAKE_DOORBELL = 2,        /* a doorbell message on the connection */
  SHM_WAKE_POLL = 3,            /* nothing: the other side looks (rings) */
} ShmWake;

const gchar *shm_wake_name (ShmWake wake);

/* What an engine tells its element, from any thread: a peer "connected",
 * "left", "lost", "refused" or "stalled"; an error for the bus (@fatal:
 * the engine stops after it) or a warning. */
typedef void (*ShmPeerEventFunc) (const gchar * event, const gchar * peer,
    guint64 session, const gchar * reason, gpointer user_data);
typedef void (*ShmMessageFunc) (gboolean fatal, const GError * error,
    const gchar * debug, gpointer user_data);
const gchar *shm_boot_id (void);

/* Frames inline for a receiver that proves a shared secret: each side
 * sends a random challenge, and answers the other's with an HMAC-SHA256
 * keyed by the secret (docs/protocol.md, "Access").  The secret never
 * travels. */
#define SHM_NONCE_BYTES 16
#define SHM_PROOF_BYTES 32

void shm_secret_proof (const gchar * secret, const gchar * role,
    const guint8 * challenge, const guint8 * other, guint8 * proof);
gboolean shm_secret_check (const gchar * secret, const gchar * role,
    const guint8 * challenge, const guint8 * other, const guint8 * proof);

typedef struct
{
  guint32 version_min, version_max;
  guint64 features;
  gboolean live;
  gchar *path;
  gchar *caps;                  /* NULL: anything */
  gchar *boot_id;
  gboolean has_nonce;
  guint8 nonce[SHM_NONCE_BYTES];        /* the receiver's challenge */
} ShmHello;

GVariant *shm_hello_encode (const ShmHello * h);
gboolean shm_hello_decode (GVariant * body, ShmHello * h, GError ** error);
void shm_hello_clear (ShmHello * h);

typedef struct
{
  guint32 version;
  guint64 features;
  ShmGeometry geo;
  gchar *file;
  guint8 token[SHM_TOKEN_MAX_BYTES];
  guint32 token_bytes;
  guint64 token_index;
  guint32 lane;
  guint32 lane_gen;
  gchar *boot_id;
  gboolean has_nonce, has_proof;
  guint8 nonce[SHM_NONCE_BYTES];        /* the sender's challenge */
  guint8 proof[SHM_PROOF_BYTES];        /* its answer to the receiver's */
} ShmMmapInfo;

GVariant *shm_mmap_encode (const ShmMmapInfo * m);
gboolean shm_mmap_decode (GVariant * body, ShmMmapInfo * m, GError ** error);
void shm_mmap_clear (ShmMmapInfo * m);

typedef struct
{
  guint64 session;
  gboolean want_inline;
  gchar *reason;
  guint8 token[SHM_TOKEN_MAX_BYTES];
  guint32 token_bytes;
  guint64 token_index;
  gboolean has_proof;
  guint8 proof[SHM_PROOF_BYTES];        /* the answer to the sender's */
} ShmReply;

GVariant *shm_reply_encode (const ShmReply * r);
gboolean shm_reply_decode (GVariant * body, ShmReply * r, GError ** error);
void shm_reply_clear (ShmReply * r);

/* "ready" and "caps" carry caps with their generation. */
typedef struct
{
  guint64 session;
  gboolean frames_inline;
  ShmWake wake;
  gchar *caps;                  /* NULL: none yet */
  guint32 caps_gen;
} ShmReady;

GVariant *shm_ready_encode (const ShmReady * r);
gboolean shm_ready_decode (GVariant * body, ShmReady * r, GError ** error);
void shm_ready_clear (ShmReady * r);

/* A receiver's report (every SHM_REPORT_INTERVAL_MS): what happened to the
 * frames it was sent since the last one, and what its downstream says. */
#define SHM_REPORT_INTERVAL_MS 1000
#define SHM_REPORT_MAX_LATENCY_NS (60 * G_GUINT64_CONSTANT (1000000000))
#define SHM_REPORT_MAX_PROPORTION 1000

typedef struct
{
  guint64 interval_ns;          /* the time the figures cover */
  guint64 received, dropped, missed;    /* frames in that time */
  guint64 latency_p50_ns, latency_max_ns;       /* publication to push; 0:
                                                 * not known */
  guint32 queued;               /* records waiting when it was written */
  guint32 qos_events;           /* QoS events from downstream in that time */
  gdouble qos_proportion;       /* the last one's; 0: none yet */
  gint64 qos_jitter_ns;
} ShmReport;

GVariant *shm_report_encode (const ShmReport * r);
gboolean shm_report_decode (GVariant * body, ShmReport * r, GError ** error);

void shm_caps_insert (GVariantDict * d, const gchar * caps, guint32 gen);
gboolean shm_caps_lookup (GVariant * body, gboolean required, gchar ** caps,
    guint32 * gen, GError ** error);

void shm_send_error (ShmConn * conn, const gchar * code, const gchar * message);
void shm_send_bye (ShmConn * conn, const gchar * message);
gboolean shm_send_doorbell (ShmConn * conn);

G_END_DECLS

#endif /* __SHM_HANDSHAKE_H__ */

/* gst-shm: control messages
 *
 * Part of the core (GLib only).  docs/protocol.md is the normative text.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#ifndef __SHM_PROTO_H__
#define __SHM_PROTO_H__

#include <glib.h>

G_BEGIN_DECLS

/* Every message: a 16-byte frame header, a body, then a raw payload.
 *   0  u32 LE  magic  "GSHM"
 *   4  u32 LE  type   (ShmMsgType)
 *   8  u32 LE  length of the body in bytes (at most SHM_MSG_MAX_BODY)
 *   12 u32 LE  length of the payload (0 except for frame-inline)
 *   16 body: a GVariant of type a{sv} in normal form, little-endian
 *   .. payload: raw bytes
 */
#define SHM_MSG_MAGIC           0x4d485347u     /* "GSHM" */
#define SHM_MSG_HEADER_SIZE     16
#define SHM_MSG_MAX_BODY        (1024 * 1024)
#define SHM_MSG_MAX_PAYLOAD     (256u * 1024 * 1024)
/* Protocol versions this code speaks (2.1): version 2 moved frames and
 * releases into the area (records in channels, shmchannel.h). */
#define SHM_PROTO_VERSION       2
#define SHM_PROTO_VERSION_MIN   2

/* Feature bits of the hello and mmap messages: a side sets those it
 * supports; a bit one side does not know is ignored. */
typedef enum
{
  /* it can wait and wake on futexes in its mapping of the area (a file
   * mapping, not a PCI BAR) */
  SHM_FEATURE_FUTEX = 1 << 0,
  /* (receiver) it takes inline frames that carry only their changed tiles
   * (SHM_RECORD_FLAG_PARTIAL) and asks for a whole one with "refresh" */
  SHM_FEATURE_DAMAGE = 1 << 1,
} ShmFeature;
#define SHM_FEATURES_KNOWN ((guint64) (SHM_FEATURE_FUTEX | SHM_FEATURE_DAMAGE))

#define SHM_MAX_PATH            4096
#define SHM_MAX_CAPS            (64 * 1024)
#define SHM_MAX_TEXT            4096
#define SHM_MAX_PLANES          4

/* Types 6 (frame), 7 (release) and 8 (eos) were messages of version 1:
 * frames, releases and the end of the stream now go through the
 * channels. */
typedef enum
{
  SHM_MSG_HELLO = 1,            /* receiver -> sink: who I am, what I accept */
  SHM_MSG_MMAP = 2,             /* sink -> receiver: area and token */
  SHM_MSG_MMAP_REPLY = 3,       /* receiver -> sink: answer token */
  SHM_MSG_READY = 4,            /* sink -> receiver: verified both ways */
  SHM_MSG_CAPS = 5,             /* sink -> receiver: caps of a generation */
  SHM_MSG_PING = 9,             /* both: heartbeat */
  SHM_MSG_BYE = 10,             /* both: clean goodbye */
  SHM_MSG_ERROR = 11,           /* both: fatal error, then close */
  SHM_MSG_ACCEPT = 12,          /* receiver -> sink: accepted caps changed */
  SHM_MSG_RECORD = 13,          /* sink -> receiver: a record, and a frame's
                                 * bytes, through the connection */
  SHM_MSG_DOORBELL = 14,        /* both: look at the channel */
  SHM_MSG_REPORT = 15,          /* receiver -> sink: how its stream goes */
  SHM_MSG_REFRESH = 16,         /* receiver -> sink: the next inline frame
                                 * whole, please */
  SHM_MSG_LAST
} ShmMsgType;

const gchar *shm_msg_type_name (guint32 type);

#define SHM_PROTO_ERROR (shm_proto_error_quark ())
GQuark shm_proto_error_quark (void);

typedef enum
{
  SHM_PROTO_ERROR_MALFORMED,    /* framing or body does not parse */
  SHM_PROTO_ERROR_INVALID,      /* a field is missing or out of bounds */
  SHM_PROTO_ERROR_VERSION,
  SHM_PROTO_ERROR_CLOSED,
  SHM_PROTO_ERROR_OVERFLOW,     /* peer does not read */
  SHM_PROTO_ERROR_PEER,         /* the peer sent an ERROR message */
} ShmProtoError;

typedef enum
{
  SHM_PARSE_OK,
  SHM_PARSE_NEED_MORE,
  SHM_PARSE_ERROR,
} ShmParseResult;

GBytes *shm_msg_encode (guint32 type, GVariant * body);
gsize shm_msg_encode_into (GByteArray * out, guint32 type, GVariant * body,
    guint32 payload_len);
ShmParseResult shm_msg_parse (const guint8 * data, gsize len,
    guint32 max_payload, gsize * consumed, guint32 * type, GVariant ** body,
    const guint8 ** payload, gsize * payload_len, GError ** error);

/* Typed, bounded accessors for a received body.  Each fails with
 * SHM_PROTO_ERROR_INVALID and a message that names the key. */
gboolean shm_msg_get_u32 (GVariant * body, const gchar * key, guint32 min,
    guint32 max, guint32 * out, GError ** error);
gboolean shm_msg_get_u64 (GVariant * body, const gchar * key, guint64 min,
    guint64 max, guint64 * out, GError ** error);
gboolean shm_msg_get_i64 (GVariant * body, const gchar * key, gint64 * out,
    GError ** error);
gboolean shm_msg_get_string (GVariant * body, const gchar * key,
    gsize max_len, const gchar ** out, GError ** error);
gboolean shm_msg_get_bytes (GVariant * body, const gchar * key,
    gsize min_len, gsize max_len, const guint8 ** out, gsize * out_len,
    GError ** error);
gboolean shm_msg_get_u64_array (GVariant * body, const gchar * key,
    gsize max_n, guint64 * out, gsize * n, GError ** error);
gboolean shm_msg_get_bool (GVariant * body, const gchar * key,
    gboolean * out, GError ** error);
gboolean shm_msg_has (GVariant * body, const gchar * key);

/* Reads the optional "message" of an ERROR/BYE body. */
const gchar *shm_msg_get_text (GVariant * body, const gchar * key);

G_END_DECLS

#endif /* __SHM_PROTO_H__ */

/* gst-shm: the shared area
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "shmarea.h"
#include "shmbell.h"
#include "shmguard.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

struct _ShmArea
{
  gint ref_count;
  gchar *path;                  /* as the user gave it */
  gchar *file;                  /* the file itself (symbolic links resolved) */
  int fd;
  guint8 *data;
  guint64 size;
  gboolean created;
  dev_t dev;
  ino_t ino;
  gint futex_ok;                /* 0 unknown, 1 yes, -1 no */
  gint guard;                   /* shmguard.h */
  gint truncated;               /* the file shrank under the mapping */
};

G_DEFINE_QUARK (shm - area - error - quark, shm_area_error);

static inline guint64
align_up (guint64 v, guint64 a)
{
  return (v + a - 1) / a * a;
}

/* Byte offsets of the header fields; every one is checked against the
 * struct in shmarea.h. */
#define OFF(f) offsetof (ShmAreaHeader, f)

static guint64
rd64 (const guint8 * b, gsize off)
{
  guint64 v;
  memcpy (&v, b + off, sizeof v);
  return GUINT64_FROM_LE (v);
}

static guint32
rd32 (const guint8 * b, gsize off)
{
  guint32 v;
  memcpy (&v, b + off, sizeof v);
  return GUINT32_FROM_LE (v);
}

static void
wr64 (guint8 * b, gsize off, guint64 v)
{
  v = GUINT64_TO_LE (v);
  memcpy (b + off, &v, sizeof v);
}

static void
wr32 (guint8 * b, gsize off, guint32 v)
{
  v = GUINT32_TO_LE (v);
  memcpy (b + off, &v, sizeof v);
}

static guint64 *
field64 (ShmArea * area, gsize off)
{
  return (guint64 *) (gpointer) (area->data + off);
}

/* --- geometry ----------------------------------------------------------- */

static guint64
chan_offset_for (guint64 ring_size)
{
  return SHM_AREA_TOKEN_OFFSET + SHM_AREA_TOKEN_SIZE + align_up (ring_size,
      SHM_AREA_PAGE);
}

static guint64
slots_offset_for (guint64 ring_size)
{
  return chan_offset_for (ring_size) + align_up ((guint64)
      SHM_AREA_TOKEN_LANES * SHM_CHAN_STRIDE (SHM_CHAN_DEPTH), SHM_AREA_PAGE);
}

/**
 * shm_geometry_size_needed:
 *
 * Returns: the smallest area that holds @n_slots frames of @frame_size bytes
 * and a ring region of @ring_size bytes, or G_MAXUINT64 when that exceeds
 * %SHM_AREA_MAX_SIZE.
 */
guint64
shm_geometry_size_needed (guint32 n_slots, guint64 frame_size,
    guint64 ring_size)
{
  guint64 slot_size, slots;

  if (frame_size == 0 || frame_size > SHM_AREA_MAX_SIZE
      || ring_size > SHM_AREA_MAX_SIZE || n_slots > SHM_AREA_MAX_SLOTS)
    return G_MAXUINT64;
  slot_size = align_up (frame_size, SHM_AREA_PAGE);
  slots = slot_size * n_slots;  /* < 2^40 * 64: no overflow */
  if (slots > SHM_AREA_MAX_SIZE)
    return G_MAXUINT64;
  slots += slots_offset_for (ring_size);
  return slots > SHM_AREA_MAX_SIZE ? G_MAXUINT64 : slots;
}

/**
 * shm_geometry_compute:
 * @area_size: the size of the area (an existing file's size, or the size a
 *   new file was created with)
 *
 * Lays out @n_slots slots of at least @frame_size bytes in an area of
 * @area_size bytes; the slots take all the room there is, rounded down to
 * pages, so that a fixed area (a BAR) can carry bigger frames later.
 */
gboolean
shm_geometry_compute (ShmGeometry * geo, guint64 area_size, guint32 n_slots,
    guint64 frame_size, guint64 ring_size, GError ** error)
{
  guint64 needed, slots_offset;

  g_return_val_if_fail (geo != NULL, FALSE);

  if (n_slots < SHM_AREA_MIN_SLOTS || n_slots > SHM_AREA_MAX_SLOTS) {
    g_set_error (error, SHM_AREA_ERROR, SHM_AREA_ERROR_FAILED,
        "%u slots asked for; an area holds %d to %d", n_slots,
        SHM_AREA_MIN_SLOTS, SHM_AREA_MAX_SLOTS);
    return FALSE;
  }
  needed = shm_geometry_size_needed (n_slots, frame_size, ring_size);
  if (needed == G_MAXUINT64) {
    g_set_error (error, SHM_AREA_ERROR, SHM_AREA_ERROR_FAILED,
        "%u slots of %" G_GUINT64_FORMAT " bytes exceed the largest area (%"
        G_GUINT64_FORMAT " bytes)", n_slots, frame_size, SHM_AREA_MAX_SIZE);
    return FALSE;
  }
  if (area_size < needed) {
    g_set_error (error, SHM_AREA_ERROR, SHM_AREA_ERROR_TOO_SMALL,
        "the area is %" G_GUINT64_FORMAT " bytes but %u slots of %"
        G_GUINT64_FORMAT " bytes need %" G_GUINT64_FORMAT " bytes",
        area_size, n_slots, frame_size, needed);
    return FALSE;
  }

  slots_offset = slots_offset_for (ring_size);
  memset (geo, 0, sizeof *geo);
  geo->area_size = area_size;
  geo->token_offset = SHM_AREA_TOKEN_OFFSET;
  geo->token_lanes = SHM_AREA_TOKEN_LANES;
  geo->token_lane_size = SHM_AREA_TOKEN_LANE_SIZE;
  geo->ring_offset =
      ring_size ? SHM_AREA_TOKEN_OFFSET + SHM_AREA_TOKEN_SIZE : 0;
  geo->ring_size = align_up (ring_size, SHM_AREA_PAGE);
  geo->chan_offset = chan_offset_for (ring_size);
  geo->chan_stride = SHM_CHAN_STRIDE (SHM_CHAN_DEPTH);
  geo->chan_depth = SHM_CHAN_DEPTH;
  geo->slots_offset = slots_offset;
  geo->slot_size = (area_size - slots_offset) / n_slots;
  geo->slot_size -= geo->slot_size % SHM_AREA_PAGE;
  geo->n_slots = n_slots;
  return TRUE;
}

/* Checks that a geometry (from a header or a hello) is self-consistent and
 * fits in @map_size bytes.  All arithmetic is overflow-safe because every
 * value is first bounded by SHM_AREA_MAX_SIZE. */
gboolean
shm_geometry_validate (const ShmGeometry * g, guint64 map_size, GError ** error)
{
  const gchar *what = NULL;

  if (g->area_size > SHM_AREA_MAX_SIZE || g->area_size > map_size)
    what = "area size";
  else if (g->token_offset != SHM_AREA_TOKEN_OFFSET
      || g->token_lanes != SHM_AREA_TOKEN_LANES
      || g->token_lane_size != SHM_AREA_TOKEN_LANE_SIZE)
    what = "token region";
  else if (g->ring_size > SHM_AREA_MAX_SIZE
      || g->ring_size % SHM_AREA_PAGE != 0
      || (g->ring_size != 0
          && g->ring_offset != SHM_AREA_TOKEN_OFFSET + SHM_AREA_TOKEN_SIZE)
      || (g->ring_size == 0 && g->ring_offset != 0))
    what = "ring region";
  else if (g->chan_offset != chan_offset_for (g->ring_size)
      || g->chan_depth < SHM_CHAN_MIN_DEPTH
      || g->chan_depth > SHM_CHAN_MAX_DEPTH
      || (g->chan_depth & (g->chan_depth - 1)) != 0
      || g->chan_stride != SHM_CHAN_STRIDE (g->chan_depth))
    what = "channel region";
  else if (g->slots_offset != chan_offset_for (g->ring_size)
      + align_up ((guint64) g->token_lanes * g->chan_stride, SHM_AREA_PAGE))
    what = "slot offset";
  else if (g->n_slots < SHM_AREA_MIN_SLOTS || g->n_slots > SHM_AREA_MAX_SLOTS)
    what = "slot count";
  else if (g->slot_size == 0 || g->slot_size % SHM_AREA_PAGE != 0
      || g->slot_size > SHM_AREA_MAX_SIZE
      || g->slots_offset + g->slot_size * g->n_slots > g->area_size)
    what = "slot size";

  if (what) {
    g_set_error (error, SHM_AREA_ERROR, SHM_AREA_ERROR_BAD_HEADER,
        "invalid %s in area geometry", what);
    return FALSE;
  }
  return TRUE;
}

gboolean
shm_geometry_slot_range (const ShmGeometry * geo, guint32 slot,
    guint64 * offset)
{
  if (slot >= geo->n_slots)
    return FALSE;
  *offset = geo->slots_offset + (guint64) slot *geo->slot_size;
  return TRUE;
}

/**
 * shm_area_channel:
 *
 * Returns: the frame channel of @lane in @area (a geometry already
 * validated against this mapping), or NULL.
 */
guint8 *
shm_area_channel (ShmArea * area, const ShmGeometry * geo, guint32 lane)
{
  if (lane >= geo->token_lanes)
    return NULL;
  return area->data + geo->chan_offset + (gsize) lane *geo->chan_stride;
}

/* --- files -------------------------------------------------------------- */

static gint
errno_to_area_error (int err)
{
  switch (err) {
    case ENOENT:
    case ENOTDIR:
      return SHM_AREA_ERROR_NOT_FOUND;
    case EACCES:
    case EPERM:
    case EROFS:
      return SHM_AREA_ERROR_PERMISSION;
    case ELOOP:
      return SHM_AREA_ERROR_SYMLINK;
    case ENOSPC:
    case EDQUOT:
      return SHM_AREA_ERROR_NO_SPACE;
    default:
      return SHM_AREA_ERROR_FAILED;
  }
}

static void
set_errno_error (GError ** error, int err, const gchar * what,
    const gchar * path)
{
  gint code = errno_to_area_error (err);

  if (code == SHM_AREA_ERROR_SYMLINK) {
    g_set_error (error, SHM_AREA_ERROR, code,
        "\"%s\" is a symbolic link; symbolic links are refused unless "
        "allow-symlink is set", path);
  } else if (code == SHM_AREA_ERROR_NOT_FOUND && err == ENOENT) {
    g_autofree gchar *dir = g_path_get_dirname (path);
    if (!g_file_test (dir, G_FILE_TEST_IS_DIR))
      g_set_error (error, SHM_AREA_ERROR, code,
          "Could not %s \"%s\": directory \"%s\" does not exist", what, path,
          dir);
    else
      g_set_error (error, SHM_AREA_ERROR, code,
          "Could not %s \"%s\": %s", what, path, g_strerror (err));
  } else {
    g_set_error (error, SHM_AREA_ERROR, code, "Could not %s \"%s\": %s",
        what, path, g_strerror (err));
  }
}

/* With allow-symlink: follows the links at the end of @path (at most 16),
 * so that a link to a file that does not exist yet creates that file. */
static gchar *
resolve_links (const gchar * path, GError ** error)
{
  gchar *cur = g_strdup (path);

  for (int hops = 0; hops < 16; hops++) {
    struct stat st;
    gchar *target, *dir;

    if (lstat (cur, &st) < 0 || !S_ISLNK (st.st_mode))
      return cur;
    target = g_file_read_link (cur, NULL);
    if (!target)
      return cur;
    if (!g_path_is_absolute (target)) {
      dir = g_path_get_dirname (cur);
      g_free (cur);
      cur = g_build_filename (dir, target, NULL);
      g_free (dir);
      g_free (target);
    } else {
      g_free (cur);
      cur = target;
    }
  }
  g_free (cur);
  g_set_error (error, SHM_AREA_ERROR, SHM_AREA_ERROR_SYMLINK,
      "\"%s\": too many levels of symbolic links", path);
  return NULL;
}

static ShmArea *
area_map (const gchar * path, const gchar * file, int fd, gboolean created,
    gboolean readonly, GError ** error)
{
  struct stat st;
  ShmArea *area;
  void *data;

  if (fstat (fd, &st) < 0) {
    set_errno_error (error, errno, "stat", path);
    return NULL;
  }
  if (!S_ISREG (st.st_mode)) {
    g_set_error (error, SHM_AREA_ERROR, SHM_AREA_ERROR_NOT_REGULAR,
        "\"%s\" is not a regular file (a shared-memory file or a PCI BAR "
        "resource file is needed)", path);
    return NULL;
  }
  if ((guint64) st.st_size < slots_offset_for (0)
      + SHM_AREA_MIN_SLOTS * SHM_AREA_PAGE) {
    /* (a sink creates the file, then gives it its size) */
    g_set_error (error, SHM_AREA_ERROR, st.st_size == 0 ? SHM_AREA_ERROR_EMPTY
        : SHM_AREA_ERROR_TOO_SMALL,
        "\"%s\" is %" G_GUINT64_FORMAT " bytes, too small for any area "
        "(at least %" G_GUINT64_FORMAT " bytes)", path, (guint64) st.st_size,
        slots_offset_for (0) + SHM_AREA_MIN_SLOTS * SHM_AREA_PAGE);
    return NULL;
  }
  if ((guint64) st.st_size > SHM_AREA_MAX_SIZE) {
    g_set_error (error, SHM_AREA_ERROR, SHM_AREA_ERROR_FAILED,
        "\"%s\" is %" G_GUINT64_FORMAT " bytes, more than the largest area "
        "(%" G_GUINT64_FORMAT " bytes)", path, (guint64) st.st_size,
        SHM_AREA_MAX_SIZE);
    return NULL;
  }

  data = mmap (NULL, st.st_size, readonly ? PROT_READ : PROT_READ | PROT_WRITE,
      MAP_SHARED, fd, 0);
  if (data == MAP_FAILED) {
    set_errno_error (error, errno, "map", path);
    return NULL;
  }

  area = g_new0 (ShmArea, 1);
  area->ref_count = 1;
  area->path = g_strdup (path);
  area->file = g_strdup (file);
  area->fd = fd;
  area->data = data;
  area->size = st.st_size;
  area->created = created;
  area->dev = st.st_dev;
  area->ino = st.st_ino;
  area->guard = shm_guard_add (data, st.st_size, &area->truncated);
  return area;
}

static gboolean
header_is_blank (const guint8 * data)
{
  for (gsize i = 0; i < 64; i++)
    if (data[i] != 0)
      return FALSE;
  return TRUE;
}

/* --- owners ------------------------------------------------------------- */

/**
 * shm_describe_user:
 *
 * Returns: "user NAME (uid N)", or "uid N" for a uid without a name.
 */
gchar *
shm_describe_user (uid_t uid)
{
  struct passwd pw, *res = NULL;
  gchar buf[4096];

  if (getpwuid_r (uid, &pw, buf, sizeof buf, &res) == 0 && res)
    return g_strdup_printf ("user %s (uid %u)", pw.pw_name, (guint) uid);
  return g_strdup_printf ("uid %u", (guint) uid);
}

/**
 * shm_describe_group:
 *
 * Returns: "group NAME (gid N)", or "gid N" for a gid without a name.
 */
gchar *
shm_describe_group (gid_t gid)
{
  struct group gr, *res = NULL;
  gchar buf[4096];

  if (getgrgid_r (gid, &gr, buf, sizeof buf, &res) == 0 && res)
    return g_strdup_printf ("group %s (gid %u)", gr.gr_name, (guint) gid);
  return g_strdup_printf ("gid %u", (guint) gid);
}

/* Whose files a process of @euid trusts, for messages. */
static gchar *
owners (uid_t euid)
{
  struct passwd pw, *res = NULL;
  gchar buf[4096];

  if (euid == 0)
    return g_strdup ("root, its own user");
  if (getpwuid_r (euid, &pw, buf, sizeof buf, &res) == 0 && res)
    return g_strdup_printf ("its own user (%s, uid %u) or root", pw.pw_name,
        (guint) euid);
  return g_strdup_printf ("its own user (uid %u) or root", (guint) euid);
}

/* The effective gid and the supplementary groups of this process. */
static gid_t *
own_groups (guint * n_groups)
{
  int n = getgroups (0, NULL);
  gid_t *groups = g_new (gid_t, MAX (n, 0) + 1);

  n = n > 0 ? getgroups (n, groups + 1) : 0;
  groups[0] = getegid ();
  *n_groups = MAX (n, 0) + 1;
  return groups;
}

/**
 * shm_mode_shares:
 * @mode: a file's permission bits
 * @gid: the file's group
 * @groups: a user's groups (its primary group among them)
 *
 * Returns: whether @mode gives a user in @groups, who does not own the
 * file, read access: through the group bits, when @gid is one of @groups,
 * or through the bits for others.
 */
gboolean
shm_mode_shares (guint mode, gid_t gid, const gid_t * groups, guint n_groups)
{
  if (mode & S_IROTH)
    return TRUE;
  if (!(mode & S_IRGRP))
    return FALSE;
  for (guint i = 0; i < n_groups; i++)
    if (groups[i] == gid)
      return TRUE;
  return FALSE;
}

/**
 * shm_group_lookup:
 * @group: a group name, or a gid in decimal
 *
 * Finds the gid of @group, and checks that this process may give files to
 * it (it is root, or the group is one of its own).
 */
gboolean
shm_group_lookup (const gchar * group, gid_t * gid, GError ** error)
{
  g_autofree gid_t *groups = NULL;
  guint64 num;
  guint n_groups;

  if (g_ascii_string_to_unsigned (group, 10, 0, G_MAXUINT32 - 1, &num, NULL)) {
    *gid = (gid_t) num;
  } else {
    struct group gr, *res = NULL;
    gchar buf[16384];

    if (getgrnam_r (group, &gr, buf, sizeof buf, &res) != 0 || !res) {
      g_set_error (error, SHM_AREA_ERROR, SHM_AREA_ERROR_NOT_FOUND,
          "Group \"%s\" does not exist", group);
      return FALSE;
    }
    *gid = gr.gr_gid;
  }
  if (geteuid () == 0)
    return TRUE;
  groups = own_groups (&n_groups);
  for (guint i = 0; i < n_groups; i++)
    if (groups[i] == *gid)
      return TRUE;
  {
    g_autofree gchar *me = shm_describe_user (geteuid ());
    g_autofree gchar *which = shm_describe_group (*gid);
    g_set_error (error, SHM_AREA_ERROR, SHM_AREA_ERROR_PERMISSION,
        "%s is not a member of %s: files may only be given to one of its "
        "own groups", me, which);
  }
  return FALSE;
}

/**
 * shm_area_check_owner:
 * @st: an existing file the sink would use
 * @euid: the sink's effective uid
 * @mode: the permissions the sink gives the files it creates
 * @gid: the group it gives them, or -1 for none
 * @warning: (out) (optional): set when the file is accepted but gives more
 *   access than asked for (root made it)
 *
 * The sink's rule: an existing file is used only when it belongs to the
 * sink's user or to root (another user cannot have put it there: a QEMU
 * backing file, a PCI BAR's resource file, a file an administrator
 * prepared), and, for a file of the sink's own user, when its mode gives
 * no access beyond @mode (and its group bits, with @gid, go to @gid).  A
 * file root made is taken as it is, with a warning when it gives more.
 */
gboolean
shm_area_check_owner (const struct stat *st, uid_t euid, guint mode,
    gint64 gid, const gchar * path, gchar ** warning, GError ** error)
{
  guint have = st->st_mode & 0777;
  gboolean extra = (have & ~mode & 0777) != 0;
  gboolean wrong_group = gid >= 0 && (have & 0070) != 0
      && (gint64) st->st_gid != gid;
  g_autofree gchar *owner = shm_describe_user (st->st_uid);
  g_autofree gchar *desc = NULL, *asked = NULL;

  if (st->st_uid != euid && st->st_uid != 0) {
    g_autofree gchar *me = owners (euid);
    g_set_error (error, SHM_AREA_ERROR, SHM_AREA_ERROR_PERMISSION,
        "\"%s\" belongs to %s with mode %04o: shmsink uses an existing file "
        "only when it belongs to %s; remove it or choose another path", path,
        owner, have, me);
    return FALSE;
  }
  if (!extra && !wrong_group)
    return TRUE;

  if (wrong_group) {
    g_autofree gchar *has = shm_describe_group (st->st_gid);
    g_autofree gchar *want = shm_describe_group ((gid_t) gid);
    desc = g_strdup_printf ("%s and %s with mode %04o", owner, has, have);
    asked = g_strdup_printf ("mode=%04o and %s", mode & 0777, want);
  } else {
    desc = g_strdup_printf ("%s with mode %04o", owner, have);
    asked = g_strdup_printf ("mode=%04o", mode & 0777);
  }
  if (st->st_uid == 0) {
    if (warning)
      *warning = g_strdup_printf ("\"%s\" belongs to %s, more access than "
          "%s: shmsink uses a file that root made as it is (a QEMU backing "
          "file, a PCI BAR); change its mode to restrict who may read the "
          "frames", path, desc, asked);
    return TRUE;
  }
  g_set_error (error, SHM_AREA_ERROR, SHM_AREA_ERROR_PERMISSION,
      "\"%s\" belongs to %s: shmsink uses an existing file only when it "
      "gives no more access than %s; change its mode, set the mode property "
      "to what it gives, remove it or choose another path", path, desc, asked);
  return FALSE;
}

/**
 * shm_area_check_reader:
 * @st: the area a receiver opened
 * @euid: the receiver's effective uid
 * @groups: the receiver's groups
 *
 * The receiver's rule: an area is used when it belongs to the receiver's
 * own user or root, or when its mode shares it with one of the receiver's
 * groups or with everyone (the sink's user gave it that mode).  Anything
 * else may be a file another user put in the sender's place.
 */
gboolean
shm_area_check_reader (const struct stat *st, uid_t euid,
    const gid_t * groups, guint n_groups, const gchar * path, GError ** error)
{
  g_autofree gchar *owner = NULL, *me = NULL;

  if (st->st_uid == euid || st->st_uid == 0
      || shm_mode_shares (st->st_mode, st->st_gid, groups, n_groups))
    return TRUE;
  owner = shm_describe_user (st->st_uid);
  me = owners (euid);
  g_set_error (error, SHM_AREA_ERROR, SHM_AREA_ERROR_PERMISSION,
      "\"%s\" belongs to %s with mode %04o: a receiver uses an area only "
      "when it belongs to %s, or when its mode shares it with one of the "
      "receiver's groups or with everyone; it may be another user's file in "
      "the sender's place", path, owner, (guint) (st->st_mode & 0777), me);
  return FALSE;
}

/* After open() failed on an existing file: a file of another user says so
 * rather than "permission denied". */
static gboolean
explain_owner (const gchar * file, const gchar * path, guint mode, gint64 gid,
    GError ** error)
{
  struct stat st;

  return stat (file, &st) == 0 && S_ISREG (st.st_mode)
      && !shm_area_check_owner (&st, geteuid (), mode, gid, path, NULL, error);
}

/**
 * shm_area_create:
 *
 * shm_area_create_full() without a group or warnings.
 */
ShmArea *
shm_area_create (const gchar * path, guint64 size, guint mode,
    ShmOpenFlags flags, gboolean * created, GError ** error)
{
  return shm_area_create_full (path, size, mode, -1, flags, created, NULL,
      error);
}

/* Opens @file for a sink: creates it (only the owner may open it until
 * its group and mode are set), or opens the existing one. */
static int
sink_open (const gchar * file, const gchar * path, guint mode, gint64 gid,
    ShmOpenFlags flags, gboolean * is_new, GError ** error)
{
  int oflags = O_RDWR | O_CLOEXEC | O_NOFOLLOW;
  int fd, err;

  *is_new = !(flags & SHM_OPEN_NO_CREATE);
  if (!*is_new) {
    fd = open (file, oflags);
  } else {
    fd = open (file, oflags | O_CREAT | O_EXCL, mode & 0700);
    if (fd < 0 && errno == EEXIST) {
      *is_new = FALSE;
      fd = open (file, oflags);
    }
  }
  if (fd >= 0)
    return fd;
  err = errno;
  if (!*is_new && (err == EACCES || err == EPERM)
      && explain_owner (file, path, mode, gid, error))
    return -1;
  set_errno_error (error, err, *is_new ? "create" : "open", path);
  return -1;
}

/* A file the sink just created: its group, its mode (not the umask's),
 * and its blocks (a sparse file on a full tmpfs turns into SIGBUS later).
 * On failure the file is removed and @fd closed. */
static gboolean
sink_set_up_new (int fd, const gchar * file, const gchar * path, guint64 size,
    guint mode, gint64 gid, GError ** error)
{
  int err = 0;

  if (gid >= 0 && fchown (fd, (uid_t) - 1, (gid_t) gid) < 0)
    err = errno;
  else if (fchmod (fd, mode & 0777) < 0)
    err = errno;
  else
    err = posix_fallocate (fd, 0, size);
  if (err == 0)
    return TRUE;
  unlink (file);
  close (fd);
  if (err == ENOSPC) {
    g_autofree gchar *dir = g_path_get_dirname (path);
    g_set_error (error, SHM_AREA_ERROR, SHM_AREA_ERROR_NO_SPACE,
        "Could not allocate %" G_GUINT64_FORMAT " bytes for \"%s\": no space "
        "left in \"%s\"", size, path, dir);
  } else if (gid >= 0 && err == EPERM) {
    g_autofree gchar *which = shm_describe_group ((gid_t) gid);
    g_set_error (error, SHM_AREA_ERROR, SHM_AREA_ERROR_PERMISSION,
        "Could not give \"%s\" to %s: %s", path, which, g_strerror (err));
  } else {
    set_errno_error (error, err, "allocate", path);
  }
  return FALSE;
}

/* The lock that says a sink runs on the file. */
static gboolean
sink_lock (int fd, const gchar * path, GError ** error)
{
  if (flock (fd, LOCK_EX | LOCK_NB) == 0)
    return TRUE;
  if (errno == EWOULDBLOCK)
    g_set_error (error, SHM_AREA_ERROR, SHM_AREA_ERROR_BUSY,
        "Another shmsink owns \"%s\"", path);
  else
    set_errno_error (error, errno, "lock", path);
  return FALSE;
}

/**
 * shm_area_create_full:
 * @size: the size of a file that has to be created
 * @mode: the permissions of a file it creates, and the most an existing
 *   one may give (shm_area_check_owner())
 * @gid: the group of a file it creates, or -1 to leave it
 * @created: (out): whether the file was created by this call
 * @warning: (out) (optional): why an existing file that is used is worth a
 *   warning
 *
 * Opens the area at @path for the sink, creating it with @size bytes
 * (allocated with posix_fallocate) when it does not exist.  An existing
 * file is used as it is: never truncated, grown or, later, unlinked.
 * An existing file that holds something other than a blank page or a
 * gst-shm header is refused, so that a mistyped path never overwrites a
 * user's data, and so is one of another user (shm_area_check_owner()).
 */
ShmArea *
shm_area_create_full (const gchar * path, guint64 size, guint mode,
    gint64 gid, ShmOpenFlags flags, gboolean * created, gchar ** warning,
    GError ** error)
{
  gboolean is_new;
  g_autofree gchar *file = NULL;
  ShmArea *area;
  struct stat st;
  int fd;

  if (flags & SHM_OPEN_ALLOW_SYMLINK)
    file = resolve_links (path, error);
  else
    file = g_strdup (path);
  if (!file)
    return NULL;
  fd = sink_open (file, path, mode, gid, flags, &is_new, error);
  if (fd < 0)
    return NULL;

  if (is_new) {
    if (!sink_set_up_new (fd, file, path, size, mode, gid, error))
      return NULL;
  } else if (fstat (fd, &st) < 0) {
    set_errno_error (error, errno, "stat", path);
    close (fd);
    return NULL;
  } else if (S_ISREG (st.st_mode)
      && !shm_area_check_owner (&st, geteuid (), mode, gid, path, warning,
          error)) {
    close (fd);
    return NULL;
  }

  area = ((flags & SHM_OPEN_LOCK) && !sink_lock (fd, path, error)) ? NULL
      : area_map (path, file, fd, is_new, FALSE, error);
  if (!area) {
    if (is_new)
      unlink (file);
    close (fd);
    return NULL;
  }

  if (!is_new && !header_is_blank (area->data)
      && rd64 (area->data, OFF (magic)) != SHM_AREA_MAGIC) {
    g_set_error (error, SHM_AREA_ERROR, SHM_AREA_ERROR_FOREIGN,
        "\"%s\" exists and does not hold a gst-shm area; refusing to "
        "overwrite it (remove it or choose another path)", path);
    shm_area_unref (area);
    return NULL;
  }

  if (created)
    *created = is_new;
  return area;
}

ShmArea *
shm_area_open (const gchar * path, ShmOpenFlags flags, GError ** error)
{
  gboolean ro = (flags & SHM_OPEN_READONLY) != 0;
  int oflags = (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC;
  ShmArea *area;
  struct stat st;
  int fd;

  if (!(flags & SHM_OPEN_ALLOW_SYMLINK))
    oflags |= O_NOFOLLOW;
  fd = open (path, oflags);
  if (fd < 0) {
    set_errno_error (error, errno, "open", path);
    return NULL;
  }
  if (fstat (fd, &st) < 0) {
    set_errno_error (error, errno, "stat", path);
    close (fd);
    return NULL;
  }
  if (S_ISREG (st.st_mode)) {
    guint n_groups;
    g_autofree gid_t *groups = own_groups (&n_groups);

    if (!shm_area_check_reader (&st, geteuid (), groups, n_groups, path, error)) {
      close (fd);
      return NULL;
    }
  }
  area = area_map (path, path, fd, FALSE, ro, error);
  if (!area)
    close (fd);
  return area;
}

/* --- header ------------------------------------------------------------- */

void
shm_area_init_header (ShmArea * area, const ShmGeometry * g)
{
  guint8 hdr[SHM_AREA_HEADER_SIZE];

  /* Magic first goes to zero, so that nobody trusts a half-written header;
   * then every other field; then the magic, last, with release order. */
  shm_area_clear_magic (area);

  memset (hdr, 0, sizeof hdr);
  wr32 (hdr, OFF (version), SHM_AREA_VERSION);
  wr32 (hdr, OFF (header_size), SHM_AREA_HEADER_SIZE);
  wr64 (hdr, OFF (area_size), g->area_size);
  wr64 (hdr, OFF (session_id), g->session_id);
  wr64 (hdr, OFF (token_offset), g->token_offset);
  wr32 (hdr, OFF (token_lanes), g->token_lanes);
  wr32 (hdr, OFF (token_lane_size), g->token_lane_size);
  wr64 (hdr, OFF (ring_offset), g->ring_offset);
  wr64 (hdr, OFF (ring_size), g->ring_size);
  wr64 (hdr, OFF (slots_offset), g->slots_offset);
  wr64 (hdr, OFF (slot_size), g->slot_size);
  wr32 (hdr, OFF (n_slots), g->n_slots);
  wr32 (hdr, OFF (flags), g->flags);
  wr64 (hdr, OFF (chan_offset), g->chan_offset);
  wr32 (hdr, OFF (chan_stride), g->chan_stride);
  wr32 (hdr, OFF (chan_depth), g->chan_depth);
  wr32 (hdr, OFF (record_size), SHM_RECORD_SIZE);
  memcpy (area->data + 8, hdr + 8, sizeof hdr - 8);
  memset (area->data + g->token_offset, 0,
      (gsize) g->token_lanes * g->token_lane_size);
  if (g->ring_size)
    memset (area->data + g->ring_offset, 0, g->ring_size);
  memset (area->data + g->chan_offset, 0,
      (gsize) g->token_lanes * g->chan_stride);

  __atomic_store_n (field64 (area, OFF (magic)),
      GUINT64_TO_LE (SHM_AREA_MAGIC), __ATOMIC_RELEASE);
  /* Orders write-combined stores too (sfence/mfence on x86). */
  __atomic_thread_fence (__ATOMIC_SEQ_CST);
}

void
shm_area_clear_magic (ShmArea * area)
{
  __atomic_store_n (field64 (area, OFF (magic)), 0, __ATOMIC_RELEASE);
  __atomic_thread_fence (__ATOMIC_SEQ_CST);
}

/**
 * shm_area_retire:
 *
 * Sink, when it stops serving a file it did not create (a QEMU backing
 * file, a BAR): the magic goes to zero first, then the rest of the first
 * header line, so that the file reads as blank again and the next sink
 * takes it as it would a new one.
 */
void
shm_area_retire (ShmArea * area)
{
  shm_area_clear_magic (area);
  memset (area->data + 8, 0, 56);
  __atomic_thread_fence (__ATOMIC_SEQ_CST);
}

void
shm_area_heartbeat (ShmArea * area, guint64 now_ns, guint64 frames)
{
  __atomic_store_n (field64 (area, OFF (sink_frames)),
      GUINT64_TO_LE (frames), __ATOMIC_RELAXED);
  __atomic_store_n (field64 (area, OFF (sink_heartbeat)),
      GUINT64_TO_LE (now_ns), __ATOMIC_RELEASE);
}

guint32 *
shm_area_sink_waiters (ShmArea * area)
{
  return (guint32 *) (gpointer) (area->data + OFF (sink_waiters));
}

guint32 *
shm_area_sink_bell (ShmArea * area)
{
  return (guint32 *) (gpointer) (area->data + OFF (sink_bell));
}

gboolean
shm_area_peek_session (ShmArea * area, guint64 * session_id)
{
  guint64 magic = GUINT64_FROM_LE (__atomic_load_n (field64 (area,
              OFF (magic)), __ATOMIC_ACQUIRE));

  if (magic != SHM_AREA_MAGIC)
    return FALSE;
  *session_id = GUINT64_FROM_LE (__atomic_load_n (field64 (area,
              OFF (session_id)), __ATOMIC_RELAXED));
  return TRUE;
}

/* Whether the file shrank under this mapping (pages past its end were
 * touched, and read as zeros): the peer that did it cannot be trusted. */
gboolean
shm_area_was_truncated (ShmArea * area)
{
  return __atomic_load_n (&area->truncated, __ATOMIC_ACQUIRE) != 0;
}

/* The sink's last heartbeat (its CLOCK_MONOTONIC in ns; 0 when none):
 * untrusted, only ever compared with an earlier reading of the same field. */
guint64
shm_area_peek_heartbeat (ShmArea * area)
{
  return GUINT64_FROM_LE (__atomic_load_n (field64 (area,
              OFF (sink_heartbeat)), __ATOMIC_ACQUIRE));
}

/**
 * shm_area_read_header:
 *
 * Copies the header out of the area once, checks magic and version, and
 * decodes the geometry, validated against the size of this mapping.
 */
gboolean
shm_area_read_header (ShmArea * area, ShmGeometry * g, GError ** error)
{
  guint8 hdr[offsetof (ShmAreaHeader, _pad1)];
  guint32 record_size;
  guint64 magic;
  guint32 version;

  magic = GUINT64_FROM_LE (__atomic_load_n (field64 (area, OFF (magic)),
          __ATOMIC_ACQUIRE));
  if (magic != SHM_AREA_MAGIC) {
    g_set_error (error, SHM_AREA_ERROR, SHM_AREA_ERROR_BAD_MAGIC,
        "\"%s\" does not hold a gst-shm area (magic 0x%016" G_GINT64_MODIFIER
        "x, expected 0x%016" G_GINT64_MODIFIER "x)", area->path, magic,
        SHM_AREA_MAGIC);
    return FALSE;
  }
  memcpy (hdr, area->data, sizeof hdr);

  version = rd32 (hdr, OFF (version));
  if (version != SHM_AREA_VERSION) {
    g_set_error (error, SHM_AREA_ERROR, SHM_AREA_ERROR_BAD_VERSION,
        "\"%s\" holds a gst-shm area of version %u; this version of gst-shm "
        "reads version %d", area->path, version, SHM_AREA_VERSION);
    return FALSE;
  }
  if (rd32 (hdr, OFF (header_size)) != SHM_AREA_HEADER_SIZE) {
    g_set_error (error, SHM_AREA_ERROR, SHM_AREA_ERROR_BAD_HEADER,
        "\"%s\" has a header of %u bytes, expected %d", area->path,
        rd32 (hdr, OFF (header_size)), SHM_AREA_HEADER_SIZE);
    return FALSE;
  }

  g->area_size = rd64 (hdr, OFF (area_size));
  g->session_id = rd64 (hdr, OFF (session_id));
  g->token_offset = rd64 (hdr, OFF (token_offset));
  g->token_lanes = rd32 (hdr, OFF (token_lanes));
  g->token_lane_size = rd32 (hdr, OFF (token_lane_size));
  g->ring_offset = rd64 (hdr, OFF (ring_offset));
  g->ring_size = rd64 (hdr, OFF (ring_size));
  g->slots_offset = rd64 (hdr, OFF (slots_offset));
  g->slot_size = rd64 (hdr, OFF (slot_size));
  g->n_slots = rd32 (hdr, OFF (n_slots));
  g->flags = rd32 (hdr, OFF (flags));
  g->chan_offset = rd64 (hdr, OFF (chan_offset));
  g->chan_stride = rd32 (hdr, OFF (chan_stride));
  g->chan_depth = rd32 (hdr, OFF (chan_depth));
  record_size = rd32 (hdr, OFF (record_size));
  if (record_size != SHM_RECORD_SIZE) {
    g_set_error (error, SHM_AREA_ERROR, SHM_AREA_ERROR_BAD_HEADER,
        "\"%s\" has frame records of %u bytes, expected %d", area->path,
        record_size, SHM_RECORD_SIZE);
    return FALSE;
  }

  if (!shm_geometry_validate (g, area->size, error)) {
    g_prefix_error (error, "\"%s\": ", area->path);
    return FALSE;
  }
  return TRUE;
}

/**
 * shm_area_check_header:
 * @expected: the geometry the peer announced
 *
 * Checks that the area holds exactly the geometry @expected (validated on
 * its own first, since it came from the peer).
 */
gboolean
shm_area_check_header (ShmArea * area, const ShmGeometry * expected,
    GError ** error)
{
  ShmGeometry g;

  if (!shm_geometry_validate (expected, G_MAXUINT64, error))
    return FALSE;
  if (expected->area_size > area->size) {
    g_set_error (error, SHM_AREA_ERROR, SHM_AREA_ERROR_TOO_SMALL,
        "the sender's area is %" G_GUINT64_FORMAT " bytes but \"%s\" is only %"
        G_GUINT64_FORMAT " bytes", expected->area_size, area->path, area->size);
    return FALSE;
  }
  if (!shm_area_read_header (area, &g, error))
    return FALSE;
  if (g.session_id != expected->session_id) {
    g_set_error (error, SHM_AREA_ERROR, SHM_AREA_ERROR_SESSION,
        "\"%s\" holds session %016" G_GINT64_MODIFIER "x, the sender "
        "announced %016" G_GINT64_MODIFIER "x", area->path, g.session_id,
        expected->session_id);
    return FALSE;
  }
  if (memcmp (&g, expected, sizeof g) != 0) {
    g_set_error (error, SHM_AREA_ERROR, SHM_AREA_ERROR_BAD_HEADER,
        "the geometry in \"%s\" differs from what the sender announced",
        area->path);
    return FALSE;
  }
  return TRUE;
}

/* --- tokens ------------------------------------------------------------- */

gboolean
shm_random_bytes (gpointer buf, gsize len, GError ** error)
{
  guint8 *p = buf;

  while (len > 0) {
    ssize_t n = getrandom (p, len, 0);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      g_set_error (error, SHM_AREA_ERROR, SHM_AREA_ERROR_FAILED,
          "getrandom failed: %s", g_strerror (errno));
      return FALSE;
    }
    p += n;
    len -= n;
  }
  return TRUE;
}

gboolean
shm_token_lane_range (const ShmGeometry * geo, guint32 lane, guint64 * start,
    guint64 * end)
{
  if (lane >= geo->token_lanes)
    return FALSE;
  *start = geo->token_offset + (guint64) lane *geo->token_lane_size;
  *end = *start + geo->token_lane_size;
  return TRUE;
}

/**
 * shm_area_write_token:
 * @avoid_index: index of a token already in the lane that must not be
 *   overwritten, or G_MAXUINT64
 * @token: (out caller-allocates): @token_bytes random bytes
 * @token_index: (out): where they were written
 *
 * Writes a fresh token from the kernel's CSPRNG at a random index inside
 * @lane of the token region.
 */
gboolean
shm_area_write_token (ShmArea * area, const ShmGeometry * geo, guint32 lane,
    guint64 avoid_index, guint8 * token, guint32 token_bytes,
    guint64 * token_index, GError ** error)
{
  guint64 start, end, span, index;
  guint32 r;

  g_return_val_if_fail (token_bytes >= SHM_TOKEN_MIN_BYTES
      && token_bytes <= SHM_TOKEN_MAX_BYTES, FALSE);
  if (!shm_token_lane_range (geo, lane, &start, &end) || end > area->size) {
    g_set_error (error, SHM_AREA_ERROR, SHM_AREA_ERROR_FAILED,
        "token lane %u is outside the area", lane);
    return FALSE;
  }
  if (!shm_random_bytes (token, token_bytes, error))
    return FALSE;
  span = end - start - token_bytes + 1;
  do {
    if (!shm_random_bytes (&r, sizeof r, error))
      return FALSE;
    index = start + r % span;
  } while (avoid_index != G_MAXUINT64 && index < avoid_index + token_bytes
      && avoid_index < index + token_bytes);

  memcpy (area->data + index, token, token_bytes);
  /* Make the token visible (and drain write-combining buffers) before the
   * message that announces it is sent. */
  __atomic_thread_fence (__ATOMIC_SEQ_CST);
  *token_index = index;
  return TRUE;
}

/**
 * shm_area_check_token:
 *
 * Checks the peer's token: the index and length are bounded to @lane first,
 * then the bytes are copied out once and compared.
 */
gboolean
shm_area_check_token (ShmArea * area, const ShmGeometry * geo, guint32 lane,
    const guint8 * token, guint32 token_bytes, guint64 token_index)
{
  guint8 seen[SHM_TOKEN_MAX_BYTES];
  guint64 start, end;

  if (token_bytes < SHM_TOKEN_MIN_BYTES || token_bytes > SHM_TOKEN_MAX_BYTES)
    return FALSE;
  if (!shm_token_lane_range (geo, lane, &start, &end) || end > area->size)
    return FALSE;
  if (token_index < start || token_index > end - token_bytes)
    return FALSE;
  __atomic_thread_fence (__ATOMIC_ACQUIRE);
  memcpy (seen, area->data + token_index, token_bytes);
  return memcmp (seen, token, token_bytes) == 0;
}

/* --- lifetime ----------------------------------------------------------- */

ShmArea *
shm_area_ref (ShmArea * area)
{
  g_atomic_int_inc (&area->ref_count);
  return area;
}

void
shm_area_unref (ShmArea * area)
{
  if (!g_atomic_int_dec_and_test (&area->ref_count))
    return;
  shm_guard_remove (area->guard);
  munmap (area->data, area->size);
  close (area->fd);
  g_free (area->path);
  g_free (area->file);
  g_free (area);
}

/**
 * shm_area_unlink:
 *
 * Removes the file of an area this process created, if the path still names
 * the same file.  Areas that were opened (not created) are never removed.
 */
gboolean
shm_area_unlink (ShmArea * area, GError ** error)
{
  struct stat st;

  if (!area->created)
    return TRUE;
  if (lstat (area->file, &st) < 0) {
    if (errno == ENOENT)
      return TRUE;
    set_errno_error (error, errno, "stat", area->path);
    return FALSE;
  }
  if (st.st_dev != area->dev || st.st_ino != area->ino)
    return TRUE;                /* someone else's file now */
  if (unlink (area->file) < 0 && errno != ENOENT) {
    set_errno_error (error, errno, "remove", area->path);
    return FALSE;
  }
  area->created = FALSE;
  return TRUE;
}

/**
 * shm_area_reclaim:
 *
 * Sink, with the area's lock taken: an area whose header says a sink
 * created it (and would have removed it at its stop) was left by a sink
 * that died, since no sink holds its lock: removes the file.  Any other
 * file (blank, or an area in a file the sink did not create, such as a
 * QEMU backing file) stays.
 *
 * Returns: whether the file was removed.
 */
gboolean
shm_area_reclaim (ShmArea * area)
{
  guint64 magic = GUINT64_FROM_LE (__atomic_load_n (field64 (area,
              OFF (magic)), __ATOMIC_ACQUIRE));

  if (magic != SHM_AREA_MAGIC
      || !(rd32 (area->data, OFF (flags)) & SHM_AREA_FLAG_CREATED))
    return FALSE;
  area->created = TRUE;
  return shm_area_unlink (area, NULL) && !area->created;
}

const gchar *
shm_area_get_path (ShmArea * area)
{
  return area->path;
}

guint64
shm_area_get_size (ShmArea * area)
{
  return area->size;
}

guint8 *
shm_area_get_data (ShmArea * area)
{
  return area->data;
}

gboolean
shm_area_is_created (ShmArea * area)
{
  return area->created;
}

/**
 * shm_area_can_futex:
 *
 * Whether futexes work on this mapping: they do on a file in /dev/shm (or
 * any ordinary shared file mapping), not on a PCI BAR's sysfs resource
 * file, whose pages the kernel does not manage.  Checked once, with a
 * FUTEX_WAKE of no waiter on the sink's bell.
 */
gboolean
shm_area_can_futex (ShmArea * area)
{
  if (area->futex_ok == 0)
    area->futex_ok = shm_futex_wake (shm_area_sink_bell (area), 0) >= 0
        ? 1 : -1;
  return area->futex_ok > 0;
}

gboolean
shm_area_contains (ShmArea * area, gconstpointer ptr, gsize size)
{
  const guint8 *p = ptr;
  return p >= area->data && size <= area->size
      && (gsize) (p - area->data) <= area->size - size;
}

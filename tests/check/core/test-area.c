/* gst-shm: unit tests of the area core (no GStreamer)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "shmarea.h"

#include <glib/gstdio.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static gchar *tmpdir;

static gchar *
tmp_path (const gchar * name)
{
  return g_build_filename (tmpdir, name, NULL);
}

static void
test_geometry (void)
{
  ShmGeometry g;
  g_autoptr (GError) err = NULL;
  guint64 need = shm_geometry_size_needed (4, 1000, 0);

  /* header + token region + 64 channels (16 records of 256 bytes and 16
   * releases of 16 after 256 bytes of indices, each) + 4 pages */
  g_assert_cmpuint (need, ==, 4096 + 65536 + 64 * (256 + 16 * (256 + 16))
      + 4 * 4096);
  g_assert_true (shm_geometry_compute (&g, need, 4, 1000, 0, &err));
  g_assert_cmpuint (g.chan_offset, ==, 4096 + 65536);
  g_assert_cmpuint (g.chan_stride, ==, 4608);
  g_assert_cmpuint (g.chan_depth, ==, 16);
  g_assert_true (shm_geometry_compute (&g, need, 4, 1000, 0, &err));
  g_assert_no_error (err);
  g_assert_cmpuint (g.slot_size, ==, 4096);
  g_assert_cmpuint (g.slots_offset % 4096, ==, 0);
  g_assert_cmpuint (g.n_slots, ==, 4);

  /* a bigger fixed area: slots take the room there is, page aligned */
  g_assert_true (shm_geometry_compute (&g, 4 << 20, 4, 1000, 0, &err));
  g_assert_cmpuint (g.slot_size % 4096, ==, 0);
  g_assert_cmpuint (g.slots_offset + 4 * g.slot_size, <=, 4 << 20);
  g_assert_cmpuint (g.slot_size, >, ((4 << 20) - g.slots_offset) / 4 - 4096);

  /* too small: the message says exactly what is needed */
  g_assert_false (shm_geometry_compute (&g, need - 1, 4, 1000, 0, &err));
  g_assert_error (err, SHM_AREA_ERROR, SHM_AREA_ERROR_TOO_SMALL);
  g_assert_nonnull (strstr (err->message, "need 380928 bytes"));
  g_clear_error (&err);

  /* slot counts and sizes out of range */
  g_assert_false (shm_geometry_compute (&g, need, 1, 1000, 0, &err));
  g_clear_error (&err);
  g_assert_false (shm_geometry_compute (&g, need, 65, 1000, 0, &err));
  g_clear_error (&err);
  g_assert_cmpuint (shm_geometry_size_needed (4, G_MAXUINT64, 0), ==,
      G_MAXUINT64);
  g_assert_cmpuint (shm_geometry_size_needed (64, SHM_AREA_MAX_SIZE / 8, 0),
      ==, G_MAXUINT64);
  g_assert_false (shm_geometry_compute (&g, G_MAXUINT64, 4, G_MAXUINT64 / 2,
          0, &err));
  g_clear_error (&err);
}

static ShmArea *
make_area (const gchar * name, guint n_slots, guint64 frame, ShmGeometry * g)
{
  g_autofree gchar *path = tmp_path (name);
  g_autoptr (GError) err = NULL;
  gboolean created = FALSE;
  guint64 size = shm_geometry_size_needed (n_slots, frame, 0);
  ShmArea *area = shm_area_create (path, size, 0600, SHM_OPEN_LOCK,
      &created, &err);

  g_assert_no_error (err);
  g_assert_true (created);
  g_assert_true (shm_geometry_compute (g, shm_area_get_size (area), n_slots,
          frame, 0, &err));
  g->session_id = 0x1122334455667788;
  shm_area_init_header (area, g);
  return area;
}

static void
test_create_open (void)
{
  g_autofree gchar *path = tmp_path ("a");
  g_autoptr (GError) err = NULL;
  ShmGeometry g, seen;
  ShmArea *area = make_area ("a", 3, 5000, &g);
  ShmArea *other;
  struct stat st;
  guint64 session;

  g_assert_cmpint (stat (path, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 0777, ==, 0600);
  g_assert_cmpuint (st.st_size, ==, shm_geometry_size_needed (3, 5000, 0));
  /* allocated, not sparse */
  g_assert_cmpuint (st.st_blocks * 512, >=, st.st_size);

  other = shm_area_open (path, 0, &err);
  g_assert_no_error (err);
  g_assert_true (shm_area_read_header (other, &seen, &err));
  g_assert_true (memcmp (&seen, &g, sizeof g) == 0);
  g_assert_true (shm_area_check_header (other, &g, &err));
  g_assert_true (shm_area_peek_session (other, &session));
  g_assert_cmpuint (session, ==, g.session_id);

  /* a second sink cannot lock it */
  g_assert_null (shm_area_create (path, 0, 0600, SHM_OPEN_LOCK, NULL, &err));
  g_assert_error (err, SHM_AREA_ERROR, SHM_AREA_ERROR_BUSY);
  g_clear_error (&err);

  /* magic disappears: corruption */
  shm_area_clear_magic (area);
  g_assert_false (shm_area_check_header (other, &g, &err));
  g_assert_error (err, SHM_AREA_ERROR, SHM_AREA_ERROR_BAD_MAGIC);
  g_clear_error (&err);
  g_assert_false (shm_area_peek_session (other, &session));

  /* unlink removes the file this process created, once */
  g_assert_true (shm_area_unlink (area, &err));
  g_assert_false (g_file_test (path, G_FILE_TEST_EXISTS));
  shm_area_unref (other);
  shm_area_unref (area);
}

static void
write_header_field32 (const gchar * path, goffset off, guint32 v)
{
  int fd = open (path, O_RDWR);
  v = GUINT32_TO_LE (v);
  g_assert_cmpint (pwrite (fd, &v, 4, off), ==, 4);
  close (fd);
}

static void
write_header_field64 (const gchar * path, goffset off, guint64 v)
{
  int fd = open (path, O_RDWR);
  v = GUINT64_TO_LE (v);
  g_assert_cmpint (pwrite (fd, &v, 8, off), ==, 8);
  close (fd);
}

/* A header written by a hostile peer: every field bounded. */
static void
test_header_validation (void)
{
  static const struct
  {
    goffset off;
    gint width;
    guint64 value;
    gint code;
  } cases[] = {
    {8, 4, 1, SHM_AREA_ERROR_BAD_VERSION},
    {8, 4, 3, SHM_AREA_ERROR_BAD_VERSION},
    {12, 4, 8192, SHM_AREA_ERROR_BAD_HEADER},
    {16, 8, G_MAXUINT64, SHM_AREA_ERROR_BAD_HEADER},    /* area size */
    {32, 8, 12345, SHM_AREA_ERROR_BAD_HEADER},  /* token offset */
    {40, 4, 1000, SHM_AREA_ERROR_BAD_HEADER},   /* lanes */
    {56, 8, 4096, SHM_AREA_ERROR_BAD_HEADER},   /* ring without offset */
    {64, 8, 7, SHM_AREA_ERROR_BAD_HEADER},      /* slots offset */
    {72, 8, G_MAXUINT64 - 4095, SHM_AREA_ERROR_BAD_HEADER},     /* slot size */
    {72, 8, 1 << 30, SHM_AREA_ERROR_BAD_HEADER},        /* beyond the area */
    {72, 8, 100, SHM_AREA_ERROR_BAD_HEADER},    /* not page aligned */
    {80, 4, 0, SHM_AREA_ERROR_BAD_HEADER},      /* no slots */
    {80, 4, 1 << 31, SHM_AREA_ERROR_BAD_HEADER},
    {88, 8, 4096, SHM_AREA_ERROR_BAD_HEADER},   /* channels offset */
    {96, 4, 9000, SHM_AREA_ERROR_BAD_HEADER},   /* channel stride */
    {100, 4, 3, SHM_AREA_ERROR_BAD_HEADER},     /* depth not a power of 2 */
    {100, 4, 512, SHM_AREA_ERROR_BAD_HEADER},   /* depth too big */
    {104, 4, 128, SHM_AREA_ERROR_BAD_HEADER},   /* record size */
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autofree gchar *path = tmp_path ("h");
    g_autoptr (GError) err = NULL;
    ShmGeometry g, seen;
    ShmArea *area = make_area ("h", 2, 4096, &g);
    ShmArea *rd;

    if (cases[i].width == 4)
      write_header_field32 (path, cases[i].off, cases[i].value);
    else
      write_header_field64 (path, cases[i].off, cases[i].value);
    rd = shm_area_open (path, 0, &err);
    g_assert_no_error (err);
    g_assert_false (shm_area_read_header (rd, &seen, &err));
    g_assert_error (err, SHM_AREA_ERROR, cases[i].code);
    g_clear_error (&err);
    g_assert_false (shm_area_check_header (rd, &g, &err));
    g_assert_nonnull (err);
    shm_area_unref (rd);
    shm_area_unlink (area, NULL);
    shm_area_unref (area);
  }
}

static void
test_tokens (void)
{
  g_autoptr (GError) err = NULL;
  guint8 tok[SHM_TOKEN_BYTES], tok2[SHM_TOKEN_BYTES];
  guint64 idx, idx2, start, end;
  ShmGeometry g;
  ShmArea *area = make_area ("t", 2, 4096, &g);

  for (guint lane = 0; lane < SHM_AREA_TOKEN_LANES; lane += 7) {
    g_assert_true (shm_area_write_token (area, &g, lane, G_MAXUINT64, tok,
            sizeof tok, &idx, &err));
    g_assert_true (shm_token_lane_range (&g, lane, &start, &end));
    g_assert_cmpuint (idx, >=, start);
    g_assert_cmpuint (idx + sizeof tok, <=, end);
    g_assert_true (shm_area_check_token (area, &g, lane, tok, sizeof tok, idx));
    /* the answer never overwrites the first token */
    g_assert_true (shm_area_write_token (area, &g, lane, idx, tok2,
            sizeof tok2, &idx2, &err));
    g_assert_true (idx2 + sizeof tok2 <= idx || idx + sizeof tok <= idx2);
    g_assert_true (shm_area_check_token (area, &g, lane, tok, sizeof tok, idx));
    g_assert_true (shm_area_check_token (area, &g, lane, tok2, sizeof tok2,
            idx2));
    /* another lane, wrong bytes, indices and lengths out of bounds */
    g_assert_false (shm_area_check_token (area, &g, lane + 1, tok,
            sizeof tok, idx));
    tok[0] ^= 1;
    g_assert_false (shm_area_check_token (area, &g, lane, tok, sizeof tok,
            idx));
    g_assert_false (shm_area_check_token (area, &g, lane, tok, sizeof tok,
            end - sizeof tok + 1));
    g_assert_false (shm_area_check_token (area, &g, lane, tok, sizeof tok,
            G_MAXUINT64 - 3));
    g_assert_false (shm_area_check_token (area, &g, lane, tok, 0, idx));
    g_assert_false (shm_area_check_token (area, &g, lane, tok, 65, idx));
  }
  g_assert_false (shm_area_check_token (area, &g, SHM_AREA_TOKEN_LANES, tok,
          sizeof tok, 0));
  g_assert_false (shm_area_write_token (area, &g, 99, G_MAXUINT64, tok,
          sizeof tok, &idx, &err));
  g_clear_error (&err);
  shm_area_unlink (area, NULL);
  shm_area_unref (area);
}

static void
test_existing_files (void)
{
  g_autofree gchar *path = tmp_path ("e");
  g_autofree gchar *link = tmp_path ("l");
  g_autofree gchar *dir = tmp_path ("d");
  g_autoptr (GError) err = NULL;
  gboolean created = TRUE;
  ShmArea *area;

  /* a file with someone's data is never overwritten */
  g_assert_true (g_file_set_contents (path, "hello, world", -1, NULL));
  g_assert_cmpint (truncate (path, 1 << 20), ==, 0);
  area = shm_area_create (path, 1 << 20, 0600, 0, &created, &err);
  g_assert_null (area);
  g_assert_error (err, SHM_AREA_ERROR, SHM_AREA_ERROR_FOREIGN);
  g_clear_error (&err);

  /* a blank file (a fresh QEMU backing file) is used as it is */
  g_assert_cmpint (g_unlink (path), ==, 0);
  g_assert_true (g_file_set_contents (path, "", 0, NULL));
  g_assert_cmpint (truncate (path, 1 << 20), ==, 0);
  area = shm_area_create (path, 4096, 0600, 0, &created, &err);
  g_assert_no_error (err);
  g_assert_false (created);
  g_assert_cmpuint (shm_area_get_size (area), ==, 1 << 20);
  /* never unlinked: not ours */
  g_assert_true (shm_area_unlink (area, NULL));
  g_assert_true (g_file_test (path, G_FILE_TEST_EXISTS));
  shm_area_unref (area);

  /* too small for any area */
  g_assert_cmpint (truncate (path, 1000), ==, 0);
  g_assert_null (shm_area_create (path, 0, 0600, SHM_OPEN_NO_CREATE, NULL,
          &err));
  g_assert_error (err, SHM_AREA_ERROR, SHM_AREA_ERROR_TOO_SMALL);
  g_clear_error (&err);
  /* empty, as a file a sink has just created: an error of its own, since a
   * receiver waits for its sender to size it */
  g_assert_cmpint (truncate (path, 0), ==, 0);
  g_assert_null (shm_area_open (path, 0, &err));
  g_assert_error (err, SHM_AREA_ERROR, SHM_AREA_ERROR_EMPTY);
  g_assert_nonnull (strstr (err->message, "is 0 bytes, too small for any "
          "area"));
  g_clear_error (&err);

  /* symbolic links refused unless allowed */
  g_assert_cmpint (symlink (path, link), ==, 0);
  g_assert_null (shm_area_open (link, 0, &err));
  g_assert_error (err, SHM_AREA_ERROR, SHM_AREA_ERROR_SYMLINK);
  g_clear_error (&err);
  g_assert_cmpint (truncate (path, 1 << 20), ==, 0);
  area = shm_area_open (link, SHM_OPEN_ALLOW_SYMLINK, &err);
  g_assert_no_error (err);
  shm_area_unref (area);

  /* not a regular file */
  g_assert_cmpint (g_mkdir (dir, 0700), ==, 0);
  g_assert_null (shm_area_open (dir, 0, &err));
  g_assert_nonnull (err);
  g_clear_error (&err);

  /* missing, and missing directory */
  g_unlink (link);
  g_unlink (path);
  g_assert_null (shm_area_create (path, 0, 0600, SHM_OPEN_NO_CREATE, NULL,
          &err));
  g_assert_error (err, SHM_AREA_ERROR, SHM_AREA_ERROR_NOT_FOUND);
  g_clear_error (&err);
  {
    g_autofree gchar *missing = tmp_path ("nodir/x");
    g_assert_null (shm_area_open (missing, 0, &err));
    g_assert_error (err, SHM_AREA_ERROR, SHM_AREA_ERROR_NOT_FOUND);
    g_assert_nonnull (strstr (err->message, "does not exist"));
    g_clear_error (&err);
  }
  g_rmdir (dir);
}

static struct stat
file_stat (uid_t uid, gid_t gid, guint mode)
{
  struct stat st;

  memset (&st, 0, sizeof st);
  st.st_mode = S_IFREG | mode;
  st.st_uid = uid;
  st.st_gid = gid;
  return st;
}

/* The sink's rule for an existing file, and the receiver's for an area. */
static void
test_owner_rules (void)
{
  g_autoptr (GError) err = NULL;
  gchar *warning = NULL;
  struct stat st;
  const gid_t mine[] = { 1000, 24 };

  /* the sink's own file, no more open than its mode */
  st = file_stat (1000, 1000, 0600);
  g_assert_true (shm_area_check_owner (&st, 1000, 0600, -1, "/a", &warning,
          &err));
  g_assert_no_error (err);
  g_assert_null (warning);
  st = file_stat (1000, 1000, 0640);
  g_assert_true (shm_area_check_owner (&st, 1000, 0660, -1, "/a", NULL, &err));

  /* another user's file: whatever its mode */
  st = file_stat (65534, 65534, 0666);
  g_assert_false (shm_area_check_owner (&st, 1000, 0666, -1, "/a", &warning,
          &err));
  g_assert_error (err, SHM_AREA_ERROR, SHM_AREA_ERROR_PERMISSION);
  g_assert_nonnull (strstr (err->message, "\"/a\" belongs to "));
  g_assert_nonnull (strstr (err->message, "uid 65534"));
  g_assert_nonnull (strstr (err->message, " with mode 0666: shmsink uses "
          "an existing file only when it belongs to its own user ("));
  g_assert_nonnull (strstr (err->message, "uid 1000) or root"));
  g_clear_error (&err);
  /* (root's sink too) */
  st = file_stat (65534, 65534, 0600);
  g_assert_false (shm_area_check_owner (&st, 0, 0600, -1, "/a", NULL, &err));
  g_assert_nonnull (strstr (err->message, "only when it belongs to root, "
          "its own user"));
  g_clear_error (&err);

  /* its own file, more open than the mode */
  st = file_stat (1000, 1000, 0644);
  g_assert_false (shm_area_check_owner (&st, 1000, 0600, -1, "/a", &warning,
          &err));
  g_assert_error (err, SHM_AREA_ERROR, SHM_AREA_ERROR_PERMISSION);
  g_assert_nonnull (strstr (err->message, "with mode 0644: shmsink uses an "
          "existing file only when it gives no more access than mode=0600"));
  g_assert_null (warning);
  g_clear_error (&err);
  /* its group bits for another group than the group asked for */
  st = file_stat (1000, 1000, 0660);
  g_assert_false (shm_area_check_owner (&st, 1000, 0660, 24, "/a", NULL, &err));
  g_assert_nonnull (strstr (err->message, "no more access than mode=0660 "
          "and "));
  g_assert_nonnull (strstr (err->message, "gid 24"));
  g_clear_error (&err);
  st = file_stat (1000, 24, 0660);
  g_assert_true (shm_area_check_owner (&st, 1000, 0660, 24, "/a", NULL, &err));
  st = file_stat (1000, 1000, 0600);
  g_assert_true (shm_area_check_owner (&st, 1000, 0660, 24, "/a", NULL, &err));
  g_assert_no_error (err);

  /* root made it (QEMU, a BAR): used as it is, with a warning when it
   * gives more */
  st = file_stat (0, 0, 0644);
  g_assert_true (shm_area_check_owner (&st, 1000, 0600, -1, "/q", &warning,
          &err));
  g_assert_no_error (err);
  g_assert_nonnull (warning);
  g_assert_nonnull (strstr (warning, "\"/q\" belongs to "));
  g_assert_nonnull (strstr (warning, "with mode 0644, more access than "
          "mode=0600: shmsink uses a file that root made as it is"));
  g_clear_pointer (&warning, g_free);
  g_assert_true (shm_area_check_owner (&st, 0, 0600, -1, "/q", &warning, &err));
  g_assert_nonnull (warning);
  g_clear_pointer (&warning, g_free);
  st = file_stat (0, 0, 0600);
  g_assert_true (shm_area_check_owner (&st, 1000, 0600, -1, "/q", &warning,
          &err));
  g_assert_null (warning);

  /* receivers: own user's or root's area */
  st = file_stat (1000, 1000, 0600);
  g_assert_true (shm_area_check_reader (&st, 1000, mine, 2, "/a", &err));
  st = file_stat (0, 0, 0600);
  g_assert_true (shm_area_check_reader (&st, 1000, mine, 2, "/a", &err));
  /* another user's, shared with one of its groups, or with everyone */
  st = file_stat (2000, 24, 0660);
  g_assert_true (shm_area_check_reader (&st, 1000, mine, 2, "/a", &err));
  st = file_stat (2000, 2000, 0666);
  g_assert_true (shm_area_check_reader (&st, 1000, mine, 2, "/a", &err));
  g_assert_no_error (err);
  /* another user's, not shared with this one */
  st = file_stat (2000, 2000, 0660);
  g_assert_false (shm_area_check_reader (&st, 1000, mine, 2, "/a", &err));
  g_assert_error (err, SHM_AREA_ERROR, SHM_AREA_ERROR_PERMISSION);
  g_assert_nonnull (strstr (err->message, "uid 2000"));
  g_assert_nonnull (strstr (err->message, " with mode 0660: a receiver uses "
          "an area only when it belongs to its own user"));
  g_clear_error (&err);
  st = file_stat (2000, 24, 0600);
  g_assert_false (shm_area_check_reader (&st, 0, mine, 2, "/a", &err));
  g_assert_nonnull (strstr (err->message, "only when it belongs to root, "
          "its own user, or when its mode shares it"));
  g_clear_error (&err);

  /* sharing: read access through the group or the others */
  g_assert_true (shm_mode_shares (0640, 24, mine, 2));
  g_assert_false (shm_mode_shares (0640, 25, mine, 2));
  g_assert_false (shm_mode_shares (0600, 24, mine, 2));
  g_assert_true (shm_mode_shares (0604, 25, mine, 2));
  g_assert_false (shm_mode_shares (0640, 24, NULL, 0));
}

/* A new file gets the mode and group asked for, whatever the umask. */
static void
test_create_group (void)
{
  g_autofree gchar *path = tmp_path ("g");
  g_autoptr (GError) err = NULL;
  gboolean created = FALSE;
  ShmArea *area;
  struct stat st;
  gid_t gid;
  mode_t old = umask (077);

  area = shm_area_create_full (path, 1 << 20, 0640, getegid (), 0, &created,
      NULL, &err);
  umask (old);
  g_assert_no_error (err);
  g_assert_true (created);
  g_assert_cmpint (stat (path, &st), ==, 0);
  g_assert_cmpuint (st.st_mode & 0777, ==, 0640);
  g_assert_cmpuint (st.st_gid, ==, getegid ());
  g_assert_true (shm_area_unlink (area, NULL));
  shm_area_unref (area);
  g_assert_false (g_file_test (path, G_FILE_TEST_EXISTS));

  /* groups by name or number; one that does not exist */
  g_assert_true (shm_group_lookup ("0", &gid, &err));
  g_assert_cmpuint (gid, ==, 0);
  if (geteuid () == 0) {
    g_assert_true (shm_group_lookup ("root", &gid, &err));
    g_assert_cmpuint (gid, ==, 0);
  }
  g_assert_no_error (err);
  g_assert_false (shm_group_lookup ("no-such-group-here", &gid, &err));
  g_assert_error (err, SHM_AREA_ERROR, SHM_AREA_ERROR_NOT_FOUND);
  g_assert_cmpstr (err->message, ==,
      "Group \"no-such-group-here\" does not exist");
}

static void
test_random (void)
{
  guint8 a[32] = { 0 }, b[32] = { 0 };
  g_autoptr (GError) err = NULL;

  g_assert_true (shm_random_bytes (a, sizeof a, &err));
  g_assert_true (shm_random_bytes (b, sizeof b, &err));
  g_assert_true (memcmp (a, b, sizeof a) != 0);
}

int
main (int argc, char **argv)
{
  int ret;

  g_test_init (&argc, &argv, NULL);
  tmpdir = g_dir_make_tmp ("gst-shm-area-XXXXXX", NULL);
  g_test_add_func ("/area/geometry", test_geometry);
  g_test_add_func ("/area/create-open", test_create_open);
  g_test_add_func ("/area/header-validation", test_header_validation);
  g_test_add_func ("/area/tokens", test_tokens);
  g_test_add_func ("/area/existing-files", test_existing_files);
  g_test_add_func ("/area/owner-rules", test_owner_rules);
  g_test_add_func ("/area/create-group", test_create_group);
  g_test_add_func ("/area/random", test_random);
  ret = g_test_run ();
  g_assert_cmpint (g_rmdir (tmpdir), ==, 0);
  g_free (tmpdir);
  return ret;
}

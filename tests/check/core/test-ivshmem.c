/* gst-shm: unit tests of the ivshmem discovery and checks, on a sysfs-like
 * tree of plain files (no GStreamer, no device)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "shmivshmem.h"

#include <glib/gstdio.h>
#include <string.h>

static gchar *root;

/* One PCI function under ROOT/bus/pci/devices/ADDR. */
static gchar *
add_device (const gchar * addr, const gchar * vendor, const gchar * device,
    const gchar * enable, gboolean wc)
{
  gchar *dir = g_build_filename (root, "bus", "pci", "devices", addr, NULL);
  const gchar *files[][2] = {
    {"vendor", vendor}, {"device", device}, {"enable", enable},
    {"resource2", ""}, {wc ? "resource2_wc" : NULL, ""},
  };

  g_assert_cmpint (g_mkdir_with_parents (dir, 0755), ==, 0);
  for (guint i = 0; i < G_N_ELEMENTS (files); i++) {
    g_autofree gchar *f = NULL;
    if (!files[i][0])
      continue;
    f = g_build_filename (dir, files[i][0], NULL);
    g_assert_true (g_file_set_contents (f, files[i][1], -1, NULL));
  }
  return dir;
}

static gchar *
dev_file (const gchar * addr, const gchar * name)
{
  return g_build_filename (root, "bus", "pci", "devices", addr, name, NULL);
}

static void
test_resolve (void)
{
  g_autoptr (GError) err = NULL;
  g_autofree gchar *expect = NULL;
  gchar *p;

  /* a path that is not the discovery form is kept as it is, colons and
   * all */
  p = shm_ivshmem_resolve ("/dev/shm/a:b", root, &err);
  g_assert_cmpstr (p, ==, "/dev/shm/a:b");
  g_free (p);

  /* by index, in PCI address order; the write-combined BAR when there is
   * one */
  p = shm_ivshmem_resolve ("ivshmem:0", root, &err);
  g_assert_no_error (err);
  expect = dev_file ("0000:00:04.0", "resource2_wc");
  g_assert_cmpstr (p, ==, expect);
  g_free (p);
  g_free (expect);
  p = shm_ivshmem_resolve ("ivshmem:1", root, &err);
  expect = dev_file ("0000:00:06.0", "resource2");
  g_assert_cmpstr (p, ==, expect);
  g_free (p);

  p = shm_ivshmem_resolve ("ivshmem:2", root, &err);
  g_assert_null (p);
  g_assert_nonnull (strstr (err->message, "No ivshmem device #2: 2 found "
          "(PCI id 1af4:1110 under "));
  g_clear_error (&err);

  /* by address */
  p = shm_ivshmem_resolve ("ivshmem:0000:00:06.0", root, &err);
  g_assert_cmpstr (p, ==, expect);
  g_free (p);
  p = shm_ivshmem_resolve ("ivshmem:0000:00:05.0", root, &err);
  g_assert_null (p);
  g_assert_cmpstr (err->message, ==, "PCI device 0000:00:05.0 is not an "
      "ivshmem device (vendor:device 1af4:1110 expected)");
  g_clear_error (&err);
  p = shm_ivshmem_resolve ("ivshmem:0000:00:09.0", root, &err);
  g_assert_null (p);
  g_assert_nonnull (strstr (err->message, "No PCI device 0000:00:09.0"));
}

static void
test_prepare (void)
{
  g_autoptr (GError) err = NULL;
  g_autofree gchar *wc = dev_file ("0000:00:04.0", "resource2_wc");
  g_autofree gchar *uc = dev_file ("0000:00:06.0", "resource2");
  g_autofree gchar *other = dev_file ("0000:00:05.0", "resource2");
  g_autofree gchar *enable = dev_file ("0000:00:06.0", "enable");
  g_autofree gchar *text = NULL;
  ShmBarKind kind;

  /* an ordinary file */
  g_assert_true (shm_ivshmem_prepare ("/dev/shm/x", TRUE, &kind, &err));
  g_assert_cmpint (kind, ==, SHM_BAR_NONE);

  /* enabled already */
  g_assert_true (shm_ivshmem_prepare (wc, FALSE, &kind, &err));
  g_assert_no_error (err);
  g_assert_cmpint (kind, ==, SHM_BAR_WRITE_COMBINED);

  /* disabled, not allowed to enable: the error says what to run */
  g_assert_false (shm_ivshmem_prepare (uc, FALSE, &kind, &err));
  g_assert_nonnull (strstr (err->message, "The ivshmem device 0000:00:06.0 "
          "is disabled: run \"echo 1 > "));
  g_assert_nonnull (strstr (err->message, "0000:00:06.0/enable\" as root"));
  g_clear_error (&err);

  /* disabled, enabled by us: "1" is written to the enable file */
  g_assert_true (shm_ivshmem_prepare (uc, TRUE, &kind, &err));
  g_assert_no_error (err);
  g_assert_cmpint (kind, ==, SHM_BAR_UNCACHED);
  g_assert_true (g_file_get_contents (enable, &text, NULL, NULL));
  g_assert_cmpstr (text, ==, "1");

  /* a BAR of a device that is not an ivshmem device */
  g_assert_false (shm_ivshmem_prepare (other, TRUE, &kind, &err));
  g_assert_nonnull (strstr (err->message, "is a BAR of PCI device "
          "0000:00:05.0, which is not an ivshmem device (vendor:device "
          "8086:100e, expected 1af4:1110)"));
  g_clear_error (&err);

  /* an enable file that cannot be written */
  {
    g_autofree gchar *dir = add_device ("0000:00:07.0", "0x1af4", "0x1110",
        "", TRUE);
    g_autofree gchar *en = g_build_filename (dir, "enable", NULL);
    g_autofree gchar *bar = g_build_filename (dir, "resource2_wc", NULL);
    g_assert_cmpint (g_unlink (en), ==, 0);
    g_assert_cmpint (g_mkdir (en, 0755), ==, 0);
    g_assert_false (shm_ivshmem_prepare (bar, TRUE, &kind, &err));
    g_assert_nonnull (strstr (err->message, "The ivshmem device 0000:00:07.0 "
            "is disabled and could not be enabled (Is a directory): run "
            "\"echo 1 > "));
    g_clear_error (&err);
    g_assert_cmpint (g_rmdir (en), ==, 0);
  }
}

static void
remove_tree (const gchar * path)
{
  GDir *d = g_dir_open (path, 0, NULL);
  const gchar *name;

  while (d && (name = g_dir_read_name (d))) {
    g_autofree gchar *child = g_build_filename (path, name, NULL);
    if (g_file_test (child, G_FILE_TEST_IS_DIR))
      remove_tree (child);
    else
      g_assert_cmpint (g_unlink (child), ==, 0);
  }
  if (d)
    g_dir_close (d);
  g_assert_cmpint (g_rmdir (path), ==, 0);
}

int
main (int argc, char **argv)
{
  gint ret;

  g_test_init (&argc, &argv, NULL);
  root = g_dir_make_tmp ("gst-shm-sysfs-XXXXXX", NULL);
  /* listed out of order on purpose: discovery sorts by address */
  g_free (add_device ("0000:00:06.0", "0x1af4", "0x1110", "0", FALSE));
  g_free (add_device ("0000:00:05.0", "0x8086", "0x100e", "1", FALSE));
  g_free (add_device ("0000:00:04.0", "0x1af4", "0x1110", "1\n", TRUE));
  g_test_add_func ("/ivshmem/resolve", test_resolve);
  g_test_add_func ("/ivshmem/prepare", test_prepare);
  ret = g_test_run ();
  remove_tree (root);
  g_assert_false (g_file_test (root, G_FILE_TEST_EXISTS));
  g_free (root);
  return ret;
}

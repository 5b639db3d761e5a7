/* gst-shm: QEMU ivshmem devices seen from a guest (PCI BARs in sysfs)
 *
 * A guest reaches the memory of an ivshmem-plain device through BAR 2 of
 * its PCI function: /sys/bus/pci/devices/DOMAIN:BUS:SLOT.FN/resource2_wc
 * (write-combined mapping) or resource2 (uncached).  The size of that file
 * is the size of the BAR.  The device must be enabled (its "enable" file
 * reads 1) before the BAR can be used.
 *
 * Paths are never split on ':' (PCI addresses contain them): a path is a
 * BAR when its directory holds the "vendor", "device" and "enable" files of
 * a PCI function and its name is resourceN or resourceN_wc.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "shmivshmem.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

G_DEFINE_QUARK (shm - ivshmem - error - quark, shm_ivshmem_error);

static gboolean
read_hex (const gchar * dir, const gchar * name, guint64 * out)
{
  g_autofree gchar *file = g_build_filename (dir, name, NULL);
  g_autofree gchar *text = NULL;

  if (!g_file_get_contents (file, &text, NULL, NULL))
    return FALSE;
  g_strstrip (text);
  return g_ascii_string_to_unsigned (g_str_has_prefix (text, "0x") ? text + 2
      : text, 16, 0, G_MAXUINT32, out, NULL);
}

static gboolean
is_ivshmem_dir (const gchar * dir)
{
  guint64 vendor, device;

  return read_hex (dir, "vendor", &vendor) && read_hex (dir, "device",
      &device) && vendor == SHM_IVSHMEM_VENDOR && device == SHM_IVSHMEM_DEVICE;
}

static gint
compare_strings (gconstpointer a, gconstpointer b)
{
  return g_strcmp0 (*(const gchar **) a, *(const gchar **) b);
}

/* BAR 2 of a device directory: the write-combined mapping when there is
 * one (what a receiver and a sender both want), else the uncached one. */
static gchar *
bar_of (const gchar * dir)
{
  gchar *wc = g_build_filename (dir, "resource2_wc", NULL);

  if (g_file_test (wc, G_FILE_TEST_EXISTS))
    return wc;
  g_free (wc);
  return g_build_filename (dir, "resource2", NULL);
}

/**
 * shm_ivshmem_resolve:
 * @sysfs_root: "/sys", or a tree that looks like it (tests)
 *
 * Turns the discovery form of a path into the path of a BAR:
 *   ivshmem:N        BAR 2 of the Nth ivshmem device (1af4:1110), counting
 *                    from 0 in PCI address order
 *   ivshmem:ADDRESS  BAR 2 of the device at that PCI address
 * Any other path is returned as it is.
 */
gchar *
shm_ivshmem_resolve (const gchar * path, const gchar * sysfs_root,
    GError ** error)
{
  g_autofree gchar *devices = NULL;
  g_autoptr (GPtrArray) found = NULL;
  const gchar *what;
  GDir *d;
  const gchar *name;
  guint64 index;

  if (!g_str_has_prefix (path, "ivshmem:"))
    return g_strdup (path);
  what = path + strlen ("ivshmem:");
  devices = g_build_filename (sysfs_root, "bus", "pci", "devices", NULL);

  if (!g_ascii_string_to_unsigned (what, 10, 0, 255, &index, NULL)) {
    g_autofree gchar *dir = g_build_filename (devices, what, NULL);
    if (!g_file_test (dir, G_FILE_TEST_IS_DIR)) {
      g_set_error (error, SHM_IVSHMEM_ERROR, 0, "No PCI device %s (no %s)",
          what, dir);
      return NULL;
    }
    if (!is_ivshmem_dir (dir)) {
      g_set_error (error, SHM_IVSHMEM_ERROR, 0, "PCI device %s is not an "
          "ivshmem device (vendor:device %04x:%04x expected)", what,
          SHM_IVSHMEM_VENDOR, SHM_IVSHMEM_DEVICE);
      return NULL;
    }
    return bar_of (dir);
  }

  found = g_ptr_array_new_with_free_func (g_free);
  d = g_dir_open (devices, 0, NULL);
  while (d && (name = g_dir_read_name (d))) {
    g_autofree gchar *dir = g_build_filename (devices, name, NULL);
    if (is_ivshmem_dir (dir))
      g_ptr_array_add (found, g_strdup (dir));
  }
  if (d)
    g_dir_close (d);
  g_ptr_array_sort (found, compare_strings);
  if (index >= found->len) {
    g_set_error (error, SHM_IVSHMEM_ERROR, 0, "No ivshmem device #%"
        G_GUINT64_FORMAT ": %u found (PCI id %04x:%04x under %s)", index,
        found->len, SHM_IVSHMEM_VENDOR, SHM_IVSHMEM_DEVICE, devices);
    return NULL;
  }
  return bar_of (found->pdata[index]);
}

static ShmBarKind
bar_kind (const gchar * path)
{
  g_autofree gchar *base = g_path_get_basename (path);
  g_autofree gchar *dir = g_path_get_dirname (path);
  const gchar *p;
  gboolean wc;

  if (!g_str_has_prefix (base, "resource"))
    return SHM_BAR_NONE;
  p = base + strlen ("resource");
  if (!g_ascii_isdigit (*p))
    return SHM_BAR_NONE;
  while (g_ascii_isdigit (*p))
    p++;
  wc = g_str_equal (p, "_wc");
  if (*p && !wc)
    return SHM_BAR_NONE;
  for (guint i = 0; i < 3; i++) {
    const gchar *f[] = { "vendor", "device", "enable" };
    g_autofree gchar *file = g_build_filename (dir, f[i], NULL);
    if (!g_file_test (file, G_FILE_TEST_EXISTS))
      return SHM_BAR_NONE;
  }
  return wc ? SHM_BAR_WRITE_COMBINED : SHM_BAR_UNCACHED;
}

/**
 * shm_ivshmem_prepare:
 * @enable: write 1 to the device's "enable" file when it reads 0
 * @kind: (out): what kind of mapping @path gives
 *
 * For a PCI BAR path: checks that the device is an ivshmem device and that
 * it is enabled, enabling it when @enable.  Ordinary files pass as they
 * are.
 */
gboolean
shm_ivshmem_prepare (const gchar * path, gboolean enable, ShmBarKind * kind,
    GError ** error)
{
  g_autofree gchar *dir = g_path_get_dirname (path);
  g_autofree gchar *addr = g_path_get_basename (dir);
  g_autofree gchar *enable_file = NULL;
  guint64 vendor = 0, device = 0, on = 0;

  *kind = bar_kind (path);
  if (*kind == SHM_BAR_NONE)
    return TRUE;

  read_hex (dir, "vendor", &vendor);
  read_hex (dir, "device", &device);
  if (vendor != SHM_IVSHMEM_VENDOR || device != SHM_IVSHMEM_DEVICE) {
    g_set_error (error, SHM_IVSHMEM_ERROR, 0, "\"%s\" is a BAR of PCI device "
        "%s, which is not an ivshmem device (vendor:device %04x:%04x, "
        "expected %04x:%04x)", path, addr, (guint) vendor, (guint) device,
        SHM_IVSHMEM_VENDOR, SHM_IVSHMEM_DEVICE);
    return FALSE;
  }

  enable_file = g_build_filename (dir, "enable", NULL);
  if (read_hex (dir, "enable", &on) && on != 0)
    return TRUE;
  if (enable) {
    /* sysfs attributes are written in place, never through a rename */
    int fd = open (enable_file, O_WRONLY | O_CLOEXEC);
    int err = 0;
    if (fd < 0 || write (fd, "1", 1) != 1)
      err = errno;
    if (fd >= 0)
      close (fd);
    if (!err && read_hex (dir, "enable", &on) && on != 0)
      return TRUE;
    g_set_error (error, SHM_IVSHMEM_ERROR, 0, "The ivshmem device %s is "
        "disabled and could not be enabled (%s): run \"echo 1 > %s\" as "
        "root", addr, err ? g_strerror (err) : "it still reads 0", enable_file);
    return FALSE;
  }
  g_set_error (error, SHM_IVSHMEM_ERROR, 0, "The ivshmem device %s is "
      "disabled: run \"echo 1 > %s\" as root", addr, enable_file);
  return FALSE;
}

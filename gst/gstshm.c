/* gst-shm: plugin entry point
 *
 * The plugin file is libgstshm.so, the same basename as gst-plugins-bad's
 * shm plugin: GStreamer keeps one plugin per basename and scans
 * GST_PLUGIN_PATH (and the per-user plugin dir) before the system dir, so
 * that whenever this plugin is found there its shmsink and shmsrc are the
 * ones users get.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstshmelements.h"

static gboolean
plugin_init (GstPlugin * plugin)
{
  gboolean ret = FALSE;

  ret |= GST_ELEMENT_REGISTER (shmsink, plugin);
  ret |= GST_ELEMENT_REGISTER (shmsrc, plugin);
  return ret;
}

GST_PLUGIN_DEFINE (GST_VERSION_MAJOR, GST_VERSION_MINOR, shm,
    "Zero-copy video between pipelines through token-verified shared memory "
    "(/dev/shm files and QEMU ivshmem)",
    plugin_init, VERSION, GST_LICENSE, GST_PACKAGE_NAME, GST_PACKAGE_ORIGIN)

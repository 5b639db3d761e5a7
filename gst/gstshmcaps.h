/* gst-shm: caps on the wire
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#ifndef __GST_SHM_CAPS_H__
#define __GST_SHM_CAPS_H__

#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_SHM_CAPS_MAX_STRUCTURES 64

gchar *gst_shm_caps_serialize (GstCaps * caps);
GstCaps *gst_shm_caps_parse (const gchar * str, gboolean need_fixed,
    GError ** error);
GstCaps *gst_shm_caps_sysmem (GstCaps * caps);

G_END_DECLS

#endif /* __GST_SHM_CAPS_H__ */

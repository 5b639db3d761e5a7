/* gst-shm: shmsrc
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#ifndef __GST_SHM_SRC_H__
#define __GST_SHM_SRC_H__

#include <gst/gst.h>
#include <gst/base/gstpushsrc.h>

G_BEGIN_DECLS

#define GST_TYPE_SHM_SRC (gst_shm_src_get_type ())
G_DECLARE_FINAL_TYPE (GstShmSrc, gst_shm_src, GST, SHM_SRC, GstPushSrc);

G_END_DECLS

#endif /* __GST_SHM_SRC_H__ */

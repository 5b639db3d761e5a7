/* gst-shm: shmsink
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#ifndef __GST_SHM_SINK_H__
#define __GST_SHM_SINK_H__

#include <gst/gst.h>
#include <gst/base/gstbasesink.h>

G_BEGIN_DECLS

#define GST_TYPE_SHM_SINK (gst_shm_sink_get_type ())
G_DECLARE_FINAL_TYPE (GstShmSink, gst_shm_sink, GST, SHM_SINK, GstBaseSink);

G_END_DECLS

#endif /* __GST_SHM_SINK_H__ */

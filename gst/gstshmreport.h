/* gst-shm: receivers' reports, as shmsink shows them (docs/protocol.md,
 * "report")
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#ifndef __GST_SHM_REPORT_H__
#define __GST_SHM_REPORT_H__

#include <gst/gst.h>
#include <gst/base/gstbasesink.h>

#include "shmsender.h"

G_BEGIN_DECLS

GstStructure *gst_shm_report_structure (const gchar * peer,
    const ShmReport * report);
void gst_shm_report_receivers (ShmSender * sender, GValue * array);
GstEvent *gst_shm_report_qos (ShmSender * sender, GstClockTime timestamp);
void gst_shm_report_forward (GstBaseSink * sink, ShmSender * sender,
    ShmPeer * peer, const ShmReport * report);
void gst_shm_report_install_property (GObjectClass * klass, guint prop_id);

G_END_DECLS

#endif /* __GST_SHM_REPORT_H__ */

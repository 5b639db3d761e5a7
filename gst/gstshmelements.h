/* gst-shm: element registration
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#ifndef __GST_SHM_ELEMENTS_H__
#define __GST_SHM_ELEMENTS_H__

#include <gst/gst.h>

G_BEGIN_DECLS

GST_ELEMENT_REGISTER_DECLARE (shmsink);
GST_ELEMENT_REGISTER_DECLARE (shmsrc);

G_END_DECLS

#endif /* __GST_SHM_ELEMENTS_H__ */

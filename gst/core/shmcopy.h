/* gst-shm: copies out of write-combined memory
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#ifndef __SHM_COPY_H__
#define __SHM_COPY_H__

#include <glib.h>

G_BEGIN_DECLS

void shm_copy_from_wc (gpointer dst, gconstpointer src, gsize n);

G_END_DECLS

#endif /* __SHM_COPY_H__ */

/* gst-shm: QEMU ivshmem devices seen from a guest (PCI BARs in sysfs)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#ifndef __SHM_IVSHMEM_H__
#define __SHM_IVSHMEM_H__

#include <glib.h>

G_BEGIN_DECLS

#define SHM_IVSHMEM_VENDOR 0x1af4
#define SHM_IVSHMEM_DEVICE 0x1110

typedef enum
{
  SHM_BAR_NONE,                 /* not a PCI BAR: an ordinary file */
  SHM_BAR_WRITE_COMBINED,       /* resourceN_wc */
  SHM_BAR_UNCACHED,             /* resourceN */
} ShmBarKind;

#define SHM_IVSHMEM_ERROR (shm_ivshmem_error_quark ())
GQuark shm_ivshmem_error_quark (void);

gchar *shm_ivshmem_resolve (const gchar * path, const gchar * sysfs_root,
    GError ** error);
gboolean shm_ivshmem_prepare (const gchar * path, gboolean enable,
    ShmBarKind * kind, GError ** error);

G_END_DECLS

#endif /* __SHM_IVSHMEM_H__ */

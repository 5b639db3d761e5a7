/* gst-shm: mappings that a peer may shrink under us
 *
 * Part of the core (GLib only).  A process that may write an area's file
 * can truncate it; an access to the pages past the new end then raises
 * SIGBUS.  A guarded mapping turns that into a flag: the faulting page is
 * replaced by a private page of zeros (the access goes on), and the flag
 * tells the engine, which ends the session.  SIGBUS outside guarded
 * mappings goes to the handler that was there before.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#ifndef __SHM_GUARD_H__
#define __SHM_GUARD_H__

#include <glib.h>

G_BEGIN_DECLS gint shm_guard_add (gpointer base, gsize len, gint * truncated);
void shm_guard_remove (gint slot);

G_END_DECLS

#endif /* __SHM_GUARD_H__ */

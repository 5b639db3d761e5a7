/* gst-shm: the main function of the GstCheck test programs
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#ifndef __SHM_CHECK_MAIN_H__
#define __SHM_CHECK_MAIN_H__

#include <gst/check/gstcheck.h>

/* Like GST_CHECK_MAIN, but a run in which GST_CHECKS matched no test
 * fails: a misspelt name in the build files must not pass silently. */
#define SHM_CHECK_MAIN(name) \
int \
main (int argc, char **argv) \
{ \
  SRunner *sr; \
  gint failed, ran; \
  gst_check_init (&argc, &argv); \
  sr = srunner_create (name##_suite ()); \
  srunner_run_all (sr, CK_NORMAL); \
  failed = srunner_ntests_failed (sr); \
  ran = srunner_ntests_run (sr); \
  srunner_free (sr); \
  if (ran == 0) \
    g_printerr ("no test matches GST_CHECKS=%s\n", g_getenv ("GST_CHECKS")); \
  return (failed == 0 && ran > 0) ? 0 : 1; \
}

#endif /* __SHM_CHECK_MAIN_H__ */

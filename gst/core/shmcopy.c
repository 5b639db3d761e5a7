/* gst-shm: copies out of write-combined memory
 *
 * A guest maps an ivshmem BAR through resource2_wc: write-combined.  Writes
 * to it are fast; ordinary reads are not cached and go to memory one load
 * at a time.  Streaming loads (MOVNTDQA, SSE4.1) read a whole 64-byte line
 * into a streaming buffer at once, which is what reading WC memory needs.
 * (On ordinary write-back memory they behave as plain loads.)  Without
 * SSE4.1 this is memcpy.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "shmcopy.h"

#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

static void copy_stream_sse41 (guint8 * dst, const guint8 * src, gsize n)
    __attribute__((target ("sse4.1")));

static void
copy_stream_sse41 (guint8 * dst, const guint8 * src, gsize n)
{
  gsize head = (16 - ((guintptr) src & 15)) & 15;

  /* Streaming loads are weakly ordered: none may pass the load that told
   * us the frame is there. */
  _mm_mfence ();
  /* MOVNTDQA needs 16-byte aligned sources */
  if (head > n)
    head = n;
  memcpy (dst, src, head);
  dst += head;
  src += head;
  n -= head;

  while (n >= 64) {
    __m128i a = _mm_stream_load_si128 ((__m128i *) src);
    __m128i b = _mm_stream_load_si128 ((__m128i *) (src + 16));
    __m128i c = _mm_stream_load_si128 ((__m128i *) (src + 32));
    __m128i d = _mm_stream_load_si128 ((__m128i *) (src + 48));
    _mm_storeu_si128 ((__m128i *) dst, a);
    _mm_storeu_si128 ((__m128i *) (dst + 16), b);
    _mm_storeu_si128 ((__m128i *) (dst + 32), c);
    _mm_storeu_si128 ((__m128i *) (dst + 48), d);
    src += 64;
    dst += 64;
    n -= 64;
  }
  while (n >= 16) {
    _mm_storeu_si128 ((__m128i *) dst, _mm_stream_load_si128 ((__m128i *)
            src));
    src += 16;
    dst += 16;
    n -= 16;
  }
  memcpy (dst, src, n);
}

static gboolean
have_sse41 (void)
{
  /* (libgcc detects the CPU in a constructor: no cache of ours, which
   * several threads would race to fill) */
  return __builtin_cpu_supports ("sse4.1");
}
#endif

/**
 * shm_copy_from_wc:
 *
 * Copies @n bytes out of a write-combined mapping (any alignment).
 */
void
shm_copy_from_wc (gpointer dst, gconstpointer src, gsize n)
{
#if defined(__x86_64__) || defined(__i386__)
  if (have_sse41 ()) {
    copy_stream_sse41 (dst, src, n);
    return;
  }
#endif
  memcpy (dst, src, n);
}

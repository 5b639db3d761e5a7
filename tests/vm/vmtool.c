/* vmtool: tiny helper for tests/vm/selftest.sh.
 *
 *   vmtool write PATH OFFSET STRING           mmap PATH read-write, store STRING
 *   vmtool check PATH OFFSET STRING           exit 0 if STRING is at OFFSET
 *   vmtool wait  PATH OFFSET STRING TIMEOUT_MS  poll until STRING is at OFFSET
 *   vmtool zero  PATH OFFSET LEN              clear LEN bytes at OFFSET
 *   vmtool listen ADDR PORT PORTFILE TIMEOUT_S REPLY
 *        accept one TCP connection on ADDR:PORT (PORT 0: any; the port is
 *        written to PORTFILE, "-" for none), print what it sends until EOF,
 *        answer REPLY, close
 *   vmtool send ADDR PORT MESSAGE TIMEOUT_S
 *        connect (retrying until TIMEOUT_S), send MESSAGE, half-close, print
 *        the reply; retries while the reply is empty
 *   vmtool freeport                           print a free TCP port on 127.0.0.1
 *
 * PATH may be a regular file (e.g. in /dev/shm) or a PCI BAR file in sysfs
 * (/sys/bus/pci/devices/0000:00:04.0/resource2_wc): both are accessed with
 * mmap only (read()/write() on BAR files fail with EIO).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *prog = "vmtool";

static void
die (const char *what)
{
  fprintf (stderr, "%s: %s: %s\n", prog, what, strerror (errno));
  exit (2);
}

static double
now (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Map [off, off+len) of path; returns a pointer to off. */
static volatile unsigned char *
map (const char *path, unsigned long off, size_t len)
{
  int fd = open (path, O_RDWR);
  if (fd < 0)
    die (path);
  struct stat st;
  if (fstat (fd, &st) < 0)
    die ("fstat");
  if (st.st_size > 0 && off + len > (unsigned long) st.st_size) {
    fprintf (stderr, "%s: %s: range %lu+%zu beyond size %lld\n", prog, path,
        off, len, (long long) st.st_size);
    exit (2);
  }
  long pg = sysconf (_SC_PAGESIZE);
  unsigned long start = off & ~(unsigned long) (pg - 1);
  size_t maplen = off + len - start;
  void *p = mmap (NULL, maplen, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
      (off_t) start);
  if (p == MAP_FAILED)
    die ("mmap");
  close (fd);
  return (volatile unsigned char *) p + (off - start);
}

static int
matches (volatile unsigned char *p, const char *s, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (p[i] != (unsigned char) s[i])
      return 0;
  return 1;
}

static void
show (volatile unsigned char *p, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    unsigned char c = p[i];
    if (c >= 32 && c < 127)
      fputc (c, stderr);
    else
      fprintf (stderr, "\\x%02x", c);
  }
}

static int
sock_for (const char *addr, unsigned port, struct sockaddr_in *sa)
{
  memset (sa, 0, sizeof *sa);
  sa->sin_family = AF_INET;
  sa->sin_port = htons (port);
  if (inet_pton (AF_INET, addr, &sa->sin_addr) != 1) {
    fprintf (stderr, "%s: bad IPv4 address %s\n", prog, addr);
    exit (2);
  }
  int s = socket (AF_INET, SOCK_STREAM, 0);
  if (s < 0)
    die ("socket");
  return s;
}

static void
set_timeouts (int s, int secs)
{
  struct timeval tv = { secs, 0 };
  setsockopt (s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt (s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

static void
write_all (int s, const char *buf, size_t n)
{
  while (n > 0) {
    ssize_t w = write (s, buf, n);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      die ("write");
    }
    buf += w;
    n -= (size_t) w;
  }
}

int
main (int argc, char **argv)
{
  if (argc < 2)
    goto usage;
  const char *cmd = argv[1];

  if (!strcmp (cmd, "write") && argc == 5) {
    size_t n = strlen (argv[4]);
    volatile unsigned char *p = map (argv[2], strtoul (argv[3], NULL, 0), n);
    for (size_t i = 0; i < n; i++)
      p[i] = (unsigned char) argv[4][i];
    __sync_synchronize ();
    return 0;
  }
  if (!strcmp (cmd, "zero") && argc == 5) {
    size_t n = strtoul (argv[4], NULL, 0);
    volatile unsigned char *p = map (argv[2], strtoul (argv[3], NULL, 0), n);
    for (size_t i = 0; i < n; i++)
      p[i] = 0;
    __sync_synchronize ();
    return 0;
  }
  if (!strcmp (cmd, "check") && argc == 5) {
    size_t n = strlen (argv[4]);
    volatile unsigned char *p = map (argv[2], strtoul (argv[3], NULL, 0), n);
    if (matches (p, argv[4], n))
      return 0;
    fprintf (stderr, "%s: %s@%s: expected \"%s\", found \"", prog, argv[2],
        argv[3], argv[4]);
    show (p, n);
    fprintf (stderr, "\"\n");
    return 1;
  }
  if (!strcmp (cmd, "wait") && argc == 6) {
    size_t n = strlen (argv[4]);
    volatile unsigned char *p = map (argv[2], strtoul (argv[3], NULL, 0), n);
    double end = now () + atof (argv[5]) / 1000.0;
    while (!matches (p, argv[4], n)) {
      if (now () > end) {
        fprintf (stderr, "%s: %s@%s: timed out waiting for \"%s\", found \"",
            prog, argv[2], argv[3], argv[4]);
        show (p, n);
        fprintf (stderr, "\"\n");
        return 1;
      }
      usleep (2000);
    }
    return 0;
  }
  if (!strcmp (cmd, "freeport") && argc == 2) {
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    int s = sock_for ("127.0.0.1", 0, &sa);
    if (bind (s, (struct sockaddr *) &sa, sizeof sa) < 0)
      die ("bind");
    if (getsockname (s, (struct sockaddr *) &sa, &sl) < 0)
      die ("getsockname");
    printf ("%u\n", ntohs (sa.sin_port));
    return 0;
  }
  if (!strcmp (cmd, "listen") && argc == 7) {
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    int one = 1, secs = atoi (argv[5]);
    int s = sock_for (argv[2], (unsigned) atoi (argv[3]), &sa);
    setsockopt (s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind (s, (struct sockaddr *) &sa, sizeof sa) < 0)
      die ("bind");
    if (listen (s, 1) < 0)
      die ("listen");
    if (getsockname (s, (struct sockaddr *) &sa, &sl) < 0)
      die ("getsockname");
    if (strcmp (argv[4], "-")) {
      char tmp[4096];
      snprintf (tmp, sizeof tmp, "%s.tmp", argv[4]);
      FILE *f = fopen (tmp, "w");
      if (!f || fprintf (f, "%u\n", ntohs (sa.sin_port)) < 0 || fclose (f) != 0)
        die (tmp);
      if (rename (tmp, argv[4]) < 0)
        die ("rename");
    }
    set_timeouts (s, secs);     /* SO_RCVTIMEO bounds accept() too */
    int c = accept (s, NULL, NULL);
    if (c < 0)
      die ("accept");
    set_timeouts (c, secs);
    char buf[4096];
    ssize_t r;
    while ((r = read (c, buf, sizeof buf)) > 0)
      fwrite (buf, 1, (size_t) r, stdout);
    if (r < 0)
      die ("read");
    fflush (stdout);
    write_all (c, argv[6], strlen (argv[6]));
    close (c);
    return 0;
  }
  if (!strcmp (cmd, "send") && argc == 6) {
    double end = now () + atof (argv[5]);
    for (;;) {
      struct sockaddr_in sa;
      int s = sock_for (argv[2], (unsigned) atoi (argv[3]), &sa);
      set_timeouts (s, 5);
      if (connect (s, (struct sockaddr *) &sa, sizeof sa) == 0) {
        write_all (s, argv[4], strlen (argv[4]));
        shutdown (s, SHUT_WR);
        char buf[4096];
        ssize_t r, total = 0;
        while ((r = read (s, buf, sizeof buf)) > 0) {
          fwrite (buf, 1, (size_t) r, stdout);
          total += r;
        }
        close (s);
        if (total > 0)
          return 0;
      } else {
        close (s);
      }
      if (now () > end) {
        fprintf (stderr, "%s: no answer from %s:%s within %ss\n", prog, argv[2],
            argv[3], argv[5]);
        return 1;
      }
      usleep (200000);
    }
  }
usage:
  fprintf (stderr,
      "usage: vmtool write|check PATH OFFSET STRING | wait PATH OFFSET STRING TIMEOUT_MS |\n"
      "       zero PATH OFFSET LEN | listen ADDR PORT PORTFILE TIMEOUT_S REPLY |\n"
      "       send ADDR PORT MESSAGE TIMEOUT_S | freeport\n");
  return 2;
}

#!/bin/sh
# Measures the tile comparison's three ways side by side (ORC, a C loop,
# memcmp) and writes bench/tiles.md, the measurement and what it chose.
#
#   bench/tiles.sh [--builddir DIR]
set -eu

here=$(cd "$(dirname "$0")" && pwd)
src=$(dirname "$here")
builddir=$src/build
if [ "${1:-}" = --builddir ]; then
  builddir=$(cd "$2" && pwd)
fi
ninja -C "$builddir" bench/gst-shm-tiles >&2
table=$(mktemp)
"$builddir/bench/gst-shm-tiles" --output "$table"
{
  echo "# Tile comparison: ORC, a C loop and memcmp()"
  echo
  echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- CPU: $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(nproc) cores"
  echo "- ORC: $(pkg-config --modversion orc-0.4 2>/dev/null || echo unknown)"
  echo "- Source: git $(git -C "$src" describe --always --dirty 2>/dev/null || echo unknown)"
  echo "- Command: \`bench/tiles.sh\` (\`gst-shm-tiles\`, one run)"
  echo
  echo "Every 64×64-pixel tile of two frames in memory is compared by each way"
  echo "of \`gst/core/shmtiles.h\`; the median time of a whole frame over 0.3 s of"
  echo "repeats, and the frame's bytes per second."
  echo
  cat "$table"
  echo
  [ -f "$here/tiles-notes.md" ] && cat "$here/tiles-notes.md"
} >"$here/tiles.md"
rm -f "$table"
echo "wrote $here/tiles.md" >&2

#!/bin/sh
# Runs the gst-shm benchmark on the plugin of a build tree.
#
#   bench/run.sh [--builddir DIR] [OPTIONS]
#
# Builds the benchmark and the plugin (ninja), then runs every case and
# writes bench/results.md (about 15 minutes on two cores).  OPTIONS go to
# gst-shm-bench: --quick (one size and format, one run, a few hundred
# frames: writes BUILDDIR/bench/results-quick.md), --runs N, --only TEXT,
# --output FILE, --perf DIR, --list; `gst-shm-bench --help` lists them.
# A full run (no OPTIONS) then adds bench/damage.sh's "Damage" section.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
src=$(dirname "$here")
builddir=$src/build
if [ "${1:-}" = --builddir ]; then
  builddir=$(cd "$2" && pwd)
  shift 2
fi

ninja -C "$builddir" bench/gst-shm-bench gst/libgstshm.so >&2

output=$here/results.md
for a in "$@"; do
  [ "$a" = --quick ] && output=$builddir/bench/results-quick.md
done
notes=
[ -f "$here/analysis.md" ] && notes=--notes=$here/analysis.md
source=$(git -C "$src" describe --always --dirty 2>/dev/null || echo unknown)

# from the source directory: the report names the plugin relative to it
cd "$src"
"$builddir/bench/gst-shm-bench" --plugin-dir="$builddir/gst" \
  --output="$output" $notes --source="git $source" \
  --command="bench/run.sh $*" "$@"
# a full run measures damage too (bench/damage.sh), in its own section
[ $# -eq 0 ] && "$here/damage.sh" --builddir "$builddir" --append "$output"
exit 0

#!/bin/sh
# Measures damage side by side in one run: a ball on a still background
# and full motion, 1080p BGRx at 60 frames/s, damage off and on, for a
# receiver that copies frames out of the area (read-mode=copy) and one
# that gets them inline over TCP.  Writes the "Damage" section of a
# results file (replacing the one there), or prints it.
#
#   bench/damage.sh [--builddir DIR] [--frames N] [--append FILE]
set -eu

here=$(cd "$(dirname "$0")" && pwd)
src=$(dirname "$here")
builddir=$src/build
frames=300
append=
while [ $# -gt 0 ]; do
  case $1 in
  --builddir) builddir=$(cd "$2" && pwd); shift 2 ;;
  --frames) frames=$2; shift 2 ;;
  --append) append=$2; shift 2 ;;
  *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
ninja -C "$builddir" bench/gst-shm-damage gst/libgstshm.so >&2
tool=$builddir/bench/gst-shm-damage
export GST_PLUGIN_PATH_1_0="$builddir/gst"
dir=$(mktemp -d /dev/shm/gst-shm-damage.XXXXXX)
export GST_REGISTRY_1_0="$dir/registry.bin"
trap 'rm -rf "$dir"' EXIT
FRAME=$((1920 * 1080 * 4))

port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# key FILE NAME
key() {
  sed -n "s/^$2=//p" "$1" | head -n1
}

# one PATTERN DAMAGE WAY: a row of the table
one() {
  pattern=$1 damage=$2 way=$3
  rm -f "$dir/area" "$dir/area.sock"
  if [ "$way" = copy ]; then
    control=unix:$dir/area.sock
    rpath=$dir/area
  else
    control=tcp:127.0.0.1:$(port)
    rpath=$dir/elsewhere
  fi
  "$tool" recv "$rpath" "$control" >"$dir/recv.out" 2>"$dir/recv.err" &
  rpid=$!
  "$tool" send "$dir/area" "$control" "$pattern" "$damage" "$frames" \
    >"$dir/send.out" 2>"$dir/send.err" || {
    echo "sender failed: $(cat "$dir/send.err")" >&2
    exit 1
  }
  wait $rpid || {
    echo "receiver failed: $(cat "$dir/recv.err")" >&2
    exit 1
  }
  s=$dir/send.out r=$dir/recv.out
  if [ "$way" = copy ]; then
    bytes=$(key "$r" bytes-copied) n=$(key "$r" frames-copied)
  else
    bytes=$(key "$s" bytes-inline) n=$(key "$s" frames-inline)
  fi
  awk -v p="$pattern" -v d="$damage" -v w="$way" -v b="$bytes" -v n="$n" \
    -v f=$FRAME -v scpu="$(key "$s" cpu-ns)" -v sn="$(key "$s" frames-sent)" \
    -v dt="$(key "$s" damage-time)" -v dn="$(key "$s" damage-frames)" \
    -v rcpu="$(key "$r" cpu-ns)" -v rn="$(key "$r" frames-pushed)" \
    -v tc="$(key "$s" damage-tiles-changed)" -v tt="$(key "$s" damage-tiles)" \
    'BEGIN {
      way = w == "copy" ? "copied (read-mode=copy)" : "inline over TCP";
      printf "| %s | %s | %s | %d | %.0f | %.2f %% | %s | %.2f | %s | %.2f |\n",
        p, d, way, n, b / n, 100 * b / n / f,
        (tt > 0 ? sprintf("%.1f %%", 100 * tc / tt) : "–"),
        scpu / sn / 1e6, (dn > 0 ? sprintf("%.2f", dt / dn / 1e6) : "–"),
        rcpu / rn / 1e6
    }'
}

table=$dir/table
for pattern in ball snow; do
  for way in copy inline; do
    for damage in off compute; do
      echo "damage: $pattern $way $damage" >&2
      one "$pattern" "$damage" "$way" >>"$table"
    done
  done
done

section=$dir/section
{
  echo "## Damage"
  echo
  echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- CPU: $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(nproc) cores"
  echo "- Source: git $(git -C "$src" describe --always --dirty 2>/dev/null || echo unknown)"
  echo "- Command: \`bench/damage.sh\` (\`gst-shm-damage\`, one run, $frames frames a row)"
  echo
  echo "\`videotestsrc is-live=true pattern=P ! video/x-raw,format=BGRx,width=1920,height=1080,framerate=60/1 ! shmsink damage=D\`"
  echo "→ \`shmsrc read-mode=copy ! fakesink\` in another process, either mapping the"
  echo "area (the frames are copied out of it) or not (control over loopback TCP,"
  echo "frames inline).  \`ball\` is a small moving ball on a still background;"
  echo "\`snow\` is random noise, every pixel new every frame (full motion).  Bytes"
  echo "a frame: the receiver's bytes-copied over frames-copied, or the sender's"
  echo "bytes-inline (records and frame bytes) over frames-inline; every frame of"
  echo "the run counts, the first (whole) one too.  Tiles changed: of the tiles"
  echo "compared.  CPU: getrusage of each process (all threads, videotestsrc's"
  echo "rendering included) over the frames; damage ms: the sender's time in the"
  echo "tile comparison (stats damage-time over damage-frames)."
  echo
  echo "| pattern | damage | frames | frames | bytes a frame | of a frame | tiles changed | sender CPU ms/frame | damage ms/frame | receiver CPU ms/frame |"
  echo "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"
  cat "$table"
} | sed 's/^| pattern | damage | frames | frames |/| pattern | damage | frames go | frames |/' >"$section"

if [ -n "$append" ]; then
  # the old section (from its heading to the next of its level) goes
  awk '/^## Damage$/ { skip = 1; next } /^## / { skip = 0 } !skip' \
    "$append" >"$dir/rest"
  { cat "$dir/rest"; echo; cat "$section"; } | cat -s >"$append"
  echo "wrote the Damage section of $append" >&2
else
  cat "$section"
fi

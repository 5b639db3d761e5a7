#!/usr/bin/env bash
# gst-shm: the line of the design card, as typed,
#
#   gst-launch-1.0 ximagesrc ! shmsink path=/dev/shm/x
#   gst-launch-1.0 shmsrc path=/dev/shm/x ! videoconvert ! autovideosink
#
# on an X server of its own (Xvfb) whose screen shows a known colour: the
# received frames must show it, then the next colour.
#
#   ximagesrc.sh [damage]
#
# With "damage", the same with shmsink damage=compute and receivers that
# copy frames (read-mode=copy): only the tiles that changed are copied, and
# the frames must still show the whole screen.
set -u

. "$(dirname "$0")/lib.sh"

sink_extra=
src_extra=
if [ "${1:-}" = damage ]; then
  sink_extra=damage=compute
  src_extra=read-mode=copy
fi

for tool in Xvfb xsetroot; do
  command -v $tool >/dev/null || fail "$tool missing (scripts/setup.sh installs it)"
done

# A display nobody else uses: Xvfb picks a free number and tells it.  No
# reset when the last client leaves, so that the root window keeps its
# colour between clients.
Xvfb -displayfd 3 -screen 0 640x480x24 -nolisten tcp -noreset \
  3>"$T/display" >"$T/xvfb.log" 2>&1 &
pids+=($!)
for i in $(seq 1 100); do
  [ -s "$T/display" ] && break
  sleep 0.1
done
[ -s "$T/display" ] || fail "Xvfb did not start"
export DISPLAY=:$(head -n1 "$T/display")

# check_frames FILE RRGGBB: FILE holds whole 640x480 RGB frames, and the
# last one shows the colour everywhere but under the pointer, which
# ximagesrc draws into the picture.
check_frames() {
  python3 - "$1" "$2" <<'PY' || fail "$1 does not show #$2"
import sys
w, h = 640, 480
size = w * h * 3
data = open(sys.argv[1], "rb").read()
if not data or len(data) % size:
    sys.exit(f"{len(data)} bytes: not whole 640x480 RGB frames")
frame = data[-size:]
want = bytes.fromhex(sys.argv[2])
other = [(i // 3 % w, i // 3 // w) for i in range(0, size, 3)
         if frame[i:i + 3] != want]
if len(other) > 32 * 32:
    x, y = other[0]
    got = frame[(y * w + x) * 3:(y * w + x) * 3 + 3].hex()
    sys.exit(f"{len(other)} pixels differ, e.g. ({x},{y}) is #{got}")
for x, y in ((0, 0), (w - 1, 0), (0, h - 1), (w - 1, h - 1), (10, 200)):
    if (x, y) in other:
        sys.exit(f"pixel ({x},{y}) differs")
print(f"{sys.argv[1]}: #{sys.argv[2]} but {len(other)} pointer pixels")
PY
}

receive() {
  run "$1" gst-launch-1.0 shmsrc path="$P" $src_extra num-buffers=5 ! videoconvert \
    ! video/x-raw,format=RGB ! filesink location="$T/$1.rgb"
  expect_rc "$1" 0
}

xsetroot -solid '#3366CC' || fail "xsetroot failed"
bg send gst-launch-1.0 ximagesrc ! shmsink path="$P" $sink_extra
receive first
check_frames "$T/first.rgb" 3366cc

xsetroot -solid '#E08020' || fail "xsetroot failed"
receive second
check_frames "$T/second.rgb" e08020

# the receiving line itself, with a window on the same display
run window gst-launch-1.0 shmsrc path="$P" $src_extra num-buffers=10 ! videoconvert \
  ! autovideosink
expect_rc window 0

stop send
expect_rc send 0
# (a receiver that misses a frame on a busy machine is said once, and is
# not a failure of the sender)
grep WARNING "$T/send.log" | grep -qv "misses frames" &&
  fail "the sender warned"
expect_gone
echo "PASS: ximagesrc${1:+ $1}"

#!/usr/bin/env bash
# gst-shm: damage.  shmsink damage=compute tells receivers which tiles of
# each frame changed; receivers that copy (read-mode=copy, frames inline
# over TCP) copy only those into buffers of their own.  Every frame's
# pixels are checked against the sender's (shm-peer's stamp covers every
# visible byte), and with --check-damage every frame's damage metas must
# cover every pixel that differs from the frame before.
#
#   damage.sh CASE
set -u

case_name=$1
. "$(dirname "$0")/lib.sh"

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# 640x480 BGRx
FRAME=1228800

# at_most NAME STAT LIMIT
at_most() {
  local v
  v=$(stat_of "$1" "$2")
  [ -n "$v" ] && [ "$v" -le "$3" ] || fail "$1: $2 is '$v', expected at most $3"
}

at_least() {
  local v
  v=$(stat_of "$1" "$2")
  [ -n "$v" ] && [ "$v" -ge "$3" ] || fail "$1: $2 is '$v', expected at least $3"
}

# way CASE: the control address, area path and shmsrc properties of a
# receiver that copies frames out of the area, or, for a CASE that ends in
# -inline, of one that gets them inline over TCP
way() {
  case $1 in
  *-inline)
    control="tcp:127.0.0.1:$(free_port)"
    props="inline-fallback=true"
    path=$T/elsewhere
    ;;
  *)
    control="unix:$P.sock"
    props="read-mode=copy"
    path=$P
    ;;
  esac
}

# ball N [OPTIONS]: the sender, N frames of a ball at 640x480, with damage
ball() {
  local n=$1
  shift
  bg send "$peer" send --path "$P" --frames "$n" --width 640 --height 480 \
    --sink-props "damage=compute" "$@"
}

# all_right N: both sides ended well, and the receiver got frames 0 to N-1,
# each right, with damage metas that cover what changed
all_right() {
  expect_rc recv 0
  expect_rc send 0
  expect_log recv "RECEIVER frames=$1 first=0 last=$(($1 - 1)) bad=0 gaps=0"
  damage_clean recv
}

damage_clean() {
  expect_match "$1" "^DAMAGE frames=[1-9][0-9]* rects=[0-9]+ nothing=[0-9]+ missing=0 outside=0$"
}

case $case_name in
copy)
  # A ball on a still background, copied out of the area: the first frame
  # whole, then its changed tiles only (a quarter of a frame is generous:
  # the ball and the stamp's tile take a few percent).
  bg recv "$peer" recv --path "$P" --expect 60 --not-live \
    --check-damage --src-props "read-mode=copy"
  ball 60
  all_right 60
  expect_stat recv frames-copied 60
  at_least recv frames-patched 55
  at_most recv bytes-copied $((FRAME + 59 * FRAME / 4))
  expect_stat send damage-frames 60
  at_most send damage-tiles-changed $((60 * 80 / 4 + 80))
  expect_gone
  ;;

hold)
  # In place (read-mode=auto), but downstream keeps the last 3 buffers:
  # shmsrc keeps at most all slots but one and copies the frames beyond
  # them, patching buffers of its own.
  bg recv "$peer" recv --path "$P" --expect 60 --not-live --hold 3 \
    --check-damage
  ball 60
  all_right 60
  copied=$(stat_of recv frames-copied)
  [ "${copied:-0}" -ge 10 ] || fail "only ${copied:-0} frames copied"
  at_least recv frames-patched $((copied / 2))
  expect_gone
  ;;

formats)
  # Planar, semi-planar, packed 4:2:2, 4:1:1 and 16-bit formats at an odd
  # size (partial tiles at the right and bottom edges, subsampled planes
  # that round up): every frame right, its damage metas right, and patched.
  for fmt in I420 NV12 YUY2 UYVY Y41B NV16 Y444 RGB GRAY8 AYUV64; do
    rm -f "$T"/recv.* "$T"/send.*
    bg recv "$peer" recv --path "$P" --expect 12 --not-live --check-damage \
      --src-props "read-mode=copy"
    bg send "$peer" send --path "$P" --frames 12 --format $fmt --width 321 \
      --height 241 --sink-props "damage=compute"
    expect_rc recv 0
    expect_rc send 0
    expect_log recv "RECEIVER frames=12 first=0 last=11 bad=0 gaps=0"
    damage_clean recv
    at_least recv frames-patched 10
    expect_gone
  done
  ;;

v210)
  # A format whose pixels are not whole bytes carries no damage: frames go
  # whole (and right), odd sizes included.
  bg recv "$peer" recv --path "$P" --expect 20 --not-live \
    --src-props "read-mode=copy"
  bg send "$peer" send --path "$P" --frames 20 --format v210 --width 321 \
    --height 241 --sink-props "damage=compute"
  expect_rc recv 0
  expect_rc send 0
  expect_log recv "RECEIVER frames=20 first=0 last=19 bad=0 gaps=0"
  expect_stat send damage-frames 0
  expect_stat recv frames-patched 0
  expect_gone
  ;;

off)
  # damage=off (the default): whole copies, no metas.
  bg recv "$peer" recv --path "$P" --expect 30 --not-live \
    --src-props "read-mode=copy"
  bg send "$peer" send --path "$P" --frames 30 --width 640 --height 480
  expect_rc recv 0
  expect_rc send 0
  expect_log recv "RECEIVER frames=30 first=0 last=29 bad=0 gaps=0"
  expect_stat recv bytes-copied $((30 * FRAME))
  expect_stat recv frames-patched 0
  expect_stat send damage-frames 0
  expect_gone
  ;;

inline)
  # Frames inline over TCP (the receiver does not map the area): the
  # first whole, then each as its changed tiles.
  port=$(free_port)
  bg recv "$peer" recv --path "$T/elsewhere" --control "tcp:127.0.0.1:$port" \
    --expect 60 --not-live --check-damage
  ball 60 --control "tcp:127.0.0.1:$port"
  all_right 60
  expect_log recv "RECEIVER frames=60 first=0 last=59 bad=0 gaps=0 ts_bad=0 in_area=0"
  expect_stat recv frames-inline 60
  expect_stat send frames-inline 60
  at_most send bytes-inline $((FRAME + 59 * FRAME / 4 + 60 * 256))
  expect_stat recv refreshes 0
  expect_gone
  ;;

late | late-inline)
  # A receiver that joins mid-stream starts from a whole frame: the map
  # of its first frame is relative to one it never had.
  way "$case_name"
  bg first "$peer" recv --path "$path" --control "$control" --not-live \
    --check-damage --src-props "$props"
  ball 120 --live --control "$control"
  wait_log first "event=(string)connected"
  sleep 1.5
  bg late "$peer" recv --path "$path" --control "$control" --not-live --late \
    --check-damage --src-props "$props"
  expect_rc first 0
  expect_rc late 0
  expect_rc send 0
  expect_match first "RECEIVER frames=120 first=0 last=119 bad=0 gaps=0"
  expect_match late "RECEIVER frames=[1-9][0-9]* first=[1-9][0-9]* last=119 bad=0 gaps=0"
  damage_clean first
  damage_clean late
  ;;

gaps | gaps-inline)
  # A live receiver too slow for the stream misses frames: the frame
  # after a gap is never patched onto one it does not have.  In the area
  # its record's map covers the frames it missed, so it is patched all the
  # same; inline, the frames it drops patch its own buffer without being
  # pushed.
  way "$case_name"
  bg recv "$peer" recv --path "$path" --control "$control" --allow-gaps \
    --sleep-ms 70 --check-damage --src-props "$props"
  ball 90 --live --control "$control"
  expect_rc recv 0
  expect_rc send 0
  expect_match recv "RECEIVER frames=[1-9][0-9]* first=0 last=[0-9]+ bad=0 gaps=[1-9][0-9]* .* unmarked_gaps=0 "
  damage_clean recv
  # the frame after a gap is still patched: its map covers the frames
  # missed (in the area), or the frames dropped were applied all the same
  # (inline)
  got=$(grep -oE 'RECEIVER frames=[0-9]+' "$T/recv.log" | grep -oE '[0-9]+$')
  at_least recv frames-patched $((got / 2))
  ;;

caps-change | caps-change-inline)
  # The sender's caps change mid-stream: the first frame of the new caps
  # is whole, never patched onto a frame of the old ones.
  way "$case_name"
  bg recv "$peer" recv --path "$path" --control "$control" --expect 60 \
    --not-live --check-damage --src-props "$props"
  ball 60 --control "$control" --switch-at 30 --switch-caps \
    "video/x-raw,format=NV12,width=320,height=240,framerate=30/1"
  expect_rc recv 0
  expect_rc send 0
  expect_match recv "RECEIVER frames=60 first=0 last=59 bad=0 gaps=0 .* caps_changes=2 "
  damage_clean recv
  at_least recv frames-patched 50
  ;;

upstream)
  # A relay: shmsrc attaches the damage it gets to each buffer, and a
  # shmsink with damage=upstream passes it on to its own receivers, which
  # copy only the changed tiles; every frame checked at the end.
  bg recv "$peer" recv --path "$T/b" --expect 60 --not-live --check-damage \
    --src-props "read-mode=copy"
  bg relay gst-launch-1.0 -q shmsrc path="$P" is-live=false ! \
    shmsink path="$T/b" damage=upstream
  ball 60
  all_right 60
  expect_rc relay 0
  at_least recv frames-patched 55
  at_most recv bytes-copied $((FRAME + 59 * FRAME / 4))
  expect_gone
  expect_gone "$T/b"
  ;;

*)
  fail "unknown case $case_name"
  ;;
esac
[ -n "${KEEP_LOGS:-}" ] && cp -r "$T" "$KEEP_LOGS/$case_name"
echo "PASS: $case_name"

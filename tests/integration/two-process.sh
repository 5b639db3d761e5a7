#!/usr/bin/env bash
# gst-shm: tests that run a sender and a receiver in separate processes.
#
#   two-process.sh CASE BUILD_ROOT
#
# Needs SHM_PEER (tests/tools/shm-peer) and GST_SHM_PLUGIN_DIR in the
# environment (meson test sets them).  Every case checks that the area file
# and its socket are gone at the end.
set -u

case_name=$1
build_root=${2:-}
. "$(dirname "$0")/lib.sh"

case $case_name in
sender-first | receiver-first)
  if [ "$case_name" = sender-first ]; then
    bg send "$peer" send --path "$P" --frames 120
    wait_file "$P.sock"
    bg recv "$peer" recv --path "$P" --expect 120 --not-live \
      --require-zero-copy
  else
    bg recv "$peer" recv --path "$P" --expect 120 --not-live \
      --require-zero-copy
    sleep 0.5
    bg send "$peer" send --path "$P" --frames 120
  fi
  expect_rc recv 0
  expect_rc send 0
  expect_match recv "RECEIVER frames=120 first=0 last=119 bad=0 gaps=0 ts_bad=0 in_area=120"
  expect_match recv "event=\(string\)connected"
  same_caps send recv
  expect_stat send frames-zero-copy 120
  expect_stat send bytes-copied 0
  expect_stat recv frames-zero-copy 120
  expect_stat recv bytes-copied 0
  expect_gone
  ;;

sender-killed)
  # A sender killed with SIGKILL leaves its area and socket behind.  The
  # next sender on the path takes their place (the area's lock is free and
  # its header says a sink created it), even with bigger frames, and
  # removes both when it stops.
  bg send "$peer" send --path "$P" --frames 100000 --live --no-wait
  wait_area "$P"
  kill -KILL "$(pgrep -P "$(cat "$T/send.pid")")"
  rc send >/dev/null
  [ -e "$P" ] && [ -S "$P.sock" ] || fail "the killed sender left nothing"
  bg send2 "$peer" send --path "$P" --frames 30 --width 640 --height 480
  bg recv "$peer" recv --path "$P" --expect 30 --not-live
  expect_rc recv 0
  expect_rc send2 0
  expect_log send2 "left behind by a shmsink that did not stop"
  expect_match recv "RECEIVER frames=30 first=0 last=29 bad=0 gaps=0"
  expect_gone
  ;;

copy-path)
  bg send "$peer" send --path "$P" --frames 90 --copy
  bg recv "$peer" recv --path "$P" --expect 90 --not-live
  expect_rc recv 0
  expect_rc send 0
  expect_stat send frames-copied 90
  expect_stat send frames-zero-copy 0
  expect_stat send bytes-copied $((90 * 320 * 240 * 4))
  expect_log recv "bad=0 gaps=0 ts_bad=0 in_area=90"
  same_caps send recv
  expect_gone
  ;;

padded-strides)
  # I420 330 wide: the pool pads strides to 64 bytes; a downstream that
  # reads GstVideoMeta gets them in place, one that does not gets a copy in
  # the default layout.
  bg send "$peer" send --path "$P" --frames 40 --format I420 --width 330
  bg recv "$peer" recv --path "$P" --expect 40 --not-live --meta \
    --require-zero-copy
  expect_rc recv 0
  expect_rc send 0
  expect_stat recv frames-zero-copy 40
  expect_stat send frames-zero-copy 40
  same_caps send recv
  expect_gone
  bg send2 "$peer" send --path "$P" --frames 40 --format I420 --width 330
  bg recv2 "$peer" recv --path "$P" --expect 40 --not-live
  expect_rc recv2 0
  expect_rc send2 0
  expect_stat recv2 frames-copied 40
  expect_stat recv2 frames-zero-copy 0
  expect_log recv2 "bad=0 gaps=0 ts_bad=0 in_area=0"
  expect_gone
  ;;

two-slots-held)
  # Receivers that keep frames (last sample, a queue) never stall the
  # sender, even with an area of two slots.
  bg send "$peer" send --path "$P" --frames 300 --num-slots 2
  bg recv "$peer" recv --path "$P" --expect 300 --not-live --hold 1
  expect_rc recv 0
  expect_rc send 0
  expect_stat send frames-dropped 0
  expect_gone
  bg send2 "$peer" send --path "$P" --frames 300 --num-slots 2
  bg recv2 "$peer" recv --path "$P" --expect 300 --not-live --queue 100 \
    --sleep-ms 1
  expect_rc recv2 0
  expect_rc send2 0
  expect_stat send2 frames-dropped 0
  expect_log recv2 "bad=0 gaps=0"
  expect_gone
  ;;

slow-receiver-said)
  # A live receiver whose downstream is far too slow misses frames: the
  # sender skips it, and it sees the gaps; each side counts them and says
  # so once, with the reason.
  bg send "$peer" send --path "$P" --frames 90 --live --fps 60
  bg recv "$peer" recv --path "$P" --allow-gaps --sleep-ms 300
  expect_rc recv 0
  expect_rc send 0
  expect_log send "misses frames"
  expect_log send "it did not take them in time (too slow, or its downstream keeps them)"
  expect_log recv "are missing"
  expect_log recv "the sender skipped this receiver, which did not take its frames in time"
  [ "$(grep -c "misses frames" "$T/send.log")" = 1 ] ||
    fail "the sender said it more than once"
  [ "$(grep -c "are missing" "$T/recv.log")" = 1 ] ||
    fail "the receiver said it more than once"
  missed=$(stat_of recv frames-missed)
  [ -n "$missed" ] && [ "$missed" -gt 0 ] || fail "no frames-missed count"
  expect_gone
  ;;

fakesink-eos)
  # gst-launch-1.0 pipelines as users type them; fakesink keeps its last
  # sample (enable-last-sample=true), the area has two slots.
  check_our_plugin
  bg send gst-launch-1.0 videotestsrc num-buffers=100 \
    ! video/x-raw,format=BGRx,width=1280,height=720 \
    ! shmsink path="$P" num-slots=2 sync=false
  bg recv gst-launch-1.0 shmsrc path="$P" ! fakesink
  expect_rc send 0
  expect_rc recv 0
  expect_log recv "Got EOS from element"
  expect_gone
  ;;

readme)
  # The two lines of the README, with a frame count so that they end.
  check_our_plugin
  bg recv gst-launch-1.0 shmsrc path="$P" ! videoconvert ! fakesink
  sleep 0.3
  bg send gst-launch-1.0 videotestsrc is-live=true num-buffers=60 \
    ! video/x-raw,format=BGRx,width=1280,height=720 ! shmsink path="$P"
  expect_rc send 0
  expect_rc recv 0
  expect_log recv "Got EOS from element"
  expect_gone
  ;;

live-timestamps)
  # Live sender and receiver: PTS intervals kept to the nanosecond.  A
  # live receiver whose downstream falls behind (a loaded machine) drops
  # its oldest frames and marks the next DISCONT, and one that is not
  # playing yet drops what comes (the first frame may come before): allowed
  # here, as long as nearly all frames come and every timestamp is right.
  bg recv "$peer" recv --path "$P" --ts intervals --allow-gaps
  wait_started recv
  bg send "$peer" send --path "$P" --frames 45 --live
  expect_rc recv 0
  expect_rc send 0
  expect_match recv "RECEIVER frames=(4[0-5]) first=[0-5] last=44 bad=0 gaps=[0-5] ts_bad=0 "
  expect_log recv "unmarked_gaps=0"
  expect_gone
  ;;

plugin-wins)
  # gst-plugins-bad is installed and ships libgstshm.so with its own
  # shmsink; ours replaces it when found through GST_PLUGIN_PATH or the
  # per-user plugin dir.
  bad=$(env -u GST_PLUGIN_PATH_1_0 GST_REGISTRY_1_0=$T/reg-bad.bin \
    gst-inspect-1.0 shmsink | awk '/Filename/ { print $2 }')
  case $bad in
  "$plugin_dir"/* | "") fail "gst-plugins-bad's shmsink not found (got '$bad')" ;;
  */gstreamer-1.0/libgstshm.so) ;;
  *) fail "gst-plugins-bad's shmsink not found (got '$bad')" ;;
  esac
  check_our_plugin
  desc=$(gst-inspect-1.0 shmsink | grep -c 'token-verified')
  [ "$desc" -ge 1 ] || fail "gst-inspect does not show our shmsink"
  mkdir -p "$T/data/gstreamer-1.0/plugins"
  cp "$plugin_dir/libgstshm.so" "$T/data/gstreamer-1.0/plugins/"
  user=$(env -u GST_PLUGIN_PATH_1_0 XDG_DATA_HOME=$T/data \
    GST_REGISTRY_1_0=$T/reg-user.bin gst-inspect-1.0 shmsink \
    | awk '/Filename/ { print $2 }')
  [ "$user" = "$T/data/gstreamer-1.0/plugins/libgstshm.so" ] \
    || fail "per-user plugin dir: shmsink comes from '$user'"
  ;;

install)
  [ -n "$build_root" ] || fail "no build root"
  DESTDIR=$T/dest meson install -C "$build_root" --no-rebuild --quiet \
    >"$T/install.log" 2>&1 || fail "meson install failed"
  so=$(find "$T/dest" -path '*/gstreamer-1.0/libgstshm.so' | head -n1)
  [ -n "$so" ] || fail "no gstreamer-1.0/libgstshm.so installed"
  libdir=$(meson introspect "$build_root" --buildoptions \
    | python3 -c 'import json,sys; print([o["value"] for o in json.load(sys.stdin) if o["name"]=="libdir"][0])')
  case $so in
  */"$libdir"/gstreamer-1.0/libgstshm.so) ;;
  *) fail "installed at $so, not in <libdir>=$libdir/gstreamer-1.0" ;;
  esac
  f=$(GST_PLUGIN_PATH_1_0=$(dirname "$so") GST_REGISTRY_1_0=$T/reg-inst.bin \
    gst-inspect-1.0 shmsink | awk '/Filename/ { print $2 }')
  [ "$f" = "$so" ] || fail "installed plugin not used: '$f'"
  ;;

demo)
  # gst-shm-demo, as the README runs it, for a few seconds
  demo=${GST_SHM_DEMO:?}
  mkdir "$T/snap"
  bg demo "$demo" --path "$P" --duration 4 --snapshot-every 1 \
    --snapshot-dir "$T/snap" --size 640x360
  expect_rc demo 0
  expect_match demo "^frames [0-9]+  [0-9.]+ fps  [0-9.]+ GB/s  latency [0-9.]+ ms  zero-copy yes"
  expect_match demo "^summary: [1-9][0-9]* frames received in [0-9.]+ s: .* zero-copy yes, [1-9][0-9]* snapshots?"
  png=$(ls "$T"/snap/gst-shm-demo-*.png | head -n1)
  [ -n "$png" ] || fail "no snapshot"
  [ "$(head -c 8 "$png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] \
    || fail "$png is not a PNG"
  expect_gone
  ;;

*)
  echo "unknown case $case_name"
  exit 2
  ;;
esac

echo "PASS: $case_name"
exit 0

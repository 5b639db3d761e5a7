#!/usr/bin/env bash
# gst-shm: control channels other than the default unix socket, on this
# host: the in-band rings, TCP (zero-copy, and frames inline when the peers
# do not share memory), and PCI BAR paths on a sysfs-like tree of files.
#
#   control.sh CASE
set -u

case_name=$1
. "$(dirname "$0")/lib.sh"

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

magic_of() {
  head -c 8 "$1" | od -An -tx1 | tr -d ' \n'
}

# fake_device ADDR VENDOR DEVICE ENABLE: a PCI function under $T/sys
fake_device() {
  local d=$T/sys/bus/pci/devices/$1
  mkdir -p "$d"
  echo "$2" >"$d/vendor"
  echo "$3" >"$d/device"
  echo "$4" >"$d/enable"
  truncate -s 4M "$d/resource2"
  truncate -s 4M "$d/resource2_wc"
  chmod 755 "$T/sys" "$T/sys/bus" "$T/sys/bus/pci" "$T/sys/bus/pci/devices" "$d"
  echo "$d"
}

case $case_name in
ring)
  # No socket at all: the control messages go through the area.
  bg send "$peer" send --path "$P" --frames 90 --control ring \
    --sink-props "size=4194304"
  bg recv "$peer" recv --path "$P" --control ring --expect 90 --not-live \
    --require-zero-copy
  expect_rc recv 0
  expect_rc send 0
  expect_log recv "bad=0 gaps=0 ts_bad=0 in_area=90"
  expect_log recv "event=(string)connected, peer=(string)\"in-band\\ lane\\ 0\\ of\\ $P\""
  expect_stat send frames-zero-copy 90
  same_caps send recv
  [ ! -e "$P.sock" ] || fail "a socket was created"
  expect_gone
  ;;

ring-sender-killed)
  # No kernel tells a receiver on the in-band rings that its sender died:
  # the sender's heartbeat in the area stops, the receiver reports the
  # sender lost within peer-timeout, and takes up the next sender's frames
  # (a new session) in the same pipeline.
  bg send "$peer" send --path "$P" --frames 100000 --live --control ring \
    --sink-props "size=4194304"
  bg recv "$peer" recv --path "$P" --control ring --allow-gaps \
    --src-props "peer-timeout=1000000000"
  wait_log recv "event=(string)connected"
  sleep 0.5
  kill -KILL "$(pgrep -P "$(cat "$T/send.pid")")"
  rc send >/dev/null
  wait_log recv "event=(string)lost"
  expect_log recv "heartbeat\\ in\\ the\\ area\\ stopped"
  bg send2 "$peer" send --path "$P" --frames 60 --live --control ring \
    --sink-props "size=4194304"
  expect_rc recv 0
  expect_rc send2 0
  expect_log send2 "left behind by a shmsink that did not stop"
  expect_match recv "last=59 bad=0 .* unmarked_gaps=0 error=no"
  [ "$(grep -c "event=(string)connected" "$T/recv.log")" = 2 ] ||
    fail "the receiver did not connect to the second sender"
  expect_gone
  ;;

ring-waiting-says-why)
  # A receiver that waits says why after a few seconds: memory with no
  # area in it (a wrong BAR, or share=on missing), then an area whose
  # sender is dead; the next sender's frames still come.
  truncate -s 4M "$P"
  bg recv "$peer" recv --path "$P" --control ring --not-live
  wait_log recv "the memory holds no gst-shm area"
  expect_log recv "WARNING from src: Waiting for a sender at ring for 3 s"
  expect_log recv "(a wrong BAR, or QEMU's memory backend without share=on)"
  stop recv
  rc recv >/dev/null
  rm -f "$P"
  bg send "$peer" send --path "$P" --frames 100000 --live --control ring \
    --sink-props "size=4194304" --no-wait
  wait_area "$P"
  kill -KILL "$(pgrep -P "$(cat "$T/send.pid")")"
  rc send >/dev/null
  bg recv2 "$peer" recv --path "$P" --control ring --expect 30 --not-live \
    --src-props "peer-timeout=1000000000"
  wait_log recv2 "the area's session is stale"
  bg send2 "$peer" send --path "$P" --frames 30 --control ring \
    --sink-props "size=4194304"
  expect_rc recv2 0
  expect_rc send2 0
  expect_log recv2 "bad=0 gaps=0 ts_bad=0 in_area=30"
  expect_gone
  ;;

sender-waiting-says-why)
  # A sender that waits for its first receiver says so after a few
  # seconds, with the likely causes, on the unix socket and on the rings;
  # the receiver that comes then gets every frame.
  bg send "$peer" send --path "$P" --frames 30
  wait_log send "Waiting for a receiver at unix:$P.sock for 3 s (0 ready): no receiver has connected yet (start shmsrc with the same path)."
  bg recv "$peer" recv --path "$P" --expect 30 --not-live
  expect_rc recv 0
  expect_rc send 0
  expect_log recv "bad=0 gaps=0"
  expect_gone
  bg send2 "$peer" send --path "$P" --frames 30 --control ring \
    --sink-props "size=4194304"
  wait_log send2 "Waiting for a receiver at ring for 3 s (0 ready): no receiver has claimed an in-band lane of the area yet"
  expect_log send2 "its memory backend share=on)."
  bg recv2 "$peer" recv --path "$P" --control ring --expect 30 --not-live
  expect_rc recv2 0
  expect_rc send2 0
  expect_log recv2 "bad=0 gaps=0"
  expect_gone
  ;;

ring-existing-file)
  # A QEMU backing file: used as it is, left in place, no longer marked as
  # an area once the sender stops.  The receiver starts first.
  truncate -s 4M "$P"
  bg recv "$peer" recv --path "$P" --control ring --expect 60 --not-live \
    --require-zero-copy
  wait_started recv
  bg send "$peer" send --path "$P" --frames 60 --control ring
  expect_rc recv 0
  expect_rc send 0
  expect_log recv "bad=0 gaps=0 ts_bad=0 in_area=60"
  [ "$(stat -c %s "$P")" = 4194304 ] || fail "the file changed size"
  [ "$(magic_of "$P")" = 0000000000000000 ] || fail "magic still set"
  rm -f "$P"
  ;;

ring-two-receivers)
  bg send "$peer" send --path "$P" --frames 60 --control ring \
    --sink-props "size=4194304 min-receivers=2"
  bg recv1 "$peer" recv --path "$P" --control ring --expect 60 --not-live
  bg recv2 "$peer" recv --path "$P" --control ring --expect 60 --not-live
  expect_rc recv1 0
  expect_rc recv2 0
  expect_rc send 0
  expect_log recv1 "bad=0 gaps=0"
  expect_log recv2 "bad=0 gaps=0"
  expect_gone
  ;;

ring-empty-file)
  # An empty file is one a sender is creating (it gives it its size next):
  # a receiver waits for it instead of failing.
  : >"$P"
  bg recv "$peer" recv --path "$P" --control ring --expect 30 --not-live
  wait_started recv
  sleep 0.5
  [ ! -f "$T/recv.rc" ] || fail "the receiver gave up on an empty area file"
  rm -f "$P"
  bg send "$peer" send --path "$P" --frames 30 --control ring \
    --sink-props "size=4194304"
  expect_rc recv 0
  expect_rc send 0
  expect_log recv "bad=0 gaps=0 ts_bad=0 in_area=30"
  expect_gone
  ;;

ring-no-size)
  run sink gst-launch-1.0 videotestsrc num-buffers=1 \
    ! shmsink path="$P" control=ring
  expect_failed sink
  expect_log sink "control=ring needs an area of a known size before any caps: \"$P\" does not exist, so set the size property (bytes), or create the file first."
  expect_gone
  ;;

ring-mismatch)
  # The sender listens on its unix socket; a receiver told to use the rings
  # says why it waits, then gives up.
  bg send gst-launch-1.0 videotestsrc is-live=true \
    ! video/x-raw,width=320,height=240 ! shmsink path="$P" \
    wait-for-receiver=false
  wait_area "$P"
  run recv gst-launch-1.0 shmsrc path="$P" control=ring timeout=2000000000 \
    ! fakesink
  expect_failed recv
  expect_log recv "The area \"$P\" has no in-band control rings: its sender does not use control=ring (both sides need the same control); waiting."
  expect_log recv "No sender at ring after 2.0 s"
  stop send
  expect_rc send 0
  expect_gone
  ;;

tcp)
  # TCP control on one host: the memory is shared, frames stay in place.
  port=$(free_port)
  bg send "$peer" send --path "$P" --frames 60 \
    --control "tcp:127.0.0.1:$port"
  bg recv "$peer" recv --path "$P" --control "tcp:127.0.0.1:$port" \
    --expect 60 --not-live --require-zero-copy
  expect_rc recv 0
  expect_rc send 0
  expect_log recv "bad=0 gaps=0 ts_bad=0 in_area=60"
  expect_stat send frames-zero-copy 60
  expect_stat send frames-inline 0
  same_caps send recv
  expect_gone
  ;;

tcp-inline)
  # The receiver's path is not the sender's memory (as on another host):
  # the token check fails, frames travel inline, both sides warn.
  port=$(free_port)
  bg send "$peer" send --path "$P" --frames 60 --live \
    --control "tcp:127.0.0.1:$port"
  bg recv "$peer" recv --path "$T/elsewhere" \
    --control "tcp:127.0.0.1:$port" --expect 60 --not-live
  expect_rc recv 0
  expect_rc send 0
  expect_log recv "bad=0 gaps=0 ts_bad=0 in_area=0"
  expect_stat send frames-inline 60
  expect_stat recv frames-inline 60
  expect_log send "The sender's area \"$P\" and the receiver's area \"$T/elsewhere\" do not map the same memory: Could not open \"$T/elsewhere\": No such file or directory; frames go to tcp:127.0.0.1:"
  expect_log send "inline over the connection (set inline-fallback=false to make this an error)."
  expect_log recv "The sender's area \"$P\" and the receiver's area \"$T/elsewhere\" do not map the same memory: Could not open \"$T/elsewhere\": No such file or directory; frames come inline over the connection (set inline-fallback=false to make this an error)."
  same_caps send recv
  expect_gone
  [ ! -e "$T/elsewhere" ] || fail "the receiver created a file"
  ;;

tcp-inline-secret)
  # A listener that is not a loopback address gives frames inline only to
  # a receiver that proves the shared secret (never sent): without a
  # secret on the sender, nobody gets them; with one, a receiver without
  # it or with another one is refused, one with it gets every frame, and
  # a sender that does not know the receiver's secret is refused by it.
  port=$(free_port)
  bg send "$peer" send --path "$P" --frames 60 --live \
    --control "tcp:0.0.0.0:$port"
  bg recv "$peer" recv --path "$T/elsewhere" \
    --control "tcp:127.0.0.1:$port" --expect 60 --not-live
  expect_rc recv 1
  expect_log recv "The sender refused this receiver: frames inline over tcp:0.0.0.0:$port, which is not a loopback address, need a shared secret: set the same secret on shmsink and shmsrc (or listen on 127.0.0.1 or ::1)"
  wait_log send "Refused frames inline to receiver tcp:127.0.0.1:"
  stop send
  rc send >/dev/null
  expect_gone

  port=$(free_port)
  bg send2 "$peer" send --path "$P" --frames 60 --live \
    --control "tcp:0.0.0.0:$port" --sink-props "secret=s3cret"
  bg none "$peer" recv --path "$T/elsewhere" \
    --control "tcp:127.0.0.1:$port" --expect 60 --not-live
  expect_rc none 1
  expect_log none "The sender refused this receiver: this shmsink gives frames inline only to a receiver that proves the shared secret: set the same secret on shmsrc"
  bg wrong "$peer" recv --path "$T/elsewhere" \
    --control "tcp:127.0.0.1:$port" --expect 60 --not-live \
    --src-props "secret=wrong"
  expect_rc wrong 1
  expect_log wrong "The sender at tcp:127.0.0.1:$port answered the shared-secret challenge wrongly: its secret is not this receiver's; frames inline refused."
  bg recv2 "$peer" recv --path "$T/elsewhere" \
    --control "tcp:127.0.0.1:$port" --expect 60 --not-live \
    --src-props "secret=s3cret"
  expect_rc recv2 0
  expect_rc send2 0
  expect_log recv2 "bad=0 gaps=0 ts_bad=0 in_area=0"
  expect_stat recv2 frames-inline 60
  expect_log send2 "Refused frames inline to receiver tcp:127.0.0.1:"
  if grep -q s3cret "$T"/*.log; then
    fail "the secret appears in a log"
  fi
  expect_gone
  [ ! -e "$T/elsewhere" ] || fail "the receiver created a file"
  ;;

tcp-inline-paced)
  # A non-live receiver paces the sender inline as it does in shared
  # memory: a slow one (30 ms a frame) behind a sender as fast as it can
  # go still gets every frame.
  port=$(free_port)
  bg send "$peer" send --path "$P" --frames 40 --width 640 --height 480 \
    --control "tcp:127.0.0.1:$port" --sink-props "slot-timeout=20000000000"
  bg recv "$peer" recv --path "$T/elsewhere" --sleep-ms 30 \
    --control "tcp:127.0.0.1:$port" --expect 40 --not-live
  expect_rc recv 0
  expect_rc send 0
  expect_log recv "bad=0 gaps=0 ts_bad=0 in_area=0"
  expect_stat send frames-inline 40
  expect_stat send frames-skipped 0
  expect_gone
  ;;

tcp-inline-slow-receiver)
  # The receiver stops reading (SIGSTOP) while frames come inline and the
  # sender reaches its EOS: the sender waits for it to read what is queued
  # (skipping frames meanwhile) instead of stopping and losing its EOS.
  # (Frames of 3.7 MB: the sockets' kernel buffers cannot hold the rest of
  # the stream.)
  port=$(free_port)
  bg recv "$peer" recv --path "$T/elsewhere" --timeout 30 \
    --control "tcp:127.0.0.1:$port" --not-live --allow-gaps
  bg send "$peer" send --path "$P" --frames 45 --live \
    --width 1280 --height 720 --control "tcp:127.0.0.1:$port"
  wait_log recv "event=(string)connected"
  sleep 0.3
  kill -STOP "$(pgrep -P "$(cat "$T/recv.pid")")"
  sleep 3
  [ ! -f "$T/send.rc" ] || fail "the sender stopped before its receiver read the end of the stream"
  kill -CONT "$(pgrep -P "$(cat "$T/recv.pid")")"
  expect_rc recv 0
  expect_rc send 0
  # every frame sent arrived intact, then the EOS (the frames skipped while
  # the receiver was stopped are the last ones; a slow machine may skip
  # some earlier too)
  expect_match recv "bad=0 gaps=[0-9]+ .* eos=1"
  expect_match send "frames-skipped=\(guint64\)[1-9]"
  expect_stat recv frames-inline "$(stat_of send frames-inline)"
  expect_gone
  ;;

tcp-inline-off)
  # The same, with inline-fallback=false on either side: an error on the
  # receiver's side, a warning on the sender's (which goes on), each saying
  # that the two do not map the same memory.
  port=$(free_port)
  bg send "$peer" send --path "$P" --frames 60 \
    --control "tcp:127.0.0.1:$port" --sink-props "inline-fallback=false"
  bg recv "$peer" recv --path "$T/elsewhere" \
    --control "tcp:127.0.0.1:$port" --expect 60 --not-live
  expect_rc recv 1
  wait_log send "do not map the same memory"
  stop send
  expect_rc send 0
  expect_log send "The sender's area \"$P\" and the receiver's area \"$T/elsewhere\" do not map the same memory: Could not open \"$T/elsewhere\": No such file or directory"
  expect_log recv "do not map the same memory: Could not open"
  expect_gone
  port=$(free_port)
  bg send2 "$peer" send --path "$P" --frames 60 \
    --control "tcp:127.0.0.1:$port"
  bg recv2 "$peer" recv --path "$T/elsewhere" \
    --control "tcp:127.0.0.1:$port" --expect 60 --not-live \
    --src-props "inline-fallback=false timeout=3000000000"
  expect_rc recv2 1
  expect_log recv2 "Could not open \"$T/elsewhere\": No such file or directory"
  stop send2
  rc send2 >/dev/null
  expect_log send2 "Receiver tcp:127.0.0.1:"
  expect_gone
  ;;

bar-not-ivshmem)
  d=$(fake_device 0000:00:05.0 0x8086 0x100e 1)
  run src gst-launch-1.0 shmsrc path="$d/resource2_wc" ! fakesink
  expect_failed src
  expect_log src "\"$d/resource2_wc\" is a BAR of PCI device 0000:00:05.0, which is not an ivshmem device (vendor:device 8086:100e, expected 1af4:1110)."
  run sink gst-launch-1.0 videotestsrc num-buffers=1 \
    ! shmsink path="$d/resource2"
  expect_failed sink
  expect_log sink "which is not an ivshmem device"
  ;;

bar-disabled)
  # A disabled device that this user may not enable: the error says the
  # command to run.  (CI runs as root: the case runs as nobody.)
  d=$(fake_device 0000:00:04.0 0x1af4 0x1110 0)
  chmod 644 "$d/enable"
  export GST_REGISTRY_1_0=$T/registry-nobody.bin
  touch "$GST_REGISTRY_1_0"
  chmod 666 "$GST_REGISTRY_1_0"
  run src setpriv --reuid=nobody --regid=nogroup --clear-groups \
    env HOME="$T" gst-launch-1.0 shmsrc path="$d/resource2_wc" ! fakesink
  expect_failed src
  expect_log src "The ivshmem device 0000:00:04.0 is disabled and could not be enabled (Permission denied): run \"echo 1 > $d/enable\" as root."
  [ "$(cat "$d/enable")" = 0 ] || fail "enable changed"
  ;;

*)
  fail "unknown case $case_name"
  ;;
esac
echo "PASS: $case_name"

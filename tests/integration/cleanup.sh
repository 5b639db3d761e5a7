#!/usr/bin/env bash
# gst-shm: nothing left behind.
#
#   cleanup.sh
#
# Senders and receivers stopped every way a user stops them: by EOS, by
# SIGINT (gst-launch-1.0 with and without -e, shm-peer), by SIGTERM (a
# program that handles it stops cleanly; gst-launch-1.0 does not handle it
# and dies as if killed), and by SIGKILL followed by a new start on the
# path and a clean stop.  Areas directly in /dev/shm, in a directory of the
# test's own, with the socket in another directory, with the in-band rings
# and with TCP.  After each, the entries the test could have made (in
# /dev/shm, those named with its prefix; its own directories) are exactly
# those there were before: other tests run in /dev/shm at the same time.
set -u

. "$(dirname "$0")/lib.sh"

prefix=gst-shm-cleanup-$$-
# (a test that fails leaves nothing in /dev/shm either)
trap 'cleanup; rm -f /dev/shm/"$prefix"*' EXIT
mkdir "$T/a" "$T/sock"
chmod 700 "$T/a" "$T/sock"

snap() {
  {
    ls -A /dev/shm | grep -F -- "$prefix"
    echo "--- areas"
    ls -A "$T/a"
    echo "--- sockets"
    ls -A "$T/sock"
  } 2>&1
}
base=$(snap)

# same WHAT: the listing is as it was
same() {
  local now
  now=$(snap)
  [ "$now" = "$base" ] || fail "$1: left behind: $(diff <(echo "$base") \
    <(echo "$now") | grep '^>' | tr '\n' ' ')"
}

# the pid of NAME's process itself (not the timeout(1) around it)
child() {
  pgrep -P "$(cat "$T/$1.pid")"
}

n=0
caps=video/x-raw,format=BGRx,width=320,height=240,framerate=30/1

# run_case PATH CONTROL: every way to stop, with the area at PATH and
# shmsink's control=CONTROL ("" for the default socket beside the area)
run_case() {
  local p=$1 ctl=$2 sink_ctl=() src_ctl=() peer_ctl=() what
  if [ -n "$ctl" ]; then
    sink_ctl=(control="$ctl")
    src_ctl=(control="$ctl")
    peer_ctl=(--control "$ctl")
  fi
  [ "$ctl" = ring ] && sink_ctl+=(size=4194304) &&
    peer_ctl+=(--sink-props size=4194304)
  what="$p ${ctl:-unix}"

  # EOS: the sender's stream ends, the receiver takes the EOS
  n=$((n + 1))
  bg "r$n" gst-launch-1.0 -m shmsrc path="$p" "${src_ctl[@]}" ! fakesink
  bg "s$n" gst-launch-1.0 videotestsrc num-buffers=30 ! "$caps" \
    ! shmsink path="$p" "${sink_ctl[@]}"
  expect_rc "s$n" 0
  expect_rc "r$n" 0
  expect_log "r$n" "Got EOS from element"
  same "$what: EOS"

  # gst-launch-1.0 -e and SIGINT: an EOS goes to the receiver
  n=$((n + 1))
  bg "r$n" gst-launch-1.0 -m shmsrc path="$p" "${src_ctl[@]}" ! fakesink
  bg "s$n" gst-launch-1.0 -e videotestsrc is-live=true ! "$caps" \
    ! shmsink path="$p" "${sink_ctl[@]}"
  wait_log "r$n" "event=(string)connected"
  stop "s$n"
  expect_rc "s$n" 0
  expect_rc "r$n" 0
  expect_log "r$n" "Got EOS from element"
  same "$what: gst-launch-1.0 -e, SIGINT"

  # gst-launch-1.0 and SIGINT, the receiver first, then the sender
  n=$((n + 1))
  bg "r$n" gst-launch-1.0 -m shmsrc path="$p" "${src_ctl[@]}" ! fakesink
  bg "s$n" gst-launch-1.0 videotestsrc is-live=true ! "$caps" \
    ! shmsink path="$p" "${sink_ctl[@]}"
  wait_log "r$n" "event=(string)connected"
  stop "r$n"
  expect_rc "r$n" 0
  stop "s$n"
  expect_rc "s$n" 0
  same "$what: gst-launch-1.0, SIGINT"

  # SIGTERM to a program that handles it (shm-peer --handle-term): a
  # clean stop on both sides
  n=$((n + 1))
  bg "s$n" "$peer" send --path "$p" "${peer_ctl[@]}" --frames 100000 --live \
    --handle-term
  bg "r$n" "$peer" recv --path "$p" "${peer_ctl[@]}" --progress 10 \
    --handle-term
  wait_log "r$n" "PROGRESS frames=10 "
  kill -TERM "$(child "s$n")"
  expect_rc "s$n" 0
  kill -TERM "$(child "r$n")"
  rc "r$n" >/dev/null
  expect_log "r$n" INTERRUPTED
  same "$what: SIGTERM handled"

  # SIGTERM to gst-launch-1.0, SIGKILL to shm-peer: both die where they
  # are; a new sender on the path cleans up, and removes everything when
  # it stops
  for sig in TERM KILL; do
    n=$((n + 1))
    if [ "$sig" = TERM ]; then
      bg "s$n" gst-launch-1.0 videotestsrc is-live=true ! "$caps" \
        ! shmsink path="$p" "${sink_ctl[@]}"
    else
      bg "s$n" "$peer" send --path "$p" "${peer_ctl[@]}" --frames 100000 \
        --live
    fi
    bg "r$n" "$peer" recv --path "$p" "${peer_ctl[@]}" --progress 10 \
      --sessions
    wait_log "r$n" "PROGRESS frames=10 "
    kill -"$sig" "$(child "s$n")"
    rc "s$n" >/dev/null
    [ -e "$p" ] || fail "$what: SIG$sig: the sender stopped cleanly"
    # a receiver that is killed leaves nothing either
    kill -KILL "$(child "r$n")"
    rc "r$n" >/dev/null
    bg "s$n-again" "$peer" send --path "$p" "${peer_ctl[@]}" --frames 30
    bg "r$n-again" "$peer" recv --path "$p" "${peer_ctl[@]}" --expect 30 \
      --not-live
    expect_rc "s$n-again" 0
    expect_rc "r$n-again" 0
    if [ "$ctl" = ring ] || [ -z "$ctl" ]; then
      expect_log "s$n-again" "left behind by a shmsink that did not stop"
    fi
    same "$what: SIG$sig, then a new sender"
  done
}

run_case "/dev/shm/${prefix}area" ""
run_case "$T/a/area" ""
run_case "$T/a/area" "unix:$T/sock/control"
run_case "$T/a/area" ring
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
run_case "$T/a/area" "tcp:127.0.0.1:$port"

echo "PASS: cleanup ($n stops)"
exit 0

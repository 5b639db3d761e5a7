#!/usr/bin/env bash
# gst-shm: crash recovery, measured.
#
#   crash.sh CASE
#
#   unix, ring   rounds that alternate: the sender killed with SIGKILL at a
#                random point (a new sender on the same path reclaims its
#                stale area and socket, with bigger frames every other
#                time, and the receiver that stayed resumes), then the
#                receiver killed (the sender reports it lost and goes on;
#                a new receiver gets frames).  Every frame carries a
#                counter and a checksum that the receivers check.
#   qemu-file    a file that QEMU made (no "created by a sink" flag): a
#                sink killed on it leaves it, and the next sink uses it as
#                it is, never removes or resizes it
#   live-owner   the file of a sink that is alive (even a stopped process)
#                is never touched: a second sink fails, the first streams on
#
# ROUNDS=N runs N rounds (ROUNDS=100: the full run); by default the rounds
# go on for CRASH_SECONDS (30) per case, at least 2.
#
# Switches (1: on, 0: off):
#   CRASH_RING=1          the ring case's sender-kill rounds (a receiver
#                         sees a dead sender through the area's heartbeat)
#   CRASH_NOT_LIVE=0      non-live receivers in the rounds (below)
#   CRASH_QEMU_AT_ONCE=0  qemu-file: the next sink starts at once, before
#                         the receiver has seen the first one die
# The two that are off by default fail on known engine bugs
# (docs/testing.md); turn them on by default once those are fixed.
set -u

case_name=$1
. "$(dirname "$0")/lib.sh"

rounds=${ROUNDS:-0}
budget=${CRASH_SECONDS:-30}
# The ring case's sender-kill rounds need a receiver that detects a dead
# sender through the area's heartbeat (there is no connection to close).
ring_sender_kills=${CRASH_RING:-1}
# Receivers are non-live (is-live=false): they must get every frame of
# every session, from its first.  CRASH_NOT_LIVE=0 makes them live
# (shmsrc's default), where one that falls behind (a busy machine) may miss
# frames, marked DISCONT.
recv_live=(--allow-gaps)
gaps_re='gaps=[0-9]+'
if [ "${CRASH_NOT_LIVE:-1}" = 1 ]; then
  recv_live=(--not-live)
  gaps_re='gaps=0'
fi
# qemu-file: the next sink at once, or once the receiver saw the first die
qemu_at_once=${CRASH_QEMU_AT_ONCE:-1}

# child NAME: the pid of NAME's process itself (not the timeout(1) around it)
child() {
  pgrep -P "$(cat "$T/$1.pid")"
}

# count NAME REGEX: lines of NAME's output that match
count() {
  grep -cE -- "$2" "$T/$1.log" 2>/dev/null
}

# wait_count NAME REGEX N [SECONDS]: waits until N lines match
wait_count() {
  local i n
  for i in $(seq 1 $((${4:-30} * 20))); do
    n=$(count "$1" "$2")
    [ "${n:-0}" -ge "$3" ] && return 0
    sleep 0.05
  done
  fail "$1: ${n:-0} lines match '$2', waited for $3"
}

# alive NAME: NAME's process is still running
alive() {
  [ ! -f "$T/$1.rc" ] && kill -0 "$(child "$1")" 2>/dev/null
}

# rsleep MS: sleeps a random time below MS milliseconds
rsleep() {
  sleep "$(printf '0.%03d' $((RANDOM % $1)))"
}

# no_bad_frame NAME: NAME (a receiver, maybe killed) never pushed a frame
# with a wrong stamp or checksum, nor one out of sequence
no_bad_frame() {
  if grep -qE "bad stamp|^frame [0-9]+ after|starts at frame" "$T/$1.log"; then
    fail "$1 got a corrupted, torn or misplaced frame"
  fi
  if grep -E '^PROGRESS ' "$T/$1.log" \
    | grep -qvE " bad=0 $gaps_re unmarked_gaps=0 "; then
    fail "$1 counted bad frames"
  fi
}

inode_size() {
  stat -c '%i %s' "$1" 2>/dev/null
}

rounds_case() {
  local mode=$1 ctl=() sprops=() big_props small_props
  local round=0 ns=0 nr=0 s r n lost_before conn sessions old new
  local sender_kills=0 receiver_kills=0 grown=0
  local peer_ev='^PEER shm-peer, event=\(string\)'

  if [ "$mode" = ring ]; then
    ctl=(--control ring)
    small_props="size=4194304 peer-timeout=1000000000"
    big_props="size=8388608 peer-timeout=1000000000"
  else
    small_props="peer-timeout=1000000000"
    big_props=$small_props
  fi
  # a live sender, every other one with bigger frames (a bigger area)
  start_sender() {
    ns=$((ns + 1))
    if [ $((ns % 2)) = 0 ]; then
      bg "send$ns" "$peer" send --path "$P" "${ctl[@]}" --frames 1000000 \
        --live --fps 60 --width 640 --height 480 --sink-props "$big_props" \
        --eos-on-sigint
    else
      bg "send$ns" "$peer" send --path "$P" "${ctl[@]}" --frames 1000000 \
        --live --fps 60 --sink-props "$small_props" --eos-on-sigint
    fi
  }
  start_receiver() {
    nr=$((nr + 1))
    bg "recv$nr" "$peer" recv --path "$P" "${ctl[@]}" "${recv_live[@]}" \
      --sessions --late --progress 10 --src-props "peer-timeout=1000000000"
  }

  start_receiver
  wait_started "recv$nr"
  start_sender
  wait_log "recv$nr" "SESSION 1 first=0"
  wait_log "recv$nr" "PROGRESS frames=10 "

  while :; do
    if [ "$rounds" -gt 0 ]; then
      [ "$round" -ge "$rounds" ] && break
    else
      [ "$SECONDS" -ge "$budget" ] && [ "$round" -ge 2 ] && break
    fi
    round=$((round + 1))
    s=send$ns
    r=recv$nr
    if [ $((round % 2)) = 1 ]; then
      if [ "$mode" = ring ] && [ "$ring_sender_kills" = 0 ]; then
        continue
      fi
      # --- the sender dies at a random point: before, during or after
      # the handshake, between or in the middle of frames
      sessions=$(count "$r" '^SESSION ')
      wait_started "$s"
      rsleep 700
      old=$(inode_size "$P")
      kill -KILL "$(child "$s")"
      expect_rc "$s" 137
      sender_kills=$((sender_kills + 1))
      alive "$r" || fail "round $round: $r did not survive its sender's death"
      # a receiver that was connected reports the loss, and only that
      conn=$(count "$r" "${peer_ev}connected")
      wait_count "$r" "${peer_ev}lost" "$conn" 20
      [ "$(count "$r" "${peer_ev}left")" = 0 ] \
        || fail "round $round: $r says its killed sender left"
      [ "$mode" = ring ] || [ -S "$P.sock" ] || [ -z "$old" ] \
        || fail "round $round: the killed sender's socket is gone"
      # a new sender on the path takes the stale area's place
      start_sender
      s=send$ns
      if [ -n "$old" ]; then
        wait_log "$s" "left behind by a shmsink that did not stop"
      fi
      wait_count "$r" '^SESSION ' $((sessions + 1)) 20
      wait_count "$r" "${peer_ev}connected" $((conn + 1)) 20
      wait_area "$P"
      new=$(inode_size "$P")
      if [ -n "$old" ] && [ $((ns % 2)) = 0 ]; then
        [ "${new#* }" -gt "${old#* }" ] \
          || fail "round $round: the area did not grow ($old -> $new)"
        grown=$((grown + 1))
      fi
      n=$(($(count "$r" '^PROGRESS ') + 2))
      wait_count "$r" '^PROGRESS ' "$n" 20
      no_bad_frame "$r"
    else
      # --- the receiver dies at a random point while frames flow
      n=$(($(count "$r" '^PROGRESS ') + 1))
      wait_count "$r" '^PROGRESS ' "$n" 20
      lost_before=$(count "$s" "${peer_ev}lost")
      rsleep 500
      kill -KILL "$(child "$r")"
      expect_rc "$r" 137
      receiver_kills=$((receiver_kills + 1))
      no_bad_frame "$r"
      # the sender reports it lost and goes on
      wait_count "$s" "${peer_ev}lost" $((lost_before + 1)) 20
      alive "$s" || fail "round $round: $s did not survive its receiver's death"
      start_receiver
      r=recv$nr
      wait_log "$r" "SESSION 1 "
      wait_log "$r" "PROGRESS frames=20 "
      no_bad_frame "$r"
      alive "$s" || fail "round $round: $s stopped"
    fi
  done

  # a clean stop: EOS from the sender, the receiver takes it and ends
  stop "send$ns"
  expect_rc "send$ns" 0
  expect_rc "recv$nr" 0
  expect_match "recv$nr" "^RECEIVER .* bad=0 $gaps_re ts_bad=0 .* eos=1 "
  expect_log "recv$nr" "unmarked_gaps=0 "
  no_bad_frame "recv$nr"
  expect_gone
  echo "$mode: $round rounds ($sender_kills senders and $receiver_kills" \
    "receivers killed, $grown stale areas grown) in $SECONDS s"
}

case $case_name in
unix | ring)
  rounds_case "$case_name"
  ;;

qemu-file)
  # The backing file of an ivshmem device: made by QEMU (or truncate), so
  # its header has no "created by a sink" flag.  A sink killed on it
  # leaves its header behind; the next sink uses the file as it is.
  truncate -s 4M "$P"
  chmod 600 "$P"
  before=$(inode_size "$P")
  bg recv "$peer" recv --path "$P" --control ring --not-live --sessions \
    --progress 10 --src-props "peer-timeout=1000000000"
  wait_started recv
  bg send "$peer" send --path "$P" --control ring --frames 1000000 --live \
    --fps 60
  wait_log recv "PROGRESS frames=10 "
  kill -KILL "$(child send)"
  expect_rc send 137
  [ "$(inode_size "$P")" = "$before" ] || fail "the sink changed the file"
  # the next sink starts at once, or (until the engine handles that) once
  # the receiver has seen the first one die
  if [ "$qemu_at_once" = 0 ]; then
    wait_log recv "event=(string)lost"
  fi
  bg send2 "$peer" send --path "$P" --control ring --frames 40 --live
  expect_rc send2 0
  if grep -qF "left behind" "$T/send2.log"; then
    fail "the sink took a QEMU file for its own stale area"
  fi
  [ "$(inode_size "$P")" = "$before" ] \
    || fail "the file was replaced or resized: $before -> $(inode_size "$P")"
  if [ "$ring_sender_kills" != 0 ]; then
    expect_rc recv 0
    expect_match recv "^RECEIVER .* bad=0 gaps=0 ts_bad=0 .* eos=1 "
    expect_log recv "SESSION 2 first=0"
  else
    stop recv
    rc recv >/dev/null
  fi
  no_bad_frame recv
  # left in place, blank again (no magic)
  [ -e "$P" ] || fail "the QEMU file was removed"
  [ "$(head -c 8 "$P" | od -An -tx1 | tr -d ' ')" = 0000000000000000 ] \
    || fail "the stopped sink left its magic in the QEMU file"
  rm -f "$P"
  ;;

live-owner)
  # A sink that is alive owns its file: a second sink on the path fails
  # and changes nothing, also while the first is stopped (SIGSTOP: its
  # heartbeat stands still, but it holds its lock), and the first goes on
  # streaming every frame.
  for mode in unix ring; do
    ctl=()
    props=()
    [ "$mode" = ring ] && ctl=(--control ring) && props=(--sink-props \
      "size=4194304")
    bg "send-$mode" "$peer" send --path "$P" "${ctl[@]}" "${props[@]}" \
      --frames 240 --live --fps 60
    bg "recv-$mode" "$peer" recv --path "$P" "${ctl[@]}" --not-live \
      --expect 240 --progress 10
    wait_log "recv-$mode" "PROGRESS frames=10 "
    before=$(inode_size "$P")
    run "second-$mode" "$peer" send --path "$P" "${ctl[@]}" "${props[@]}" \
      --frames 10
    expect_rc "second-$mode" 1
    expect_log "second-$mode" "Another shmsink owns \"$P\""
    kill -STOP "$(child "send-$mode")"
    sleep 1.2
    run "third-$mode" "$peer" send --path "$P" "${ctl[@]}" "${props[@]}" \
      --frames 10
    kill -CONT "$(child "send-$mode")"
    expect_rc "third-$mode" 1
    expect_log "third-$mode" "Another shmsink owns \"$P\""
    [ "$(inode_size "$P")" = "$before" ] || fail "$mode: the area was touched"
    if [ "$mode" = unix ]; then
      [ -S "$P.sock" ] || fail "the first sink's socket was taken"
    fi
    expect_rc "send-$mode" 0
    expect_rc "recv-$mode" 0
    expect_match "recv-$mode" \
      "^RECEIVER frames=240 first=0 last=239 bad=0 gaps=0 ts_bad=0 "
    expect_gone
  done
  ;;

*)
  echo "unknown case $case_name"
  exit 2
  ;;
esac

echo "PASS: $case_name"
exit 0

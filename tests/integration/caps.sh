#!/usr/bin/env bash
# gst-shm: caps across the area: receivers' caps upstream, renegotiation
# both ways, several receivers, non-raw caps.  Every frame is checked.
#
#   caps.sh CASE
set -u

case_name=$1
. "$(dirname "$0")/lib.sh"

BGRX="video/x-raw,format=BGRx,width=320,height=240"
caps_of() {
  # the Nth (default first) caps line of a log
  grep '^CAPS ' "$T/$1.log" | sed -n "${2:-1}p"
}

case $case_name in
caps-upstream)
  # The receiver says NV12 640x360; the sender converts to it.
  bg send "$peer" send --path "$P" --frames 60 --convert
  bg recv "$peer" recv --path "$P" --expect 60 --not-live \
    --caps "video/x-raw,format=NV12,width=640,height=360"
  expect_rc recv 0
  expect_rc send 0
  case $(caps_of send) in
  *"format=(string)NV12, width=(int)640, height=(int)360"*) ;;
  *) fail "the sender did not convert: $(caps_of send)" ;;
  esac
  same_caps send recv
  expect_match recv "RECEIVER frames=60 first=0 last=59 bad=0 gaps=0"
  expect_gone
  ;;

renegotiate-sender-grow | renegotiate-sender-shrink)
  # The sender's caps change mid-stream (format and size).  Growing
  # replaces the area (a new session, a new handshake); shrinking keeps it.
  if [ "$case_name" = renegotiate-sender-grow ]; then
    new="video/x-raw,format=I420,width=640,height=480,framerate=30/1"
    sessions=2
  else
    new="video/x-raw,format=NV12,width=160,height=120,framerate=30/1"
    sessions=1
  fi
  bg recv "$peer" recv --path "$P" --expect 60 --not-live
  bg send "$peer" send --path "$P" --frames 60 --switch-at 30 \
    --switch-caps "$new"
  expect_rc recv 0
  expect_rc send 0
  expect_match recv "RECEIVER frames=60 first=0 last=59 bad=0 gaps=0 .* caps_changes=2 "
  expect_stat recv sessions $sessions
  expect_stat send sessions $sessions
  case $(caps_of recv 2) in
  *"$(echo "$new" | cut -d, -f2 | sed 's/format=/format=(string)/')"*) ;;
  *) fail "the receiver did not get the new caps: $(caps_of recv 2)" ;;
  esac
  expect_gone
  ;;

renegotiate-receiver)
  # The receiver's downstream now prefers NV12 640x360 (and still takes
  # the old caps): the sender follows without losing a frame.
  bg recv "$peer" recv --path "$P" --expect 90 --caps "$BGRX" --not-live \
    --switch-at 30 \
    --switch-caps "video/x-raw,format=NV12,width=640,height=360;$BGRX"
  wait_started recv
  bg send "$peer" send --path "$P" --frames 90 --live --free
  expect_rc recv 0
  expect_rc send 0
  expect_match recv "RECEIVER frames=90 first=0 last=89 bad=0 gaps=0 .* caps_changes=2 "
  case $(caps_of recv 2) in
  *"format=(string)NV12, width=(int)640, height=(int)360"*) ;;
  *) fail "no renegotiation: $(caps_of recv 2)" ;;
  esac
  expect_gone
  ;;

renegotiate-receiver-strict)
  # Its downstream now takes only NV12 640x360: frames already sent in the
  # old caps cannot go there and are dropped (marked DISCONT); every frame
  # that arrives is right.
  bg recv "$peer" recv --path "$P" --caps "$BGRX" --not-live --switch-at 30 \
    --switch-caps "video/x-raw,format=NV12,width=640,height=360" \
    --allow-gaps
  wait_started recv
  bg send "$peer" send --path "$P" --frames 90 --live --convert
  expect_rc recv 0
  expect_rc send 0
  expect_match recv "bad=0 .* caps_changes=2 .* unmarked_gaps=0 "
  got=$(grep -oE 'RECEIVER frames=[0-9]+' "$T/recv.log" | grep -oE '[0-9]+$')
  dropped=$(stat_of recv frames-dropped)
  [ $((got + dropped)) = 90 ] || fail "$got frames and $dropped dropped of 90"
  expect_gone
  ;;

several-receivers)
  # Three receivers; a live one falls far behind.  The other two (not live:
  # they want every frame) get every frame; the slow one is never waited
  # for: it misses frames (each gap marked DISCONT) but reads every frame
  # it gets correctly.
  bg fast1 "$peer" recv --path "$P" --expect 300 --not-live
  bg fast2 "$peer" recv --path "$P" --expect 300 --not-live
  bg slow "$peer" recv --path "$P" --sleep-ms 30 --allow-gaps
  bg send "$peer" send --path "$P" --frames 300 \
    --sink-props "min-receivers=3"
  expect_rc send 0
  expect_rc fast1 0
  expect_rc fast2 0
  expect_rc slow 0
  expect_match fast1 "RECEIVER frames=300 first=0 last=299 bad=0 gaps=0"
  expect_match fast2 "RECEIVER frames=300 first=0 last=299 bad=0 gaps=0"
  expect_match slow "bad=0 .* unmarked_gaps=0 "
  gaps=$(grep -oE 'RECEIVER .* gaps=[0-9]+' "$T/slow.log" | grep -oE '[0-9]+$')
  [ "$gaps" -gt 0 ] || fail "the slow receiver missed no frame"
  expect_stat send frames-dropped 0
  expect_gone
  ;;

receivers-intersect)
  # What both accept: I420.
  bg r1 "$peer" recv --path "$P" --expect 40 --not-live \
    --caps "video/x-raw,format={NV12,I420}"
  bg r2 "$peer" recv --path "$P" --expect 40 --not-live \
    --caps "video/x-raw,format={BGRx,I420}"
  bg send "$peer" send --path "$P" --frames 40 --convert \
    --sink-props "min-receivers=2"
  expect_rc send 0
  expect_rc r1 0
  expect_rc r2 0
  case $(caps_of send) in
  *"format=(string)I420"*) ;;
  *) fail "not I420: $(caps_of send)" ;;
  esac
  same_caps r1 r2
  expect_gone
  ;;

receivers-disagree)
  # Nothing in common: a clear error naming each receiver's caps.  (The
  # receivers give up 1 s after the sender is gone.)
  bg send "$peer" send --path "$P" --frames 40 --convert \
    --sink-props "min-receivers=2"
  wait_file "$P.sock"
  bg r1 "$peer" recv --path "$P" --caps "video/x-raw,format=NV12" \
    --src-props "timeout=1000000000"
  bg r2 "$peer" recv --path "$P" --caps "video/x-raw,format=BGRx" \
    --src-props "timeout=1000000000"
  expect_rc send 1
  expect_match send "ERROR from sink: The receivers accept no common caps: process [0-9]+ accepts video/x-raw, format=\(string\)(NV12|BGRx); process [0-9]+ accepts video/x-raw, format=\(string\)(BGRx|NV12)\."
  rc r1 >/dev/null
  rc r2 >/dev/null
  expect_gone
  ;;

late-receiver)
  # A receiver that joins a running BGRx stream but takes only NV12 is
  # refused; the stream goes on for the first receiver.
  bg first "$peer" recv --path "$P" --expect 150 --caps "$BGRX" --not-live
  wait_started first
  bg send "$peer" send --path "$P" --frames 150 --live
  for i in $(seq 1 100); do
    grep -q '^CAPS' "$T/first.log" && break
    sleep 0.1
  done
  run late "$peer" recv --path "$P" --caps "video/x-raw,format=NV12"
  expect_rc late 1
  expect_log late "the running stream's caps video/x-raw, format=(string)BGRx, width=(int)320, height=(int)240"
  expect_log late "are not among those this receiver accepts (video/x-raw, format=(string)NV12)"
  expect_rc send 0
  expect_rc first 0
  expect_match first "RECEIVER frames=150 first=0 last=149 bad=0 gaps=0"
  expect_match send "event=\(string\)refused"
  expect_gone
  ;;

non-raw-jpeg | non-raw-vp8)
  # Encoded frames cross byte for byte, and shmsrc hands out a private copy
  # (downstream parses them).
  if [ "$case_name" = non-raw-jpeg ]; then enc=jpegenc; else
    enc="vp8enc deadline=1 keyframe-max-dist=10"
  fi
  bg recv "$peer" recv --path "$P" --expect 30 --not-live
  bg send "$peer" send --path "$P" --frames 30 --format I420 --encode "$enc"
  expect_rc recv 0
  expect_rc send 0
  grep '^SENT ' "$T/send.log" | cut -d' ' -f2- >"$T/sent.txt"
  grep '^GOT ' "$T/recv.log" | cut -d' ' -f2- >"$T/got.txt"
  [ "$(wc -l <"$T/sent.txt")" = 30 ] || fail "sent $(wc -l <"$T/sent.txt")"
  cmp -s "$T/sent.txt" "$T/got.txt" || fail "frames differ: $(diff "$T/sent.txt" "$T/got.txt" | head -n 4)"
  expect_match recv "in_area=0 "
  expect_stat recv frames-copied 30
  expect_gone
  ;;

*)
  echo "unknown case $case_name"
  exit 2
  ;;
esac

echo "PASS: $case_name"
exit 0

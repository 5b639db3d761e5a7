#!/usr/bin/env bash
# gst-shm: runs one scenario of this directory on one side (sender or
# receiver) with gst-shm-validate, starts, stops and restarts the peers
# around it, and checks the outcome: the scenario passed, frames arrived
# whole and in order, caps and EOS as expected, files gone.
#
#   run-scenario.sh NAME
#
# The same files run with a real gst-validate-1.0 (GStreamer 1.22):
#   gst-validate-1.0 --set-scenario=NAME.scenario PIPELINE
set -u

name=$1
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../integration/lib.sh"
validate=${GST_SHM_VALIDATE:?}
scenario=$here/$name.scenario

CAPS="video/x-raw,format=BGRx,width=320,height=240,framerate=30/1"
SENDER="videotestsrc is-live=true pattern=ball ! capsfilter name=cf caps=$CAPS ! shmsink name=sink path=$P"

passed() {
  expect_rc "$1" 0
  expect_log "$1" "Test PASSED (Return value: 0)"
}

case $name in
play_to_eos)
  bg scen "$validate" --set-scenario="$scenario" --check-stamps=sink \
    --min-frames=60 --expect-eos \
    "shmsrc path=$P is-live=false ! fakesink name=sink"
  bg send "$peer" send --path "$P" --frames 60
  passed scen
  expect_rc send 0
  expect_log scen "FRAMES frames=60 bad=0 gaps=0 caps-changes=1 eos=1"
  ;;

pause_resume)
  bg recv "$peer" recv --path "$P"
  wait_started recv
  bg scen "$validate" --set-scenario="$scenario" --stamp=sink "$SENDER"
  passed scen
  expect_rc recv 0
  expect_match recv "RECEIVER frames=[1-9][0-9]* first=0 .* bad=0 gaps=0 .* eos=1"
  ;;

sender_restart)
  bg scen "$validate" --set-scenario="$scenario" --check-stamps=sink \
    --allow-gaps --min-frames=60 --expect-eos \
    "shmsrc path=$P ! fakesink name=sink"
  bg send1 "$peer" send --path "$P" --frames 3000 --live
  wait_log send1 "event=(string)connected"
  sleep 1
  stop send1
  expect_rc send1 0
  bg send2 "$peer" send --path "$P" --frames 60 --live
  passed scen
  expect_rc send2 0
  expect_match scen "FRAMES frames=[0-9]+ bad=0 gaps=[0-9]+ caps-changes=1 eos=1"
  expect_log scen "reason=(string)\"shmsink\\ stopped\""
  ;;

receiver_restart)
  bg scen "$validate" --set-scenario="$scenario" --stamp=sink "$SENDER"
  wait_log scen 'Executing `wait`'
  bg recv1 "$peer" recv --path "$P" --not-live --exit-after 20
  expect_rc recv1 0
  expect_match recv1 "RECEIVER frames=20 first=0 last=19 bad=0 gaps=0"
  bg recv2 "$peer" recv --path "$P" --not-live --late
  passed scen
  expect_rc recv2 0
  expect_match recv2 "RECEIVER frames=[1-9][0-9]* first=[0-9]+ .* bad=0 gaps=0 .* eos=1"
  ;;

caps_change)
  bg recv "$peer" recv --path "$P" --not-live
  wait_started recv
  bg scen "$validate" --set-scenario="$scenario" --stamp=sink "$SENDER"
  passed scen
  expect_rc recv 0
  expect_match recv "RECEIVER frames=[1-9][0-9]* first=0 .* bad=0 gaps=0 .* eos=1 caps_changes=2 "
  expect_match recv "^CAPS video/x-raw, format=\(string\)I420, width=\(int\)640, height=\(int\)480"
  expect_stat recv sessions 2
  ;;

late_receiver)
  bg send "$peer" send --path "$P" --frames 150 --live
  bg first "$peer" recv --path "$P" --not-live --expect 150
  wait_log first "CAPS "
  sleep 1
  bg scen "$validate" --set-scenario="$scenario" --check-stamps=sink \
    --min-frames=1 --expect-eos \
    "shmsrc path=$P is-live=false ! fakesink name=sink signal-handoffs=true"
  passed scen
  expect_rc send 0
  expect_rc first 0
  expect_match scen "FRAMES frames=[1-9][0-9]* bad=0 gaps=0 caps-changes=1 eos=1"
  ;;

two_receivers)
  bg r1 "$peer" recv --path "$P" --not-live
  bg r2 "$peer" recv --path "$P" --not-live
  wait_started r1
  wait_started r2
  bg scen "$validate" --set-scenario="$scenario" --stamp=sink \
    "$SENDER min-receivers=2"
  passed scen
  expect_rc r1 0
  expect_rc r2 0
  n1=$(grep -oE 'RECEIVER frames=[0-9]+' "$T/r1.log")
  n2=$(grep -oE 'RECEIVER frames=[0-9]+' "$T/r2.log")
  [ "$n1" = "$n2" ] || fail "receivers got different frames: $n1 / $n2"
  expect_match r1 "RECEIVER frames=[1-9][0-9]* first=0 .* bad=0 gaps=0 .* eos=1"
  expect_match r2 "RECEIVER frames=[1-9][0-9]* first=0 .* bad=0 gaps=0 .* eos=1"
  ;;

*)
  echo "unknown scenario $name"
  exit 2
  ;;
esac

expect_gone
echo "PASS: $name"
exit 0

#!/usr/bin/env bash
# gst-shm-validate fails where gst-validate-1.0 fails: a scenario it cannot
# load (exit 238, "Bail out!"), a failed action, actions never executed
# (exit 18).
set -u
validate=${GST_SHM_VALIDATE:?}
export GST_PLUGIN_PATH_1_0=${GST_SHM_PLUGIN_DIR:?}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export GST_REGISTRY_1_0=$T/registry.bin

fail() { echo "FAIL: $*"; cat "$T/out" 2>/dev/null; exit 1; }

check() {
  # check NAME RC TEXT SCENARIO-TEXT
  printf '%s\n' "$4" >"$T/$1.scenario"
  timeout 30 "$validate" --set-scenario="$T/$1.scenario" \
    videotestsrc is-live=true num-buffers=30 ! fakesink name=sink >"$T/out" 2>&1
  rc=$?
  [ "$rc" = "$2" ] || fail "$1: exit $rc, expected $2"
  grep -qF -- "$3" "$T/out" || fail "$1: no line with: $3"
}

check unknown 238 "Unknown action type: 'frobnicate'" \
  "meta, summary=x
frobnicate, playback-time=1.0"
check mandatory 238 "Mandatory field 'state' not present" \
  "meta, summary=x
set-state, playback-time=0.1"
check syntax 238 "Invalid structure" \
  "meta, summary=x
wait, duration=(double"
check failed-check 18 "<sink>::sync expected value: '(gboolean)true' different than observed: '(gboolean)false'" \
  "meta, summary=x
check-property, target-element-name=sink, property-name=sync, property-value=true
stop"
check not-ended 18 "1 actions were not executed" \
  "meta, summary=x
set-property, playback-time=1000.0, target-element-name=sink, property-name=sync, property-value=true"
check passes 0 "Test PASSED (Return value: 0)" \
  "meta, summary=x
check-property, target-element-name=sink, property-name=sync, property-value=false
wait, duration=0.2
stop"
echo "PASS: runner-errors"

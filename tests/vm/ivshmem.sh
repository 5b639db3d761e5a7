#!/usr/bin/env bash
# gst-shm: host <-> guest and guest <-> guest through a QEMU ivshmem-plain
# device, in real (TCG) guests that run this build tree's plugin.
#
#   ivshmem.sh CASE BUILD_ROOT
#
# The guests boot Debian's own kernel (tests/vm/guest-prepare.sh) and see
# the host's / read-only over 9p; the device's BAR is
# /sys/bus/pci/devices/0000:00:04.0/resource2_wc.  Every frame's content is
# checked by shm-peer.  Under TCG timings mean nothing: only correctness is
# checked.
set -u

case_name=$1
build_root=$2
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../integration/lib.sh"

cache=${GST_SHM_TEST_CACHE:-$build_root/vm-cache}
runs=$build_root/vm-runs
BAR=/sys/bus/pci/devices/0000:00:04.0/resource2_wc
# the host's backing file (the guests' /dev/shm is their own)
F=$T/ivshmem

"$here/guest-prepare.sh" "$cache" >"$T/prepare.log" 2>&1 ||
  fail "guest-prepare.sh failed: $(cat "$T/prepare.log")"
mkdir -p "$runs"

# A full plugin scan takes many seconds under TCG: the guests get a registry
# made here, outside /dev/shm so that they see it.
reg=$(mktemp "$runs/registry-XXXXXX.bin")
trap 'cleanup; rm -f "$reg"' EXIT
GST_REGISTRY_1_0=$reg gst-inspect-1.0 shmsrc >/dev/null 2>&1 ||
  fail "could not make the guests' registry"

# guest NAME [guest-run.sh options] -- COMMAND...: COMMAND in a guest, in the
# background (its output and exit status as with bg)
guest() {
  local name=$1
  shift
  bg "$name" "$here/guest-run.sh" --cache "$cache" --workdir "$runs" \
    --ro "$build_root" --timeout 55 --env GST_REGISTRY_1_0="$reg" --env GST_REGISTRY_UPDATE=no \
    --env GST_PLUGIN_PATH_1_0="$plugin_dir" "$@"
}

magic_cleared() {
  [ "$(head -c 8 "$F" | od -An -tx1 | tr -d ' \n')" = 0000000000000000 ] ||
    fail "the area header of $F is still marked"
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

case $case_name in
host-to-guest)
  # The host's sender uses the backing file QEMU maps; no network at all:
  # control over the rings in the area.  The guest copies frames out of
  # the write-combined BAR by default, or reads them in place.
  truncate -s 16M "$F"
  bg send "$peer" send --path "$F" --control ring --frames 60
  guest recv --ivshmem "$F:16M" -- "$peer" recv --path "$BAR" --expect 60 \
    --not-live
  expect_rc recv 0
  expect_rc send 0
  expect_log recv "PLUGIN $plugin_dir/libgstshm.so"
  expect_log recv "RECEIVER frames=60 first=0 last=59 bad=0 gaps=0 ts_bad=0"
  expect_stat recv frames-copied 60
  expect_stat send frames-zero-copy 60
  same_caps send recv
  magic_cleared

  bg send2 "$peer" send --path "$F" --control ring --frames 40 \
    --format NV12 --width 640 --height 360
  guest recv2 --ivshmem "$F:16M" -- "$peer" recv --path "$BAR" --expect 40 \
    --not-live --meta --require-zero-copy --src-props read-mode=in-place
  expect_rc recv2 0
  expect_rc send2 0
  expect_log recv2 "RECEIVER frames=40 first=0 last=39 bad=0 gaps=0 ts_bad=0 in_area=40"
  same_caps send2 recv2
  magic_cleared
  ;;

host-to-guest-damage)
  # A ball on a still background with damage=compute: the guest copies
  # out of the write-combined BAR (read-mode=auto) only the tiles that
  # changed, into buffers of its own that hold an earlier frame; every
  # frame's pixels are checked, and its damage metas cover every pixel
  # that changed.
  truncate -s 16M "$F"
  bg send "$peer" send --path "$F" --control ring --frames 60 \
    --sink-props "damage=compute"
  guest recv --ivshmem "$F:16M" -- "$peer" recv --path "$BAR" --expect 60 \
    --not-live --check-damage
  expect_rc recv 0
  expect_rc send 0
  expect_log recv "RECEIVER frames=60 first=0 last=59 bad=0 gaps=0 ts_bad=0"
  expect_match recv "^DAMAGE frames=60 rects=[0-9]+ nothing=[0-9]+ missing=0 outside=0"
  expect_stat recv frames-copied 60
  expect_stat send damage-frames 60
  patched=$(stat_of recv frames-patched)
  [ "${patched:-0}" -ge 50 ] || fail "only ${patched:-0} of 60 frames patched"
  # 320x240 BGRx: the first frame whole, then a fraction of each
  copied=$(stat_of recv bytes-copied)
  [ "${copied:-0}" -le $((307200 + 59 * 307200 / 2)) ] ||
    fail "copied $copied bytes out of the BAR"
  same_caps send recv
  magic_cleared
  ;;

guest-to-host)
  # The guest sends through its BAR; its device starts disabled and the
  # element enables it.
  truncate -s 16M "$F"
  guest send --ivshmem "$F:16M" -- sh -c "echo 0 >${BAR%/*}/enable &&
    echo ENABLE-BEFORE=\$(cat ${BAR%/*}/enable) &&
    $peer send --path $BAR --frames 60; rc=\$?;
    echo ENABLE-AFTER=\$(cat ${BAR%/*}/enable); exit \$rc"
  bg recv "$peer" recv --path "$F" --control ring --expect 60 --not-live \
    --require-zero-copy
  expect_rc recv 0
  expect_rc send 0
  expect_log send "ENABLE-BEFORE=0"
  expect_log send "ENABLE-AFTER=1"
  expect_log recv "RECEIVER frames=60 first=0 last=59 bad=0 gaps=0 ts_bad=0 in_area=60"
  expect_stat send frames-zero-copy 60
  same_caps send recv
  magic_cleared
  ;;

guest-to-guest)
  # Two guests on one backing file, no network, nothing on the host.
  truncate -s 16M "$F"
  guest send --ivshmem "$F:16M" -- "$peer" send --path "$BAR" --frames 60
  guest recv --ivshmem "$F:16M" -- "$peer" recv --path "$BAR" --expect 60 \
    --not-live
  expect_rc recv 0
  expect_rc send 0
  expect_log recv "RECEIVER frames=60 first=0 last=59 bad=0 gaps=0 ts_bad=0"
  expect_stat recv frames-copied 60
  expect_stat send frames-zero-copy 60
  expect_log recv "peer=(string)\"in-band\\ lane\\ 0\\ of\\ $BAR\""
  same_caps send recv
  magic_cleared
  ;;

tcp)
  # Control over TCP through a QEMU port forward (the guest listens); the
  # host receiver that maps the backing file reads in place, one whose
  # path is not that memory gets the frames inline, with a warning, once
  # it proved the shared secret (the guest listens on every address).
  truncate -s 16M "$F"
  port=$(free_port)
  guest send --ivshmem "$F:16M" --net "hostfwd=tcp:127.0.0.1:$port-:5000" \
    -- "$peer" send --path "$BAR" --frames 60 --live --control \
    tcp:0.0.0.0:5000 --sink-props "min-receivers=2 secret=vm-test"
  bg recv "$peer" recv --path "$F" --control "tcp:127.0.0.1:$port" \
    --expect 60 --not-live --require-zero-copy
  bg recv2 "$peer" recv --path "$T/not-shared" \
    --control "tcp:127.0.0.1:$port" --expect 60 --not-live \
    --src-props "secret=vm-test"
  expect_rc recv 0
  expect_rc recv2 0
  expect_rc send 0
  expect_log recv "RECEIVER frames=60 first=0 last=59 bad=0 gaps=0 ts_bad=0 in_area=60"
  expect_log recv2 "RECEIVER frames=60 first=0 last=59 bad=0 gaps=0 ts_bad=0 in_area=0"
  expect_stat recv2 frames-inline 60
  expect_stat send frames-inline 60
  expect_log recv2 "frames come inline over the connection"
  expect_log send "frames go to tcp:10.0.2.2:"
  same_caps send recv
  same_caps send recv2
  ;;

guest-bad-input)
  # A BAR smaller than the frames need, and a BAR of a device that is not
  # an ivshmem device, each a clear error in the guest.
  truncate -s 1M "$F"
  guest bad --ivshmem "$F:1M" -- sh -c "
    for d in /sys/bus/pci/devices/*; do
      [ \"\$(cat \$d/vendor):\$(cat \$d/device)\" = 0x1af4:0x1110 ] && continue
      [ -e \$d/resource0 ] && { other=\$d/resource0; break; }
    done
    echo OTHER=\$other
    gst-launch-1.0 shmsrc path=\$other ! fakesink
    echo SRC-RC=\$?
    $peer send --path ivshmem:0 --frames 5 --width 1280 --height 720 --no-wait
    echo SEND-RC=\$?"
  expect_rc bad 0
  expect_match bad "OTHER=/sys/bus/pci/devices/.*/resource0"
  expect_match bad "is a BAR of PCI device [0-9a-f:.]+, which is not an ivshmem device \(vendor:device [0-9a-f]{4}:[0-9a-f]{4}, expected 1af4:1110\)"
  expect_match bad "SRC-RC=(1|255)"
  expect_log bad "SEND-RC=1"
  expect_log bad "ERROR from sink: \"$BAR\" is too small: its slots hold frames of 36864 bytes, video/x-raw, format=(string)BGRx, width=(int)1280, height=(int)720"
  expect_log bad "needs 3686400; 4 slots of it need an area of 15642624 bytes"
  ;;

demo)
  # gst-shm-demo as docs/ivshmem.md runs it: the sender on the host, the
  # receiver in the guest on the BAR.
  demo=${GST_SHM_DEMO:?}
  truncate -s 16M "$F"
  bg send "$demo" --role sender --path "$F" --control ring --size 320x240 \
    --fps 30 --duration 30 --no-window
  guest recv --ivshmem "$F:16M" -- "$demo" --role receiver --path "$BAR" \
    --duration 6 --no-snapshots --no-window
  expect_rc recv 0
  expect_match recv "^summary: [1-9][0-9]* frames received in [0-9.]+ s: .* zero-copy in the area, copied out of the BAR once \(read-mode=auto\)"
  # Ctrl-C, as a user stops it
  kill -INT "$(pgrep -P "$(cat "$T/send.pid")")"
  expect_rc send 0
  expect_match send "^summary: [1-9][0-9]* frames sent"
  magic_cleared
  ;;

*)
  fail "unknown case $case_name"
  ;;
esac
rm -f "$reg"
echo "PASS: $case_name"

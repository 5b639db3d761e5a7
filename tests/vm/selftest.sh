#!/bin/bash
# shellcheck disable=SC2016  # the single-quoted scripts run in the guest
# selftest.sh BUILD_DIR: check that guest-prepare.sh and guest-run.sh work.
#
# Uses BUILD_DIR/vm-cache (or $VMRUN_CACHE) for the kernel and initramfs,
# BUILD_DIR/vm-runs for per-run directories and compiles BUILD_DIR/vmtool.
#   0  boot-run-poweroff of `true`, exit status and output passing, timing
#   a  host -> guest -> host through an ivshmem-plain device
#   b  two guests at once on one ivshmem backing file (handshake)
#   c  networking: guest -> host listener via 10.0.2.2, and host -> guest
#      listener via a hostfwd port
#   d  (if gst-launch-1.0 is installed) a GStreamer pipeline in the guest
#      with a registry prepared on the host
# Exit 0 when all pass.  Everything created in /dev/shm is removed.
set -u

here=$(cd "$(dirname "$0")" && pwd)
[ $# -eq 1 ] || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
mkdir -p "$1" || exit 2
build=$(cd "$1" && pwd -P)
cache=${VMRUN_CACHE:-$build/vm-cache}
runs=$build/vm-runs
run="$here/guest-run.sh"

"$here/guest-prepare.sh" "$cache" || { echo "selftest: guest-prepare.sh failed" >&2; exit 1; }
command -v gcc >/dev/null 2>&1 ||
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q gcc >/dev/null 2>&1 ||
    { echo "selftest: gcc is missing and could not be installed" >&2; exit 1; }
tool=$build/vmtool
gcc -O2 -Wall -Wextra -o "$tool" "$here/vmtool.c" || { echo "selftest: compiling vmtool failed" >&2; exit 1; }

tmp=$(mktemp -d "$build/vm-selftest.XXXXXX")
shm=/dev/shm/vmselftest-$$-ivshmem
pids=
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    rm -f "$shm"
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

pass=0 fail=0
ok() { echo "ok - $*"; pass=$((pass + 1)); }
bad() { echo "not ok - $*"; fail=$((fail + 1)); }
now() { date +%s%N; }
ms() { echo $((($2 - $1) / 1000000)); }
# (the build directory shared explicitly: it may lie below /tmp, which is
# guest-local)
gr() { "$run" --cache "$cache" --workdir "$runs" --ro "$build" --timeout 120 "$@"; }

cd "$build" || exit 1

# ---------------------------------------------------------------- 0: basics
t0=$(now)
gr -- true
rc=$?
t1=$(now)
boot_ms=$(ms "$t0" "$t1")
out=$(gr --env "X=it's  two" -- sh -c 'printf "%s|%s|" "$X" "$(pwd)"; echo to-stderr >&2; exit 42')
rc2=$?
if [ $rc -eq 0 ] && [ $rc2 -eq 42 ] && [ "$out" = "it's  two|$build|to-stderr" ]; then
    ok "0: boot-run-poweroff of 'true' took ${boot_ms} ms; env, cwd, output and exit status pass through"
else
    bad "0: basics (rc=$rc, rc2=$rc2, output '$out')"
fi

# ------------------------------------------------- a: host <-> guest ivshmem
truncate -s 1M "$shm"
"$tool" write "$shm" 4096 "host-to-guest-$$"
mkdir -p "$tmp/rw"
t0=$(now)
out=$(gr --ivshmem "$shm:1M" --rw "$tmp/rw" -- sh -c '
    "$0" check "$VMRUN_IVSHMEM" 4096 "host-to-guest-$1" &&
    "$0" write "$VMRUN_IVSHMEM" 8192 "guest-to-host-$1" &&
    echo "written in the guest" >"$2/from-guest" && echo guest-ok' "$tool" $$ "$tmp/rw" 2>&1)
rc=$?
t1=$(now)
if [ $rc -eq 0 ] && [ "$out" = guest-ok ] && "$tool" check "$shm" 8192 "guest-to-host-$$" &&
    [ "$(cat "$tmp/rw/from-guest" 2>/dev/null)" = "written in the guest" ]; then
    ok "a: host -> guest -> host through ivshmem (and a --rw directory), $(ms "$t0" "$t1") ms"
else
    bad "a: ivshmem host <-> guest (rc=$rc, output: $out)"
fi

# ----------------------------------------- b: two guests on one backing file
"$tool" zero "$shm" 0 1048576
t0=$(now)
# B announces itself, waits for A's data, acknowledges.
gr --ivshmem "$shm:1M" -- sh -c '
    "$0" write "$VMRUN_IVSHMEM" 65536 "B-ready-$1" &&
    "$0" wait "$VMRUN_IVSHMEM" 131072 "A-data-$1" 90000 &&
    "$0" write "$VMRUN_IVSHMEM" 196608 "B-ack-$1" && echo B-ok' "$tool" $$ >"$tmp/b.out" 2>&1 &
bpid=$!
pids="$pids $bpid"
# A waits until B runs, writes, waits for B's acknowledgement.
outa=$(gr --ivshmem "$shm:1M" -- sh -c '
    "$0" wait "$VMRUN_IVSHMEM" 65536 "B-ready-$1" 90000 &&
    "$0" write "$VMRUN_IVSHMEM" 131072 "A-data-$1" &&
    "$0" wait "$VMRUN_IVSHMEM" 196608 "B-ack-$1" 90000 && echo A-ok' "$tool" $$ 2>&1)
rca=$?
wait "$bpid"
rcb=$?
t1=$(now)
if [ $rca -eq 0 ] && [ $rcb -eq 0 ] && [ "$outa" = A-ok ] && [ "$(cat "$tmp/b.out")" = B-ok ] &&
    "$tool" check "$shm" 196608 "B-ack-$$"; then
    ok "b: guest A <-> guest B handshake on one ivshmem file, $(ms "$t0" "$t1") ms for both"
else
    bad "b: guest <-> guest (A rc=$rca: $outa; B rc=$rcb: $(cat "$tmp/b.out"))"
fi
rm -f "$shm"

# ---------------------------------------------------------- c: networking
t0=$(now)
"$tool" listen 127.0.0.1 0 "$tmp/port" 120 host-reply >"$tmp/listen.out" 2>&1 &
lpid=$!
pids="$pids $lpid"
for _ in $(seq 100); do [ -s "$tmp/port" ] && break; sleep 0.1; done
hport=$(cat "$tmp/port" 2>/dev/null)
fport=$("$tool" freeport)
# The guest sends to the host listener, then serves one connection itself.
gr --net "hostfwd=tcp:127.0.0.1:$fport-:7000" -- sh -c '
    "$0" send 10.0.2.2 "$1" "guest-to-host" 30 && echo &&
    "$0" listen 0.0.0.0 7000 - 60 guest-reply' "$tool" "$hport" >"$tmp/c.out" 2>&1 &
gpid=$!
pids="$pids $gpid"
hout=$("$tool" send 127.0.0.1 "$fport" host-to-guest 90)
hrc=$?
wait "$gpid"
grc=$?
wait "$lpid"
t1=$(now)
expect_c=$(printf 'host-reply\nhost-to-guest')
if [ $hrc -eq 0 ] && [ $grc -eq 0 ] && [ "$hout" = guest-reply ] &&
    [ "$(cat "$tmp/listen.out")" = guest-to-host ] && [ "$(cat "$tmp/c.out")" = "$expect_c" ]; then
    ok "c: guest -> host (10.0.2.2:$hport) and host -> guest (hostfwd 127.0.0.1:$fport), $(ms "$t0" "$t1") ms"
else
    bad "c: networking (host send rc=$hrc '$hout'; guest rc=$grc: $(cat "$tmp/c.out"); listener: $(cat "$tmp/listen.out"))"
fi

# -------------------------------------------------------- d: GStreamer
if command -v gst-launch-1.0 >/dev/null 2>&1; then
    reg=$tmp/registry.bin
    GST_REGISTRY=$reg gst-inspect-1.0 >/dev/null 2>&1
    t0=$(now)
    out=$(gr --env GST_REGISTRY="$reg" --env GST_REGISTRY_UPDATE=no -- \
        gst-launch-1.0 -q videotestsrc num-buffers=30 ! videoconvert ! fakesink 2>&1)
    rc=$?
    t1=$(now)
    if [ $rc -eq 0 ]; then
        ok "d: gst-launch-1.0 pipeline in the guest with a host-prepared registry, $(ms "$t0" "$t1") ms"
    else
        bad "d: gst-launch-1.0 in the guest (rc=$rc: $out)"
    fi
else
    echo "ok - d: skipped (gst-launch-1.0 not installed) # SKIP"
fi

echo "selftest: $pass passed, $fail failed"
[ $fail -eq 0 ]

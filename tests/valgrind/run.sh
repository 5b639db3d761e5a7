#!/usr/bin/env bash
# gst-shm: a sender and a receiver, each in its own process under valgrind
# memcheck, exchange frames; any memory error or definite leak fails.
#
#   run.sh CASE
#
#   unix        shm-peer to shm-peer, control through the unix socket
#   ring        the same through the in-band rings
#   tcp-inline  TCP control, the receiver's path is not the sender's
#               memory: frames travel inline over the connection
#   gst-launch  gst-launch-1.0 pipelines (videotestsrc ! shmsink,
#               shmsrc ! videoconvert ! fakesink), stopped by EOS
#   two-process/NAME, control/NAME, damage/NAME
#               that case of tests/integration/two-process.sh,
#               control.sh or damage.sh, with every shm-peer under
#               memcheck
#
# Needs SHM_PEER and GST_SHM_PLUGIN_DIR (meson test sets them).  VALGRIND
# overrides the valgrind command; VALGRIND_FRAMES (30) the frames sent.
set -u

case_name=$1
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../integration/lib.sh"

command -v "${VALGRIND:-valgrind}" >/dev/null || {
  echo "SKIP: no valgrind"
  exit 77
}
# an AddressSanitizer build does not run under valgrind
if ldd "$plugin_dir/libgstshm.so" "$peer" 2>/dev/null | grep -q libasan; then
  echo "SKIP: AddressSanitizer build"
  exit 77
fi

frames=${VALGRIND_FRAMES:-30}
supp=(--suppressions="$here/gst-shm.supp")
[ -f /usr/share/glib-2.0/valgrind/glib.supp ] &&
  supp+=(--suppressions=/usr/share/glib-2.0/valgrind/glib.supp)
vg=("${VALGRIND:-valgrind}" --tool=memcheck --error-exitcode=99
  --leak-check=full --errors-for-leak-kinds=definite
  --show-leak-kinds=definite --num-callers=40 "${supp[@]}")

# GLib hands memory back to malloc (no slices, no recycled blocks), and
# the registry is built once, outside valgrind; no fork to scan it.
export G_SLICE=always-malloc G_DEBUG=gc-friendly
export GST_REGISTRY_FORK=no
# the plugins these pipelines use, and no others
export GST_PLUGIN_LOADING_WHITELIST="gstreamer:gst-plugins-base:gst-shm@$plugin_dir"
gst-inspect-1.0 shmsink >/dev/null 2>&1 || fail "no shmsink"
check_our_plugin
export GST_REGISTRY_UPDATE=no

# vgrun NAME CMD...: CMD under memcheck, in the background
vgrun() {
  local name=$1
  shift
  bg "$name" "${vg[@]}" --log-file="$T/$name.vg" "$@"
}

# clean NAME...: each NAME ended with status 0 and valgrind found nothing
# in it (its status is 99 otherwise)
clean() {
  local n got bad=
  for n in "$@"; do
    got=$(rc "$n")
    if [ "$got" != 0 ] || ! grep -q "ERROR SUMMARY: 0 errors" "$T/$n.vg"; then
      echo "--- $T/$n.vg (exit status $got)"
      grep -E '^==[0-9]+== ' "$T/$n.vg" | sed -n '/Invalid \|uninitialised\|definitely lost in\|overlap\|Mismatched free/,/^==[0-9]*== $/p' | head -300
      grep -E 'ERROR SUMMARY' "$T/$n.vg"
      bad="$bad $n"
    fi
  done
  [ -z "$bad" ] || fail "memcheck:$bad"
}

case $case_name in
unix)
  vgrun send "$peer" send --path "$P" --frames "$frames"
  vgrun recv "$peer" recv --path "$P" --expect "$frames" --not-live \
    --require-zero-copy
  clean recv send
  expect_match recv "RECEIVER frames=$frames first=0 last=$((frames - 1)) bad=0 gaps=0 ts_bad=0 in_area=$frames"
  expect_gone
  ;;

ring)
  vgrun send "$peer" send --path "$P" --frames "$frames" --control ring \
    --sink-props "size=4194304"
  vgrun recv "$peer" recv --path "$P" --control ring --expect "$frames" \
    --not-live --require-zero-copy
  clean recv send
  expect_match recv "RECEIVER frames=$frames first=0 last=$((frames - 1)) bad=0 gaps=0 ts_bad=0 in_area=$frames"
  expect_gone
  ;;

tcp-inline)
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  vgrun send "$peer" send --path "$P" --frames "$frames" \
    --control "tcp:127.0.0.1:$port"
  vgrun recv "$peer" recv --path "$T/elsewhere" \
    --control "tcp:127.0.0.1:$port" --expect "$frames" --not-live \
   
  clean recv send
  expect_match recv "RECEIVER frames=$frames first=0 last=$((frames - 1)) bad=0 gaps=0 ts_bad=0 in_area=0"
  expect_stat recv frames-inline "$frames"
  expect_gone
  ;;

gst-launch)
  vgrun recv gst-launch-1.0 shmsrc path="$P" ! videoconvert ! fakesink
  wait_log recv "Setting pipeline to PLAYING"
  vgrun send gst-launch-1.0 videotestsrc num-buffers="$frames" \
    ! video/x-raw,format=I420,width=320,height=240 ! shmsink path="$P"
  clean send recv
  expect_log recv "Got EOS from element"
  expect_gone
  ;;

two-process/* | control/* | damage/*)
  # a case of the integration tests, its shm-peer processes under memcheck
  # (one log each; a process that the test kills on purpose writes no
  # summary)
  mkdir "$T/vg"
  VG_PEER=$peer VG_LOG_DIR=$T/vg VG_OPTS="${vg[*]:1}" \
    SHM_PEER=$here/shm-peer-vg timeout 600 \
    bash "$here/../integration/${case_name%%/*}.sh" "${case_name#*/}" \
    >"$T/inner.log" 2>&1
  inner=$?
  n=0
  bad=
  for f in "$T"/vg/*.vg; do
    [ -f "$f" ] || continue
    grep -q "ERROR SUMMARY" "$f" || continue
    n=$((n + 1))
    if ! grep -q "ERROR SUMMARY: 0 errors" "$f"; then
      echo "--- $f"
      grep -E '^==[0-9]+== ' "$f" | sed -n '/Invalid \|uninitialised\|definitely lost in\|overlap\|Mismatched free/,/^==[0-9]*== $/p' | head -300
      bad="$bad $(basename "$f")"
    fi
  done
  [ -z "$bad" ] || fail "memcheck:$bad"
  [ "$inner" = 0 ] || fail "${case_name#*/} failed under valgrind"
  [ "$n" -ge 2 ] || fail "only $n processes ran to their end under valgrind"
  ;;

*)
  echo "unknown case $case_name"
  exit 2
  ;;
esac

echo "PASS: $case_name"
exit 0

#!/usr/bin/env bash
# gst-shm: what a user gets wrong, run as the user runs it, each error
# checked by its message.
#
#   bad-input.sh CASE
set -u

case_name=$1
. "$(dirname "$0")/lib.sh"

SEND_CAPS="video/x-raw,format=BGRx,width=320,height=240,framerate=30/1"

sender() {
  # a sender whose area exists before any receiver: it does not wait for
  # one (wait-for-receiver=false), its frames go nowhere until one is there
  bg "$1" gst-launch-1.0 videotestsrc is-live=true ! "$SEND_CAPS" \
    ! shmsink path="$2" wait-for-receiver=false "${@:3}"
}

case $case_name in
no-path)
  run sink gst-launch-1.0 videotestsrc num-buffers=1 ! shmsink
  expect_failed sink
  expect_log sink 'No path set: set the "path" property'
  run src gst-launch-1.0 shmsrc ! fakesink
  expect_failed src
  expect_log src 'No path set: set the "path" property'
  ;;

no-directory)
  run sink gst-launch-1.0 videotestsrc num-buffers=1 \
    ! shmsink path="$T/missing/area"
  expect_failed sink
  expect_log sink "Directory \"$T/missing\" does not exist"
  run src gst-launch-1.0 shmsrc path="$T/missing/area" ! fakesink
  expect_failed src
  expect_log src "Directory \"$T/missing\" does not exist"
  ;;

permission-denied)
  # CI runs as root: the case runs as an unprivileged user.
  command -v setpriv >/dev/null || fail "setpriv missing"
  mkdir "$T/rootonly"
  chmod 755 "$T/rootonly"
  export GST_REGISTRY_1_0=$T/registry-nobody.bin
  touch "$GST_REGISTRY_1_0"
  chmod 666 "$GST_REGISTRY_1_0"
  run sink setpriv --reuid=nobody --regid=nogroup --clear-groups \
    env HOME="$T" gst-launch-1.0 videotestsrc num-buffers=1 \
    ! shmsink path="$T/rootonly/area"
  expect_failed sink
  expect_log sink "Could not create \"$T/rootonly/area\": Permission denied."
  # a receiver that may not open the sender's area (mode 0600, root's)
  export GST_REGISTRY_1_0=$T/registry.bin
  sender root "$P"
  wait_area "$P"
  export GST_REGISTRY_1_0=$T/registry-nobody.bin
  run src setpriv --reuid=nobody --regid=nogroup --clear-groups \
    env HOME="$T" gst-launch-1.0 shmsrc path="$P" timeout=3000000000 \
    ! fakesink
  expect_failed src
  expect_log src "Could not connect to the sender at unix:$P.sock"
  expect_log src "Permission denied"
  stop root
  expect_rc root 0
  expect_gone
  ;;

second-sink)
  sender first "$P"
  wait_area "$P"
  run second gst-launch-1.0 videotestsrc num-buffers=1 ! shmsink path="$P"
  expect_failed second
  expect_log second "Another shmsink owns \"$P\""
  [ -S "$P.sock" ] || fail "the first sink's socket was taken"
  # before the first sink has caps, its socket is what answers
  bg early gst-launch-1.0 appsrc is-live=true ! shmsink path="$T/early"
  wait_file "$T/early.sock"
  run second2 gst-launch-1.0 videotestsrc num-buffers=1 \
    ! shmsink path="$T/early"
  expect_failed second2
  expect_log second2 "Another shmsink owns \"$T/early\": its control socket answers."
  stop first
  expect_rc first 0
  expect_gone
  stop early
  rc early >/dev/null
  expect_gone "$T/early"
  ;;

too-small)
  # (the error comes with the caps, in the streaming thread: gst-launch-1.0
  # 1.22 can miss an error posted before its main loop runs, so this case
  # runs the pipeline from a program with a bus watch)
  truncate -s 400000 "$P"
  run sink "$peer" send --path "$P" --frames 1 --no-wait
  expect_rc sink 1
  expect_log sink "\"$P\" is too small: its slots hold frames of 8192 bytes, video/x-raw"
  expect_log sink "needs 307200; 4 slots of it need an area of 1593344 bytes"
  [ "$(stat -c %s "$P")" = 400000 ] || fail "the file was resized"
  ;;

foreign-file)
  printf 'precious user data\n' >"$P"
  truncate -s 4000000 "$P"
  run sink gst-launch-1.0 videotestsrc num-buffers=1 ! "$SEND_CAPS" \
    ! shmsink path="$P"
  expect_failed sink
  expect_log sink "\"$P\" exists and does not hold a gst-shm area; refusing to overwrite it"
  head -c 18 "$P" | grep -q 'precious user data' || fail "file overwritten"
  ;;

symlink)
  ln -s "$T/target" "$P"
  run sink gst-launch-1.0 videotestsrc num-buffers=1 ! "$SEND_CAPS" \
    ! shmsink path="$P"
  expect_failed sink
  expect_log sink "\"$P\" is a symbolic link; symbolic links are refused unless allow-symlink is set"
  [ ! -e "$T/target" ] || fail "the link was followed"
  # allowed on request
  bg send gst-launch-1.0 videotestsrc num-buffers=10 ! "$SEND_CAPS" \
    ! shmsink path="$P" allow-symlink=true
  bg recv gst-launch-1.0 shmsrc path="$P" allow-symlink=true ! fakesink
  [ "$(rc send)" = 0 ] || fail "allow-symlink=true sender failed"
  [ "$(rc recv)" = 0 ] || fail "allow-symlink=true receiver failed"
  ;;

token-copy)
  # The receiver maps a copy of the sender's area: a valid area with the
  # same header, but not the same memory.  The receiver fails, the sender
  # warns (naming both) and goes on: one receiver never stops it.
  sender send "$P"
  wait_area "$P"
  cp "$P" "$T/copy"
  run recv gst-launch-1.0 shmsrc path="$T/copy" control="unix:$P.sock" \
    ! fakesink
  expect_failed recv
  want="The sender's area \"$P\" and the receiver's area \"$T/copy\" do not map the same memory"
  expect_log recv "$want"
  wait_log send "$want"
  stop send
  expect_rc send 0
  expect_gone
  ;;

token-other-area)
  # Two senders, two valid areas; the receiver maps the wrong one.
  sender send "$P"
  sender other "$T/other"
  wait_area "$P"
  wait_area "$T/other"
  run recv gst-launch-1.0 shmsrc path="$T/other" control="unix:$P.sock" \
    ! fakesink
  expect_failed recv
  want="The sender's area \"$P\" and the receiver's area \"$T/other\" do not map the same memory"
  expect_log recv "$want"
  wait_log send "$want"
  stop send
  expect_rc send 0
  stop other
  expect_rc other 0
  expect_gone
  expect_gone "$T/other"
  ;;

bad-magic | bad-version)
  sender send "$P"
  wait_area "$P"
  cp "$P" "$T/bad"
  if [ "$case_name" = bad-magic ]; then
    printf 'NOTSHM!!' | dd of="$T/bad" conv=notrunc status=none
    want='does not hold a gst-shm area (magic 0x21214d4853544f4e'
  else
    printf '\x03\x00\x00\x00' | dd of="$T/bad" bs=1 seek=8 conv=notrunc \
      status=none
    want="\"$T/bad\" holds a gst-shm area of version 3; this version of gst-shm reads version 2"
  fi
  run recv gst-launch-1.0 shmsrc path="$T/bad" control="unix:$P.sock" \
    ! fakesink
  expect_failed recv
  expect_log recv "$want"
  # the sender is told, warns and goes on
  wait_log send "$want"
  stop send
  expect_rc send 0
  expect_gone
  ;;

no-sender)
  run src gst-launch-1.0 shmsrc path="$P" timeout=1000000000 ! fakesink
  expect_failed src
  expect_log src "No sender at unix:$P.sock after 1.0 s: start a shmsink with path=$P"
  ;;

*)
  echo "unknown case $case_name"
  exit 2
  ;;
esac

[ ! -e "$P.sock" ] || fail "socket $P.sock left behind"
echo "PASS: $case_name"
exit 0

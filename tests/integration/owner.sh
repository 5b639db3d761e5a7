#!/usr/bin/env bash
# gst-shm: who may use an area and its socket.  Another local user (nobody,
# through setpriv) squats the path before the sink, makes its own files,
# and connects; each refusal is checked by its message.  Runs as root, as
# CI does.
#
#   owner.sh CASE
set -u

case_name=$1
. "$(dirname "$0")/lib.sh"

SEND_CAPS="video/x-raw,format=BGRx,width=320,height=240,framerate=30/1"

[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (to run as another user)"; exit 77; }
command -v setpriv >/dev/null || fail "setpriv missing (util-linux)"

# a directory every user may create files in, as /dev/shm itself
D=$T/shared
mkdir "$D"
chmod 1777 "$D"
NOBODY_REGISTRY=$D/registry-nobody.bin

# "${as_nobody[@]}" CMD...: CMD as user nobody, group nogroup, with no
# supplementary groups and a registry of its own; as_outsider: the same
# user in group users
as_nobody=(setpriv --reuid=nobody --regid=nogroup --clear-groups
  env HOME="$D" GST_REGISTRY_1_0="$NOBODY_REGISTRY")
as_outsider=(setpriv --reuid=nobody --regid=users --clear-groups
  env HOME="$D" GST_REGISTRY_1_0="$NOBODY_REGISTRY")
as_daemon=(setpriv --reuid=daemon --regid=daemon --clear-groups
  env HOME="$D" GST_REGISTRY_1_0="$D/registry-daemon.bin")

# owner_mode FILE: "MODE USER GROUP"
owner_mode() {
  stat -c '%a %U %G' "$1"
}

expect_untouched() {
  [ "$(owner_mode "$1")" = "$2" ] || fail "$1 is now $(owner_mode "$1")"
  [ "$(stat -c %s "$1")" = "$3" ] || fail "$1 changed size"
  [ ! -e "$1.sock" ] || fail "a socket was created beside $1"
}

case $case_name in
squat-blank)
  # nobody creates the path first, blank and open to everyone: the sink
  # must not adopt it (nobody would read the header, tokens and frames)
  "${as_nobody[@]}" sh -c "umask 0; : >'$D/x'"
  [ "$(owner_mode "$D/x")" = "666 nobody nogroup" ] || fail "setup"
  run sink gst-launch-1.0 videotestsrc num-buffers=1 ! "$SEND_CAPS" \
    ! shmsink path="$D/x"
  expect_failed sink
  expect_log sink "\"$D/x\" belongs to user nobody (uid 65534) with mode 0666: shmsink uses an existing file only when it belongs to root, its own user; remove it or choose another path"
  expect_untouched "$D/x" "666 nobody nogroup" 0
  ;;

squat-private)
  "${as_nobody[@]}" sh -c "umask 077; : >'$D/x'; truncate -s 4M '$D/x'"
  run sink gst-launch-1.0 videotestsrc num-buffers=1 ! "$SEND_CAPS" \
    ! shmsink path="$D/x"
  expect_failed sink
  expect_log sink "\"$D/x\" belongs to user nobody (uid 65534) with mode 0600: shmsink uses an existing file only when it belongs to root, its own user"
  expect_untouched "$D/x" "600 nobody nogroup" 4194304
  # a sink of a third user is told the same, not "permission denied"
  run sink2 "${as_daemon[@]}" gst-launch-1.0 videotestsrc num-buffers=1 \
    ! "$SEND_CAPS" \
    ! shmsink path="$D/x"
  expect_failed sink2
  expect_log sink2 "\"$D/x\" belongs to user nobody (uid 65534) with mode 0600: shmsink uses an existing file only when it belongs to its own user (daemon, uid 1) or root"
  expect_untouched "$D/x" "600 nobody nogroup" 4194304
  ;;

own-too-open)
  # the sink's own file, but readable by everyone: mode=0600 did not ask
  # for that
  "${as_nobody[@]}" sh -c "umask 022; : >'$D/own'; truncate -s 4M '$D/own'"
  run sink "${as_nobody[@]}" gst-launch-1.0 videotestsrc num-buffers=1 \
    ! "$SEND_CAPS" ! shmsink path="$D/own"
  expect_failed sink
  expect_log sink "\"$D/own\" belongs to user nobody (uid 65534) with mode 0644: shmsink uses an existing file only when it gives no more access than mode=0600"
  expect_untouched "$D/own" "644 nobody nogroup" 4194304
  # asked for: used, and left in place
  run sink2 "${as_nobody[@]}" gst-launch-1.0 videotestsrc num-buffers=5 \
    ! "$SEND_CAPS" ! shmsink path="$D/own" mode=0644 wait-for-receiver=false
  expect_rc sink2 0
  expect_untouched "$D/own" "644 nobody nogroup" 4194304
  ;;

root-file)
  # root made it (as QEMU running as root makes its backing file): used as
  # it is, with a warning when it gives more than the mode
  truncate -s 4M "$P"
  chmod 644 "$P"
  run sink gst-launch-1.0 videotestsrc num-buffers=5 ! "$SEND_CAPS" \
    ! shmsink path="$P" wait-for-receiver=false
  expect_rc sink 0
  expect_log sink "\"$P\" belongs to user root (uid 0) with mode 0644, more access than mode=0600: shmsink uses a file that root made as it is"
  expect_untouched "$P" "644 root root" 4194304
  chmod 600 "$P"
  run sink2 gst-launch-1.0 videotestsrc num-buffers=5 ! "$SEND_CAPS" \
    ! shmsink path="$P" wait-for-receiver=false
  expect_rc sink2 0
  grep -q "more access than" "$T/sink2.log" && fail "warned about mode 0600"
  rm -f "$P"
  ;;

group)
  # mode=0660 group=nogroup: a receiver of another user in that group gets
  # the frames; one outside it may not connect
  bg send "$peer" send --path "$P" --frames 60 --live \
    --sink-props "mode=0660 group=nogroup"
  wait_file "$P.sock"
  [ "$(owner_mode "$P.sock")" = "660 root nogroup" ] ||
    fail "socket is $(owner_mode "$P.sock")"
  run outsider "${as_outsider[@]}" "$peer" recv --path "$P" \
    --timeout 5 --src-props "timeout=3000000000"
  expect_rc outsider 1
  expect_log outsider "Could not connect to the sender at unix:$P.sock"
  expect_log outsider "Permission denied"
  bg recv "${as_nobody[@]}" "$peer" recv --path "$P" --expect 60 --not-live
  wait_area "$P"
  [ "$(owner_mode "$P")" = "660 root nogroup" ] ||
    fail "area is $(owner_mode "$P")"
  expect_rc recv 0
  expect_rc send 0
  expect_log recv "bad=0 gaps=0"
  expect_gone
  ;;

group-errors)
  run sink gst-launch-1.0 videotestsrc num-buffers=1 ! "$SEND_CAPS" \
    ! shmsink path="$P" group=no-such-group
  expect_failed sink
  expect_log sink "group=no-such-group: Group \"no-such-group\" does not exist"
  expect_gone
  run sink2 "${as_nobody[@]}" gst-launch-1.0 videotestsrc num-buffers=1 \
    ! "$SEND_CAPS" ! shmsink path="$D/area" group=root mode=0660
  expect_failed sink2
  expect_log sink2 "group=root: user nobody (uid 65534) is not a member of group root (gid 0)"
  expect_gone "$D/area"
  ;;

peer-refused)
  # The socket's mode keeps other users out; when it does not (here it is
  # opened up after the sink made it), the peer's credentials still do.
  bg send "$peer" send --path "$P" --frames 30
  wait_file "$P.sock"
  chmod 666 "$P.sock"
  run intruder "${as_nobody[@]}" "$peer" recv --path "$P" --timeout 10
  expect_rc intruder 1
  expect_log intruder "shmsink refused this receiver: it runs as user nobody (uid 65534), who is neither this shmsink's user nor root, and the mode (0600) shares the area with no one else"
  [ ! -e "$P" ] || [ "$(owner_mode "$P")" = "600 root root" ] || fail "area"
  expect_log send "Refused receiver process"
  # the sink goes on serving its own user
  bg recv "$peer" recv --path "$P" --expect 30 --not-live
  expect_rc recv 0
  expect_rc send 0
  expect_log recv "bad=0 gaps=0"
  expect_gone
  ;;

receiver-squat)
  # A receiver does not read an area another user made private to
  # itself: it is not what a sink would give a receiver.
  "${as_nobody[@]}" sh -c "umask 077; : >'$D/x'; truncate -s 4M '$D/x'"
  run src gst-launch-1.0 shmsrc path="$D/x" control=ring ! fakesink
  expect_failed src
  expect_log src "\"$D/x\" belongs to user nobody (uid 65534) with mode 0600: a receiver uses an area only when it belongs to root, its own user, or when its mode shares it with one of the receiver's groups or with everyone"
  expect_untouched "$D/x" "600 nobody nogroup" 4194304
  ;;

*)
  fail "unknown case $case_name"
  ;;
esac
exit 0

# gst-shm: helpers for the shell tests (sourced).
#
# Sets T (a temporary directory in /dev/shm, removed at exit) and P (an
# area path inside it); each test gets a registry of its own and the plugin
# of the build tree.

peer=${SHM_PEER:?}
plugin_dir=${GST_SHM_PLUGIN_DIR:?}

T=$(mktemp -d /dev/shm/gst-shm-test.XXXXXX)
chmod 755 "$T"
P=$T/area
export GST_REGISTRY_1_0=$T/registry.bin
export GST_PLUGIN_PATH_1_0=$plugin_dir
pids=()

fail() {
  echo "FAIL: $*"
  for f in "$T"/*.log; do
    [ -f "$f" ] || continue
    echo "--- $f"
    tail -n 30 "$f"
  done
  [ -n "${KEEP_LOGS:-}" ] && cp -r "$T" "$KEEP_LOGS/" 2>/dev/null
  exit 1
}

cleanup() {
  local f
  # each process under timeout(1) (which passes the signal on, and a
  # SIGCONT after it, so a stopped one ends too), then its wrapper
  for f in "$T"/*.pid; do
    [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null
  done
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT

# bg NAME CMD...: runs CMD in the background (60 s at most), output in
# $T/NAME.log, exit status in $T/NAME.rc
bg() {
  local name=$1
  shift
  (
    timeout 60 stdbuf -oL -eL "$@" >"$T/$name.log" 2>&1 &
    echo $! >"$T/$name.pid"
    wait $!
    echo $? >"$T/$name.rc"
  ) &
  pids+=($!)
  while [ ! -f "$T/$name.pid" ]; do sleep 0.01; done
}

# stop NAME: interrupts NAME, a gst-launch-1.0 or shm-peer that then shuts
# down cleanly; gst-launch-1.0 handles SIGINT once its pipeline is PLAYING,
# so wait for that (shm-peer says STARTED then).
stop() {
  local i
  for i in $(seq 1 100); do
    grep -qE "Setting pipeline to PLAYING|^STARTED" "$T/$1.log" 2>/dev/null &&
      break
    sleep 0.1
  done
  sleep 0.1
  # the process itself, not the timeout(1) around it: timeout relays a
  # signal to its whole process group too, and a second SIGINT kills
  # gst-launch-1.0 in the middle of its clean shutdown
  kill -INT "$(pgrep -P "$(cat "$T/$1.pid")")" 2>/dev/null
}

# rc NAME: waits for NAME (70 s at most) and prints its exit status
rc() {
  local i
  for i in $(seq 1 700); do
    [ -f "$T/$1.rc" ] && { cat "$T/$1.rc"; return; }
    sleep 0.1
  done
  echo timeout
}

# run NAME CMD...: runs CMD in the foreground
run() {
  local name=$1
  shift
  timeout 30 "$@" >"$T/$name.log" 2>&1
  echo $? >"$T/$name.rc"
}

# wait_log NAME TEXT: waits (30 s at most) for TEXT in NAME's output
wait_log() {
  local i
  for i in $(seq 1 300); do
    grep -qF -- "$2" "$T/$1.log" 2>/dev/null && return 0
    sleep 0.1
  done
  fail "$1 never said: $2"
}

# wait_started NAME: waits for a shm-peer to have set its pipeline to
# PLAYING (a receiver's base time is then fixed)
wait_started() {
  wait_log "$1" STARTED
}

wait_file() {
  local i
  for i in $(seq 1 100); do
    [ -e "$1" ] && return 0
    sleep 0.1
  done
  fail "$1 did not appear"
}

# wait_area PATH: waits for a sender's area header at PATH
wait_area() {
  wait_file "$1"
  local i
  for i in $(seq 1 100); do
    [ "$(head -c 8 "$1" | od -An -tx1 | tr -d ' ')" = "47534d4152454131" ] \
      && return 0
    sleep 0.1
  done
  fail "no area header in $1"
}

expect_rc() {
  local got
  got=$(rc "$1")
  [ "$got" = "$2" ] || fail "$1 exited with $got, expected $2"
}

# gst-launch-1.0 exits 1 for an error while playing, 255 when an element
# fails to start: either is a failure; a timeout (124) is not.
expect_failed() {
  local got
  got=$(rc "$1")
  case $got in
  1 | 255) ;;
  *) fail "$1 exited with $got, expected a failure" ;;
  esac
}

# expect_log NAME TEXT: a fixed string in NAME's output
expect_log() {
  grep -qF -- "$2" "$T/$1.log" || fail "$1: no line with: $2"
}

# expect_match NAME REGEX
expect_match() {
  grep -qE -- "$2" "$T/$1.log" || fail "$1: no line matching: $2"
}

stat_of() {
  grep -oE "$2=\(g?uint(64)?\)[0-9]+" "$T/$1.log" | head -n1 \
    | grep -oE '[0-9]+$'
}

expect_stat() {
  local v
  v=$(stat_of "$1" "$2")
  [ "$v" = "$3" ] || fail "$1: $2 is '$v', expected $3"
}

expect_gone() {
  local p=${1:-$P}
  [ ! -e "$p" ] || fail "area file $p left behind"
  [ ! -e "$p.sock" ] || fail "socket $p.sock left behind"
}

same_caps() {
  local a b
  a=$(grep -m1 '^CAPS ' "$T/$1.log")
  b=$(grep -m1 '^CAPS ' "$T/$2.log")
  [ -n "$a" ] && [ "$a" = "$b" ] || fail "caps differ: '$a' vs '$b'"
}

check_our_plugin() {
  local f
  f=$(gst-inspect-1.0 shmsink | awk '/Filename/ { print $2 }')
  [ "$f" = "$plugin_dir/libgstshm.so" ] || fail "shmsink comes from '$f'"
}

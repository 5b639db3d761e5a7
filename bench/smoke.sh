#!/bin/sh
# bench-smoke: the quick benchmark runs, writes its report where it is told
# (a temporary directory), and the report has a row for every case.  Only
# correctness: no number is compared with anything.
#
#   smoke.sh GST_SHM_BENCH
#
# GST_PLUGIN_PATH_1_0 names the directory of the plugin under test.
set -u

bench=${1:?usage: smoke.sh GST_SHM_BENCH}
T=$(mktemp -d "${TMPDIR:-/tmp}/gst-shm-bench-smoke.XXXXXX")
trap 'rm -rf "$T"' EXIT
out=$T/results.md

fail() {
  echo "FAIL: $*"
  for f in "$T"/stderr.txt "$T"/stdout.txt; do
    [ -f "$f" ] && { echo "--- $f"; tail -n 40 "$f"; }
  done
  exit 1
}

# what is in /dev/shm before: the benchmark must leave nothing there (not
# even gst-plugins-bad's segments of a sender that hung).  Only the names
# it makes count: other tests may run beside it.
ours() {
  ls /dev/shm | grep -E '^(gst-shm-bench-|shmpipe\.)' | sort
}
ours >"$T/shm-before.txt"

"$bench" --quick --list >"$T/cases.txt" || fail "--list failed"
[ -s "$T/cases.txt" ] || fail "no cases"
# every kind of gst-shm row is there, the in-band control rings too
for kind in ours-zero-copy ours-ring ours-no-spin ours-copy; do
  grep -q "/$kind\$" "$T/cases.txt" || fail "no $kind case"
done
"$bench" --quick --output "$out" >"$T/stdout.txt" 2>"$T/stderr.txt" ||
  fail "the benchmark failed"
[ -s "$out" ] || fail "no report at $out"

for section in '## memcpy limit' '## Results' '## Targets' '- CPU:' \
  '- Command:' '- Date:' '| rcv CPU % of a core |' '**ours-ring**' \
  '**ours-no-spin**'; do
  grep -qF -- "$section" "$out" || fail "no \"$section\" in the report"
done
grep -q '^| .* | 1 → 1 |' "$out" || fail "no memcpy row"

# gst-plugins-bad's rows may hang (a known problem of those elements), but
# only when its plugin is there may they say anything else than ok or hang
bad_present=no
grep -q '^- gst-plugins-bad: .*libgstshm\.so' "$out" && bad_present=yes

n=0
while read -r id; do
  n=$((n + 1))
  line=$(grep -m1 -F "| \`$id\` |" "$out") || fail "no row for $id"
  status=$(printf '%s\n' "$line" | awk -F' [|] ' '{ print $2 }')
  grep -qF "$id" "$T/stdout.txt" || fail "$id is not in the printed table"
  case $id in
    */bad)
      if [ $bad_present = yes ]; then
        case $status in
          ok | hang*) ;;
          *) fail "$id: $status" ;;
        esac
      fi
      ;;
    *)
      # gst-shm's rows (zero-copy over the socket or the rings, copy path)
      # and the bounds: ok
      [ "$status" = ok ] || fail "$id: $status"
      ;;
  esac
  # a live row with a receiver says how much of a core the receiver took
  case $id in
    */live60/*/ours-* | */live60/*/bad)
      if [ "$status" = ok ]; then
        cpu=$(printf '%s\n' "$line" | awk -F' [|] ' '{ print $10 }')
        case $cpu in
          [0-9]*) ;;
          *) fail "$id: no receiver CPU % ($cpu)" ;;
        esac
      fi
      ;;
  esac
done <"$T/cases.txt"

ours >"$T/shm-after.txt"
left=$(comm -13 "$T/shm-before.txt" "$T/shm-after.txt")
[ -z "$left" ] || fail "left in /dev/shm: $left"

echo "ok: $n rows"

#!/usr/bin/env bash
# gst-shm: sets up a fresh Debian 12 machine and runs every test, twice:
# a -Werror build, then an AddressSanitizer + UBSan build (without the QEMU
# guest suite, whose guests run the first build).  Ends with one line:
#   N passed, N failed, N skipped
set -u

cd "$(dirname "$0")/.."

scripts/setup.sh build-ci -Dwerror=true || exit 1
scripts/setup.sh build-asan -Dwerror=true -Db_sanitize=address,undefined \
  -Db_lundef=false -Dbuildtype=debug || exit 1

export GST_SHM_TEST_CACHE=${GST_SHM_TEST_CACHE:-$PWD/build-ci/vm-cache}

meson test -C build-ci --num-processes 4 --print-errorlogs \
  >build-ci/test-output.txt 2>&1
tail -n 12 build-ci/test-output.txt

# An ASan plugin needs the ASan runtime loaded first in every program that
# loads it; the test programs are built with it, the GStreamer tools
# (gst-launch-1.0, gst-inspect-1.0, gst-plugin-scanner) get it preloaded
# through wrappers.  Without it the plugin fails to load and
# gst-plugins-bad's shmsink would take its place, which every test checks.
asan_lib=$(gcc -print-file-name=libasan.so)
wrappers=$PWD/build-asan/asan-bin
mkdir -p "$wrappers"
scanner=$(pkg-config --variable=pluginscannerdir gstreamer-1.0)/gst-plugin-scanner
for tool in gst-launch-1.0 gst-inspect-1.0 "$scanner"; do
  real=$(command -v "$tool" || echo "$tool")
  printf '#!/bin/sh\nLD_PRELOAD=%s exec %s "$@"\n' "$asan_lib" "$real" \
    >"$wrappers/$(basename "$tool")"
  chmod +x "$wrappers/$(basename "$tool")"
done
PATH=$wrappers:$PATH \
  GST_PLUGIN_SCANNER_1_0=$wrappers/gst-plugin-scanner \
  ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:detect_odr_violation=0:verify_asan_link_order=0 \
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  meson test -C build-asan --num-processes 4 --print-errorlogs \
  --no-suite vm >build-asan/test-output.txt 2>&1
tail -n 12 build-asan/test-output.txt

python3 - build-ci/meson-logs/testlog.json build-asan/meson-logs/testlog.json <<'PY'
import json, sys
passed = failed = skipped = 0
for path in sys.argv[1:]:
    try:
        lines = open(path).read().splitlines()
    except OSError:
        failed += 1
        print(f"no test log: {path}")
        continue
    for line in lines:
        r = json.loads(line)["result"]
        if r in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif r == "SKIP":
            skipped += 1
        else:
            failed += 1
            t = json.loads(line)
            # the end of its output, so that a failure can be understood
            # from this summary alone
            for out in (t.get("stdout") or "").splitlines()[-15:]:
                print(f"  | {out[:300]}")
            print(f"FAILED: {t['name']} ({r})")
print(f"{passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed else 0)
PY

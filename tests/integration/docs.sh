#!/usr/bin/env bash
# docs/elements.md must say what the built elements say.
set -u
src=$(cd "$(dirname "$0")/../.." && pwd)
export GST_REGISTRY_1_0=$(mktemp -d)/registry.bin
export GST_PLUGIN_PATH_1_0=${GST_SHM_PLUGIN_DIR:?}
trap 'rm -rf "$(dirname "$GST_REGISTRY_1_0")"' EXIT
if ! python3 "$src/docs/gen-elements.py" | diff -u "$src/docs/elements.md" -; then
  echo "FAIL: docs/elements.md is out of date; regenerate it with"
  echo "  GST_PLUGIN_PATH=BUILD/gst docs/gen-elements.py > docs/elements.md"
  exit 1
fi
echo "PASS: docs/elements.md is up to date"

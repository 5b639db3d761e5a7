#!/usr/bin/env bash
# gst-shm: sets up a fresh Debian 12 machine and runs gst-shm-demo (a
# sender and a receiver on /dev/shm).  Arguments go to gst-shm-demo; see
#   scripts/demo.sh --help
set -eu
cd "$(dirname "$0")/.."
scripts/setup.sh build
export GST_PLUGIN_PATH=$PWD/build/gst${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}
exec build/gst-shm-demo/gst-shm-demo "$@"

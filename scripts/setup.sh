#!/usr/bin/env bash
# gst-shm: installs what building and testing need on Debian 12 (only what
# is missing, quietly), then configures and builds.
#
#   scripts/setup.sh [BUILD_DIR [MESON_OPTIONS...]]
#
# Run as root, or as a user who may use sudo.
set -eu

cd "$(dirname "$0")/.."

PACKAGES=(
  # build
  meson ninja-build pkg-config gcc libc6-dev indent
  libglib2.0-dev libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
  liborc-0.4-dev liborc-0.4-dev-bin
  # run and test
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-x
  util-linux procps coreutils python3
  # memory checks (tests/valgrind)
  valgrind
  # tests in QEMU guests (tests/vm)
  qemu-system-x86 busybox-static xz-utils cpio
  # the ximagesrc test
  xvfb x11-apps x11-xserver-utils
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  sudo=
  [ "$(id -u)" = 0 ] || sudo=sudo
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq >/dev/null
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

build=${1:-build}
shift || true
if [ -f "$build/build.ninja" ]; then
  meson setup --reconfigure "$build" "$@" >/dev/null
else
  meson setup "$build" "$@" >/dev/null
fi
ninja -C "$build" >/dev/null
echo "setup: built in $build"

#!/bin/bash
# guest-prepare.sh CACHE_DIR
#
# Prepares everything guest-run.sh needs to boot a tiny QEMU (TCG) guest:
#   CACHE_DIR/vmlinux            uncompressed ELF kernel (booted via PVH)
#   CACHE_DIR/vmlinuz            compressed bzImage (fallback, see guest-run.sh)
#   CACHE_DIR/initramfs.cpio.gz  busybox-static + virtio/9p/net modules + /init
#   CACHE_DIR/kernel-release     e.g. "6.1.0-56-amd64"
#   CACHE_DIR/stamp              what the files above were built from
#
# Idempotent: when the stamp matches (same kernel package, same scripts) it
# returns at once.  Installs missing host tools with apt-get (Debian 12).
# Prints one short line on success; errors go to stderr with a non-zero exit.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
me=$(basename "$0")

die() { echo "$me: error: $*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: $me CACHE_DIR"
cache=$1
mkdir -p "$cache" || die "cannot create $cache"
cache=$(cd "$cache" && pwd)

# Modules loaded by /init, in this order (dependencies first).  Anything that
# is built into the kernel (listed in modules.builtin) is skipped.
base_modules="virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_console netfs fscache 9pnet 9pnet_virtio 9p"
net_modules="failover net_failover virtio_net"

# Stamp: changes whenever this script or the guest init changes.
script_hash=$(cat "$here/guest-prepare.sh" "$here/guest-init.sh" | sha256sum | cut -c1-16)

stamp_ok() {
    [ -s "$cache/stamp" ] && [ -s "$cache/vmlinux" ] && [ -s "$cache/vmlinuz" ] &&
        [ -s "$cache/initramfs.cpio.gz" ] &&
        grep -qx "scripts=$script_hash" "$cache/stamp"
}

# Fast path (no locking, no apt): everything is there already.
if stamp_ok; then
    echo "guest-prepare: up to date ($(cat "$cache/kernel-release" 2>/dev/null)) in $cache"
    exit 0
fi

# Serialise concurrent preparations of the same cache.
exec 9>"$cache/.lock"
flock 9 || die "cannot lock $cache/.lock"
if stamp_ok; then
    echo "guest-prepare: up to date ($(cat "$cache/kernel-release" 2>/dev/null)) in $cache"
    exit 0
fi

# ---------------------------------------------------------------- host tools
apt_updated=
apt_update() {
    [ -n "$apt_updated" ] && return 0
    DEBIAN_FRONTEND=noninteractive apt-get update -q >"$cache/.apt.log" 2>&1 ||
        die "apt-get update failed: $(tail -n 5 "$cache/.apt.log")"
    apt_updated=1
}
need_pkgs() {  # need_pkgs cmd:pkg ...
    missing=
    for cp in "$@"; do
        command -v "${cp%%:*}" >/dev/null 2>&1 || missing="$missing ${cp#*:}"
    done
    [ -z "$missing" ] && return 0
    [ "$(id -u)" = 0 ] || die "missing packages:$missing (run as root or install them)"
    apt_update
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing >"$cache/.apt.log" 2>&1 ||
        die "apt-get install$missing failed: $(tail -n 5 "$cache/.apt.log")"
}
need_pkgs apt-get:apt dpkg:dpkg xz:xz-utils gzip:gzip flock:util-linux \
    sha256sum:coreutils cpio:cpio qemu-system-x86_64:qemu-system-x86
busybox_static() {
    [ -x /bin/busybox ] && LC_ALL=C ldd /bin/busybox 2>&1 | grep -q 'not a dynamic'
}
if ! busybox_static; then
    [ "$(id -u)" = 0 ] || die "busybox-static is not installed"
    apt_update
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q busybox-static >"$cache/.apt.log" 2>&1 ||
        die "apt-get install busybox-static failed: $(tail -n 5 "$cache/.apt.log")"
    busybox_static || die "/bin/busybox is not statically linked (install busybox-static)"
fi

# ------------------------------------------------------------- kernel package
find_kpkg() {
    apt-cache depends linux-image-amd64 2>/dev/null |
        sed -n 's/^ *Depends: *\(linux-image-[0-9][^ ]*\).*/\1/p' | head -1
}
kpkg=$(find_kpkg)
if [ -z "$kpkg" ]; then
    apt_update
    kpkg=$(find_kpkg)
fi
[ -n "$kpkg" ] || die "cannot find the kernel package that linux-image-amd64 depends on"

work=$(mktemp -d "$cache/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT

debs=$(ls "$cache"/"$kpkg"_*.deb 2>/dev/null | head -1 || true)
if [ -z "$debs" ]; then
    rm -f "$cache"/linux-image-*.deb
    ( cd "$work" && apt-get download -q "$kpkg" >/dev/null 2>"$work/dl.err" ) || {
        apt_update
        ( cd "$work" && apt-get download -q "$kpkg" >/dev/null 2>"$work/dl.err" ) ||
            die "apt-get download $kpkg failed: $(cat "$work/dl.err")"
    }
    mv "$work"/"$kpkg"_*.deb "$cache/" || die "download of $kpkg produced no .deb"
    debs=$(ls "$cache"/"$kpkg"_*.deb | head -1)
fi
kver=$(dpkg-deb -f "$debs" Version)

dpkg -x "$debs" "$work/pkg" || die "dpkg -x $debs failed"
krel=$(ls "$work/pkg/lib/modules" | head -1)
[ -n "$krel" ] || die "no /lib/modules/* in $debs"
vmlinuz="$work/pkg/boot/vmlinuz-$krel"
[ -f "$vmlinuz" ] || die "no /boot/vmlinuz-$krel in $debs"

# ------------------------------------------------------- extract ELF vmlinux
# The bzImage carries the ELF vmlinux as an xz stream; try every xz magic
# (like the kernel's scripts/extract-vmlinux) until one yields an ELF file.
ok=
for off in $(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$vmlinuz" | cut -d: -f1); do
    if tail -c +$((off + 1)) "$vmlinuz" | xz -dc --single-stream >"$work/vmlinux" 2>/dev/null &&
        [ "$(head -c 4 "$work/vmlinux" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ]; then
        ok=1
        break
    fi
done
[ -n "$ok" ] || die "could not extract an ELF vmlinux from $vmlinuz"

# -------------------------------------------------------------- initramfs
root="$work/root"
mkdir -p "$root"/bin "$root"/dev "$root"/proc "$root"/sys "$root"/mnt \
    "$root"/lib/modules "$root"/etc "$root"/tmp
cp /bin/busybox "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
moddir="$work/pkg/lib/modules/$krel"
: >"$root/etc/modules.base"
: >"$root/etc/modules.net"
for list in base net; do
    if [ $list = base ]; then mods=$base_modules; else mods=$net_modules; fi
    for m in $mods; do
        if grep -q "/$m\.ko" "$moddir/modules.builtin" 2>/dev/null; then
            continue   # built in
        fi
        f=$(find "$moddir/kernel" -name "$m.ko" -o -name "$m.ko.xz" -o -name "$m.ko.zst" -o -name "$m.ko.gz" | head -1)
        [ -n "$f" ] || die "module $m is neither a module nor built into $krel"
        case $f in
            *.xz)  xz -dc "$f" >"$root/lib/modules/$m.ko" ;;
            *.gz)  gzip -dc "$f" >"$root/lib/modules/$m.ko" ;;
            *.zst) need_pkgs zstd:zstd; zstd -qdc "$f" >"$root/lib/modules/$m.ko" ;;
            *)     cp "$f" "$root/lib/modules/$m.ko" ;;
        esac
        echo "$m" >>"$root/etc/modules.$list"
    done
done
cp "$here/guest-init.sh" "$root/init"
chmod 755 "$root/init"
( cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0 ) |
    gzip -6 >"$work/initramfs.cpio.gz" || die "building the initramfs failed"

# --------------------------------------------------------------- install
mv -f "$work/vmlinux" "$cache/vmlinux"
cp -f "$vmlinuz" "$cache/vmlinuz"
mv -f "$work/initramfs.cpio.gz" "$cache/initramfs.cpio.gz"
echo "$krel" >"$cache/kernel-release"
{
    echo "package=$kpkg"
    echo "version=$kver"
    echo "release=$krel"
    echo "modules=$(cat "$root/etc/modules.base" "$root/etc/modules.net" | tr '\n' ' ')"
    echo "scripts=$script_hash"
} >"$cache/stamp.new"
mv -f "$cache/stamp.new" "$cache/stamp"
echo "guest-prepare: built $kpkg $kver in $cache"

#!/bin/sh
# /init of the guest initramfs built by guest-prepare.sh (runs under busybox sh).
#
# Kernel command line parameters of the form name=value arrive here as
# environment variables:
#   vmrun_dir=PATH     host directory (seen through 9p) holding cmd.sh, config
#                      (read before the chroot mounts, so it may be anywhere)
#   vmrun_9p=OPTS      extra 9p mount options (msize, cache)
# The host's / is mounted read-only at /mnt, a chroot is set up there and
# cmd.sh runs inside it (copied to /run/vmrun/cmd.sh).  Its stdout+stderr go
# to the virtio-serial port "vmrun.out", its exit status is written to the
# port "vmrun.status" ("exit N", or "init-error MESSAGE").
# Diagnostics go to the console (ttyS0), which guest-run.sh logs to a file.

/bin/busybox mkdir -p /proc /sys /dev /usr/bin /sbin /usr/sbin
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
exec </dev/console >/dev/console 2>&1

status_dev=
fail() {
    echo "vmrun-init: error: $*" >/dev/console
    if [ -n "$status_dev" ]; then
        echo "init-error $*" >"$status_dev"
    fi
    sync
    poweroff -f
    sleep 1000
}

load_modules() {
    for m in $(cat "$1"); do
        insmod "/lib/modules/$m.ko" || fail "insmod $m failed"
    done
}
load_modules /etc/modules.base

# Find the virtio-serial ports by name.
port_dev() {
    for p in /sys/class/virtio-ports/*; do
        [ -e "$p/name" ] || continue
        if [ "$(cat "$p/name")" = "$1" ]; then
            echo "/dev/${p##*/}"
            return 0
        fi
    done
    return 1
}
i=0
while :; do
    out_dev=$(port_dev vmrun.out) && status_dev=$(port_dev vmrun.status) &&
        [ -c "$out_dev" ] && [ -c "$status_dev" ] && break
    i=$((i + 1))
    [ $i -lt 100 ] || fail "virtio-serial ports vmrun.out/vmrun.status not found"
    usleep 20000
done

[ -n "$vmrun_dir" ] || fail "no vmrun_dir= on the kernel command line"

# Host root, read-only.
mount -t 9p -o "trans=virtio,version=9p2000.L,ro${vmrun_9p:+,$vmrun_9p}" hostroot /mnt ||
    fail "mounting the host root over 9p failed"
[ -r "/mnt$vmrun_dir/config" ] || fail "/mnt$vmrun_dir/config not readable in the guest"
net=0
rw_mounts=
ro_mounts=
. "/mnt$vmrun_dir/config"
# Copy the command script now: vmrun_dir may be hidden by the mounts below
# (e.g. when it is under /tmp or /run).
mkdir -p /tmp
cp "/mnt$vmrun_dir/cmd.sh" /tmp/cmd.sh || fail "cannot read $vmrun_dir/cmd.sh"

# The chroot: kernel file systems and writable scratch space.
mount -t proc proc /mnt/proc || fail "mount proc in chroot"
mount -t sysfs sysfs /mnt/sys || fail "mount sysfs in chroot"
mount -t devtmpfs devtmpfs /mnt/dev || fail "mount devtmpfs in chroot"
mkdir -p /mnt/dev/shm /mnt/dev/pts
mount -t tmpfs -o mode=1777 tmpfs /mnt/dev/shm || fail "mount /dev/shm in chroot"
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /mnt/dev/pts 2>/dev/null
mount -t tmpfs -o mode=1777 tmpfs /mnt/tmp || fail "mount /tmp in chroot"
mount -t tmpfs -o mode=755 tmpfs /mnt/run || fail "mount /run in chroot"
mkdir -p /mnt/run/lock /mnt/run/user/0 /mnt/run/vmrun
cp /tmp/cmd.sh /mnt/run/vmrun/cmd.sh

# mount_shares MODE OPTS TAG:PATH...: the extra host directories that
# guest-run.sh exported (--rw, --ro), at their own paths
mount_shares() {
    mode=$1
    opts=$2
    shift 2
    for m in "$@"; do
        tag=${m%%:*}
        path=${m#*:}
        mkdir -p "/mnt$path" 2>/dev/null
        mount -t 9p -o "trans=virtio,version=9p2000.L,$mode${opts:+,$opts}" "$tag" "/mnt$path" ||
            fail "mounting $path ($mode) failed"
    done
}
# Read-only ones are those that the tmpfs mounts above hide (a build tree
# under /tmp); they go first, so that a writable directory inside one of
# them stays visible.  Writable ones uncached, so that the host sees the
# guest's writes at once.
# shellcheck disable=SC2086  # lists of words
mount_shares ro "$vmrun_9p" $ro_mounts
# shellcheck disable=SC2086
mount_shares rw "$(echo "$vmrun_9p" | sed 's/,*cache=[a-z]*//')" $rw_mounts

# ivshmem-plain device (if any): enable it so BAR2 can be mmapped.
for d in /sys/bus/pci/devices/*; do
    [ "$(cat "$d/vendor" 2>/dev/null)" = 0x1af4 ] &&
        [ "$(cat "$d/device" 2>/dev/null)" = 0x1110 ] &&
        echo 1 >"$d/enable" 2>/dev/null
done

ip link set lo up 2>/dev/null
if [ "$net" = 1 ]; then
    load_modules /etc/modules.net
    i=0
    while [ ! -e /sys/class/net/eth0 ]; do
        i=$((i + 1))
        [ $i -lt 100 ] || fail "no eth0"
        usleep 20000
    done
    ip addr add 10.0.2.15/24 dev eth0 || fail "ip addr add"
    ip link set eth0 up || fail "ip link set eth0 up"
    ip route add default via 10.0.2.2 || fail "ip route add default"
fi

echo "vmrun-init: running the command" >/dev/console
# Clean environment; cmd.sh (written by guest-run.sh) sets cwd and variables.
env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root TERM=dumb /bin/busybox chroot /mnt /bin/sh /run/vmrun/cmd.sh \
    </dev/null >"$out_dev" 2>&1
rc=$?
echo "exit $rc" >"$status_dev"
sync
poweroff -f
sleep 1000

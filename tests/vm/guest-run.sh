#!/bin/bash
# shellcheck disable=SC2054  # commas in QEMU option values are intended
# guest-run.sh: run one command inside a tiny QEMU (TCG) guest.
#
# usage: guest-run.sh --cache CACHE_DIR [options] -- COMMAND [ARGS...]
#
#   --cache DIR           directory prepared by guest-prepare.sh (required;
#                         or $VMRUN_CACHE)
#   --workdir DIR         where the per-run temporary directory is created
#                         (default: $VMRUN_WORKDIR or CACHE_DIR/runs); it must
#                         be on a file system the guest sees through 9p, i.e.
#                         anything under the host's / (a real disk is best)
#   --ivshmem FILE:SIZE   add an ivshmem-plain device (PCI 0000:00:04.0)
#                         backed by FILE (created with SIZE bytes if absent;
#                         never deleted).  SIZE: power of two, suffix K/M/G ok
#   --net OPTS            add virtio-net with QEMU user networking; OPTS are
#                         extra -netdev user options, e.g.
#                         hostfwd=tcp:127.0.0.1:5555-:5555  ("on": none).
#                         Repeatable.  Guest: 10.0.2.15/24, gateway (=host's
#                         127.0.0.1) 10.0.2.2
#   --rw DIR              also mount host directory DIR read-write in the guest
#                         at the same path (repeatable)
#   --ro DIR              also mount host directory DIR read-only at the same
#                         path, for directories the guest would not see
#                         otherwise (under /tmp or /run; repeatable)
#   --env VAR=VALUE       set VAR in the guest command's environment; --env VAR
#                         copies the host's value (if set).  Repeatable
#   --timeout SECONDS     kill the guest after this long (default 300)
#   --mem SIZE            guest RAM (default 512M)
#   --smp N               guest CPUs (default 1)
#   --9p-cache MODE       9p cache mode for the host root: loose (default),
#                         none, fscache, mmap
#   --keep                keep the per-run directory (console log etc.)
#   -v, --verbose         boot with kernel messages on and show the guest
#                         console (kernel log) on stderr after the run
#
# The command runs as root in a chroot of the host's / (read-only 9p; /tmp,
# /run, /dev/shm are guest-local tmpfs; /proc, /sys, /dev are the guest's),
# in the same working directory as the caller, with stdin /dev/null and an
# environment of PATH, HOME=/root, TERM=dumb, VMRUN_IVSHMEM (the sysfs BAR2
# file of the ivshmem device, if any) and the --env variables.
# Its stdout and stderr both go to this script's stdout (kernel messages do
# not: they go to a console log).  The exit status is the command's, or
#   124  the guest was killed after --timeout
#   125  the guest or QEMU failed before reporting a status
#   2    usage error
set -u

me=guest-run
die() { echo "$me: error: $*" >&2; exit 125; }
usage_err() { echo "$me: $*" >&2; echo "usage: guest-run.sh --cache DIR [--workdir DIR] [--ivshmem FILE:SIZE] [--net OPTS] [--rw DIR] [--ro DIR] [--env VAR=VALUE] [--timeout S] [--mem SIZE] [--smp N] [--9p-cache MODE] [--keep] [-v] -- COMMAND [ARGS...]" >&2; exit 2; }

cache=${VMRUN_CACHE:-}
workdir=${VMRUN_WORKDIR:-}
ivshmem=
net=
net_opts=()
rw_dirs=()
ro_dirs=()
envs=()
timeout=300
mem=512M
smp=1
p9cache=loose
keep=
verbose=

need_arg() { [ $# -ge 2 ] || usage_err "option $1 needs an argument"; }
while [ $# -gt 0 ]; do
    case $1 in
        --cache) need_arg "$@"; cache=$2; shift 2 ;;
        --workdir) need_arg "$@"; workdir=$2; shift 2 ;;
        --ivshmem) need_arg "$@"; ivshmem=$2; shift 2 ;;
        --net) need_arg "$@"; net=1; [ "$2" = on ] || [ -z "$2" ] || net_opts+=("$2"); shift 2 ;;
        --rw) need_arg "$@"; rw_dirs+=("$2"); shift 2 ;;
        --ro) need_arg "$@"; ro_dirs+=("$2"); shift 2 ;;
        --env) need_arg "$@"; envs+=("$2"); shift 2 ;;
        --timeout) need_arg "$@"; timeout=$2; shift 2 ;;
        --mem) need_arg "$@"; mem=$2; shift 2 ;;
        --smp) need_arg "$@"; smp=$2; shift 2 ;;
        --9p-cache) need_arg "$@"; p9cache=$2; shift 2 ;;
        --keep) keep=1; shift ;;
        -v|--verbose) verbose=1; shift ;;
        --) shift; break ;;
        -h|--help) sed -n '3,/^set -u/{/^set -u/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
        *) usage_err "unknown option: $1" ;;
    esac
done
[ $# -ge 1 ] || usage_err "no command given (put it after --)"
[ -n "$cache" ] || usage_err "--cache is required"
case $timeout in ''|*[!0-9]*) usage_err "--timeout needs a whole number of seconds" ;; esac
case $smp in ''|*[!0-9]*) usage_err "--smp needs a number" ;; esac
case $p9cache in none|loose|fscache|mmap) ;; *) usage_err "--9p-cache: none, loose, fscache or mmap" ;; esac

[ -d "$cache" ] || die "cache directory $cache does not exist (run guest-prepare.sh $cache)"
cache=$(cd "$cache" && pwd -P)
kernel=$cache/vmlinux
[ "${VMRUN_KERNEL:-}" = bzimage ] && kernel=$cache/vmlinuz
for f in "$kernel" "$cache/initramfs.cpio.gz"; do
    [ -s "$f" ] || die "$f is missing (run guest-prepare.sh $cache)"
done
qemu=${VMRUN_QEMU:-qemu-system-x86_64}
command -v "$qemu" >/dev/null 2>&1 || die "$qemu not found (apt-get install qemu-system-x86)"

[ -n "$workdir" ] || workdir=$cache/runs
mkdir -p "$workdir" || die "cannot create $workdir"
workdir=$(cd "$workdir" && pwd -P)
case $workdir in *[[:space:]]*) die "--workdir must not contain white space: $workdir" ;; esac
cwd=$(pwd -P)

# Shell-quote for the guest's /bin/sh (dash): 'it'\''s'
q() {
    local s=$1 out="'"
    while [[ $s == *"'"* ]]; do
        out+="${s%%\'*}'\\''"
        s=${s#*\'}
    done
    printf '%s' "$out$s'"
}

to_bytes() {
    local v=$1 n m=1
    case $v in
        *[kK]) n=${v%?}; m=1024 ;;
        *[mM]) n=${v%?}; m=$((1024 * 1024)) ;;
        *[gG]) n=${v%?}; m=$((1024 * 1024 * 1024)) ;;
        *) n=$v ;;
    esac
    case $n in ''|*[!0-9]*) return 1 ;; esac
    echo $((n * m))
}

# ----------------------------------------------------------- per-run dir
run=$(mktemp -d "$workdir/vmrun.XXXXXX") || die "cannot create a run directory in $workdir"
qpid='' wpid='' cpid=''
cleanup() {
    for p in $wpid $qpid $cpid; do kill "$p" 2>/dev/null; done
    for p in $wpid $qpid $cpid; do wait "$p" 2>/dev/null; done
    if [ -z "$keep" ]; then rm -rf "$run"; else echo "$me: kept $run" >&2; fi
}
trap cleanup EXIT
trap 'echo "$me: interrupted" >&2; exit 130' INT
trap 'echo "$me: terminated" >&2; exit 143' TERM HUP

qargs=(-M pc,accel=tcg -cpu max -m "$mem" -smp "$smp"
    -nodefaults -no-user-config -display none -no-reboot
    -kernel "$kernel" -initrd "$cache/initramfs.cpio.gz")

ivshmem_env=
if [ -n "$ivshmem" ]; then
    shm_file=${ivshmem%:*}
    shm_size=${ivshmem##*:}
    [ "$shm_file" != "$ivshmem" ] && [ -n "$shm_file" ] || usage_err "--ivshmem needs FILE:SIZE"
    bytes=$(to_bytes "$shm_size") || usage_err "--ivshmem: bad size $shm_size"
    [ "$bytes" -gt 0 ] && [ $((bytes & (bytes - 1))) -eq 0 ] ||
        usage_err "--ivshmem: size $shm_size is not a power of two"
    if [ ! -e "$shm_file" ]; then
        ( umask 077; : >>"$shm_file" ) && truncate -s "$bytes" "$shm_file" ||
            die "cannot create $shm_file"
    fi
    have=$(stat -L -c %s "$shm_file") || die "cannot stat $shm_file"
    [ "$have" -eq "$bytes" ] ||
        die "$shm_file is $have bytes, but --ivshmem asks for $bytes (must match exactly)"
    # First device on the command line, fixed slot: 0000:00:04.0 in the guest.
    qargs+=(-object "memory-backend-file,id=vmrun_shm,size=$bytes,mem-path=$shm_file,share=on"
        -device ivshmem-plain,memdev=vmrun_shm,addr=4)
    ivshmem_env=/sys/bus/pci/devices/0000:00:04.0/resource2_wc
fi

# Host root, read-only.  multidevs=remap: / spans several file systems.
qargs+=(-fsdev "local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap"
    -device virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot)

# share_dirs MODE DIR...: exports each DIR to the guest (MODE rw or ro) and
# prints the list of TAG:DIR the guest mounts
share_dirs() {
    local mode=$1 d i=0 list= ro=
    shift
    [ "$mode" = ro ] && ro=,readonly=on
    for d in "$@"; do
        [ -d "$d" ] || die "--$mode $d: not a directory"
        d=$(cd "$d" && pwd -P)
        case $d in *[[:space:],]*) die "--$mode path must not contain white space or commas: $d" ;; esac
        qargs+=(-fsdev "local,id=vmrun_$mode$i,path=$d,security_model=none$ro,multidevs=remap"
            -device "virtio-9p-pci,fsdev=vmrun_$mode$i,mount_tag=vmrun_$mode$i")
        list="$list vmrun_$mode$i:$d"
        i=$((i + 1))
    done
    shares=${list# }
}
share_dirs rw ${rw_dirs[@]+"${rw_dirs[@]}"}
rw_mounts=$shares
share_dirs ro ${ro_dirs[@]+"${ro_dirs[@]}"}
ro_mounts=$shares

if [ -n "$net" ]; then
    nd=user,id=vmrun_net
    for o in ${net_opts[@]+"${net_opts[@]}"}; do nd="$nd,$o"; done
    qargs+=(-netdev "$nd" -device virtio-net-pci,netdev=vmrun_net)
fi

# Console (kernel log, init diagnostics) to a file; command output to a
# FIFO drained by cat onto our stdout; exit status to a file.
mkfifo "$run/out" || die "mkfifo failed"
qargs+=(-chardev "file,id=vmrun_con,path=$run/console.log" -serial chardev:vmrun_con
    -device virtio-serial-pci
    -chardev "file,id=vmrun_out,path=$run/out" -device virtserialport,chardev=vmrun_out,name=vmrun.out
    -chardev "file,id=vmrun_st,path=$run/status" -device virtserialport,chardev=vmrun_st,name=vmrun.status)

case $p9cache in
    none) p9opts=msize=512000 ;;
    *) p9opts=msize=512000,cache=$p9cache ;;
esac
klog="quiet loglevel=0"
[ -n "$verbose" ] && klog="loglevel=7 printk.time=1"
qargs+=(-append "console=ttyS0 $klog panic=-1 vmrun_dir=$run vmrun_9p=$p9opts")

# Guest side configuration and command.
{
    echo "net=${net:-0}"
    echo "rw_mounts='$rw_mounts'"
    echo "ro_mounts='$ro_mounts'"
} >"$run/config"
{
    echo "cd $(q "$cwd") || { echo $(q "$me: cannot cd to $cwd in the guest (/tmp, /run and /dev are guest-local there)") >&2; exit 125; }"
    [ -n "$ivshmem_env" ] && echo "export VMRUN_IVSHMEM=$ivshmem_env"
    for e in ${envs[@]+"${envs[@]}"}; do
        name=${e%%=*}
        [[ $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || usage_err "--env: bad variable name in '$e'"
        if [ "$name" = "$e" ]; then
            [ -n "${!name+set}" ] || continue
            val=${!name}
        else
            val=${e#*=}
        fi
        echo "export $name=$(q "$val")"
    done
    printf 'exec'
    for a in "$@"; do printf ' %s' "$(q "$a")"; done
    echo
} >"$run/cmd.sh"

# ------------------------------------------------------------------ run
cat "$run/out" &
cpid=$!
"$qemu" "${qargs[@]}" </dev/null >"$run/qemu.log" 2>&1 &
qpid=$!
(
    trap 'kill $s 2>/dev/null; exit 0' TERM
    sleep "$timeout" & s=$!
    wait $s
    : >"$run/timed-out"
    kill -TERM "$qpid" 2>/dev/null
    sleep 5 & s=$!
    wait $s
    kill -KILL "$qpid" 2>/dev/null
) </dev/null >/dev/null 2>&1 &
wpid=$!

wait "$qpid"
qrc=$?
qpid=
kill "$wpid" 2>/dev/null
wait "$wpid" 2>/dev/null
wpid=
# cat ends when QEMU closes the FIFO; if QEMU never opened it, stop cat.
for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
    kill -0 "$cpid" 2>/dev/null || break
    sleep 0.05
done
kill "$cpid" 2>/dev/null
wait "$cpid" 2>/dev/null
cpid=

show_console() {
    if [ -s "$run/console.log" ]; then
        echo "$me: --- guest console (last 40 lines) ---" >&2
        tail -n 40 "$run/console.log" | tr -d '\r' >&2
        echo "$me: --- end of guest console ---" >&2
    fi
}
[ -n "$verbose" ] && [ -s "$run/console.log" ] && tr -d '\r' <"$run/console.log" >&2

status=$(cat "$run/status" 2>/dev/null)
case $status in
    "exit "[0-9]*)
        rc=${status#exit }
        rc=${rc%%[!0-9]*}
        exit "$rc"
        ;;
esac
if [ -e "$run/timed-out" ]; then
    echo "$me: error: guest timed out after ${timeout}s and was killed (command: $*)" >&2
    [ -n "$verbose" ] || show_console
    exit 124
fi
case $status in
    init-error*) echo "$me: error: guest init failed: ${status#init-error }" >&2 ;;
    *) echo "$me: error: guest did not report an exit status (QEMU exit code $qrc)" >&2 ;;
esac
if [ -s "$run/qemu.log" ]; then
    echo "$me: --- QEMU output ---" >&2
    tail -n 20 "$run/qemu.log" >&2
fi
[ -n "$verbose" ] || show_console
exit 125

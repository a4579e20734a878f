#!/usr/bin/env bash
# Boot test of the Raspberry Pi image: scripts/test-image.sh IMAGE[.xz] [--time-limit SECONDS]
#
# Boots IMAGE under qemu-system-aarch64 (-M virt, Cortex-A72, 2 CPUs, 1 GiB, TCG) with the
# kernel, initrd and command line copied OUT of the image's own FAT partition, as a Pi's firmware
# reads them (config.txt's kernel= and initramfs, cmdline.txt with the Pi's serial console
# ttyS1 swapped for qemu's ttyAMA0). The disk is virtio-blk with snapshot=on (the image is never
# written) on a qcow2 overlay 2 GiB larger than the image, so the first-boot growth shows.
# Networking is qemu's user mode with one forward, 127.0.0.1:PORT to the guest's 5004: the
# guest reaches nothing else. Over the serial console (scripts/pi-image/guest-test.py) it checks
# the services, discover.json through the forward, an admin's account add / sync / epg add /
# map auto against the demo's provider running in the guest, a tune that ffprobe reads, SIGTERM,
# a reboot and poweroff. Prints the boot time under emulation; ends with 'N passed, N failed'.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

fail() { echo "test-image.sh: $*" >&2; exit 1; }
say() { echo "test-image.sh: $*" >&2; }

image=""
time_limit=1500
while [ $# -gt 0 ]; do
  case "$1" in
    --time-limit) [ $# -ge 2 ] || fail "--time-limit needs seconds"; time_limit=$2; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) fail "unknown option $1" ;;
    *) [ -z "$image" ] || fail "one image only"; image=$1; shift ;;
  esac
done
[ -n "$image" ] || fail "usage: test-image.sh IMAGE[.xz] (the last line of scripts/build-image.sh)"
[ -f "$image" ] || fail "no image at $image"

work=$repo/target/pi-image/test
mkdir -p "$work"

# --- Host tools ------------------------------------------------------------------------------
need_pkgs=()
for t in mcopy:mtools xz:xz-utils python3:python3 ffprobe:ffmpeg qemu-img:qemu-utils sfdisk:fdisk; do
  command -v "${t%%:*}" >/dev/null || need_pkgs+=("${t#*:}")
done
apt_install() {
  [ "$(id -u)" = 0 ] || fail "needs $* (run as root, or: sudo apt-get install $*)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2 ||
    { apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2; } ||
    fail "could not install $*"
}
[ ${#need_pkgs[@]} -eq 0 ] || apt_install "${need_pkgs[@]}"

# qemu-system-aarch64: the machine's own if it has one. Otherwise Debian's qemu-system-arm is
# unpacked rather than installed (installing it can clash with a backported qemu-utils), and
# only its libraries are installed.
qemu=$(command -v qemu-system-aarch64 || true)
qemu_args=()
if [ -z "$qemu" ]; then
  q=$repo/target/pi-image/tools/qemu-system
  if [ ! -x "$q/usr/bin/qemu-system-aarch64" ]; then
    say "unpacking Debian's qemu-system-arm (not installed)"
    rm -rf "$q" && mkdir -p "$q/debs"
    (cd "$q/debs" && apt-get download qemu-system-arm qemu-system-data >&2) ||
      fail "apt-get download qemu-system-arm qemu-system-data failed"
    for d in "$q"/debs/*.deb; do dpkg-deb -x "$d" "$q"; done
    mapfile -t libs < <(apt-cache depends qemu-system-arm | sed -n 's/^ *Depends: \([a-z0-9.+-]*\)$/\1/p' |
                        grep -v '^qemu-')
    apt_install "${libs[@]}"
  fi
  qemu=$q/usr/bin/qemu-system-aarch64
  qemu_args=(-L "$q/usr/share/qemu")
  missing=$(ldd "$qemu" | grep 'not found' || true)
  [ -z "$missing" ] || fail "qemu-system-aarch64 lacks libraries: $missing"
fi

# --- The image, and what its FAT partition holds ---------------------------------------------
raw=$work/disk.img
case "$image" in
  *.xz) say "decompressing $(basename "$image")"; xz -dc "$image" | dd of="$raw" bs=4M conv=sparse status=none ;;
  *) cp --sparse=always "$image" "$raw" ;;
esac
parts=$(sfdisk -d "$raw" | sed -n 's/.*start= *\([0-9]*\), *size= *\([0-9]*\).*/\1 \2/p')
fat_start=$(echo "$parts" | sed -n '1s/ .*//p')
root_sectors=$(echo "$parts" | sed -n '2s/.* //p')
[ -n "$fat_start" ] || fail "no partition table in $image"
fat="$raw@@$(( fat_start * 512 ))"
mlabel -i "$fat" -s :: | grep -q RASPIFIRM || fail "the first partition is not labelled RASPIFIRM"
boot=$work/boot
rm -rf "$boot" && mkdir -p "$boot"
mcopy -n -i "$fat" ::config.txt ::cmdline.txt "$boot/" || fail "no config.txt or cmdline.txt on the FAT partition"
kernel=$(sed -n 's/^kernel=//p' "$boot/config.txt" | tail -n1)
initrd=$(sed -n 's/^initramfs \([^ ]*\).*/\1/p' "$boot/config.txt" | tail -n1)
if [ -z "$kernel" ] || [ -z "$initrd" ]; then fail "config.txt names no kernel= or initramfs"; fi
mcopy -n -i "$fat" "::$kernel" "::$initrd" "$boot/" || fail "config.txt names $kernel and $initrd, not on the FAT"
cmdline=$(tr -d '\n' <"$boot/cmdline.txt" | sed 's/console=ttyS1,115200/console=ttyAMA0,115200/')
say "kernel $kernel, initrd $initrd, cmdline: $cmdline"

# A larger overlay: the guest sees a bigger card, and the image file stays as it was.
overlay=$work/overlay.qcow2
size=$(stat -c %s "$raw")
rm -f "$overlay"
qemu-img create -q -f qcow2 -F raw -b "$raw" "$overlay" $(( size + 2 * 1024 * 1024 * 1024 ))

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# shellcheck disable=SC2054  # the commas belong to qemu options
cmd=("$qemu" "${qemu_args[@]}" -M virt -cpu cortex-a72 -smp 2 -m 1024 -accel tcg,thread=multi
     -kernel "$boot/$kernel" -initrd "$boot/$initrd" -append "$cmdline"
     -drive "if=none,id=disk,file=$overlay,format=qcow2,snapshot=on"
     -device virtio-blk-pci,drive=disk
     -netdev "user,id=net,hostfwd=tcp:127.0.0.1:$port-:5004" -device virtio-net-pci,netdev=net,romfile=
     -display none -monitor none -serial stdio -no-user-config -nodefaults)
say "booting (console log: $work/console.log; forward 127.0.0.1:$port -> guest :5004; limit ${time_limit} s)"
qemu_json=$(python3 -c 'import json, sys; print(json.dumps(sys.argv[1:]))' "${cmd[@]}")
# DUMP_QEMU=FILE: write the qemu command line (JSON) there and stop, to boot it by hand.
[ -z "${DUMP_QEMU:-}" ] || { echo "$qemu_json" >"$DUMP_QEMU"; exit 0; }
set +e
timeout --kill-after=10 $(( time_limit + 60 )) python3 "$repo/scripts/pi-image/guest-test.py" \
  --qemu "$qemu_json" --port "$port" --log "$work/console.log" --workdir "$work" \
  --time-limit "$time_limit" --raw-root-mib $(( root_sectors / 2048 ))
rc=$?
set -e
rm -f "$overlay" "$raw"
[ $rc -eq 0 ] || say "FAILED (exit $rc); the console log is $work/console.log"
exit $rc

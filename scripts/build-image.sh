#!/usr/bin/env bash
# The Raspberry Pi appliance image: scripts/build-image.sh [--deb FILE] [--suite trixie]
#
# An SD-card image for the Raspberry Pi 3, 4, 400 and Zero 2 W, made from Debian's own packages in
# the layout of Debian's raspi image-specs: an msdos label, a FAT partition labelled RASPIFIRM
# (mounted at /boot/firmware: the Pi firmware from raspi-firmware, the DTBs, config.txt,
# cmdline.txt, the kernel and the initrd) and an ext4 root labelled RASPIROOT. It prints the path
# of the compressed image (.img.xz) as its last line.
#
# Pi 5: not this image. Its boot EEPROM reads the same FAT layout, but Debian's kernel (6.12 in
# trixie) has no driver for the Pi 5's RP1 chip, so no Ethernet nor USB: it takes a kernel with
# RP1 support (mainline 6.17 or later, i.e. a newer Debian release or backports) plus the
# bcm2712-rpi-5-b.dtb, which this image already carries.
#
# Built without binfmt_misc (the kernel may be shared) and without mounting anything:
# debootstrap --foreign, then the second stage and apt under `proot -q qemu-aarch64-static`, the
# filesystems made from directories (mkfs.ext4 -d, mkfs.vfat + mcopy), and the disk put together
# with sfdisk and dd.
#
# Slow steps are cached under target/pi-image/: the base root filesystem (debootstrap and every
# package but StreamForge's, about 10 minutes under emulation) is kept as a tarball keyed by the
# package list and this script's base stage; --rebuild-base throws it away.
#
# Options:
#   --deb FILE       StreamForge's arm64 .deb (default: built by scripts/build-deb.sh --arch arm64)
#   --suite SUITE    Debian suite (default trixie)
#   --rebuild-base   ignore the cached base root filesystem
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

fail() { echo "build-image.sh: $*" >&2; exit 1; }
say() { echo "build-image.sh: $*" >&2; }

# trixie, Debian's current stable: kernel 6.12 (LTS) with better Raspberry Pi support than
# bookworm's 6.1 (the Zero 2 W and Pi 400 device trees, the Pi 4's PCIe/USB and GPIO fixes),
# security support into 2028 and LTS to 2030, and glibc 2.41 (StreamForge needs 2.34 or later).
suite=trixie
deb=""
rebuild_base=no
while [ $# -gt 0 ]; do
  case "$1" in
    --deb) [ $# -ge 2 ] || fail "--deb needs a file"; deb=$2; shift 2 ;;
    --suite) [ $# -ge 2 ] || fail "--suite needs a name"; suite=$2; shift 2 ;;
    --rebuild-base) rebuild_base=yes; shift ;;
    -h|--help) sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) fail "unknown argument: $1 (see --help)" ;;
  esac
done

[ "$(uname -m)" = x86_64 ] || fail "builds on an x86_64 machine (this one is $(uname -m))"
[ "$(id -u)" = 0 ] || fail "run as root: the root filesystem must hold root-owned files (sudo $0)"

# --- Host tools ------------------------------------------------------------------------------
need_pkgs=()
for t in debootstrap:debootstrap proot:proot mcopy:mtools mkfs.vfat:dosfstools sfdisk:fdisk \
         mkfs.ext4:e2fsprogs xz:xz-utils python3:python3 dpkg-deb:dpkg systemctl:systemd; do
  command -v "${t%%:*}" >/dev/null || need_pkgs+=("${t#*:}")
done
[ -e /usr/share/keyrings/debian-archive-keyring.gpg ] || need_pkgs+=(debian-archive-keyring)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  say "installing ${need_pkgs[*]}"
  command -v apt-get >/dev/null || fail "needs ${need_pkgs[*]} (a Debian host with apt-get)"
  apt-get update -qq >&2 || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >&2 ||
    fail "could not install ${need_pkgs[*]}"
fi

work=$repo/target/pi-image
mkdir -p "$work/tools"
# qemu-user, taken out of Debian's package rather than installed: installing it would register
# binfmt handlers, which these machines must not do.
qemu_user=$work/tools/qemu-user/usr/bin/qemu-aarch64-static
if [ ! -x "$qemu_user" ]; then
  say "fetching qemu-user-static (unpacked, not installed)"
  rm -rf "$work/tools/qemu-user" && mkdir -p "$work/tools/qemu-user"
  (cd "$work/tools" && rm -f qemu-user-static_*.deb && apt-get download qemu-user-static >&2) ||
    fail "apt-get download qemu-user-static failed"
  dpkg-deb -x "$work"/tools/qemu-user-static_*.deb "$work/tools/qemu-user"
fi

# Runs a command inside the arm64 root filesystem. nostatx.py refuses the syscalls proot 5.1
# does not translate (statx, openat2, faccessat2), so qemu-user falls back to ones it does.
in_root() {
  "$repo/scripts/nostatx.py" proot -q "$qemu_user" -r "$rootfs" -b /proc -b /sys -b /dev -w / \
    /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
    DEBIAN_FRONTEND=noninteractive DEB_MAINT_PARAMS=configure "$@"
}
apt_in_root() {
  in_root apt-get -y -o Dpkg::Options::=--force-confold -o Dpkg::Options::=--force-confdef "$@"
}

# --- Stage 1: the base root filesystem (cached) ----------------------------------------------
# Everything but StreamForge: the kernel, the Pi firmware, systemd and the appliance's services.
packages=(
  linux-image-arm64 raspi-firmware
  systemd-sysv udev kmod dbus
  systemd-resolved systemd-timesyncd   # networkd comes with systemd: DHCP on the wire, DNS, NTP
  avahi-daemon libnss-mdns             # streamforge.local
  openssh-server                       # off unless sysconf.txt gives a key
  sudo adduser iproute2 procps nano
  fdisk e2fsprogs dosfstools           # grow the root on first boot; fsck of both partitions
  netbase initramfs-tools              # initramfs-tools rebuilds the initrd natively on upgrades
)
base_key=$(
  { echo "$suite"; printf '%s\n' "${packages[@]}"
    sed -n '/^# --- Stage 1/,/^# --- Stage 2/p' "$0"
    cat "$repo/scripts/pi-image/sysusers-stub" "$repo/scripts/nostatx.py"; } | sha256sum | cut -c1-16
)
base_tar=$work/base-$suite-$base_key.tar
rootfs=$work/rootfs

if [ "$rebuild_base" = yes ] || [ ! -s "$base_tar" ]; then
  say "stage 1: debootstrap $suite arm64 (first stage, then the second under qemu-user)"
  rm -rf "$rootfs" && mkdir -p "$rootfs"
  start=$(date +%s)
  debootstrap --foreign --arch=arm64 --variant=minbase --components=main,non-free-firmware \
    --keyring=/usr/share/keyrings/debian-archive-keyring.gpg \
    "$suite" "$rootfs" http://deb.debian.org/debian >&2 || fail "debootstrap (first stage) failed"
  # In a container debootstrap leaves /proc as a symlink to the host's.
  if [ -L "$rootfs/proc" ]; then rm "$rootfs/proc"; mkdir "$rootfs/proc"; fi
  in_root /debootstrap/debootstrap --second-stage >&2 || fail "debootstrap second stage failed"

  cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: http://deb.debian.org/debian
Suites: $suite $suite-updates
Components: main non-free-firmware
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: $suite-security
Components: main non-free-firmware
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  rm -f "$rootfs/etc/apt/sources.list"
  # Build-only settings, removed in stage 2: apt cannot drop to _apt under proot.
  printf 'APT::Sandbox::User "root";\n' >"$rootfs/etc/apt/apt.conf.d/99build"
  # Kept on the box: no recommends, no documentation, manuals or translations (copyrights stay),
  # and of the kernel's device trees only Broadcom's (the Pi's).
  printf 'APT::Install-Recommends "false";\n' >"$rootfs/etc/apt/apt.conf.d/90appliance"
  cat >"$rootfs/etc/dpkg/dpkg.cfg.d/90appliance" <<'EOF'
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
path-exclude=/usr/lib/linux-image-*/*
path-include=/usr/lib/linux-image-*/broadcom/*
EOF
  # No daemon starts inside the build.
  printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
  chmod 755 "$rootfs/usr/sbin/policy-rc.d"
  # systemd-sysusers and systemd-tmpfiles abort under proot; a stand-in creates the users and
  # the tmpfiles are created at boot by systemd-tmpfiles-setup.service.
  in_root dpkg-divert --local --rename --add /usr/bin/systemd-sysusers >&2
  in_root dpkg-divert --local --rename --add /usr/bin/systemd-tmpfiles >&2
  install -m 755 "$repo/scripts/pi-image/sysusers-stub" "$rootfs/usr/bin/systemd-sysusers"
  printf '#!/bin/sh\nexit 0\n' >"$rootfs/usr/bin/systemd-tmpfiles"
  chmod 755 "$rootfs/usr/bin/systemd-tmpfiles"
  # mkinitramfs under proot yields an initrd without kernel modules: stage 2 makes the image's
  # own, so skip Debian's here (on the box, upgrades run the real update-initramfs natively).
  in_root dpkg-divert --local --rename --add /usr/sbin/update-initramfs >&2
  printf '#!/bin/sh\nexit 0\n' >"$rootfs/usr/sbin/update-initramfs"
  chmod 755 "$rootfs/usr/sbin/update-initramfs"
  # The raspi-firmware hook writes cmdline.txt from this. CMA=0 leaves cma= out: the kernel's
  # default (64 MB) suits every model, and an explicit 64M is what makes a Pi 4 unbootable.
  mkdir -p "$rootfs/etc/default"
  cat >"$rootfs/etc/default/raspi-firmware" <<'EOF'
# Read by raspi-firmware's hooks, which write /boot/firmware/config.txt and cmdline.txt.
ROOTPART=LABEL=RASPIROOT
CONSOLES="tty0 ttyS1,115200"
CMA=0
EOF

  say "stage 1: apt-get update and install (${#packages[@]} packages)"
  apt_in_root update >&2 || fail "apt-get update in the root filesystem failed"
  apt_in_root install "${packages[@]}" >&2 || fail "apt-get install in the root filesystem failed"
  apt_in_root clean >&2
  tar -C "$rootfs" --numeric-owner -cf "$base_tar.tmp" . && mv "$base_tar.tmp" "$base_tar"
  say "stage 1 took $(( $(date +%s) - start )) s; cached as $base_tar"
else
  say "stage 1: reusing $base_tar"
  rm -rf "$rootfs" && mkdir -p "$rootfs"
  tar -C "$rootfs" --numeric-owner -xf "$base_tar"
fi

# --- Stage 2: StreamForge and the appliance's configuration ----------------------------------
if [ -z "$deb" ]; then
  say "building the arm64 package (scripts/build-deb.sh --arch arm64)"
  deb=$("$repo/scripts/build-deb.sh" --arch arm64 | tail -n1)
fi
[ -f "$deb" ] || fail "no package at $deb"
[ "$(dpkg-deb -f "$deb" Architecture)" = arm64 ] || fail "$deb is not an arm64 package"
say "stage 2: installing $(basename "$deb") and configuring"
cp "$deb" "$rootfs/tmp/streamforge.deb"
apt_in_root install /tmp/streamforge.deb >&2 || fail "installing $deb failed"
rm -f "$rootfs/tmp/streamforge.deb"

# Files kept in the repo (units, scripts, issue, motd...) go in as they are.
cp -a "$repo/scripts/pi-image/overlay/." "$rootfs/"
chown -R root:root "$rootfs/etc/issue" "$rootfs/etc/motd" "$rootfs/usr/local"

echo streamforge >"$rootfs/etc/hostname"
cat >"$rootfs/etc/hosts" <<'EOF'
127.0.0.1	localhost
127.0.1.1	streamforge
::1		localhost ip6-localhost ip6-loopback
ff02::1		ip6-allnodes
ff02::2		ip6-allrouters
EOF
# Root read-write without access times; the firmware partition is only read at boot and
# written on kernel upgrades. /tmp is a tmpfs already (systemd's tmp.mount).
cat >"$rootfs/etc/fstab" <<'EOF'
# The raspi image-specs layout: partitions found by label.
LABEL=RASPIROOT  /               ext4  rw,noatime,commit=60                    0 1
LABEL=RASPIFIRM  /boot/firmware  vfat  rw,noatime,umask=0077,nofail  0 2
EOF
mkdir -p "$rootfs/boot/firmware"
# Root may log in on the console without a password, as on Debian's own Pi images (physical
# access is root anyway); SSH takes keys only and is off until sysconf.txt gives one.
in_root passwd -d root >&2
rm -f "$rootfs"/etc/ssh/ssh_host_*
# A machine ID per box, made on first boot (DHCP client IDs derive from it).
: >"$rootfs/etc/machine-id"
rm -f "$rootfs/var/lib/dbus/machine-id"
# resolved's stub resolver for DNS; avahi answers mDNS, so resolved leaves it alone.
ln -sf ../run/systemd/resolve/stub-resolv.conf "$rootfs/etc/resolv.conf"

# The units, enabled by the host's systemctl working offline on the tree (systemctl aborts under
# proot, inside dpkg as outside, which is also why the packages' own enables are redone here).
systemctl --root="$rootfs" enable systemd-networkd.service systemd-networkd-wait-online.service \
  systemd-resolved.service systemd-timesyncd.service avahi-daemon.service avahi-daemon.socket \
  streamforge.service streamforge-growroot.service streamforge-sysconf.service \
  getty@tty1.service >&2
systemctl --root="$rootfs" disable ssh.service ssh.socket >&2 2>&1 || true
# Nothing that writes to the card or reaches the Internet on a timer.
systemctl --root="$rootfs" mask apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer \
  e2scrub_all.timer e2scrub_reap.service systemd-firstboot.service >&2
systemctl --root="$rootfs" set-default multi-user.target >&2
in_root ldconfig
# What systemd would otherwise redo on the first boot because /etc looks older than /usr
# (ConditionNeedsUpdate): the hardware database, built here by the host's systemd-hwdb (under
# emulation the build at boot held udev back past the firmware partition's mount time-out), and
# the stamps saying /etc and /var are up to date (the users exist, ld.so.cache is made).
systemd-hwdb --root="$rootfs" update >&2
usr_ns=$(stat -c %Y "$rootfs/usr")000000000
for d in etc var; do
  printf '# Written by build-image.sh as systemd-update-done would.\nTIMESTAMP_NSEC=%s\n' "$usr_ns" >"$rootfs/$d/.updated"
  touch -r "$rootfs/usr" "$rootfs/$d/.updated"
done

# --- Stage 3: the initrd and the firmware partition's files ----------------------------------
# shellcheck disable=SC2012  # kernel file names are plain
kver=$(basename "$(ls -1 "$rootfs"/boot/vmlinuz-* | sort -V | tail -n1)")
kver=${kver#vmlinuz-}
say "stage 3: initrd for $kver"
mkdir -p "$work/initrd"
if ! ls "$work"/initrd/busybox-static_*_arm64.deb >/dev/null 2>&1; then
  (cd "$rootfs/tmp" && in_root sh -c 'cd /tmp && apt-get download busybox-static' >&2) ||
    fail "could not download busybox-static"
  mv "$rootfs"/tmp/busybox-static_*_arm64.deb "$work/initrd/"
fi
# shellcheck disable=SC2012
rm -rf "$work/initrd/bb" && dpkg-deb -x "$(ls "$work"/initrd/busybox-static_*_arm64.deb | tail -n1)" "$work/initrd/bb"
python3 "$repo/scripts/pi-image/make-initrd.py" --rootfs "$rootfs" --kver "$kver" \
  --busybox "$work/initrd/bb/usr/bin/busybox" --init "$repo/scripts/pi-image/initrd-init" \
  --out "$rootfs/boot/initrd.img-$kver" >&2

# raspi-firmware's own postinst fills /boot/firmware: it copies the Pi firmware, then runs its
# kernel hook (DTBs, kernel, initrd, config.txt, cmdline.txt), as on the box after an upgrade.
rm -rf "$rootfs/boot/firmware" && mkdir -p "$rootfs/boot/firmware"
in_root env DPKG_MAINTSCRIPT_PACKAGE=raspi-firmware DPKG_MAINTSCRIPT_NAME=postinst \
  sh /var/lib/dpkg/info/raspi-firmware.postinst configure >&2 ||
  fail "raspi-firmware's postinst failed"
for f in config.txt cmdline.txt "vmlinuz-$kver" "initrd.img-$kver" bootcode.bin start4.elf \
         bcm2711-rpi-4-b.dtb bcm2837-rpi-3-b.dtb bcm2837-rpi-zero-2-w.dtb; do
  [ -s "$rootfs/boot/firmware/$f" ] || fail "raspi-firmware's hook left no /boot/firmware/$f"
done
cmp -s "$rootfs/boot/firmware/initrd.img-$kver" "$rootfs/boot/initrd.img-$kver" ||
  fail "the firmware partition's initrd is not the image's"
grep -q 'root=LABEL=RASPIROOT' "$rootfs/boot/firmware/cmdline.txt" || fail "cmdline.txt lacks the root"

# --- Stage 4: clean up the build's traces ----------------------------------------------------
for f in /usr/sbin/update-initramfs /usr/bin/systemd-tmpfiles /usr/bin/systemd-sysusers; do
  rm -f "$rootfs$f"
  in_root dpkg-divert --local --rename --remove "$f" >&2
done
rm -f "$rootfs/usr/sbin/policy-rc.d" "$rootfs/etc/apt/apt.conf.d/99build"
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
  "$rootfs"/var/cache/debconf/*-old "$rootfs"/var/lib/dpkg/*-old "$rootfs"/var/log/* "$rootfs"/tmp/* \
  "$rootfs"/root/.bash_history "$rootfs"/etc/initramfs-tools/.build

# --- Stage 5: the disk -----------------------------------------------------------------------
say "stage 5: filesystems and the disk"
fatdir=$work/firmware
rm -rf "$fatdir" && mv "$rootfs/boot/firmware" "$fatdir" && mkdir "$rootfs/boot/firmware"
cp "$repo/scripts/pi-image/sysconf.txt" "$fatdir/sysconf.txt"
fat_mib=256
used_mib=$(( $(du -sm --apparent-size "$rootfs" | cut -f1) ))
# Room for a kernel upgrade and the database; the root grows to the card on first boot anyway.
root_mib=$(( used_mib * 115 / 100 + 256 ))
out=$work/out
mkdir -p "$out"
name=streamforge-$(dpkg-deb -f "$deb" Version)-raspi-$suite-arm64
img=$out/$name.img
rm -f "$img" "$img.xz" "$out/fat.img" "$out/root.img"
mkfs.vfat -C -n RASPIFIRM -F 32 "$out/fat.img" $(( fat_mib * 1024 )) >&2
mcopy -s -i "$out/fat.img" "$fatdir"/* ::/ || fail "mcopy onto the FAT failed"
mkfs.ext4 -q -L RASPIROOT -d "$rootfs" -E root_owner=0:0 "$out/root.img" "${root_mib}M" ||
  fail "mkfs.ext4 -d failed"
# 4 MiB before the FAT (aligned for SD cards' erase blocks).
total_mib=$(( 4 + fat_mib + root_mib ))
truncate -s "${total_mib}M" "$img"
sfdisk -q "$img" <<EOF
label: dos
unit: sectors
start=8192, size=$(( fat_mib * 2048 )), type=c, bootable
start=$(( 8192 + fat_mib * 2048 )), type=83
EOF
dd if="$out/fat.img" of="$img" bs=1M seek=4 conv=notrunc,sparse status=none
dd if="$out/root.img" of="$img" bs=1M seek=$(( 4 + fat_mib )) conv=notrunc,sparse status=none
rm -f "$out/fat.img" "$out/root.img"
say "compressing ($total_mib MiB raw, $used_mib MiB in the root filesystem)"
xz -T2 -6 -k "$img"
say "image: $(du -h --apparent-size "$img" | cut -f1) raw, $(du -h "$img.xz" | cut -f1) compressed"
echo "$img.xz"

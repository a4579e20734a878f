#!/usr/bin/env python3
"""Writes the image's initrd: a gzip'd newc cpio with busybox, /init and the kernel modules that
reach the root filesystem, decompressed and listed in load order (dependencies first).

Made on the host because mkinitramfs under proot + qemu-user leaves the modules out; this initrd
is small and known-good. Usage:
  make-initrd.py --rootfs DIR --kver VERSION --busybox FILE --init FILE --out FILE
"""
import argparse
import fnmatch
import gzip
import lzma
import os
import sys

# Paths under /lib/modules/VERSION/kernel (globs). virtio for qemu; the SD card's host
# controllers on the Pi 3 / Zero 2 W (sdhost: bcm2835, sdhci: sdhci-iproc) and Pi 4 / 400
# (emmc2: sdhci-iproc) plus what their device trees need first (the firmware mailbox, its
# clocks, GPIO expander and regulators, power domains, DMA); ext4.
WANTED = [
    "drivers/virtio/*", "drivers/block/virtio_blk.ko*",
    "drivers/mmc/core/*", "drivers/mmc/host/sdhci.ko*", "drivers/mmc/host/sdhci-pltfm.ko*",
    "drivers/mmc/host/sdhci-iproc.ko*", "drivers/mmc/host/bcm2835.ko*",
    "drivers/mailbox/bcm2835-mailbox.ko*", "drivers/firmware/raspberrypi.ko*",
    "drivers/clk/bcm/*", "drivers/gpio/gpio-raspberrypi-exp.ko*", "drivers/regulator/gpio-regulator.ko*",
    "drivers/regulator/fixed.ko*", "drivers/reset/reset-raspberrypi.ko*", "drivers/pmdomain/bcm/*",
    "drivers/soc/bcm/*", "drivers/mfd/bcm2835-pm.ko*", "drivers/dma/bcm2835-dma.ko*",
    "drivers/pinctrl/bcm/*",
    "fs/ext4/*", "fs/jbd2/*", "fs/mbcache.ko*", "lib/crc16.ko*", "crypto/crc32c*",
]


class Cpio:
    def __init__(self):
        self.out = bytearray()
        self.ino = 1

    def add(self, name, mode, data=b""):
        name_b = name.encode() + b"\0"
        hdr = "070701" + "".join(f"{v:08x}" for v in (
            self.ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name_b), 0))
        self.ino += 1
        self.out += hdr.encode() + name_b
        self.out += b"\0" * (-len(self.out) % 4)
        self.out += data
        self.out += b"\0" * (-len(self.out) % 4)

    def dir(self, name):
        self.add(name, 0o040755)

    def file(self, name, data, mode=0o755):
        self.add(name, 0o100000 | mode, data)

    def symlink(self, name, target):
        self.add(name, 0o120777, target.encode())

    def finish(self):
        self.add("TRAILER!!!", 0)
        return bytes(self.out)


def main():
    ap = argparse.ArgumentParser()
    for a in ("rootfs", "kver", "busybox", "init", "out"):
        ap.add_argument("--" + a, required=True)
    args = ap.parse_args()
    moddir = os.path.join(args.rootfs, "usr/lib/modules", args.kver)
    deps = {}
    with open(os.path.join(moddir, "modules.dep")) as f:
        for line in f:
            mod, _, rest = line.partition(":")
            deps[mod] = rest.split()
    wanted = [m for m in deps if any(fnmatch.fnmatch(m, "kernel/" + w) for w in WANTED)]
    order, seen = [], set()

    def visit(m):
        if m in seen:
            return
        seen.add(m)
        for d in deps.get(m, []):
            visit(d)
        order.append(m)
    for m in sorted(wanted):
        visit(m)
    missing = [w for w in ("virtio_blk", "ext4", "sdhci-iproc", "bcm2835.ko") if not any(w in m for m in order)]
    if missing:
        sys.exit(f"make-initrd.py: no module for {missing} in {moddir}")

    c = Cpio()
    for d in ("bin", "dev", "etc", "lib", "lib/modules", "proc", "root", "sys", "run", "tmp"):
        c.dir(d)
    with open(args.busybox, "rb") as f:
        c.file("bin/busybox", f.read())
    c.symlink("bin/sh", "busybox")
    with open(args.init, "rb") as f:
        c.file("init", f.read())
    made = set()
    listed = []
    for m in order:
        data = open(os.path.join(moddir, m), "rb").read()
        name = m
        if m.endswith(".xz"):
            data, name = lzma.decompress(data), m[:-3]
        elif m.endswith(".zst"):
            sys.exit("make-initrd.py: zstd modules not handled")
        parts = name.split("/")
        for i in range(1, len(parts)):
            p = "lib/modules/" + "/".join(parts[:i])
            if p not in made:
                made.add(p)
                c.dir(p)
        c.file("lib/modules/" + name, data, 0o644)
        listed.append(name)
    c.file("etc/initrd-modules", ("\n".join(listed) + "\n").encode(), 0o644)
    with open(args.out, "wb") as f:
        f.write(gzip.compress(c.finish(), 9, mtime=0))
    print(f"make-initrd.py: {len(listed)} modules, {os.path.getsize(args.out) // 1024} KiB -> {args.out}")


if __name__ == "__main__":
    main()

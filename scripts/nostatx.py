#!/usr/bin/env python3
"""Run a command with the statx(2) syscall failing with ENOSYS (seccomp filter).

Why: proot 5.1 does not translate the paths of statx, which qemu-user passes straight to the host
kernel, so an arm64 guest under `proot -q qemu-aarch64-static` sees "No such file" for paths that
exist (dash's `test -x`, coreutils, mkinitramfs). With statx refused, qemu-user falls back to
newfstatat, which proot does translate. A seccomp ERRNO result outranks proot's own TRACE filter.

Usage: nostatx.py COMMAND [ARG...]   (x86_64 hosts only)
"""
import ctypes
import os
import platform
import struct
import sys

if platform.machine() != "x86_64":
    sys.exit("nostatx.py: written for x86_64 hosts (statx is syscall 332 there)")

AUDIT_ARCH_X86_64 = 0xC000003E
NR_STATX = 332
NR_FACCESSAT2 = 439
NR_OPENAT2 = 437
ENOSYS = 38
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
# BPF opcodes
LD_W_ABS = 0x20
JEQ_K = 0x15
RET_K = 0x06

def insn(code, jt, jf, k):
    return struct.pack("HBBI", code, jt, jf, k)

prog = b"".join([
    insn(LD_W_ABS, 0, 0, 4),                      # seccomp_data.arch
    insn(JEQ_K, 1, 0, AUDIT_ARCH_X86_64),
    insn(RET_K, 0, 0, SECCOMP_RET_ALLOW),          # another ABI: leave it alone
    insn(LD_W_ABS, 0, 0, 0),                      # seccomp_data.nr
    insn(JEQ_K, 2, 0, NR_STATX),
    insn(JEQ_K, 1, 0, NR_OPENAT2),
    insn(JEQ_K, 0, 1, NR_FACCESSAT2),
    insn(RET_K, 0, 0, SECCOMP_RET_ERRNO | ENOSYS),
    insn(RET_K, 0, 0, SECCOMP_RET_ALLOW),
])
count = len(prog) // 8
buf = ctypes.create_string_buffer(prog)

class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

fprog = SockFprog(count, ctypes.addressof(buf))
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
    sys.exit(f"nostatx.py: PR_SET_NO_NEW_PRIVS: {os.strerror(ctypes.get_errno())}")
if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
    sys.exit(f"nostatx.py: seccomp: {os.strerror(ctypes.get_errno())}")
if len(sys.argv) < 2:
    sys.exit("usage: nostatx.py COMMAND [ARG...]")
os.execvp(sys.argv[1], sys.argv[1:])

#!/usr/bin/env bash
# The release binary for 64-bit ARM (Raspberry Pi 3, 4, 400, Zero 2 W on a 64-bit OS), cross-built
# on this machine. Installs what it needs when run as root (rustup's target, Debian's cross gcc),
# and prints the binary's path as its last line.
set -euo pipefail
cd "$(dirname "$0")/.."

target=aarch64-unknown-linux-gnu
fail() { echo "build-arm64.sh: $*" >&2; exit 1; }

command -v cargo >/dev/null || fail "cargo not found: install Rust with rustup (https://rustup.rs)"
if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
  rustup target add "$target" >&2 || fail "could not add the $target target with rustup"
fi
if ! command -v aarch64-linux-gnu-gcc >/dev/null || [ ! -e /usr/aarch64-linux-gnu/include/stdio.h ]; then
  [ "$(id -u)" = 0 ] || fail "needs Debian's cross compiler: sudo apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends gcc-aarch64-linux-gnu libc6-dev-arm64-cross >/dev/null
fi

# ring and the bundled SQLite are C: the cc crate picks these up for the target.
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
cargo build --release --locked --target "$target" --bin streamforge >&2

binary="target/$target/release/streamforge"
# The package promises libc6 >= 2.34: a newer symbol would make it a lie on older systems.
newest=$(aarch64-linux-gnu-objdump -T "$binary" | grep -o 'GLIBC_[0-9.]*' | sort -V | tail -n1)
[ "$(printf '%s\n' "$newest" GLIBC_2.34 | sort -V | tail -n1)" = GLIBC_2.34 ] ||
  fail "$binary needs $newest, newer than the package's libc6 (>= 2.34)"
echo "$binary"

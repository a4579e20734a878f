#!/usr/bin/env python3
"""Boots the Pi image under qemu-system-aarch64 and checks it over the serial console.

Called by scripts/test-image.sh, which prepares the kernel, initrd and command line taken out of
the image's own FAT partition. The guest reaches nothing but the host's forwarded port (user-mode
networking, no other forward). Prints one line per check and ends with 'N passed, N failed'.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request


class Guest:
    def __init__(self, cmd, log_path, deadline):
        self.log = open(log_path, "wb")
        self.buf = bytearray()
        self.lock = threading.Condition()
        self.deadline = deadline
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        self.n = 0
        threading.Thread(target=self._reader, daemon=True).start()

    def _reader(self):
        while True:
            data = self.proc.stdout.read1(65536)
            if not data:
                with self.lock:
                    self.lock.notify_all()
                return
            self.log.write(data)
            self.log.flush()
            with self.lock:
                self.buf += data
                self.lock.notify_all()

    def mark(self):
        with self.lock:
            return len(self.buf)

    def text(self, start=0):
        with self.lock:
            return self.buf[start:].decode("utf-8", "replace")

    def wait_for(self, pattern, start, timeout):
        """Waits until pattern (regex, bytes) appears in the output after offset start."""
        rx = re.compile(pattern)
        end = min(time.monotonic() + timeout, self.deadline)
        with self.lock:
            while True:
                m = rx.search(self.buf, start)
                if m:
                    return m
                left = end - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    return None
                self.lock.wait(min(left, 1.0))

    def send(self, text):
        self.proc.stdin.write(text.encode())
        self.proc.stdin.flush()

    def run(self, cmd, timeout=120):
        """Runs a shell command in the guest; returns (exit code or None on timeout, output)."""
        self.n += 1
        tag = f"E{self.n}"
        start = self.mark()
        self.send(f"{cmd}\nprintf '@@%s:%s@@\\n' {tag} $?\n")
        m = self.wait_for(rb"@@" + tag.encode() + rb":(\d+)@@", start, timeout)
        if not m:
            return None, self.text(start)
        out = self.buf[start:m.start()].decode("utf-8", "replace")
        return int(m.group(1)), out.replace("\r", "").strip("\n")


def http_get(url, timeout=5.0, limit=None):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, (r.read(limit) if limit else r.read())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--qemu", required=True, help="the qemu command line, JSON list")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--time-limit", type=int, default=1200)
    ap.add_argument("--raw-root-mib", type=int, required=True, help="root partition size in the image")
    args = ap.parse_args()

    results = []

    def check(name, ok, detail=""):
        results.append(ok)
        print(f"{'PASS' if ok else 'FAIL'}  {name}{(': ' + detail) if detail else ''}", flush=True)
        return ok

    t0 = time.monotonic()
    g = Guest(json.loads(args.qemu), args.log, t0 + args.time_limit)
    base = f"http://127.0.0.1:{args.port}"

    # discover.json is polled from the host from the start, to time it.
    discover = {}

    def poll_discover():
        while time.monotonic() < t0 + 600 and g.proc.poll() is None:
            try:
                status, body = http_get(base + "/discover.json", timeout=3)
                if status == 200:
                    discover["t"] = time.monotonic() - t0
                    discover["body"] = body
                    return
            except Exception:
                pass
            time.sleep(1)
    threading.Thread(target=poll_discover, daemon=True).start()

    prompt_at = {}

    def login(start, what):
        m = g.wait_for(rb"\S+ login: ", start, 300)
        if not check(f"{what}: login prompt on the serial console", m is not None,
                     f"{time.monotonic() - t0:.1f} s after qemu started" if m else "none in 300 s"):
            return False
        prompt_at[what] = time.monotonic() - t0
        issue = g.text(start)
        g.send("root\n")
        m2 = g.wait_for(rb"root@[^:]*:~# ", m.end(), 60)
        if not check(f"{what}: root logs in on the console (no password, as on Debian's Pi images)",
                     m2 is not None):
            return False
        g.send("stty -echo; dmesg -n 1; export PS1= PS2= TERM=dumb SYSTEMD_PAGER= SYSTEMD_COLORS=0\n")
        time.sleep(1)
        return issue

    start = g.mark()
    issue = login(start, "boot")
    boot_s = prompt_at.get("boot", time.monotonic() - t0)
    if issue is False:
        g.proc.kill()
        print(f"0 passed, {len(results)} failed" if not any(results) else
              f"{sum(results)} passed, {len(results) - sum(results)} failed")
        return 1
    check("the console's welcome (/etc/issue) gives the page's URL with the address",
          re.search(r"http://streamforge\.local:5004/\s+or\s+http://10\.0\.2\.15:5004/", issue) is not None,
          next((l.strip() for l in issue.splitlines() if "Web page" in l), "no 'Web page' line"))

    rc, out = g.run("systemctl is-system-running --wait", 300)
    rc2, failed = g.run("systemctl --failed --no-legend --plain")
    check("systemd: the system is running, no unit failed", out.strip().endswith("running") and not failed.strip(),
          f"{out.strip().splitlines()[-1] if out.strip() else '?'}; failed: {failed.strip() or 'none'}")
    rc, out = g.run("systemctl is-active streamforge")
    check("streamforge.service is active", rc == 0, out.strip())
    for _ in range(60):
        if "t" in discover:
            break
        time.sleep(1)
    ok = "t" in discover
    detail = ""
    if ok:
        d = json.loads(discover["body"])
        detail = f"{discover['t']:.1f} s after qemu started; BaseURL {d.get('BaseURL')}"
    check("/discover.json answers through the forwarded port", ok, detail)

    rc, out = g.run("hostname; cat /etc/hostname")
    check("hostname is streamforge", out.split() == ["streamforge", "streamforge"], " ".join(out.split()))
    rc, out = g.run("ip -4 -o addr show scope global")
    check("DHCP gave the wired interface an address", "10.0.2.15" in out, out.strip()[:80])
    rc, out = g.run("systemctl is-active systemd-timesyncd avahi-daemon systemd-networkd systemd-resolved")
    check("timesyncd, avahi-daemon, networkd and resolved are active", rc == 0, " ".join(out.split()))
    rc, out = g.run("getent hosts streamforge.local")
    check("mDNS: streamforge.local resolves (nss-mdns via avahi)", rc == 0 and out.strip() != "", out.strip())
    rc, out = g.run("systemctl is-enabled ssh.service; ss -Hltn 'sport = :22' | wc -l; ls /etc/ssh/ssh_host_* 2>/dev/null | wc -l")
    check("SSH is off (no sysconf.txt key): disabled, nothing on :22, no host keys", out.split() == ["disabled", "0", "0"],
          " ".join(out.split()))
    rc, out = g.run("journalctl --header | sed -n 's/^File path: //p' | head -1; ls /var/log/journal 2>&1 | head -1")
    check("journald keeps the journal in RAM (/run/log/journal)", out.startswith("/run/log/journal"),
          out.splitlines()[0] if out else "")
    rc, out = g.run("findmnt -no SOURCE,FSTYPE,OPTIONS /; findmnt -no SOURCE,FSTYPE /boot/firmware")
    check("root (ext4, noatime) and /boot/firmware (vfat) are mounted", "ext4" in out and "noatime" in out and "vfat" in out,
          " | ".join(l.split(",")[0] for l in out.splitlines()))
    rc, out = g.run("df -m --output=size / | tail -1; systemctl show -p Result --value streamforge-growroot")
    parts = out.split()
    grown = len(parts) >= 2 and int(parts[0]) > args.raw_root_mib + 512
    check("the root filesystem was grown to the disk on first boot", grown,
          f"{parts[0] if parts else '?'} MiB (partition in the image: {args.raw_root_mib} MiB)")
    rc, out = g.run("grep -c 'streamforge.local:5004' /etc/motd; command -v sudo")
    check("/etc/motd gives the page's URL; sudo is installed", out.split()[:1] not in ([], ["0"]) and "sudo" in out,
          " ".join(out.split()))

    # An admin adds a subscription against a fake provider running in the guest (the demo's).
    rc, out = g.run("streamforge demo --data-dir /tmp/demo --listen 127.0.0.1:5005 >/tmp/demo.log 2>&1 &")
    url = None
    for _ in range(60):
        rc, out = g.run("cat /tmp/demo.log")
        m = re.search(r"provider \(Xtream panel, user (\S+), password (\S+)\): (http://\S+)", out)
        if m:
            user, password, url = m.group(1), m.group(2), m.group(3)
            break
        time.sleep(1)
    if check("the demo's provider runs in the guest", url is not None, url or out[-300:]):
        steps = [
            ("account add", f"echo {password} | streamforge account add demo --url {url} --username {user} --password-stdin --max-connections 2"),
            ("sync", "streamforge sync"),
            ("epg add xtream:demo", "streamforge epg add xtream:demo"),
            ("map auto", "streamforge map auto"),
        ]
        for name, cmd in steps:
            rc, out = g.run(cmd, 300)
            check(f"admin: streamforge {name}", rc == 0, (out.strip().splitlines() or ["(no output)"])[-1][:120])
        rc, out = g.run("find /var/lib/streamforge ! -user streamforge | wc -l")
        check("nothing in /var/lib/streamforge belongs to root afterwards", out.strip() == "0", out.strip())
        lineup = []
        for _ in range(20):
            try:
                lineup = json.loads(http_get(base + "/lineup.json")[1])
            except Exception:
                lineup = []
            if lineup:
                break
            time.sleep(1)
        check("the running service sees the mapping: lineup.json lists channels", bool(lineup),
              f"{len(lineup)} channels" + (f", first {lineup[0].get('GuideNumber')} {lineup[0].get('GuideName')}" if lineup else ""))
        if lineup:
            chan_url = lineup[0]["URL"]
            path = "/" + chan_url.split("/", 3)[3]
            ts = os.path.join(args.workdir, "tune.ts")
            # The disk's written sectors around the tune (sync flushes what the tune dirtied).
            _, w0 = g.run("sync; awk '{print $7}' /sys/block/vda/stat")
            got = 0
            t_tune = time.monotonic()
            try:
                with urllib.request.urlopen(base + path, timeout=30) as r, open(ts, "wb") as f:
                    while time.monotonic() - t_tune < 12 and got < 3_000_000:
                        chunk = r.read(65536)
                        if not chunk:
                            break
                        f.write(chunk)
                        got += len(chunk)
            except Exception as e:
                print(f"      tune: {e}")
            _, w1 = g.run("sync; awk '{print $7}' /sys/block/vda/stat")
            try:
                written = (int(w1.split()[-1]) - int(w0.split()[-1])) * 512
            except (ValueError, IndexError):
                written = -1
            check("streaming writes little to the card (events only)", 0 <= written < 1024 * 1024,
                  f"{written // 1024} KiB written to the disk during the tune")
            probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_type,codec_name",
                                    "-of", "compact=p=0:nk=1", ts], capture_output=True, text=True)
            streams = " ".join(probe.stdout.split())
            check(f"a tune through the forwarded port ({path}) gives MPEG-TS that ffprobe reads",
                  got > 100_000 and probe.returncode == 0 and "video" in probe.stdout,
                  f"{got // 1024} KiB in {time.monotonic() - t_tune:.1f} s; streams: {streams or probe.stderr.strip()[:100]}")
    g.run("kill %1 2>/dev/null; true")

    # SIGTERM: the service stops cleanly (systemd counts it a success, so no restart).
    t = time.monotonic()
    rc, out = g.run("systemctl kill -s TERM --kill-whom=main streamforge; for i in $(seq 100); do "
                    "systemctl -q is-active streamforge || break; sleep 0.1; done; "
                    "systemctl show -p ActiveState -p Result -p ExecMainCode -p ExecMainStatus streamforge | tr '\\n' ' '")
    check("SIGTERM: streamforge stops cleanly", "ActiveState=inactive" in out and "Result=success" in out,
          f"{out.strip()} ({time.monotonic() - t:.1f} s)")
    rc, out = g.run("systemctl start streamforge && systemctl is-active streamforge")
    check("streamforge starts again", rc == 0, out.strip())

    # Reboot: clean shutdown, clean boot, the data kept.
    start = g.mark()
    t_reboot = time.monotonic()
    g.send("systemctl reboot\n")
    issue = login(start, "reboot")
    if issue is not False:
        shutdown = g.text(start)
        # (systemd-ssh-generator's note that qemu gave no AF_VSOCK is not a failure.)
        bad = [l.strip() for l in shutdown.splitlines() if "AF_VSOCK" not in l and
               re.search(r"Failed to|timed out|Timed out|A stop job is running|Killing process|FAILED|recovering journal|not cleanly unmounted", l)]
        check("reboot: no failure, time-out or unclean unmount on the console", not bad, "; ".join(bad[:3]) or
              f"back at the login prompt in {time.monotonic() - t_reboot:.1f} s")
        rc, out = g.run("systemctl is-system-running --wait; dmesg | grep -ci 'EXT4-fs.*\\(recover\\|orphan\\|errors\\)'", 300)
        check("reboot: the system is running again, ext4 mounted without recovery", out.split()[:2] == ["running", "0"],
              " ".join(out.split()))
        rc, out = g.run("systemctl is-active streamforge && streamforge account list")
        check("reboot: the service is active and the subscription is still there", rc == 0 and "demo" in out,
              " ".join(out.split())[:100])

    g.send("poweroff\n")
    try:
        g.proc.wait(timeout=max(10, min(120, t0 + args.time_limit - time.monotonic())))
        check("poweroff: qemu exits", True)
    except subprocess.TimeoutExpired:
        g.proc.kill()
        check("poweroff: qemu exits", False, "killed after 120 s")

    passed = sum(results)
    print(f"boot under emulation: login prompt {boot_s:.1f} s after qemu started"
          + (f", /discover.json answered at {discover['t']:.1f} s" if "t" in discover else ""))
    print(f"{passed} passed, {len(results) - passed} failed")
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())

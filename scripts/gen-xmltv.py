#!/usr/bin/env python3
"""Generate a synthetic XMLTV guide of a chosen size, for memory and speed benchmarks.

Realistic shape: all <channel> elements first (display names, a numeric display-name or <lcn>,
icons), then each channel's programmes in time order with titles, sub-titles, descriptions,
credits, categories, episode numbers, ratings and the odd escaped or non-ASCII character.
Deterministic for a given --seed. Standard library only.

    scripts/gen-xmltv.py --channels 500 --megabytes 200 -o /tmp/guide.xml
    scripts/gen-xmltv.py --channels 500 --megabytes 200 --gzip -o /tmp/guide.xml.gz
"""

import argparse
import gzip
import random
import sys
from datetime import datetime, timedelta, timezone
from xml.sax.saxutils import escape, quoteattr

WORDS = (
    "news weather world sport match final live night morning show kitchen garden house "
    "planet ocean city detective doctor family island secret road journey history science "
    "music quiz comedy drama crime mystery wild summer winter star game cup league race"
).split()
ODD = ["Tom & Jerry", "Q&A", "<Live>", '"Quoted"', "L'Équipe", "Café Müller", "東京 Report", "Señor Chef"]
CATEGORIES = ["News", "Sports", "Movie", "Series", "Documentary", "Kids", "Entertainment", "Music"]
PEOPLE = ["Ann Lee", "Bob Smith", "Chloé Martin", "Dev Patel", "Eva Novak", "Femi Ade", "Gus O'Neil"]
ZONES = [timezone.utc, timezone(timedelta(hours=1)), timezone(timedelta(hours=-5))]


def phrase(rng, n):
    words = [rng.choice(WORDS) for _ in range(n)]
    return " ".join(words).capitalize()


def channel_xml(n, rng):
    number = 100 + n
    out = [f'  <channel id="ch{n:04d}.example.com">\n']
    name = f"{phrase(rng, 2)} {rng.choice(['HD', 'FHD', 'TV', 'One', '+1'])}"
    out.append(f"    <display-name lang=\"en\">{escape(name)}</display-name>\n")
    if n % 3:
        out.append(f"    <display-name>{number}</display-name>\n")
    else:
        out.append(f"    <lcn>{number}</lcn>\n")
    out.append(f"    <icon src=\"https://logos.example.com/{n}.png?w=256&amp;h=256\"/>\n")
    out.append(f"    <url>https://channels.example.com/{n}</url>\n")
    out.append("  </channel>\n")
    return "".join(out)


def programme_xml(channel, start, stop, index, rng):
    fmt = "%Y%m%d%H%M%S %z"
    title = phrase(rng, rng.randint(1, 4))
    if index % 17 == 0:
        title += " " + rng.choice(ODD)
    season, episode = rng.randint(1, 12), rng.randint(1, 24)
    out = [
        f'  <programme start="{start.strftime(fmt)}" stop="{stop.strftime(fmt)}" '
        f'channel="ch{channel:04d}.example.com">\n',
        f'    <title lang="en">{escape(title)}</title>\n',
    ]
    if index % 2:
        out.append(f'    <sub-title lang="en">{escape(phrase(rng, 3))}</sub-title>\n')
    desc = ". ".join(phrase(rng, rng.randint(6, 14)) for _ in range(rng.randint(1, 4))) + "."
    out.append(f'    <desc lang="en">{escape(desc)}</desc>\n')
    if index % 4 == 0:
        out.append("    <credits>\n")
        out.append(f"      <director>{escape(rng.choice(PEOPLE))}</director>\n")
        for person in rng.sample(PEOPLE, 2):
            out.append(f"      <actor role={quoteattr(phrase(rng, 1))}>{escape(person)}</actor>\n")
        out.append("    </credits>\n")
    for category in rng.sample(CATEGORIES, rng.randint(1, 2)):
        out.append(f'    <category lang="en">{category}</category>\n')
    out.append(f'    <episode-num system="xmltv_ns">{season - 1}.{episode - 1}.0/1</episode-num>\n')
    out.append(f'    <episode-num system="onscreen">S{season:02d}E{episode:02d}</episode-num>\n')
    if index % 5 == 0:
        out.append("    <previously-shown/>\n")
    if index % 7 == 0:
        out.append('    <rating system="VCHIP">\n      <value>TV-PG</value>\n    </rating>\n')
    out.append("  </programme>\n")
    return "".join(out)


def generate(out, channels, target_bytes, seed):
    rng = random.Random(seed)
    written = 0

    def put(s):
        nonlocal written
        data = s.encode("utf-8")
        written += len(data)
        out.write(data)

    put('<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE tv SYSTEM "xmltv.dtd">\n')
    put('<tv generator-info-name="gen-xmltv.py">\n')
    for n in range(channels):
        put(channel_xml(n, rng))
    programmes = 0
    budget = max(0, target_bytes - written) / max(1, channels)
    base = datetime(2024, 1, 1, 6, 0, tzinfo=timezone.utc)
    for n in range(channels):
        zone = ZONES[n % len(ZONES)]
        start = base.astimezone(zone)
        spent = 0
        while spent < budget:
            stop = start + timedelta(minutes=rng.choice([15, 30, 30, 60, 60, 90, 120]))
            text = programme_xml(n, start, stop, programmes, rng)
            put(text)
            spent += len(text.encode("utf-8"))
            programmes += 1
            start = stop
    put("</tv>\n")
    return written, programmes


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--channels", type=int, default=500)
    parser.add_argument("--megabytes", type=float, default=200, help="uncompressed size (MiB)")
    parser.add_argument("--gzip", action="store_true", help="gzip the output")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("-o", "--output", default="-", help="file to write (default: stdout)")
    args = parser.parse_args()
    if args.channels < 1 or args.megabytes < 0:
        parser.error("--channels must be at least 1 and --megabytes not negative")

    raw = sys.stdout.buffer if args.output == "-" else open(args.output, "wb")
    with raw:
        out = gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) if args.gzip else raw
        with out:
            written, programmes = generate(
                out, args.channels, int(args.megabytes * 1024 * 1024), args.seed
            )
    print(
        f"{args.channels} channels, {programmes} programmes, {written} bytes uncompressed",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()

//! Criterion micro-benchmarks of the hot code (SPEC §8): HTTP request parsing, TS alignment and
//! PAT search, the output program (passthrough and rewriting a spliced-in source), fan-out
//! bookkeeping per buffer, lineup and M3U rendering for 1,000 channels, and EPG filtering
//! throughput. `cargo bench --bench hot_paths`.

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use streamforge::fake_provider::{FakeProvider, StreamVariant};
use streamforge::hdhr::{self, GuideNumber, LineupEntry, M3uEntry};
use streamforge::http::{Parse, parse_head};
use streamforge::relay::program::{Piece, Program};
use streamforge::relay::ring::Ring;
use streamforge::relay::ts::{Aligned, Aligner};
use streamforge::xmltv::{self, Limits, LineupChannel, SourceFile};

/// The first `len` bytes of a fake provider stream, cut into `chunk`-sized buffers as an upstream
/// read delivers.
fn upstream_chunks(len: usize, chunk: usize) -> Vec<BytesMut> {
    variant_chunks(&StreamVariant::default(), len, chunk)
}

fn variant_chunks(variant: &StreamVariant, len: usize, chunk: usize) -> Vec<BytesMut> {
    let stream = FakeProvider::stream_bytes(variant, 0, len);
    stream.chunks(chunk).map(BytesMut::from).collect()
}

fn http_parsing(c: &mut Criterion) {
    let plex = b"GET /auto/v101?transcode=native HTTP/1.0\r\nHost: 192.168.1.50:5004\r\n\
User-Agent: PlexMediaServer/1.40.0\r\nAccept: */*\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n";
    let mut group = c.benchmark_group("http");
    group.throughput(Throughput::Elements(1));
    group.bench_function("parse a Plex stream request", |b| {
        b.iter(|| match parse_head(black_box(plex), 8 * 1024, 64 * 1024) {
            Parse::Complete(head) => black_box(head.len),
            _ => panic!("a valid request"),
        })
    });
    group.finish();
}

fn ts_alignment(c: &mut Criterion) {
    let mut group = c.benchmark_group("ts");
    for (name, chunk) in [
        ("aligned 64 KiB reads", 188 * 348),
        ("unaligned 64000-byte reads", 64_000),
    ] {
        let chunks = upstream_chunks(8 * 1024 * 1024, chunk);
        let total: usize = chunks.iter().map(BytesMut::len).sum();
        group.throughput(Throughput::Bytes(total as u64));
        group.bench_function(name, |b| {
            b.iter_batched(
                || chunks.clone(),
                |chunks| {
                    let mut aligner = Aligner::new();
                    let mut pieces = 0;
                    for chunk in chunks {
                        aligner
                            .push(chunk, &mut |aligned: Aligned| {
                                pieces += 1;
                                black_box(aligned);
                            })
                            .expect("TS");
                    }
                    pieces
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

/// The output program per 64 KiB read: the session's first source passed through (a header
/// check per packet, plus PSI and frame starts), and a source spliced in from another encoder
/// (every packet's PID, counter and clocks rewritten in place).
fn output_program(c: &mut Criterion) {
    let len = 8 * 1024 * 1024;
    let read = 188 * 348;
    let first = upstream_chunks(len, read);
    let other_encoder = StreamVariant {
        pmt_pid: Some(0x42),
        es_pids: vec![0x211, 0x212],
        clock_offset: 5_000_000_000,
        ..StreamVariant::default()
    };
    let backup = variant_chunks(&other_encoder, len, read);
    let mut group = c.benchmark_group("output program, per 64 KiB");
    group.throughput(Throughput::Elements(first.len() as u64));
    let run = |program: &mut Program, attempt: u64, chunks: Vec<BytesMut>, now: Instant| {
        let mut bytes = 0;
        for chunk in chunks {
            program.receive(attempt, chunk);
            program.release(now, &mut |piece: Piece| bytes += piece.data.len());
        }
        bytes
    };
    group.bench_function("passthrough", |b| {
        b.iter_batched(
            || first.clone(),
            |chunks| {
                let now = Instant::now();
                let mut program = Program::new(Duration::from_millis(1500));
                let mut chunks = chunks.into_iter();
                program.receive(1, chunks.next().expect("a read"));
                program.splice(1, false, now);
                run(&mut program, 1, chunks.collect(), now)
            },
            BatchSize::LargeInput,
        )
    });
    group.bench_function("rewriting a spliced-in source", |b| {
        b.iter_batched(
            || (first[..4].to_vec(), backup.clone()),
            |(primary, chunks)| {
                let now = Instant::now();
                let mut program = Program::new(Duration::from_millis(1500));
                let mut primary = primary.into_iter();
                program.receive(1, primary.next().expect("a read"));
                program.splice(1, false, now);
                run(&mut program, 1, primary.collect(), now);
                let mut chunks = chunks.into_iter();
                program.receive(2, chunks.next().expect("a read"));
                program.splice(2, false, now);
                run(&mut program, 2, chunks.collect(), now)
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

fn fanout(c: &mut Criterion) {
    let mut aligner = Aligner::new();
    let mut pieces = Vec::new();
    for chunk in upstream_chunks(4 * 1024 * 1024, 188 * 348) {
        aligner
            .push(chunk, &mut |a: Aligned| pieces.push(a.freeze()))
            .expect("TS");
    }
    let mut group = c.benchmark_group("fanout");
    for viewers in [1usize, 5, 50] {
        group.throughput(Throughput::Elements(pieces.len() as u64));
        group.bench_function(format!("push + {viewers} viewers read, per buffer"), |b| {
            b.iter(|| {
                let mut ring = Ring::new(3 * 1024 * 1024);
                ring.push(Piece {
                    data: pieces[0].clone(),
                    start: Some(0),
                });
                let start = ring.start().expect("a start");
                let mut positions = vec![start; viewers];
                let mut out = Vec::with_capacity(64);
                for data in &pieces {
                    ring.push(Piece {
                        data: data.clone(),
                        start: None,
                    });
                    for position in &mut positions {
                        out.clear();
                        *position = ring.read(*position, &mut out, 64).expect("keeps up");
                    }
                }
                black_box(out.len())
            })
        });
    }
    group.finish();
}

fn lineup_rendering(c: &mut Criterion) {
    let numbers: Vec<GuideNumber> = (0..1000)
        .map(|n| (1000 + n).to_string().parse().expect("number"))
        .collect();
    let lineup: Vec<LineupEntry> = numbers
        .iter()
        .map(|number| LineupEntry {
            number: number.clone(),
            name: format!("Channel {number} HD & More"),
            url: format!("http://192.168.1.50:5004/auto/v{number}"),
            hd: true,
            favorite: false,
        })
        .collect();
    let m3u: Vec<M3uEntry> = numbers
        .iter()
        .map(|number| M3uEntry {
            tvg_id: number.to_string(),
            tvg_chno: number.clone(),
            tvg_name: format!("Channel {number}"),
            tvg_logo: format!("http://logos.example.net/{number}.png"),
            group_title: "UK| GENERAL".into(),
            url: format!("http://192.168.1.50:5004/stream/{number}"),
        })
        .collect();
    let mut group = c.benchmark_group("lineup, 1000 channels");
    group.bench_function("lineup.json", |b| {
        b.iter(|| hdhr::lineup_json(black_box(&lineup)))
    });
    group.bench_function("lineup.xml", |b| {
        b.iter(|| hdhr::lineup_xml(black_box(&lineup)))
    });
    group.bench_function("playlist.m3u", |b| {
        b.iter(|| hdhr::playlist_m3u(black_box(&m3u), "http://192.168.1.50:5004/epg.xml"))
    });
    group.finish();
}

/// A guide of `channels` channels with a day of half-hour programmes each.
fn guide(channels: usize) -> String {
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<tv>\n");
    for c in 0..channels {
        let _ = writeln!(
            xml,
            "<channel id=\"ch{c}.example\"><display-name>Channel {c}</display-name></channel>"
        );
    }
    for c in 0..channels {
        for slot in 0..48 {
            let (hour, minute) = (slot / 2, (slot % 2) * 30);
            let _ = writeln!(
                xml,
                "<programme start=\"20261121{hour:02}{minute:02}00 +0000\" stop=\"20261121{hour:02}{:02}00 +0000\" channel=\"ch{c}.example\">\
<title lang=\"en\">Show {slot} &amp; friends</title><desc lang=\"en\">An episode of a long running series on channel {c}, with a description of a realistic length.</desc>\
<category lang=\"en\">Drama</category><episode-num system=\"xmltv_ns\">1.{slot}.</episode-num></programme>",
                minute + 29
            );
        }
    }
    xml.push_str("</tv>\n");
    xml
}

fn epg_filtering(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let source = dir.path().join("guide.xml");
    let text = guide(400);
    std::fs::write(&source, &text).expect("write guide");
    // A lineup of a quarter of the guide's channels, as a typical installation maps.
    let lineup: Vec<LineupChannel> = (0..100)
        .map(|c| LineupChannel {
            source_id: 1,
            source_channel_id: format!("ch{}.example", c * 4),
            output_id: (1000 + c).to_string(),
            number: (1000 + c).to_string(),
            name: format!("Channel {c}"),
            icon: None,
        })
        .collect();
    let sources = [SourceFile {
        source_id: 1,
        path: source,
        shift_seconds: 3600,
    }];
    let out = dir.path().join("out");
    std::fs::create_dir(&out).expect("out dir");
    let mut group = c.benchmark_group("epg");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function("filter and render 100 of 400 channels", |b| {
        b.iter(|| xmltv::render(&lineup, &sources, &out, &Limits::default()).expect("render"))
    });
    group.finish();
}

criterion_group!(
    benches,
    http_parsing,
    ts_alignment,
    output_program,
    fanout,
    lineup_rendering,
    epg_filtering
);
criterion_main!(benches);

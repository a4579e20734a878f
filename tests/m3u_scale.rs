//! Huge playlists in bounded memory: the parser alone holds one line whatever the playlist's
//! size (counted by a per-thread allocation counter), and the real binary syncs 100,000 entries
//! with a measured peak resident set.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use common::Sandbox;
use nix::sys::resource::{UsageWho, getrusage};
use streamforge::fake_provider::{FakeAccount, FakeProvider, ProviderOptions};

/// Counts the live heap bytes of each thread, and their peak.
struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn note(delta: isize) {
    // `try_with`: a thread being torn down has no counters left, and needs none.
    let _ = LIVE.try_with(|live| {
        live.set(live.get() + delta);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(live.get())));
    });
}

// SAFETY: every call is forwarded to the system allocator unchanged; only counters are kept.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size() as isize);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note(-(layout.size() as isize));
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size as isize - layout.size() as isize);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const ENTRIES: usize = 100_000;

/// Entry `i` of a realistic playlist: attributes, a user agent every tenth entry, a long URL.
fn entry(i: usize) -> String {
    let agent = if i.is_multiple_of(10) {
        "#EXTVLCOPT:http-user-agent=Kodi/20.2\r\n"
    } else {
        ""
    };
    format!(
        "#EXTINF:-1 tvg-id=\"ch{i}.example\" tvg-name=\"Channel {i}\" \
         tvg-logo=\"http://logos.example/{i}.png\" group-title=\"Group {}\",UK: Channel {i} FHD\r\n\
         {agent}http://cdn.example:8080/live/someuser/somepassword/{i}.ts\r\n",
        i % 40
    )
}

#[test]
fn the_parser_holds_one_line_whatever_the_playlist_size() {
    let mut parser = streamforge::m3u::Parser::new();
    let mut entries = 0usize;
    let mut bytes = 0usize;
    let mut chunk = Vec::with_capacity(64 * 1024 + 1024);
    let start = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(start));
    let mut counts_seen = |e: streamforge::m3u::Entry| {
        assert!(e.url.ends_with(".ts"));
        entries += 1;
    };
    for i in 0..ENTRIES {
        chunk.extend_from_slice(entry(i).as_bytes());
        if chunk.len() >= 64 * 1024 {
            bytes += chunk.len();
            parser.push(&chunk, &mut counts_seen);
            chunk.clear();
        }
    }
    bytes += chunk.len();
    parser.push(&chunk, &mut counts_seen);
    let counts = parser.finish(&mut counts_seen);
    let peak = PEAK.with(Cell::get) - start;
    println!(
        "parsed {ENTRIES} entries ({:.1} MB) with a peak of {peak} live heap bytes above the start",
        bytes as f64 / 1e6
    );
    assert_eq!(
        (entries, counts.entries, counts.skipped),
        (ENTRIES, ENTRIES, 0)
    );
    // The 64 KiB chunk buffer is counted too; the parser adds a line and one pending entry.
    assert!(
        peak < 200 * 1024,
        "peak {peak} bytes: the parser holds more than a line"
    );
}

#[test]
fn syncing_a_hundred_thousand_entries_has_a_bounded_peak() {
    let provider = FakeProvider::start(ProviderOptions {
        accounts: vec![FakeAccount::new("alice", "pw", 2)],
        ..ProviderOptions::default()
    })
    .expect("start fake provider");
    let body: String = (0..ENTRIES).map(entry).collect();
    let size = body.len();
    provider.add_file("/big.m3u", body.into_bytes(), "audio/x-mpegurl");
    let sandbox = Sandbox::new();
    sandbox
        .run(
            &[
                "account",
                "add",
                "big",
                "--m3u",
                &format!("{}/big.m3u", provider.http_url()),
            ],
            "",
        )
        .expect(0);
    let sync = sandbox.run(&["sync", "big"], "").expect(0);
    assert!(
        sync.stdout
            .contains(&format!("big: {ENTRIES} streams ({ENTRIES} new")),
        "{}",
        sync.stdout
    );
    // The largest resident set of any child this test binary waited for: the sync (the other
    // children, `account add` and the test above, are far smaller).
    let peak_kib = getrusage(UsageWho::RUSAGE_CHILDREN)
        .expect("getrusage")
        .max_rss();
    println!(
        "sync of {ENTRIES} entries ({:.1} MB playlist): peak RSS {:.1} MB ({})",
        size as f64 / 1e6,
        peak_kib as f64 / 1024.0,
        sync.stdout.trim()
    );
    // Generous for the entries kept and SQLite's cache, but well below what a whole body plus a
    // document tree would need on top of them.
    assert!(
        (peak_kib as usize) * 1024 < 4 * size,
        "peak RSS {peak_kib} KiB for a {size}-byte playlist"
    );
    let again = sandbox.run(&["sync", "big"], "").expect(0);
    assert!(
        again.stdout.contains("(0 new, 0 updated, 0 removed)"),
        "ids are stable: {}",
        again.stdout
    );
}

//! MPEG-TS alignment of one upstream source (SPEC §7 "Zero copy"): finds the 188-byte packet
//! grid in whatever chunks the network delivers, drops what does not fit it, and hands out whole
//! packets from the source's first PAT onwards, so a splice to this source starts cleanly.
//!
//! Output is pieces of the received chunks, still writable (the output program rewrites a
//! spliced-in source in place before the bytes are frozen). Only a packet split across two
//! chunks is copied, into a small slab shared by many such joins: the hot path costs a split per
//! chunk, not an allocation per packet.

use bytes::{Buf, BytesMut};

pub const PACKET: usize = 188;

/// Bytes dropped without finding (or regaining) the packet grid before the source is declared not
/// to be MPEG-TS.
pub const NOT_TS_LIMIT: u64 = 64 * 1024;

const SYNC: u8 = 0x47;

/// Packet starts in a row that confirm a (re)sync; a chunk end may leave fewer to check at first.
const CONFIRM: u8 = 3;

/// Joined packets are cut from slabs of this many bytes: one allocation per 64 joins.
const CARRY_SLAB: usize = 64 * PACKET;

/// Whole packets of one source: `len % 188 == 0`, never empty.
pub type Aligned = BytesMut;

/// The source is not MPEG-TS (an HTML page, a JSON error, garbage).
#[derive(Debug, PartialEq)]
pub struct NotTs;

/// Aligns one source; a new source needs a new `Aligner` (its predecessor's partial packet is
/// dropped with it).
#[derive(Debug)]
pub struct Aligner {
    /// Bytes held over from the previous chunk: the start of a packet when synced, or a sync
    /// candidate that the next chunk must confirm when not.
    carry: BytesMut,
    synced: bool,
    /// Whether the first PAT has been seen; nothing is forwarded before it.
    started: bool,
    /// Packet starts seen in a row since the last (re)sync, up to `CONFIRM`.
    streak: u8,
    /// Bytes dropped since the grid was last confirmed.
    hunted: u64,
    skipped: u64,
    not_ts: bool,
}

/// Where the packet grid starts in a buffer, as far as the buffer can tell.
enum Sync {
    /// Confirmed by the next packet starts the buffer holds.
    At(usize),
    /// A sync byte too close to the end to check: the next chunk decides.
    Unconfirmed(usize),
    None,
}

impl Default for Aligner {
    fn default() -> Self {
        Self::new()
    }
}

impl Aligner {
    /// A new source: nothing is forwarded before its first PAT (so a splice starts cleanly).
    pub fn new() -> Aligner {
        Aligner {
            carry: BytesMut::new(),
            synced: false,
            started: false,
            streak: 0,
            hunted: 0,
            skipped: 0,
            not_ts: false,
        }
    }

    /// Feeds one received chunk (any length, any split); calls `emit` zero or more times with
    /// aligned output. Once it has returned `NotTs`, it always does.
    pub fn push(&mut self, chunk: BytesMut, emit: &mut impl FnMut(Aligned)) -> Result<(), NotTs> {
        if self.not_ts {
            return Err(NotTs);
        }
        let mut pos = 0;
        if !self.carry.is_empty() && !self.synced && self.resolve_candidate(&chunk)? {
            return Ok(());
        }
        if !self.carry.is_empty() && self.synced {
            let need = PACKET.saturating_sub(self.carry.len());
            let Some(rest) = chunk.get(..need) else {
                self.carry_extend(&chunk);
                return Ok(());
            };
            self.carry_extend(rest);
            pos = need;
            let packet = self.carry.split();
            if !self.started && is_pat(&packet) {
                self.started = true;
            }
            if self.started {
                emit(packet);
            } else {
                self.skipped += PACKET as u64;
            }
        }
        self.scan(chunk, pos, emit)
    }

    /// Bytes dropped so far while (re)synchronising or before the first PAT.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Walks `chunk` from `pos`, emitting runs of whole packets and keeping a trailing partial
    /// packet in `carry`.
    fn scan(
        &mut self,
        mut chunk: BytesMut,
        mut pos: usize,
        emit: &mut impl FnMut(Aligned),
    ) -> Result<(), NotTs> {
        loop {
            if !self.synced {
                match find_sync(&chunk, pos) {
                    Sync::At(k) => {
                        self.drop_bytes(k - pos)?;
                        pos = k;
                        self.synced = true;
                        self.streak = 0;
                    }
                    Sync::Unconfirmed(k) => {
                        self.drop_bytes(k - pos)?;
                        self.carry_extend(chunk.get(k..).unwrap_or_default());
                        return Ok(());
                    }
                    Sync::None => return self.drop_bytes(chunk.len() - pos),
                }
            }
            let mut from = pos;
            while let Some(packet) = chunk.get(pos..pos + PACKET) {
                if packet.first() != Some(&SYNC) {
                    break;
                }
                self.bump();
                if !self.started {
                    if is_pat(packet) {
                        self.started = true;
                    } else {
                        self.skipped += PACKET as u64;
                        from = pos + PACKET;
                    }
                }
                pos += PACKET;
            }
            if self.started && pos > from {
                let mut run = chunk.split_to(pos);
                run.advance(from);
                emit(run);
                pos = 0;
            }
            match chunk.get(pos..).unwrap_or_default() {
                [] => return Ok(()),
                tail @ [SYNC, ..] => {
                    self.bump();
                    self.carry_extend(tail);
                    return Ok(());
                }
                // Sync lost: search again from here.
                _ => self.synced = false,
            }
        }
    }

    /// Decides the sync candidate held in `carry` now that `chunk` follows it. Returns true when
    /// the chunk is still too short to tell (it then joins the carry).
    fn resolve_candidate(&mut self, chunk: &[u8]) -> Result<bool, NotTs> {
        let held = self.carry.len();
        let at = |i: usize| match i.checked_sub(held) {
            None => self.carry.get(i),
            Some(j) => chunk.get(j),
        };
        let mut found = None;
        for k in 0..held {
            if at(k) != Some(&SYNC) {
                continue;
            }
            match (at(k + PACKET), at(k + 2 * PACKET)) {
                (None, _) => found = Some((k, false)),
                (Some(&SYNC), None | Some(&SYNC)) => found = Some((k, true)),
                _ => continue,
            }
            break;
        }
        let Some((k, confirmed)) = found else {
            self.carry.clear();
            self.drop_bytes(held)?;
            return Ok(false);
        };
        self.carry.advance(k);
        self.drop_bytes(k)?;
        if confirmed {
            self.synced = true;
            self.streak = 0;
            self.bump();
            Ok(false)
        } else {
            // Fits the carry: nothing after `k` could be checked, so at most a packet's bytes
            // start there.
            self.carry_extend(chunk);
            Ok(true)
        }
    }

    fn bump(&mut self) {
        if self.streak < CONFIRM {
            self.streak += 1;
            if self.streak == CONFIRM {
                self.hunted = 0;
            }
        }
    }

    fn drop_bytes(&mut self, n: usize) -> Result<(), NotTs> {
        self.skipped += n as u64;
        self.hunted += n as u64;
        if self.hunted >= NOT_TS_LIMIT {
            self.not_ts = true;
            self.carry.clear();
            return Err(NotTs);
        }
        Ok(())
    }

    /// Appends at most a packet's bytes to `carry`, starting a new slab when the current one is
    /// full (the old one lives on in the joined packets handed out).
    fn carry_extend(&mut self, bytes: &[u8]) {
        if self.carry.capacity() - self.carry.len() < bytes.len() {
            let mut slab = BytesMut::with_capacity(CARRY_SLAB.max(self.carry.len() + bytes.len()));
            slab.extend_from_slice(&self.carry);
            self.carry = slab;
        }
        self.carry.extend_from_slice(bytes);
    }
}

/// A PAT (PID 0) packet with payload_unit_start_indicator set.
fn is_pat(packet: &[u8]) -> bool {
    matches!(packet, [SYNC, b1, 0, ..] if b1 & 0x40 != 0 && b1 & 0x1F == 0)
}

/// The first sync byte at or after `from` whose following packet starts (as far as `bytes` goes)
/// are sync bytes too.
fn find_sync(bytes: &[u8], from: usize) -> Sync {
    let mut k = from;
    while let Some(i) = bytes
        .get(k..)
        .and_then(|rest| rest.iter().position(|&b| b == SYNC))
    {
        let at = k + i;
        match (bytes.get(at + PACKET), bytes.get(at + 2 * PACKET)) {
            (None, _) => return Sync::Unconfirmed(at),
            (Some(&SYNC), None | Some(&SYNC)) => return Sync::At(at),
            _ => k = at + 1,
        }
    }
    Sync::None
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLIP: &[u8] = include_bytes!("../../assets/clip.ts");

    /// Splitmix64: a seeded, dependency-free PRNG for chunk sizes and junk.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        /// Bytes that never contain a sync byte.
        fn junk(&mut self, len: usize) -> Vec<u8> {
            (0..len)
                .map(|_| match self.next() as u8 {
                    SYNC => 0,
                    b => b,
                })
                .collect()
        }
    }

    fn first_pat(ts: &[u8]) -> usize {
        ts.chunks(PACKET).position(is_pat).unwrap() * PACKET
    }

    /// Feeds `input` in the given chunk sizes (the last chunk takes the rest) and returns what
    /// came out, after checking every emitted piece.
    fn run(
        aligner: &mut Aligner,
        input: &[u8],
        sizes: impl IntoIterator<Item = usize>,
    ) -> (Vec<Aligned>, Result<(), NotTs>) {
        let input = BytesMut::from(input);
        let mut out = Vec::new();
        let mut at = 0;
        let mut sizes = sizes.into_iter();
        while at < input.len() {
            let len = sizes.next().unwrap_or(usize::MAX).min(input.len() - at);
            let pushed = aligner.push(BytesMut::from(&input[at..at + len]), &mut |a| out.push(a));
            at += len;
            if pushed.is_err() {
                return (out, pushed);
            }
        }
        for a in &out {
            check(a);
        }
        (out, Ok(()))
    }

    fn check(a: &Aligned) {
        assert!(!a.is_empty());
        assert_eq!(a.len() % PACKET, 0);
        assert!(a.chunks(PACKET).all(|p| p[0] == SYNC));
    }

    fn concat(out: &[Aligned]) -> Vec<u8> {
        out.iter().flat_map(|a| a.iter().copied()).collect()
    }

    fn random_sizes(seed: u64, max: usize) -> impl Iterator<Item = usize> {
        let mut rng = Rng(seed);
        std::iter::repeat_with(move || 1 + rng.below(max))
    }

    #[test]
    fn random_chunks_give_the_clip_from_its_first_pat() {
        let pat = first_pat(CLIP);
        assert_eq!(pat, 188);
        for (seed, max) in (0..20)
            .map(|s| (s, 70_000))
            .chain((20..25).map(|s| (s, 500)))
        {
            let mut aligner = Aligner::new();
            let (out, result) = run(&mut aligner, CLIP, random_sizes(seed, max));
            assert_eq!(result, Ok(()));
            assert!(concat(&out) == CLIP[pat..], "seed {seed}");
            assert_eq!(aligner.skipped(), pat as u64);
        }
    }

    #[test]
    fn one_byte_at_a_time() {
        let ts = &CLIP[..PACKET * 100];
        let mut aligner = Aligner::new();
        let (out, result) = run(&mut aligner, ts, std::iter::repeat(1));
        assert_eq!(result, Ok(()));
        assert!(concat(&out) == ts[first_pat(ts)..]);
    }

    #[test]
    fn garbage_prefix_is_skipped_at_every_split() {
        let ts = &CLIP[..PACKET * 40];
        let pat = first_pat(ts);
        let mut rng = Rng(7);
        // Random bytes, sync bytes included: false candidates must be rejected.
        let mut input: Vec<u8> = (0..3000).map(|_| rng.next() as u8).collect();
        assert!(input.contains(&SYNC));
        let garbage = input.len();
        input.extend_from_slice(ts);
        for split in garbage - 400..garbage + 400 {
            for middle in [1, 2, 187, 188, 189, 300, 400] {
                let mut aligner = Aligner::new();
                let (out, result) = run(&mut aligner, &input, [split, middle]);
                assert_eq!(result, Ok(()));
                assert!(concat(&out) == ts[pat..], "split {split} middle {middle}");
                assert_eq!(aligner.skipped(), (garbage + pat) as u64);
            }
        }
    }

    #[test]
    fn a_sync_byte_ending_a_chunk_is_confirmed_by_the_next() {
        let ts = &CLIP[..PACKET * 40];
        let mut input = Rng(3).junk(1000);
        input.push(SYNC);
        input.extend_from_slice(ts);
        let mut aligner = Aligner::new();
        let (out, result) = run(&mut aligner, &input, [1001]);
        assert_eq!(result, Ok(()));
        assert!(concat(&out) == ts[PACKET..]);
        assert_eq!(aligner.skipped(), 1001 + PACKET as u64);
    }

    #[test]
    fn html_and_json_are_not_ts() {
        let html = "<!DOCTYPE html><html><head><title>403 Forbidden</title></head><body>\
                    <h1>GET denied</h1><p>Go back to Google.</p></body></html>\n";
        let json = r#"{"user_info":{"auth":0,"status":"Expired","message":"GG"}}"#;
        for page in [html, json] {
            let body = page.repeat(2 * NOT_TS_LIMIT as usize / page.len());
            let mut aligner = Aligner::new();
            let (out, result) = run(&mut aligner, body.as_bytes(), random_sizes(1, 5000));
            assert_eq!(result, Err(NotTs));
            assert!(out.is_empty());
            assert_eq!(
                aligner.push(BytesMut::from(CLIP), &mut |_| panic!()),
                Err(NotTs)
            );
        }
    }

    #[test]
    fn junk_between_packets_is_skipped_exactly() {
        let pat = first_pat(CLIP);
        let cut = PACKET * 1000;
        let junk = Rng(11).junk(1000);
        let input = [&CLIP[..cut], &junk, &CLIP[cut..]].concat();
        for seed in 0..10 {
            let mut aligner = Aligner::new();
            let (out, result) = run(&mut aligner, &input, random_sizes(seed, 70_000));
            assert_eq!(result, Ok(()));
            assert!(concat(&out) == CLIP[pat..], "seed {seed}");
            assert_eq!(aligner.skipped(), (pat + junk.len()) as u64);
        }
    }

    #[test]
    fn junk_inside_a_packet_keeps_the_output_aligned() {
        let cut = PACKET * 1000 + 50;
        let junk = Rng(12).junk(1000);
        let input = [&CLIP[..cut], &junk, &CLIP[cut..]].concat();
        for seed in 0..10 {
            let mut aligner = Aligner::new();
            let (out, result) = run(&mut aligner, &input, random_sizes(seed, 70_000));
            assert_eq!(result, Ok(()));
            let got = concat(&out);
            // The broken packet goes out cut short by junk; the rest of it is dropped.
            assert!(got.starts_with(&CLIP[PACKET..PACKET * 1000]));
            assert!(got.ends_with(&CLIP[PACKET * 1001..]));
            assert_eq!(got.len(), CLIP.len() - PACKET);
            assert_eq!(aligner.skipped(), (input.len() - got.len()) as u64);
        }
    }

    #[test]
    fn losing_sync_for_good_is_not_ts() {
        let input = [CLIP, &Rng(5).junk(NOT_TS_LIMIT as usize + 1)].concat();
        let mut aligner = Aligner::new();
        let (out, result) = run(&mut aligner, &input, random_sizes(2, 70_000));
        assert_eq!(result, Err(NotTs));
        assert!(concat(&out) == CLIP[PACKET..]);
    }

    #[test]
    fn regained_sync_resets_the_not_ts_budget() {
        let mut rng = Rng(6);
        let mut input = Vec::new();
        let mut junk = 0;
        for packets in CLIP.chunks(PACKET * 50) {
            input.extend_from_slice(packets);
            let run = rng.junk(1500);
            junk += run.len();
            input.extend_from_slice(&run);
        }
        assert!(junk as u64 > NOT_TS_LIMIT);
        let mut aligner = Aligner::new();
        let (out, result) = run(&mut aligner, &input, random_sizes(4, 70_000));
        assert_eq!(result, Ok(()));
        assert!(concat(&out) == CLIP[PACKET..]);
        assert_eq!(aligner.skipped(), (junk + PACKET) as u64);
    }

    #[test]
    fn aligned_chunks_are_passed_on_without_a_copy() {
        let mut chunk = BytesMut::from(CLIP);
        let second = chunk.split_off(PACKET * 100);
        let (first_at, second_at) = (chunk[PACKET..].as_ptr(), second.as_ptr());
        let mut aligner = Aligner::new();
        let mut out = Vec::new();
        aligner.push(chunk, &mut |a| out.push(a)).unwrap();
        aligner.push(second, &mut |a| out.push(a)).unwrap();
        assert_eq!(out.len(), 2);
        // The first packet (before the PAT) is skipped: the rest is the chunk's own memory.
        assert_eq!(out[0].as_ptr(), first_at);
        assert_eq!(out[0].len(), PACKET * 99);
        assert_eq!(out[1].as_ptr(), second_at);
        assert_eq!(out[1].len(), CLIP.len() - PACKET * 100);
    }

    #[test]
    fn output_pieces_scale_with_chunks_not_packets() {
        let input: Vec<u8> = CLIP.repeat(10_000_000 / CLIP.len() + 1);
        let chunk = 64 * 1024;
        let chunks = input.len().div_ceil(chunk);
        let mut aligner = Aligner::new();
        let (out, result) = run(&mut aligner, &input, std::iter::repeat(chunk));
        assert_eq!(result, Ok(()));
        // At most one joined packet and one slice per chunk, against ~53,000 packets.
        assert!(
            out.len() <= 2 * chunks,
            "{} pieces for {chunks} chunks",
            out.len()
        );
        let total: usize = out.iter().map(|a| a.len()).sum();
        assert_eq!(total, input.len() - PACKET);
    }
}

//! The served EPG: the lineup's channels, then their programmes streamed from the cached
//! sources with the channel rewritten to the lineup's id and the times shifted and normalised.

use std::collections::{HashMap, HashSet};
use std::io::BufRead;
use std::path::{Path, PathBuf};

use quick_xml::events::BytesStart;

use super::Limits;
use super::error::XmltvError;
use super::output::EpgFiles;
use super::programme::Programme;
use super::source::open_source;
use super::stream::{Tok, XmlStream};
use super::text::{attrs, push_attr, push_text, trim};
use super::time::XmltvTime;

/// A channel of the lineup, and where its programmes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineupChannel {
    /// The guide source holding its programmes.
    pub source_id: i64,
    /// Its `<channel id>` in that source.
    pub source_channel_id: String,
    /// Its id in the served EPG: the channel number by default, or the source's id.
    pub output_id: String,
    pub number: String,
    pub name: String,
    pub icon: Option<String>,
}

/// A cached guide source (plain or gzipped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    pub source_id: i64,
    pub path: PathBuf,
    /// Added to every programme time (`--shift`); may be negative.
    pub shift_seconds: i64,
}

/// What a render wrote and what it left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RenderReport {
    /// `<channel>` elements written.
    pub channels: usize,
    /// `<programme>` elements written.
    pub programmes: u64,
    /// Lineup programmes skipped for a missing or invalid start.
    pub skipped_bad_time: u64,
    /// Lineup programmes skipped for having no title, or being over the size limit.
    pub skipped_invalid: u64,
    /// Invalid stop times (or stops before the start) dropped from programmes that were kept.
    pub dropped_stops: u64,
    /// Channels written without any programme (tv_validate_file calls this
    /// `channelnoprogramme`; clients show "no guide data").
    pub channels_without_programmes: usize,
}

const HEADER: &[u8] = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
<!DOCTYPE tv SYSTEM \"xmltv.dtd\">\n\
<tv generator-info-name=\"StreamForge\">\n";

/// Output is gathered into chunks of about this size before each write to both files.
const CHUNK: usize = 64 * 1024;

/// Source channel id to the output ids it feeds, for one source.
type Routes<'a> = HashMap<&'a str, Vec<&'a str>>;

/// Writes `epg.xml` and `epg.xml.gz` into `out_dir` for `lineup`, reading programmes from
/// `sources`; on any error the previous files are left as they were.
///
/// Channels come first, in lineup order; a repeated or empty `output_id` is left out. A source
/// channel feeding several lineup channels has its programmes written once for each. Sources
/// are read in the order given (a repeated `source_id` once); a lineup channel whose source is
/// missing from `sources` gets its `<channel>` but no programmes.
pub fn render(
    lineup: &[LineupChannel],
    sources: &[SourceFile],
    out_dir: &Path,
    limits: &Limits,
) -> Result<RenderReport, XmltvError> {
    let mut files = EpgFiles::create(out_dir)?;
    let mut report = RenderReport::default();
    let mut chunk = Vec::with_capacity(CHUNK * 2);
    chunk.extend_from_slice(HEADER);

    let mut written: HashSet<&str> = HashSet::new();
    let mut routes: HashMap<i64, Routes<'_>> = HashMap::new();
    for channel in lineup {
        let output_id = trim(&channel.output_id);
        if output_id.is_empty() || !written.insert(output_id) {
            continue;
        }
        push_channel(&mut chunk, output_id, channel);
        report.channels += 1;
        let targets = routes
            .entry(channel.source_id)
            .or_default()
            .entry(trim(&channel.source_channel_id))
            .or_default();
        targets.push(output_id);
        if chunk.len() >= CHUNK {
            files.write_all(&chunk)?;
            chunk.clear();
        }
    }

    let mut read_sources = HashSet::new();
    let mut programme = Programme::default();
    let mut with_programmes = HashSet::new();
    for source in sources {
        if !read_sources.insert(source.source_id) {
            continue;
        }
        let Some(routes) = routes.get(&source.source_id) else {
            continue;
        };
        let mut copy = SourceCopy {
            routes,
            shift: source.shift_seconds,
            files: &mut files,
            chunk: &mut chunk,
            programme: &mut programme,
            report: &mut report,
            with_programmes: &mut with_programmes,
            limits,
        };
        copy.source(source).map_err(|error| match error {
            XmltvError::Output { .. } => error,
            other => XmltvError::Source {
                source_id: source.source_id,
                path: source.path.clone(),
                error: Box::new(other),
            },
        })?;
    }
    chunk.extend_from_slice(b"</tv>\n");
    files.write_all(&chunk)?;
    files.commit()?;
    report.channels_without_programmes = report.channels.saturating_sub(with_programmes.len());
    Ok(report)
}

fn push_channel(out: &mut Vec<u8>, output_id: &str, channel: &LineupChannel) {
    out.extend_from_slice(b"<channel id=\"");
    push_attr(out, output_id);
    out.extend_from_slice(b"\">");
    let name = trim(&channel.name);
    let number = trim(&channel.number);
    let mut names = [name, number];
    if name == number {
        names[1] = "";
    }
    if names.iter().all(|n| n.is_empty()) {
        names[0] = output_id;
    }
    for name in names.iter().filter(|n| !n.is_empty()) {
        out.extend_from_slice(b"\n  <display-name>");
        push_text(out, name);
        out.extend_from_slice(b"</display-name>");
    }
    if let Some(icon) = channel.icon.as_deref().map(trim).filter(|i| !i.is_empty()) {
        out.extend_from_slice(b"\n  <icon src=\"");
        push_attr(out, icon);
        out.extend_from_slice(b"\"/>");
    }
    out.extend_from_slice(b"\n</channel>\n");
}

/// Copies the lineup's programmes out of one source.
struct SourceCopy<'a, 'r> {
    routes: &'r Routes<'r>,
    shift: i64,
    files: &'a mut EpgFiles,
    chunk: &'a mut Vec<u8>,
    programme: &'a mut Programme,
    report: &'a mut RenderReport,
    with_programmes: &'a mut HashSet<&'r str>,
    limits: &'a Limits,
}

/// The start tag of a programme of the lineup, checked.
struct Head<'r> {
    targets: &'r [&'r str],
    start: Option<XmltvTime>,
    /// `Err` for a stop that is invalid or before the start.
    stop: Option<Result<XmltvTime, ()>>,
    clumpidx: Option<String>,
}

impl<'r> SourceCopy<'_, 'r> {
    fn source(&mut self, source: &SourceFile) -> Result<(), XmltvError> {
        let reader = open_source(&source.path, self.limits)?;
        let mut xml = XmlStream::new(reader, self.limits)?;
        loop {
            let top = xml.depth() == 0;
            match xml.next()? {
                Tok::Eof => break,
                Tok::Start(e) if top && e.name().as_ref() == "programme" => {
                    let head = self.head(&e).map_err(|r| xml.malformed(r))?;
                    match head {
                        Some(head) => self.programme(&mut xml, head)?,
                        None => xml.skip_element()?,
                    }
                }
                Tok::Empty(e) if top && e.name().as_ref() == "programme" => {
                    // No children, so no title.
                    let head = self.head(&e).map_err(|r| xml.malformed(r))?;
                    self.report.skipped_invalid += u64::from(head.is_some());
                }
                Tok::Start(_) if top => xml.skip_element()?,
                _ => {}
            }
        }
        self.files.write_all(self.chunk)?;
        self.chunk.clear();
        Ok(())
    }

    /// The programme's head if its channel is in the lineup.
    fn head(&self, e: &BytesStart<'_>) -> Result<Option<Head<'r>>, String> {
        let [channel, start, stop, clumpidx] = attrs(e, ["channel", "start", "stop", "clumpidx"])?;
        let Some(targets) = channel.and_then(|c| self.routes.get(trim(&c))) else {
            return Ok(None);
        };
        let shifted = |t: &str| XmltvTime::parse(t).and_then(|t| t.shifted(self.shift));
        let start = start.as_deref().and_then(shifted);
        let stop = stop.map(|stop| {
            shifted(&stop)
                .filter(|stop| start.is_none_or(|start| stop.unix() >= start.unix()))
                .ok_or(())
        });
        Ok(Some(Head {
            targets,
            start,
            stop,
            clumpidx: clumpidx.filter(|c| is_clumpidx(c)).map(|c| c.into_owned()),
        }))
    }

    /// Reads a lineup programme whose start tag was just returned and writes it once per target.
    fn programme<R: BufRead>(
        &mut self,
        xml: &mut XmlStream<R>,
        head: Head<'r>,
    ) -> Result<(), XmltvError> {
        let Some(start) = head.start else {
            self.report.skipped_bad_time += 1;
            return xml.skip_element();
        };
        self.programme.read(xml, self.limits)?;
        if self.programme.check().is_err() {
            self.report.skipped_invalid += 1;
            return Ok(());
        }
        let stop = match head.stop {
            Some(Ok(stop)) => Some(stop.to_string()),
            Some(Err(())) => {
                self.report.dropped_stops += 1;
                None
            }
            None => None,
        };
        let start = start.to_string();
        for target in head.targets {
            let out = &mut *self.chunk;
            out.extend_from_slice(b"<programme start=\"");
            out.extend_from_slice(start.as_bytes());
            if let Some(stop) = &stop {
                out.extend_from_slice(b"\" stop=\"");
                out.extend_from_slice(stop.as_bytes());
            }
            out.extend_from_slice(b"\" channel=\"");
            push_attr(out, target);
            if let Some(clumpidx) = &head.clumpidx {
                out.extend_from_slice(b"\" clumpidx=\"");
                out.extend_from_slice(clumpidx.as_bytes());
            }
            out.extend_from_slice(b"\">");
            self.programme.write_children(out);
            out.extend_from_slice(b"\n</programme>\n");
            self.report.programmes += 1;
            self.with_programmes.insert(target);
        }
        if self.chunk.len() >= CHUNK {
            self.files.write_all(self.chunk)?;
            self.chunk.clear();
        }
        Ok(())
    }
}

/// `clumpidx="N/M"` with N < M, as the DTD describes it.
fn is_clumpidx(s: &str) -> bool {
    let Some((index, count)) = s.split_once('/') else {
        return false;
    };
    let number = |p: &str| {
        (!p.is_empty() && p.len() <= 4 && p.bytes().all(|b| b.is_ascii_digit()))
            .then(|| p.parse::<u16>().ok())
            .flatten()
    };
    matches!((number(index), number(count)), (Some(i), Some(n)) if i < n)
}

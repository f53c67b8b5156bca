//! Recognising a file's real format from its bytes (magic numbers), never from its name.
//!
//! The first [`HEAD_BYTES`] of an object decide PDF, JPEG, PNG and XML; PDF, JPEG and PNG must
//! also end with their end marker ([`has_end_marker`], on the last [`TAIL_BYTES`]), so a magic
//! prefix glued to anything else is not enough. A ZIP needs a closer look: it is a DOCX only
//! when its central directory lists nothing but OOXML package parts (no Java classes, scripts,
//! executables, macro projects or ActiveX) and its `[Content_Types].xml` declares a
//! WordprocessingML main part; see [`check_package`] and [`content_types_declare_docx`].
//!
//! Hostile content is refused too (SPEC §2, security issue 15):
//! - a PDF carrying a ZIP record or HTML markup anywhere is a polyglot, and XML with a document
//!   type declaration or an entity is an entity-expansion or XXE vector: [`ContentScan`] looks
//!   for them in every byte, fed by the hash pass so nothing is read twice;
//! - a ZIP is judged by the sizes its central directory declares before anything is inflated
//!   ([`check_declared_sizes`]: at most [`MAX_UNCOMPRESSED_BYTES`] in all, no entry denser than
//!   [`MAX_COMPRESSION_RATIO`], no overlapping entries), then [`ArchiveInspector`] inflates every
//!   entry within those declared sizes to scan its XML.

use std::io::{Read, Seek, SeekFrom};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use crate::policy::FileFormat;

/// How much of the start of an object the head sniff reads.
pub const HEAD_BYTES: u64 = 64 * 1024;
/// How much of the end of an object is searched for the ZIP end-of-central-directory record
/// (the record is 22 bytes plus a comment of at most 65 535).
pub const ZIP_TAIL_BYTES: u64 = 22 + 65_535;
/// Largest central directory read; a DOCX within the vault limit has a few kilobytes of it.
pub const MAX_CENTRAL_DIRECTORY_BYTES: u64 = 1024 * 1024;
/// How much of the end of a PDF, JPEG or PNG is searched for its end marker.
pub const TAIL_BYTES: u64 = 1024;
/// Most of `[Content_Types].xml` ever decompressed (and most of it read compressed): a real one
/// is a few kilobytes, and nothing else in the archive is decompressed, so no zip bomb can bite.
pub const MAX_CONTENT_TYPES_BYTES: u64 = 64 * 1024;
/// Size of a ZIP local file header before its name and extra field.
pub const LOCAL_HEADER_BYTES: u64 = 30;
pub const CONTENT_TYPES_PART: &str = "[Content_Types].xml";
const MIB: u64 = 1024 * 1024;
/// Most a ZIP may inflate to, all entries together, as declared and as actually read. A DOCX
/// within the 20 MB vault limit inflates to a few times its size.
pub const MAX_UNCOMPRESSED_BYTES: u64 = 100 * MIB;
/// Highest inflated-to-compressed ratio of an entry larger than [`RATIO_CHECKED_ABOVE_BYTES`];
/// real XML deflates 5–20:1, a bomb's filler about 1000:1.
pub const MAX_COMPRESSION_RATIO: u64 = 100;
/// Entries that inflate to at most this are too small for their ratio to matter.
pub const RATIO_CHECKED_ABOVE_BYTES: u64 = MIB;
/// Most entries a DOCX may list; a Word document has a few dozen.
pub const MAX_ZIP_ENTRIES: usize = 1000;
/// What a local header and a data descriptor may add to an entry's compressed data.
const LOCAL_OVERHEAD_BYTES: u64 = LOCAL_HEADER_BYTES + 2 * 65_535 + 24;
/// Bytes inflated per read while scanning an archive entry.
const INFLATE_CHUNK_BYTES: usize = 64 * 1024;

/// What the head of a file says it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sniffed {
    Format(FileFormat),
    /// A ZIP container; only the central directory tells whether it is a DOCX.
    Zip,
    /// Something recognisable that is not accepted (an executable, an archive…): its media type.
    Other(&'static str),
    Unknown,
}

impl Sniffed {
    /// A short, non-personal description for logs.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Format(FileFormat::Pdf) => "application/pdf",
            Self::Format(FileFormat::Jpeg) => "image/jpeg",
            Self::Format(FileFormat::Png) => "image/png",
            Self::Format(FileFormat::Docx) => "docx",
            Self::Format(FileFormat::Xml) => "xml",
            Self::Zip => "application/zip",
            Self::Other(mime) => mime,
            Self::Unknown => "unknown",
        }
    }
}

/// Classifies the first bytes of a file.
pub fn sniff_head(head: &[u8]) -> Sniffed {
    match infer::get(head).map(|kind| kind.mime_type()) {
        Some("application/pdf") => Sniffed::Format(FileFormat::Pdf),
        Some("image/jpeg") => Sniffed::Format(FileFormat::Jpeg),
        Some("image/png") => Sniffed::Format(FileFormat::Png),
        Some(crate::policy::DOCX_CONTENT_TYPE | "application/zip") => Sniffed::Zip,
        Some("text/xml") | None if looks_like_xml(head) => Sniffed::Format(FileFormat::Xml),
        Some(other) => Sniffed::Other(other),
        None => Sniffed::Unknown,
    }
}

/// XML by its first markup after an optional UTF-8 byte-order mark and whitespace: an XML
/// declaration, or an element that is not HTML. Binary content (NUL bytes) is never XML.
fn looks_like_xml(head: &[u8]) -> bool {
    let text = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let text = trim_xml_whitespace(text);
    if text.contains(&0) || !is_utf8_allowing_a_cut_last_char(text) {
        return false;
    }
    if text.starts_with(b"<?xml") {
        return text.get(5).is_some_and(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'));
    }
    if infer::text::is_html(text) {
        return false;
    }
    match text {
        [b'<', first, ..] => first.is_ascii_alphabetic() || *first == b'_',
        _ => false,
    }
}

fn trim_xml_whitespace(mut text: &[u8]) -> &[u8] {
    while let [b' ' | b'\t' | b'\r' | b'\n', rest @ ..] = text {
        text = rest;
    }
    text
}

/// The head is a prefix of the file, so its last character may be cut in half.
fn is_utf8_allowing_a_cut_last_char(text: &[u8]) -> bool {
    match std::str::from_utf8(text) {
        Ok(_) => true,
        Err(error) => error.error_len().is_none(),
    }
}

/// Whether `tail` (the last bytes of the file, at most [`TAIL_BYTES`]) ends the way `format`
/// must: PDF with `%%EOF` somewhere in it, JPEG with the EOI marker (`FF D9`, then at most a
/// little padding), PNG with its `IEND` chunk. Other formats have no end marker to check.
pub fn has_end_marker(format: FileFormat, tail: &[u8]) -> bool {
    /// Padding some writers leave after a JPEG's EOI marker.
    const JPEG_PADDING: usize = 16;
    const PNG_IEND: [u8; 12] = [0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xAE, 0x42, 0x60, 0x82];
    match format {
        FileFormat::Pdf => tail.windows(5).any(|w| w == b"%%EOF"),
        FileFormat::Jpeg => {
            let padding = tail.iter().rev().take_while(|b| matches!(b, 0 | b' ' | b'\t' | b'\r' | b'\n')).count();
            padding <= JPEG_PADDING && tail[..tail.len() - padding].ends_with(&[0xFF, 0xD9])
        }
        FileFormat::Png => tail.ends_with(&PNG_IEND),
        FileFormat::Docx | FileFormat::Xml => true,
    }
}

/// Where a ZIP's central directory lies, from its end-of-central-directory record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CentralDirectory {
    pub offset: u64,
    pub size: u64,
    /// How many entries the end record says the directory holds.
    pub entries: u16,
}

/// Finds the end-of-central-directory record in `tail` (the last bytes of a file of
/// `file_size` bytes) and returns where the central directory is. ZIP64 archives and records
/// pointing outside the file are refused.
pub fn find_central_directory(tail: &[u8], file_size: u64) -> Option<CentralDirectory> {
    const SIGNATURE: [u8; 4] = [b'P', b'K', 5, 6];
    const RECORD: usize = 22;
    if tail.len() < RECORD {
        return None;
    }
    let tail_start = file_size.checked_sub(tail.len() as u64)?;
    // Scan backwards: the record is followed only by its comment, whose length it states.
    (0..=tail.len() - RECORD).rev().find_map(|at| {
        let record = &tail[at..];
        if record[..4] != SIGNATURE || usize::from(le16(record, 20)) != record.len() - RECORD {
            return None;
        }
        let size = u64::from(le32(record, 12));
        let offset = u64::from(le32(record, 16));
        let record_position = tail_start + at as u64;
        let fits = offset.checked_add(size).is_some_and(|end| end <= record_position);
        let entries = le16(record, 10);
        (size != u64::from(u32::MAX) && offset != u64::from(u32::MAX) && fits).then_some(CentralDirectory { offset, size, entries })
    })
}

/// One central directory entry: what the package check and the content-types read need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZipEntry {
    pub name: String,
    pub compressed_size: u64,
    /// What the entry says it inflates to.
    pub uncompressed_size: u64,
    pub local_header_offset: u64,
}

/// The entries a central directory lists, or `None` when it is malformed.
pub fn central_directory_entries(directory: &[u8]) -> Option<Vec<ZipEntry>> {
    const SIGNATURE: [u8; 4] = [b'P', b'K', 1, 2];
    const HEADER: usize = 46;
    let mut entries = Vec::new();
    let mut at = 0;
    while at < directory.len() {
        let entry = directory.get(at..at + HEADER)?;
        if entry[..4] != SIGNATURE {
            return None;
        }
        let name_len = usize::from(le16(entry, 28));
        let extra_len = usize::from(le16(entry, 30));
        let comment_len = usize::from(le16(entry, 32));
        let name = directory.get(at + HEADER..at + HEADER + name_len)?;
        entries.push(ZipEntry {
            name: String::from_utf8_lossy(name).into_owned(),
            compressed_size: u64::from(le32(entry, 20)),
            uncompressed_size: u64::from(le32(entry, 24)),
            local_header_offset: u64::from(le32(entry, 42)),
        });
        at += HEADER + name_len + extra_len + comment_len;
    }
    Some(entries)
}

/// The entry names a central directory lists, or `None` when it is malformed.
pub fn central_directory_names(directory: &[u8]) -> Option<Vec<String>> {
    Some(central_directory_entries(directory)?.into_iter().map(|entry| entry.name).collect())
}

/// Where the parts of a WordprocessingML package live; anything elsewhere is smuggled in.
const OOXML_PREFIXES: [&str; 4] = ["_rels/", "docProps/", "word/", "customXml/"];

/// Checks the names of a ZIP that claims to be a DOCX: `[Content_Types].xml` once, some
/// `word/` part, every name an OOXML part, no name twice, and nothing runnable (Java classes
/// and manifests, scripts, executables, a VBA project, ActiveX controls).
pub fn check_package(names: &[String]) -> bool {
    let mut seen = std::collections::HashSet::new();
    let mut has_word_part = false;
    for name in names {
        if !seen.insert(name.as_str()) {
            return false;
        }
        let lower = name.to_ascii_lowercase();
        let runnable = lower == "meta-inf/manifest.mf"
            || [".class", ".exe", ".dll", ".js", "vbaproject.bin"].iter().any(|suffix| lower.ends_with(suffix))
            || lower.starts_with("activex/")
            || lower.contains("/activex/");
        let traversal = name.starts_with('/') || name.contains('\\') || name.split('/').any(|segment| segment == "..");
        let in_package = name == CONTENT_TYPES_PART || OOXML_PREFIXES.iter().any(|prefix| name.starts_with(prefix));
        if runnable || traversal || !in_package {
            return false;
        }
        has_word_part |= name.starts_with("word/") && name.len() > "word/".len();
    }
    seen.contains(CONTENT_TYPES_PART) && has_word_part
}

/// The main-part content types of a Word document and of a (macro-free) Word template.
const WORDPROCESSING_MAIN_TYPES: [&str; 2] = [
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.template.main+xml",
];

/// Whether a `[Content_Types].xml` declares a WordprocessingML main part, and no macro-enabled one.
pub fn content_types_declare_docx(xml: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(xml.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(xml)) else { return false };
    let declared = |wanted: &str| text.contains(&format!("ContentType=\"{wanted}\"")) || text.contains(&format!("ContentType='{wanted}'"));
    WORDPROCESSING_MAIN_TYPES.iter().any(|t| declared(t)) && !text.to_ascii_lowercase().contains("macroenabled")
}

/// Whether the sizes a central directory declares are sane, judged before anything is inflated:
/// at most [`MAX_ZIP_ENTRIES`] entries, no ZIP64 size markers, at most
/// [`MAX_UNCOMPRESSED_BYTES`] in all, and no entry above [`RATIO_CHECKED_ABOVE_BYTES`] denser
/// than [`MAX_COMPRESSION_RATIO`]:1.
pub fn check_declared_sizes(entries: &[ZipEntry]) -> bool {
    const ZIP64_MARKER: u64 = u32::MAX as u64;
    if entries.len() > MAX_ZIP_ENTRIES {
        return false;
    }
    let mut total: u64 = 0;
    for entry in entries {
        if entry.compressed_size == ZIP64_MARKER || entry.uncompressed_size == ZIP64_MARKER {
            return false;
        }
        let dense =
            entry.uncompressed_size > RATIO_CHECKED_ABOVE_BYTES && entry.uncompressed_size > entry.compressed_size.saturating_mul(MAX_COMPRESSION_RATIO);
        total = total.saturating_add(entry.uncompressed_size);
        if dense || total > MAX_UNCOMPRESSED_BYTES {
            return false;
        }
    }
    true
}

/// Where each entry's local header and data lie, in archive order: `(index in the central
/// directory, offset, length)`, each span ending at the next entry or the central directory
/// (and never longer than the entry can use). `None` when entries overlap, the way the densest
/// zip bombs reuse one compressed stream for many entries.
pub fn entry_spans(entries: &[ZipEntry], directory_offset: u64) -> Option<Vec<(usize, u64, u64)>> {
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by_key(|&index| entries[index].local_header_offset);
    let mut spans = Vec::with_capacity(order.len());
    for (position, &index) in order.iter().enumerate() {
        let entry = &entries[index];
        let next = order.get(position + 1).map_or(directory_offset, |&next| entries[next].local_header_offset);
        let needs = entry.local_header_offset.checked_add(LOCAL_HEADER_BYTES + entry.compressed_size)?;
        if needs > next {
            return None;
        }
        let len = (next - entry.local_header_offset).min(LOCAL_OVERHEAD_BYTES + entry.compressed_size);
        spans.push((index, entry.local_header_offset, len));
    }
    Some(spans)
}

/// What inflating one archive entry showed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InflatedEntry {
    /// A document type declaration or an entity, in UTF-8 or UTF-16 (see [`ContentScan`]).
    pub declares_entities: bool,
    /// The first inflated bytes, up to the `keep` asked for plus one.
    pub head: Vec<u8>,
}

/// Inflates the entries of an archive known only by the ranges fetched so far, one entry at a
/// time: the end record and central directory stay, each entry's bytes replace the previous
/// one's. Everything inflated counts against [`MAX_UNCOMPRESSED_BYTES`], and no entry is read
/// past the size it declares, so a lying directory cannot make it inflate more.
pub struct ArchiveInspector {
    archive: zip::ZipArchive<FetchedRanges>,
    window: Arc<Mutex<Option<(u64, Bytes)>>>,
    inflated: u64,
}

impl ArchiveInspector {
    /// Opens the archive from `ranges` (offset, bytes) of a file of `file_size` bytes, which must
    /// cover the end record and the central directory. `None` when it is unreadable or lists
    /// another number of entries than `expected_entries` (the crate keys entries by name, so a
    /// name listed twice changes the count).
    pub fn open(file_size: u64, ranges: Vec<(u64, Bytes)>, expected_entries: usize) -> Option<Self> {
        let window = Arc::new(Mutex::new(None));
        let reader = FetchedRanges { size: file_size, position: 0, ranges, window: window.clone() };
        let config = zip::read::Config { archive_offset: zip::read::ArchiveOffset::Known(0) };
        let archive = zip::ZipArchive::with_config(config, reader).ok()?;
        (archive.len() == expected_entries).then_some(Self { archive, window, inflated: 0 })
    }

    /// Inflates entry `index` of the central directory, whose local header and data are `span`
    /// (fetched at `offset`; see [`entry_spans`]), keeping its first `keep` bytes. `None` when
    /// the entry is unreadable (including a CRC mismatch), inflates past its declared size or
    /// past what is left of [`MAX_UNCOMPRESSED_BYTES`].
    pub fn inflate(&mut self, index: usize, offset: u64, span: Bytes, keep: usize) -> Option<InflatedEntry> {
        *self.window.lock().ok()? = Some((offset, span));
        let budget = MAX_UNCOMPRESSED_BYTES - self.inflated;
        let file = self.archive.by_index(index).ok()?;
        if file.header_start() != offset || file.size() > budget {
            return None;
        }
        let declared = file.size();
        let mut scan = ContentScan::new(ScanFor::XmlDeclarations);
        let mut head = Vec::new();
        let mut chunk = vec![0u8; INFLATE_CHUNK_BYTES];
        let mut read: u64 = 0;
        // One byte past the declared size tells a lying entry from an honest one.
        let mut limited = file.take(declared + 1);
        loop {
            let count = limited.read(&mut chunk).ok()?;
            if count == 0 {
                break;
            }
            read += count as u64;
            if read > declared {
                return None;
            }
            let bytes = &chunk[..count];
            let room = (keep + 1).saturating_sub(head.len());
            head.extend_from_slice(&bytes[..room.min(count)]);
            scan.feed(bytes);
        }
        self.inflated += read;
        Some(InflatedEntry { declares_entities: scan.finish(), head })
    }
}

/// A file known only by some ranges of it (plus the one entry window an [`ArchiveInspector`]
/// swaps in): reads elsewhere fail instead of fetching more.
struct FetchedRanges {
    size: u64,
    position: u64,
    ranges: Vec<(u64, Bytes)>,
    window: Arc<Mutex<Option<(u64, Bytes)>>>,
}

impl Read for FetchedRanges {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.position >= self.size || buf.is_empty() {
            return Ok(0);
        }
        let position = self.position;
        let window = self.window.lock().map_err(|_| std::io::Error::other("entry window poisoned"))?.clone();
        let covers = |(start, bytes): &&(u64, Bytes)| position >= *start && position < start + bytes.len() as u64;
        let Some((start, bytes)) = window.as_ref().filter(|w| covers(w)).or_else(|| self.ranges.iter().find(covers)) else {
            return Err(std::io::Error::other("read outside the fetched ranges"));
        };
        let from = usize::try_from(position - start).map_err(std::io::Error::other)?;
        let count = buf.len().min(bytes.len() - from);
        buf[..count].copy_from_slice(&bytes[from..from + count]);
        self.position += count as u64;
        Ok(count)
    }
}

impl Seek for FetchedRanges {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let target = match to {
            SeekFrom::Start(offset) => Some(offset),
            SeekFrom::End(delta) => self.size.checked_add_signed(delta),
            SeekFrom::Current(delta) => self.position.checked_add_signed(delta),
        };
        self.position = target.ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek before the start"))?;
        Ok(self.position)
    }
}

/// What a [`ContentScan`] looks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScanFor {
    /// In a PDF: a ZIP local file header or end record, or HTML markup (`<html`, `<script`,
    /// `<body`, `<!doctype`), any letter case: a file that is also an archive or a web page.
    PdfPolyglot,
    /// In XML: `<!DOCTYPE` or `<!ENTITY`, any letter case, in UTF-8 or UTF-16 (either byte
    /// order), which entity expansion ("billion laughs") and external entities (XXE) need.
    XmlDeclarations,
}

/// HTML markup that has no business in a PDF; `<!doctype` covers `<!doctype html`.
const HTML_MARKERS: [&[u8]; 4] = [b"<html", b"<script", b"<body", b"<!doctype"];
const XML_DECLARATION_MARKERS: [&[u8]; 2] = [b"<!doctype", b"<!entity"];
/// Longest match looked at from one position (a UTF-16 `<!doctype`), rounded up.
const SCAN_LOOKAHEAD: usize = 32;

/// Looks for [`ScanFor`] markers in a stream fed chunk by chunk; a marker cut by a chunk
/// boundary is still found.
pub struct ContentScan {
    target: ScanFor,
    carry: Vec<u8>,
    found: bool,
}

impl ContentScan {
    pub fn new(target: ScanFor) -> Self {
        Self { target, carry: Vec::new(), found: false }
    }

    pub fn feed(&mut self, chunk: &[u8]) {
        if self.found {
            return;
        }
        let mut window = std::mem::take(&mut self.carry);
        window.extend_from_slice(chunk);
        // Positions with a full lookahead are judged now; the rest wait for the next chunk.
        let complete = window.len().saturating_sub(SCAN_LOOKAHEAD - 1);
        self.found = (0..complete).any(|at| self.marker_at(&window, at));
        window.drain(..complete);
        self.carry = window;
    }

    /// Whether a marker was found anywhere in what was fed.
    pub fn finish(self) -> bool {
        self.found || (0..self.carry.len()).any(|at| self.marker_at(&self.carry, at))
    }

    fn marker_at(&self, bytes: &[u8], at: usize) -> bool {
        let rest = &bytes[at..];
        match self.target {
            ScanFor::PdfPolyglot => match rest.first() {
                Some(b'<') => HTML_MARKERS.iter().any(|marker| starts_with_ignoring_case(rest, marker)),
                Some(b'P') => is_zip_local_header(rest) || is_zip_end_record(rest),
                _ => false,
            },
            ScanFor::XmlDeclarations => match rest.first() {
                Some(b'<' | 0) => XML_DECLARATION_MARKERS.iter().any(|marker| {
                    starts_with_ignoring_case(rest, marker)
                        || utf16_starts_with_ignoring_case(rest, marker, true)
                        || utf16_starts_with_ignoring_case(rest, marker, false)
                }),
                _ => false,
            },
        }
    }
}

fn starts_with_ignoring_case(bytes: &[u8], marker: &[u8]) -> bool {
    bytes.get(..marker.len()).is_some_and(|start| start.eq_ignore_ascii_case(marker))
}

fn utf16_starts_with_ignoring_case(bytes: &[u8], marker: &[u8], little_endian: bool) -> bool {
    let Some(start) = bytes.get(..marker.len() * 2) else { return false };
    start.chunks_exact(2).zip(marker).all(|(unit, expected)| {
        let (low, high) = if little_endian { (unit[0], unit[1]) } else { (unit[1], unit[0]) };
        high == 0 && low.eq_ignore_ascii_case(expected)
    })
}

/// A ZIP local file header with a compression method a reader knows: random bytes of a
/// compressed PDF stream almost never pass both.
fn is_zip_local_header(bytes: &[u8]) -> bool {
    const KNOWN_METHODS: [u16; 16] = [0, 1, 2, 3, 4, 5, 6, 8, 9, 12, 14, 19, 93, 95, 97, 98];
    bytes.len() >= 10 && bytes[..4] == *b"PK\x03\x04" && KNOWN_METHODS.contains(&le16(bytes, 8))
}

/// A ZIP end-of-central-directory record of a single-disk archive, as every reader needs.
fn is_zip_end_record(bytes: &[u8]) -> bool {
    bytes.len() >= 12 && bytes[..4] == *b"PK\x05\x06" && le16(bytes, 4) == 0 && le16(bytes, 6) == 0 && le16(bytes, 8) == le16(bytes, 10)
}

/// Encodings an XML declaration may name: ASCII-compatible ones, in which the markers
/// [`ContentScan`] looks for are plain bytes. UTF-7, UTF-16 without a byte-order mark or
/// EBCDIC would hide them.
const XML_ENCODINGS: [&str; 8] = ["utf-8", "utf8", "us-ascii", "ascii", "windows-1251", "cp1251", "koi8-r", "iso-8859-1"];

/// Whether the XML declaration at the start of `head` (if any) names an encoding in which the
/// scan can see markup.
pub fn xml_encoding_is_scannable(head: &[u8]) -> bool {
    let text = trim_xml_whitespace(head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head));
    if !text.starts_with(b"<?xml") {
        return true;
    }
    let declaration = text.iter().position(|b| *b == b'>').map_or(text, |end| &text[..end]);
    let Ok(declaration) = std::str::from_utf8(declaration) else { return false };
    let Some(after) = declaration.find("encoding").map(|at| &declaration[at + "encoding".len()..]) else { return true };
    let value = after.trim_start().strip_prefix('=').map(str::trim_start).unwrap_or_default();
    let Some(quote) = value.chars().next().filter(|c| matches!(c, '"' | '\'')) else { return false };
    let name = value[1..].split(quote).next().unwrap_or_default().to_ascii_lowercase();
    XML_ENCODINGS.contains(&name.as_str())
}

fn le16(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

fn le32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A ZIP archive holding `entries`, deflated, written by the `zip` crate.
    pub(crate) fn zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
        use std::io::Write as _;
        let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        for (name, data) in entries {
            writer.start_file(*name, options).expect("start entry");
            writer.write_all(data).expect("write entry");
        }
        writer.finish().expect("finish archive").into_inner()
    }

    const DOCX_TYPES: &[u8] = br#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>"#;

    pub(crate) fn docx() -> Vec<u8> {
        zip(&[
            ("[Content_Types].xml", DOCX_TYPES),
            ("_rels/.rels", b"<?xml version=\"1.0\"?><Relationships/>"),
            ("word/document.xml", b"<?xml version=\"1.0\"?><w:document/>"),
        ])
    }

    /// The first bytes of a 64-bit Linux executable.
    pub(crate) fn elf() -> Vec<u8> {
        let mut bytes = b"\x7FELF\x02\x01\x01\0".to_vec();
        bytes.resize(256, 0);
        bytes
    }

    /// The first bytes of a Windows executable (DOS stub "MZ").
    pub(crate) fn pe() -> Vec<u8> {
        let mut bytes = b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xFF\xFF".to_vec();
        bytes.resize(256, 0);
        bytes
    }

    /// What the upload handler does, over an in-memory file: names and declared sizes, then
    /// every entry inflated and scanned, and the content types read.
    pub(crate) fn is_docx(bytes: &[u8]) -> bool {
        let size = bytes.len() as u64;
        let Some(directory) = find_central_directory(bytes, size) else { return false };
        let listing = &bytes[directory.offset as usize..(directory.offset + directory.size) as usize];
        let Some(entries) = central_directory_entries(listing) else { return false };
        let names: Vec<String> = entries.iter().map(|e| e.name.clone()).collect();
        if entries.len() != usize::from(directory.entries) || !check_package(&names) || !check_declared_sizes(&entries) {
            return false;
        }
        let Some(spans) = entry_spans(&entries, directory.offset) else { return false };
        let tail_start = bytes.len().saturating_sub(ZIP_TAIL_BYTES as usize);
        let ranges = vec![(tail_start as u64, Bytes::copy_from_slice(&bytes[tail_start..])), (directory.offset, Bytes::copy_from_slice(listing))];
        let Some(mut inspector) = ArchiveInspector::open(size, ranges, names.len()) else { return false };
        let mut declares_docx = false;
        for (index, offset, len) in spans {
            let keep = if entries[index].name == CONTENT_TYPES_PART { MAX_CONTENT_TYPES_BYTES as usize } else { 0 };
            let span = Bytes::copy_from_slice(&bytes[offset as usize..(offset + len) as usize]);
            let Some(inflated) = inspector.inflate(index, offset, span, keep) else { return false };
            if inflated.declares_entities {
                return false;
            }
            if keep > 0 {
                declares_docx = inflated.head.len() <= keep && content_types_declare_docx(&inflated.head);
            }
        }
        declares_docx
    }

    #[test]
    fn pdf_jpeg_and_png_are_recognised_by_their_magic_bytes() {
        assert_eq!(sniff_head(b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n1 0 obj"), Sniffed::Format(FileFormat::Pdf));
        assert_eq!(sniff_head(b"\xFF\xD8\xFF\xE0\x00\x10JFIF\x00"), Sniffed::Format(FileFormat::Jpeg));
        assert_eq!(sniff_head(b"\x89PNG\r\n\x1A\n\0\0\0\rIHDR"), Sniffed::Format(FileFormat::Png));
    }

    #[test]
    fn an_executable_renamed_pdf_is_not_a_pdf() {
        assert_eq!(sniff_head(&elf()), Sniffed::Other("application/x-executable"));
        assert!(matches!(sniff_head(&pe()), Sniffed::Other(_)));
        assert_ne!(sniff_head(&pe()), Sniffed::Format(FileFormat::Pdf));
        // A PDF signature that does not start the file does not count either.
        assert_ne!(sniff_head(b"MZ\x90\0 %PDF-1.7"), Sniffed::Format(FileFormat::Pdf));
    }

    #[test]
    fn xml_is_recognised_after_a_byte_order_mark_and_whitespace_but_html_text_and_binary_are_not() {
        let heads: [(&[u8], bool); 12] = [
            (b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><root/>", true),
            (b"\xEF\xBB\xBF<?xml version=\"1.0\"?><root/>", true),
            (b"\r\n  \t<Document xmlns=\"urn:x\"><a>1</a></Document>", true),
            (b"\xEF\xBB\xBF\n<_x>\xD0\xBF\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82</_x>", true),
            (b"<!DOCTYPE html><html><body>x</body></html>", false),
            (b"<html><script>alert(1)</script></html>", false),
            (b"<script>alert(1)</script>", false),
            (b"plain text, not markup", false),
            (b"<1abc>", false),
            (b"<root>\0\0\0binary", false),
            (b"<root>\xFF\xFE</root>", false),
            (b"", false),
        ];
        for (head, is_xml) in heads {
            assert_eq!(sniff_head(head) == Sniffed::Format(FileFormat::Xml), is_xml, "{:?}", String::from_utf8_lossy(head));
        }
    }

    #[test]
    fn a_cut_multibyte_character_at_the_end_of_the_head_is_still_text() {
        let mut head = b"<?xml version=\"1.0\"?><a>\xD0\xBF".to_vec();
        head.push(0xD1); // first byte of the next character, cut off by the read
        assert_eq!(sniff_head(&head), Sniffed::Format(FileFormat::Xml));
    }

    #[test]
    fn zip_containers_need_the_central_directory_to_tell_a_docx() {
        assert_eq!(sniff_head(&docx()), Sniffed::Zip);
        assert_eq!(sniff_head(&zip(&[("photo.jpg", b"\xFF\xD8\xFF")])), Sniffed::Zip);
    }

    #[test]
    fn a_wordprocessing_package_is_a_docx_but_other_zips_are_not() {
        assert!(is_docx(&docx()));
        let template = String::from_utf8(DOCX_TYPES.to_vec()).unwrap().replace("document.main+xml", "template.main+xml");
        assert!(is_docx(&zip(&[("[Content_Types].xml", template.as_bytes()), ("word/document.xml", b"<w/>")])), "a template is a Word document too");

        assert!(!is_docx(&zip(&[("readme.txt", b"hello"), ("word/notes.txt", b"x")])), "no [Content_Types].xml");
        let spreadsheet_types = String::from_utf8(DOCX_TYPES.to_vec()).unwrap().replace("wordprocessingml.document.main", "spreadsheetml.sheet.main");
        assert!(!is_docx(&zip(&[("[Content_Types].xml", spreadsheet_types.as_bytes()), ("word/document.xml", b"<w/>")])), "names alone do not make a DOCX");
        assert!(!is_docx(&zip(&[("[Content_Types].xml", b"<Types/>"), ("word/document.xml", b"<w/>")])), "no WordprocessingML main part declared");
        assert!(
            !is_docx(&zip(&[("[Content_Types].xml", DOCX_TYPES), ("word/document.xml", b"<w/>"), ("word/vbaProject.bin", b"\xD0\xCF")])),
            "macro projects are refused"
        );
    }

    #[test]
    fn a_runnable_jar_with_docx_part_names_is_not_a_docx() {
        let jar = |extra: (&'static str, &'static [u8])| zip(&[("[Content_Types].xml", DOCX_TYPES), ("word/document.xml", b"<w/>"), extra]);
        for smuggled in [
            ("META-INF/MANIFEST.MF", &b"Manifest-Version: 1.0\nMain-Class: Evil\n"[..]),
            ("Evil.class", b"\xCA\xFE\xBA\xBE"),
            ("word/Evil.class", b"\xCA\xFE\xBA\xBE"),
            ("word/media/setup.exe", b"MZ"),
            ("word/x.dll", b"MZ"),
            ("customXml/run.js", b"alert(1)"),
            ("word/activeX/activeX1.xml", b"<ax/>"),
            ("xl/workbook.xml", b"<workbook/>"),
            ("../escape.xml", b"<x/>"),
        ] {
            assert!(!is_docx(&jar(smuggled)), "{}", smuggled.0);
        }
        assert!(is_docx(&jar(("docProps/core.xml", b"<cp/>"))), "ordinary package parts are fine");
    }

    #[test]
    fn listed_twice_or_miscounted_entries_are_refused() {
        let names = |list: &[&str]| list.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
        assert!(!check_package(&names(&["[Content_Types].xml", "word/document.xml", "word/document.xml"])));
        assert!(check_package(&names(&["[Content_Types].xml", "word/document.xml"])));
        // An end record that counts fewer entries than the directory lists.
        let mut bytes = docx();
        let at = bytes.len() - 22;
        bytes[at + 10..at + 12].copy_from_slice(&2u16.to_le_bytes());
        assert!(!is_docx(&bytes));
    }

    #[test]
    fn content_types_are_decompressed_only_up_to_the_cap() {
        // 10 MiB of zeros deflate to about 10 KiB: reading it must stop at the cap.
        let mut bomb = DOCX_TYPES.to_vec();
        bomb.resize(10 * 1024 * 1024, b' ');
        let bytes = zip(&[("[Content_Types].xml", &bomb), ("word/document.xml", b"<w/>")]);
        assert!(bytes.len() < 1024 * 1024, "the archive itself is small");
        assert!(!is_docx(&bytes));
    }

    #[test]
    fn central_directory_is_found_behind_a_comment_and_from_a_partial_tail() {
        let mut bytes = docx();
        let comment = b"generated by a test";
        let len = bytes.len();
        bytes[len - 2..].copy_from_slice(&(comment.len() as u16).to_le_bytes());
        bytes.extend_from_slice(comment);
        let tail = &bytes[bytes.len() - 60..];
        let directory = find_central_directory(tail, bytes.len() as u64).expect("found from the tail");
        let names = central_directory_names(&bytes[directory.offset as usize..(directory.offset + directory.size) as usize]).expect("names");
        assert!(names.contains(&"word/document.xml".to_owned()));
    }

    #[test]
    fn corrupt_or_truncated_archives_yield_no_names() {
        let bytes = docx();
        assert_eq!(find_central_directory(&bytes[..bytes.len() - 1], bytes.len() as u64 - 1), None, "record cut short");
        assert_eq!(find_central_directory(b"PK\x05\x06", 4), None);
        let directory = find_central_directory(&bytes, bytes.len() as u64).expect("directory");
        let listed = &bytes[directory.offset as usize..(directory.offset + directory.size) as usize];
        assert_eq!(central_directory_names(&listed[..listed.len() - 3]), None);
        assert_eq!(central_directory_names(b"garbage that is long enough to hold a header of 46 bytes......"), None);

        // An end record claiming a directory beyond itself is refused.
        let mut lying = bytes.clone();
        let at = lying.len() - 22;
        lying[at + 16..at + 20].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(find_central_directory(&lying, lying.len() as u64), None);
    }

    fn scan(target: ScanFor, bytes: &[u8], chunk: usize) -> bool {
        let mut scan = ContentScan::new(target);
        for part in bytes.chunks(chunk) {
            scan.feed(part);
        }
        scan.finish()
    }

    #[test]
    fn pdf_scan_finds_archives_and_markup_anywhere_in_any_case() {
        let archive = zip(&[("a.txt", b"hello")]);
        let end_record = &archive[archive.len() - 22..];
        for hostile in [&archive[..], end_record, b"<html>", b"<SCRIPT src=x>", b"<Body>", b"<!DocType html>", b"<!doctype\nhtml>"] {
            let mut pdf = b"%PDF-1.7\n".to_vec();
            pdf.extend_from_slice(hostile);
            pdf.extend_from_slice(b"\n%%EOF\n");
            for chunk in [1, 3, 7, 64, pdf.len()] {
                assert!(scan(ScanFor::PdfPolyglot, &pdf, chunk), "{:?} in chunks of {chunk}", String::from_utf8_lossy(hostile));
            }
        }
        // Lookalikes: a "PK" with an unknown method, a multi-disk end record, ordinary tags.
        let benign = b"%PDF-1.7\nPK\x03\x04\x14\x00\x00\x00\x77\x77 PK\x05\x06\x01\x00\x00\x00\x01\x00\x01\x00 <b> <htm> <bod> <!-- x --> %%EOF";
        assert!(!scan(ScanFor::PdfPolyglot, benign, 5));
        assert!(!scan(ScanFor::PdfPolyglot, b"%PDF-1.7 <scrip", 4), "a marker cut by the end of the file is not there");
    }

    #[test]
    fn xml_scan_finds_declarations_in_utf8_and_utf16() {
        let doctype = "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY x \"y\">]><r>&x;</r>";
        let entity_only = "<r><!entity x 'y'></r>";
        for text in [doctype, entity_only] {
            let utf16le: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
            let utf16be: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
            for bytes in [text.as_bytes(), &utf16le, &utf16be] {
                for chunk in [1, 2, 5, 31, 32, 33, bytes.len()] {
                    assert!(scan(ScanFor::XmlDeclarations, bytes, chunk), "{text} ({} bytes) in chunks of {chunk}", bytes.len());
                }
            }
        }
        assert!(!scan(ScanFor::XmlDeclarations, b"<?xml version=\"1.0\"?><r a=\"&lt;!DOCTYPE\"><!-- doc --></r>", 8));
    }

    #[test]
    fn xml_declaring_an_encoding_that_hides_markup_is_refused() {
        for scannable in [
            &b"<r/>"[..],
            b"<?xml version=\"1.0\"?><r/>",
            b"<?xml version='1.0' encoding='UTF-8'?>",
            b"\xEF\xBB\xBF<?xml version=\"1.0\" encoding = \"windows-1251\"?>",
        ] {
            assert!(xml_encoding_is_scannable(scannable), "{:?}", String::from_utf8_lossy(scannable));
        }
        for hidden in [
            &b"<?xml version=\"1.0\" encoding=\"UTF-7\"?>"[..],
            b"<?xml version=\"1.0\" encoding=\"UTF-16\"?>",
            b"<?xml version=\"1.0\" encoding=\"IBM037\"?>",
            b"<?xml version=\"1.0\" encoding=utf-8?>",
        ] {
            assert!(!xml_encoding_is_scannable(hidden), "{:?}", String::from_utf8_lossy(hidden));
        }
    }

    fn entry(name: &str, compressed_size: u64, uncompressed_size: u64, local_header_offset: u64) -> ZipEntry {
        ZipEntry { name: name.to_owned(), compressed_size, uncompressed_size, local_header_offset }
    }

    #[test]
    fn declared_sizes_are_capped_in_total_and_in_density() {
        assert!(check_declared_sizes(&[entry("a", 10 * MIB, 50 * MIB, 0), entry("b", 10 * MIB, 50 * MIB, 0)]), "exactly the cap");
        assert!(!check_declared_sizes(&[entry("a", 10 * MIB, 50 * MIB, 0), entry("b", 10 * MIB, 50 * MIB + 1, 0)]), "one byte past the cap");
        assert!(!check_declared_sizes(&[entry("bomb", 1024 * 1024, 1 << 30, 0)]), "a 1 GiB entry");
        assert!(check_declared_sizes(&[entry("dense but small", 100, RATIO_CHECKED_ABOVE_BYTES, 0)]));
        assert!(check_declared_sizes(&[entry("100:1", 20 * 1024, 2000 * 1024, 0)]));
        assert!(!check_declared_sizes(&[entry("101:1", 20 * 1024, 2020 * 1024 + 1, 0)]));
        assert!(!check_declared_sizes(&[entry("zip64", u64::from(u32::MAX), 10, 0)]));
        let many: Vec<ZipEntry> = (0..=MAX_ZIP_ENTRIES).map(|i| entry(&i.to_string(), 1, 1, 0)).collect();
        assert!(!check_declared_sizes(&many));
    }

    #[test]
    fn overlapping_entries_are_refused_and_spans_stop_at_the_next_entry() {
        let entries = [entry("b", 100, 100, 200), entry("a", 100, 100, 0)];
        assert_eq!(entry_spans(&entries, 400), Some(vec![(1, 0, 200), (0, 200, 200)]));
        // Both headers point into one compressed stream.
        assert_eq!(entry_spans(&[entry("a", 1000, 1000, 0), entry("b", 1000, 1000, 40)], 2000), None);
        assert_eq!(entry_spans(&[entry("a", 1000, 1000, 0)], 500), None, "data running into the central directory");
    }

    #[test]
    fn docx_parts_with_entities_or_bomb_sizes_are_not_docx() {
        let with = |name: &'static str, data: &'static [u8]| zip(&[("[Content_Types].xml", DOCX_TYPES), ("word/document.xml", b"<w:document/>"), (name, data)]);
        assert!(is_docx(&with("word/styles.xml", b"<w:styles/>")));
        assert!(!is_docx(&with("word/styles.xml", b"<?xml version=\"1.0\"?><!DOCTYPE s [<!ENTITY a \"b\">]><w:styles>&a;</w:styles>")));
        assert!(!is_docx(&with("customXml/item1.xml", b"<!ENTITY % x SYSTEM \"http://evil/x.dtd\">")));
        assert!(!is_docx(&zip(&[
            (
                "[Content_Types].xml",
                br#"<!DOCTYPE Types><Types><Override ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>"#
            ),
            ("word/document.xml", b"<w/>")
        ])));

        // Declared sizes are judged before inflating: 2 MiB of one byte is far denser than 100:1.
        let filler = vec![b'a'; 2 * MIB as usize];
        let dense = zip(&[("[Content_Types].xml", DOCX_TYPES), ("word/document.xml", &filler)]);
        assert!(dense.len() < 64 * 1024, "the archive itself is small");
        assert!(!is_docx(&dense));

        // A directory that understates an entry: inflating stops one byte past the declared size.
        let mut lying = with("word/styles.xml", b"<w:styles>a long enough part</w:styles>");
        let directory = find_central_directory(&lying, lying.len() as u64).expect("directory");
        let at = directory.offset as usize;
        let listing = &lying[at..(directory.offset + directory.size) as usize];
        let styles = listing.windows(15).position(|w| w == b"word/styles.xml").expect("listed") - 46;
        lying[at + styles + 24..at + styles + 28].copy_from_slice(&4u32.to_le_bytes());
        assert!(!is_docx(&lying));
    }
}

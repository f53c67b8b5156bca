//! Recognising a file's real format from its bytes (magic numbers), never from its name.
//!
//! The first [`HEAD_BYTES`] of an object decide PDF, JPEG, PNG and XML; PDF, JPEG and PNG must
//! also end with their end marker ([`has_end_marker`], on the last [`TAIL_BYTES`]), so a magic
//! prefix glued to anything else is not enough. A ZIP needs a closer look: it is a DOCX only
//! when its central directory lists nothing but OOXML package parts (no Java classes, scripts,
//! executables, macro projects or ActiveX) and its `[Content_Types].xml` declares a
//! WordprocessingML main part; see [`check_package`] and [`content_types_declare_docx`].

use std::io::{Read, Seek, SeekFrom};

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

/// Decompresses `[Content_Types].xml` (at most [`MAX_CONTENT_TYPES_BYTES`]) from the parts of
/// an archive the caller fetched: `ranges` are `(offset, bytes)` of a file of `file_size`
/// bytes, and must cover the end record, the central directory and the entry's local header
/// and data. `None` when the archive is unreadable, lists another number of entries than
/// `expected_entries`, or the part is missing or too big.
pub fn read_content_types(file_size: u64, ranges: Vec<(u64, Bytes)>, expected_entries: usize) -> Option<Vec<u8>> {
    let reader = FetchedRanges { size: file_size, position: 0, ranges };
    let config = zip::read::Config { archive_offset: zip::read::ArchiveOffset::Known(0) };
    let mut archive = zip::ZipArchive::with_config(config, reader).ok()?;
    // The crate keys entries by name: a different count means names were listed twice.
    if archive.len() != expected_entries {
        return None;
    }
    let part = archive.by_name(CONTENT_TYPES_PART).ok()?;
    let mut xml = Vec::new();
    part.take(MAX_CONTENT_TYPES_BYTES + 1).read_to_end(&mut xml).ok()?;
    (xml.len() as u64 <= MAX_CONTENT_TYPES_BYTES).then_some(xml)
}

/// A file known only by some ranges of it: reads elsewhere fail instead of fetching more.
struct FetchedRanges {
    size: u64,
    position: u64,
    ranges: Vec<(u64, Bytes)>,
}

impl Read for FetchedRanges {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.position >= self.size || buf.is_empty() {
            return Ok(0);
        }
        let position = self.position;
        let Some((start, bytes)) = self.ranges.iter().find(|(start, bytes)| position >= *start && position < start + bytes.len() as u64) else {
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

/// The length of a local file header with its name and extra field, from its first bytes.
pub fn local_header_len(header: &[u8]) -> Option<u64> {
    if header.len() < LOCAL_HEADER_BYTES as usize || header[..4] != [b'P', b'K', 3, 4] {
        return None;
    }
    Some(LOCAL_HEADER_BYTES + u64::from(le16(header, 26)) + u64::from(le16(header, 28)))
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

    /// What the upload handler does, over an in-memory file: names, then the content types.
    fn is_docx(bytes: &[u8]) -> bool {
        let size = bytes.len() as u64;
        let Some(directory) = find_central_directory(bytes, size) else { return false };
        let listing = &bytes[directory.offset as usize..(directory.offset + directory.size) as usize];
        let Some(entries) = central_directory_entries(listing) else { return false };
        let names: Vec<String> = entries.iter().map(|e| e.name.clone()).collect();
        if entries.len() != usize::from(directory.entries) || !check_package(&names) {
            return false;
        }
        let Some(part) = entries.iter().find(|e| e.name == CONTENT_TYPES_PART) else { return false };
        let at = part.local_header_offset as usize;
        let Some(header_len) = local_header_len(&bytes[at..]) else { return false };
        let end = (at + header_len as usize + part.compressed_size as usize).min(bytes.len());
        let mut ranges = vec![(at as u64, Bytes::copy_from_slice(&bytes[at..end])), (directory.offset, Bytes::copy_from_slice(listing))];
        let tail_start = bytes.len().saturating_sub(ZIP_TAIL_BYTES as usize);
        ranges.push((tail_start as u64, Bytes::copy_from_slice(&bytes[tail_start..])));
        read_content_types(size, ranges, names.len()).is_some_and(|xml| content_types_declare_docx(&xml))
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
    fn xml_is_recognised_after_a_byte_order_mark_and_whitespace() {
        for xml in [
            &b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><root/>"[..],
            b"\xEF\xBB\xBF<?xml version=\"1.0\"?><root/>",
            b"\r\n  \t<Document xmlns=\"urn:x\"><a>1</a></Document>",
            b"\xEF\xBB\xBF\n<_x>\xD0\xBF\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82</_x>",
        ] {
            assert_eq!(sniff_head(xml), Sniffed::Format(FileFormat::Xml), "{:?}", String::from_utf8_lossy(xml));
        }
    }

    #[test]
    fn html_text_and_binary_are_not_xml() {
        for not_xml in [
            &b"<!DOCTYPE html><html><body>x</body></html>"[..],
            b"<html><script>alert(1)</script></html>",
            b"<script>alert(1)</script>",
            b"plain text, not markup",
            b"<1abc>",
            b"<root>\0\0\0binary",
            b"<root>\xFF\xFE</root>",
            b"",
        ] {
            assert_ne!(sniff_head(not_xml), Sniffed::Format(FileFormat::Xml), "{:?}", String::from_utf8_lossy(not_xml));
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
        assert!(!is_docx(&zip(&[("[Content_Types].xml", DOCX_TYPES), ("word/document.xml", b"<w/>"), ("word/vbaProject.bin", b"\xD0\xCF")])), "macro projects are refused");
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
}

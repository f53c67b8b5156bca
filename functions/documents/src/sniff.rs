//! Recognising a file's real format from its bytes (magic numbers), never from its name.
//!
//! The first [`HEAD_BYTES`] of an object decide PDF, JPEG, PNG and XML. A ZIP needs a second
//! look: it is a DOCX only when its central directory (at the end of the file) lists the parts
//! of a WordprocessingML package and no macro project, so the caller reads the tail and asks
//! [`zip_is_docx`].

use crate::policy::FileFormat;

/// How much of the start of an object the head sniff reads.
pub const HEAD_BYTES: u64 = 64 * 1024;
/// How much of the end of an object is searched for the ZIP end-of-central-directory record
/// (the record is 22 bytes plus a comment of at most 65 535).
pub const ZIP_TAIL_BYTES: u64 = 22 + 65_535;
/// Largest central directory read; a DOCX within the vault limit has a few kilobytes of it.
pub const MAX_CENTRAL_DIRECTORY_BYTES: u64 = 1024 * 1024;

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

/// Where a ZIP's central directory lies, from its end-of-central-directory record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CentralDirectory {
    pub offset: u64,
    pub size: u64,
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
        (size != u64::from(u32::MAX) && offset != u64::from(u32::MAX) && fits).then_some(CentralDirectory { offset, size })
    })
}

/// The entry names a central directory lists, or `None` when it is malformed.
pub fn central_directory_names(directory: &[u8]) -> Option<Vec<String>> {
    const SIGNATURE: [u8; 4] = [b'P', b'K', 1, 2];
    const HEADER: usize = 46;
    let mut names = Vec::new();
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
        names.push(String::from_utf8_lossy(name).into_owned());
        at += HEADER + name_len + extra_len + comment_len;
    }
    Some(names)
}

/// A ZIP is a DOCX when it is an OOXML package (`[Content_Types].xml`) with WordprocessingML
/// parts (`word/…`) and without a VBA project (that would be a macro-enabled `.docm`).
pub fn zip_is_docx(names: &[String]) -> bool {
    let has = |wanted: &str| names.iter().any(|name| name == wanted);
    has("[Content_Types].xml") && names.iter().any(|name| name.starts_with("word/")) && !names.iter().any(|name| name.to_ascii_lowercase().ends_with("vbaproject.bin"))
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

    /// A minimal ZIP archive (stored entries, no compression) holding `entries`.
    pub(crate) fn zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut directory = Vec::new();
        for (name, data) in entries {
            let offset = out.len() as u32;
            let crc = 0u32; // not checked by the sniffer
            out.extend_from_slice(b"PK\x03\x04");
            out.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            out.extend_from_slice(&crc.to_le_bytes());
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            out.extend_from_slice(&(name.len() as u16).to_le_bytes());
            out.extend_from_slice(&0u16.to_le_bytes());
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(data);

            directory.extend_from_slice(b"PK\x01\x02");
            directory.extend_from_slice(&[20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            directory.extend_from_slice(&crc.to_le_bytes());
            directory.extend_from_slice(&(data.len() as u32).to_le_bytes());
            directory.extend_from_slice(&(data.len() as u32).to_le_bytes());
            directory.extend_from_slice(&(name.len() as u16).to_le_bytes());
            directory.extend_from_slice(&[0; 12]);
            directory.extend_from_slice(&offset.to_le_bytes());
            directory.extend_from_slice(name.as_bytes());
        }
        let directory_offset = out.len() as u32;
        out.extend_from_slice(&directory);
        out.extend_from_slice(b"PK\x05\x06\0\0\0\0");
        out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        out.extend_from_slice(&(directory.len() as u32).to_le_bytes());
        out.extend_from_slice(&directory_offset.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out
    }

    pub(crate) fn docx() -> Vec<u8> {
        zip(&[
            ("[Content_Types].xml", b"<?xml version=\"1.0\"?><Types/>"),
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

    fn names_of(bytes: &[u8]) -> Option<Vec<String>> {
        let directory = find_central_directory(bytes, bytes.len() as u64)?;
        central_directory_names(&bytes[directory.offset as usize..(directory.offset + directory.size) as usize])
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
        assert!(zip_is_docx(&names_of(&docx()).expect("central directory")));

        let plain = zip(&[("readme.txt", b"hello"), ("word/notes.txt", b"x")]);
        assert!(!zip_is_docx(&names_of(&plain).expect("central directory")), "no [Content_Types].xml");

        let spreadsheet = zip(&[("[Content_Types].xml", b"<Types/>"), ("xl/workbook.xml", b"<workbook/>")]);
        assert!(!zip_is_docx(&names_of(&spreadsheet).expect("central directory")));

        let macros = zip(&[("[Content_Types].xml", b"<Types/>"), ("word/document.xml", b"<w/>"), ("word/vbaProject.bin", b"\xD0\xCF")]);
        assert!(!zip_is_docx(&names_of(&macros).expect("central directory")), "macro-enabled documents are refused");
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

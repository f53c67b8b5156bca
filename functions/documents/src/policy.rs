//! What may be uploaded where (SPEC §5): document types, purposes with their size limits, and
//! the file formats each purpose accepts. Formats are decided by content (see `sniff`); the
//! declared `content_type` only has to name a format the purpose accepts.

use serde::{Deserialize, Serialize};

const MIB: u64 = 1024 * 1024;

/// Why a document is uploaded; decides its size limit and accepted formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// The citizen's personal vault: versioned per type, the widest choice of formats.
    Vault,
    /// Scans of identity documents (passport, SNILS…).
    Identity,
    /// Attachments to applications, and agency results.
    Application,
}

impl Purpose {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "vault" => Some(Self::Vault),
            "identity" => Some(Self::Identity),
            "application" => Some(Self::Application),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Vault => "vault",
            Self::Identity => "identity",
            Self::Application => "application",
        }
    }

    /// Largest accepted file, in bytes (binary megabytes: 5 MB = 5 MiB).
    pub fn max_bytes(self) -> u64 {
        match self {
            Self::Identity => 5 * MIB,
            Self::Application => 10 * MIB,
            Self::Vault => 20 * MIB,
        }
    }

    pub fn accepts(self, format: FileFormat) -> bool {
        match format {
            FileFormat::Pdf | FileFormat::Jpeg | FileFormat::Png => true,
            FileFormat::Docx | FileFormat::Xml => self == Self::Vault,
        }
    }
}

/// The file formats the service knows how to recognise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileFormat {
    Pdf,
    Jpeg,
    Png,
    Docx,
    Xml,
}

pub const DOCX_CONTENT_TYPE: &str = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";

impl FileFormat {
    /// The format a declared media type names (parameters and case ignored), if any.
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        match essence.as_str() {
            "application/pdf" => Some(Self::Pdf),
            "image/jpeg" => Some(Self::Jpeg),
            "image/png" => Some(Self::Png),
            DOCX_CONTENT_TYPE => Some(Self::Docx),
            "application/xml" | "text/xml" => Some(Self::Xml),
            _ => None,
        }
    }

    /// The media type stored with the object and sent on download.
    pub fn canonical_content_type(self, declared: &str) -> &'static str {
        match self {
            Self::Pdf => "application/pdf",
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::Docx => DOCX_CONTENT_TYPE,
            // Both XML media types are registered; keep the one the client chose.
            Self::Xml if declared.trim().to_ascii_lowercase().starts_with("text/") => "text/xml",
            Self::Xml => "application/xml",
        }
    }
}

/// Document types (SPEC §5). `result` is issued by agencies only.
pub const DOCUMENT_TYPES: &[&str] = &[
    "passport",
    "snils",
    "inn",
    "driver_license",
    "oms_policy",
    "birth_certificate",
    "marriage_certificate",
    "power_of_attorney",
    "photo",
    "other",
    RESULT_TYPE,
];

pub const RESULT_TYPE: &str = "result";

pub fn is_document_type(raw: &str) -> bool {
    DOCUMENT_TYPES.contains(&raw)
}

/// Types a citizen may upload themselves.
pub fn citizen_may_upload(doc_type: &str) -> bool {
    is_document_type(doc_type) && doc_type != RESULT_TYPE
}

/// Why an upload slot is refused before any byte is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotRefusal {
    UnsupportedMediaType,
    TooLarge { limit: u64 },
}

/// Checks a declared upload against its purpose: format first (415), then size (413).
pub fn check_declared(purpose: Purpose, content_type: &str, size_bytes: u64) -> Result<FileFormat, SlotRefusal> {
    let format = FileFormat::from_content_type(content_type).filter(|f| purpose.accepts(*f)).ok_or(SlotRefusal::UnsupportedMediaType)?;
    if size_bytes > purpose.max_bytes() {
        return Err(SlotRefusal::TooLarge { limit: purpose.max_bytes() });
    }
    Ok(format)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_formats_follow_the_purpose_table() {
        use FileFormat::*;
        use Purpose::*;
        // (purpose, limit, formats accepted, formats refused)
        let table: [(Purpose, u64, &[FileFormat], &[FileFormat]); 3] = [
            (Identity, 5 * MIB, &[Pdf, Jpeg, Png], &[Docx, Xml]),
            (Application, 10 * MIB, &[Pdf, Jpeg, Png], &[Docx, Xml]),
            (Vault, 20 * MIB, &[Pdf, Jpeg, Png, Docx, Xml], &[]),
        ];
        for (purpose, limit, accepted, refused) in table {
            assert_eq!(purpose.max_bytes(), limit, "{purpose:?}");
            for format in accepted {
                assert!(purpose.accepts(*format), "{purpose:?} should accept {format:?}");
            }
            for format in refused {
                assert!(!purpose.accepts(*format), "{purpose:?} should refuse {format:?}");
            }
        }
    }

    #[test]
    fn declared_upload_is_checked_for_format_before_size() {
        assert_eq!(check_declared(Purpose::Identity, "application/pdf", 5 * MIB), Ok(FileFormat::Pdf));
        assert_eq!(check_declared(Purpose::Identity, "application/pdf", 5 * MIB + 1), Err(SlotRefusal::TooLarge { limit: 5 * MIB }));
        assert_eq!(check_declared(Purpose::Identity, "application/xml", 6_000_000), Err(SlotRefusal::UnsupportedMediaType));
        assert_eq!(check_declared(Purpose::Application, "image/png", 10 * MIB), Ok(FileFormat::Png));
        assert_eq!(check_declared(Purpose::Vault, DOCX_CONTENT_TYPE, 20 * MIB), Ok(FileFormat::Docx));
        assert_eq!(check_declared(Purpose::Vault, "text/xml; charset=utf-8", 1), Ok(FileFormat::Xml));
        assert_eq!(check_declared(Purpose::Vault, "application/x-msdownload", 1), Err(SlotRefusal::UnsupportedMediaType));
        assert_eq!(check_declared(Purpose::Vault, "application/pdf", 20 * MIB + 1), Err(SlotRefusal::TooLarge { limit: 20 * MIB }));
    }

    #[test]
    fn media_types_are_matched_without_case_or_parameters() {
        assert_eq!(FileFormat::from_content_type("Application/PDF"), Some(FileFormat::Pdf));
        assert_eq!(FileFormat::from_content_type("image/jpeg;q=1"), Some(FileFormat::Jpeg));
        assert_eq!(FileFormat::from_content_type("image/jpg"), None);
        assert_eq!(FileFormat::Xml.canonical_content_type("TEXT/XML"), "text/xml");
        assert_eq!(FileFormat::Xml.canonical_content_type("application/xml; charset=utf-8"), "application/xml");
    }

    #[test]
    fn citizens_cannot_upload_agency_results() {
        assert!(citizen_may_upload("passport"));
        assert!(!citizen_may_upload("result"));
        assert!(!citizen_may_upload("diploma"));
        assert!(is_document_type("result"));
    }
}

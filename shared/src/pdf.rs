//! One-page A4 PDF documents in Russian (agency decisions; later payment receipts): lines of
//! text set in an embedded TrueType font, subsetted to the glyphs used, with a `ToUnicode` map
//! so the text can be searched, copied and extracted. Built behind the `pdf` feature.
//!
//! The font is the caller's (e.g. DejaVu Sans, shipped with the local runner): any font with
//! the needed glyphs works; a character it lacks is drawn as its `.notdef` box.
//!
//! ```ignore
//! let bytes = shared::pdf::render(FONT, "Решение", &[Line::heading("Решение по заявлению № 1"), Line::text("Одобрено")])?;
//! ```

use std::collections::BTreeMap;
use std::io::Write as _;

use pdf_writer::types::{CidFontType, FontFlags, SystemInfo, UnicodeCmap};
use pdf_writer::{Content, Filter, Finish, Name, Pdf, Rect, Ref, Str, TextStr};

/// A4 in points.
const PAGE_WIDTH: f32 = 595.0;
const PAGE_HEIGHT: f32 = 842.0;
const MARGIN: f32 = 64.0;
/// Line height as a multiple of the font size.
const LEADING: f32 = 1.35;

#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    #[error("the font cannot be read: {0}")]
    Font(String),
    #[error("the font cannot be subsetted: {0}")]
    Subset(String),
    #[error("the text does not fit on one page")]
    TooLong,
}

/// One paragraph: wrapped to the page width, set at `size` points, after `space_before` points.
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    pub text: String,
    pub size: f32,
    pub space_before: f32,
}

impl Line {
    /// The document's title.
    pub fn heading(text: impl Into<String>) -> Self {
        Self { text: text.into(), size: 16.0, space_before: 0.0 }
    }

    /// A paragraph of body text.
    pub fn text(text: impl Into<String>) -> Self {
        Self { text: text.into(), size: 11.0, space_before: 6.0 }
    }

    /// Small print (footers, notes).
    pub fn small(text: impl Into<String>) -> Self {
        Self { text: text.into(), size: 8.5, space_before: 18.0 }
    }
}

/// Renders `lines` top-down on one A4 page; `title` goes into the document information.
pub fn render(font: &[u8], title: &str, lines: &[Line]) -> Result<Vec<u8>, PdfError> {
    let face = ttf_parser::Face::parse(font, 0).map_err(|e| PdfError::Font(e.to_string()))?;
    let mut glyphs = Glyphs::new(&face);

    // Lay out first: every glyph used is known before the font is subsetted.
    let mut content = Content::new();
    content.begin_text();
    let mut y = PAGE_HEIGHT - MARGIN;
    for line in lines {
        y -= line.space_before;
        for row in glyphs.wrap(&line.text, line.size, PAGE_WIDTH - 2.0 * MARGIN) {
            y -= line.size * LEADING;
            if y < MARGIN {
                return Err(PdfError::TooLong);
            }
            let encoded = glyphs.encode(&row);
            content.set_font(FONT_NAME, line.size);
            content.set_text_matrix([1.0, 0.0, 0.0, 1.0, MARGIN, y]);
            content.show(Str(&encoded));
        }
    }
    content.end_text();
    let content = content.finish();

    let subset = subsetter::subset(font, 0, &glyphs.remapper).map_err(|e| PdfError::Subset(e.to_string()))?;
    let base_font = format!("GOSUSL+{}", postscript_name(&face));

    let (catalog, pages, page, content_id, info) = (Ref::new(1), Ref::new(2), Ref::new(3), Ref::new(4), Ref::new(5));
    let (type0, cid, descriptor, font_file, to_unicode) = (Ref::new(6), Ref::new(7), Ref::new(8), Ref::new(9), Ref::new(10));
    let mut pdf = Pdf::new();
    pdf.set_version(1, 7);
    pdf.catalog(catalog).pages(pages);
    pdf.pages(pages).kids([page]).count(1);
    {
        let mut p = pdf.page(page);
        p.media_box(Rect::new(0.0, 0.0, PAGE_WIDTH, PAGE_HEIGHT)).parent(pages).contents(content_id);
        p.resources().fonts().pair(FONT_NAME, type0);
    }
    pdf.stream(content_id, &deflate(&content)).filter(Filter::FlateDecode);
    pdf.document_info(info).title(TextStr(title)).producer(TextStr("Госуслуги (модель)"));

    let system_info = SystemInfo { registry: Str(b"Adobe"), ordering: Str(b"Identity"), supplement: 0 };
    pdf.type0_font(type0).base_font(Name(base_font.as_bytes())).encoding_predefined(Name(b"Identity-H")).descendant_font(cid).to_unicode(to_unicode);
    {
        let mut c = pdf.cid_font(cid);
        c.subtype(CidFontType::Type2)
            .base_font(Name(base_font.as_bytes()))
            .system_info(system_info)
            .font_descriptor(descriptor)
            .cid_to_gid_map_predefined(Name(b"Identity"))
            .default_width(glyphs.missing_width());
        c.widths().consecutive(0, glyphs.widths());
    }
    let scale = 1000.0 / f32::from(face.units_per_em());
    let bbox = face.global_bounding_box();
    pdf.font_descriptor(descriptor)
        .name(Name(base_font.as_bytes()))
        .flags(FontFlags::NON_SYMBOLIC)
        .bbox(Rect::new(f32::from(bbox.x_min) * scale, f32::from(bbox.y_min) * scale, f32::from(bbox.x_max) * scale, f32::from(bbox.y_max) * scale))
        .italic_angle(0.0)
        .ascent(f32::from(face.ascender()) * scale)
        .descent(f32::from(face.descender()) * scale)
        .cap_height(f32::from(face.capital_height().unwrap_or(face.ascender())) * scale)
        .stem_v(80.0)
        .font_file2(font_file);
    pdf.stream(font_file, &deflate(&subset)).filter(Filter::FlateDecode);
    let cmap = glyphs.to_unicode(system_info);
    pdf.cmap(to_unicode, &cmap).finish();
    Ok(pdf.finish())
}

const FONT_NAME: Name<'static> = Name(b"F1");

/// The font's glyphs as used so far: original glyph → subset glyph (= CID), widths, and the
/// characters each stands for.
struct Glyphs<'f> {
    face: &'f ttf_parser::Face<'f>,
    remapper: subsetter::GlyphRemapper,
    /// Subset glyph → (advance in 1/1000 em, the character it was used for).
    used: BTreeMap<u16, (f32, char)>,
}

impl<'f> Glyphs<'f> {
    fn new(face: &'f ttf_parser::Face<'f>) -> Self {
        Self { face, remapper: subsetter::GlyphRemapper::new(), used: BTreeMap::new() }
    }

    fn glyph(&self, c: char) -> ttf_parser::GlyphId {
        self.face.glyph_index(c).unwrap_or(ttf_parser::GlyphId(0))
    }

    /// Advance of `c` in 1/1000 em.
    fn advance(&self, c: char) -> f32 {
        let units = self.face.glyph_hor_advance(self.glyph(c)).unwrap_or(0);
        f32::from(units) * 1000.0 / f32::from(self.face.units_per_em())
    }

    /// `text` split into rows no wider than `width` points, at spaces where possible.
    fn wrap(&self, text: &str, size: f32, width: f32) -> Vec<String> {
        let fits = |s: &str| s.chars().map(|c| self.advance(c)).sum::<f32>() * size / 1000.0 <= width;
        let mut rows = Vec::new();
        let mut row = String::new();
        for word in text.split_whitespace() {
            let candidate = if row.is_empty() { word.to_owned() } else { format!("{row} {word}") };
            if fits(&candidate) {
                row = candidate;
                continue;
            }
            if !row.is_empty() {
                rows.push(std::mem::take(&mut row));
            }
            // A word wider than the page is cut wherever it must be.
            for c in word.chars() {
                if !row.is_empty() && !fits(&format!("{row}{c}")) {
                    rows.push(std::mem::take(&mut row));
                }
                row.push(c);
            }
        }
        if !row.is_empty() || rows.is_empty() {
            rows.push(row);
        }
        rows
    }

    /// Two bytes per character: its subset glyph id (Identity-H).
    fn encode(&mut self, text: &str) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(text.len() * 2);
        for c in text.chars() {
            let new = self.remapper.remap(self.glyph(c).0);
            let advance = self.advance(c);
            self.used.entry(new).or_insert((advance, c));
            bytes.extend_from_slice(&new.to_be_bytes());
        }
        bytes
    }

    /// Widths of subset glyphs 0..n in order (unused ones, only `.notdef`, get its width).
    fn widths(&self) -> Vec<f32> {
        (0..self.remapper.num_gids()).map(|gid| self.used.get(&gid).map_or_else(|| self.missing_width(), |(w, _)| *w)).collect()
    }

    fn missing_width(&self) -> f32 {
        let units = self.face.glyph_hor_advance(ttf_parser::GlyphId(0)).unwrap_or(0);
        f32::from(units) * 1000.0 / f32::from(self.face.units_per_em())
    }

    fn to_unicode(&self, info: SystemInfo) -> Vec<u8> {
        let mut cmap = UnicodeCmap::new(Name(b"Custom"), info);
        for (gid, (_, c)) in &self.used {
            if *gid != 0 {
                cmap.pair(*gid, *c);
            }
        }
        cmap.finish().into_vec()
    }
}

fn postscript_name(face: &ttf_parser::Face<'_>) -> String {
    let name = face
        .names()
        .into_iter()
        .filter(|n| n.name_id == ttf_parser::name_id::POST_SCRIPT_NAME)
        .find_map(|n| n.to_string())
        .unwrap_or_else(|| "Font".to_owned());
    name.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').collect()
}

fn deflate(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(bytes);
    encoder.finish().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// DejaVu Sans, as the local runner ships it.
    const FONT: &[u8] = include_bytes!("../../infra/runner/assets/fonts/DejaVuSans.ttf");

    fn text_of(pdf: &[u8]) -> String {
        let document = lopdf::Document::load_mem(pdf).expect("a PDF lopdf can read");
        let pages: Vec<u32> = document.get_pages().keys().copied().collect();
        document.extract_text(&pages).expect("extractable text")
    }

    #[test]
    fn cyrillic_text_renders_and_reads_back() {
        let pdf = render(
            FONT,
            "Решение",
            &[
                Line::heading("Решение по заявлению № 2026-000123"),
                Line::text("Услуга: Замена паспорта гражданина РФ в 20 или 45 лет. Ёлка, щука, ъ."),
                Line::small("Документ сформирован демонстрационным ведомством."),
            ],
        )
        .expect("rendered");
        assert!(pdf.starts_with(b"%PDF-1.7"), "a PDF header");
        assert!(pdf.len() < 60 * 1024, "the font is subsetted: {} bytes", pdf.len());
        let text = text_of(&pdf);
        for expected in ["Решение по заявлению № 2026-000123", "Замена паспорта", "Ёлка, щука, ъ.", "демонстрационным"]
        {
            assert!(text.contains(expected), "{expected:?} in {text:?}");
        }
    }

    #[test]
    fn long_paragraphs_wrap_within_the_page_and_overflow_is_refused() {
        let long = "Заявление рассмотрено в установленный срок и удовлетворено полностью. ".repeat(6);
        let pdf = render(FONT, "t", &[Line::text(&long)]).expect("wraps");
        let text = text_of(&pdf);
        assert!(text.matches("удовлетворено").count() == 6, "{text}");
        let too_much = vec![Line::text(long.clone()); 40];
        assert!(matches!(render(FONT, "t", &too_much), Err(PdfError::TooLong)));
    }

    #[test]
    fn a_file_that_is_no_font_is_an_error() {
        assert!(matches!(render(b"not a font", "t", &[Line::text("x")]), Err(PdfError::Font(_))));
    }
}

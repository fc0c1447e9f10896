//! Booking receipts as single-page A4 PDFs: the booking details as extractable text plus a QR code of the
//! ticket code for scanning at the door.
//!
//! Rendering is pure Rust (krilla) with DejaVu Sans compiled into the binary, so receipts look the same on
//! every host and need no system fonts. Only the glyphs actually used are embedded, which keeps a receipt
//! under 30 KB.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use krilla::Document;
use krilla::color::rgb;
use krilla::geom::{PathBuilder, Point, Rect};
use krilla::metadata::Metadata;
use krilla::num::NormalizedF32;
use krilla::page::PageSettings;
use krilla::paint::{Fill, FillRule};
use krilla::surface::Surface;
use krilla::text::{Font, TextDirection};
use qrcode::{Color, QrCode};
use skrifa::MetadataProvider;
use skrifa::charmap::Charmap;
use skrifa::instance::{LocationRef, Size};
use skrifa::metrics::GlyphMetrics;

const REGULAR_TTF: &[u8] = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/fonts/DejaVuSans.ttf"));
const BOLD_TTF: &[u8] = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/fonts/DejaVuSans-Bold.ttf"));

// A4 in points.
const PAGE_W: f32 = 595.28;
const PAGE_H: f32 = 841.89;
const MARGIN: f32 = 56.0;
const VALUE_X: f32 = MARGIN + 110.0;
const LABEL_SIZE: f32 = 10.0;
const VALUE_SIZE: f32 = 11.0;
const LINE_H: f32 = 15.0;
/// 5 pt is ~10 px per module at 150 dpi: comfortably decodable, yet a typical code stays under 200 pt wide.
const QR_MODULE_PT: f32 = 5.0;
const QR_MAX_SIDE: f32 = 240.0;
/// The QR spec requires a 4-module light border for scanners to find the finder patterns.
const QR_QUIET_MODULES: usize = 4;
/// Printed for characters DejaVu Sans lacks; krilla itself would draw `.notdef` boxes and garble extraction.
const REPLACEMENT: char = '\u{FFFD}';

/// Everything printed on a receipt.
pub struct Receipt {
    pub booking_id: String,
    pub event_title: String,
    pub venue: String,
    pub starts_at: DateTime<Utc>,
    /// Empty for general admission.
    pub seats: Vec<String>,
    pub quantity: i64,
    pub amount_cents: i64,
    /// ISO 4217 code, e.g. "EUR".
    pub currency: String,
    /// Encoded in the QR code and also printed as text.
    pub ticket_code: String,
    pub customer_email: String,
    pub paid_at: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReceiptError {
    #[error("embedded receipt font could not be parsed")]
    Font,
    #[error("ticket code cannot be encoded as a qr code: {0}")]
    QrCode(#[from] qrcode::types::QrError),
    #[error("pdf generation failed: {0}")]
    Pdf(#[from] krilla::error::KrillaError),
}

/// Formats minor units as "12.50 EUR": 2 decimals, or the ISO 4217 exponent for the currencies that
/// differ (0 for JPY/KRW/..., 3 for KWD/BHD/...).
pub fn format_amount(cents: i64, currency: &str) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    // unsigned_abs: i64::MIN has no positive i64 counterpart.
    let abs = cents.unsigned_abs();
    match minor_unit_digits(currency) {
        0 => format!("{sign}{abs} {currency}"),
        digits => {
            let scale = 10u64.pow(digits);
            let (whole, frac) = (abs / scale, abs % scale);
            format!("{sign}{whole}.{frac:0width$} {currency}", width = digits as usize)
        }
    }
}

fn minor_unit_digits(currency: &str) -> u32 {
    const ZERO: &[&str] = &[
        "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND", "VUV", "XAF", "XOF",
        "XPF",
    ];
    const THREE: &[&str] = &["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"];
    let code = currency.trim().to_ascii_uppercase();
    if ZERO.contains(&code.as_str()) {
        0
    } else if THREE.contains(&code.as_str()) {
        3
    } else {
        2
    }
}

/// Renders the receipt as a one-page A4 PDF.
pub fn render(r: &Receipt) -> Result<Vec<u8>, ReceiptError> {
    let fonts = FONTS.as_ref().ok_or(ReceiptError::Font)?;
    // Encode first: an unencodable ticket code should fail before any drawing work.
    let qr = QrCode::new(r.ticket_code.as_bytes())?;

    let mut document = Document::new();
    let mut metadata = Metadata::new()
        .title(format!("boxoffice receipt {}", r.booking_id))
        .creator("boxoffice".to_owned())
        .language("en".to_owned());
    // Dated from the payment, not the clock, so the same receipt always renders to the same bytes.
    if let Some(paid_at) = pdf_date(r.paid_at) {
        metadata = metadata.creation_date(paid_at);
    }
    document.set_metadata(metadata);

    // Both dimensions are positive constants, so this never falls back.
    let settings = PageSettings::from_wh(PAGE_W, PAGE_H).unwrap_or_default();
    let mut page = document.start_page_with(settings);
    // The surface's Drop writes the content stream, so the pen must be gone before the page finishes.
    draw_receipt(&mut Pen { surface: page.surface(), y: MARGIN }, fonts, r, &qr);
    page.finish();
    Ok(document.finish()?)
}

fn draw_receipt(pen: &mut Pen, fonts: &Fonts, r: &Receipt, qr: &QrCode) {
    pen.line(Style { face: &fonts.bold, size: 24.0, line_height: 30.0, gray: 0 }, MARGIN, "boxoffice receipt");
    pen.rule();
    pen.y += 14.0;
    pen.block(Style { face: &fonts.bold, size: 17.0, line_height: 22.0, gray: 0 }, MARGIN, &r.event_title, 3);
    pen.y += 10.0;

    let seats = if r.seats.is_empty() {
        ("Admission", format!("General admission \u{d7} {}", r.quantity), 1)
    } else {
        ("Seats", r.seats.join(", "), 4)
    };
    let rows = [
        ("Venue", r.venue.clone(), 2),
        ("Date", format_utc(r.starts_at), 1),
        seats,
        ("Quantity", r.quantity.to_string(), 1),
        ("Amount", format_amount(r.amount_cents, &r.currency), 1),
        ("Booking ID", r.booking_id.clone(), 2),
        ("Customer", r.customer_email.clone(), 2),
        ("Paid at", format_utc(r.paid_at), 1),
    ];
    for (label, value, max_lines) in &rows {
        pen.row(fonts, label, value, *max_lines);
    }

    pen.y += 12.0;
    pen.rule();
    pen.y += 14.0;
    pen.line(fonts.label(), MARGIN, "Ticket code");
    // The printed code is the fallback when scanning fails, so it gets more room than other fields.
    pen.block(Style { face: &fonts.regular, size: 13.0, line_height: 17.0, gray: 0 }, MARGIN, &r.ticket_code, 6);
    // Whatever is left of the page (minus the bottom margin) bounds the QR code, so it can never spill over.
    let room = PAGE_H - MARGIN - pen.y;
    pen.qr(qr, room);
}

fn format_utc(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn pdf_date(t: DateTime<Utc>) -> Option<krilla::metadata::DateTime> {
    use chrono::{Datelike, Timelike};
    let year = u16::try_from(t.year()).ok()?;
    // All below 60 by chrono's invariants (leap seconds live in the nanoseconds), so u8 always fits.
    let [month, day, hour, minute, second] =
        [t.month(), t.day(), t.hour(), t.minute(), t.second()].map(|v| u8::try_from(v).unwrap_or(0));
    Some(
        krilla::metadata::DateTime::new(year)
            .month(month)
            .day(day)
            .hour(hour)
            .minute(minute)
            .second(second)
            .utc_offset_hour(0)
            .utc_offset_minute(0),
    )
}

/// One font face: krilla's handle for drawing, skrifa's tables for coverage and width.
struct Face {
    font: Font,
    charmap: Charmap<'static>,
    metrics: GlyphMetrics<'static>,
}

impl Face {
    fn load(data: &'static [u8]) -> Option<Self> {
        let font_ref = skrifa::FontRef::new(data).ok()?;
        Some(Face {
            font: Font::new(data.into(), 0)?,
            charmap: font_ref.charmap(),
            // 1 ppem: advances come out in em, to be multiplied by the font size.
            metrics: font_ref.glyph_metrics(Size::new(1.0), LocationRef::default()),
        })
    }

    fn covers(&self, ch: char) -> bool {
        self.charmap.map(ch).is_some()
    }

    /// Sum of advance widths. Ignores kerning, which shifts a line by a point or two; the margin absorbs it.
    fn width(&self, text: &str, size: f32) -> f32 {
        let em: f32 = text
            .chars()
            .filter_map(|ch| self.charmap.map(ch))
            .filter_map(|glyph| self.metrics.advance_width(glyph))
            .sum();
        em * size
    }

    /// Replaces characters the font cannot draw: krilla would silently emit `.notdef` boxes, which also
    /// garble text extraction. Control characters become spaces; invisible format characters are dropped.
    fn sanitize(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        for ch in text.chars() {
            if ch.is_control() {
                out.push(' ');
            } else if self.covers(ch) {
                out.push(ch);
            } else if is_default_ignorable(ch) {
                continue;
            } else if !out.ends_with(REPLACEMENT) {
                // One marker per run: an emoji ZWJ sequence or a CJK phrase is one gap, not a row of boxes.
                out.push(REPLACEMENT);
            }
        }
        out
    }

    /// Greedy word wrap to `max_width`; words wider than a line are broken between characters, and text
    /// beyond `max_lines` is cut with an ellipsis so a hostile title cannot push the QR code off the page.
    fn wrap(&self, text: &str, size: f32, max_width: f32, max_lines: usize) -> Vec<String> {
        let fits = |s: &str| self.width(s, size) <= max_width;
        let mut lines = Vec::new();
        let mut line = String::new();
        for word in text.split(' ').filter(|w| !w.is_empty()) {
            // Stop once the result is going to be cut anyway, so huge input costs nothing extra.
            if lines.len() > max_lines {
                break;
            }
            let candidate = if line.is_empty() { word.to_owned() } else { format!("{line} {word}") };
            if fits(&candidate) {
                line = candidate;
                continue;
            }
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            line = word.to_owned();
            while !fits(&line) && lines.len() <= max_lines {
                let split = fitting_prefix_len(&line, fits);
                lines.push(line[..split].to_owned());
                line = line[split..].to_owned();
            }
        }
        if !line.is_empty() || lines.is_empty() {
            lines.push(line);
        }
        if lines.len() > max_lines {
            lines.truncate(max_lines);
            if let Some(last) = lines.last_mut() {
                while !last.is_empty() && !fits(&format!("{last}\u{2026}")) {
                    last.pop();
                }
                last.push('\u{2026}');
            }
        }
        lines
    }
}

/// Byte length of the longest prefix that fits, at least one character so wrapping always progresses.
fn fitting_prefix_len(text: &str, fits: impl Fn(&str) -> bool) -> usize {
    let mut boundaries = text.char_indices().map(|(i, _)| i).skip(1).chain([text.len()]);
    let first = boundaries.next().unwrap_or(text.len());
    boundaries.take_while(|&end| fits(&text[..end])).last().unwrap_or(first)
}

/// Unicode default-ignorable code points (joiners, bidi controls, variation selectors, ...): invisible by
/// design, so dropping them when the font lacks a glyph loses nothing visible.
fn is_default_ignorable(ch: char) -> bool {
    matches!(
        ch,
        '\u{AD}'
            | '\u{34F}'
            | '\u{61C}'
            | '\u{115F}'..='\u{1160}'
            | '\u{17B4}'..='\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFF8}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

struct Fonts {
    regular: Face,
    bold: Face,
}

impl Fonts {
    fn label(&self) -> Style<'_> {
        Style { face: &self.regular, size: LABEL_SIZE, line_height: LINE_H, gray: 100 }
    }
}

// Parsed once: krilla hashes the whole font file on load, which would otherwise dominate each render.
static FONTS: LazyLock<Option<Fonts>> =
    LazyLock::new(|| Some(Fonts { regular: Face::load(REGULAR_TTF)?, bold: Face::load(BOLD_TTF)? }));

/// Font, size, line height and gray level (0 = black) of a run of text.
#[derive(Clone, Copy)]
struct Style<'f> {
    face: &'f Face,
    size: f32,
    line_height: f32,
    gray: u8,
}

/// Draws top to bottom; `y` is the top of the next line (krilla's origin is top-left, y grows downwards).
struct Pen<'a> {
    surface: Surface<'a>,
    y: f32,
}

impl Pen<'_> {
    fn line(&mut self, style: Style, x: f32, text: &str) {
        self.block(style, x, text, 1);
    }

    fn block(&mut self, style: Style, x: f32, text: &str, max_lines: usize) {
        let text = style.face.sanitize(text);
        for line in style.face.wrap(&text, style.size, PAGE_W - MARGIN - x, max_lines) {
            self.draw(style, x, &line);
        }
    }

    fn row(&mut self, fonts: &Fonts, label: &str, value: &str, max_lines: usize) {
        let top = self.y;
        self.line(fonts.label(), MARGIN, label);
        self.y = top;
        let value_style = Style { face: &fonts.regular, size: VALUE_SIZE, line_height: LINE_H, gray: 0 };
        self.block(value_style, VALUE_X, value, max_lines);
        self.y += 5.0;
    }

    /// `text` must already be sanitized.
    fn draw(&mut self, style: Style, x: f32, text: &str) {
        // Baseline sits ~80% down the line box, which centres DejaVu's cap height.
        let baseline = self.y + style.line_height * 0.8;
        self.y += style.line_height;
        if text.is_empty() {
            return;
        }
        self.surface.set_fill(Some(solid(style.gray)));
        let start = Point::from_xy(x, baseline);
        self.surface.draw_text(start, style.face.font.clone(), style.size, text, false, TextDirection::Auto);
    }

    fn rule(&mut self) {
        let mut pb = PathBuilder::new();
        if let Some(rect) = Rect::from_xywh(MARGIN, self.y, PAGE_W - 2.0 * MARGIN, 0.75) {
            pb.push_rect(rect);
        }
        if let Some(path) = pb.finish() {
            self.surface.set_fill(Some(solid(180)));
            self.surface.draw_path(&path);
        }
        self.y += 0.75;
    }

    /// Draws the module matrix as one path of horizontal runs: a single fill leaves no anti-aliasing seams
    /// between neighbouring modules, and merging runs keeps the content stream small.
    fn qr(&mut self, qr: &QrCode, room: f32) {
        let width = qr.width();
        let side_modules = width + 2 * QR_QUIET_MODULES;
        let module = QR_MODULE_PT.min(QR_MAX_SIDE.min(room) / side_modules as f32);
        let origin_x = MARGIN;
        let origin_y = self.y;
        let quiet = QR_QUIET_MODULES as f32 * module;
        let colors = qr.to_colors();

        let mut pb = PathBuilder::new();
        for (row, cells) in colors.chunks(width).enumerate() {
            let mut col = 0;
            while col < width {
                if cells[col] != Color::Dark {
                    col += 1;
                    continue;
                }
                let start = col;
                while col < width && cells[col] == Color::Dark {
                    col += 1;
                }
                let x = origin_x + quiet + start as f32 * module;
                let y = origin_y + quiet + row as f32 * module;
                if let Some(rect) = Rect::from_xywh(x, y, (col - start) as f32 * module, module) {
                    pb.push_rect(rect);
                }
            }
        }
        if let Some(path) = pb.finish() {
            self.surface.set_fill(Some(solid(0)));
            self.surface.draw_path(&path);
        }
        self.y += side_modules as f32 * module;
    }
}

fn solid(gray: u8) -> Fill {
    Fill { paint: rgb::Color::new(gray, gray, gray).into(), opacity: NormalizedF32::ONE, rule: FillRule::NonZero }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn sample() -> Receipt {
        Receipt {
            booking_id: "bk_0192f3a4-5b6c-7d8e-9f00-112233445566".to_owned(),
            event_title: "Café Ünïcode — Nuit 🎉 漢字".to_owned(),
            venue: "Grand Hall, Rue de l’Exemple 1, Paris".to_owned(),
            starts_at: Utc.with_ymd_and_hms(2026, 12, 31, 20, 0, 0).unwrap(),
            seats: vec!["A1".to_owned(), "A2".to_owned()],
            quantity: 2,
            amount_cents: 1250,
            currency: "EUR".to_owned(),
            ticket_code: "TKT-7Q2M-9XKD-41PZ".to_owned(),
            customer_email: "ada@example.com".to_owned(),
            paid_at: Utc.with_ymd_and_hms(2026, 11, 1, 9, 30, 0).unwrap(),
        }
    }

    #[test]
    fn renders_a_pdf() {
        let pdf = render(&sample()).unwrap();
        assert!(pdf.starts_with(b"%PDF-"));
        // Same input, same bytes: nothing time- or randomness-dependent leaks in.
        assert_eq!(pdf, render(&sample()).unwrap());
        // Also on another thread (other hash seeds): a receipt rendered on demand equals the stored one.
        let elsewhere = std::thread::spawn(|| render(&sample()).unwrap()).join().unwrap();
        assert_eq!(pdf, elsewhere);
    }

    #[test]
    fn renders_general_admission_and_extreme_input() {
        let mut r = sample();
        r.seats.clear();
        r.event_title = "Ω".repeat(200_000) + "\n\u{200D}\u{1F600}\t" + &"x ".repeat(500);
        r.ticket_code = "Z".repeat(1500);
        assert!(render(&r).unwrap().starts_with(b"%PDF-"));
        r.ticket_code = "Z".repeat(8000);
        assert!(matches!(render(&r), Err(ReceiptError::QrCode(_))));
    }

    #[test]
    fn formats_amounts() {
        assert_eq!(format_amount(1250, "EUR"), "12.50 EUR");
        assert_eq!(format_amount(5, "EUR"), "0.05 EUR");
        assert_eq!(format_amount(0, "USD"), "0.00 USD");
        assert_eq!(format_amount(1500, "JPY"), "1500 JPY");
        assert_eq!(format_amount(1234, "KWD"), "1.234 KWD");
        assert_eq!(format_amount(-1250, "EUR"), "-12.50 EUR");
    }

    #[test]
    fn sanitizes_and_wraps_text() {
        let fonts = FONTS.as_ref().unwrap();
        assert!(fonts.regular.covers(REPLACEMENT));
        assert_eq!(fonts.regular.sanitize("Café\u{E0041}漢字🎉\tend"), "Café\u{FFFD} end");
        let lines = fonts.regular.wrap(&"word ".repeat(200), 11.0, 200.0, 3);
        assert_eq!(lines.len(), 3);
        assert!(lines.iter().all(|l| fonts.regular.width(l, 11.0) <= 200.0));
        assert!(lines[2].ends_with('\u{2026}'));
    }

    #[test]
    fn error_is_thread_safe() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<ReceiptError>();
    }
}

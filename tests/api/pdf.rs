//! Reads rendered PDFs back for assertions: text via poppler's `pdftotext`, QR codes by rasterising with
//! `pdftoppm` and decoding with `rqrr`. Poppler is a test-time requirement (`apt-get install poppler-utils`).

use std::io::{ErrorKind, Write};
use std::process::{Command, Stdio};

/// The text of every page, as `pdftotext` extracts it (UTF-8, reading order).
pub fn pdf_text(pdf: &[u8]) -> String {
    let out = run_poppler("pdftotext", &["-enc", "UTF-8", "-", "-"], pdf);
    String::from_utf8(out).expect("pdftotext printed invalid UTF-8")
}

/// Contents of every QR code found on page 1, rendered at 150 dpi.
pub fn pdf_qr_codes(pdf: &[u8]) -> Vec<String> {
    // Grayscale PGM on stdout: trivial to parse, so no image crate or temporary files are needed.
    let pgm = run_poppler("pdftoppm", &["-r", "150", "-gray", "-f", "1", "-l", "1", "-"], pdf);
    let (width, height, pixels) = parse_pgm(&pgm);
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(width, height, |x, y| pixels[y * width + x]);
    image
        .detect_grids()
        .into_iter()
        .map(|grid| grid.decode().unwrap_or_else(|e| panic!("found a QR code but could not decode it: {e:?}")).1)
        .collect()
}

/// Pipes `input` through a poppler tool; panics with an install hint if the tool is missing.
fn run_poppler(tool: &str, args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut command = Command::new(tool);
    command.args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            panic!("`{tool}` not found on PATH; install poppler-utils (e.g. `apt-get install poppler-utils`)")
        }
        Err(e) => panic!("failed to start `{tool}`: {e}"),
    };
    // Feed stdin from a thread so a tool that starts writing before it has read everything cannot deadlock.
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("`{tool}` failed: {e}"));
    // A broken pipe just means the tool stopped reading early; its exit status says what went wrong.
    let _ = writer.join().expect("stdin writer panicked");
    assert!(out.status.success(), "`{tool}` exited with {}: {}", out.status, String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// Parses binary 8-bit PGM (P5), as written by `pdftoppm -gray`.
fn parse_pgm(data: &[u8]) -> (usize, usize, &[u8]) {
    let mut pos = 0;
    let mut header = [0usize; 4]; // magic placeholder, width, height, maxval
    for (i, field) in header.iter_mut().enumerate() {
        // Skip whitespace and `#` comments between header fields.
        loop {
            match data.get(pos) {
                Some(b) if b.is_ascii_whitespace() => pos += 1,
                Some(b'#') => pos += data[pos..].iter().position(|&b| b == b'\n').unwrap_or(data.len() - pos),
                _ => break,
            }
        }
        let start = pos;
        while data.get(pos).is_some_and(|b| !b.is_ascii_whitespace()) {
            pos += 1;
        }
        let token = std::str::from_utf8(&data[start..pos]).unwrap_or("");
        if i == 0 {
            assert_eq!(token, "P5", "pdftoppm did not produce a binary PGM");
        } else {
            *field = token.parse().unwrap_or_else(|_| panic!("bad PGM header field {token:?}"));
        }
    }
    let [_, width, height, maxval] = header;
    assert_eq!(maxval, 255, "expected an 8-bit PGM");
    // Exactly one whitespace byte separates the header from the pixels.
    let pixels = &data[pos + 1..];
    assert!(pixels.len() >= width * height, "truncated PGM: {} bytes for {width}x{height}", pixels.len());
    (width, height, pixels)
}

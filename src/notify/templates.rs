//! Notification e-mail templates: pure functions that turn booking facts into a subject, a plain-text body
//! and an HTML body. No I/O here so the wording can be unit-tested; every user-supplied string (titles,
//! venues, seats, reasons, codes) is HTML-escaped before it reaches the HTML body.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

/// The booking facts a notification talks about.
#[derive(Debug, Clone)]
pub struct BookingInfo {
    pub booking_id: String,
    pub event_title: String,
    pub venue: String,
    pub starts_at: DateTime<Utc>,
    pub seats: Vec<String>,
    pub quantity: i64,
    /// Already formatted for display, e.g. "12.50 EUR".
    pub amount: String,
    pub ticket_code: Option<String>,
}

/// A rendered notification, ready to be put into an e-mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// "Your tickets for {title}": the confirmation that carries the PDF receipt and the ticket code.
pub fn booking_confirmed(b: &BookingInfo) -> Rendered {
    let title = one_line(&b.event_title);
    let mut text = format!("Your booking is confirmed. See you at {title}!\n\n");
    let mut html = format!("<p>Your booking is confirmed. See you at <strong>{}</strong>!</p>\n", escape(&title));
    match &b.ticket_code {
        Some(code) => {
            let _ = write!(text, "Your ticket code: {code}\nShow this code at the entrance.\n\n");
            let _ = write!(
                html,
                "<p>Your ticket code:</p>\n<p style=\"font-size:1.5em;font-family:monospace;\"><strong>{}</strong></p>\n\
                 <p>Show this code at the entrance.</p>\n",
                escape(code)
            );
        }
        None => {
            let _ = write!(text, "Show your booking reference {} at the entrance.\n\n", b.booking_id);
            let _ = writeln!(
                html,
                "<p>Show your booking reference <strong>{}</strong> at the entrance.</p>",
                escape(&b.booking_id)
            );
        }
    }
    push_details(&mut text, &mut html, b, "Amount paid");
    text.push_str("\nYour receipt is attached to this email as a PDF.\n");
    html.push_str("<p>Your receipt is attached to this email as a PDF.</p>\n");
    finish(format!("Your tickets for {title}"), text, html)
}

/// The booking was cancelled (by the customer or the organiser); `reason` is shown verbatim.
pub fn booking_cancelled(b: &BookingInfo, reason: &str) -> Rendered {
    let title = one_line(&b.event_title);
    let mut text = format!("Your booking for {title} has been cancelled.\nReason: {reason}\n\n");
    let mut html = format!(
        "<p>Your booking for <strong>{}</strong> has been cancelled.</p>\n<p>Reason: {}</p>\n",
        escape(&title),
        escape(reason)
    );
    push_details(&mut text, &mut html, b, "Amount");
    let refund_note = "If you were charged, you will receive a separate email once the refund has been issued.";
    let _ = write!(text, "\n{refund_note}\n");
    let _ = writeln!(html, "<p>{refund_note}</p>");
    finish(format!("Booking cancelled: {title}"), text, html)
}

/// The seat hold ran out before payment completed; the seats went back on sale.
pub fn booking_expired(b: &BookingInfo) -> Rendered {
    let title = one_line(&b.event_title);
    let note = "We held these seats for you, but the payment was not completed in time, so they have been \
                released. You have not been charged. You are welcome to book again if seats are still available.";
    let mut text = format!("Your reservation for {title} has expired.\n{note}\n\n");
    let mut html =
        format!("<p>Your reservation for <strong>{}</strong> has expired.</p>\n<p>{note}</p>\n", escape(&title));
    push_details(&mut text, &mut html, b, "Amount");
    finish(format!("Your reservation for {title} has expired"), text, html)
}

/// The payment attempt was declined or errored; `reason` comes from the payment provider.
pub fn payment_failed(b: &BookingInfo, reason: &str) -> Rendered {
    let title = one_line(&b.event_title);
    let mut text = format!(
        "We could not complete your payment of {} for {title}.\nReason: {reason}\n\
         Your booking is not confirmed and no tickets have been issued.\n\n",
        b.amount
    );
    let mut html = format!(
        "<p>We could not complete your payment of <strong>{}</strong> for <strong>{}</strong>.</p>\n\
         <p>Reason: {}</p>\n<p>Your booking is not confirmed and no tickets have been issued.</p>\n",
        escape(&b.amount),
        escape(&title),
        escape(reason)
    );
    push_details(&mut text, &mut html, b, "Amount");
    finish(format!("Payment failed for {title}"), text, html)
}

/// Money went back to the customer.
pub fn payment_refunded(b: &BookingInfo) -> Rendered {
    let title = one_line(&b.event_title);
    let note = "Depending on your bank, it may take a few business days to appear on your statement.";
    let mut text = format!("We have refunded {} for your booking for {title}.\n{note}\n\n", b.amount);
    let mut html = format!(
        "<p>We have refunded <strong>{}</strong> for your booking for <strong>{}</strong>.</p>\n<p>{note}</p>\n",
        escape(&b.amount),
        escape(&title)
    );
    push_details(&mut text, &mut html, b, "Amount refunded");
    finish(format!("Refund issued for {title}"), text, html)
}

/// The booking summary shared by every notification, appended to both bodies.
fn push_details(text: &mut String, html: &mut String, b: &BookingInfo, amount_label: &str) {
    let when = b.starts_at.format("%A %-d %B %Y, %H:%M UTC").to_string();
    let seats = if b.seats.is_empty() { "General admission".to_owned() } else { b.seats.join(", ") };
    let tickets = if b.quantity == 1 { "1 ticket".to_owned() } else { format!("{} tickets", b.quantity) };
    let rows = [
        ("Booking", b.booking_id.as_str()),
        ("Event", b.event_title.as_str()),
        ("Venue", b.venue.as_str()),
        ("Starts", when.as_str()),
        ("Seats", seats.as_str()),
        ("Quantity", tickets.as_str()),
        (amount_label, b.amount.as_str()),
    ];
    html.push_str("<table cellpadding=\"4\" style=\"border-collapse:collapse;\">\n");
    for (label, value) in rows {
        let _ = writeln!(text, "{label}: {}", one_line(value));
        let _ = writeln!(
            html,
            "<tr><th align=\"left\" style=\"padding-right:1em;\">{}</th><td>{}</td></tr>",
            escape(label),
            escape(value)
        );
    }
    html.push_str("</table>\n");
}

fn finish(subject: String, mut text: String, body: String) -> Rendered {
    text.push_str("\n-- \nboxoffice\n");
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n</head>\n\
         <body style=\"font-family:sans-serif;line-height:1.4;\">\n{body}<p style=\"color:#666;\">boxoffice</p>\n\
         </body>\n</html>\n",
        escape(&subject)
    );
    Rendered { subject, text, html }
}

/// Collapses line breaks and other control characters so a user-supplied value cannot break the layout of a
/// subject or a "Label: value" line.
fn one_line(s: &str) -> String {
    s.split(|c: char| c.is_control())
        .filter(|part| !part.trim().is_empty())
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Minimal HTML escaping, valid in both element content and quoted attribute values.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn info() -> BookingInfo {
        BookingInfo {
            booking_id: "bk-42".to_owned(),
            event_title: "Rust & Roll".to_owned(),
            venue: "Main Hall".to_owned(),
            starts_at: Utc.with_ymd_and_hms(2026, 7, 3, 19, 30, 0).unwrap(),
            seats: vec!["A-1".to_owned(), "A-2".to_owned()],
            quantity: 2,
            amount: "25.00 EUR".to_owned(),
            ticket_code: Some("TCK-7F3K-9Q".to_owned()),
        }
    }

    fn all(b: &BookingInfo, reason: &str) -> Vec<Rendered> {
        vec![
            booking_confirmed(b),
            booking_cancelled(b, reason),
            booking_expired(b),
            payment_failed(b, reason),
            payment_refunded(b),
        ]
    }

    #[test]
    fn confirmed_mentions_code_receipt_and_details() {
        let r = booking_confirmed(&info());
        assert_eq!(r.subject, "Your tickets for Rust & Roll");
        assert!(r.text.contains("Your ticket code: TCK-7F3K-9Q"), "{}", r.text);
        assert!(r.html.contains("TCK-7F3K-9Q"));
        assert!(r.text.contains("receipt is attached") && r.text.contains("PDF"));
        assert!(r.html.contains("receipt is attached"));
        assert!(r.text.contains("Seats: A-1, A-2"));
        assert!(r.text.contains("Quantity: 2 tickets"));
        assert!(r.text.contains("Amount paid: 25.00 EUR"));
        assert!(r.text.contains("Starts: Friday 3 July 2026, 19:30 UTC"), "{}", r.text);
        assert!(r.html.contains("Rust &amp; Roll"));
        assert!(!r.html.contains("Rust & Roll"));
    }

    #[test]
    fn confirmed_without_code_falls_back_to_booking_reference() {
        let r = booking_confirmed(&BookingInfo { ticket_code: None, seats: vec![], quantity: 1, ..info() });
        assert!(r.text.contains("booking reference bk-42"));
        assert!(r.text.contains("Seats: General admission"));
        assert!(r.text.contains("Quantity: 1 ticket\n"));
    }

    #[test]
    fn html_escapes_every_user_supplied_string() {
        let hostile = BookingInfo {
            booking_id: "<b>id</b>".to_owned(),
            event_title: "<script>alert(1)</script>".to_owned(),
            venue: "\"Hall\" & 'Co'".to_owned(),
            seats: vec!["<i>A-1</i>".to_owned()],
            amount: "<u>1 EUR</u>".to_owned(),
            ticket_code: Some("<img src=x>".to_owned()),
            ..info()
        };
        for r in all(&hostile, "<a href=\"evil\">x</a>") {
            assert!(r.html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{}", r.subject);
            for raw in ["<script", "<b>id", "<i>A-1", "<u>1", "<img", "<a href", "\"Hall\""] {
                assert!(!r.html.contains(raw), "{raw} leaked into {}", r.subject);
            }
            assert!(r.html.contains("&quot;Hall&quot; &amp; &#39;Co&#39;"));
            // The plain-text part is not HTML, so it keeps the title as written.
            assert!(r.text.contains("<script>alert(1)</script>"));
        }
    }

    #[test]
    fn reasons_are_included() {
        let b = info();
        assert!(booking_cancelled(&b, "event postponed").text.contains("Reason: event postponed"));
        assert!(payment_failed(&b, "card declined").html.contains("Reason: card declined"));
        assert!(payment_failed(&b, "card declined").text.contains("25.00 EUR"));
        assert!(payment_refunded(&b).text.contains("refunded 25.00 EUR"));
        assert!(booking_expired(&b).subject.contains("expired"));
    }

    #[test]
    fn subjects_stay_on_one_line() {
        let b = BookingInfo { event_title: "Line one\r\nBcc: victim@example.com".to_owned(), ..info() };
        for r in all(&b, "x") {
            assert!(!r.subject.contains('\n') && !r.subject.contains('\r'), "{:?}", r.subject);
            assert!(r.subject.contains("Line one Bcc: victim@example.com"));
        }
    }
}

//! Outgoing notification e-mail. Builds a MIME message (text + HTML alternative, optional attachments) with
//! lettre and either sends it through an SMTP relay or, when no relay is configured, writes it as an `.eml`
//! file into an outbox directory (development and tests). Errors are split into transient (retry later) and
//! permanent (give up) so the outbox worker can decide.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Attachment as MimeAttachment, Mailbox, MultiPart};
use lettre::transport::smtp::AsyncSmtpTransportBuilder;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tokio::io::AsyncWriteExt;

/// Upper bound for one SMTP delivery (connect, handshake and all commands) so a stuck relay cannot stall the
/// outbox worker.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Right-hand side of the generated `Message-ID` header.
const MESSAGE_ID_DOMAIN: &str = "boxoffice.local";

/// Keeps `{message_id}.eml` well under the usual 255-byte file-name limit.
const MAX_ID_LEN: usize = 200;

/// A file attached to an e-mail, e.g. `receipt.pdf` with `application/pdf`.
#[derive(Clone)]
pub struct Attachment {
    pub filename: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

impl fmt::Debug for Attachment {
    // The bytes can be large binary blobs; their length is what matters in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Attachment")
            .field("filename", &self.filename)
            .field("content_type", &self.content_type)
            .field("len", &self.bytes.len())
            .finish()
    }
}

/// One notification e-mail.
#[derive(Debug, Clone)]
pub struct Email {
    /// Stable id of the notification (e.g. "outbox-123"): names the outbox file and becomes the `Message-ID`
    /// header `<{message_id}@boxoffice.local>`, so a retried send is recognisably the same message.
    pub message_id: String,
    pub to: String,
    pub subject: String,
    /// Plain-text part.
    pub text: String,
    /// HTML part, sent as `multipart/alternative` together with `text`.
    pub html: String,
    /// When non-empty the message becomes `multipart/mixed` with these after the body.
    pub attachments: Vec<Attachment>,
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// Worth retrying later: relay unreachable, timeout, 4xx reply, local I/O failure.
    #[error("transient mail failure: {0}")]
    Transient(String),
    /// Retrying cannot help: invalid address or message, 5xx reply, bad configuration.
    #[error("permanent mail failure: {0}")]
    Permanent(String),
}

impl MailError {
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient(_))
    }
}

/// Where notification e-mails go.
pub enum Mailer {
    // Boxed: the lettre builder is several hundred bytes, the file variant a few dozen.
    Smtp(Box<SmtpMailer>),
    Files(FileMailer),
}

/// Delivery through an SMTP relay (pooled connections).
pub struct SmtpMailer {
    builder: AsyncSmtpTransportBuilder,
    // Built on first use: lettre's connection pool spawns a cleanup task, which needs a running Tokio runtime,
    // whereas `Mailer::new` may run before one exists.
    transport: OnceLock<AsyncSmtpTransport<Tokio1Executor>>,
    from: Mailbox,
    endpoint: String,
}

/// Delivery into `{dir}/{message_id}.eml` files.
pub struct FileMailer {
    dir: PathBuf,
    from: Mailbox,
}

impl FileMailer {
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Mailer {
    /// `smtp_url` is anything lettre's `from_url` accepts: "smtp://127.0.0.1:1025" (plain, no TLS, for a local
    /// relay or sink), "smtp://user:pass@host:587?tls=required" (STARTTLS), "smtps://user:pass@host:465"
    /// (implicit TLS). `None` writes files under `outbox_dir`, which is created if missing.
    pub fn new(smtp_url: Option<&str>, outbox_dir: &Path, from: &str) -> Result<Self, MailError> {
        let from = parse_mailbox("sender", from)?;
        match smtp_url {
            Some(url) => {
                let builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|e| MailError::Permanent(format!("invalid smtp url {}: {e}", redact_url(url))))?
                    .timeout(Some(SEND_TIMEOUT));
                Ok(Self::Smtp(Box::new(SmtpMailer {
                    builder,
                    transport: OnceLock::new(),
                    from,
                    endpoint: redact_url(url),
                })))
            }
            None => {
                std::fs::create_dir_all(outbox_dir).map_err(|e| {
                    MailError::Transient(format!("cannot create outbox directory {}: {e}", outbox_dir.display()))
                })?;
                Ok(Self::Files(FileMailer { dir: outbox_dir.to_path_buf(), from }))
            }
        }
    }

    /// SMTP: delivers the message, giving up after [`SEND_TIMEOUT`]. Files: writes `{outbox_dir}/{message_id}.eml`
    /// atomically (temp file, then rename), so sending the same `message_id` twice leaves exactly one file.
    pub async fn send(&self, email: &Email) -> Result<(), MailError> {
        match self {
            Self::Smtp(smtp) => {
                let message = build_message(&smtp.from, email)?;
                let transport = smtp.transport.get_or_init(|| smtp.builder.clone().build());
                match tokio::time::timeout(SEND_TIMEOUT, transport.send(message)).await {
                    Ok(Ok(_response)) => Ok(()),
                    Ok(Err(e)) => Err(classify_smtp_error(&e)),
                    Err(_elapsed) => Err(MailError::Transient(format!(
                        "smtp delivery to {} timed out after {}s",
                        smtp.endpoint,
                        SEND_TIMEOUT.as_secs()
                    ))),
                }
            }
            Self::Files(files) => {
                let message = build_message(&files.from, email)?;
                let name = format!("{}.eml", sanitize_id(&email.message_id)?);
                write_atomically(&files.dir, &name, &message.formatted()).await
            }
        }
    }

    /// For start-up logs: "smtp://host:port" (credentials stripped) or "files in ./data/outbox".
    pub fn describe(&self) -> String {
        match self {
            Self::Smtp(smtp) => smtp.endpoint.clone(),
            Self::Files(files) => format!("files in {}", files.dir.display()),
        }
    }
}

impl fmt::Debug for Mailer {
    // Hand-written so credentials inside the lettre builder can never end up in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Mailer").field(&self.describe()).finish()
    }
}

fn parse_mailbox(role: &str, address: &str) -> Result<Mailbox, MailError> {
    address.parse().map_err(|e| MailError::Permanent(format!("invalid {role} address {address:?}: {e}")))
}

fn build_message(from: &Mailbox, email: &Email) -> Result<Message, MailError> {
    let to = parse_mailbox("recipient", &email.to)?;
    let id = sanitize_id(&email.message_id)?;
    let alternative = MultiPart::alternative_plain_html(email.text.clone(), email.html.clone());
    let body = if email.attachments.is_empty() {
        alternative
    } else {
        let mut mixed = MultiPart::mixed().multipart(alternative);
        for attachment in &email.attachments {
            let content_type = ContentType::parse(&attachment.content_type).map_err(|e| {
                MailError::Permanent(format!(
                    "invalid content type {:?} for attachment {:?}: {e}",
                    attachment.content_type, attachment.filename
                ))
            })?;
            mixed = mixed.singlepart(
                MimeAttachment::new(attachment.filename.clone()).body(attachment.bytes.clone(), content_type),
            );
        }
        mixed
    };
    Message::builder()
        .message_id(Some(format!("<{id}@{MESSAGE_ID_DOMAIN}>")))
        .from(from.clone())
        .to(to)
        // Subjects often carry user-supplied text (event titles); line breaks must not reach the header.
        .subject(email.subject.replace(|c: char| c.is_control(), " "))
        .multipart(body)
        .map_err(|e| MailError::Permanent(format!("cannot build message {:?}: {e}", email.message_id)))
}

/// Keeps only `[A-Za-z0-9._-]` so the id is safe both as a file name and inside the `Message-ID` header.
fn sanitize_id(message_id: &str) -> Result<String, MailError> {
    let mut id: String = message_id
        .chars()
        .take(MAX_ID_LEN)
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '_' })
        .collect();
    // A leading dot would hide the file (and temp files start with one).
    if id.starts_with('.') {
        id.replace_range(..1, "_");
    }
    if id.is_empty() {
        return Err(MailError::Permanent("empty message id".to_owned()));
    }
    Ok(id)
}

/// Writes `dir/name` so readers only ever see a complete file: write and fsync a unique temp file in the same
/// directory, then rename it over the target (atomic on the same file system, and replaces an earlier copy).
async fn write_atomically(dir: &Path, name: &str, contents: &[u8]) -> Result<(), MailError> {
    static TMP_SEQ: AtomicU64 = AtomicU64::new(0);
    let seq = TMP_SEQ.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.{}-{seq}.tmp", std::process::id()));
    let target = dir.join(name);
    let io_err =
        |what: &str, e: std::io::Error| MailError::Transient(format!("cannot {what} {}: {e}", target.display()));

    let written = async {
        let mut file = tokio::fs::OpenOptions::new().write(true).create_new(true).open(&tmp).await?;
        file.write_all(contents).await?;
        file.sync_all().await
    }
    .await;
    if let Err(e) = written {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(io_err("write", e));
    }
    if let Err(e) = tokio::fs::rename(&tmp, &target).await {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(io_err("rename temp file to", e));
    }
    Ok(())
}

fn classify_smtp_error(e: &lettre::transport::smtp::Error) -> MailError {
    // 5xx replies and client-side protocol errors (e.g. a TLS-only relay reached in plain text) will fail the
    // same way next time; everything else (refused connection, timeout, 4xx, TLS hiccup) may recover.
    if e.is_permanent() || e.is_client() {
        MailError::Permanent(format!("smtp: {e}"))
    } else {
        MailError::Transient(format!("smtp: {e}"))
    }
}

/// "smtps://user:pass@host:465/?tls=x" → "smtps://host:465?tls=x": no credentials, explicit default port.
fn redact_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("smtp", url));
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let query = tail.split_once('?').map(|(_, q)| q.split('#').next().unwrap_or(q)).filter(|q| !q.is_empty());
    // An IPv6 literal ends in ']' when it has no port.
    let has_port =
        host_port.rsplit_once(':').is_some_and(|(_, p)| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            && !host_port.ends_with(']');
    let mut out = format!("{scheme}://{host_port}");
    if !has_port {
        let port = match (scheme, query) {
            ("smtps", _) => 465,
            (_, Some(q)) if q.contains("tls=") => 587,
            _ => 25,
        };
        out.push_str(&format!(":{port}"));
    }
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email(id: &str) -> Email {
        Email {
            message_id: id.to_owned(),
            to: "Ada <ada@example.com>".to_owned(),
            subject: "Your tickets".to_owned(),
            text: "plain body".to_owned(),
            html: "<p>html body</p>".to_owned(),
            attachments: vec![Attachment {
                filename: "receipt.pdf".to_owned(),
                content_type: "application/pdf".to_owned(),
                bytes: b"%PDF-1.4\n\x00\x01\x02binary\xff%%EOF\n".to_vec(),
            }],
        }
    }

    #[test]
    fn sanitizes_ids() {
        assert_eq!(sanitize_id("outbox-123").unwrap(), "outbox-123");
        assert_eq!(sanitize_id("../../etc/passwd").unwrap(), "_._.._etc_passwd");
        assert_eq!(sanitize_id("a b\r\nc<d>").unwrap(), "a_b__c_d_");
        assert_eq!(sanitize_id(&"x".repeat(500)).unwrap().len(), MAX_ID_LEN);
        assert!(matches!(sanitize_id(""), Err(MailError::Permanent(_))));
    }

    #[test]
    fn describe_hides_credentials() {
        assert_eq!(redact_url("smtp://127.0.0.1:1025"), "smtp://127.0.0.1:1025");
        assert_eq!(redact_url("smtps://user:p%40ss@mail.example.com:465"), "smtps://mail.example.com:465");
        assert_eq!(redact_url("smtps://u:p@mail.example.com"), "smtps://mail.example.com:465");
        assert_eq!(redact_url("smtp://u:p@mail.example.com?tls=required"), "smtp://mail.example.com:587?tls=required");
        assert_eq!(redact_url("smtp://[::1]"), "smtp://[::1]:25");
        let dir = tempfile::tempdir().unwrap();
        let mailer = Mailer::new(Some("smtps://user:secret@mail.example.com:465"), dir.path(), "t@boxoffice.local");
        let mailer = mailer.unwrap();
        assert_eq!(mailer.describe(), "smtps://mail.example.com:465");
        assert!(!format!("{mailer:?}").contains("secret"));
    }

    #[test]
    fn bad_configuration_is_permanent() {
        let dir = tempfile::tempdir().unwrap();
        let bad_from = Mailer::new(None, dir.path(), "not an address");
        assert!(matches!(bad_from, Err(MailError::Permanent(_))), "{bad_from:?}");
        let bad_url = Mailer::new(Some("ftp://example.com"), dir.path(), "t@boxoffice.local");
        assert!(matches!(bad_url, Err(MailError::Permanent(_))), "{bad_url:?}");
    }

    #[tokio::test]
    async fn bad_message_is_permanent() {
        let dir = tempfile::tempdir().unwrap();
        let mailer = Mailer::new(None, dir.path(), "boxoffice <tickets@boxoffice.local>").unwrap();
        let bad_to = Email { to: "nobody".to_owned(), ..email("outbox-1") };
        assert!(matches!(mailer.send(&bad_to).await, Err(MailError::Permanent(_))));
        let mut bad_type = email("outbox-2");
        bad_type.attachments[0].content_type = "not a type".to_owned();
        assert!(matches!(mailer.send(&bad_type).await, Err(MailError::Permanent(_))));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn files_mode_is_idempotent_and_writes_mime() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = dir.path().join("outbox");
        let mailer = Mailer::new(None, &outbox, "boxoffice <tickets@boxoffice.local>").unwrap();
        assert_eq!(mailer.describe(), format!("files in {}", outbox.display()));
        let mut first = email("outbox-123");
        mailer.send(&first).await.unwrap();
        first.subject = "Your tickets (retry)".to_owned();
        mailer.send(&first).await.unwrap();

        let names: Vec<_> =
            std::fs::read_dir(&outbox).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        assert_eq!(names, ["outbox-123.eml"]);
        let raw = std::fs::read_to_string(outbox.join("outbox-123.eml")).unwrap();
        assert!(raw.contains("Subject: Your tickets (retry)"), "second send replaces the first");
        assert!(raw.contains("Message-ID: <outbox-123@boxoffice.local>"));
        assert!(raw.contains("From: boxoffice <tickets@boxoffice.local>"));
        assert!(raw.contains("To: Ada <ada@example.com>"));
        for needle in [
            "Content-Type: multipart/mixed",
            "Content-Type: multipart/alternative",
            "Content-Type: text/plain; charset=utf-8",
            "Content-Type: text/html; charset=utf-8",
            "Content-Type: application/pdf",
            "Content-Disposition: attachment; filename=\"receipt.pdf\"",
            "Content-Transfer-Encoding: base64",
        ] {
            assert!(raw.contains(needle), "missing {needle:?} in\n{raw}");
        }
    }

    #[tokio::test]
    async fn unreachable_relay_is_transient_and_fast() {
        // Grab a free port, then close it so the connection is refused.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = tempfile::tempdir().unwrap();
        let mailer = Mailer::new(Some(&format!("smtp://127.0.0.1:{port}")), dir.path(), "t@boxoffice.local").unwrap();
        let started = std::time::Instant::now();
        let err = mailer.send(&email("outbox-9")).await.unwrap_err();
        assert!(err.is_transient(), "{err}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}

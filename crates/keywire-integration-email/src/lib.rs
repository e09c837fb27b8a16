#![doc = include_str!("../README.md")]

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use keywire_core::message::{self, Message as Rendered};
use keywire_core::schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use keywire_core::{
    Category, Context, Delivery, FieldError, FieldErrors, Integration, IntegrationDescriptor,
    IntegrationError, Metadata, OutboundError, OutboundPolicy, Outcome, Secret, USER_AGENT,
    async_trait, inventory, is_private_ip,
};
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, Message, MultiPart};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use serde::Deserialize;
use serde_json::{Value, json};

/// The most recipients of one integration.
pub const MAX_RECIPIENTS: usize = 50;
/// The longest subject, in characters (after `[keywire] `).
const SUBJECT_MAX: usize = 180;
/// The most facts listed in one message.
const FACTS_MAX: usize = 60;
/// The longest fact value, in characters.
const FACT_VALUE_MAX: usize = 1000;
/// The footer of every message.
const FOOTER: &str =
    "Sent by keywire. Notifications name secrets and variables, never their values.";

/// How the connection to the SMTP server is protected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Plain connection upgraded with STARTTLS, which the server must offer (port 587 by
    /// default).
    #[default]
    Starttls,
    /// TLS from the first byte, "implicit TLS" or SMTPS (port 465 by default).
    Tls,
    /// No encryption: only for a relay on a private address that `KEYWIRE_OUTBOUND_ALLOW`
    /// names (the same host, a trusted network); refused for public addresses (port 25 by
    /// default).
    None,
}

impl JsonSchema for TlsMode {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "SmtpTlsMode".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "string", "enum": ["starttls", "tls", "none"], "default": "starttls"})
    }
}

impl TlsMode {
    fn default_port(self) -> u16 {
        match self {
            TlsMode::Starttls => 587,
            TlsMode::Tls => 465,
            TlsMode::None => 25,
        }
    }
}

/// Metadata of an email integration.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "keywire_core::schemars")]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EmailMetadata {
    /// The SMTP server's host name (or IP address), e.g. `smtp.example.com`.
    pub host: String,
    /// The SMTP server's port; by default 587 (`starttls`), 465 (`tls`) or 25 (`none`).
    #[serde(default)]
    pub port: Option<u16>,
    /// How the connection is protected: `starttls` (the default; the server must offer
    /// STARTTLS), `tls` (TLS from the first byte, SMTPS) or `none` (no encryption, only for
    /// relays on private addresses).
    #[serde(default)]
    pub tls: TlsMode,
    /// The user name to log in with (SMTP AUTH PLAIN or LOGIN); leave out for a relay that
    /// needs no login.
    #[serde(default)]
    pub username: Option<String>,
    /// The password for `username`.
    #[serde(default)]
    pub password: Option<Secret>,
    /// The sender: `keywire@example.com` or `keywire <keywire@example.com>`.
    pub from: String,
    /// The recipients (1 to 50), each an address or `Name <address>`; all receive one message.
    pub to: Vec<String>,
}

impl Metadata for EmailMetadata {
    fn example() -> Value {
        json!({
            "host": "smtp.example.com",
            "port": 587,
            "tls": "starttls",
            "username": "keywire@example.com",
            "password": "example-password",
            "from": "keywire <keywire@example.com>",
            "to": ["ops@example.com", "Security Team <security@example.com>"]
        })
    }

    fn check(&self) -> Result<(), FieldErrors> {
        let mut errors = Vec::new();
        match check_host(&self.host) {
            Err(why) => errors.push(FieldError::new("/host", why)),
            Ok(Some(ip)) if self.tls == TlsMode::None && !is_private_ip(ip) => {
                errors.push(FieldError::new(
                    "/tls",
                    "`none` is only for relays on private addresses: use `starttls` or `tls`",
                ));
            }
            Ok(_) => {}
        }
        if self.port == Some(0) {
            errors.push(FieldError::new("/port", "must be 1 to 65535"));
        }
        match (&self.username, &self.password) {
            (Some(user), _)
                if user.is_empty() || user.len() > 256 || user.chars().any(char::is_control) =>
            {
                errors.push(FieldError::new(
                    "/username",
                    "must be 1 to 256 characters, without control characters",
                ));
            }
            (Some(_), None) => errors.push(FieldError::new(
                "/password",
                "a password is needed with a user name",
            )),
            (None, Some(_)) => errors.push(FieldError::new(
                "/username",
                "a user name is needed with a password",
            )),
            _ => {}
        }
        if let Some(password) = &self.password
            && password.expose().chars().any(|c| c == '\r' || c == '\n')
        {
            errors.push(FieldError::new("/password", "must not contain line breaks"));
        }
        if self.from.parse::<Mailbox>().is_err() {
            errors.push(FieldError::new(
                "/from",
                "must be an address such as `keywire@example.com` or `keywire <keywire@example.com>`",
            ));
        }
        if self.to.is_empty() || self.to.len() > MAX_RECIPIENTS {
            errors.push(FieldError::new(
                "/to",
                format!("1 to {MAX_RECIPIENTS} recipients"),
            ));
        }
        let mut seen: Vec<String> = Vec::new();
        for (i, to) in self.to.iter().enumerate() {
            match to.parse::<Mailbox>() {
                Err(_) => errors.push(FieldError::new(
                    format!("/to/{i}"),
                    "must be an address such as `ops@example.com` or `Ops <ops@example.com>`",
                )),
                Ok(mailbox) => {
                    let address = mailbox.email.to_string().to_ascii_lowercase();
                    if seen.contains(&address) {
                        errors.push(FieldError::new(
                            format!("/to/{i}"),
                            "repeats another recipient",
                        ));
                    }
                    seen.push(address);
                }
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(FieldErrors { errors })
        }
    }
}

/// A host name or IP address (`Some` for an address).
fn check_host(host: &str) -> Result<Option<IpAddr>, &'static str> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(Some(ip));
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) {
        return Err(
            "must be a host name such as `smtp.example.com` or an IP address, without scheme or port",
        );
    }
    Ok(None)
}

/// Whether `policy` lets a connection reach `ip` (found for `host`): core's rule, the same
/// as the HTTP client's DNS guard.
fn allowed(policy: &OutboundPolicy, host: &str, ip: IpAddr) -> bool {
    policy.permits(host, ip)
}

/// A configured email integration.
pub struct Email {
    host: String,
    port: u16,
    tls: TlsMode,
    credentials: Option<(String, Secret)>,
    from: Mailbox,
    to: Vec<Mailbox>,
}

impl From<EmailMetadata> for Email {
    fn from(metadata: EmailMetadata) -> Self {
        // `check` has validated every address before this runs.
        let from = metadata
            .from
            .parse()
            .unwrap_or_else(|_| Mailbox::new(None, "invalid@invalid".parse().expect("an address")));
        let to = metadata.to.iter().filter_map(|t| t.parse().ok()).collect();
        let host = metadata
            .host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(&metadata.host)
            .to_owned();
        Email {
            port: metadata.port.unwrap_or(metadata.tls.default_port()),
            tls: metadata.tls,
            credentials: metadata.username.zip(metadata.password),
            from,
            to,
            host,
        }
    }
}

/// HTML-escapes text for element content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// One line, no control characters.
fn one_line(text: &str) -> String {
    let spaced: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    spaced.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The subject of a message: `[keywire] <headline>`.
pub fn subject(rendered: &Rendered) -> String {
    format!(
        "[keywire] {}",
        message::truncate(&one_line(&rendered.headline), SUBJECT_MAX)
    )
}

/// The facts as shown, within the limits.
fn facts(rendered: &Rendered) -> Vec<(String, String)> {
    rendered
        .facts
        .iter()
        .take(FACTS_MAX)
        .map(|f| {
            (
                message::truncate(&one_line(&f.name), 100),
                message::truncate(&f.value, FACT_VALUE_MAX),
            )
        })
        .collect()
}

/// The plain-text part.
pub fn plain_text(rendered: &Rendered) -> String {
    let mut text = format!(
        "{}\n{}\n",
        one_line(&rendered.headline),
        one_line(&rendered.summary)
    );
    text.push_str(&format!("Severity: {}\n\n", rendered.severity_label));
    for (name, value) in facts(rendered) {
        text.push_str(&format!("{name}: {value}\n"));
    }
    if let Some(link) = &rendered.link {
        text.push_str(&format!("\n{link}\n"));
    }
    text.push_str(&format!("\n-- \n{FOOTER}\n"));
    text
}

/// The HTML part: every piece of text from the event is escaped.
pub fn html(rendered: &Rendered) -> String {
    let colour = rendered.colour_hex();
    let mut rows = String::new();
    for (name, value) in facts(rendered) {
        rows.push_str(&format!(
            "<tr><th align=\"left\" valign=\"top\" style=\"padding:4px 16px 4px 0;color:#555;font-weight:600\">{}</th>\
             <td style=\"padding:4px 0\">{}</td></tr>\n",
            escape(&name),
            escape(&value).replace('\n', "<br>")
        ));
    }
    let link = rendered
        .link
        .as_deref()
        .filter(|l| l.starts_with("https://") || l.starts_with("http://"))
        .map(|l| {
            format!(
                "<p style=\"margin:16px 0 0\"><a href=\"{}\" style=\"color:{colour}\">Open in keywire</a></p>\n",
                escape(l)
            )
        })
        .unwrap_or_default();
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\n\
         <body style=\"margin:0;padding:16px;font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;color:#111\">\n\
         <div style=\"border-left:4px solid {colour};padding:8px 16px\">\n\
         <p style=\"margin:0 0 8px\"><span style=\"background:{colour};color:#fff;border-radius:3px;padding:2px 6px;font-size:12px\">{severity}</span></p>\n\
         <h1 style=\"margin:0 0 8px;font-size:18px\">{title}</h1>\n\
         <p style=\"margin:0 0 16px;color:#444\">{summary}</p>\n\
         <table cellpadding=\"0\" cellspacing=\"0\" style=\"border-collapse:collapse;font-size:14px\">\n{rows}</table>\n\
         {link}</div>\n\
         <p style=\"color:#888;font-size:12px;margin:16px 0 0\">{footer}</p>\n\
         </body></html>\n",
        title = escape(&one_line(&rendered.headline)),
        summary = escape(&one_line(&rendered.summary)),
        severity = escape(rendered.severity_label),
        footer = escape(FOOTER),
    )
}

/// The `Message-ID` of a delivery: the same on every retry (the run id), so a receiving system
/// that de-duplicates on it shows one message.
pub fn message_id(delivery_id: &str, from: &Mailbox) -> String {
    let id: String = delivery_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let id = id.trim_matches('-');
    let id = if id.is_empty() { "delivery" } else { id };
    format!("<keywire.{id}@{}>", from.email.domain())
}

impl Email {
    /// The message for one delivery.
    fn compose(&self, rendered: &Rendered, delivery_id: &str) -> Result<Message, IntegrationError> {
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(subject(rendered))
            .message_id(Some(message_id(delivery_id, &self.from)))
            .user_agent(USER_AGENT.to_owned())
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("Auto-Submitted"),
                "auto-generated".to_owned(),
            ));
        for to in &self.to {
            builder = builder.to(to.clone());
        }
        builder
            .multipart(MultiPart::alternative_plain_html(
                plain_text(rendered),
                html(rendered),
            ))
            .map_err(|e| IntegrationError::Provider {
                message: format!("the message cannot be built: {e}"),
                retryable: false,
                status: None,
            })
    }

    /// The addresses to try, as the outbound policy allows.
    async fn addresses(
        &self,
        policy: &OutboundPolicy,
    ) -> Result<Vec<SocketAddr>, IntegrationError> {
        let found: Vec<SocketAddr> = match self.host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, self.port)],
            Err(_) => tokio::net::lookup_host((self.host.as_str(), self.port))
                .await
                .map_err(|e| OutboundError::Network(format!("cannot resolve the SMTP host: {e}")))?
                .collect(),
        };
        let usable: Vec<SocketAddr> = found
            .into_iter()
            .filter(|a| allowed(policy, &self.host, a.ip()))
            .collect();
        if usable.is_empty() {
            return Err(OutboundError::Refused(
                "the SMTP host resolves only to private or reserved addresses (KEYWIRE_OUTBOUND_ALLOW can allow them)".into(),
            )
            .into());
        }
        if self.tls == TlsMode::None && usable.iter().any(|a| !is_private_ip(a.ip())) {
            return Err(OutboundError::Refused(
                "`tls: none` is only for relays on private addresses: use `starttls` or `tls`"
                    .into(),
            )
            .into());
        }
        Ok(usable)
    }

    /// An SMTP error, classified: 4xx and connection trouble may pass, 5xx and TLS failures
    /// will not. The message never contains the password.
    fn failure(&self, doing: &str, err: &lettre::transport::smtp::Error) -> IntegrationError {
        let retryable = if err.is_transient() || err.is_timeout() {
            true
        } else {
            !(err.is_permanent() || err.is_tls() || err.is_client())
        };
        let mut message = format!("SMTP {doing} failed: {err}");
        if let Some((_, password)) = &self.credentials
            && password.expose().len() >= 3
        {
            message = message.replace(password.expose(), "***");
        }
        IntegrationError::Provider {
            message,
            retryable,
            status: None,
        }
    }

    /// Connects, says EHLO, upgrades to TLS as configured and logs in.
    async fn open(&self, ctx: &Context) -> Result<AsyncSmtpConnection, IntegrationError> {
        let policy = ctx.http.policy();
        let addresses = self.addresses(policy).await?;
        let tls = match self.tls {
            TlsMode::None => None,
            TlsMode::Starttls | TlsMode::Tls => Some(
                TlsParameters::new(self.host.clone())
                    .map_err(|e| self.failure("TLS set-up", &e))?,
            ),
        };
        let hello = ClientId::default();
        let implicit = if self.tls == TlsMode::Tls {
            tls.clone()
        } else {
            None
        };
        let mut last = None;
        let mut connection = None;
        for address in addresses {
            match AsyncSmtpConnection::connect_tokio1(
                address,
                Some(policy.connect_timeout),
                &hello,
                implicit.clone(),
                None,
            )
            .await
            {
                Ok(c) => {
                    connection = Some(c);
                    break;
                }
                Err(e) => last = Some(self.failure("connection", &e)),
            }
        }
        let Some(mut connection) = connection else {
            return Err(last.unwrap_or_else(|| {
                OutboundError::Network("no address to connect to".into()).into()
            }));
        };
        if let (TlsMode::Starttls, Some(tls)) = (self.tls, tls) {
            if !connection.can_starttls() {
                connection.abort().await;
                return Err(IntegrationError::Provider {
                    message: "the SMTP server does not offer STARTTLS, so nothing was sent (use `tls` for implicit TLS, or `none` for a private relay)".into(),
                    retryable: false,
                    status: None,
                });
            }
            if let Err(e) = connection.starttls(tls, &hello).await {
                connection.abort().await;
                return Err(self.failure("STARTTLS", &e));
            }
        }
        if let Some((user, password)) = &self.credentials {
            let info = connection.server_info();
            if !info.supports_auth_mechanism(Mechanism::Plain)
                && !info.supports_auth_mechanism(Mechanism::Login)
            {
                connection.abort().await;
                return Err(IntegrationError::Provider {
                    message:
                        "the SMTP server offers no AUTH PLAIN or LOGIN, so keywire cannot log in"
                            .into(),
                    retryable: false,
                    status: None,
                });
            }
            let credentials = Credentials::new(user.clone(), password.expose().to_owned());
            if let Err(e) = connection
                .auth(&[Mechanism::Plain, Mechanism::Login], &credentials)
                .await
            {
                connection.abort().await;
                return Err(self.failure("login", &e));
            }
        }
        Ok(connection)
    }
}

/// Runs `work` under the policy's request timeout.
async fn within<T>(
    limit: Duration,
    work: impl Future<Output = Result<T, IntegrationError>>,
) -> Result<T, IntegrationError> {
    tokio::time::timeout(limit, work)
        .await
        .unwrap_or(Err(OutboundError::Timeout.into()))
}

#[async_trait]
impl Integration for Email {
    async fn validate(&self, ctx: &Context) -> Result<(), IntegrationError> {
        within(ctx.http.policy().request_timeout, async {
            let mut connection = self.open(ctx).await?;
            connection
                .quit()
                .await
                .map_err(|e| self.failure("QUIT", &e))?;
            Ok(())
        })
        .await
    }

    async fn emit(
        &self,
        ctx: &Context,
        delivery: Delivery<'_>,
    ) -> Result<Outcome, IntegrationError> {
        let rendered = message::render(delivery.event, ctx.public_url.as_deref());
        let email = self.compose(&rendered, delivery.message_id)?;
        let envelope = email.envelope().clone();
        let bytes = email.formatted();
        within(ctx.http.policy().request_timeout, async {
            let mut connection = self.open(ctx).await?;
            match connection.send(&envelope, &bytes).await {
                Ok(response) => {
                    // The message is accepted; a failed goodbye changes nothing.
                    let _ = connection.quit().await;
                    let text: Vec<&str> = response.message().collect();
                    Ok(Outcome {
                        status: None,
                        excerpt: message::truncate(
                            &format!("{} {}", response.code(), text.join(" ")),
                            300,
                        ),
                    })
                }
                Err(e) => {
                    connection.abort().await;
                    Err(self.failure("delivery", &e))
                }
            }
        })
        .await
    }
}

inventory::submit! {
    IntegrationDescriptor::new::<EmailMetadata, Email>(
        "email",
        "Email",
        "Emails each subscribed event through your SMTP server, as plain text and HTML.",
    )
    .category(Category::Communication)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_attributes() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn hosts_are_names_or_addresses() {
        assert_eq!(check_host("smtp.example.com"), Ok(None));
        assert_eq!(check_host("smtp.example.com."), Ok(None));
        assert!(check_host("127.0.0.1").unwrap().is_some());
        assert!(check_host("[::1]").unwrap().is_some());
        for bad in ["", "smtp://x", "x:25", "-x.example", "a b", "x..example"] {
            assert!(check_host(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_allow_list_matches_like_the_http_guard() {
        let policy = OutboundPolicy {
            allow: OutboundPolicy::parse_allow_list("127.0.0.1/32, 10.0.0.0/8, relay.internal")
                .unwrap(),
            ..OutboundPolicy::default()
        };
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(allowed(&policy, "x", ip("127.0.0.1")));
        assert!(allowed(&policy, "x", ip("::ffff:127.0.0.1")));
        assert!(allowed(&policy, "x", ip("10.9.8.7")));
        assert!(!allowed(&policy, "x", ip("127.0.0.2")));
        assert!(!allowed(&policy, "x", ip("169.254.169.254")));
        assert!(allowed(&policy, "Relay.Internal.", ip("192.168.1.5")));
        assert!(allowed(&policy, "x", ip("93.184.215.14")));
        let everything = OutboundPolicy {
            allow: OutboundPolicy::parse_allow_list("0.0.0.0/0").unwrap(),
            ..OutboundPolicy::default()
        };
        assert!(allowed(&everything, "x", ip("192.168.1.5")));
    }

    #[test]
    fn message_ids_are_stable_and_well_formed() {
        let from: Mailbox = "keywire <kw@example.com>".parse().unwrap();
        assert_eq!(
            message_id("0191b2c3-run", &from),
            "<keywire.0191b2c3-run@example.com>"
        );
        assert_eq!(
            message_id("a b<>@c", &from),
            "<keywire.a-b---c@example.com>"
        );
        assert_eq!(message_id("@@", &from), "<keywire.delivery@example.com>");
    }
}

//! The email integration against a real SMTP server on 127.0.0.1
//! (`keywire_test_support::smtp`), which checks the dialogue and credentials the way an SMTP
//! server does and answers with real reply codes.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use keywire_core::{
    Delivery, EventData, Integration, IntegrationError, OutboundError, OutboundPolicy, Outcome,
    check_descriptor, find,
};
use keywire_test_support::smtp::{Mail, SmtpConfig, SmtpServer, Stage};
use keywire_test_support::{context, context_with, sample_event};
use serde_json::{Value, json};

// Names the crate, so its registration is linked into this test binary.
use keywire_integration_email as _;

const USER: &str = "keywire@example.com";
const PASSWORD: &str = "smtp-pa55word-7c1e9d";

fn metadata(server: &SmtpServer) -> Value {
    json!({
        "host": server.host(),
        "port": server.port(),
        "tls": "none",
        "username": USER,
        "password": PASSWORD,
        "from": "keywire <keywire@example.com>",
        "to": ["ops@example.com", "Security Team <security@example.com>"],
    })
}

fn build(metadata: &Value) -> Box<dyn Integration> {
    find("email")
        .unwrap()
        .build(metadata)
        .unwrap_or_else(|e| panic!("{metadata} should build: {e}"))
}

/// An event whose title and payload hold markup, to see it escaped.
fn marked_up_event() -> EventData {
    let mut event = sample_event();
    event.title = r#"Secret <script>alert("x")</script> & DATABASE_URL updated"#.into();
    event.payload = json!({"key": "DATABASE_URL", "version": 3, "note": "<b>rotated</b>"});
    event
}

async fn emit_to(
    integration: &dyn Integration,
    ctx: &keywire_core::Context,
    event: &EventData,
    run: &str,
) -> Result<Outcome, IntegrationError> {
    integration
        .emit(
            ctx,
            Delivery {
                message_id: run,
                attempt: 1,
                event,
            },
        )
        .await
}

/// The parts of a multipart message, each as (content type, decoded body).
fn parts(mail: &Mail) -> Vec<(String, String)> {
    let content_type = mail.header("content-type").expect("a content type");
    assert!(
        content_type.starts_with("multipart/alternative"),
        "{content_type}"
    );
    let boundary = content_type
        .split("boundary=")
        .nth(1)
        .expect("a boundary")
        .trim_matches('"')
        .to_owned();
    let body = mail.data.split_once("\r\n\r\n").unwrap().1;
    let mut out = Vec::new();
    for chunk in body.split(&format!("--{boundary}")).skip(1) {
        if chunk.starts_with("--") {
            break;
        }
        let (head, raw) = chunk
            .trim_start_matches("\r\n")
            .split_once("\r\n\r\n")
            .unwrap();
        let headers: BTreeMap<String, String> = head
            .split("\r\n")
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let raw = raw.strip_suffix("\r\n").unwrap_or(raw);
        let decoded = match headers.get("content-transfer-encoding").map(String::as_str) {
            Some("base64") => String::from_utf8(
                base64::engine::general_purpose::STANDARD
                    .decode(raw.replace("\r\n", ""))
                    .unwrap(),
            )
            .unwrap(),
            Some("quoted-printable") => quoted_printable(raw),
            _ => raw.to_owned(),
        };
        out.push((headers["content-type"].clone(), decoded));
    }
    out
}

/// RFC 2045 quoted-printable decoding.
fn quoted_printable(text: &str) -> String {
    let text = text.replace("=\r\n", "");
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

#[test]
fn descriptor_meets_the_contract() {
    check_descriptor("email").unwrap_or_else(|problems| panic!("{problems:#?}"));
    let d = find("email").unwrap();
    assert_eq!(d.secret_fields(), vec!["/password"]);
    assert_eq!(
        d.metadata_schema()["properties"]["password"]["writeOnly"],
        json!(true)
    );
}

#[tokio::test]
async fn emit_sends_one_message_with_a_plain_and_an_html_part_to_every_recipient() {
    let server = SmtpServer::start(SmtpConfig::with_credentials(USER, PASSWORD));
    let integration = build(&metadata(&server));
    let mut ctx = context();
    ctx.public_url = Some("https://kw.example.com".into());
    let event = marked_up_event();
    let outcome = emit_to(integration.as_ref(), &ctx, &event, "run_0191")
        .await
        .unwrap();
    assert_eq!(outcome.status, None, "SMTP has no HTTP status");
    assert_eq!(outcome.excerpt, "250 2.0.0 OK: queued as KW0001");

    let mails = server.mails();
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert_eq!(mail.from, "keywire@example.com");
    assert_eq!(mail.to, ["ops@example.com", "security@example.com"]);
    assert_eq!(mail.authenticated_as.as_deref(), Some(USER));
    let session = &server.wait_for_sessions(1, Duration::from_secs(5))[0];
    assert_eq!(
        session.commands,
        ["EHLO", "AUTH", "MAIL", "RCPT", "RCPT", "DATA", "QUIT"]
    );

    assert_eq!(
        mail.header("subject").unwrap(),
        r#"[keywire] Secret <script>alert("x")</script> & DATABASE_URL updated"#
    );
    assert_eq!(
        mail.header("from").unwrap(),
        "keywire <keywire@example.com>"
    );
    let to = mail.header("to").unwrap();
    assert!(
        to.contains("ops@example.com") && to.contains("\"Security Team\" <security@example.com>"),
        "{to}"
    );
    assert_eq!(
        mail.header("message-id").unwrap(),
        "<keywire.run_0191@example.com>"
    );
    assert_eq!(
        mail.header("auto-submitted").as_deref(),
        Some("auto-generated")
    );
    assert!(mail.header("date").is_some());
    assert!(mail.header("user-agent").unwrap().starts_with("keywire/"));

    let parts = parts(mail);
    assert_eq!(parts.len(), 2, "{parts:?}");
    let (plain_type, plain) = &parts[0];
    let (html_type, html) = &parts[1];
    assert!(plain_type.starts_with("text/plain"), "{plain_type}");
    assert!(html_type.starts_with("text/html"), "{html_type}");
    for line in [
        r#"Secret <script>alert("x")</script> & DATABASE_URL updated"#,
        "SECRET_UPDATED in project shop, environment prod",
        "Severity: Info",
        "Project: shop",
        "By: alice",
        "key: DATABASE_URL",
        "version: 3",
        "https://kw.example.com/api/v1/workspaces/acme/events",
    ] {
        assert!(plain.contains(line), "plain part lacks {line}:\n{plain}");
    }
    assert!(
        html.contains(
            "Secret &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; DATABASE_URL updated"
        ),
        "{html}"
    );
    assert!(html.contains("&lt;b&gt;rotated&lt;/b&gt;"), "{html}");
    assert!(
        !html.contains("<script>") && !html.contains("<b>rotated"),
        "{html}"
    );
    assert!(html.contains(">DATABASE_URL</td>"), "{html}");
    assert!(html.contains("#3B82F6"), "severity colour: {html}");
    assert!(
        html.contains(r#"<a href="https://kw.example.com/api/v1/workspaces/acme/events""#),
        "{html}"
    );
    // Never a credential.
    assert!(
        !mail.data.contains(PASSWORD),
        "the password is not in the message"
    );

    // A retry of the same run carries the same Message-ID.
    emit_to(integration.as_ref(), &ctx, &event, "run_0191")
        .await
        .unwrap();
    assert_eq!(
        server.mails()[1].header("message-id"),
        mail.header("message-id")
    );
}

#[tokio::test]
async fn a_wrong_password_fails_for_good_without_showing_it() {
    let server = SmtpServer::start(SmtpConfig::with_credentials(USER, "another-password"));
    let integration = build(&metadata(&server));
    let event = sample_event();
    let err = emit_to(integration.as_ref(), &context(), &event, "run_1")
        .await
        .unwrap_err();
    assert!(!err.is_retryable(), "{err}");
    let text = err.to_string();
    assert!(text.contains("535") && text.contains("login"), "{text}");
    assert!(!text.contains(PASSWORD), "{text}");
    assert!(!format!("{err:?}").contains(PASSWORD));
    assert!(server.mails().is_empty());
    let sessions = server.wait_for_sessions(1, Duration::from_secs(5));
    assert!(sessions[0].auth_failed);
    assert!(!sessions[0].commands.contains(&"MAIL".to_owned()));
}

#[tokio::test]
async fn temporary_refusals_are_retryable_and_permanent_ones_are_not() {
    let cases = [
        (
            Stage::Data,
            451,
            "4.3.0 Mail server temporarily rejected message",
            true,
        ),
        (Stage::Greeting, 421, "4.3.2 Service not available", true),
        (
            Stage::MailFrom,
            452,
            "4.3.1 Insufficient system storage",
            true,
        ),
        (Stage::RcptTo, 550, "5.1.1 Mailbox unavailable", false),
        (Stage::Data, 554, "5.7.1 Message rejected as spam", false),
    ];
    let event = sample_event();
    for (stage, code, text, retryable) in cases {
        let server = SmtpServer::start(
            SmtpConfig::with_credentials(USER, PASSWORD).failing(stage, code, text),
        );
        let integration = build(&metadata(&server));
        let err = emit_to(integration.as_ref(), &context(), &event, "run_1")
            .await
            .unwrap_err();
        assert_eq!(err.is_retryable(), retryable, "{stage:?} {code}: {err}");
        assert!(err.to_string().contains(&code.to_string()), "{err}");
        assert!(server.mails().is_empty());
    }
}

#[tokio::test]
async fn private_addresses_are_refused_unless_allow_listed() {
    let server = SmtpServer::start(SmtpConfig::with_credentials(USER, PASSWORD));
    let strict = context_with(OutboundPolicy::default());
    let event = sample_event();
    let mut by_name = metadata(&server);
    by_name["host"] = json!("localhost");
    for metadata in [metadata(&server), by_name] {
        let integration = build(&metadata);
        let err = emit_to(integration.as_ref(), &strict, &event, "run_1")
            .await
            .unwrap_err();
        assert!(
            matches!(err, IntegrationError::Http(OutboundError::Refused(_))),
            "{err:?}"
        );
        assert!(!err.is_retryable());
        let err = integration.validate(&strict).await.unwrap_err();
        assert!(err.to_string().contains("private"), "{err}");
    }
    // A host allow-listed by name may be reached.
    let mut named = metadata(&server);
    named["host"] = json!("localhost");
    let by_host = context_with(OutboundPolicy {
        allow: OutboundPolicy::parse_allow_list("localhost").unwrap(),
        ..OutboundPolicy::default()
    });
    std::thread::sleep(Duration::from_millis(50));
    assert!(server.sessions().is_empty(), "nothing reached the server");
    build(&named).validate(&by_host).await.unwrap();
    assert_eq!(server.wait_for_sessions(1, Duration::from_secs(5)).len(), 1);
}

#[tokio::test]
async fn the_live_check_logs_in_and_quits_without_sending() {
    let server = SmtpServer::start(SmtpConfig::with_credentials(USER, PASSWORD));
    build(&metadata(&server))
        .validate(&context())
        .await
        .unwrap();
    let sessions = server.wait_for_sessions(1, Duration::from_secs(5));
    assert_eq!(sessions[0].commands, ["EHLO", "AUTH", "QUIT"]);
    assert_eq!(sessions[0].authenticated_as.as_deref(), Some(USER));
    assert!(server.mails().is_empty());

    // Without credentials: no AUTH at all.
    let open = SmtpServer::start(SmtpConfig::default());
    let mut anonymous = metadata(&open);
    let fields = anonymous.as_object_mut().unwrap();
    fields.remove("username");
    fields.remove("password");
    build(&anonymous).validate(&context()).await.unwrap();
    assert_eq!(
        open.wait_for_sessions(1, Duration::from_secs(5))[0].commands,
        ["EHLO", "QUIT"]
    );

    // A wrong password fails the live check.
    let mut wrong = metadata(&server);
    wrong["password"] = json!("not-the-password");
    let err = build(&wrong).validate(&context()).await.unwrap_err();
    assert!(err.to_string().contains("535"), "{err}");
    assert!(!err.to_string().contains("not-the-password"), "{err}");
}

#[tokio::test]
async fn encryption_that_the_server_cannot_do_stops_before_the_login() {
    let server = SmtpServer::start(SmtpConfig::with_credentials(USER, PASSWORD));
    // STARTTLS required, but this server does not offer it.
    let mut starttls = metadata(&server);
    starttls["tls"] = json!("starttls");
    let err = build(&starttls).validate(&context()).await.unwrap_err();
    assert!(err.to_string().contains("STARTTLS"), "{err}");
    assert!(!err.is_retryable());
    // Implicit TLS against a plain-text server fails the handshake.
    let mut tls = metadata(&server);
    tls["tls"] = json!("tls");
    let event = sample_event();
    let err = emit_to(build(&tls).as_ref(), &context(), &event, "run_1")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("SMTP connection failed"), "{err}");
    for session in server.wait_for_sessions(2, Duration::from_secs(5)) {
        assert!(
            !session.commands.contains(&"AUTH".to_owned()),
            "the password never travels unencrypted: {session:?}"
        );
    }
    assert!(server.mails().is_empty());
}

#[tokio::test]
async fn an_unreachable_server_is_a_retryable_failure() {
    let port = {
        let gone = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        gone.local_addr().unwrap().port()
    };
    let mut m = json!({
        "host": "127.0.0.1", "port": port, "tls": "none",
        "from": "kw@example.com", "to": ["ops@example.com"],
    });
    let event = sample_event();
    let err = emit_to(build(&m).as_ref(), &context(), &event, "run_1")
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    m["host"] = json!("[127.0.0.1]");
    assert!(
        build(&m)
            .validate(&context())
            .await
            .unwrap_err()
            .is_retryable()
    );
}

#[test]
fn bad_metadata_names_the_field_and_never_echoes_the_password() {
    let d = find("email").unwrap();
    let base = json!({
        "host": "smtp.example.com", "username": "u", "password": "hunter2-pw",
        "from": "kw@example.com", "to": ["ops@example.com"],
    });
    let with = |changes: Value| {
        let mut m = base.clone();
        for (k, v) in changes.as_object().unwrap() {
            if v.is_null() {
                m.as_object_mut().unwrap().remove(k);
            } else {
                m[k] = v.clone();
            }
        }
        m
    };
    let too_many: Vec<String> = (0..51).map(|i| format!("u{i}@example.com")).collect();
    let cases = [
        (with(json!({"host": "smtp://x.example"})), "/host"),
        (with(json!({"host": "x.example:25"})), "/host"),
        (with(json!({"host": null})), "/host"),
        (with(json!({"port": 0})), "/port"),
        (with(json!({"port": 70000})), "/port"),
        (with(json!({"tls": "ssl"})), "/tls"),
        (
            with(json!({"tls": "none", "host": "93.184.215.14"})),
            "/tls",
        ),
        (with(json!({"password": null})), "/password"),
        (with(json!({"username": null})), "/username"),
        (with(json!({"password": 12_345_678})), "/password"),
        (
            with(json!({"password": "hunter2\r\nRCPT TO:<x@y>"})),
            "/password",
        ),
        (with(json!({"from": "not an address"})), "/from"),
        (
            with(json!({"from": "a@b.example\r\nBcc: evil@x.example"})),
            "/from",
        ),
        (with(json!({"to": []})), "/to"),
        (with(json!({"to": too_many})), "/to"),
        (with(json!({"to": ["ops@example.com", "nope"]})), "/to/1"),
        (
            with(json!({"to": ["ops@example.com", "OPS@example.com"]})),
            "/to/1",
        ),
        (with(json!({"bcc": ["x@example.com"]})), "/bcc"),
    ];
    for (metadata, pointer) in cases {
        let err = d
            .build(&metadata)
            .err()
            .unwrap_or_else(|| panic!("{metadata} should be refused"));
        assert_eq!(err.errors[0].pointer, pointer, "{metadata}: {err}");
        let text = err.to_string();
        assert!(
            !text.contains("hunter2") && !text.contains("12345678"),
            "{text}"
        );
    }
    // A private relay without encryption is fine, and so is one without login.
    d.build(&with(
        json!({"tls": "none", "host": "10.0.0.25", "username": null, "password": null}),
    ))
    .unwrap();
    // The parsed metadata prints no password.
    let parsed: keywire_integration_email::EmailMetadata =
        keywire_core::parse_metadata(&base).unwrap();
    assert!(!format!("{parsed:?}").contains("hunter2"));
}

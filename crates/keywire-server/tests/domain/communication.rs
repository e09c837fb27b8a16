//! Communication integrations end to end: one secret update through the API reaches Discord,
//! Slack (webhook and bot), Microsoft Teams, a signed webhook and email — each local fake gets
//! exactly one well-formed message naming the secret and never its value — on SQLite and
//! PostgreSQL.

use std::time::{Duration, Instant};

use keywire_test_support::fake::{FakeResponse, FakeServer};
use keywire_test_support::smtp::{Mail, SmtpConfig, SmtpServer, base64_decode};
use keywire_test_support::{discord, slack, teams};
use serde_json::{Value, json};

use crate::support::{ADMIN, Api};

/// The secret's name: every message must name it.
const KEY: &str = "STRIPE_API_KEY";
/// The secret's first value, set before the integrations exist.
const FIRST_VALUE: &str = "sk_live_first_canary_3PdQ7sWx";
/// The secret's new value: no message, answer or log line may contain it (nor the first).
const VALUE: &str = "sk_live_canary_9TqX4vLm2RzW8yBn";
const SMTP_USER: &str = "keywire-mailer";
const SMTP_PASSWORD: &str = "smtp-pass-canary-5Hk2";

/// Every credential configured here: none may appear in a log line.
fn credentials() -> Vec<String> {
    vec![
        discord::WEBHOOK_TOKEN.to_owned(),
        slack::WEBHOOK_SECRET.to_owned(),
        slack::BOT_TOKEN.to_owned(),
        teams::SIG.to_owned(),
        SMTP_PASSWORD.to_owned(),
    ]
}

/// Waits until the integration's runs are all finished; returns them, newest first.
async fn settled(api: &Api, slug: &str) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let runs = api
            .get(&format!("/api/v1/integrations/{slug}/runs?limit=50"), ADMIN)
            .await;
        let items = runs.expect(200)["items"].as_array().unwrap().clone();
        let busy = items
            .iter()
            .any(|r| r["status"] == "pending" || r["status"] == "running");
        if !items.is_empty() && !busy {
            return items;
        }
        assert!(
            Instant::now() < deadline,
            "{} {slug}: runs did not settle: {items:?}",
            api.backend()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The decoded text parts of a (multipart) mail, joined.
fn mail_text(mail: &Mail) -> String {
    let content_type = mail.header("content-type").unwrap_or_default();
    let body = mail.data.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let Some(boundary) = content_type.split("boundary=").nth(1) else {
        return body.to_owned();
    };
    let boundary = boundary.trim_matches('"');
    let mut out = String::new();
    for chunk in body.split(&format!("--{boundary}")).skip(1) {
        if chunk.starts_with("--") {
            break;
        }
        let Some((head, raw)) = chunk.trim_start_matches("\r\n").split_once("\r\n\r\n") else {
            continue;
        };
        let head = head.to_ascii_lowercase();
        let decoded = if head.contains("content-transfer-encoding: base64") {
            String::from_utf8(base64_decode(&raw.replace("\r\n", "")).unwrap()).unwrap()
        } else if head.contains("content-transfer-encoding: quoted-printable") {
            quoted_printable(raw)
        } else {
            raw.to_owned()
        };
        out.push_str(&decoded);
        out.push('\n');
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

#[tokio::test]
async fn a_secret_change_reaches_every_channel_once_by_name_and_never_by_value() {
    let discord_fake = discord::start(0);
    let slack_hooks = slack::start();
    let slack_api = slack::start();
    let teams_fake = teams::start();
    let receiver = FakeServer::start(|_| FakeResponse::empty(204));
    let smtp = SmtpServer::start(SmtpConfig::with_credentials(SMTP_USER, SMTP_PASSWORD));
    let overrides = [
        ("https://discord.com", discord_fake.url()),
        ("https://hooks.slack.com", slack_hooks.url()),
        ("https://slack.com", slack_api.url()),
        (teams::ORIGIN, teams_fake.url()),
    ]
    .map(|(from, to)| format!("{from}={to}"))
    .join(",");

    for api in Api::all_with_env(&[
        ("KEYWIRE_TEST_ORIGIN_OVERRIDES", overrides.as_str()),
        ("KEYWIRE_PUBLIC_URL", "https://keywire.example.com"),
        ("KEYWIRE_LOG", "debug"),
    ])
    .await
    {
        let backend = api.backend();
        let ws = api.workspace("Acme").await;
        let project = api.project(&ws, "Payments").await;
        let secret = format!("/api/v1/projects/{project}/secrets/{KEY}");
        api.put(&secret, ADMIN, json!({"values": {"prod": FIRST_VALUE}}))
            .await
            .expect(201);
        let integrations = [
            ("discord", json!({"webhookUrl": discord::webhook_url()})),
            ("slack", json!({"webhookUrl": slack::webhook_url()})),
            (
                "slack",
                json!({"botToken": slack::BOT_TOKEN, "channel": slack::CHANNEL_ID}),
            ),
            (
                "microsoft_teams",
                json!({"webhookUrl": teams::webhook_url()}),
            ),
            (
                "webhook",
                json!({"url": format!("{}/hooks/keywire", receiver.url())}),
            ),
            (
                "email",
                json!({
                    "host": smtp.host(), "port": smtp.port(), "tls": "none",
                    "username": SMTP_USER, "password": SMTP_PASSWORD,
                    "from": "keywire <keywire@example.com>", "to": ["ops@example.com"],
                }),
            ),
        ];
        let mut slugs = Vec::new();
        for (i, (kind, metadata)) in integrations.iter().enumerate() {
            // Created with their live checks (Discord's GET, Slack's auth.test, the webhook's
            // ping, an SMTP login), all against the fakes.
            let created = api
                .post(
                    &format!("/api/v1/workspaces/{ws}/integrations"),
                    ADMIN,
                    json!({
                        "name": format!("{kind} {i}"),
                        "type": kind,
                        "notifyOn": ["SECRET_ADDED", "SECRET_UPDATED"],
                        "projectSlug": project,
                        "metadata": metadata,
                    }),
                )
                .await;
            let body = created.expect(201);
            slugs.push(body["slug"].as_str().unwrap().to_owned());
        }

        // What each fake has seen before the change (live checks, the other backend's run).
        let posts = |fake: &FakeServer| {
            fake.requests()
                .into_iter()
                .filter(|r| r.method == "POST" && r.path != "/api/auth.test")
                .collect::<Vec<_>>()
        };
        let before = [
            posts(&discord_fake).len(),
            posts(&slack_hooks).len(),
            posts(&slack_api).len(),
            posts(&teams_fake).len(),
            posts(&receiver).len(),
        ];
        let mails_before = smtp.mails().len();

        let changed = api
            .put(&secret, ADMIN, json!({"values": {"prod": VALUE}}))
            .await;
        assert_eq!(changed.expect(200)["environments"]["prod"]["version"], 2);

        for slug in &slugs {
            let runs = settled(&api, slug).await;
            assert_eq!(runs.len(), 1, "{backend} {slug}: {runs:?}");
            assert_eq!(runs[0]["status"], "succeeded", "{backend} {slug}: {runs:?}");
        }

        let new = |fake: &FakeServer, i: usize| {
            let all = posts(fake);
            assert_eq!(
                all.len(),
                before[i] + 1,
                "{backend}: fake {i} should get exactly one message"
            );
            let request = all.last().unwrap().clone();
            let text = request.text();
            assert!(
                text.contains(KEY),
                "{backend}: fake {i} not told the name: {text}"
            );
            assert!(
                !text.contains(VALUE) && !text.contains(FIRST_VALUE),
                "{backend}: fake {i} got a value: {text}"
            );
            request
        };

        let sent = new(&discord_fake, 0).json();
        discord::check_message(&sent).unwrap();
        let embed = &sent["embeds"][0];
        assert_eq!(embed["title"], format!("Secret {KEY} updated in Payments"));
        assert_eq!(
            embed["url"],
            format!("https://keywire.example.com/api/v1/workspaces/{ws}/events")
        );

        for (fake, i) in [(&slack_hooks, 1), (&slack_api, 2)] {
            let request = new(fake, i);
            let sent = request.json();
            slack::check_message(&sent).unwrap();
            assert_eq!(
                sent["blocks"][0]["text"]["text"],
                format!("Secret {KEY} updated in Payments")
            );
            if i == 2 {
                assert_eq!(request.path, "/api/chat.postMessage");
                assert_eq!(sent["channel"], slack::CHANNEL_ID);
            } else {
                assert!(request.path.starts_with("/services/"));
            }
        }

        let sent = new(&teams_fake, 3).json();
        teams::check_message(&sent).unwrap();
        let card = &sent["attachments"][0]["content"];
        assert_eq!(
            card["body"][0]["items"][0]["text"],
            format!("Secret {KEY} updated in Payments")
        );
        assert!(
            card["body"][1]["facts"]
                .as_array()
                .unwrap()
                .contains(&json!({"title": "key", "value": KEY})),
            "{card}"
        );

        let request = new(&receiver, 4);
        let envelope = request.json();
        assert_eq!(envelope["type"], "SECRET_UPDATED", "{envelope}");
        assert!(envelope["timestamp"].is_string(), "{envelope}");
        assert_eq!(envelope["data"]["payload"]["key"], KEY, "{envelope}");
        assert!(request.header("webhook-id").is_some());
        assert!(request.header("webhook-timestamp").is_some());
        assert!(
            request
                .header("webhook-signature")
                .is_some_and(|s| s.starts_with("v1,")),
            "{:?}",
            request.headers
        );

        let mails = smtp.mails();
        assert_eq!(
            mails.len(),
            mails_before + 1,
            "{backend}: exactly one email"
        );
        let mail = mails.last().unwrap();
        assert_eq!(mail.to, ["ops@example.com"]);
        let subject = mail.header("subject").unwrap();
        assert!(subject.contains(KEY), "{subject}");
        let text = mail_text(mail);
        assert!(text.contains(KEY), "{backend}: {text}");
        assert!(
            ![VALUE, FIRST_VALUE]
                .iter()
                .any(|v| text.contains(v) || mail.data.contains(v)),
            "{backend}: the email holds the value"
        );

        let log = api.server.stderr();
        assert!(
            !log.contains(VALUE) && !log.contains(FIRST_VALUE),
            "{backend}: a value is in the log"
        );
        for secret in credentials() {
            assert!(
                !log.contains(&secret),
                "{backend}: a credential is in the log"
            );
        }
    }
}

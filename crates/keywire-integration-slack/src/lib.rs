#![doc = include_str!("../README.md")]

use keywire_core::message::{self, Message, truncate};
use keywire_core::schemars::JsonSchema;
use keywire_core::{
    Category, Context, Delivery, FieldError, FieldErrors, Integration, IntegrationDescriptor,
    IntegrationError, Metadata, Method, Outcome, Reply, Secret, Severity, Url, async_trait,
    inventory,
};
use serde::Deserialize;
use serde_json::{Value, json};

/// Hosts that serve Slack incoming webhooks (Slack, and Slack for government).
const WEBHOOK_HOSTS: &[&str] = &["hooks.slack.com", "hooks.slack-gov.com"];
/// Slack's Web API.
const API_BASE: &str = "https://slack.com/api";

/// Slack's limits on one message (Block Kit reference).
const BLOCKS_MAX: usize = 50;
const HEADER_TEXT_MAX: usize = 150;
const SECTION_TEXT_MAX: usize = 3000;
const SECTION_FIELDS_MAX: usize = 10;
const FIELD_TEXT_MAX: usize = 2000;
/// Slack refuses messages whose blocks add up to much more than this (`msg_blocks_too_long`,
/// observed near 13,000 characters though not documented): stay well below.
const BLOCKS_TOTAL_BUDGET: usize = 11_000;
/// What one fact may take; longer values are cut with an ellipsis.
const FACT_VALUE_MAX: usize = 500;
/// The plain-text fallback (notifications, clients without Block Kit).
const FALLBACK_TEXT_MAX: usize = 3000;

/// Metadata of a Slack integration: either an incoming-webhook URL, or a bot token and a
/// channel (exactly one of the two modes).
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "keywire_core::schemars")]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SlackMetadata {
    /// Webhook mode: the incoming-webhook URL Slack gave your app for one channel, of the form
    /// `https://hooks.slack.com/services/T…/B…/…`. It contains the webhook's secret, so it is a
    /// credential. Leave out `botToken` and `channel` when you set it.
    #[serde(default)]
    pub webhook_url: Option<Secret>,
    /// Bot mode: the app's bot token (`xoxb-…`) with the `chat:write` scope; messages are sent
    /// with `chat.postMessage`. A credential. Needs `channel`; leave out `webhookUrl`.
    #[serde(default)]
    pub bot_token: Option<Secret>,
    /// Bot mode: the channel to post to, by ID (`C0123456789`, preferred: it survives renames)
    /// or by name (`#deployments`). Invite the app to a private channel first.
    #[serde(default)]
    pub channel: Option<String>,
}

impl Metadata for SlackMetadata {
    fn example() -> Value {
        json!({
            "botToken": "xoxb-1234567890-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
            "channel": "C0123456789"
        })
    }

    fn check(&self) -> Result<(), FieldErrors> {
        let mut errors = Vec::new();
        match (&self.webhook_url, &self.bot_token) {
            (Some(url), None) => {
                if let Err(why) = check_webhook_url(url.expose()) {
                    errors.push(FieldError::new("/webhookUrl", why));
                }
                if self.channel.is_some() {
                    errors.push(FieldError::new(
                        "/channel",
                        "a webhook posts to the channel it was created for: leave `channel` \
                         out, or use `botToken` instead of `webhookUrl`",
                    ));
                }
            }
            (None, Some(token)) => {
                if let Err(why) = check_bot_token(token.expose()) {
                    errors.push(FieldError::new("/botToken", why));
                }
                match &self.channel {
                    None => errors.push(FieldError::new(
                        "/channel",
                        "bot mode needs the channel to post to (`C0123456789` or `#name`)",
                    )),
                    Some(channel) => {
                        if let Err(why) = check_channel(channel) {
                            errors.push(FieldError::new("/channel", why));
                        }
                    }
                }
            }
            (Some(_), Some(_)) => errors.push(FieldError::new(
                "/botToken",
                "set either `webhookUrl` (webhook mode) or `botToken` and `channel` (bot \
                 mode), not both",
            )),
            (None, None) => errors.push(FieldError::new(
                "/webhookUrl",
                "set either `webhookUrl` (webhook mode) or `botToken` and `channel` (bot mode)",
            )),
        }
        match errors.len() {
            0 => Ok(()),
            _ => Err(FieldErrors { errors }),
        }
    }
}

/// Accepts only Slack incoming-webhook URLs. Messages never repeat the URL (it holds a secret).
fn check_webhook_url(raw: &str) -> Result<(), String> {
    let url = Url::parse(raw).map_err(|_| "must be an absolute URL".to_owned())?;
    if url.scheme() != "https" {
        return Err("must be an https URL".into());
    }
    if !url.username().is_empty() || url.password().is_some() || url.port().is_some() {
        return Err("must not carry a user name, password or port".into());
    }
    let host = url.host_str().unwrap_or_default();
    if !WEBHOOK_HOSTS.contains(&host) {
        return Err(format!("must be on {}", WEBHOOK_HOSTS.join(" or ")));
    }
    let segments: Vec<&str> = url.path().trim_matches('/').split('/').collect();
    let shape_ok = match segments.as_slice() {
        ["services", team, hook, secret] => {
            let id = |s: &str| {
                s.len() >= 2 && s.len() <= 32 && s.chars().all(|c| c.is_ascii_alphanumeric())
            };
            id(team)
                && id(hook)
                && !secret.is_empty()
                && secret.len() <= 64
                && secret.chars().all(|c| c.is_ascii_alphanumeric())
        }
        _ => false,
    };
    if !shape_ok {
        return Err(
            "must be an incoming-webhook URL: https://hooks.slack.com/services/T…/B…/…".into(),
        );
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not have a query or fragment".into());
    }
    Ok(())
}

/// A bot token: `xoxb-` and then letters, digits and dashes. Never echoed.
fn check_bot_token(token: &str) -> Result<(), String> {
    let Some(rest) = token.strip_prefix("xoxb-") else {
        return Err("must be a bot token (it starts with `xoxb-`)".into());
    };
    let ok = !rest.is_empty()
        && token.len() <= 255
        && rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if ok {
        Ok(())
    } else {
        Err("is not a well-formed bot token: `xoxb-` then letters, digits and `-`".into())
    }
}

/// A channel ID (`C0123456789`, `G…` for old private channels) or a name (`#deployments`).
fn check_channel(channel: &str) -> Result<(), String> {
    let is_id = channel.len() >= 9
        && channel.len() <= 24
        && channel.starts_with(['C', 'G'])
        && channel
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    let name = channel.strip_prefix('#').unwrap_or(channel);
    let is_name = !name.is_empty()
        && name.chars().count() <= 80
        && name.chars().all(|c| {
            c.is_lowercase() || c.is_numeric() || matches!(c, '-' | '_' | '.') || !c.is_ascii()
        })
        && !name.chars().any(char::is_whitespace);
    if is_id || is_name {
        Ok(())
    } else {
        Err(
            "must be a channel ID (`C0123456789`) or a channel name (`#deployments`: lower-case \
             letters, digits, `-`, `_` or `.`, at most 80)"
                .into(),
        )
    }
}

/// How a configured Slack integration sends.
enum Mode {
    Webhook { url: Secret },
    Bot { token: Secret, channel: String },
}

/// A configured Slack integration.
pub struct Slack {
    mode: Mode,
}

impl From<SlackMetadata> for Slack {
    fn from(metadata: SlackMetadata) -> Self {
        let mode = match (metadata.webhook_url, metadata.bot_token) {
            (Some(url), _) => Mode::Webhook { url },
            (None, Some(token)) => Mode::Bot {
                token,
                channel: metadata.channel.unwrap_or_default(),
            },
            // `check` refused this before the descriptor builds; a bot without a token fails
            // at Slack with `not_authed` rather than panicking here.
            (None, None) => Mode::Bot {
                token: Secret::new(""),
                channel: metadata.channel.unwrap_or_default(),
            },
        };
        Slack { mode }
    }
}

/// Escapes the three characters Slack's `mrkdwn` gives a meaning to (`&`, `<`, `>`), so that a
/// name can never become a link or a mention.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// An emoji that shows the severity in colour (Slack has no colour for Block Kit messages
/// outside legacy attachments).
pub fn severity_emoji(severity: Severity) -> &'static str {
    match severity {
        Severity::Info => ":large_blue_circle:",
        Severity::Warn => ":large_orange_circle:",
        Severity::Error => ":red_circle:",
    }
}

fn mrkdwn(text: String) -> Value {
    json!({"type": "mrkdwn", "text": text, "verbatim": true})
}

/// The message body for one event: Block Kit blocks within Slack's limits, and a plain `text`
/// fallback. The caller adds `channel` in bot mode.
pub fn render(event: &keywire_core::EventData, public_url: Option<&str>) -> Value {
    render_message(&message::render(event, public_url))
}

fn render_message(message: &Message) -> Value {
    let mut blocks = vec![json!({
        "type": "header",
        "text": {"type": "plain_text", "text": truncate(&message.headline, HEADER_TEXT_MAX), "emoji": false},
    })];
    let summary = format!(
        "{} *{}* · {}",
        severity_emoji(message.severity),
        message.severity_label,
        escape(&message.summary)
    );
    blocks.push(json!({"type": "section", "text": mrkdwn(truncate(&summary, SECTION_TEXT_MAX))}));

    // Facts as two-column fields, ten per section, within the blocks' budget; the context
    // block at the end (when, sender, link) is always kept.
    let mut context_parts = vec![format!(
        "<!date^{}^{{date_short_pretty}} {{time_secs}}|{}> · {}",
        message.timestamp.timestamp(),
        message.timestamp.format("%Y-%m-%d %H:%M:%S UTC"),
        message::SENDER
    )];
    if let Some(link) = &message.link {
        context_parts.push(format!("<{}|View events>", escape(link)));
    }
    let context_text = truncate(&context_parts.join(" · "), SECTION_TEXT_MAX);
    let mut budget = BLOCKS_TOTAL_BUDGET
        .saturating_sub(chars(&message.headline).min(HEADER_TEXT_MAX))
        .saturating_sub(chars(&summary).min(SECTION_TEXT_MAX))
        .saturating_sub(chars(&context_text));
    // Room for the header, summary, context and a "left out" note.
    let section_slots = BLOCKS_MAX - 4;
    let facts: Vec<_> = message.facts.iter().filter(|f| f.name != "When").collect();
    let mut fields: Vec<Value> = Vec::new();
    let mut shown = 0;
    for fact in &facts {
        let text = truncate(
            &format!(
                "*{}*\n{}",
                escape(&fact.name),
                escape(&truncate(&fact.value, FACT_VALUE_MAX))
            ),
            FIELD_TEXT_MAX,
        );
        let cost = chars(&text);
        if cost > budget || fields.len() >= section_slots * SECTION_FIELDS_MAX {
            break;
        }
        budget -= cost;
        fields.push(mrkdwn(text));
        shown += 1;
    }
    for chunk in fields.chunks(SECTION_FIELDS_MAX) {
        blocks.push(json!({"type": "section", "fields": chunk}));
    }
    if shown < facts.len() {
        blocks.push(json!({
            "type": "context",
            "elements": [mrkdwn(format!("…and {} more details left out", facts.len() - shown))],
        }));
    }
    blocks.push(json!({"type": "context", "elements": [mrkdwn(context_text)]}));
    debug_assert!(blocks.len() <= BLOCKS_MAX);

    json!({
        "text": truncate(&escape(&message.plain_text()), FALLBACK_TEXT_MAX),
        "blocks": blocks,
        "unfurl_links": false,
        "unfurl_media": false,
    })
}

fn chars(text: &str) -> usize {
    text.chars().count()
}

/// Slack Web API error codes after which a later try may succeed; every other code is final.
const RETRYABLE_API_ERRORS: &[&str] = &[
    "ratelimited",
    "rate_limited",
    "internal_error",
    "service_unavailable",
    "request_timeout",
    "fatal_error",
    "team_added_to_org",
    "org_login_required",
];

/// What a Slack Web API call answered: `ok: true` with its fields, or a failure.
fn api_result(reply: Reply, method: &str) -> Result<Value, IntegrationError> {
    let status = reply.status.as_u16();
    let reply = reply.error_for_status()?;
    let body: Value =
        serde_json::from_slice(&reply.body).map_err(|_| IntegrationError::Provider {
            message: format!("Slack answered {method} with something that is not JSON"),
            retryable: true,
            status: Some(status),
        })?;
    if body["ok"].as_bool() == Some(true) {
        return Ok(body);
    }
    let code = body["error"].as_str().unwrap_or("unknown_error");
    // The code is Slack's short identifier (`channel_not_found`): keep it short and one word.
    let code = truncate(
        &code
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect::<String>(),
        64,
    );
    let hint = match code.as_str() {
        "channel_not_found" => ": check `channel` (and invite the app to a private channel)",
        "not_in_channel" => ": invite the app to the channel (`/invite @app`)",
        "is_archived" => ": the channel is archived",
        "invalid_auth" | "not_authed" | "token_revoked" | "account_inactive" => {
            ": check `botToken`"
        }
        "missing_scope" => ": the bot token needs the `chat:write` scope",
        _ => "",
    };
    Err(IntegrationError::Provider {
        message: format!("Slack refused {method}: {code}{hint}"),
        retryable: RETRYABLE_API_ERRORS.contains(&code.as_str()),
        status: Some(status),
    })
}

#[async_trait]
impl Integration for Slack {
    async fn validate(&self, ctx: &Context) -> Result<(), IntegrationError> {
        match &self.mode {
            // Posting is the only way to test a webhook; its shape was checked on parse.
            Mode::Webhook { .. } => Ok(()),
            Mode::Bot { token, .. } => {
                let request = ctx
                    .http
                    .request(Method::POST, &format!("{API_BASE}/auth.test"))?
                    .bearer_auth(token.expose());
                let reply = ctx.http.send(request).await?;
                api_result(reply, "auth.test").map(|_| ())
            }
        }
    }

    async fn emit(
        &self,
        ctx: &Context,
        delivery: Delivery<'_>,
    ) -> Result<Outcome, IntegrationError> {
        let mut body = render(delivery.event, ctx.public_url.as_deref());
        match &self.mode {
            Mode::Webhook { url } => {
                let request = ctx
                    .http
                    .request(Method::POST, url.expose())?
                    .header("content-type", "application/json")
                    .body(body.to_string());
                // Webhooks answer `ok`, or a status with a short code (`invalid_payload`,
                // `channel_is_archived`…): 429 and 5xx are retried, other codes are final.
                let reply = ctx.http.send(request).await?.error_for_status()?;
                Ok(Outcome {
                    status: Some(reply.status.as_u16()),
                    excerpt: reply.excerpt(),
                })
            }
            Mode::Bot { token, channel } => {
                body["channel"] = json!(channel);
                let request = ctx
                    .http
                    .request(Method::POST, &format!("{API_BASE}/chat.postMessage"))?
                    .bearer_auth(token.expose())
                    .header("content-type", "application/json; charset=utf-8")
                    .body(body.to_string());
                let reply = ctx.http.send(request).await?;
                let status = reply.status.as_u16();
                let answer = api_result(reply, "chat.postMessage")?;
                let at = |field: &str| {
                    answer[field]
                        .as_str()
                        .map(|s| truncate(s, 40))
                        .unwrap_or_default()
                };
                Ok(Outcome {
                    status: Some(status),
                    excerpt: format!("message {} in {}", at("ts"), at("channel")),
                })
            }
        }
    }
}

inventory::submit! {
    IntegrationDescriptor::new::<SlackMetadata, Slack>(
        "slack",
        "Slack",
        "Posts each event to a Slack channel as a Block Kit message, through an incoming webhook or a bot token.",
    )
    .category(Category::Communication)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_slack_webhook_urls_are_accepted() {
        for ok in [
            "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
            "https://hooks.slack-gov.com/services/T0A/B0B/abc123",
        ] {
            assert_eq!(check_webhook_url(ok), Ok(()), "{ok}");
        }
        for bad in [
            "http://hooks.slack.com/services/T0/B0/secretXYZ",
            "https://hooks.slack.com.evil.com/services/T0/B0/secretXYZ",
            "https://evil.com/services/T0/B0/secretXYZ",
            "https://user:pw@hooks.slack.com/services/T0/B0/secretXYZ",
            "https://hooks.slack.com:8443/services/T0/B0/secretXYZ",
            "https://hooks.slack.com/triggers/T0/B0/secretXYZ",
            "https://hooks.slack.com/services/T0/B0/secretXYZ/extra",
            "https://hooks.slack.com/services/T0/B0/secret-XYZ",
            "https://hooks.slack.com/services/T0/B0/secretXYZ?x=1",
            "https://slack.com/api/chat.postMessage",
            "hooks.slack.com/services/T0/B0/secretXYZ",
        ] {
            let err = check_webhook_url(bad).unwrap_err();
            assert!(!err.contains("secretXYZ"), "error echoes the URL: {err}");
        }
    }

    #[test]
    fn bot_tokens_and_channels_are_checked_without_echoing_the_token() {
        assert_eq!(check_bot_token("xoxb-123-456-abcDEF"), Ok(()));
        for bad in [
            "xoxp-123-456-abc",
            "xoxb-",
            "xoxb-12 3",
            "Bearer xoxb-1",
            "xoxb-1\r\nX: y",
        ] {
            let err = check_bot_token(bad).unwrap_err();
            // Nothing after the well-known prefix is repeated.
            assert!(!err.contains(&bad[4..]) || bad.len() <= 5, "{err}");
        }
        for ok in [
            "C0123456789",
            "G01234567",
            "#deployments",
            "deploy_ments-2",
            "#äpfel",
        ] {
            assert_eq!(check_channel(ok), Ok(()), "{ok}");
        }
        for bad in ["", "#", "#Has Space", "#UPPER", "@alice", &"x".repeat(81)] {
            assert!(check_channel(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn mrkdwn_escaping_disarms_links_and_mentions() {
        assert_eq!(
            escape("<!channel> & <https://x|y>"),
            "&lt;!channel&gt; &amp; &lt;https://x|y&gt;"
        );
    }
}

#![doc = include_str!("../README.md")]

use std::time::Duration;

use keywire_core::message::{self, truncate};
use keywire_core::schemars::JsonSchema;
use keywire_core::{
    Context, Delivery, EventData, FieldErrors, Integration, IntegrationDescriptor,
    IntegrationError, Metadata, Method, OutboundError, Outcome, Secret, Url, async_trait,
    inventory,
};
use serde::Deserialize;
use serde_json::{Value, json};

/// Hosts that serve Discord webhooks.
const HOSTS: &[&str] = &[
    "discord.com",
    "ptb.discord.com",
    "canary.discord.com",
    "discordapp.com",
    "ptb.discordapp.com",
    "canary.discordapp.com",
];

/// Discord's limits on one message.
const TITLE_MAX: usize = 256;
const FIELDS_MAX: usize = 25;
const FIELD_NAME_MAX: usize = 256;
const FIELD_VALUE_MAX: usize = 1024;
const EMBED_TOTAL_MAX: usize = 6000;
/// Discord allows 4096; a summary needs far less.
const DESCRIPTION_MAX: usize = 512;

/// Metadata of a Discord integration.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "keywire_core::schemars")]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DiscordMetadata {
    /// The channel webhook URL from Discord (Server Settings → Integrations → Webhooks), of the
    /// form `https://discord.com/api/webhooks/<id>/<token>`. It contains the webhook's token.
    pub webhook_url: Secret,
}

impl Metadata for DiscordMetadata {
    fn example() -> Value {
        json!({"webhookUrl": "https://discord.com/api/webhooks/1187654321098765432/aBcD-efGh_1234567890xyzXYZ"})
    }

    fn check(&self) -> Result<(), FieldErrors> {
        check_webhook_url(self.webhook_url.expose())
            .map_err(|why| FieldErrors::one("/webhookUrl", why))
    }
}

/// Accepts only Discord webhook URLs. Messages never repeat the URL (it holds a token).
fn check_webhook_url(raw: &str) -> Result<(), String> {
    let url = Url::parse(raw).map_err(|_| "must be an absolute URL".to_owned())?;
    if url.scheme() != "https" {
        return Err("must be an https URL".into());
    }
    if !url.username().is_empty() || url.password().is_some() || url.port().is_some() {
        return Err("must not carry a user name, password or port".into());
    }
    let host = url.host_str().unwrap_or_default();
    if !HOSTS.contains(&host) {
        return Err(format!("must be on {}", HOSTS.join(", ")));
    }
    let segments: Vec<&str> = url.path().trim_matches('/').split('/').collect();
    let (id, token) = match segments.as_slice() {
        ["api", "webhooks", id, token] => (*id, *token),
        ["api", version, "webhooks", id, token] if is_api_version(version) => (*id, *token),
        _ => {
            return Err(
                "must be a webhook URL: https://discord.com/api/webhooks/<id>/<token>".into(),
            );
        }
    };
    let id_ok = !id.is_empty() && id.len() <= 20 && id.chars().all(|c| c.is_ascii_digit());
    let token_ok = !token.is_empty()
        && token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !id_ok || !token_ok {
        return Err(
            "the webhook id must be digits and the token letters, digits, `-` or `_`".into(),
        );
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not have a query or fragment".into());
    }
    Ok(())
}

fn is_api_version(segment: &str) -> bool {
    segment
        .strip_prefix('v')
        .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
}

/// A configured Discord integration.
pub struct Discord {
    webhook_url: Secret,
}

impl From<DiscordMetadata> for Discord {
    fn from(metadata: DiscordMetadata) -> Self {
        Discord {
            webhook_url: metadata.webhook_url,
        }
    }
}

/// The embed for one event: the shared [`message`] rendering, facts as fields, within Discord's
/// limits (truncating with an ellipsis rather than failing).
pub fn render(event: &EventData, public_url: Option<&str>) -> Value {
    let message = message::render(event, public_url);
    let mut budget = EMBED_TOTAL_MAX;
    let title = truncate(&message.headline, TITLE_MAX);
    let description = truncate(&message.summary, DESCRIPTION_MAX);
    let footer = message::SENDER;
    budget -= title.chars().count() + description.chars().count() + footer.len();
    let mut rendered = Vec::new();
    // The embed's own timestamp shows when; the other facts become fields.
    let facts = message.facts.iter().filter(|f| f.name != "When");
    for fact in facts.take(FIELDS_MAX) {
        let name = truncate(&fact.name, FIELD_NAME_MAX);
        let value = truncate(
            &fact.value,
            FIELD_VALUE_MAX.min(budget.saturating_sub(name.chars().count())),
        );
        let cost = name.chars().count() + value.chars().count();
        if value.is_empty() || cost > budget {
            break;
        }
        budget -= cost;
        rendered.push(json!({"name": name, "value": value, "inline": true}));
    }
    let mut embed = json!({
        "title": title,
        "description": description,
        "color": message.colour,
        "fields": rendered,
        "timestamp": message.timestamp.to_rfc3339(),
        "footer": {"text": footer},
    });
    if let Some(link) = message.link {
        embed["url"] = json!(link);
    }
    json!({"username": message::SENDER, "embeds": [embed], "allowed_mentions": {"parse": []}})
}

/// Discord puts the wait in the body of a 429 too (`retry_after`, seconds).
fn with_body_retry_after(err: OutboundError, body: &[u8]) -> OutboundError {
    match err {
        OutboundError::Status {
            status: 429,
            retryable,
            retry_after: None,
            excerpt,
        } => {
            let seconds = serde_json::from_slice::<Value>(body)
                .ok()
                .and_then(|v| v["retry_after"].as_f64());
            OutboundError::Status {
                status: 429,
                retryable,
                retry_after: seconds
                    .filter(|s| s.is_finite() && *s >= 0.0)
                    .map(|s| Duration::from_secs_f64(s.min(3600.0))),
                excerpt,
            }
        }
        other => other,
    }
}

#[async_trait]
impl Integration for Discord {
    async fn validate(&self, ctx: &Context) -> Result<(), IntegrationError> {
        let reply = ctx
            .http
            .send(ctx.http.request(Method::GET, self.webhook_url.expose())?)
            .await?;
        match reply.status.as_u16() {
            200 => Ok(()),
            401 | 404 => Err(IntegrationError::Provider {
                message: format!(
                    "Discord does not know this webhook (HTTP {}): check the webhook URL",
                    reply.status.as_u16()
                ),
                retryable: false,
                status: Some(reply.status.as_u16()),
            }),
            // The body of a successful GET holds the token; error bodies do not.
            _ => Err(reply.error_for_status().map(|_| ()).unwrap_err().into()),
        }
    }

    async fn emit(
        &self,
        ctx: &Context,
        delivery: Delivery<'_>,
    ) -> Result<Outcome, IntegrationError> {
        let url = format!("{}?wait=true", self.webhook_url.expose());
        let body = render(delivery.event, ctx.public_url.as_deref());
        let reply = ctx
            .http
            .send(ctx.http.request(Method::POST, &url)?.json(&body))
            .await?;
        let raw = reply.body.clone();
        let reply = reply
            .error_for_status()
            .map_err(|e| with_body_retry_after(e, &raw))?;
        let message_id = serde_json::from_slice::<Value>(&reply.body)
            .ok()
            .and_then(|v| v["id"].as_str().map(str::to_owned));
        Ok(Outcome {
            status: Some(reply.status.as_u16()),
            excerpt: message_id.map_or_else(String::new, |id| format!("message {id}")),
        })
    }
}

inventory::submit! {
    IntegrationDescriptor::new::<DiscordMetadata, Discord>(
        "discord",
        "Discord",
        "Posts each event to a Discord channel through a channel webhook, as an embed.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_discord_webhook_urls_are_accepted() {
        for ok in [
            "https://discord.com/api/webhooks/123/abc-DEF_9",
            "https://canary.discordapp.com/api/v10/webhooks/123/abc",
            "https://ptb.discord.com/api/webhooks/123/abc",
        ] {
            assert_eq!(check_webhook_url(ok), Ok(()), "{ok}");
        }
        for bad in [
            "http://discord.com/api/webhooks/123/abc",
            "https://evil.com/api/webhooks/123/abc",
            "https://discord.com.evil.com/api/webhooks/123/abc",
            "https://user:pw@discord.com/api/webhooks/123/abc",
            "https://discord.com:8443/api/webhooks/123/abc",
            "https://discord.com/api/webhooks/abc/abc",
            "https://discord.com/api/users/@me",
            "https://discord.com/api/webhooks/123/abc/../../../users",
            "https://discord.com/api/webhooks/123/abc?x=1",
            "https://169.254.169.254/api/webhooks/123/abc",
            "discord.com/api/webhooks/123/abc",
        ] {
            let err = check_webhook_url(bad).unwrap_err();
            assert!(!err.contains("123/abc"), "error echoes the URL: {err}");
        }
    }

    #[test]
    fn truncation_keeps_within_limits_with_an_ellipsis() {
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
        assert_eq!(truncate("ééééé", 3).chars().count(), 3);
    }
}

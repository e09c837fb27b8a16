#![doc = include_str!("../README.md")]

use keywire_core::message::{self, Message, truncate};
use keywire_core::schemars::JsonSchema;
use keywire_core::{
    Category, Context, Delivery, EventData, FieldErrors, Integration, IntegrationDescriptor,
    IntegrationError, Metadata, Method, OutboundError, Outcome, Secret, Severity, Url, async_trait,
    inventory,
};
use serde::Deserialize;
use serde_json::{Value, json};

/// Teams refuses messages above about 28 KB; keywire keeps the whole request body at most this
/// many bytes.
pub const MAX_MESSAGE_BYTES: usize = 28_000;
/// What one fact's value may take; longer values are cut with an ellipsis.
const FACT_VALUE_MAX: usize = 1000;
const FACT_TITLE_MAX: usize = 100;
const HEADLINE_MAX: usize = 256;
const SUMMARY_MAX: usize = 1000;
/// Room kept for the "left out" note.
const NOTE_RESERVE: usize = 200;

/// Which service a webhook URL belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A Teams Workflows (Power Automate) trigger on `*.logic.azure.com`.
    LogicApps,
    /// A Teams Workflows trigger on `*.environment.api.powerplatform.com`.
    PowerPlatform,
    /// A retired Office 365 connector on `*.webhook.office.com`.
    LegacyConnector,
}

/// Metadata of a Microsoft Teams integration.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "keywire_core::schemars")]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MicrosoftTeamsMetadata {
    /// The URL of a Teams Workflows webhook: in Teams, a channel's "Workflows" → "Post to a
    /// channel when a webhook request is received" gives one on `*.logic.azure.com` or
    /// `*.environment.api.powerplatform.com` (`…/workflows/<id>/triggers/manual/paths/invoke?
    /// api-version=…&sig=…`). Legacy connector URLs (`*.webhook.office.com/webhookb2/…`) are
    /// accepted while Microsoft still serves them. The URL's `sig` is its credential, so the
    /// whole URL is one: write-only, never returned or logged.
    pub webhook_url: Secret,
}

impl Metadata for MicrosoftTeamsMetadata {
    fn example() -> Value {
        json!({"webhookUrl": "https://prod-12.westeurope.logic.azure.com:443/workflows/0f1e2d3c4b5a69788796a5b4c3d2e1f0/triggers/manual/paths/invoke?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_AbCdE"})
    }

    fn check(&self) -> Result<(), FieldErrors> {
        check_webhook_url(self.webhook_url.expose())
            .map(|_| ())
            .map_err(|why| FieldErrors::one("/webhookUrl", why))
    }
}

fn is_token(segment: &str) -> bool {
    !segment.is_empty()
        && segment.len() <= 128
        && segment
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '@' | '.'))
}

/// Accepts only Teams webhook URLs and says which kind. Errors never repeat the URL.
fn check_webhook_url(raw: &str) -> Result<Kind, String> {
    let url = Url::parse(raw).map_err(|_| "must be an absolute URL".to_owned())?;
    if url.scheme() != "https" {
        return Err("must be an https URL".into());
    }
    // `url` drops the default port, so Teams' `:443` is accepted and any other port is not.
    if !url.username().is_empty() || url.password().is_some() || url.port().is_some() {
        return Err("must not carry a user name, password or a port other than 443".into());
    }
    if url.fragment().is_some() {
        return Err("must not have a fragment".into());
    }
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    let under = |suffix: &str| {
        host.strip_suffix(suffix).is_some_and(|sub| {
            !sub.is_empty()
                && sub.split('.').all(|label| {
                    !label.is_empty()
                        && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                })
        })
    };
    let kind = if under(".logic.azure.com") {
        Kind::LogicApps
    } else if under(".environment.api.powerplatform.com") {
        Kind::PowerPlatform
    } else if under(".webhook.office.com") {
        Kind::LegacyConnector
    } else {
        return Err("must be a Teams Workflows URL on *.logic.azure.com or \
             *.environment.api.powerplatform.com (or a legacy *.webhook.office.com connector)"
            .into());
    };
    let segments: Vec<&str> = url.path().trim_matches('/').split('/').collect();
    let path_ok = match (kind, segments.as_slice()) {
        (Kind::LogicApps, ["workflows", id, "triggers", trigger, "paths", "invoke"])
        | (
            Kind::PowerPlatform,
            [
                "powerautomate",
                "automations",
                "direct",
                "workflows",
                id,
                "triggers",
                trigger,
                "paths",
                "invoke",
            ],
        ) => is_token(id) && is_token(trigger),
        (Kind::LegacyConnector, ["webhookb2", rest @ ..]) => {
            !rest.is_empty() && rest.len() <= 6 && rest.iter().all(|s| is_token(s))
        }
        _ => false,
    };
    if !path_ok {
        return Err(match kind {
            Kind::LegacyConnector => "must be a connector URL: …/webhookb2/…".into(),
            _ => "must be a workflow trigger URL: …/workflows/<id>/triggers/<name>/paths/invoke?…"
                .into(),
        });
    }
    if kind != Kind::LegacyConnector {
        let has = |key: &str| url.query_pairs().any(|(k, v)| k == key && !v.is_empty());
        if !has("api-version") || !has("sig") {
            return Err(
                "must keep its query: the `api-version` and `sig` parameters Teams gave".into(),
            );
        }
    }
    Ok(kind)
}

/// A configured Microsoft Teams integration.
pub struct MicrosoftTeams {
    webhook_url: Secret,
}

impl From<MicrosoftTeamsMetadata> for MicrosoftTeams {
    fn from(metadata: MicrosoftTeamsMetadata) -> Self {
        MicrosoftTeams {
            webhook_url: metadata.webhook_url,
        }
    }
}

/// The Adaptive Card container style that shows a severity in colour.
fn container_style(severity: Severity) -> &'static str {
    match severity {
        Severity::Info => "accent",
        Severity::Warn => "warning",
        Severity::Error => "attention",
    }
}

/// The Teams message for one event: an Adaptive Card 1.4 with the title, the summary and a
/// FactSet (and an `Action.OpenUrl` when keywire has a public URL), at most
/// [`MAX_MESSAGE_BYTES`] long.
pub fn render(event: &EventData, public_url: Option<&str>) -> Value {
    render_message(&message::render(event, public_url))
}

fn envelope(card: Value) -> Value {
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": card,
        }],
    })
}

fn size(value: &Value) -> usize {
    serde_json::to_vec(value).map_or(usize::MAX, |v| v.len())
}

fn render_message(message: &Message) -> Value {
    let header = json!({
        "type": "Container",
        "style": container_style(message.severity),
        "bleed": true,
        "items": [
            {"type": "TextBlock", "text": truncate(&message.headline, HEADLINE_MAX),
             "weight": "Bolder", "size": "Medium", "wrap": true},
            {"type": "TextBlock",
             "text": truncate(&format!("{} · {}", message.severity_label, message.summary), SUMMARY_MAX),
             "wrap": true, "spacing": "Small"},
        ],
    });
    let mut card = json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "msteams": {"width": "Full"},
        "body": [header, {"type": "FactSet", "facts": []}],
    });
    if let Some(link) = &message.link {
        card["actions"] = json!([{"type": "Action.OpenUrl", "title": "View events", "url": link}]);
    }
    // Facts in order while the whole message stays within Teams' limit; each costs its JSON
    // and a comma.
    let mut used = size(&envelope(card.clone())) + NOTE_RESERVE;
    let mut facts = Vec::new();
    for fact in &message.facts {
        let rendered = json!({
            "title": truncate(&fact.name, FACT_TITLE_MAX),
            "value": truncate(&fact.value, FACT_VALUE_MAX),
        });
        let cost = size(&rendered) + 1;
        if used + cost > MAX_MESSAGE_BYTES {
            break;
        }
        used += cost;
        facts.push(rendered);
    }
    let left_out = message.facts.len() - facts.len();
    card["body"][1]["facts"] = Value::Array(facts);
    if left_out > 0 {
        card["body"]
            .as_array_mut()
            .expect("body is an array")
            .push(json!({
                "type": "TextBlock",
                "text": format!("…and {left_out} more details left out"),
                "isSubtle": true, "size": "Small", "wrap": true,
            }));
    }
    envelope(card)
}

/// Removes the webhook URL, its signature and the long parts of its path (a legacy connector's
/// URL has no signature: its path is the credential) from a provider's text, in case it repeats
/// them.
fn scrub(text: &str, url: &Url) -> String {
    let mut out = text.replace(url.as_str(), "***");
    for (key, value) in url.query_pairs() {
        if key == "sig" && value.len() >= 4 {
            out = out.replace(value.as_ref(), "***");
        }
    }
    for part in url.path().split(['/', '@']).filter(|p| p.len() >= 16) {
        out = out.replace(part, "***");
    }
    out
}

fn scrubbed(err: OutboundError, url: &Url) -> OutboundError {
    match err {
        OutboundError::Status {
            status,
            retryable,
            retry_after,
            excerpt,
        } => OutboundError::Status {
            status,
            retryable,
            retry_after,
            excerpt: scrub(&excerpt, url),
        },
        other => other,
    }
}

#[async_trait]
impl Integration for MicrosoftTeams {
    async fn validate(&self, _ctx: &Context) -> Result<(), IntegrationError> {
        // A workflow trigger cannot be probed without running the flow (which posts), so the
        // live check is the URL's shape, checked when the metadata was parsed.
        check_webhook_url(self.webhook_url.expose())
            .map(|_| ())
            .map_err(|why| IntegrationError::Provider {
                message: format!("webhookUrl {why}"),
                retryable: false,
                status: None,
            })
    }

    async fn emit(
        &self,
        ctx: &Context,
        delivery: Delivery<'_>,
    ) -> Result<Outcome, IntegrationError> {
        let kind = check_webhook_url(self.webhook_url.expose()).map_err(|why| {
            IntegrationError::Provider {
                message: format!("webhookUrl {why}"),
                retryable: false,
                status: None,
            }
        })?;
        // Normalised (Teams shows `:443`, which the URL type drops).
        let url =
            Url::parse(self.webhook_url.expose()).map_err(|_| IntegrationError::Provider {
                message: "webhookUrl must be an absolute URL".into(),
                retryable: false,
                status: None,
            })?;
        let body = render(delivery.event, ctx.public_url.as_deref());
        let request = ctx
            .http
            .request(Method::POST, url.as_str())?
            .header("content-type", "application/json")
            .body(body.to_string());
        let mut reply = ctx.http.send(request).await?;
        // Scrubbed whole, before any excerpt is cut from it: a credential cut in half by the
        // excerpt's end would no longer match.
        reply.body = scrub(&reply.text(), &url).into_bytes();
        let reply = reply.error_for_status().map_err(|e| scrubbed(e, &url))?;
        let status = reply.status.as_u16();
        if kind == Kind::LegacyConnector {
            // Connectors answer `1`, or 200 with an error text when Teams refused the message.
            let text = reply.text();
            if text.trim() != "1" && !text.trim().is_empty() {
                let excerpt = scrub(&reply.excerpt(), &url);
                return Err(IntegrationError::Provider {
                    retryable: text.contains("429") || text.contains("HTTP error 5"),
                    message: format!("Teams refused the message: {excerpt}"),
                    status: Some(status),
                });
            }
        }
        let run = reply
            .headers
            .get("x-ms-workflow-run-id")
            .and_then(|v| v.to_str().ok())
            .map(|id| truncate(id, 64));
        Ok(Outcome {
            status: Some(status),
            excerpt: match run {
                Some(id) => format!("accepted, workflow run {id}"),
                None => "accepted".into(),
            },
        })
    }
}

inventory::submit! {
    IntegrationDescriptor::new::<MicrosoftTeamsMetadata, MicrosoftTeams>(
        "microsoft_teams",
        "Microsoft Teams",
        "Posts each event to a Microsoft Teams channel through a Workflows webhook, as an Adaptive Card.",
    )
    .category(Category::Communication)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_teams_webhook_urls_are_accepted() {
        for (ok, kind) in [
            (
                "https://prod-12.westeurope.logic.azure.com:443/workflows/abc123/triggers/manual/paths/invoke?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=secretSIG",
                Kind::LogicApps,
            ),
            (
                "https://default0a1b2c3d4e5f.0a.environment.api.powerplatform.com:443/powerautomate/automations/direct/workflows/abc123/triggers/manual/paths/invoke?api-version=1&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=secretSIG",
                Kind::PowerPlatform,
            ),
            (
                "https://contoso.webhook.office.com/webhookb2/a-b@c-d/IncomingWebhook/e0f1/a-b-c",
                Kind::LegacyConnector,
            ),
        ] {
            assert_eq!(check_webhook_url(ok), Ok(kind), "{ok}");
        }
        for bad in [
            "http://prod-12.westeurope.logic.azure.com/workflows/abc/triggers/manual/paths/invoke?api-version=1&sig=secretSIG",
            "https://logic.azure.com/workflows/abc/triggers/manual/paths/invoke?api-version=1&sig=secretSIG",
            "https://prod-12.logic.azure.com.evil.com/workflows/abc/triggers/manual/paths/invoke?api-version=1&sig=secretSIG",
            "https://evil.com/workflows/abc/triggers/manual/paths/invoke?api-version=1&sig=secretSIG",
            "https://user:pw@prod-12.westeurope.logic.azure.com/workflows/abc/triggers/manual/paths/invoke?api-version=1&sig=secretSIG",
            "https://prod-12.westeurope.logic.azure.com:8443/workflows/abc/triggers/manual/paths/invoke?api-version=1&sig=secretSIG",
            "https://prod-12.westeurope.logic.azure.com/workflows/abc/triggers/manual/paths/invoke?api-version=1",
            "https://prod-12.westeurope.logic.azure.com/workflows/abc/triggers/manual/paths/invoke?sig=secretSIG",
            "https://prod-12.westeurope.logic.azure.com/subscriptions/x/workflows/abc?api-version=1&sig=secretSIG",
            "https://prod-12.westeurope.logic.azure.com/workflows/abc/triggers/manual/paths/invoke/x?api-version=1&sig=secretSIG",
            "https://prod-12.westeurope.logic.azure.com/workflows/abc/triggers/manual/paths/invoke?api-version=1&sig=secretSIG#x",
            "https://contoso.webhook.office.com/other/secretSIG",
            "https://10.0.0.1/workflows/abc/triggers/manual/paths/invoke?api-version=1&sig=secretSIG",
            "prod-12.westeurope.logic.azure.com/workflows/abc/triggers/manual/paths/invoke",
        ] {
            let err = check_webhook_url(bad).unwrap_err();
            assert!(!err.contains("secretSIG"), "error echoes the URL: {err}");
        }
    }

    #[test]
    fn scrubbing_removes_the_url_and_its_signature() {
        let url = Url::parse(
            "https://prod-1.x.logic.azure.com/workflows/w/triggers/manual/paths/invoke?api-version=1&sig=s3cr3tSig",
        )
        .unwrap();
        let text = format!("bad {} and s3cr3tSig", url.as_str());
        assert_eq!(scrub(&text, &url), "bad *** and ***");
        // A legacy connector's URL is all path: a receiver that quotes the path (or a part of
        // it) back must not put it in the run log.
        let legacy = Url::parse(
            "https://acme.webhook.office.com/webhookb2/0a1b2c3d-0000-4000-8000-000000000001@0a1b2c3d-0000-4000-8000-000000000002/IncomingWebhook/9d8c7b6a5f4e3d2c1b0a/0a1b2c3d-0000-4000-8000-000000000003",
        )
        .unwrap();
        let text = format!(
            "POST {} refused; tenant 0a1b2c3d-0000-4000-8000-000000000002",
            legacy.path()
        );
        let scrubbed = scrub(&text, &legacy);
        assert!(!scrubbed.contains("0a1b2c3d-0000-4000"), "{scrubbed}");
        assert!(!scrubbed.contains("9d8c7b6a5f4e3d2c1b0a"), "{scrubbed}");
    }
}

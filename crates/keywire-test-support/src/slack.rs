//! A fake of Slack: incoming webhooks (`hooks.slack.com/services/T…/B…/…`) and the Web API
//! methods keywire calls (`chat.postMessage`, `auth.test` under `slack.com/api`), checking
//! requests the way Slack documents them and answering as Slack does:
//!
//! - Web API: always JSON; `200 {"ok": false, "error": "<code>"}` on failure (`not_authed`,
//!   `invalid_auth`, `channel_not_found`, `not_in_channel`, `is_archived`, `no_text`,
//!   `invalid_blocks`, `msg_too_long`…), `429` with `Retry-After` and
//!   `{"ok": false, "error": "ratelimited"}` when rate limited.
//! - Webhooks: `200 ok`, or a status and a short text code (`400 invalid_payload`,
//!   `400 no_text`, `400 invalid_blocks`, `403 invalid_token`, `404 no_service`,
//!   `404 channel_not_found`, `410 channel_is_archived`, `429` with `Retry-After`, `500
//!   rollup_error`).
//!
//! Route both `https://hooks.slack.com` and `https://slack.com` to one fake (see
//! [`context`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use keywire_core::Context;
use keywire_core::OutboundPolicy;
use serde_json::{Value, json};

use crate::fake::{FakeResponse, FakeServer, RecordedRequest};

/// The team id in the webhook URL the fake knows.
pub const TEAM_ID: &str = "T0KEYWIRE";
/// The webhook id the fake knows.
pub const WEBHOOK_ID: &str = "B0KEYWIRE1";
/// The webhook's secret part.
pub const WEBHOOK_SECRET: &str = "hK9sWq2LmN4pR7tV1xZ3bC5d";
/// The bot token the fake accepts.
pub const BOT_TOKEN: &str = "xoxb-100200300-400500600700-QwErTyUiOpAsDfGhJkLzXcVb";
/// The channel the bot is a member of, by ID...
pub const CHANNEL_ID: &str = "C0DEPLOYS1";
/// ...and by name.
pub const CHANNEL_NAME: &str = "#deployments";
/// A channel that exists but the bot is not a member of (`not_in_channel`).
pub const PRIVATE_CHANNEL: &str = "#private-ops";
/// An archived channel (`is_archived`).
pub const ARCHIVED_CHANNEL: &str = "#old-deploys";

/// The incoming-webhook URL the fake accepts (route `https://hooks.slack.com` to the fake).
pub fn webhook_url() -> String {
    format!("https://hooks.slack.com/services/{TEAM_ID}/{WEBHOOK_ID}/{WEBHOOK_SECRET}")
}

/// How the fake behaves beyond checking requests.
#[derive(Debug, Clone, Default)]
pub struct Behaviour {
    /// The first this many message posts (webhook or `chat.postMessage`) get a 429.
    pub rate_limited: usize,
    /// Every message post fails with this Slack error code, answered the way Slack answers it
    /// (`200 ok:false` for the Web API; the webhook's status and text for webhooks).
    pub fail_with: Option<&'static str>,
}

/// Starts the fake with no rate limit and no forced failure.
pub fn start() -> FakeServer {
    start_with(Behaviour::default())
}

/// An integration context with `https://hooks.slack.com` and `https://slack.com` routed to
/// `fake`.
pub fn context(fake: &FakeServer) -> Context {
    crate::context_with(OutboundPolicy {
        allow: OutboundPolicy::parse_allow_list("127.0.0.1/32").expect("valid allow-list"),
        origin_overrides: vec![
            ("https://hooks.slack.com".to_owned(), fake.url().to_owned()),
            ("https://slack.com".to_owned(), fake.url().to_owned()),
        ],
        ..OutboundPolicy::default()
    })
}

/// Starts the fake.
pub fn start_with(behaviour: Behaviour) -> FakeServer {
    let posts = Arc::new(AtomicUsize::new(0));
    FakeServer::start(move |req| {
        let is_post = req.method == "POST";
        if req.path.starts_with("/services/") {
            if !is_post {
                return text(405, "invalid_method");
            }
            return webhook(req, &behaviour, &posts);
        }
        match req.path.as_str() {
            "/api/auth.test" => api_auth(req).unwrap_or_else(|| {
                FakeResponse::json(
                    200,
                    json!({
                        "ok": true, "url": "https://keywire-test.slack.com/", "team": "Keywire Test",
                        "user": "keywire", "team_id": TEAM_ID, "user_id": "U0KEYWIRE",
                        "bot_id": "B0KEYWIREBOT", "is_enterprise_install": false
                    }),
                )
            }),
            "/api/chat.postMessage" if is_post => {
                if let Some(refused) = api_auth(req) {
                    return refused;
                }
                if posts.fetch_add(1, Ordering::SeqCst) < behaviour.rate_limited {
                    return FakeResponse::json(429, json!({"ok": false, "error": "ratelimited"}))
                        .with_header("retry-after", "3");
                }
                if !req
                    .header("content-type")
                    .is_some_and(|c| c.starts_with("application/json"))
                {
                    // Slack reads a non-JSON body as a form, finding no channel.
                    return api_error("channel_not_found");
                }
                let body = req.json();
                if !body.is_object() {
                    return api_error("invalid_json");
                }
                let channel = body["channel"].as_str().unwrap_or_default();
                let found = match channel {
                    CHANNEL_ID | CHANNEL_NAME | "deployments" => None,
                    PRIVATE_CHANNEL | "private-ops" => Some("not_in_channel"),
                    ARCHIVED_CHANNEL | "old-deploys" => Some("is_archived"),
                    _ => Some("channel_not_found"),
                };
                if let Some(code) = found {
                    return api_error(code);
                }
                if let Err(code) = check_message(&body) {
                    return api_error(code);
                }
                if let Some(code) = behaviour.fail_with {
                    return api_error(code);
                }
                FakeResponse::json(
                    200,
                    json!({
                        "ok": true, "channel": CHANNEL_ID, "ts": "1764324000.000100",
                        "message": {"type": "message", "subtype": "bot_message", "bot_id": "B0KEYWIREBOT",
                                    "text": body["text"], "blocks": body["blocks"], "ts": "1764324000.000100"}
                    }),
                )
            }
            path if path.starts_with("/api/") => {
                if is_post || req.method == "GET" {
                    api_error("unknown_method")
                } else {
                    api_error("invalid_method")
                }
            }
            _ => text(404, "not_found"),
        }
    })
}

fn text(status: u16, body: &str) -> FakeResponse {
    FakeResponse {
        status,
        headers: vec![("content-type".into(), "text/html".into())],
        body: body.to_owned(),
        delay: std::time::Duration::ZERO,
    }
}

fn api_error(code: &str) -> FakeResponse {
    FakeResponse::json(200, json!({"ok": false, "error": code}))
}

/// `None` when the request carries the bot token as `Authorization: Bearer`; otherwise Slack's
/// answer (`not_authed` without a token, `invalid_auth` with a wrong one).
fn api_auth(req: &RecordedRequest) -> Option<FakeResponse> {
    match req
        .header("authorization")
        .and_then(|h| h.strip_prefix("Bearer "))
    {
        None => Some(api_error("not_authed")),
        Some(token) if token == BOT_TOKEN => None,
        Some(_) => Some(api_error("invalid_auth")),
    }
}

fn webhook(req: &RecordedRequest, behaviour: &Behaviour, posts: &AtomicUsize) -> FakeResponse {
    let parts: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
    let ["services", team, hook, secret] = parts.as_slice() else {
        return text(404, "no_service");
    };
    if *team != TEAM_ID || *hook != WEBHOOK_ID {
        return text(404, "no_service");
    }
    if *secret != WEBHOOK_SECRET {
        return text(403, "invalid_token");
    }
    if posts.fetch_add(1, Ordering::SeqCst) < behaviour.rate_limited {
        return text(429, "rate_limited").with_header("retry-after", "3");
    }
    if !req
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/json"))
    {
        return text(400, "invalid_payload");
    }
    let body = req.json();
    if !body.is_object() {
        return text(400, "invalid_payload");
    }
    if body.get("channel").is_some() {
        // Webhooks of Slack apps post only to their own channel.
        return text(403, "action_prohibited");
    }
    if let Err(code) = check_message(&body) {
        return text(400, code);
    }
    match behaviour.fail_with {
        None => text(200, "ok"),
        Some(code) => {
            let status = match code {
                "invalid_payload" | "user_not_found" | "no_text" | "invalid_blocks" => 400,
                "action_prohibited" | "invalid_token" | "team_disabled" => 403,
                "channel_not_found" | "no_service" | "no_team" => 404,
                "channel_is_archived" => 410,
                _ => 500,
            };
            text(status, code)
        }
    }
}

fn len(v: &Value) -> usize {
    v.as_str().map_or(0, |s| s.chars().count())
}

fn text_object(v: &Value, max: usize) -> Result<(), &'static str> {
    let kind = v["type"].as_str();
    if !matches!(kind, Some("plain_text" | "mrkdwn")) || len(&v["text"]) == 0 {
        return Err("invalid_blocks");
    }
    if len(&v["text"]) > max {
        return Err("invalid_blocks");
    }
    Ok(())
}

/// Slack's documented limits on a message: `text` or `blocks` present (`no_text`), `text` at
/// most 40,000 characters (`msg_too_long`), at most 50 blocks; a `header` of plain text up to
/// 150 characters; a `section` with text up to 3,000 characters and/or up to 10 fields of up to
/// 2,000; a `context` with 1 to 10 elements; a `divider`; `actions` with 1 to 25 elements.
/// Anything else is `invalid_blocks`.
pub fn check_message(body: &Value) -> Result<(), &'static str> {
    let text = body.get("text").map_or(0, len);
    let blocks = match body.get("blocks") {
        None => Vec::new(),
        Some(Value::Array(blocks)) => blocks.clone(),
        Some(_) => return Err("invalid_blocks_format"),
    };
    if text == 0 && blocks.is_empty() {
        return Err("no_text");
    }
    if text > 40_000 {
        return Err("msg_too_long");
    }
    if blocks.len() > 50 {
        return Err("invalid_blocks");
    }
    for block in &blocks {
        if block
            .get("block_id")
            .is_some_and(|id| len(id) == 0 || len(id) > 255)
        {
            return Err("invalid_blocks");
        }
        match block["type"].as_str() {
            Some("header") => {
                if block["text"]["type"] != "plain_text" {
                    return Err("invalid_blocks");
                }
                text_object(&block["text"], 150)?;
            }
            Some("section") => {
                let has_text = block.get("text").is_some();
                if has_text {
                    text_object(&block["text"], 3000)?;
                }
                match block.get("fields") {
                    None if !has_text => return Err("invalid_blocks"),
                    None => {}
                    Some(Value::Array(fields)) => {
                        if fields.is_empty() || fields.len() > 10 {
                            return Err("invalid_blocks");
                        }
                        for field in fields {
                            text_object(field, 2000)?;
                        }
                    }
                    Some(_) => return Err("invalid_blocks"),
                }
            }
            Some("context") => {
                let elements = block["elements"].as_array().cloned().unwrap_or_default();
                if elements.is_empty() || elements.len() > 10 {
                    return Err("invalid_blocks");
                }
                for element in &elements {
                    text_object(element, 3000)?;
                }
            }
            Some("divider") => {}
            Some("actions") => {
                let elements = block["elements"].as_array().map_or(0, Vec::len);
                if elements == 0 || elements > 25 {
                    return Err("invalid_blocks");
                }
            }
            _ => return Err("invalid_blocks"),
        }
    }
    Ok(())
}

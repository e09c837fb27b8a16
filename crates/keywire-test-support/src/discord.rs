//! A fake of Discord's webhook API (`/api/webhooks/{id}/{token}`), checking requests the way
//! Discord documents them: JSON body, `content` or `embeds` present, the message and embed
//! limits; answering as Discord does (message object with `?wait=true`, 204 without, 404
//! `Unknown Webhook`, 401 `Invalid Webhook Token`, 400 `Invalid Form Body`, 429 with
//! `retry_after` in the body and `Retry-After` in the headers).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};

use crate::fake::{FakeResponse, FakeServer};

/// The webhook id the fake knows.
pub const WEBHOOK_ID: &str = "1187654321098765432";
/// The webhook token the fake knows.
pub const WEBHOOK_TOKEN: &str = "aBcD-efGh_1234567890xyzXYZ0987654321lmnopQRSTuv";

/// A webhook URL on discord.com that the fake accepts (route `https://discord.com` to it).
pub fn webhook_url() -> String {
    format!("https://discord.com/api/webhooks/{WEBHOOK_ID}/{WEBHOOK_TOKEN}")
}

/// Starts the fake. The first `rate_limited` POSTs get a 429.
pub fn start(rate_limited: usize) -> FakeServer {
    let posts = Arc::new(AtomicUsize::new(0));
    FakeServer::start(move |req| {
        let parts: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
        let (id, token) = match parts.as_slice() {
            ["api", "webhooks", id, token] => (*id, *token),
            ["api", version, "webhooks", id, token] if version.starts_with('v') => (*id, *token),
            _ => return FakeResponse::json(404, json!({"message": "404: Not Found", "code": 0})),
        };
        if id != WEBHOOK_ID {
            return FakeResponse::json(404, json!({"message": "Unknown Webhook", "code": 10015}));
        }
        if token != WEBHOOK_TOKEN {
            return FakeResponse::json(
                401,
                json!({"message": "Invalid Webhook Token", "code": 50027}),
            );
        }
        match req.method.as_str() {
            "GET" => FakeResponse::json(
                200,
                json!({"id": WEBHOOK_ID, "type": 1, "name": "keywire", "channel_id": "99", "guild_id": "98",
                       "application_id": null, "avatar": null, "token": WEBHOOK_TOKEN}),
            ),
            "POST" => {
                if posts.fetch_add(1, Ordering::SeqCst) < rate_limited {
                    return FakeResponse::json(
                        429,
                        json!({"message": "You are being rate limited.", "retry_after": 1.5, "global": false}),
                    )
                    .with_header("retry-after", "2")
                    .with_header("x-ratelimit-remaining", "0");
                }
                if req.header("content-type") != Some("application/json") {
                    return FakeResponse::json(
                        400,
                        json!({"message": "Cannot send an empty message", "code": 50006}),
                    );
                }
                if let Err(why) = check_message(&req.json()) {
                    return FakeResponse::json(
                        400,
                        json!({"message": "Invalid Form Body", "code": 50035, "errors": why}),
                    );
                }
                if req.query_param("wait") == Some("true") {
                    let mut message = req.json();
                    message["id"] = json!("1190000000000000001");
                    message["channel_id"] = json!("99");
                    message["webhook_id"] = json!(WEBHOOK_ID);
                    FakeResponse::json(200, message)
                } else {
                    FakeResponse::empty(204)
                }
            }
            _ => FakeResponse::json(
                405,
                json!({"message": "405: Method Not Allowed", "code": 0}),
            ),
        }
    })
}

fn len(v: &Value) -> usize {
    v.as_str().map_or(0, |s| s.chars().count())
}

/// Discord's documented limits on a webhook message.
pub fn check_message(body: &Value) -> Result<(), String> {
    let Some(object) = body.as_object() else {
        return Err("body is not a JSON object".into());
    };
    let content = object.get("content").map_or(0, len);
    let embeds = object
        .get("embeds")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if content == 0 && embeds.is_empty() {
        return Err("Cannot send an empty message".into());
    }
    if content > 2000 {
        return Err("content: Must be 2000 or fewer in length.".into());
    }
    if embeds.len() > 10 {
        return Err("embeds: Must be 10 or fewer in length.".into());
    }
    let mut total = 0;
    for embed in &embeds {
        let title = embed.get("title").map_or(0, len);
        let description = embed.get("description").map_or(0, len);
        let footer = embed.pointer("/footer/text").map_or(0, len);
        let author = embed.pointer("/author/name").map_or(0, len);
        if title > 256 || description > 4096 || footer > 2048 || author > 256 {
            return Err("embed title/description/footer/author too long".into());
        }
        if let Some(color) = embed.get("color")
            && color.as_u64().is_none_or(|c| c > 0xFF_FF_FF)
        {
            return Err("embeds.color: not a 24-bit integer".into());
        }
        let fields = embed
            .get("fields")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if fields.len() > 25 {
            return Err("embeds.fields: Must be 25 or fewer in length.".into());
        }
        total += title + description + footer + author;
        for field in &fields {
            let (name, value) = (
                field.get("name").map_or(0, len),
                field.get("value").map_or(0, len),
            );
            if name == 0 || value == 0 || name > 256 || value > 1024 {
                return Err("embeds.fields: name 1..256 and value 1..1024 characters".into());
            }
            total += name + value;
        }
    }
    if total > 6000 {
        return Err("embeds: total of 6000 characters exceeded".into());
    }
    Ok(())
}

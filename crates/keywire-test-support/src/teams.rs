//! A fake of a Microsoft Teams Workflows webhook (a Power Automate / Logic Apps HTTP trigger,
//! `https://<region>.logic.azure.com/workflows/<id>/triggers/manual/paths/invoke?api-version=…
//! &sig=…`) and of a legacy Office 365 connector webhook (`*.webhook.office.com/webhookb2/…`),
//! checking requests the way they are documented and answering as they do:
//!
//! - Workflows: `202 Accepted` with an empty body and `x-ms-workflow-run-id`; `401` with
//!   `DirectApiInvalidAuthorizationSignature` for a wrong `sig`; `404` `WorkflowNotFound`;
//!   `400` for a missing `api-version`, a body that is not JSON or not a Teams message with an
//!   Adaptive Card; `413` `MessageSizeTooBig` above Teams' 28 KB; `429` with `Retry-After`.
//! - Legacy connectors: `200` with body `1`, and — as those did — `200` with an error text
//!   when Teams refused the message.
//!
//! Route [`ORIGIN`] and [`LEGACY_ORIGIN`] to the fake (see [`context`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use keywire_core::{Context, OutboundPolicy};
use serde_json::{Value, json};

use crate::fake::{FakeResponse, FakeServer, RecordedRequest};

/// The host of the workflow URL the fake serves.
pub const ORIGIN: &str = "https://prod-42.westeurope.logic.azure.com";
/// The host of the legacy connector URL the fake serves.
pub const LEGACY_ORIGIN: &str = "https://keywire.webhook.office.com";
/// The workflow id the fake knows.
pub const WORKFLOW_ID: &str = "5f0c1e2d3a4b4c6d8e9f0a1b2c3d4e5f";
/// The URL's signature (the credential part of a workflow URL).
pub const SIG: &str = "Qm9vdHN0cmFwU2lnbmF0dXJlX2tleXdpcmVfdGVzdA";
/// The legacy connector's path.
pub const LEGACY_PATH: &str = "/webhookb2/0a1b2c3d-0000-4000-8000-000000000001@0a1b2c3d-0000-4000-8000-000000000002/IncomingWebhook/9d8c7b6a5f4e3d2c1b0a/0a1b2c3d-0000-4000-8000-000000000003";
/// Teams refuses messages larger than this many bytes.
pub const MAX_MESSAGE_BYTES: usize = 28 * 1024;

/// The workflow URL the fake accepts, as Teams shows it (with its `:443`).
pub fn webhook_url() -> String {
    format!(
        "{ORIGIN}:443/workflows/{WORKFLOW_ID}/triggers/manual/paths/invoke?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={SIG}"
    )
}

/// The legacy connector URL the fake accepts.
pub fn legacy_webhook_url() -> String {
    format!("{LEGACY_ORIGIN}{LEGACY_PATH}")
}

/// How the fake behaves beyond checking requests.
#[derive(Debug, Clone, Default)]
pub struct Behaviour {
    /// The first this many posts get a 429.
    pub rate_limited: usize,
    /// Every post to the legacy connector is answered `200` with this error text (what legacy
    /// connectors did when Teams refused a message).
    pub legacy_failure: Option<&'static str>,
}

/// Starts the fake with no rate limit.
pub fn start() -> FakeServer {
    start_with(Behaviour::default())
}

/// An integration context with [`ORIGIN`] and [`LEGACY_ORIGIN`] routed to `fake`.
pub fn context(fake: &FakeServer) -> Context {
    crate::context_with(OutboundPolicy {
        allow: OutboundPolicy::parse_allow_list("127.0.0.1/32").expect("valid allow-list"),
        origin_overrides: vec![
            (ORIGIN.to_owned(), fake.url().to_owned()),
            (LEGACY_ORIGIN.to_owned(), fake.url().to_owned()),
        ],
        ..OutboundPolicy::default()
    })
}

fn azure_error(status: u16, code: &str, message: &str) -> FakeResponse {
    FakeResponse::json(status, json!({"error": {"code": code, "message": message}}))
}

/// Starts the fake.
pub fn start_with(behaviour: Behaviour) -> FakeServer {
    let posts = Arc::new(AtomicUsize::new(0));
    FakeServer::start(move |req| {
        if req.path == LEGACY_PATH {
            return legacy(req, &behaviour, &posts);
        }
        let parts: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
        let ["workflows", id, "triggers", trigger, "paths", "invoke"] = parts.as_slice() else {
            return azure_error(
                404,
                "InvalidResourceType",
                "The resource type could not be found.",
            );
        };
        if *id != WORKFLOW_ID || *trigger != "manual" {
            return azure_error(404, "WorkflowNotFound", "The workflow could not be found.");
        }
        if req.query_param("api-version").is_none() {
            return azure_error(
                400,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            );
        }
        if req.query_param("sig") != Some(SIG) {
            return azure_error(
                401,
                "DirectApiInvalidAuthorizationSignature",
                "The provided callback URL signature is not valid.",
            );
        }
        if req.method != "POST" {
            return azure_error(
                405,
                "DirectApiRequestMethodNotAllowed",
                "The request method is not allowed for this trigger.",
            );
        }
        if posts.fetch_add(1, Ordering::SeqCst) < behaviour.rate_limited {
            return azure_error(
                429,
                "WorkflowRequestsThrottled",
                "Number of requests for the workflow exceeded the limit.",
            )
            .with_header("retry-after", "4");
        }
        if let Err((status, code)) = check_request(req) {
            return azure_error(status, code, "The message was refused.");
        }
        FakeResponse::empty(202)
            .with_header("x-ms-workflow-run-id", "08584512345678901234567890123CU00")
            .with_header(
                "x-ms-correlation-id",
                "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
            )
    })
}

fn legacy(req: &RecordedRequest, behaviour: &Behaviour, posts: &AtomicUsize) -> FakeResponse {
    let text = |status: u16, body: &str| FakeResponse {
        status,
        headers: vec![("content-type".into(), "text/plain; charset=utf-8".into())],
        body: body.to_owned(),
        delay: std::time::Duration::ZERO,
    };
    if req.method != "POST" {
        return text(405, "Method Not Allowed");
    }
    if posts.fetch_add(1, Ordering::SeqCst) < behaviour.rate_limited {
        return text(429, "Microsoft Teams endpoint returned HTTP error 429")
            .with_header("retry-after", "4");
    }
    if let Err((status, _)) = check_request(req) {
        return text(
            400,
            &format!("Bad payload received by generic incoming webhook. ({status})"),
        );
    }
    match behaviour.legacy_failure {
        Some(error) => text(200, error),
        None => text(200, "1"),
    }
}

fn check_request(req: &RecordedRequest) -> Result<(), (u16, &'static str)> {
    if !req
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/json"))
    {
        return Err((415, "UnsupportedMediaType"));
    }
    if req.body.len() > MAX_MESSAGE_BYTES {
        return Err((413, "MessageSizeTooBig"));
    }
    let body: Value =
        serde_json::from_slice(&req.body).map_err(|_| (400, "InvalidRequestContent"))?;
    check_message(&body).map_err(|_| (400, "InvalidRequestContent"))
}

fn text(v: &Value) -> Option<&str> {
    v.as_str().filter(|s| !s.trim().is_empty())
}

/// What Teams requires of a message with an Adaptive Card: `type: message`, one or more
/// attachments of content type `application/vnd.microsoft.card.adaptive` whose content is an
/// `AdaptiveCard` with a `version` (at most 1.5 in Teams) and a `body` of known elements, each
/// `TextBlock` with text, each `FactSet` with facts of a `title` and a `value`, each
/// `Action.OpenUrl` with an absolute `url`.
pub fn check_message(body: &Value) -> Result<(), String> {
    if body["type"] != "message" {
        return Err("type must be `message`".into());
    }
    let attachments = body["attachments"]
        .as_array()
        .filter(|a| !a.is_empty())
        .ok_or("attachments must be a non-empty array")?;
    for attachment in attachments {
        if attachment["contentType"] != "application/vnd.microsoft.card.adaptive" {
            return Err("attachment contentType must be an Adaptive Card".into());
        }
        let card = &attachment["content"];
        if card["type"] != "AdaptiveCard" {
            return Err("content.type must be AdaptiveCard".into());
        }
        let version = text(&card["version"]).ok_or("content.version is required")?;
        if !matches!(version, "1.0" | "1.1" | "1.2" | "1.3" | "1.4" | "1.5") {
            return Err(format!("Teams does not render Adaptive Cards {version}"));
        }
        let elements = card["body"]
            .as_array()
            .ok_or("content.body must be an array")?;
        check_elements(elements)?;
        for action in card["actions"].as_array().into_iter().flatten() {
            check_action(action)?;
        }
    }
    Ok(())
}

fn check_elements(elements: &[Value]) -> Result<(), String> {
    for element in elements {
        match element["type"].as_str() {
            Some("TextBlock") => {
                text(&element["text"]).ok_or("a TextBlock needs text")?;
            }
            Some("FactSet") => {
                let facts = element["facts"].as_array().ok_or("a FactSet needs facts")?;
                for fact in facts {
                    if !fact["title"].is_string() || !fact["value"].is_string() {
                        return Err("a fact needs a title and a value (strings)".into());
                    }
                }
            }
            Some("Container") => {
                let items = element["items"]
                    .as_array()
                    .ok_or("a Container needs items")?;
                check_elements(items)?;
            }
            Some("ActionSet") => {
                for action in element["actions"].as_array().into_iter().flatten() {
                    check_action(action)?;
                }
            }
            other => return Err(format!("unknown element type {other:?}")),
        }
    }
    Ok(())
}

fn check_action(action: &Value) -> Result<(), String> {
    if action["type"] != "Action.OpenUrl" {
        return Err("only Action.OpenUrl is expected".into());
    }
    let url = text(&action["url"]).ok_or("Action.OpenUrl needs a url")?;
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err("Action.OpenUrl url must be absolute".into());
    }
    Ok(())
}

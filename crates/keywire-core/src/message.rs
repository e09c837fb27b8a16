//! A provider-neutral rendering of an event into what a human message needs, shared by every
//! communication integration (Discord, Slack, Microsoft Teams, email) so that they all say the
//! same thing: a headline, a one-line summary, an ordered list of facts, an optional link and a
//! severity colour.
//!
//! Everything here comes from [`EventData`], whose payload holds names, slugs and versions,
//! never a secret value; nothing is added that is not already in the event. The text is plain
//! (no markup): each integration escapes and decorates it for its own format and applies its
//! own limits with [`truncate`].
//!
//! ```
//! # use keywire_core::{Actor, EventData, EventSource, EventType, Severity};
//! # let event = EventData {
//! #     id: "evt_1".into(), event_type: EventType::SecretUpdated, source: EventSource::Secret,
//! #     severity: Severity::Info, title: "Secret DATABASE_URL updated in Shop".into(),
//! #     workspace: "acme".into(), project: Some("shop".into()),
//! #     environments: vec!["dev".into(), "prod".into()],
//! #     actor: Actor { id: "usr_1".into(), name: "alice".into() },
//! #     created_at: "2026-11-28T10:00:00Z".parse().unwrap(),
//! #     payload: serde_json::json!({"key": "DATABASE_URL", "environments": {"dev": 4, "prod": 7}}),
//! # };
//! let message = keywire_core::message::render(&event, Some("https://keywire.example.com"));
//! assert_eq!(message.headline, "Secret DATABASE_URL updated in Shop");
//! assert_eq!(message.summary, "SECRET_UPDATED in project shop, environments dev, prod");
//! assert_eq!(message.fact("key"), Some("DATABASE_URL"));
//! assert_eq!(message.fact("environments"), Some("dev: 4, prod: 7"));
//! assert_eq!(message.colour_hex(), "#3B82F6");
//! assert_eq!(
//!     message.link.as_deref(),
//!     Some("https://keywire.example.com/api/v1/workspaces/acme/events")
//! );
//! ```

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::event::{EventData, Severity};

/// The name of the sender shown by providers that show one.
pub const SENDER: &str = "keywire";

/// Payload fields that name what an event is about, shown before the others.
const LEADING_PAYLOAD_FIELDS: &[&str] = &["key", "name", "user", "role", "integration", "type"];

/// One fact of a message: a name and its value, both plain text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fact {
    /// What the value is, e.g. `Project` or a payload field name such as `key`.
    pub name: String,
    /// The value, e.g. `shop`.
    pub value: String,
}

/// An event rendered for people, independent of any provider's format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The event's title, e.g. `Secret DATABASE_URL updated in Shop`.
    pub headline: String,
    /// What changed, in one line: `SECRET_UPDATED in project shop, environments dev, prod`.
    pub summary: String,
    /// The details, in a stable order: event type, workspace, project, environments, who, when,
    /// then the payload's fields (what the event is about first: `key`, `name`, `user`, `role`,
    /// `integration`, `type`; then the others by name).
    pub facts: Vec<Fact>,
    /// Where to read more, when keywire has a public URL: the workspace's events in the API.
    pub link: Option<String>,
    /// How much the event matters.
    pub severity: Severity,
    /// The severity's colour, `0xRRGGBB`.
    pub colour: u32,
    /// The severity in words: `Info`, `Warning` or `Error`.
    pub severity_label: &'static str,
    /// When the event happened.
    pub timestamp: DateTime<Utc>,
}

impl Message {
    /// The colour as `#RRGGBB`.
    pub fn colour_hex(&self) -> String {
        format!("#{:06X}", self.colour)
    }

    /// The value of the first fact with that name.
    pub fn fact(&self, name: &str) -> Option<&str> {
        self.facts
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.value.as_str())
    }

    /// The whole message as plain text: headline, summary, one `name: value` line per fact,
    /// and the link. Used for text fallbacks (Slack's `text`, the plain part of an email).
    pub fn plain_text(&self) -> String {
        let mut text = format!("{}\n{}\n", self.headline, self.summary);
        for fact in &self.facts {
            text.push_str(&format!("\n{}: {}", fact.name, fact.value));
        }
        if let Some(link) = &self.link {
            text.push_str(&format!("\n\n{link}"));
        }
        text
    }
}

/// The colour of a severity, `0xRRGGBB`: blue, amber, red.
pub const fn severity_colour(severity: Severity) -> u32 {
    match severity {
        Severity::Info => 0x3B82F6,
        Severity::Warn => 0xF59E0B,
        Severity::Error => 0xEF4444,
    }
}

/// A severity in words.
pub const fn severity_label(severity: Severity) -> &'static str {
    match severity {
        Severity::Info => "Info",
        Severity::Warn => "Warning",
        Severity::Error => "Error",
    }
}

/// The link for an event when keywire has a public URL: the API URL of the workspace's events.
pub fn event_link(event: &EventData, public_url: Option<&str>) -> Option<String> {
    let base = public_url?.trim().trim_end_matches('/');
    if base.is_empty() {
        return None;
    }
    Some(format!(
        "{base}/api/v1/workspaces/{}/events",
        event.workspace
    ))
}

/// Renders an event for people. `public_url` is where keywire is reachable (`KEYWIRE_PUBLIC_URL`);
/// without one there is no link.
pub fn render(event: &EventData, public_url: Option<&str>) -> Message {
    let mut facts = vec![
        fact("Event", event.event_type.as_str()),
        fact("Workspace", &event.workspace),
    ];
    if let Some(project) = &event.project {
        facts.push(fact("Project", project));
    }
    let environments = event.environments.join(", ");
    if !event.environments.is_empty() {
        facts.push(fact("Environments", &environments));
    }
    facts.push(fact("By", &event.actor.name));
    facts.push(fact(
        "When",
        &event.created_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    ));
    if let Some(details) = event.payload.as_object() {
        // What the event is about first (`key`, `name`...), then the rest by name.
        let mut details: Vec<(&String, &Value)> = details.iter().collect();
        details.sort_by_key(|(name, _)| {
            let rank = LEADING_PAYLOAD_FIELDS
                .iter()
                .position(|lead| lead == name)
                .unwrap_or(LEADING_PAYLOAD_FIELDS.len());
            (rank, name.as_str())
        });
        for (name, value) in details {
            let Some(text) = plain(value).filter(|t| !t.trim().is_empty()) else {
                continue;
            };
            // The payload repeats the scope (`project`, `workspace`, `environment`): say it once.
            let repeats = facts.iter().any(|f| {
                f.value == text
                    && (f.name.eq_ignore_ascii_case(name)
                        || (f.name == "Environments" && name == "environment"))
            });
            if !repeats {
                facts.push(fact(name, &text));
            }
        }
    }
    Message {
        headline: event.title.clone(),
        summary: summary(event),
        facts,
        link: event_link(event, public_url),
        severity: event.severity,
        colour: severity_colour(event.severity),
        severity_label: severity_label(event.severity),
        timestamp: event.created_at,
    }
}

fn fact(name: &str, value: &str) -> Fact {
    Fact {
        name: name.to_owned(),
        value: value.to_owned(),
    }
}

/// `SECRET_UPDATED in project api, environments dev, prod` or
/// `WORKSPACE_UPDATED in workspace acme`.
fn summary(event: &EventData) -> String {
    let mut line = match &event.project {
        Some(project) => format!("{} in project {project}", event.event_type),
        None => format!("{} in workspace {}", event.event_type, event.workspace),
    };
    match event.environments.as_slice() {
        [] => {}
        [one] => line.push_str(&format!(", environment {one}")),
        many => line.push_str(&format!(", environments {}", many.join(", "))),
    }
    line
}

/// A payload value as text: scalars as they are, arrays joined with `, `, flat objects as
/// `name: value, ...` (for example environment versions). Deeper structures are left out.
fn plain(value: &Value) -> Option<String> {
    match value {
        Value::Object(map) => {
            let parts: Vec<String> = map
                .iter()
                .filter_map(|(k, v)| scalar(v).map(|v| format!("{k}: {v}")))
                .collect();
            (!parts.is_empty()).then(|| parts.join(", "))
        }
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().filter_map(scalar).collect();
            (!parts.is_empty()).then(|| parts.join(", "))
        }
        other => scalar(other),
    }
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(if *b { "yes" } else { "no" }.to_owned()),
        _ => None,
    }
}

/// Cuts `text` to at most `max_chars` characters (Unicode scalar values), ending with `…` when
/// it had to cut.
pub fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        None => text.to_owned(),
        Some(_) if max_chars == 0 => String::new(),
        Some(_) => {
            let keep = text
                .char_indices()
                .nth(max_chars - 1)
                .map_or(text.len(), |(at, _)| at);
            let mut cut = text[..keep].to_owned();
            cut.push('…');
            cut
        }
    }
}

/// Like [`truncate`], but the limit is in bytes of UTF-8 (for limits counted in bytes), never
/// cutting a character in half.
pub fn truncate_bytes(text: &str, max_bytes: usize) -> String {
    if text.len() <= max_bytes {
        return text.to_owned();
    }
    let ellipsis = '…'.len_utf8();
    if max_bytes < ellipsis {
        return String::new();
    }
    let mut keep = max_bytes - ellipsis;
    while !text.is_char_boundary(keep) {
        keep -= 1;
    }
    let mut cut = text[..keep].to_owned();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Actor, EventSource, EventType};
    use serde_json::json;

    fn event() -> EventData {
        EventData {
            id: "evt_1".into(),
            event_type: EventType::SecretUpdated,
            source: EventSource::Secret,
            severity: Severity::Info,
            title: "Secret DATABASE_URL updated in Shop".into(),
            workspace: "acme".into(),
            project: Some("shop".into()),
            environments: vec!["dev".into(), "prod".into()],
            actor: Actor {
                id: "usr_1".into(),
                name: "alice".into(),
            },
            created_at: "2026-11-28T10:00:00Z".parse().unwrap(),
            payload: json!({
                "project": "shop",
                "key": "DATABASE_URL",
                "environments": {"dev": 4, "prod": 7},
                "noteChanged": true,
                "nested": {"deeper": {"x": 1}},
                "empty": "",
            }),
        }
    }

    #[test]
    fn facts_come_in_a_stable_order_and_say_the_scope_once() {
        let message = render(&event(), None);
        let names: Vec<&str> = message.facts.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "Event",
                "Workspace",
                "Project",
                "Environments",
                "By",
                "When",
                "key",
                "environments",
                "noteChanged"
            ]
        );
        assert_eq!(message.fact("Event"), Some("SECRET_UPDATED"));
        assert_eq!(message.fact("Environments"), Some("dev, prod"));
        assert_eq!(message.fact("environments"), Some("dev: 4, prod: 7"));
        assert_eq!(message.fact("When"), Some("2026-11-28 10:00:00 UTC"));
        assert_eq!(message.fact("noteChanged"), Some("yes"));
        assert_eq!(message.link, None);
        assert_eq!(message.timestamp, event().created_at);
    }

    #[test]
    fn summary_names_the_type_and_scope() {
        let mut e = event();
        assert_eq!(
            render(&e, None).summary,
            "SECRET_UPDATED in project shop, environments dev, prod"
        );
        e.environments = vec!["prod".into()];
        assert_eq!(
            render(&e, None).summary,
            "SECRET_UPDATED in project shop, environment prod"
        );
        e.event_type = EventType::WorkspaceUpdated;
        e.project = None;
        e.environments.clear();
        assert_eq!(
            render(&e, None).summary,
            "WORKSPACE_UPDATED in workspace acme"
        );
    }

    #[test]
    fn severity_becomes_colour_and_label() {
        let mut e = event();
        let info = render(&e, None);
        assert_eq!(
            (info.colour_hex().as_str(), info.severity_label),
            ("#3B82F6", "Info")
        );
        e.severity = Severity::Warn;
        let warn = render(&e, None);
        assert_eq!(
            (warn.colour_hex().as_str(), warn.severity_label),
            ("#F59E0B", "Warning")
        );
        e.severity = Severity::Error;
        let error = render(&e, None);
        assert_eq!((error.colour, error.severity_label), (0xEF4444, "Error"));
    }

    #[test]
    fn the_link_points_at_the_workspace_events_when_public() {
        let e = event();
        for base in ["https://kw.example.com", "https://kw.example.com/"] {
            assert_eq!(
                render(&e, Some(base)).link.as_deref(),
                Some("https://kw.example.com/api/v1/workspaces/acme/events")
            );
        }
        assert_eq!(render(&e, Some("  ")).link, None);
    }

    #[test]
    fn plain_text_holds_everything_in_order() {
        let text = render(&event(), Some("https://kw.example.com")).plain_text();
        assert!(text.starts_with("Secret DATABASE_URL updated in Shop\nSECRET_UPDATED in project"));
        assert!(text.contains("\nkey: DATABASE_URL"));
        assert!(text.ends_with("\n\nhttps://kw.example.com/api/v1/workspaces/acme/events"));
        assert!(text.find("By: alice").unwrap() < text.find("key: ").unwrap());
    }

    #[test]
    fn truncation_counts_characters_and_ends_with_an_ellipsis() {
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abcd", 4), "abcd");
        assert_eq!(truncate("abc", 4), "abc");
        assert_eq!(truncate("abc", 0), "");
        assert_eq!(truncate("abc", 1), "…");
        assert_eq!(truncate("", 0), "");
        assert_eq!(truncate("ééééé", 3), "éé…");
        assert_eq!(truncate("ééééé", 3).chars().count(), 3);
    }

    #[test]
    fn byte_truncation_never_splits_a_character() {
        assert_eq!(truncate_bytes("abcdef", 6), "abcdef");
        assert_eq!(truncate_bytes("abcdef", 5), "ab…");
        assert_eq!(truncate_bytes("éééé", 6), "é…");
        assert!(truncate_bytes("éééé", 6).len() <= 6);
        assert_eq!(truncate_bytes("abcdef", 2), "");
    }
}

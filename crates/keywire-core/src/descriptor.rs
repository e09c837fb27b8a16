//! The registry of integration types.

use serde::Serialize;
use serde_json::Value;

use crate::event::EventType;
use crate::integration::Integration;
use crate::metadata::{
    FieldError, FieldErrors, Metadata, parse_metadata, schema_of, secret_pointers,
};

/// Infrastructure action: write values that differ at the target.
pub const ACTION_UPSERT: &str = "upsert";
/// Infrastructure action: delete at the target the keys keywire wrote and no longer has.
pub const ACTION_DELETE: &str = "delete";
/// Infrastructure action: remove what keywire wrote when the integration is deleted.
pub const ACTION_CLEANUP_ON_REMOVE: &str = "cleanup_on_remove";

/// What an integration is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    /// Tells people (chat, email, webhooks).
    Communication,
    /// Pushes values into the systems that run code.
    Infrastructure,
}

/// How many environments an integration must be narrowed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EnvironmentRule {
    /// None, some or all.
    Any,
    /// At least one.
    AtLeastOne,
    /// Exactly one.
    ExactlyOne,
}

/// The scope an integration of this type must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScopeRule {
    /// Whether a project must be chosen.
    pub project_required: bool,
    /// How many of the project's environments must be chosen.
    pub environments: EnvironmentRule,
}

impl ScopeRule {
    /// Workspace-wide or narrowed, as the user likes.
    pub const ANY: ScopeRule = ScopeRule {
        project_required: false,
        environments: EnvironmentRule::Any,
    };
    /// A project and at least one of its environments.
    pub const PROJECT_ENVIRONMENTS: ScopeRule = ScopeRule {
        project_required: true,
        environments: EnvironmentRule::AtLeastOne,
    };
    /// A project and exactly one of its environments.
    pub const PROJECT_ONE_ENVIRONMENT: ScopeRule = ScopeRule {
        project_required: true,
        environments: EnvironmentRule::ExactlyOne,
    };
}

/// One integration type, as submitted to the registry by its crate:
///
/// ```text
/// keywire_core::inventory::submit! {
///     IntegrationDescriptor::new::<MyMetadata, MyIntegration>("mine", "Mine", "Posts events to Mine.")
/// }
/// ```
pub struct IntegrationDescriptor {
    /// Stable type id, `^[a-z][a-z0-9_]*$` (`discord`).
    pub type_id: &'static str,
    /// Display name (`Discord`).
    pub name: &'static str,
    /// One or two sentences for people choosing an integration.
    pub description: &'static str,
    /// Communication or infrastructure.
    pub category: Category,
    /// The event types an integration of this type may subscribe to.
    pub permitted_events: &'static [EventType],
    /// What it may do besides being told (`upsert`, `delete`, ...).
    pub permitted_actions: &'static [&'static str],
    /// Project and environment requirements.
    pub scope: ScopeRule,
    metadata_schema: fn() -> Value,
    example_metadata: fn() -> Value,
    build: fn(&Value) -> Result<Box<dyn Integration>, FieldErrors>,
}

impl IntegrationDescriptor {
    /// A communication integration permitted every event type, with any scope; adjust with the
    /// `const` builder methods below.
    pub const fn new<M, I>(
        type_id: &'static str,
        name: &'static str,
        description: &'static str,
    ) -> Self
    where
        M: Metadata,
        I: Integration + From<M>,
    {
        IntegrationDescriptor {
            type_id,
            name,
            description,
            category: Category::Communication,
            permitted_events: EventType::ALL,
            permitted_actions: &[],
            scope: ScopeRule::ANY,
            metadata_schema: schema_of::<M>,
            example_metadata: M::example,
            build: build_integration::<M, I>,
        }
    }

    /// Sets the category.
    pub const fn category(mut self, category: Category) -> Self {
        self.category = category;
        self
    }

    /// Sets the permitted event types.
    pub const fn events(mut self, events: &'static [EventType]) -> Self {
        self.permitted_events = events;
        self
    }

    /// Sets the permitted actions.
    pub const fn actions(mut self, actions: &'static [&'static str]) -> Self {
        self.permitted_actions = actions;
        self
    }

    /// Sets the scope rule.
    pub const fn scope(mut self, scope: ScopeRule) -> Self {
        self.scope = scope;
        self
    }

    /// The metadata JSON Schema (credential fields are `writeOnly`).
    pub fn metadata_schema(&self) -> Value {
        (self.metadata_schema)()
    }

    /// A valid example metadata value.
    pub fn example_metadata(&self) -> Value {
        (self.example_metadata)()
    }

    /// JSON pointers of the credential fields in the metadata.
    pub fn secret_fields(&self) -> Vec<String> {
        secret_pointers(&self.metadata_schema())
    }

    /// Parses metadata and builds the integration; errors point into the metadata object.
    pub fn build(&self, metadata: &Value) -> Result<Box<dyn Integration>, FieldErrors> {
        (self.build)(metadata)
    }
}

impl std::fmt::Debug for IntegrationDescriptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntegrationDescriptor")
            .field("type_id", &self.type_id)
            .finish_non_exhaustive()
    }
}

fn build_integration<M: Metadata, I: Integration + From<M>>(
    metadata: &Value,
) -> Result<Box<dyn Integration>, FieldErrors> {
    let parsed = parse_metadata::<M>(metadata)?;
    Ok(Box::new(I::from(parsed)))
}

inventory::collect!(IntegrationDescriptor);

/// Every registered integration type, sorted by type id (link order is not stable).
pub fn registry() -> Vec<&'static IntegrationDescriptor> {
    let mut all: Vec<_> = inventory::iter::<IntegrationDescriptor>
        .into_iter()
        .collect();
    all.sort_by_key(|d| d.type_id);
    all
}

/// The integration type with this id.
pub fn find(type_id: &str) -> Option<&'static IntegrationDescriptor> {
    inventory::iter::<IntegrationDescriptor>
        .into_iter()
        .find(|d| d.type_id == type_id)
}

/// Checks a requested `notifyOn` list against what the type permits. Returns the event types,
/// de-duplicated in request order; errors point at the offending entry (`/3`).
pub fn validate_permitted_events(
    descriptor: &IntegrationDescriptor,
    requested: &[String],
) -> Result<Vec<EventType>, FieldErrors> {
    let mut errors = Vec::new();
    let mut out = Vec::new();
    if requested.is_empty() {
        errors.push(FieldError::new("", "subscribe to at least one event type"));
    }
    for (i, name) in requested.iter().enumerate() {
        match EventType::parse(name) {
            None => errors.push(FieldError::new(
                format!("/{i}"),
                format!("`{}` is not an event type", clip(name)),
            )),
            Some(ty) if !descriptor.permitted_events.contains(&ty) => errors.push(FieldError::new(
                format!("/{i}"),
                format!(
                    "`{ty}` is not permitted for {} integrations",
                    descriptor.type_id
                ),
            )),
            Some(ty) if !out.contains(&ty) => out.push(ty),
            Some(_) => {}
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(FieldErrors { errors })
    }
}

/// Checks a requested `actions` list against what the type permits; de-duplicates.
pub fn validate_permitted_actions(
    descriptor: &IntegrationDescriptor,
    requested: &[String],
) -> Result<Vec<&'static str>, FieldErrors> {
    let mut errors = Vec::new();
    let mut out = Vec::new();
    for (i, name) in requested.iter().enumerate() {
        match descriptor
            .permitted_actions
            .iter()
            .find(|a| **a == name.as_str())
        {
            Some(action) if !out.contains(action) => out.push(*action),
            Some(_) => {}
            None => errors.push(FieldError::new(
                format!("/{i}"),
                if descriptor.permitted_actions.is_empty() {
                    format!("{} integrations take no actions", descriptor.type_id)
                } else {
                    format!(
                        "`{}` is not an action of {} integrations (permitted: {})",
                        clip(name),
                        descriptor.type_id,
                        descriptor.permitted_actions.join(", ")
                    )
                },
            )),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(FieldErrors { errors })
    }
}

/// Echoes at most 64 characters of user input in a message.
fn clip(s: &str) -> String {
    let mut clipped: String = s.chars().take(64).collect();
    if clipped.len() < s.len() {
        clipped.push('…');
    }
    clipped
}

/// The contract every registered descriptor must meet; each integration crate calls this from
/// a test. Returns every violation found, not just the first.
pub fn check_descriptor(type_id: &str) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    let matching = inventory::iter::<IntegrationDescriptor>
        .into_iter()
        .filter(|d| d.type_id == type_id)
        .count();
    if matching != 1 {
        return Err(vec![format!(
            "`{type_id}` is registered {matching} times, expected once"
        )]);
    }
    let Some(d) = find(type_id) else {
        unreachable!("counted above")
    };
    let valid_id = type_id.starts_with(|c: char| c.is_ascii_lowercase())
        && type_id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid_id {
        problems.push(format!(
            "type id `{type_id}` does not match ^[a-z][a-z0-9_]*$"
        ));
    }
    if d.name.trim().is_empty() {
        problems.push("name is empty".into());
    }
    if d.description.trim().len() < 10 || !d.description.ends_with('.') {
        problems
            .push("description must be a sentence (10+ characters, ending with a period)".into());
    }
    if d.permitted_events.is_empty() {
        problems.push("permits no event type".into());
    }
    let mut events = d.permitted_events.to_vec();
    events.sort();
    events.dedup();
    if events.len() != d.permitted_events.len() {
        problems.push("permitted events repeat".into());
    }
    for action in d.permitted_actions {
        let ok = !action.is_empty() && action.chars().all(|c| c.is_ascii_lowercase() || c == '_');
        if !ok {
            problems.push(format!("action `{action}` is not snake_case"));
        }
    }
    if d.category == Category::Infrastructure && !d.permitted_actions.contains(&ACTION_UPSERT) {
        problems.push("an infrastructure integration must permit `upsert`".into());
    }
    let schema = d.metadata_schema();
    match schema.get("properties").and_then(Value::as_object) {
        None => problems.push("metadata schema is not an object with properties".into()),
        Some(props) => {
            for (field, prop) in props {
                let described = prop
                    .get("description")
                    .and_then(Value::as_str)
                    .is_some_and(|s| !s.trim().is_empty());
                if !described {
                    problems.push(format!(
                        "metadata field `{field}` has no doc comment (schema description)"
                    ));
                }
            }
        }
    }
    let example = d.example_metadata();
    if let Err(errors) = d.build(&example) {
        problems.push(format!("example metadata does not build: {errors}"));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

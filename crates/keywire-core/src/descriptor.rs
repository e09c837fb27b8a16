//! The registry of integration types.

use serde::Serialize;
use serde_json::Value;

use crate::event::EventType;
use crate::integration::Integration;
use crate::metadata::{
    FieldError, FieldErrors, Metadata, Secret, parse_metadata, schema_of, secret_pointers,
    secret_values,
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
    complete: fn(&mut Value) -> Vec<(String, Secret)>,
    on_update: fn(Option<&Value>, &mut Value),
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
            complete: M::complete,
            on_update: M::on_update,
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

    /// Credential values in `metadata` (strings at credential pointers, and inside credential
    /// maps and lists), longest first: what to scrub from provider answers and errors.
    pub fn secret_values(&self, metadata: &Value) -> Vec<String> {
        secret_values(metadata, &self.metadata_schema())
    }

    /// Fills in the fields keywire generates for a new integration (see
    /// [`Metadata::complete`]); returns each generated credential with its pointer, to be shown
    /// once. Only a JSON object is completed.
    pub fn complete_metadata(&self, metadata: &mut Value) -> Vec<(String, Secret)> {
        if metadata.is_object() {
            (self.complete)(metadata)
        } else {
            Vec::new()
        }
    }

    /// Updates keywire-managed fields of metadata being written (see [`Metadata::on_update`]):
    /// `previous` is the stored metadata, `None` on create. Only a JSON object is touched.
    pub fn update_metadata(&self, previous: Option<&Value>, metadata: &mut Value) {
        if metadata.is_object() {
            (self.on_update)(previous, metadata);
        }
    }

    /// Parses metadata and builds the integration; errors point into the metadata object.
    /// Fields the type generates at creation ([`Metadata::complete`]) may be absent: they are
    /// filled in on a copy with throwaway values (what a dry run of a create body needs).
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
    let mut completed = metadata.clone();
    if completed.is_object() {
        M::complete(&mut completed);
    }
    let parsed = parse_metadata::<M>(&completed)?;
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

/// The generation hook's contract: nothing to generate for the (complete) example; with the
/// credential fields left out, whatever is generated is a credential field, is filled in, builds,
/// and is not generated again.
fn check_generated(d: &IntegrationDescriptor, example: &Value, problems: &mut Vec<String>) {
    let mut complete = example.clone();
    if !d.complete_metadata(&mut complete).is_empty() || complete != *example {
        problems.push("complete() changes the example metadata, which is already complete".into());
    }
    let secrets = d.secret_fields();
    let mut bare = example.clone();
    if let Some(map) = bare.as_object_mut() {
        map.retain(|name, _| {
            !secrets.contains(&format!("/{}", name.replace('~', "~0").replace('/', "~1")))
        });
    }
    let generated = d.complete_metadata(&mut bare);
    for (pointer, _) in &generated {
        if !secrets.contains(pointer) {
            problems.push(format!(
                "complete() generated `{pointer}`, which is not a credential field: generated values are shown once and must be write-only"
            ));
        }
        if bare.pointer(pointer).is_none() {
            problems.push(format!(
                "complete() reported `{pointer}` but did not fill it in"
            ));
        }
    }
    if !generated.is_empty() {
        // Put back the credentials that were not generated, then the whole must build.
        if let (Some(map), Some(original)) = (bare.as_object_mut(), example.as_object()) {
            for (name, value) in original {
                map.entry(name.clone()).or_insert_with(|| value.clone());
            }
        }
        if let Err(errors) = d.build(&bare) {
            problems.push(format!("completed metadata does not build: {errors}"));
        }
        if !d.complete_metadata(&mut bare).is_empty() {
            problems.push("complete() generates again what it generated before".into());
        }
    }
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
    check_generated(d, &example, &mut problems);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integration::{Context, IntegrationError};
    use schemars::JsonSchema;
    use serde::Deserialize;
    use serde_json::json;

    /// Metadata with a key that keywire generates.
    #[derive(Debug, Deserialize, JsonSchema)]
    #[expect(dead_code, reason = "only parsed")]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    struct Keyed {
        /// Where.
        url: String,
        /// The generated key.
        key: Secret,
        /// Keys replaced, managed by keywire.
        #[serde(default)]
        old_keys: Vec<String>,
    }

    impl Metadata for Keyed {
        fn example() -> Value {
            json!({"url": "https://x.example", "key": "k1"})
        }
        fn complete(metadata: &mut Value) -> Vec<(String, Secret)> {
            if metadata.get("key").is_some_and(|k| !k.is_null()) {
                return Vec::new();
            }
            metadata["key"] = json!("generated");
            vec![("/key".into(), Secret::new("generated"))]
        }
        fn on_update(previous: Option<&Value>, metadata: &mut Value) {
            let old = previous.and_then(|p| p.get("key")).cloned();
            metadata["oldKeys"] = match old {
                Some(old) if Some(&old) != metadata.get("key") => json!([old]),
                _ => json!([]),
            };
        }
    }

    struct Nothing;

    impl From<Keyed> for Nothing {
        fn from(_: Keyed) -> Self {
            Nothing
        }
    }

    #[crate::async_trait]
    impl Integration for Nothing {
        async fn validate(&self, _: &Context) -> Result<(), IntegrationError> {
            Ok(())
        }
    }

    const KEYED: IntegrationDescriptor =
        IntegrationDescriptor::new::<Keyed, Nothing>("keyed", "Keyed", "Has a generated key.");

    #[test]
    fn generated_fields_are_filled_once_and_build_may_do_without_them() {
        let mut metadata = json!({"url": "https://x.example"});
        let generated = KEYED.complete_metadata(&mut metadata);
        assert_eq!(generated.len(), 1);
        assert_eq!(generated[0].0, "/key");
        assert_eq!(generated[0].1.expose(), "generated");
        assert_eq!(metadata["key"], "generated");
        assert!(KEYED.complete_metadata(&mut metadata).is_empty());
        // A dry run of a create body without the key builds; the body itself is not changed.
        let bare = json!({"url": "https://x.example"});
        assert!(KEYED.build(&bare).is_ok());
        assert_eq!(bare, json!({"url": "https://x.example"}));
        // Only objects are completed.
        let mut not_object = json!("x");
        assert!(KEYED.complete_metadata(&mut not_object).is_empty());
        let mut problems = Vec::new();
        check_generated(&KEYED, &Keyed::example(), &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn updates_see_the_stored_metadata() {
        let mut new = json!({"url": "https://x.example", "key": "k2"});
        KEYED.update_metadata(
            Some(&json!({"url": "https://x.example", "key": "k1"})),
            &mut new,
        );
        assert_eq!(new["oldKeys"], json!(["k1"]));
        let mut created = json!({"url": "https://x.example", "key": "k1", "oldKeys": ["forged"]});
        KEYED.update_metadata(None, &mut created);
        assert_eq!(created["oldKeys"], json!([]));
    }

    /// A type that generates a field that is not a credential breaks the contract.
    #[derive(Debug, Deserialize, JsonSchema)]
    #[expect(dead_code, reason = "only parsed")]
    #[serde(deny_unknown_fields)]
    struct Leaky {
        /// Generated, but shown.
        #[serde(default)]
        token: Option<String>,
    }

    impl Metadata for Leaky {
        fn example() -> Value {
            json!({"token": "t"})
        }
        fn complete(metadata: &mut Value) -> Vec<(String, Secret)> {
            metadata["token"] = json!("fresh");
            vec![("/token".into(), Secret::new("fresh"))]
        }
    }

    impl From<Leaky> for Nothing {
        fn from(_: Leaky) -> Self {
            Nothing
        }
    }

    #[test]
    fn generating_a_non_credential_or_changing_the_example_is_a_contract_violation() {
        const LEAKY: IntegrationDescriptor =
            IntegrationDescriptor::new::<Leaky, Nothing>("leaky", "Leaky", "Leaks a token.");
        let mut problems = Vec::new();
        check_generated(&LEAKY, &Leaky::example(), &mut problems);
        assert!(
            problems.iter().any(|p| p.contains("changes the example")),
            "{problems:?}"
        );
        let mut problems = Vec::new();
        check_generated(&LEAKY, &json!({}), &mut problems);
        assert!(
            problems
                .iter()
                .any(|p| p.contains("not a credential field")),
            "{problems:?}"
        );
    }
}

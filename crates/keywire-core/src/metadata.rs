//! Typed integration metadata: parsing with JSON-pointer errors, credential fields, schemas.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, SchemaGenerator, json_schema};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use zeroize::Zeroize;

/// The metadata of one integration type: a struct that deserializes from the API's `metadata`
/// object (use `#[serde(deny_unknown_fields, rename_all = "camelCase")]`) and documents its
/// fields with doc comments, which become the JSON Schema descriptions.
pub trait Metadata: DeserializeOwned + JsonSchema + Send + Sync + 'static {
    /// A valid example value, shown by the API and docs and checked by the contract test.
    fn example() -> Value;

    /// Checks beyond types (URL hosts, lengths...). Errors name the field by JSON pointer
    /// relative to the metadata object and never echo a credential.
    fn check(&self) -> Result<(), FieldErrors> {
        Ok(())
    }

    /// Fills in what keywire generates for a new integration when the user left it out (a
    /// webhook's signing secret), before the metadata is checked and stored. Returns each
    /// generated credential with its JSON pointer, so the create answer can show it once; the
    /// pointer must name a credential (`Secret`) field, which no later answer shows again.
    /// Must only fill in absent fields (calling it twice generates nothing the second time).
    /// The default generates nothing.
    ///
    /// [`IntegrationDescriptor::build`](crate::IntegrationDescriptor::build) also runs it on a
    /// copy, so a dry run of a create body that leaves such a field out builds (with a throwaway
    /// value).
    fn complete(metadata: &mut Value) -> Vec<(String, Secret)> {
        let _ = metadata;
        Vec::new()
    }

    /// Keeps keywire-managed fields up to date when metadata is written: `previous` is the
    /// stored metadata on an update and `None` on create; `metadata` is the new value (after
    /// [`Metadata::complete`]), which this may change (a webhook moves a replaced signing secret
    /// into its list of previous secrets, valid for another 24 hours). The result is checked
    /// before it is stored. The default changes nothing.
    fn on_update(previous: Option<&Value>, metadata: &mut Value) {
        let _ = (previous, metadata);
    }
}

/// A credential inside metadata: deserializes from a string, is `writeOnly` in the JSON Schema,
/// prints as `***`, is never serialized, and is wiped from memory when dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The clear value, for the one place that needs it (a request header, a URL).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret)
    }
}

impl JsonSchema for Secret {
    fn schema_name() -> Cow<'static, str> {
        "Secret".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> schemars::Schema {
        json_schema!({ "type": "string", "minLength": 1, "writeOnly": true })
    }
}

/// One invalid field: where (a JSON pointer) and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    /// RFC 6901 pointer to the field, e.g. `/webhookUrl`.
    pub pointer: String,
    /// What is wrong, in words a user understands. Never contains a credential.
    pub detail: String,
}

impl FieldError {
    /// A field error at `pointer`.
    pub fn new(pointer: impl Into<String>, detail: impl Into<String>) -> Self {
        FieldError {
            pointer: pointer.into(),
            detail: detail.into(),
        }
    }

    /// The same error with `prefix` put before its pointer (`/metadata` + `/webhookUrl`).
    pub fn prefixed(mut self, prefix: &str) -> Self {
        self.pointer = format!("{prefix}{}", self.pointer);
        self
    }
}

/// One or more invalid fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldErrors {
    /// The errors, at least one.
    pub errors: Vec<FieldError>,
}

impl FieldErrors {
    /// A single error.
    pub fn one(pointer: impl Into<String>, detail: impl Into<String>) -> Self {
        FieldErrors {
            errors: vec![FieldError::new(pointer, detail)],
        }
    }

    /// All errors with `prefix` put before their pointers.
    pub fn prefixed(self, prefix: &str) -> Self {
        FieldErrors {
            errors: self
                .errors
                .into_iter()
                .map(|e| e.prefixed(prefix))
                .collect(),
        }
    }
}

impl From<FieldError> for FieldErrors {
    fn from(error: FieldError) -> Self {
        FieldErrors {
            errors: vec![error],
        }
    }
}

impl fmt::Display for FieldErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            let at = if e.pointer.is_empty() {
                "/"
            } else {
                &e.pointer
            };
            write!(f, "{at}: {}", e.detail)?;
        }
        Ok(())
    }
}

impl std::error::Error for FieldErrors {}

/// The JSON Schema of a metadata type, as served by the API.
pub fn schema_of<M: JsonSchema>() -> Value {
    let schema = SchemaGenerator::default().into_root_schema_for::<M>();
    schema.to_value()
}

/// Parses metadata, then runs [`Metadata::check`]. Errors carry the JSON pointer of the bad
/// field (relative to the metadata object); messages about credential fields never echo what
/// was sent.
pub fn parse_metadata<M: Metadata>(value: &Value) -> Result<M, FieldErrors> {
    // serde reads a struct from an array too; metadata is an object, always.
    if !value.is_object() {
        return Err(FieldErrors::one("", "must be a JSON object"));
    }
    let parsed: M = deserialize_pointed(value).map_err(|mut err| {
        let secret = secret_pointers(&schema_of::<M>());
        // A credential field, or something inside one (a value of a credential map).
        let in_secret = secret.iter().any(|s| {
            err.pointer == *s
                || err
                    .pointer
                    .strip_prefix(s.as_str())
                    .is_some_and(|rest| rest.starts_with('/'))
        });
        if in_secret {
            "invalid credential: expected a non-empty string".clone_into(&mut err.detail);
        }
        FieldErrors::from(err)
    })?;
    parsed.check()?;
    Ok(parsed)
}

/// Deserializes a JSON value into `T`; an error carries the JSON pointer of the failing field
/// and serde's message (which may quote the value: redact it for credential fields).
pub fn deserialize_pointed<T: DeserializeOwned>(value: &Value) -> Result<T, FieldError> {
    serde_path_to_error::deserialize(value).map_err(|err| {
        let mut pointer = String::new();
        for segment in err.path().iter() {
            use serde_path_to_error::Segment;
            match segment {
                Segment::Seq { index } => pointer.push_str(&format!("/{index}")),
                Segment::Map { key } => push_pointer(&mut pointer, key),
                Segment::Enum { variant } => push_pointer(&mut pointer, variant),
                Segment::Unknown => {}
            }
        }
        let message = err.inner().to_string();
        // serde reports a missing field one level above it: point at the field itself.
        if let Some(rest) = message.strip_prefix("missing field `")
            && let Some(end) = rest.find('`')
        {
            push_pointer(&mut pointer, &rest[..end]);
        }
        FieldError::new(pointer, message)
    })
}

fn push_pointer(pointer: &mut String, key: &str) {
    pointer.push('/');
    pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
}

/// The JSON pointers of every credential (`writeOnly`) field a metadata schema declares,
/// including fields of nested objects.
pub fn secret_pointers(schema: &Value) -> Vec<String> {
    let mut out = Vec::new();
    collect_secrets(schema, schema, "", &mut out, 0);
    out.sort();
    out.dedup();
    out
}

fn collect_secrets(root: &Value, node: &Value, at: &str, out: &mut Vec<String>, depth: u8) {
    if depth > 16 {
        return;
    }
    let node = resolve_ref(root, node);
    if node.get("writeOnly").and_then(Value::as_bool) == Some(true) {
        out.push(at.to_owned());
        return;
    }
    if let Some(props) = node.get("properties").and_then(Value::as_object) {
        for (name, sub) in props {
            let mut child = at.to_owned();
            push_pointer(&mut child, name);
            collect_secrets(root, sub, &child, out, depth + 1);
        }
    }
    // `Option<T>` of a struct is `anyOf: [T, null]`: look inside alternatives too.
    for keyword in ["anyOf", "oneOf", "allOf"] {
        if let Some(alternatives) = node.get(keyword).and_then(Value::as_array) {
            for alternative in alternatives {
                collect_secrets(root, alternative, at, out, depth + 1);
            }
        }
    }
}

fn resolve_ref<'a>(root: &'a Value, node: &'a Value) -> &'a Value {
    match node.get("$ref").and_then(Value::as_str) {
        Some(reference) => reference
            .strip_prefix('#')
            .and_then(|pointer| root.pointer(pointer))
            .unwrap_or(node),
        None => node,
    }
}

/// Every credential value in a metadata value (per the type's schema): the strings at the
/// credential pointers and, for a credential field that holds an object or array (a map of
/// header values, a list of previous secrets), every string inside it. For scrubbing text.
pub fn secret_values(metadata: &Value, schema: &Value) -> Vec<String> {
    fn strings(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::String(s) if !s.is_empty() => out.push(s.clone()),
            Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
            Value::Object(map) => map.values().for_each(|v| strings(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for pointer in secret_pointers(schema) {
        if let Some(value) = metadata.pointer(&pointer) {
            strings(value, &mut out);
        }
    }
    out.sort_by_key(|s| std::cmp::Reverse(s.len()));
    out.dedup();
    out
}

/// Removes every credential field (per the type's schema) from a metadata value, so it can be
/// returned by the API or written to a log.
pub fn redact_secrets(metadata: &mut Value, schema: &Value) {
    for pointer in secret_pointers(schema) {
        let (parent, key) = match pointer.rfind('/') {
            Some(i) => (&pointer[..i], &pointer[i + 1..]),
            None => continue,
        };
        let key = key.replace("~1", "/").replace("~0", "~");
        if let Some(Value::Object(map)) = metadata.pointer_mut(parent) {
            map.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Test metadata.
    #[derive(Debug, Deserialize, JsonSchema)]
    #[expect(dead_code, reason = "only parsed, to test errors")]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    struct Sample {
        /// The token.
        api_token: Secret,
        /// Where to post.
        channel: String,
        /// Nested settings.
        #[serde(default)]
        nested: Option<Nested>,
        /// Retries.
        #[serde(default)]
        tries: Vec<u8>,
    }

    /// Nested settings.
    #[derive(Debug, Deserialize, JsonSchema)]
    #[expect(dead_code, reason = "only parsed, to test errors")]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    struct Nested {
        /// A nested credential.
        password: Secret,
    }

    impl Metadata for Sample {
        fn example() -> Value {
            json!({"apiToken": "x", "channel": "general"})
        }
        fn check(&self) -> Result<(), FieldErrors> {
            if self.channel.is_empty() {
                return Err(FieldErrors::one("/channel", "must not be empty"));
            }
            Ok(())
        }
    }

    fn pointer_of(value: Value) -> String {
        parse_metadata::<Sample>(&value).unwrap_err().errors[0]
            .pointer
            .clone()
    }

    #[test]
    fn errors_point_at_the_bad_field() {
        assert_eq!(pointer_of(json!({"apiToken": "x"})), "/channel");
        assert_eq!(
            pointer_of(json!({"apiToken": "x", "channel": "c", "bogus": 1})),
            "/bogus"
        );
        assert_eq!(
            pointer_of(json!({"apiToken": "x", "channel": 4})),
            "/channel"
        );
        assert_eq!(
            pointer_of(json!({"apiToken": "x", "channel": "c", "tries": [1, 300]})),
            "/tries/1"
        );
        assert_eq!(
            pointer_of(json!({"apiToken": "x", "channel": "c", "nested": {"password": 1}})),
            "/nested/password"
        );
        assert_eq!(
            pointer_of(json!({"apiToken": "x", "channel": ""})),
            "/channel"
        );
        assert_eq!(pointer_of(json!("not an object")), "");
    }

    #[test]
    fn errors_about_credentials_do_not_echo_them() {
        let err =
            parse_metadata::<Sample>(&json!({"apiToken": 982451653, "channel": "c"})).unwrap_err();
        assert_eq!(err.errors[0].pointer, "/apiToken");
        assert!(!err.to_string().contains("982451653"), "{err}");
    }

    #[test]
    fn credentials_are_write_only_and_redacted() {
        let schema = schema_of::<Sample>();
        assert_eq!(schema["properties"]["apiToken"]["writeOnly"], json!(true));
        assert_eq!(
            schema["properties"]["channel"]["description"],
            json!("Where to post.")
        );
        assert_eq!(
            secret_pointers(&schema),
            vec!["/apiToken", "/nested/password"]
        );
        let mut value =
            json!({"apiToken": "s3cr3t", "channel": "c", "nested": {"password": "p4ss"}});
        redact_secrets(&mut value, &schema);
        assert_eq!(value, json!({"channel": "c", "nested": {}}));
    }

    /// A map whose values are credentials: the whole field is write-only.
    #[derive(Debug, Deserialize)]
    #[expect(dead_code, reason = "only parsed, to test errors")]
    struct CredentialMap(std::collections::BTreeMap<String, Secret>);

    impl JsonSchema for CredentialMap {
        fn schema_name() -> Cow<'static, str> {
            "CredentialMap".into()
        }
        fn inline_schema() -> bool {
            true
        }
        fn json_schema(_: &mut SchemaGenerator) -> schemars::Schema {
            json_schema!({"type": "object", "additionalProperties": {"type": "string"}, "writeOnly": true})
        }
    }

    /// Test metadata with a credential map and a generated credential.
    #[derive(Debug, Deserialize, JsonSchema)]
    #[expect(dead_code, reason = "only parsed, to test errors")]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    struct WithMap {
        /// Header values.
        #[serde(default)]
        headers: Option<CredentialMap>,
        /// A generated key.
        key: Secret,
    }

    impl Metadata for WithMap {
        fn example() -> Value {
            json!({"key": "k"})
        }
    }

    #[test]
    fn errors_inside_credential_maps_do_not_echo_values() {
        let schema = schema_of::<WithMap>();
        assert_eq!(secret_pointers(&schema), vec!["/headers", "/key"]);
        let err =
            parse_metadata::<WithMap>(&json!({"key": "k", "headers": {"X-Token": 982451653}}))
                .unwrap_err();
        assert_eq!(err.errors[0].pointer, "/headers/X-Token");
        assert!(!err.to_string().contains("982451653"), "{err}");
    }

    #[test]
    fn secret_values_collect_strings_inside_credential_fields() {
        let schema = schema_of::<WithMap>();
        let metadata = json!({"key": "the-key", "headers": {"A": "short", "B": "a-longer-value"}});
        assert_eq!(
            secret_values(&metadata, &schema),
            vec!["a-longer-value", "the-key", "short"]
        );
        let mut shown = metadata.clone();
        redact_secrets(&mut shown, &schema);
        assert_eq!(shown, json!({}));
    }

    #[test]
    fn hooks_default_to_doing_nothing() {
        let mut value = json!({"key": "k"});
        assert!(WithMap::complete(&mut value).is_empty());
        WithMap::on_update(Some(&json!({"key": "old"})), &mut value);
        assert_eq!(value, json!({"key": "k"}));
    }

    #[test]
    fn secrets_do_not_print() {
        let parsed =
            parse_metadata::<Sample>(&json!({"apiToken": "s3cr3t", "channel": "c"})).unwrap();
        assert!(!format!("{parsed:?}").contains("s3cr3t"));
        assert_eq!(parsed.api_token.expose(), "s3cr3t");
    }
}

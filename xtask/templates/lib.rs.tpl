#![doc = include_str!("../README.md")]

use keywire_core::schemars::JsonSchema;
use keywire_core::{
{{imports}}
};
use serde::Deserialize;
use serde_json::{Value, json};

/// Metadata of a {{Name}} integration: what a user fills in to configure one. Each field's doc
/// comment becomes its description in the JSON Schema the API serves and in the generated
/// `docs/integrations/{{name}}.md`.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "keywire_core::schemars")]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct {{Struct}}Metadata {
    /// The base URL of the {{Name}} API (`https://…`).
    pub base_url: String,
    /// The API token {{Name}} issued for keywire. A credential: write-only, never returned by
    /// the API or written to a log.
    pub api_token: Secret,
}

impl Metadata for {{Struct}}Metadata {
    fn example() -> Value {
        json!({
            "baseUrl": "https://api.{{host}}.example",
            "apiToken": "example-token"
        })
    }
}

/// A configured {{Name}} integration.
pub struct {{Struct}} {
    /// The metadata it was configured with (already parsed and checked).
    pub metadata: {{Struct}}Metadata,
}

impl From<{{Struct}}Metadata> for {{Struct}} {
    fn from(metadata: {{Struct}}Metadata) -> Self {
        {{Struct}} { metadata }
    }
}

#[async_trait]
impl Integration for {{Struct}} {
    async fn validate(&self, ctx: &Context) -> Result<(), IntegrationError> {
        let _ = ctx;
        Err(IntegrationError::Unsupported(
            "{{name}}: not yet implemented — fill in validate() in {{dir}}/src/lib.rs".into(),
        ))
    }

    async fn emit(
        &self,
        ctx: &Context,
        delivery: Delivery<'_>,
    ) -> Result<Outcome, IntegrationError> {
        let _ = (ctx, delivery);
        Err(IntegrationError::Unsupported(
            "{{name}}: not yet implemented — fill in emit() in {{dir}}/src/lib.rs".into(),
        ))
    }
}

inventory::submit! {
    IntegrationDescriptor::new::<{{Struct}}Metadata, {{Struct}}>(
        "{{name}}",
        "{{Name}}",
        "{{description}}",
    )
{{builder}}
}

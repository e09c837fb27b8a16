#![doc = include_str!("../README.md")]

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{KeyInit, Mac};
use keywire_core::schemars::JsonSchema;
use keywire_core::{
    Context, Delivery, FieldErrors, Integration, IntegrationDescriptor, IntegrationError, Metadata,
    Outcome, Secret, async_trait, inventory,
};
use serde::Deserialize;
use serde_json::{Value, json};

/// Metadata of a webhook integration.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "keywire_core::schemars")]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WebhookMetadata {
    /// The URL that receives a POST for every event (http or https).
    pub url: String,
    /// The signing secret, `whsec_` followed by base64 of 24 to 64 random bytes. Receivers
    /// verify the `webhook-signature` header with it.
    pub signing_secret: Secret,
}

impl Metadata for WebhookMetadata {
    fn example() -> Value {
        json!({
            "url": "https://hooks.example.com/keywire",
            "signingSecret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
        })
    }

    fn check(&self) -> Result<(), FieldErrors> {
        let url = keywire_core::Url::parse(&self.url)
            .map_err(|_| FieldErrors::one("/url", "must be an absolute URL"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(FieldErrors::one("/url", "must be an http or https URL"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(FieldErrors::one(
                "/url",
                "must not contain a user name or password",
            ));
        }
        signing_key(&self.signing_secret).map(|_| ())
    }
}

/// The HMAC key inside a `whsec_` secret.
fn signing_key(secret: &Secret) -> Result<Vec<u8>, FieldErrors> {
    let bad = || {
        FieldErrors::one(
            "/signingSecret",
            "must be `whsec_` followed by base64 of 24 to 64 bytes",
        )
    };
    let encoded = secret.expose().strip_prefix("whsec_").ok_or_else(bad)?;
    let key = STANDARD.decode(encoded).map_err(|_| bad())?;
    if (24..=64).contains(&key.len()) {
        Ok(key)
    } else {
        Err(bad())
    }
}

/// The Standard Webhooks signature of one message: `v1,<base64 HMAC-SHA256(id.timestamp.body)>`.
pub fn sign(key: &[u8], message_id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(message_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// A configured webhook.
pub struct Webhook {
    url: String,
    key: Vec<u8>,
}

impl From<WebhookMetadata> for Webhook {
    fn from(metadata: WebhookMetadata) -> Self {
        // `check` has validated the secret before this runs.
        let key = signing_key(&metadata.signing_secret).unwrap_or_default();
        Webhook {
            url: metadata.url,
            key,
        }
    }
}

impl Webhook {
    async fn post(
        &self,
        ctx: &Context,
        message_id: &str,
        envelope: &Value,
    ) -> Result<Outcome, IntegrationError> {
        let body = serde_json::to_vec(envelope).expect("JSON values serialize");
        let timestamp = chrono::Utc::now().timestamp();
        let request = ctx
            .http
            .request(keywire_core::Method::POST, &self.url)?
            .header("content-type", "application/json")
            .header("webhook-id", message_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header(
                "webhook-signature",
                sign(&self.key, message_id, timestamp, &body),
            )
            .body(body);
        let reply = ctx.http.send(request).await?.error_for_status()?;
        Ok(Outcome {
            status: Some(reply.status.as_u16()),
            excerpt: reply.excerpt(),
        })
    }
}

#[async_trait]
impl Integration for Webhook {
    async fn validate(&self, ctx: &Context) -> Result<(), IntegrationError> {
        let envelope = json!({
            "type": "keywire.ping",
            "timestamp": chrono::Utc::now().to_rfc3339(),
            "data": {}
        });
        let id = format!("ping_{}", chrono::Utc::now().timestamp_micros());
        self.post(ctx, &id, &envelope).await.map(|_| ())
    }

    async fn emit(
        &self,
        ctx: &Context,
        delivery: Delivery<'_>,
    ) -> Result<Outcome, IntegrationError> {
        let envelope = json!({
            "type": delivery.event.event_type,
            "timestamp": delivery.event.created_at.to_rfc3339(),
            "data": delivery.event,
        });
        self.post(ctx, delivery.message_id, &envelope).await
    }
}

inventory::submit! {
    IntegrationDescriptor::new::<WebhookMetadata, Webhook>(
        "webhook",
        "Webhook",
        "Posts every subscribed event as JSON to your URL, signed per Standard Webhooks.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_the_standard_webhooks_test_vector() {
        let key = signing_key(&Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")).unwrap();
        let signature = sign(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }
}

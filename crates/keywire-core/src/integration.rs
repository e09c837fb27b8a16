//! What a configured integration does.

use std::time::Duration;

use async_trait::async_trait;

use crate::event::EventData;
use crate::http::{OutboundClient, OutboundError};

/// What an integration gets from keywire when it runs.
#[derive(Clone, Debug)]
pub struct Context {
    /// The one outbound HTTP client (guarded, with timeouts).
    pub http: OutboundClient,
    /// Where keywire is reachable by people, for links in messages.
    pub public_url: Option<String>,
}

/// One delivery of one event to one integration.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    /// Stable across retries: use it as the message id / idempotency key.
    pub message_id: &'a str,
    /// 1 for the first try.
    pub attempt: u32,
    /// The event.
    pub event: &'a EventData,
}

/// What a successful call returned, for the run log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The provider's HTTP status, when there was one.
    pub status: Option<u16>,
    /// A short excerpt of the provider's answer, free of credentials.
    pub excerpt: String,
}

/// Why an integration call failed, and whether trying again may help.
#[derive(Debug, thiserror::Error)]
pub enum IntegrationError {
    /// The outbound call failed.
    #[error(transparent)]
    Http(#[from] OutboundError),
    /// The provider answered, but not with what was asked (bad shape, refused, not found).
    #[error("{message}")]
    Provider {
        /// What went wrong, free of credentials.
        message: String,
        /// Whether a retry may succeed.
        retryable: bool,
        /// The provider's HTTP status.
        status: Option<u16>,
    },
    /// This integration type does not do that (e.g. `emit` on an infrastructure type).
    #[error("{0}")]
    Unsupported(String),
}

impl IntegrationError {
    /// Whether a later attempt may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            IntegrationError::Http(e) => e.is_retryable(),
            IntegrationError::Provider { retryable, .. } => *retryable,
            IntegrationError::Unsupported(_) => false,
        }
    }

    /// How long the provider asked us to wait, when it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            IntegrationError::Http(e) => e.retry_after(),
            _ => None,
        }
    }

    /// The provider's HTTP status, when there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            IntegrationError::Http(e) => e.status(),
            IntegrationError::Provider { status, .. } => *status,
            IntegrationError::Unsupported(_) => None,
        }
    }
}

/// A configured integration, built from its metadata by its descriptor.
#[async_trait]
pub trait Integration: Send + Sync + 'static {
    /// A live check of the credentials and target, used by the dry-run endpoint and on create.
    /// It must not post a visible message.
    async fn validate(&self, ctx: &Context) -> Result<(), IntegrationError>;

    /// Renders the event and sends it (communication integrations).
    async fn emit(
        &self,
        ctx: &Context,
        delivery: Delivery<'_>,
    ) -> Result<Outcome, IntegrationError> {
        let _ = (ctx, delivery);
        Err(IntegrationError::Unsupported(
            "this integration does not send messages".into(),
        ))
    }

    /// The infrastructure half: how to read, write and delete keys at the target. Core's sync
    /// engine ([`crate::sync`]) computes what to write; `None` for communication types.
    fn sync_target(&self) -> Option<&dyn crate::sync::SyncTarget> {
        None
    }

    /// Removes what the integration wrote at the target, when it is deleted with cleanup
    /// (infrastructure types need not: core deletes every key it recorded through
    /// [`Integration::sync_target`]).
    async fn remove(&self, ctx: &Context) -> Result<(), IntegrationError> {
        let _ = ctx;
        Ok(())
    }
}

//! The AWS SDK's HTTP client, made of keywire's: every request the SDK signs is sent by the
//! context's [`OutboundClient`] (its timeouts, user agent, private-address guard and origin
//! overrides), so the SDK brings no HTTP or TLS stack of its own.

use aws_sdk_lambda::config::RuntimeComponents;
use aws_sdk_lambda::config::http::{HttpRequest, HttpResponse};
use aws_sdk_lambda::primitives::SdkBody;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::http::StatusCode;
use keywire_core::{Method, OutboundClient, OutboundError};

/// Headers the HTTP client sets from the URL and body itself.
const DERIVED_HEADERS: &[&str] = &["host", "content-length"];

/// An [`HttpClient`] for the AWS SDK that sends through keywire's [`OutboundClient`].
#[derive(Debug, Clone)]
pub(crate) struct KeywireHttpClient {
    http: OutboundClient,
}

impl KeywireHttpClient {
    pub(crate) fn new(http: OutboundClient) -> Self {
        KeywireHttpClient { http }
    }
}

impl HttpClient for KeywireHttpClient {
    fn http_connector(
        &self,
        _settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        // Timeouts are the OutboundClient's (the keywire policy), not the SDK's settings.
        SharedHttpConnector::new(self.clone())
    }
}

fn connector_error(error: OutboundError) -> ConnectorError {
    match error {
        OutboundError::Timeout => ConnectorError::timeout(Box::new(error)),
        OutboundError::Network(_) => ConnectorError::io(Box::new(error)),
        _ => ConnectorError::user(Box::new(error)),
    }
}

impl HttpConnector for KeywireHttpClient {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let http = self.http.clone();
        HttpConnectorFuture::new(async move {
            let method = Method::from_bytes(request.method().as_bytes()).map_err(|_| {
                connector_error(OutboundError::Client("unsupported HTTP method".into()))
            })?;
            let mut builder = http
                .request(method, request.uri())
                .map_err(connector_error)?;
            for (name, value) in request.headers() {
                if !DERIVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                    builder = builder.header(name, value);
                }
            }
            let body = request.body().bytes().ok_or_else(|| {
                connector_error(OutboundError::Client(
                    "streaming request bodies are not supported".into(),
                ))
            })?;
            builder = builder.body(body.to_vec());
            let reply = http.send(builder).await.map_err(connector_error)?;
            let status = StatusCode::try_from(reply.status.as_u16()).map_err(|_| {
                connector_error(OutboundError::Client("invalid HTTP status".into()))
            })?;
            // A boxed body, not `SdkBody::from(bytes)`: the SDK logs the response at TRACE
            // level, and an in-memory body's `Debug` would print every variable's value.
            let body =
                SdkBody::from_body_1_x(http_body_util::Full::new(bytes::Bytes::from(reply.body)));
            let mut response = HttpResponse::new(status, body);
            for (name, value) in &reply.headers {
                if let Ok(value) = value.to_str() {
                    response
                        .headers_mut()
                        .append(name.as_str().to_owned(), value.to_owned());
                }
            }
            Ok(response)
        })
    }
}

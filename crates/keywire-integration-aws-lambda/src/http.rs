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
            // The SDK also logs at TRACE the error it parses from a failed response, message
            // included: Lambda's 4 KB error quotes every variable, so that part goes first.
            let body = if reply.status.is_success() {
                reply.body
            } else {
                omit_variables(reply.body)
            };
            // A boxed body, not `SdkBody::from(bytes)`: the SDK logs the response at TRACE
            // level, and an in-memory body's `Debug` would print every variable's value.
            let body = SdkBody::from_body_1_x(http_body_util::Full::new(bytes::Bytes::from(body)));
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

/// The phrase after which Lambda's size error quotes the variables it measured.
const MEASURED: &str = "String measured";

/// An error body without the variables Lambda quotes after [`MEASURED`]: the string fields of
/// a JSON body are cut there (so the error still parses, code and all); a body that is not JSON
/// is cut there.
fn omit_variables(body: Vec<u8>) -> Vec<u8> {
    let Some(at) = body
        .windows(MEASURED.len())
        .position(|w| w == MEASURED.as_bytes())
    else {
        return body;
    };
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(&body) else {
        let mut cut = body[..at].to_vec();
        cut.extend_from_slice(b"[variables omitted]");
        return cut;
    };
    if let Some(fields) = value.as_object_mut() {
        for field in fields.values_mut() {
            if let Some(text) = field.as_str()
                && let Some(at) = text.find(MEASURED)
            {
                *field = serde_json::Value::String(format!("{}[variables omitted]", &text[..at]));
            }
        }
    }
    serde_json::to_vec(&value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_variables_quoted_in_an_error_are_left_out() {
        let body = br#"{"Type":"User","message":"Lambda was unable to configure your environment variables because the environment variables you have provided exceeded the 4KB limit. String measured: {\"DB_PASSWORD\":\"hunter2-canary\"}"}"#;
        let out = String::from_utf8(omit_variables(body.to_vec())).unwrap();
        assert!(!out.contains("hunter2-canary"), "{out}");
        let parsed: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(parsed["Type"], "User");
        assert!(
            parsed["message"]
                .as_str()
                .unwrap()
                .ends_with("4KB limit. [variables omitted]")
        );
        let plain = omit_variables(b"too big. String measured: A=hunter2-canary".to_vec());
        assert_eq!(plain, b"too big. [variables omitted]");
        let other = br#"{"message":"Function not found"}"#.to_vec();
        assert_eq!(omit_variables(other.clone()), other);
    }
}

//! The HTTP client: JSON under `/api/v1`, bearer token, problem documents as [`Error`]s.

use std::time::Duration;

use reqwest::{Method, Url};
use serde_json::Value;

use crate::error::Error;
use crate::exit;
use crate::profile::Connection;

/// Longest a request may take: live checks and test deliveries call providers.
const TIMEOUT: Duration = Duration::from_secs(120);

/// A client of one server, with one token.
pub(crate) struct Api {
    http: reqwest::Client,
    base: Url,
    token: String,
    /// The server's URL, for messages.
    pub(crate) url: String,
    /// The profile in use, if any.
    pub(crate) profile: Option<String>,
}

/// A successful answer.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: Value,
}

/// Query parameters.
pub(crate) type Query<'a> = &'a [(&'a str, String)];

impl Api {
    /// A client for `connection`.
    pub(crate) fn new(connection: Connection) -> Result<Api, Error> {
        // reqwest is built without a default TLS provider (see the workspace's reqwest
        // features): install `ring` once, or the first https request panics.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let base = Url::parse(&format!("{}/", connection.url))
            .map_err(|e| Error::usage(format!("`{}` is not a URL: {e}", connection.url)))?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("keywire-cli/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .timeout(TIMEOUT)
            .build()
            .map_err(|e| Error::failed(format!("cannot build the HTTP client: {e}")))?;
        Ok(Api {
            http,
            base,
            token: connection.token,
            url: connection.url,
            profile: connection.profile,
        })
    }

    /// `<base>/api/v1/<segments...>?<query>`, each segment percent-encoded.
    fn url(&self, segments: &[&str], query: Query<'_>) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().push("api").push("v1").extend(segments);
        }
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in query {
                pairs.append_pair(k, v);
            }
        }
        url
    }

    /// Sends a request; an answer other than 2xx is an [`Error`] built from its problem
    /// document.
    pub(crate) async fn send(
        &self,
        method: Method,
        segments: &[&str],
        query: Query<'_>,
        body: Option<&Value>,
    ) -> Result<Answer, Error> {
        let mut request = self
            .http
            .request(method, self.url(segments, query))
            .bearer_auth(&self.token)
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| self.network(e))?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(|e| self.network(e))?;
        let body: Value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::Null)
        };
        if (200..300).contains(&status) {
            Ok(Answer { status, body })
        } else {
            Err(Error::from_answer(status, &body, &text))
        }
    }

    fn network(&self, err: reqwest::Error) -> Error {
        let why = if err.is_timeout() {
            "timed out".to_owned()
        } else if err.is_connect() {
            "cannot connect".to_owned()
        } else {
            // The error's URL has no credential (the token is a header), but keep it short.
            err.without_url().to_string()
        };
        Error::new(
            exit::UNAVAILABLE,
            format!("cannot reach the keywire server at {}: {why}", self.url),
        )
    }

    pub(crate) async fn get(&self, segments: &[&str], query: Query<'_>) -> Result<Value, Error> {
        Ok(self.send(Method::GET, segments, query, None).await?.body)
    }

    pub(crate) async fn post(
        &self,
        segments: &[&str],
        query: Query<'_>,
        body: Option<&Value>,
    ) -> Result<Answer, Error> {
        self.send(Method::POST, segments, query, body).await
    }

    pub(crate) async fn put(&self, segments: &[&str], body: &Value) -> Result<Answer, Error> {
        self.send(Method::PUT, segments, &[], Some(body)).await
    }

    pub(crate) async fn patch(
        &self,
        segments: &[&str],
        query: Query<'_>,
        body: &Value,
    ) -> Result<Value, Error> {
        Ok(self
            .send(Method::PATCH, segments, query, Some(body))
            .await?
            .body)
    }

    pub(crate) async fn delete(&self, segments: &[&str], query: Query<'_>) -> Result<(), Error> {
        self.send(Method::DELETE, segments, query, None).await?;
        Ok(())
    }

    /// Every item of a paginated list (following `nextCursor`), at most `limit`.
    pub(crate) async fn list(
        &self,
        segments: &[&str],
        query: Query<'_>,
        limit: Option<usize>,
    ) -> Result<Vec<Value>, Error> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let want = limit.map_or(200, |l| (l - items.len()).clamp(1, 200));
            let mut q: Vec<(&str, String)> = query.to_vec();
            q.push(("limit", want.to_string()));
            if let Some(c) = &cursor {
                q.push(("cursor", c.clone()));
            }
            let page = self.get(segments, &q).await?;
            if let Some(page_items) = page["items"].as_array() {
                items.extend(page_items.iter().cloned());
            }
            cursor = page["nextCursor"].as_str().map(str::to_owned);
            let full = limit.is_some_and(|l| items.len() >= l);
            if cursor.is_none() || full {
                if let Some(l) = limit {
                    items.truncate(l);
                }
                return Ok(items);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(url: &str) -> Api {
        Api::new(Connection {
            url: url.into(),
            token: "t".into(),
            profile: None,
        })
        .unwrap()
    }

    #[test]
    fn segments_are_encoded_under_api_v1_and_a_base_path() {
        let url = api("http://127.0.0.1:8080").url(
            &["projects", "a/b c", "secrets"],
            &[("reveal", "true".into())],
        );
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:8080/api/v1/projects/a%2Fb%20c/secrets?reveal=true"
        );
        let url = api("https://kw.example.com/base").url(&["me"], &[]);
        assert_eq!(url.as_str(), "https://kw.example.com/base/api/v1/me");
    }
}

//! The server under test: the release `keywire` binary on a free port of 127.0.0.1 with a
//! fresh data directory (and database), spawned through `keywire-test-support`'s harness, plus
//! the few API calls that set up a scenario and the memory figures read from `/proc`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use keywire_test_support::server::{Server, ServerConfig};
use serde_json::{Value, json};

use super::postgres::Database;

/// The admin token of every bench server (`KEYWIRE_BOOTSTRAP_TOKEN`).
pub const TOKEN: &str = "kw_bench_admin_token_0123456789abcdef";
/// The signing secret of every bench webhook.
const SIGNING_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// The event types the bench's webhooks hear.
const NOTIFY_ON: [&str; 4] = [
    "SECRET_ADDED",
    "SECRET_UPDATED",
    "VARIABLE_ADDED",
    "VARIABLE_UPDATED",
];

/// Variables the bench sets itself; never passed through from its own environment.
const OWN: [&str; 6] = [
    "KEYWIRE_DATA_DIR",
    "KEYWIRE_DATABASE_URL",
    "KEYWIRE_LISTEN",
    "KEYWIRE_BOOTSTRAP_TOKEN",
    "KEYWIRE_MASTER_KEY",
    "KEYWIRE_TEST_ORIGIN_OVERRIDES",
];

/// The server settings the bench starts every server with: `KEYWIRE_LOG=warn`, the documented
/// default of `KEYWIRE_HTTP_WORKERS` (the harness would otherwise use 1), then every
/// `KEYWIRE_*` variable of the bench's own environment (except the ones above,
/// `KEYWIRE_NEW_MASTER_KEY`, and `KEYWIRE_BENCH_*` / `KEYWIRE_TEST_*`), so
/// `KEYWIRE_WORKERS=16 cargo xtask bench` tries a setting.
pub fn server_env() -> Vec<(String, String)> {
    server_env_from(std::env::vars())
}

fn server_env_from(vars: impl Iterator<Item = (String, String)>) -> Vec<(String, String)> {
    let mut env = vec![
        ("KEYWIRE_LOG".to_owned(), "warn".to_owned()),
        ("KEYWIRE_HTTP_WORKERS".to_owned(), "2".to_owned()),
    ];
    let mut passed: Vec<(String, String)> = vars
        .filter(|(name, _)| {
            name.starts_with("KEYWIRE_")
                && !name.starts_with("KEYWIRE_BENCH_")
                && !name.starts_with("KEYWIRE_TEST_")
                && name != "KEYWIRE_NEW_MASTER_KEY"
                && !OWN.contains(&name.as_str())
        })
        .collect();
    passed.sort();
    for (name, value) in passed {
        env.retain(|(n, _)| *n != name);
        env.push((name, value));
    }
    env
}

/// [`server_env`] as the report shows it: values of names that may hold a credential (`KEY`,
/// `TOKEN`, `SECRET`, `PASSWORD`, `URL`) replaced by `<redacted>`.
pub fn server_env_for_report() -> serde_json::Map<String, Value> {
    redacted(server_env())
}

fn redacted(env: Vec<(String, String)>) -> serde_json::Map<String, Value> {
    env.into_iter()
        .map(|(name, value)| {
            let rest = name.strip_prefix("KEYWIRE_").unwrap_or(&name);
            let secret = ["KEY", "TOKEN", "SECRET", "PASSWORD", "URL"]
                .iter()
                .any(|word| rest.contains(word));
            let shown = if secret {
                "<redacted>".to_owned()
            } else {
                value
            };
            (name, Value::String(shown))
        })
        .collect()
}

/// `/proc/<pid>/status` memory lines, in KiB.
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory {
    /// `VmRSS`: resident now.
    pub rss_kib: u64,
    /// `VmHWM`: the most that was ever resident.
    pub hwm_kib: u64,
}

/// Parses `VmRSS` and `VmHWM` from the text of `/proc/<pid>/status`.
pub fn parse_status(text: &str) -> Option<Memory> {
    let field = |name: &str| -> Option<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    };
    Some(Memory {
        rss_kib: field("VmRSS:")?,
        hwm_kib: field("VmHWM:")?,
    })
}

/// Parses the Prometheus text format: every sample line as `name{labels}` → value.
pub fn parse_metrics(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (name, value) = l.trim().rsplit_once(' ')?;
            Some((name.trim().to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// The server's runs by status and its attempts by outcome, from `/metrics`, as JSON.
pub fn runs_json(metrics: &BTreeMap<String, f64>) -> serde_json::Value {
    let pick = |prefix: &str| -> serde_json::Map<String, serde_json::Value> {
        metrics
            .iter()
            .filter_map(|(name, value)| {
                let label = name.strip_prefix(prefix)?.split('"').nth(1)?;
                Some((label.to_owned(), json!(value)))
            })
            .collect()
    };
    json!({
        "runs": pick("keywire_runs{"),
        "attempts": pick("keywire_delivery_attempts_total{"),
        "queueDepth": metrics.get("keywire_queue_depth"),
    })
}

/// A running keywire with its data; [`Keywire::stop`] ends it and removes its database.
pub struct Keywire {
    server: Option<Server>,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
    database: Option<Database>,
}

/// Where the release binary is.
pub fn binary(target_dir: &Path) -> PathBuf {
    target_dir.join("release").join("keywire")
}

impl Keywire {
    /// Starts `binary` on a fresh data directory, on `database` (PostgreSQL) or SQLite in the
    /// data directory, with [`server_env`] and `extra` settings.
    pub fn start(
        binary: &Path,
        http: &reqwest::Client,
        database: Option<Database>,
        extra: &[(String, String)],
    ) -> Result<Keywire, String> {
        let dir = tempfile::Builder::new()
            .prefix("keywire-bench-")
            .tempdir()
            .map_err(|e| format!("no temporary directory: {e}"))?;
        let mut config = ServerConfig::new(binary, dir.path())
            .database(database.as_ref().map(|d| d.url.as_str()))
            .env("KEYWIRE_BOOTSTRAP_TOKEN", TOKEN);
        for (name, value) in server_env().iter().chain(extra) {
            config = config.env(name, value);
        }
        let server = Server::try_start(&config).map_err(|(status, out, err)| {
            format!("keywire did not start ({status}):\n{out}\n{err}")
        })?;
        Ok(Keywire {
            url: server.url.clone(),
            server: Some(server),
            http: http.clone(),
            _dir: dir,
            database,
        })
    }

    /// Memory of the server process now.
    pub fn memory(&self) -> Option<Memory> {
        let pid = self.server.as_ref()?.pid();
        parse_status(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
    }

    /// The server's `/metrics`, as `name{labels}` → value; empty when it does not answer.
    pub async fn metrics(&self) -> BTreeMap<String, f64> {
        let answer = self
            .http
            .get(format!("{}/metrics", self.url))
            .bearer_auth(TOKEN)
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        match answer {
            Ok(response) => parse_metrics(&response.text().await.unwrap_or_default()),
            Err(_) => BTreeMap::new(),
        }
    }

    /// Kills the server and drops its database.
    pub async fn stop(mut self) {
        // The harness kills it on drop (and fails loudly if the server had panicked).
        drop(self.server.take());
        if let Some(database) = self.database.take() {
            database.drop_now().await;
        }
    }

    /// Sends a request as the admin; `(status, JSON body or Null)`.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value), String> {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.url))
            .bearer_auth(TOKEN)
            .timeout(Duration::from_secs(30));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("{method} {path}: {e}"))?;
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .map_err(|e| format!("{method} {path}: {e}"))?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    /// Like [`Keywire::call`], failing unless the status is 2xx.
    pub async fn expect_2xx(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let (status, answer) = self.call(method.clone(), path, body).await?;
        if (200..300).contains(&status) {
            Ok(answer)
        } else {
            Err(format!("{method} {path}: {status} {answer}"))
        }
    }

    /// A workspace `Bench` with a project `App` that has one environment, `prod`; returns
    /// their slugs.
    pub async fn project(&self) -> Result<(String, String), String> {
        let workspace = self
            .expect_2xx(
                reqwest::Method::POST,
                "/api/v1/workspaces",
                Some(json!({"name": "Bench"})),
            )
            .await?;
        let workspace = slug(&workspace)?;
        let project = self
            .expect_2xx(
                reqwest::Method::POST,
                &format!("/api/v1/workspaces/{workspace}/projects"),
                Some(json!({"name": "App", "environments": [{"name": "prod"}]})),
            )
            .await?;
        Ok((workspace, slug(&project)?))
    }

    /// `count` webhook integrations on `project`, the `i`-th posting to `<sink>/hook/<i>`.
    pub async fn webhooks(
        &self,
        workspace: &str,
        project: &str,
        count: usize,
        sink: &str,
    ) -> Result<(), String> {
        for i in 0..count {
            self.expect_2xx(
                reqwest::Method::POST,
                &format!("/api/v1/workspaces/{workspace}/integrations?validate=false"),
                Some(json!({
                    "name": format!("Hook {i}"),
                    "type": "webhook",
                    "notifyOn": NOTIFY_ON,
                    "projectSlug": project,
                    "metadata": {"url": format!("{sink}/hook/{i}"), "signingSecret": SIGNING_SECRET},
                })),
            )
            .await?;
        }
        Ok(())
    }
}

fn slug(answer: &Value) -> Result<String, String> {
    answer["slug"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("no slug in {answer}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_status_memory() {
        let text =
            "Name:\tkeywire\nVmPeak:\t  900000 kB\nVmHWM:\t   40960 kB\nVmRSS:\t   20480 kB\n";
        let memory = parse_status(text).unwrap();
        assert_eq!(memory.rss_kib, 20480);
        assert_eq!(memory.hwm_kib, 40960);
        assert!(parse_status("Name:\tx\n").is_none());
    }

    #[test]
    fn prometheus_text_parses() {
        let text = "# HELP keywire_runs Delivery runs by status.\n# TYPE keywire_runs gauge\n\
                    keywire_runs{status=\"pending\"} 12\nkeywire_runs{status=\"failed\"} 0\n\
                    keywire_queue_depth 3\n\
                    keywire_delivery_attempts_total{outcome=\"succeeded\"} 40\n";
        let metrics = parse_metrics(text);
        assert_eq!(metrics["keywire_runs{status=\"pending\"}"], 12.0);
        assert_eq!(metrics["keywire_queue_depth"], 3.0);
        let json = runs_json(&metrics);
        assert_eq!(json["runs"]["pending"], 12.0);
        assert_eq!(json["runs"]["failed"], 0.0);
        assert_eq!(json["attempts"]["succeeded"], 40.0);
        assert_eq!(json["queueDepth"], 3.0);
    }

    fn vars(list: &[(&str, &str)]) -> impl Iterator<Item = (String, String)> {
        list.iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn settings_pass_through_but_the_bench_s_own() {
        let env = server_env_from(vars(&[
            ("KEYWIRE_WORKERS", "16"),
            ("KEYWIRE_LOG", "info"),
            ("KEYWIRE_MASTER_KEY", "a2V5"),
            ("KEYWIRE_NEW_MASTER_KEY", "bmV3"),
            ("KEYWIRE_DATABASE_URL", "postgres://u:pw@h/db"),
            ("KEYWIRE_BENCH_DATABASE_URL", "postgres://u:pw@h/db"),
            ("KEYWIRE_TEST_ORIGIN_OVERRIDES", "https://a=http://b"),
            ("PATH", "/bin"),
        ]));
        assert_eq!(
            env,
            [
                ("KEYWIRE_HTTP_WORKERS".to_owned(), "2".to_owned()),
                ("KEYWIRE_LOG".to_owned(), "info".to_owned()),
                ("KEYWIRE_WORKERS".to_owned(), "16".to_owned()),
            ]
        );
        for (name, _) in server_env() {
            assert!(!OWN.contains(&name.as_str()), "{name} passed through");
        }
    }

    #[test]
    fn the_report_never_shows_a_credential() {
        let shown = redacted(vec![
            ("KEYWIRE_WORKERS".into(), "16".into()),
            ("KEYWIRE_SMTP_PASSWORD".into(), "hunter2-canary".into()),
            ("KEYWIRE_API_TOKEN".into(), "kw_canary".into()),
            ("KEYWIRE_SOME_URL".into(), "postgres://u:canary@h/db".into()),
            ("KEYWIRE_SIGNING_KEY".into(), "canary".into()),
        ]);
        assert_eq!(shown["KEYWIRE_WORKERS"], "16");
        let text = Value::Object(shown).to_string();
        assert!(!text.contains("canary"), "{text}");
        assert_eq!(text.matches("<redacted>").count(), 4);
    }
}

//! `keywire rotate-key`: every sealed value moves to the new key, nothing else changes, and the
//! old key no longer opens the database.

use keywire_test_support::server::{Server, ServerConfig};
use serde_json::{Value, json};

use crate::support::ADMIN;

const CANARY: &str = "rotate-me-canary-4Fq9";

async fn call(
    server: &Server,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let client = keywire_test_support::http_client();
    let mut request = client
        .request(method, format!("{}{path}", server.url))
        .bearer_auth(ADMIN);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn rotate(dir: &std::path::Path, env: &[(&str, &str)]) -> std::process::Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_keywire"));
    command.arg("rotate-key").arg("--data-dir").arg(dir);
    for (key, value) in env {
        command.env(key, value);
    }
    command.env_remove("KEYWIRE_DATABASE_URL").output().unwrap()
}

fn database_bytes(dir: &std::path::Path) -> String {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().contains("keywire.db")
            || path.extension().is_some_and(|e| e == "db")
        {
            all.extend(std::fs::read(&path).unwrap_or_default());
        }
    }
    String::from_utf8_lossy(&all).into_owned()
}

#[tokio::test]
async fn rotate_key_re_encrypts_everything_and_retires_the_old_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = ServerConfig::new(env!("CARGO_BIN_EXE_keywire"), dir.path())
        .env("KEYWIRE_BOOTSTRAP_TOKEN", ADMIN);
    {
        let server = Server::start(&config);
        let post = |path: &'static str, body: Value| {
            call(&server, reqwest::Method::POST, path, Some(body))
        };
        assert_eq!(
            post("/api/v1/workspaces", json!({"name": "Acme"})).await.0,
            201
        );
        assert_eq!(
            post(
                "/api/v1/workspaces/acme/projects",
                json!({"name": "Shop", "environments": [{"name": "prod"}]})
            )
            .await
            .0,
            201
        );
        let (status, _) = call(
            &server,
            reqwest::Method::PUT,
            "/api/v1/projects/shop/secrets/DB_PASSWORD",
            Some(json!({"values": {"prod": CANARY}})),
        )
        .await;
        assert_eq!(status, 201);
        let (status, _) = post(
            "/api/v1/workspaces/acme/integrations?validate=false",
            json!({
                "name": "Hook",
                "type": "webhook",
                "notifyOn": ["SECRET_UPDATED"],
                "metadata": {"url": "https://hooks.example.com/k", "signingSecret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
            }),
        )
        .await;
        assert_eq!(status, 201);
    }
    let old_key = std::fs::read_to_string(dir.path().join("master.key")).unwrap();
    let old_id = {
        let sealed = database_bytes(dir.path());
        let at = sealed.find("kw1:").expect("sealed values in the database");
        sealed[at + 4..at + 20].to_owned()
    };

    // A wrong "new" key is refused before anything changes.
    let refused = rotate(dir.path(), &[("KEYWIRE_NEW_MASTER_KEY", "not base64!")]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("KEYWIRE_NEW_MASTER_KEY"));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("master.key")).unwrap(),
        old_key
    );

    let rotated = rotate(dir.path(), &[]);
    let stdout = String::from_utf8_lossy(&rotated.stdout).into_owned();
    assert!(
        rotated.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&rotated.stderr)
    );
    assert!(
        stdout.contains("re-encrypted 1 secret values and 1 integrations"),
        "{stdout}"
    );
    let new_key = std::fs::read_to_string(dir.path().join("master.key")).unwrap();
    assert_ne!(new_key, old_key);
    assert!(!dir.path().join("master.key.next").exists());
    assert!(
        !stdout.contains(new_key.trim()),
        "the key file's key is never printed"
    );
    let sealed = database_bytes(dir.path());
    assert!(
        !sealed.contains(&format!("kw1:{old_id}:")),
        "a value still sealed with the old key"
    );
    assert!(
        !sealed.contains(CANARY),
        "a secret in clear in the database file"
    );

    // The server starts on the new key and reads everything back.
    {
        let server = Server::start(&config);
        let (status, body) = call(
            &server,
            reqwest::Method::GET,
            "/api/v1/projects/shop/secrets/DB_PASSWORD?reveal=true",
            None,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["environments"]["prod"]["value"], CANARY, "{body}");
        let (status, body) = call(
            &server,
            reqwest::Method::GET,
            "/api/v1/integrations/hook",
            None,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["secretFields"]["/signingSecret"]["configured"], true);
    }

    // The old key no longer opens the database: start-up fails naming both key ids.
    let with_old = config.clone().env("KEYWIRE_MASTER_KEY", old_key.trim());
    let Err((_, _, stderr)) = Server::try_start(&with_old) else {
        panic!("the server started with the retired key");
    };
    assert!(
        stderr.contains(&old_id) && !stderr.contains(old_key.trim()),
        "{stderr}"
    );
}

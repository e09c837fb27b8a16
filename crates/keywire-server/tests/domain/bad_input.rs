//! The bad-input table: malformed requests across every route, each answered with its own 4xx
//! problem document (never a 500), and the database unchanged afterwards.
//!
//! One server per backend, started with a small body limit (so 413 is cheap to reach) and an
//! empty outbound allow-list (so every private address is refused). The data is seeded once,
//! snapshotted through the API, the whole table is sent, and the snapshot is taken again: every
//! workspace, project, environment, entry with its versions (revealed), integration with its
//! runs, role, member, user, token and event must be as it was. Failing rows are collected and
//! reported together, so one run names every wrong answer.

use std::collections::BTreeMap;
use std::time::Instant;

use keywire_test_support::discord;
use serde_json::{Value, json};

use crate::support::{ADMIN, Api, RawAnswer};

/// The body limit of the table's servers.
const LIMIT: usize = 128 * 1024;

/// A run id no run has.
const NO_RUN: &str = "00000000-0000-4000-8000-000000000000";

/// What the seed made, for building rows and reading the snapshot.
struct Seed {
    /// Tokens whose `/me/tokens` the snapshot reads (admin, alice, bob).
    tokens: Vec<String>,
    /// A `sort=name` cursor of the integration list (for a sort-mismatch row).
    name_cursor: String,
}

/// How a row's request is sent.
enum Via {
    /// A JSON body (or none) with the admin's token.
    Json(Option<Value>),
    /// Bytes with this content type (or none), with the admin's token.
    Raw(Option<&'static str>, Vec<u8>),
    /// A whole HTTP/1.1 request written to the socket.
    Wire(Vec<u8>),
}

/// What a row must answer.
#[derive(Clone, Copy)]
enum Kind {
    /// A problem document with the row's status.
    Problem,
    /// 200 with an empty `items` list (a filter that matches nothing is not an error).
    EmptyList,
    /// 200 from the dry run with `valid: false` and this check failed (not skipped).
    DryRunFails(&'static str),
}

struct Row {
    tag: &'static str,
    method: &'static str,
    path: String,
    via: Via,
    status: u16,
    pointer: Option<String>,
    code: Option<&'static str>,
    kind: Kind,
}

fn v1(path: &str) -> String {
    format!("/api/v1{path}")
}

/// A JSON request as the admin; answers 400 unless told otherwise.
fn req(tag: &'static str, method: &'static str, path: &str, body: Option<Value>) -> Row {
    Row {
        tag,
        method,
        path: v1(path),
        via: Via::Json(body),
        status: 400,
        pointer: None,
        code: None,
        kind: Kind::Problem,
    }
}

fn get(tag: &'static str, path: &str) -> Row {
    req(tag, "GET", path, None)
}

fn post(tag: &'static str, path: &str, body: Value) -> Row {
    req(tag, "POST", path, Some(body))
}

fn put(tag: &'static str, path: &str, body: Value) -> Row {
    req(tag, "PUT", path, Some(body))
}

fn patch(tag: &'static str, path: &str, body: Value) -> Row {
    req(tag, "PATCH", path, Some(body))
}

fn raw(
    tag: &'static str,
    method: &'static str,
    path: &str,
    content_type: Option<&'static str>,
    bytes: Vec<u8>,
) -> Row {
    Row {
        via: Via::Raw(content_type, bytes),
        ..req(tag, method, path, None)
    }
}

fn wire(tag: &'static str, method: &'static str, path: &str, request: Vec<u8>) -> Row {
    Row {
        via: Via::Wire(request),
        path: path.to_owned(),
        ..req(tag, method, path, None)
    }
}

impl Row {
    /// Expects this status.
    fn is(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// Expects a 400 `invalid_field` naming `pointer`.
    fn at(mut self, pointer: &str) -> Self {
        self.status = 400;
        self.pointer = Some(pointer.to_owned());
        self.code = Some("invalid_field");
        self
    }

    /// Expects this problem `code`.
    fn code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    fn not_found(self) -> Self {
        self.is(404).code("not_found")
    }

    fn conflict(self) -> Self {
        self.is(409).code("conflict")
    }

    fn refused_live(self) -> Self {
        self.is(422).code("live_check_failed")
    }

    fn empty_list(mut self) -> Self {
        self.status = 200;
        self.kind = Kind::EmptyList;
        self
    }

    fn dry_run_fails(mut self, check: &'static str) -> Self {
        self.status = 200;
        self.kind = Kind::DryRunFails(check);
        self
    }

    fn label(&self) -> String {
        let path: String = self.path.chars().take(90).collect();
        let body = match &self.via {
            Via::Json(Some(body)) => body.to_string().chars().take(90).collect(),
            Via::Json(None) => String::new(),
            Via::Raw(ct, bytes) => format!("{ct:?} {} bytes", bytes.len()),
            Via::Wire(bytes) => format!("raw request, {} bytes", bytes.len()),
        };
        format!("[{}] {} {path} {body}", self.tag, self.method)
    }
}

/// `{"name": ...}`.
fn named(name: &str) -> Value {
    json!({ "name": name })
}

fn many(item: &str, n: usize) -> Vec<String> {
    vec![item.to_owned(); n]
}

fn webhook(url: &str) -> Value {
    json!({
        "name": "Probe",
        "type": "webhook",
        "notifyOn": ["SECRET_UPDATED"],
        "enabled": false,
        "metadata": {"url": url},
    })
}

fn discord_at(url: &str) -> Value {
    json!({
        "name": "Probe",
        "type": "discord",
        "notifyOn": ["SECRET_UPDATED"],
        "enabled": false,
        "metadata": {"webhookUrl": url},
    })
}

fn vercel(sync: Value) -> Value {
    json!({
        "name": "Probe",
        "type": "vercel",
        "notifyOn": ["SECRET_UPDATED"],
        "actions": ["upsert"],
        "projectSlug": "shop",
        "environmentSlugs": ["dev", "prod"],
        "enabled": false,
        "metadata": {
            "token": keywire_test_support::vercel::TOKEN,
            "projectId": keywire_test_support::vercel::PROJECT_ID,
        },
        "sync": sync,
    })
}

/// `base` with the top-level fields of `changes` set.
fn with(base: Value, changes: Value) -> Value {
    let mut out = base;
    for (key, value) in changes.as_object().unwrap() {
        out[key] = value.clone();
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Seed and snapshot

async fn seed(api: &Api) -> Seed {
    let ws = api.workspace("Acme").await;
    assert_eq!(ws, "acme");
    assert_eq!(api.project(&ws, "Shop").await, "shop");
    api.workspace("Other").await;
    let secret = v1("/projects/shop/secrets/DB_URL");
    api.put(
        &secret,
        ADMIN,
        json!({"values": {"dev": "postgres://dev-1", "prod": "postgres://prod-1"}, "note": "primary"}),
    )
    .await
    .expect(201);
    api.put(
        &secret,
        ADMIN,
        json!({"values": {"dev": "postgres://dev-2"}}),
    )
    .await
    .expect(200);
    api.put(
        &v1("/projects/shop/variables/LOG_LEVEL"),
        ADMIN,
        json!({"values": {"dev": "debug"}}),
    )
    .await
    .expect(201);
    api.post(
        &v1("/workspaces/acme/roles"),
        ADMIN,
        json!({"name": "Readers", "authorities": ["READ_PROJECT", "READ_SECRET"], "projects": ["shop"]}),
    )
    .await
    .expect(201);
    let mut tokens = vec![ADMIN.to_owned()];
    for name in ["alice", "bob"] {
        let created = api.post(&v1("/users"), ADMIN, named(name)).await;
        tokens.push(created.expect(201)["token"].as_str().unwrap().to_owned());
    }
    api.post(
        &v1("/workspaces/acme/members"),
        ADMIN,
        json!({"user": "alice", "roles": ["readers"]}),
    )
    .await
    .expect(201);
    api.post(
        &v1("/me/tokens"),
        ADMIN,
        json!({"name": "ci", "authorities": ["READ_PROJECT"], "expiresInDays": 30}),
    )
    .await
    .expect(201);
    // Disabled, so no delivery or sync runs while the table is sent.
    let create = v1("/workspaces/acme/integrations?validate=false");
    for body in [
        json!({"name": "Alerts", "type": "discord", "notifyOn": ["SECRET_UPDATED"], "enabled": false,
               "metadata": {"webhookUrl": discord::webhook_url()}}),
        json!({"name": "Hook", "type": "webhook", "notifyOn": ["SECRET_UPDATED"], "enabled": false,
               "metadata": {"url": "https://hooks.example.com/keywire"}}),
        with(
            vercel(json!({"targets": {"dev": "development", "prod": "production"}})),
            json!({"name": "Shop sync", "enabled": false}),
        ),
    ] {
        api.post(&create, ADMIN, body).await.expect(201);
    }
    let first = api
        .get(
            &v1("/workspaces/acme/integrations?limit=1&sort=name"),
            ADMIN,
        )
        .await;
    let name_cursor = first.expect(200)["nextCursor"].as_str().unwrap().to_owned();
    Seed {
        tokens,
        name_cursor,
    }
}

/// Every item of a paginated list, following `nextCursor`.
async fn all_pages(api: &Api, path: &str, token: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    let sep = if path.contains('?') { '&' } else { '?' };
    loop {
        let url = match &cursor {
            Some(c) => format!("{path}{sep}limit=200&cursor={c}"),
            None => format!("{path}{sep}limit=200"),
        };
        let answer = api.get(&url, token).await;
        let page = answer.expect(200);
        items.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return items,
        }
    }
}

fn field(item: &Value, name: &str) -> String {
    item[name].as_str().unwrap().to_owned()
}

/// Everything the API shows, keyed by where it came from.
async fn snapshot(api: &Api, seed: &Seed) -> BTreeMap<String, Value> {
    let mut snap = BTreeMap::new();
    snap.insert(
        "users".into(),
        json!(all_pages(api, &v1("/users"), ADMIN).await),
    );
    for token in &seed.tokens {
        let mut mine = all_pages(api, &v1("/me/tokens"), token).await;
        // Used tokens note when (to the minute): that is not a change of data.
        for item in &mut mine {
            item.as_object_mut().unwrap().remove("lastUsedAt");
        }
        let me = api.get(&v1("/me"), token).await;
        snap.insert(
            format!("tokens of {}", field(me.expect(200), "name")),
            json!(mine),
        );
    }
    let workspaces = all_pages(api, &v1("/workspaces"), ADMIN).await;
    snap.insert("workspaces".into(), json!(workspaces));
    for ws in workspaces.iter().map(|w| field(w, "slug")) {
        let base = format!("/workspaces/{ws}");
        let one = api.get(&v1(&base), ADMIN).await;
        snap.insert(base.clone(), one.expect(200).clone());
        for list in ["roles", "members", "integrations", "events", "projects"] {
            let path = v1(&format!("{base}/{list}"));
            snap.insert(path.clone(), json!(all_pages(api, &path, ADMIN).await));
        }
        for integration in all_pages(api, &v1(&format!("{base}/integrations")), ADMIN).await {
            let path = v1(&format!(
                "/integrations/{}/runs",
                field(&integration, "slug")
            ));
            snap.insert(path.clone(), json!(all_pages(api, &path, ADMIN).await));
        }
        for project in all_pages(api, &v1(&format!("{base}/projects")), ADMIN).await {
            let path = v1(&format!("/projects/{}", field(&project, "slug")));
            let one = api.get(&path, ADMIN).await;
            snap.insert(path.clone(), one.expect(200).clone());
            for kind in ["secrets", "variables"] {
                let list = format!("{path}/{kind}");
                let entries = all_pages(api, &format!("{list}?reveal=true"), ADMIN).await;
                for entry in &entries {
                    for environment in entry["environments"].as_object().unwrap().keys() {
                        let versions = format!(
                            "{list}/{}/versions?environment={environment}&reveal=true",
                            field(entry, "key")
                        );
                        snap.insert(
                            versions.clone(),
                            json!(all_pages(api, &versions, ADMIN).await),
                        );
                    }
                }
                snap.insert(list, json!(entries));
            }
        }
    }
    snap
}

/// The JSON pointers where `a` and `b` differ (at most a few).
fn differences(a: &Value, b: &Value, at: &str, out: &mut Vec<String>) {
    if out.len() >= 12 || a == b {
        return;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for key in x.keys().chain(y.keys().filter(|k| !x.contains_key(*k))) {
                let next = format!("{at}/{key}");
                match (x.get(key), y.get(key)) {
                    (Some(p), Some(q)) => differences(p, q, &next, out),
                    (p, q) => out.push(format!("{next}: {p:?} -> {q:?}")),
                }
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                differences(p, q, &format!("{at}/{i}"), out);
            }
        }
        _ => {
            let show = |v: &Value| v.to_string().chars().take(300).collect::<String>();
            out.push(format!("{at}: {} -> {}", show(a), show(b)));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The table

fn rows(seed: &Seed) -> Vec<Row> {
    let long_a = "a".repeat(10_000);
    let long_emoji = "🔑".repeat(10_000);
    let over_limit = format!("{{\"name\": \"{}\"}}", "x".repeat(LIMIT + 1024));
    let deep = format!("{{\"name\": {}{}}}", "[".repeat(5_000), "]".repeat(5_000));
    let chunk = format!("{{\"name\": \"{}\"}}", "y".repeat(LIMIT + 1024));
    let chunked = format!(
        "POST /api/v1/workspaces HTTP/1.1\r\nHost: keywire\r\nAuthorization: Bearer {ADMIN}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
         {:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len()
    );
    let lying_length = format!(
        "POST /api/v1/workspaces HTTP/1.1\r\nHost: keywire\r\nAuthorization: Bearer {ADMIN}\r\n\
         Content-Type: application/json\r\nContent-Length: 10000000\r\nConnection: close\r\n\r\n\
         {{\"name\": \"Liar\"}}"
    );
    let dot_dot = |path: &str| {
        format!(
            "GET {path} HTTP/1.1\r\nHost: keywire\r\nAuthorization: Bearer {ADMIN}\r\nConnection: close\r\n\r\n"
        )
        .into_bytes()
    };
    let bulk = |n: usize| json!({"items": (0..n).map(|i| json!({"key": format!("K{i}"), "values": {"dev": "v"}})).collect::<Vec<_>>()});
    let integrations = "/workspaces/acme/integrations";
    let create = "/workspaces/acme/integrations?validate=false";
    let create_live = "/workspaces/acme/integrations";
    let secret = "/projects/shop/secrets/DB_URL";
    let rollback = "/projects/shop/secrets/DB_URL/rollback";

    let mut table = vec![
        // --- The body itself: not JSON, not an object, too big, too deep.
        raw("invalid json", "POST", "/workspaces", Some("application/json"), b"{\"name\":".to_vec())
            .code("bad_request"),
        raw("invalid json", "POST", "/workspaces", Some("application/json"), b"{\"name\":\"x\",}".to_vec())
            .code("bad_request"),
        raw("invalid json", "POST", "/workspaces", Some("application/json"), Vec::new()).code("bad_request"),
        raw("invalid json", "PATCH", "/projects/shop", Some("application/json"), b"{'name': 'x'}".to_vec())
            .code("bad_request"),
        raw("invalid json", "PUT", secret, Some("application/json"), b"{\"values\": {\"dev\": \"x\"}} trailing".to_vec())
            .code("bad_request"),
        raw("invalid utf-8", "POST", "/workspaces", Some("application/json"), b"{\"name\":\"\xff\xfe\"}".to_vec())
            .code("bad_request"),
        raw("invalid json", "POST", "/workspaces", Some("application/json"), b"\xef\xbb\xbf{\"name\":\"Bom\"}".to_vec())
            .code("bad_request"),
        raw("invalid json", "POST", "/workspaces", Some("application/json"), b"{\"name\": 1e999}".to_vec())
            .code("bad_request"),
        raw("deep nesting", "POST", "/workspaces", Some("application/json"), deep.into_bytes()).code("bad_request"),
        raw("content type", "POST", "/workspaces", Some("text/plain"), b"{\"name\":\"x\"}".to_vec())
            .is(415)
            .code("unsupported_media_type"),
        raw("content type", "POST", "/me/tokens", None, b"{\"name\":\"x\"}".to_vec())
            .is(415)
            .code("unsupported_media_type"),
        raw("content type", "POST", "/workspaces/acme/roles", Some("application/x-www-form-urlencoded"), b"name=x".to_vec())
            .is(415)
            .code("unsupported_media_type"),
        raw("oversized", "POST", "/workspaces", Some("application/json"), over_limit.into_bytes())
            .is(413)
            .code("body_too_large"),
        wire("oversized", "POST", "/workspaces (chunked, no length)", chunked.into_bytes())
            .is(413)
            .code("body_too_large"),
        wire("oversized", "POST", "/workspaces (declares 10 MB)", lying_length.into_bytes())
            .is(413)
            .code("body_too_large"),
        post("wrong type", "/workspaces", json!(["Sneaky"])).at(""),
        post("wrong type", "/workspaces", json!("Acme")).at(""),
        patch("wrong type", "/projects/shop", json!(["Renamed", null])).at(""),
        post("wrong type", "/workspaces", json!({"name": 5})).at("/name"),
        post("wrong type", "/workspaces", json!({"name": null})).at("/name"),
        patch("wrong type", "/workspaces/acme", json!({"name": ["Acme"]})).at("/name"),
        patch("wrong type", "/projects/shop", json!({"description": 5})).at("/description"),
        post("unknown field", "/workspaces", json!({"name": "Acme 2", "plan": "pro"})).at("/plan"),
        put("unknown field", secret, json!({"values": {"dev": "x"}, "colour": 1})).at("/colour"),
        post("unknown field", "/users", json!({"name": "carol", "admin": true})).at("/admin"),
        patch("unknown field", "/integrations/alerts", json!({"colour": "red"})).at("/colour"),
        patch("nothing", "/projects/shop", json!({})).code("bad_request"),
        patch("nothing", "/integrations/alerts", json!({})).code("bad_request"),
        // --- Names: Unicode edge cases, lengths, SQL.
        post("unicode", "/workspaces", named("Acme\u{202E}gnp.exe")).at("/name"),
        post("unicode", "/workspaces/acme/projects", named("Sh\u{200B}op")).at("/name"),
        post("unicode", "/projects/shop/environments", named("de\u{0}v")).at("/name"),
        post("unicode", "/workspaces/acme/roles", json!({"name": long_a, "authorities": []})).at("/name"),
        post("unicode", create, with(discord_at(&discord::webhook_url()), named("🚀 Alerts"))).at("/name"),
        patch("unicode", "/workspaces/acme", named(" \u{3000} ")).at("/name"),
        patch("unicode", "/projects/shop", named("\u{202E}")).at("/name"),
        patch("unicode", "/projects/shop/environments/dev", named(&long_emoji)).at("/name"),
        patch("unicode", "/workspaces/acme/roles/readers", named("Read\u{0}ers")).at("/name"),
        post("unicode", "/me/tokens", named("tok\u{200D}en")).at("/name"),
        post("unicode", "/users", named("bob\u{202E}")).at("/name"),
        post("unicode", "/workspaces/acme/projects", json!({"name": "Blog", "environments": [{"name": "\u{FEFF}"}]}))
            .at("/environments/0/name"),
        post("unicode", "/workspaces/acme/projects", json!({"name": "Blog", "description": "bell \u{7}"}))
            .at("/description"),
        post("sql", "/workspaces", named("'; DROP TABLE users; --")).at("/name"),
        post("sql", "/users", named("admin'--")).at("/name"),
        post("sql", "/workspaces/acme/members", json!({"user": "admin' OR '1'='1", "roles": []})).at("/user"),
        get("sql", "/projects/'%3B%20DROP%20TABLE%20users%3B%20--").not_found(),
        get("sql", "/workspaces/acme/members/x'%20OR%201%3D1%20--").not_found(),
        put("sql", "/projects/shop/secrets/X'%3BDROP%20TABLE%20entries", json!({"values": {"dev": "x"}}))
            .code("bad_request"),
        get("sql", &format!("{integrations}?q=%25'%20OR%20'1'%3D'1")).empty_list(),
        get("sql", &format!("{integrations}?type=discord'%20OR%20'1'%3D'1")).empty_list(),
        // --- Slugs in paths: traversal, encoded slashes, invalid UTF-8, NUL, 10k characters.
        get("traversal", "/projects/..%2F..%2Fworkspaces").not_found(),
        get("traversal", "/projects/shop%2Fsecrets").not_found(),
        get("traversal", "/projects/shop/secrets/..%2F..%2Fetc%2Fpasswd").code("bad_request"),
        get("traversal", "/workspaces/%2E%2E").not_found(),
        get("traversal", "/integrations/..%2Falerts").not_found(),
        get("traversal", "/integration-types/..%2Fdiscord").not_found(),
        req("traversal", "DELETE", "/projects/shop/environments/..%2Fdev", None).not_found(),
        wire("traversal", "GET", "/api/v1/projects/shop/../../workspaces/acme", dot_dot("/api/v1/projects/shop/../../workspaces/acme"))
            .not_found(),
        wire("traversal", "GET", "/api/v1/workspaces/acme/../acme/roles", dot_dot("/api/v1/workspaces/acme/../acme/roles"))
            .not_found(),
        get("utf-8", "/projects/%FF%FE").not_found(),
        get("long slug", &format!("/projects/{long_a}")).not_found(),
        get("nul", "/workspaces/%00").not_found(),
        get("nul", "/projects/sh%00op").not_found(),
        get("nul", "/workspaces/acme/roles/%00").not_found(),
        get("nul", "/workspaces/acme/members/%00").not_found(),
        get("nul", "/users/%00").not_found(),
        req("nul", "DELETE", "/me/tokens/%00", None).not_found(),
        get("nul", "/projects/shop/environments/%00").not_found(),
        get("nul", &format!("/integrations/alerts/runs/{NO_RUN}%00")).not_found(),
        get("nul", "/workspaces/acme/events?project=%00").code("bad_request"),
        post("nul", "/workspaces/acme/members", json!({"user": "\u{0}", "roles": []})).at("/user"),
        post("nul", "/workspaces/acme/members", json!({"user": "bob", "roles": ["\u{0}"]})).at("/roles/0"),
        post("nul", "/workspaces/acme/roles", json!({"name": "Nul", "authorities": ["READ_PROJECT"], "projects": ["\u{0}"]}))
            .at("/projects/0"),
        put("nul", "/projects/shop/variables/LOG_LEVEL", json!({"values": {"dev": "de\u{0}bug"}})).at("/values/dev"),
        put("nul", secret, json!({"values": {"dev": "postgres://dev-2"}, "note": "pri\u{0}mary"})).at("/note"),
        get("nul", &format!("{integrations}?q=%00")).code("bad_request"),
        get("nul", &format!("{integrations}?type=%00")).code("bad_request"),
        get("nul", "/workspaces/acme/roles?cursor=YQBi").code("bad_request"),
        get("nul", "/users?cursor=AA").code("bad_request"),
        get("nul", "/workspaces/acme/members?cursor=AAAA").code("bad_request"),
        get("nul", &format!("/workspaces?cursor={}", "A".repeat(4_000))).code("bad_request"),
        // --- Query parameters and cursors.
        get("cursor", "/workspaces?cursor=!!!").code("bad_request"),
        get("cursor", "/workspaces/acme/events?cursor=YWJj").code("bad_request"),
        get("cursor", "/me/tokens?cursor=YWJj").code("bad_request"),
        get("cursor", "/projects/shop/secrets?cursor=_w").code("bad_request"),
        get("cursor", "/integrations/alerts/runs?cursor=_w").code("bad_request"),
        get("cursor", &format!("{integrations}?sort=created&cursor={}", seed.name_cursor)).code("bad_request"),
        get("query", "/workspaces?limit=-1").code("bad_request"),
        get("query", "/workspaces?limit=99999999999").code("bad_request"),
        get("query", "/users?bogus=1").code("bad_request"),
        get("query", "/workspaces/acme/events?since=yesterday").code("bad_request"),
        get("query", "/workspaces/acme/events?source=NOPE").code("bad_request"),
        get("event type", "/workspaces/acme/events?type=SECRET_UPDATED,SECRET_EXPLODED").code("invalid_field"),
        get("query", "/projects/shop/secrets?reveal=maybe").code("bad_request"),
        get("query", &format!("{secret}?reveal=1")).code("bad_request"),
        get("query", &format!("{secret}/versions")).code("bad_request"),
        get("query", &format!("{secret}/versions?environment=qa")).code("bad_request"),
        req("query", "DELETE", &format!("{secret}?environment=qa"), None).code("bad_request"),
        get("query", &format!("{integrations}?sort=size")).code("bad_request"),
        get("query", &format!("{integrations}?order=sideways")).code("bad_request"),
        get("query", &format!("{integrations}?enabled=2")).code("bad_request"),
        get("query", &format!("{integrations}?q={}", "q".repeat(65))).code("bad_request"),
        get("query", "/integrations/alerts/runs?status=exploded").code("bad_request"),
        req("query", "DELETE", "/integrations/alerts?cleanup=perhaps", None).code("bad_request"),
        post("query", &format!("{integrations}?validate=nah"), webhook("https://example.com/h")).code("bad_request"),
        post("query", "/integrations/shop-sync/sync?dryRun=maybe", json!({})).code("bad_request"),
        // --- Secrets and variables.
        put("entries", secret, json!({"values": "x"})).at("/values"),
        put("entries", secret, json!({"values": {}})).at("/values"),
        put("entries", secret, json!({"values": {"qa": "x"}})).at("/values/qa"),
        put("entries", secret, json!({"values": {"dev": 5}})).at("/values/dev"),
        put("entries", secret, json!({"values": {"dev": "v".repeat(64 * 1024 + 1)}})).at("/values/dev"),
        put("entries", secret, json!({"values": {"dev": "x"}, "note": "n".repeat(1001)})).at("/note"),
        put("entries", "/projects/shop/secrets/1BAD", json!({"values": {"dev": "x"}})).code("bad_request"),
        put("entries", &format!("/projects/shop/secrets/{}", "K".repeat(257)), json!({"values": {"dev": "x"}}))
            .code("bad_request"),
        put("entries", "/projects/shop/secrets", json!({"items": []})).at("/items"),
        put("huge array", "/projects/shop/secrets", bulk(101)).at("/items"),
        put("entries", "/projects/shop/variables", json!({"items": [
            {"key": "A", "values": {"dev": "1"}}, {"key": "A", "values": {"dev": "2"}}]})).at("/items/1/key"),
        put("entries", "/projects/shop/variables", json!({"items": [{"key": "bad key", "values": {"dev": "1"}}]}))
            .at("/items/0/key"),
        put("entries", "/projects/shop/secrets", json!({"items": {"key": "A"}})).at("/items"),
        post("entries", rollback, json!({"environment": "dev", "version": 0})).at("/version"),
        post("entries", rollback, json!({"environment": "qa", "version": 1})).at("/environment"),
        post("entries", rollback, json!({"environment": "dev", "version": "1"})).at("/version"),
        post("entries", rollback, json!({"environment": "dev", "version": 99})).not_found(),
        post("wrong type", rollback, json!({"environment": "dev", "version": 9_223_372_036_854_775_808_u64}))
            .at("/version"),
        put("unicode", "/projects/shop/secrets/%C3%89T%C3%89", json!({"values": {"dev": "x"}})).code("bad_request"),
        // --- Workspaces, projects, environments, roles, members, users, tokens.
        post("huge array", "/workspaces/acme/projects", json!({"name": "Blog", "environments": (0..51).map(|i| named(&format!("e{i}"))).collect::<Vec<_>>()}))
            .at("/environments"),
        post("conflict", "/projects/shop/environments", named("dev")).conflict(),
        post("roles", "/workspaces/acme/roles", json!({"name": "X", "authorities": ["READ_PROJECT", "BE_ROOT"]})).at("/authorities/1"),
        post("huge array", "/workspaces/acme/roles", json!({"name": "X", "authorities": many("READ_PROJECT", 101)}))
            .at("/authorities"),
        post("huge array", "/workspaces/acme/roles", json!({"name": "X", "authorities": ["READ_PROJECT"], "projects": many("shop", 101)}))
            .at("/projects"),
        post("roles", "/workspaces/acme/roles", json!({"name": "X", "authorities": [], "projects": []})).at("/projects"),
        post("wrong type", "/workspaces/acme/roles", json!({"name": "X", "authorities": "READ_PROJECT"})).at("/authorities"),
        patch("conflict", "/workspaces/acme/roles/admin", json!({"authorities": ["READ_PROJECT"]})).conflict(),
        req("conflict", "DELETE", "/workspaces/acme/roles/admin", None).conflict(),
        patch("members", "/workspaces/acme/members/alice", json!({"roles": ["nope"]})).at("/roles/0"),
        patch("wrong type", "/workspaces/acme/members/alice", json!({"roles": "readers"})).at("/roles"),
        post("huge array", "/workspaces/acme/members", json!({"user": "bob", "roles": many("readers", 101)})).at("/roles"),
        req("conflict", "DELETE", "/workspaces/acme/members/admin", None).conflict(),
        post("wrong type", "/users", json!({"name": "carol", "isAdmin": "yes"})).at("/isAdmin"),
        post("conflict", "/users", named("alice")).conflict(),
        req("conflict", "DELETE", "/users/admin", None).conflict(),
        post("tokens", "/me/tokens", json!({"name": "t", "expiresInDays": 0})).at("/expiresInDays"),
        post("tokens", "/me/tokens", json!({"name": "t", "expiresInDays": 3651})).at("/expiresInDays"),
        post("wrong type", "/me/tokens", json!({"name": "t", "expiresInDays": 4_294_967_296_u64})).at("/expiresInDays"),
        post("wrong type", "/me/tokens", json!({"name": "t", "expiresInDays": -5})).at("/expiresInDays"),
        post("tokens", "/me/tokens", json!({"name": "t", "expiresAt": "2001-01-01T00:00:00Z"})).at("/expiresAt"),
        post("tokens", "/me/tokens", json!({"name": "t", "expiresAt": "tomorrow"})).at("/expiresAt"),
        post("tokens", "/me/tokens", json!({"name": "t", "expiresAt": "2099-01-01T00:00:00Z", "expiresInDays": 3}))
            .at("/expiresInDays"),
        post("tokens", "/me/tokens", json!({"name": "t", "authorities": []})).at("/authorities"),
        post("tokens", "/me/tokens", json!({"name": "t", "authorities": ["READ_PROJECT", "SUDO"]})).at("/authorities/1"),
        // --- Integrations: event types, types, metadata of another type, scope.
        post("event type", create, with(discord_at(&discord::webhook_url()), json!({"notifyOn": ["SECRET_EXPLODED"]})))
            .at("/notifyOn/0"),
        post("event type", create, with(discord_at(&discord::webhook_url()), json!({"notifyOn": ["SECRET_UPDATED", "secret_updated"]})))
            .at("/notifyOn/1"),
        post("event type", create, with(discord_at(&discord::webhook_url()), json!({"notifyOn": []}))).at("/notifyOn"),
        post("huge array", create, with(discord_at(&discord::webhook_url()), json!({"notifyOn": many("SECRET_UPDATED", 5_000)})))
            .at("/notifyOn"),
        patch("event type", "/integrations/alerts", json!({"notifyOn": ["NOPE"]})).at("/notifyOn/0"),
        post("type", create, with(discord_at(&discord::webhook_url()), json!({"type": "carrier-pigeon"}))).at("/type"),
        post("wrong metadata", create, with(webhook("https://example.com/h"), json!({"metadata": {"webhookUrl": discord::webhook_url()}})))
            .at("/metadata/webhookUrl"),
        post("wrong metadata", create, with(discord_at(&discord::webhook_url()), json!({"metadata": {"url": "https://example.com/h"}})))
            .at("/metadata/url"),
        post("wrong metadata", create, with(vercel(json!({})), json!({"metadata": {"webhookUrl": discord::webhook_url()}})))
            .at("/metadata/webhookUrl"),
        post("wrong metadata", create, with(discord_at(&discord::webhook_url()), json!({"metadata": [discord::webhook_url()]})))
            .at("/metadata"),
        post("wrong metadata", create, with(webhook("https://example.com/h"), json!({"metadata": [
            "https://example.com/h",
            {"Authorization": "Bearer header-credential"},
            "whsec_c2VjcmV0LXNpZ25pbmcta2V5LWZvci1rZXl3aXJlLXRlc3Rz",
        ]})))
        .at("/metadata"),
        post("wrong metadata", create, with(discord_at(&discord::webhook_url()), json!({"metadata": "https://discord.com"})))
            .at("/metadata"),
        patch("wrong metadata", "/integrations/alerts?validate=false", json!({"metadata": {"url": "https://example.com/h"}}))
            .at("/metadata/url"),
        patch("wrong metadata", "/integrations/alerts", json!({"metadata": "x"})).at("/metadata"),
        post("huge array", create, with(webhook("https://example.com/h"), json!({"metadata": {
            "url": "https://example.com/h",
            "headers": (0..1_000).map(|i| (format!("X-H{i}"), json!("v"))).collect::<serde_json::Map<_, _>>(),
        }})))
        .at("/metadata/headers"),
        post("scope", create, with(discord_at(&discord::webhook_url()), json!({"actions": ["redeploy"]}))).at("/actions/0"),
        post("scope", create, with(discord_at(&discord::webhook_url()), json!({"environmentSlugs": ["dev"]})))
            .at("/environmentSlugs"),
        post("scope", create, with(discord_at(&discord::webhook_url()), json!({"projectSlug": "shop", "environmentSlugs": ["dev", "dev"]})))
            .at("/environmentSlugs/1"),
        post("huge array", create, with(discord_at(&discord::webhook_url()), json!({"projectSlug": "shop", "environmentSlugs": many("dev", 101)})))
            .at("/environmentSlugs"),
        post("traversal", create, with(discord_at(&discord::webhook_url()), json!({"projectSlug": "../shop"}))).not_found(),
        patch("immutable", "/integrations/alerts", json!({"type": "webhook"})).at("/type"),
        patch("immutable", "/integrations/alerts", json!({"projectSlug": "shop"})).at("/projectSlug"),
        patch("conflict", "/integrations/alerts?validate=false", named("Hook")).conflict(),
        // --- SSRF: private, loopback, link-local and reserved addresses; refused names.
        post("ssrf", create_live, webhook("http://127.0.0.1:9/hook")).refused_live(),
        post("ssrf", create_live, webhook("http://169.254.169.254/latest/meta-data/")).refused_live(),
        post("ssrf", create_live, webhook("http://[::1]:9/hook")).refused_live(),
        post("ssrf", create_live, webhook("http://localhost:9/hook")).refused_live(),
        post("ssrf", create_live, webhook("http://[::ffff:127.0.0.1]:9/hook")).refused_live(),
        post("ssrf", create_live, webhook("http://2130706433:9/hook")).refused_live(),
        post("ssrf", create_live, webhook("http://10.0.0.1/hook")).refused_live(),
        post("ssrf", create_live, webhook("http://[fd00::1]/hook")).refused_live(),
        post("ssrf", create, webhook("file:///etc/passwd")).at("/metadata/url"),
        post("ssrf", create, webhook("gopher://127.0.0.1:25/")).at("/metadata/url"),
        post("ssrf", create, webhook("http://user:pass@127.0.0.1/")).at("/metadata/url"),
        post("ssrf", create, discord_at("http://127.0.0.1/api/webhooks/1/abc")).at("/metadata/webhookUrl"),
        post("ssrf", create, discord_at("https://169.254.169.254/api/webhooks/1/abc")).at("/metadata/webhookUrl"),
        post("ssrf", create, discord_at("https://[::1]/api/webhooks/1/abc")).at("/metadata/webhookUrl"),
        post("ssrf", create, discord_at("https://localhost/api/webhooks/1/abc")).at("/metadata/webhookUrl"),
        post("ssrf", create, discord_at("https://discord.com@127.0.0.1/api/webhooks/1/abc")).at("/metadata/webhookUrl"),
        patch("ssrf", "/integrations/hook", json!({"metadata": {"url": "http://169.254.169.254/latest/meta-data/"}}))
            .refused_live(),
        patch("ssrf", "/integrations/hook", json!({"metadata": {"url": "http://localhost:9/hook"}})).refused_live(),
        patch("ssrf", "/integrations/alerts", json!({"metadata": {"webhookUrl": "https://127.0.0.1/api/webhooks/1/abc"}}))
            .at("/metadata/webhookUrl"),
        post("ssrf", "/integrations/validate", with(webhook("http://[::1]:9/hook"), json!({"workspace": "acme"})))
            .dry_run_fails("live"),
        post("ssrf", "/integrations/validate", json!({"slug": "hook", "patch": {"metadata": {"url": "http://127.0.0.1:9/"}}}))
            .dry_run_fails("live"),
        // --- Sync settings.
        post("sync", create, vercel(json!({"keyTemplate": "APP_"}))).at("/sync/keyTemplate"),
        post("sync", create, vercel(json!({"keyTemplate": "{{key}}; DROP TABLE sync_records"}))).at("/sync/keyTemplate"),
        post("sync", create, vercel(json!({"onConflict": "overwrite"}))).at("/sync/onConflict"),
        post("sync", create, vercel(json!({"targets": {"qa": "preview", "dev": "development", "prod": "production"}})))
            .at("/sync/targets/qa"),
        post("sync", create, vercel(json!({"targets": {"dev": "../../etc", "prod": "production"}}))).at("/sync/targets/dev"),
        post("sync", create, vercel(json!({"targets": ["production"]}))).at("/sync/targets"),
        patch("sync", "/integrations/shop-sync?validate=false", json!({"sync": {"targets": {"dev": "production", "prod": "production"}}}))
            .at("/sync/targets/prod"),
        patch("sync", "/integrations/shop-sync?validate=false", json!({"sync": {"keyTemplate": "{{key"}})).at("/sync/keyTemplate"),
        post("sync", create, with(discord_at(&discord::webhook_url()), json!({"sync": {"keyTemplate": "{{key}}"}}))).at("/sync"),
        patch("sync", "/integrations/alerts?validate=false", json!({"sync": {"targets": {}}})).at("/sync"),
        post("sync", "/integrations/alerts/sync?dryRun=true", json!({})).code("bad_request"),
        // --- The dry run, runs and the rest.
        post("dry run", "/integrations/validate", json!([1])).at(""),
        post("dry run", "/integrations/validate", discord_at(&discord::webhook_url())).at("/workspace"),
        post("dry run", "/integrations/validate", with(discord_at(&discord::webhook_url()), json!({"workspace": 5})))
            .at("/workspace"),
        post("dry run", "/integrations/validate", json!({"slug": "alerts", "patch": {"colour": 1}})).at("/patch/colour"),
        post("runs", "/integrations/alerts/runs/retry", json!({"failedSince": "yesterday"})).at("/failedSince"),
        post("runs", "/integrations/alerts/runs/retry", json!({})).at("/failedSince"),
        post("runs", &format!("/integrations/alerts/runs/{NO_RUN}/retry"), json!({})).not_found(),
        get("routes", "/integrations/ALERTS").not_found(),
        get("routes", "/integration-types/nope").not_found(),
        get("routes", "/nothing-here").not_found(),
        req("routes", "PUT", "/workspaces/acme", Some(named("Acme"))).not_found(),
    ];
    // Each integration gets its own name, so a row that wrongly creates one does not turn the
    // rows after it into name conflicts.
    for (i, row) in table.iter_mut().enumerate() {
        if let Via::Json(Some(body)) = &mut row.via
            && body["name"] == "Probe"
        {
            body["name"] = json!(format!("Probe {i}"));
        }
    }
    table
}

/// Sends a row's request; the answer, or why it could not be sent.
async fn send(api: &Api, row: &Row) -> RawAnswer {
    match &row.via {
        Via::Json(body) => {
            let bytes = body.as_ref().map(|b| serde_json::to_vec(b).unwrap());
            let content_type = body.as_ref().map(|_| "application/json");
            api.send(
                row.method,
                &row.path,
                Some(&format!("Bearer {ADMIN}")),
                content_type,
                bytes,
            )
            .await
        }
        Via::Raw(content_type, bytes) => {
            api.call_raw(row.method, &row.path, ADMIN, *content_type, bytes.clone())
                .await
        }
        Via::Wire(request) => api.wire(request.clone()).await,
    }
}

/// Checks an answer against its row: `Err` says what is wrong.
fn check(row: &Row, answer: &RawAnswer) -> Result<(), String> {
    let body = &answer.body;
    let shown = || answer.text.chars().take(400).collect::<String>();
    if answer.status >= 500 {
        return Err(format!(
            "answered {} (never a 5xx): {}",
            answer.status,
            shown()
        ));
    }
    if answer.status != row.status {
        return Err(format!(
            "answered {} instead of {}: {}",
            answer.status,
            row.status,
            shown()
        ));
    }
    match row.kind {
        Kind::EmptyList => {
            return if body["items"] == json!([]) {
                Ok(())
            } else {
                Err(format!("expected no items: {}", shown()))
            };
        }
        Kind::DryRunFails(name) => {
            let failed = body["valid"] == false
                && body["checks"].as_array().is_some_and(|checks| {
                    checks.iter().any(|c| {
                        c["name"] == name && c["passed"] == false && c.get("skipped").is_none()
                    })
                });
            return if failed {
                Ok(())
            } else {
                Err(format!("expected the `{name}` check to fail: {}", shown()))
            };
        }
        Kind::Problem => {}
    }
    let content_type = answer.header("content-type").unwrap_or_default();
    if !content_type.starts_with("application/problem+json") {
        return Err(format!(
            "content type `{content_type}`, not a problem document"
        ));
    }
    let well_formed = body["type"].is_string()
        && body["title"].is_string()
        && body["detail"].is_string()
        && body["status"] == row.status
        && body["code"].as_str().is_some_and(|c| !c.is_empty());
    if !well_formed {
        return Err(format!("not a well-formed problem document: {}", shown()));
    }
    if let Some(code) = row.code
        && body["code"] != code
    {
        return Err(format!(
            "code {} instead of `{code}`: {}",
            body["code"],
            shown()
        ));
    }
    if let Some(pointer) = &row.pointer {
        let pointers: Vec<&str> = body["errors"]
            .as_array()
            .map(|e| e.iter().filter_map(|x| x["pointer"].as_str()).collect())
            .unwrap_or_default();
        if !pointers.contains(&pointer.as_str()) {
            return Err(format!("no error at `{pointer}`: {}", shown()));
        }
    }
    Ok(())
}

#[tokio::test]
async fn every_malformed_request_gets_its_4xx_problem_and_changes_nothing() {
    let limit = LIMIT.to_string();
    let mut wrong = Vec::new();
    for api in Api::all_with_env(&[
        ("KEYWIRE_MAX_BODY_BYTES", limit.as_str()),
        ("KEYWIRE_OUTBOUND_ALLOW", ""),
    ])
    .await
    {
        let backend = api.backend();
        let seeded = Instant::now();
        let seed = seed(&api).await;
        let before = snapshot(&api, &seed).await;
        let table = rows(&seed);
        let client_errors = table
            .iter()
            .filter(|r| (400..500).contains(&r.status))
            .count();
        assert!(client_errors >= 60, "{client_errors} 4xx rows");

        let started = Instant::now();
        let mut failures = Vec::new();
        for (i, row) in table.iter().enumerate() {
            let answer = send(&api, row).await;
            if let Err(why) = check(row, &answer) {
                failures.push(format!("row {i} {}\n    {why}", row.label()));
            }
        }
        let sent = started.elapsed();

        let after = snapshot(&api, &seed).await;
        let mut changed = Vec::new();
        for key in before
            .keys()
            .chain(after.keys().filter(|k| !before.contains_key(*k)))
        {
            let (a, b) = (
                before.get(key).unwrap_or(&Value::Null),
                after.get(key).unwrap_or(&Value::Null),
            );
            let mut found = Vec::new();
            differences(a, b, "", &mut found);
            changed.extend(found.into_iter().map(|d| format!("{key}: {d}")));
        }
        eprintln!(
            "{backend}: {} rows ({client_errors} 4xx) sent in {sent:?}; seed + snapshots + table {:?}; {} parts of the snapshot compared",
            table.len(),
            seeded.elapsed(),
            before.len()
        );
        if !failures.is_empty() || !changed.is_empty() {
            wrong.push(format!(
                "{backend}: {} of {} rows answered wrongly:\n{}\n\n{backend}: the data changed in {} places:\n{}",
                failures.len(),
                table.len(),
                failures.join("\n"),
                changed.len(),
                changed.join("\n")
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

//! The web console as the real binary serves it: the page at `/` with a strict
//! Content-Security-Policy, every embedded asset with its content type and an `ETag`, nothing
//! fetched from elsewhere, and under 200 KB in total. (The browser test in `console-tests/`
//! drives it; this checks what a browser is sent.)

use std::collections::BTreeSet;

use keywire_server::routes::console::{ASSETS, CONTENT_SECURITY_POLICY, MAX_TOTAL_BYTES};
use keywire_test_support::server::{Server, ServerConfig};

const BIN: &str = env!("CARGO_BIN_EXE_keywire");
const CONSOLE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/console");

fn start() -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&ServerConfig::new(BIN, dir.path()));
    (server, dir)
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn the_page_and_every_asset_are_served_with_a_strict_policy() {
    let (server, _dir) = start();
    let http = keywire_test_support::http_client();

    let page = http.get(format!("{}/", server.url)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(header(&page, "content-type"), "text/html; charset=utf-8");
    let csp = header(&page, "content-security-policy");
    assert_eq!(csp, CONTENT_SECURITY_POLICY);
    assert!(csp.starts_with("default-src 'self';"), "{csp}");
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("object-src 'none'"));
    assert_eq!(header(&page, "x-content-type-options"), "nosniff");
    assert_eq!(header(&page, "referrer-policy"), "no-referrer");
    assert_eq!(header(&page, "cache-control"), "no-cache");
    assert!(header(&page, "set-cookie").is_empty());
    let html = page.text().await.unwrap();
    assert!(html.contains("<main id=\"main\""), "{html}");

    for asset in ASSETS {
        let url = format!("{}/console/{}", server.url, asset.name);
        let response = http.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 200, "{}", asset.name);
        assert_eq!(
            header(&response, "content-type"),
            asset.content_type,
            "{}",
            asset.name
        );
        assert_eq!(header(&response, "content-security-policy"), csp);
        assert_eq!(header(&response, "cache-control"), "no-cache");
        let etag = header(&response, "etag");
        assert!(etag.starts_with('"') && etag.len() > 4, "{etag}");
        assert_eq!(response.bytes().await.unwrap().as_ref(), asset.body);

        // A browser that has the file revalidates it and gets 304 with no body.
        let again = http
            .get(&url)
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "{}", asset.name);
        assert_eq!(header(&again, "etag"), etag);
        assert!(again.bytes().await.unwrap().is_empty());

        let head = http.head(&url).send().await.unwrap();
        assert_eq!(head.status(), 200, "HEAD {}", asset.name);
    }

    // Unknown files are problem documents, and the API keeps its own routes.
    let missing = http
        .get(format!("{}/console/nope.mjs", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(header(&missing, "content-type"), "application/problem+json");
    let traversal = http
        .get(format!("{}/console/..%2FCargo.toml", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(traversal.status(), 404);
    let health = http
        .get(format!("{}/health", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let api = http
        .get(format!("{}/api/v1/workspaces", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 401);

    // The console is not part of the API description.
    let openapi: serde_json::Value = http
        .get(format!("{}/openapi.json", server.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paths = openapi["paths"].as_object().unwrap();
    assert!(paths.keys().all(|p| p != "/" && !p.starts_with("/console")));
}

#[test]
fn the_embedded_assets_are_the_console_directory_and_stay_under_200_kb() {
    let on_disk: BTreeSet<String> = std::fs::read_dir(CONSOLE_DIR)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| e.file_name().into_string().unwrap())
        .collect();
    let embedded: BTreeSet<String> = ASSETS.iter().map(|a| a.name.to_owned()).collect();
    assert_eq!(
        embedded, on_disk,
        "every file in console/ must be listed in routes/console.rs ASSETS, and only those"
    );
    let total: usize = ASSETS.iter().map(|a| a.body.len()).sum();
    assert_eq!(total, keywire_server::routes::console::total_bytes());
    assert!(
        total < MAX_TOTAL_BYTES,
        "the console's assets add up to {total} bytes; the first load must stay under {MAX_TOTAL_BYTES}"
    );
}

#[test]
fn the_console_loads_nothing_from_elsewhere_and_has_no_inline_code() {
    let names: BTreeSet<&str> = ASSETS.iter().map(|a| a.name).collect();
    for asset in ASSETS {
        let text = std::str::from_utf8(asset.body).unwrap();
        // Module imports are relative and name embedded files.
        for line in text.lines() {
            let line = line.trim();
            if !(line.starts_with("import ") || line.starts_with("} from ")) {
                continue;
            }
            if let Some(start) = line.find("from '") {
                let target = &line[start + 6..];
                let target = &target[..target.find('\'').unwrap()];
                let file = target.strip_prefix("./").unwrap_or_else(|| {
                    panic!(
                        "{}: import of `{target}` is not a relative module",
                        asset.name
                    )
                });
                assert!(
                    names.contains(file),
                    "{}: imports {file}, which is not embedded",
                    asset.name
                );
            }
        }
        // Nothing names another origin (the policy would block it anyway).
        for scheme in ["http://", "https://", "//cdn"] {
            let hits: Vec<&str> = text
                .lines()
                .filter(|l| l.contains(scheme) && !l.contains("www.w3.org/2000/svg"))
                .collect();
            assert!(
                hits.is_empty(),
                "{} refers to another origin: {hits:?}",
                asset.name
            );
        }
    }
    let index = ASSETS.iter().find(|a| a.name == "index.html").unwrap();
    let html = std::str::from_utf8(index.body).unwrap();
    for tag in html.split("<script").skip(1) {
        let open = &tag[..tag.find('>').unwrap()];
        assert!(
            open.contains("src=\"/console/"),
            "inline script: <script{open}>"
        );
    }
    assert!(!html.contains(" style=") && !html.contains("<style"));
    for href in html.split("=\"/console/").skip(1) {
        let file = &href[..href.find('"').unwrap()];
        assert!(names.contains(file), "index.html refers to {file}");
    }
}

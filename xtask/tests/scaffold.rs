//! End to end: `cargo xtask scaffold` in a copy of the workspace yields an integration type that
//! the built server lists at `GET /api/v1/integration-types`.
//!
//! The copy lives at `target/scaffold-e2e/workspace` (a stable path, files copied with their
//! modification times) and builds into `target/scaffold-e2e/target`, so repeated runs only
//! rebuild what the scaffold changed. The first run builds every dependency once.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const TOKEN: &str = "kw_scaffold_e2e_token_0123456789";

fn real_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask has a parent")
        .to_owned()
}

/// Copies `from` to `to` recursively, keeping modification times (so cargo sees unchanged
/// crates as fresh).
fn copy_tree(from: &Path, to: &Path) {
    if from.is_dir() {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            copy_tree(&entry.path(), &to.join(entry.file_name()));
        }
    } else {
        std::fs::copy(from, to).unwrap();
        let modified = std::fs::metadata(from).unwrap().modified().unwrap();
        std::fs::File::options()
            .write(true)
            .open(to)
            .unwrap()
            .set_modified(modified)
            .unwrap();
    }
}

/// Every file under `dir` with its contents.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.insert(path.clone(), std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

/// `cargo <args> --offline` in the copy, building into the dedicated target directory.
fn cargo(workspace: &Path, target: &Path, args: &[&str]) -> Output {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args(args)
        .current_dir(workspace)
        .env("CARGO_TARGET_DIR", target)
        // Also for the `cargo run` that codegen starts.
        .env("CARGO_NET_OFFLINE", "true")
        .env_remove("CARGO_MANIFEST_DIR")
        .env_remove("CARGO_PRIMARY_PACKAGE")
        .env_remove("RUSTFLAGS")
        .stdin(Stdio::null())
        .output()
        .expect("run cargo");
    eprintln!(
        "$ cargo {} → {}\n{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr)
            .lines()
            .filter(|l| !l.trim_start().starts_with("Compiling"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    output
}

/// Kills the server when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn get(base: &str, path: &str) -> (String, String) {
    let host = base.strip_prefix("http://").expect("http URL");
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    (head.to_owned(), body.to_owned())
}

#[test]
fn a_scaffolded_integration_builds_passes_its_contract_test_and_is_served() {
    let root = real_root();
    let e2e = root.join("target/scaffold-e2e");
    let workspace = e2e.join("workspace");
    let target = e2e.join("target");
    let data = e2e.join("data");
    for dir in [&workspace, &data] {
        if dir.exists() {
            std::fs::remove_dir_all(dir).unwrap();
        }
    }
    std::fs::create_dir_all(&workspace).unwrap();
    for name in [
        "Cargo.toml",
        "Cargo.lock",
        ".cargo",
        "rust-toolchain.toml",
        "crates",
        "xtask",
        "fuzz",
        "migrations",
        "docs",
        "README.md",
    ] {
        copy_tree(&root.join(name), &workspace.join(name));
    }
    let crate_dir = workspace.join("crates/keywire-integration-demo-thing");
    assert!(
        !crate_dir.exists(),
        "the real workspace already has demo_thing"
    );

    let started = Instant::now();
    let scaffold = [
        "run",
        "--quiet",
        "-p",
        "xtask",
        "--",
        "scaffold",
        "demo_thing",
        "--category",
        "communication",
    ];
    let out = cargo(&workspace, &target, &scaffold);
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!("{printed}");
    assert!(out.status.success(), "scaffold failed");
    for path in [
        "crates/keywire-integration-demo-thing/Cargo.toml",
        "crates/keywire-integration-demo-thing/README.md",
        "crates/keywire-integration-demo-thing/src/lib.rs",
        "crates/keywire-integration-demo-thing/tests/demo_thing.rs",
        "crates/keywire-server/src/integrations.rs",
        "crates/keywire-server/Cargo.toml",
        "docs/integrations/demo_thing.md",
        "README.md",
    ] {
        assert!(printed.contains(path), "scaffold did not report {path}");
        assert!(workspace.join(path).is_file(), "{path} is missing");
    }

    let out = cargo(
        &workspace,
        &target,
        &["build", "-p", "keywire-server", "--bin", "keywire"],
    );
    assert!(out.status.success(), "the server does not build");
    let mut server = Running(
        Command::new(target.join("debug/keywire"))
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("KEYWIRE_LISTEN", "127.0.0.1:0")
            .env("KEYWIRE_DATA_DIR", &data)
            .env("KEYWIRE_BOOTSTRAP_TOKEN", TOKEN)
            .env("KEYWIRE_HTTP_WORKERS", "1")
            .env("KEYWIRE_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start keywire"),
    );
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = server.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(url) = line.trim().strip_prefix("keywire listening on ") {
                let _ = tx.send(url.to_owned());
            }
        }
    });
    let url = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("keywire did not say `keywire listening on …` within 60 s");
    let (head, body) = get(&url, "/api/v1/integration-types");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}\n{body}");
    let list: serde_json::Value = serde_json::from_str(&body).expect("JSON body");
    let ids: Vec<&str> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|t| t["type"].as_str())
        .collect();
    assert!(ids.contains(&"demo_thing"), "{ids:?}");
    let elapsed = started.elapsed();
    eprintln!(
        "scaffold → build → registered and served: {:.1} s",
        elapsed.as_secs_f64()
    );
    drop(server);

    // A second scaffold of the same name fails and touches nothing.
    let before = snapshot(&crate_dir);
    let out = cargo(&workspace, &target, &scaffold);
    assert!(!out.status.success(), "a second scaffold must fail");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already exists"),
        "the error says the name is taken"
    );
    assert_eq!(snapshot(&crate_dir), before, "files were touched");

    // The generated crate's own tests pass, and every generated file is fresh.
    let out = cargo(
        &workspace,
        &target,
        &["test", "-p", "keywire-integration-demo-thing"],
    );
    assert!(out.status.success(), "the scaffolded crate's tests fail");
    let out = cargo(
        &workspace,
        &target,
        &["run", "--quiet", "-p", "xtask", "--", "codegen", "--check"],
    );
    assert!(out.status.success(), "codegen --check fails after scaffold");
    let out = cargo(&workspace, &target, &["fmt", "--all", "--check"]);
    assert!(
        out.status.success(),
        "the scaffolded code is not rustfmt-clean"
    );
}

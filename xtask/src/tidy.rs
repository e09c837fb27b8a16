//! Tidy rules, checked by `cargo test`: the dependency invariants of docs/ARCHITECTURE.md and the
//! house rules every crate follows.

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::process::Command;

    use serde_json::Value;

    use crate::workspace_root;

    /// `cargo metadata` of the workspace.
    fn metadata() -> Value {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        // Only this machine's platform: other platforms' crates are never downloaded here.
        let host = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
            .arg("-vV")
            .output()
            .expect("run rustc -vV");
        let host = String::from_utf8_lossy(&host.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
            .expect("rustc -vV names the host");
        let out = Command::new(cargo)
            .args([
                "metadata",
                "--format-version",
                "1",
                "--offline",
                "--filter-platform",
                &host,
            ])
            .current_dir(workspace_root())
            .output()
            .expect("run cargo metadata");
        assert!(
            out.status.success(),
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON")
    }

    /// Package name → names of everything it depends on for building (not dev), transitively.
    fn normal_closure(meta: &Value) -> BTreeMap<String, BTreeSet<String>> {
        let names: BTreeMap<&str, &str> = meta["packages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
            .collect();
        let mut direct: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for node in meta["resolve"]["nodes"].as_array().unwrap() {
            let deps = node["deps"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| {
                    d["dep_kinds"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|k| k["kind"].is_null())
                })
                .map(|d| d["pkg"].as_str().unwrap())
                .collect();
            direct.insert(node["id"].as_str().unwrap(), deps);
        }
        let mut closure = BTreeMap::new();
        for member in meta["workspace_members"].as_array().unwrap() {
            let mut seen = BTreeSet::new();
            let mut stack = vec![member.as_str().unwrap()];
            while let Some(id) = stack.pop() {
                for dep in direct.get(id).into_iter().flatten() {
                    if seen.insert(names[dep].to_owned()) {
                        stack.push(dep);
                    }
                }
            }
            closure.insert(names[member.as_str().unwrap()].to_owned(), seen);
        }
        closure
    }

    #[test]
    fn core_and_integrations_know_nothing_of_the_server_or_the_database() {
        let closure = normal_closure(&metadata());
        let forbidden = [
            "actix-web",
            "diesel",
            "diesel-async",
            "keywire-db",
            "keywire-server",
        ];
        let mut checked = 0;
        for (crate_name, deps) in &closure {
            if crate_name == "keywire-core" || crate_name.starts_with("keywire-integration-") {
                checked += 1;
                for bad in forbidden {
                    assert!(
                        !deps.contains(bad),
                        "{crate_name} depends on {bad} (see docs/ARCHITECTURE.md)"
                    );
                }
                if crate_name != "keywire-core" {
                    assert!(
                        deps.contains("keywire-core"),
                        "{crate_name} must build on keywire-core"
                    );
                }
            }
        }
        assert!(
            checked >= 3,
            "expected keywire-core and at least two integration crates"
        );
    }

    #[test]
    fn integration_crates_depend_on_no_workspace_crate_but_keywire_core() {
        let meta = metadata();
        let packages = meta["packages"].as_array().unwrap();
        let members: BTreeSet<&str> = meta["workspace_members"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let member_names: BTreeSet<&str> = packages
            .iter()
            .filter(|p| members.contains(p["id"].as_str().unwrap()))
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        for package in packages {
            let name = package["name"].as_str().unwrap();
            if !name.starts_with("keywire-integration-") {
                continue;
            }
            for dep in package["dependencies"].as_array().unwrap() {
                let dep_name = dep["name"].as_str().unwrap();
                let normal = dep["kind"].is_null();
                assert!(
                    !normal || dep_name == "keywire-core" || !member_names.contains(dep_name),
                    "{name} depends on the workspace crate {dep_name}: an integration crate builds \
                     on keywire-core only (plus its provider's client crates)"
                );
            }
        }
    }

    /// Every `.rs` file under `dir`, with its text.
    fn rust_files(dir: &std::path::Path) -> Vec<(std::path::PathBuf, String)> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_owned()];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    out.push((path, text));
                }
            }
        }
        out
    }

    #[test]
    fn every_integration_crate_submits_one_descriptor_and_has_the_contract_test() {
        let root = workspace_root();
        let crates = crate::codegen::integration_crates(&root).unwrap();
        assert!(
            crates.len() >= 2,
            "expected integration crates, found {crates:?}"
        );
        for name in crates {
            let dir = root.join("crates").join(&name);
            let submits: usize = rust_files(&dir.join("src"))
                .iter()
                .map(|(_, text)| text.matches(concat!("inventory::", "submit!")).count())
                .sum();
            let describes = rust_files(&dir.join("src"))
                .iter()
                .any(|(_, text)| text.contains("IntegrationDescriptor::new"));
            assert!(
                submits == 1 && describes,
                "{name}: its src/ must submit exactly one IntegrationDescriptor with \
                 `inventory::submit!` (found {submits} submissions)"
            );
            let contract = rust_files(&dir.join("tests"))
                .iter()
                .any(|(_, text)| text.contains(concat!("check_descriptor", "(")));
            assert!(
                contract,
                "{name}: add a test in tests/*.rs that calls `keywire_core::check_descriptor(\"<type id>\")`"
            );
        }
    }

    #[test]
    fn every_crate_has_a_readme_a_crate_doc_and_workspace_lints() {
        let root = workspace_root();
        let mut dirs: Vec<_> = std::fs::read_dir(root.join("crates"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        dirs.push(root.join("xtask"));
        dirs.push(root.join("fuzz"));
        for dir in dirs {
            let name = dir.file_name().unwrap().to_string_lossy().into_owned();
            let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
            assert!(
                manifest.contains("[lints]\nworkspace = true"),
                "{name}: add `[lints] workspace = true`"
            );
            let entry = ["src/lib.rs", "src/main.rs"]
                .iter()
                .map(|f| dir.join(f))
                .find(|p| p.exists())
                .unwrap();
            let source = std::fs::read_to_string(&entry).unwrap();
            assert!(
                source.contains("//!") || source.contains("#![doc"),
                "{name}: the crate needs a `//!` doc"
            );
            if name != "xtask" && name != "keywire-server" {
                assert!(
                    dir.join("README.md").exists(),
                    "{name}: add a README.md (the crate's rustdoc)"
                );
            }
        }
    }

    #[test]
    fn no_test_is_ignored_and_nothing_is_left_unfinished() {
        let root = workspace_root();
        let mut stack = vec![root.join("crates"), root.join("xtask"), root.join("fuzz")];
        let needles = [
            concat!("#[", "ignore"),
            concat!("todo", "!("),
            concat!("unimplemented", "!("),
        ];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    for needle in needles {
                        assert!(
                            !text.contains(needle),
                            "{} contains `{needle}`",
                            path.display()
                        );
                    }
                }
            }
        }
    }
}

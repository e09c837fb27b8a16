//! `cargo xtask scaffold <name> --category communication|infrastructure`: a new integration
//! crate that builds, registers itself and passes its contract test, with behaviour that says
//! "not yet implemented" until it is written. Never overwrites: files are created with
//! `create_new`, and an existing crate is an error.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::codegen;

/// What an integration is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    /// Tells people.
    Communication,
    /// Pushes values into the systems that run code.
    Infrastructure,
}

impl Category {
    /// Parses `communication` or `infrastructure`.
    pub fn parse(s: &str) -> Result<Category, String> {
        match s {
            "communication" => Ok(Category::Communication),
            "infrastructure" => Ok(Category::Infrastructure),
            _ => Err(format!(
                "unknown category `{s}`: use communication or infrastructure"
            )),
        }
    }
}

/// Checks a type id: `^[a-z][a-z0-9_]*$`.
pub fn validate_name(name: &str) -> Result<(), String> {
    let ok = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a valid type id: it must match ^[a-z][a-z0-9_]*$ (e.g. `slack`, `aws_lambda`)"
        ))
    }
}

/// `demo_thing` → `Demo Thing` (or `DemoThing` with `sep` empty).
fn words(name: &str, sep: &str) -> String {
    name.split('_')
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut chars = w.chars();
            let first = chars.next().map(|c| c.to_ascii_uppercase());
            first.into_iter().chain(chars).collect::<String>()
        })
        .collect::<Vec<_>>()
        .join(sep)
}

/// The files of a new integration crate, relative to its folder.
fn files(name: &str, category: Category) -> Vec<(String, String)> {
    let dashed = name.replace('_', "-");
    let krate = format!("keywire-integration-{dashed}");
    let dir = format!("crates/{krate}");
    let display = words(name, " ");
    let description = match category {
        Category::Communication => format!("Sends each subscribed event to {display}."),
        Category::Infrastructure => {
            format!("Pushes a project's secrets and variables to {display}.")
        }
    };
    let (imports, builder) = match category {
        Category::Communication => (
            "    Category, Context, Delivery, Integration, IntegrationDescriptor, IntegrationError, Metadata,\n    \
             Outcome, Secret, async_trait, inventory,",
            "    .category(Category::Communication)",
        ),
        Category::Infrastructure => (
            "    ACTION_CLEANUP_ON_REMOVE, ACTION_DELETE, ACTION_UPSERT, Category, Context, Delivery,\n    \
             Integration, IntegrationDescriptor, IntegrationError, Metadata, Outcome, ScopeRule, Secret,\n    \
             async_trait, inventory,",
            "    .category(Category::Infrastructure)\n    \
             .actions(&[ACTION_UPSERT, ACTION_DELETE, ACTION_CLEANUP_ON_REMOVE])\n    \
             .scope(ScopeRule::PROJECT_ENVIRONMENTS)",
        ),
    };
    let fill = |template: &str| {
        template
            .replace("{{imports}}", imports)
            .replace("{{builder}}", builder)
            .replace("{{crate_ident}}", &krate.replace('-', "_"))
            .replace("{{crate}}", &krate)
            .replace("{{dir}}", &dir)
            .replace("{{name}}", name)
            .replace("{{Name}}", &display)
            .replace("{{Struct}}", &words(name, ""))
            .replace("{{host}}", &dashed)
            .replace("{{description}}", &description)
    };
    vec![
        (
            "Cargo.toml".into(),
            fill(include_str!("../templates/Cargo.toml.tpl")),
        ),
        (
            "README.md".into(),
            fill(include_str!("../templates/README.md.tpl")),
        ),
        (
            "src/lib.rs".into(),
            fill(include_str!("../templates/lib.rs.tpl")),
        ),
        (
            format!("tests/{name}.rs"),
            fill(include_str!("../templates/test.rs.tpl")),
        ),
    ]
}

/// Creates the crate and runs codegen; returns one line per path written.
pub fn run(root: &Path, name: &str, category: Category) -> Result<Vec<String>, String> {
    validate_name(name)?;
    let dir_name = format!("keywire-integration-{}", name.replace('_', "-"));
    let dir = root.join("crates").join(&dir_name);
    if dir.exists() {
        return Err(format!(
            "crates/{dir_name} already exists: integration `{name}` is taken (nothing was written)"
        ));
    }
    // `create_dir` (not `create_dir_all`) fails if the folder appeared meanwhile.
    std::fs::create_dir(&dir).map_err(|e| format!("cannot create crates/{dir_name}: {e}"))?;
    let mut report = vec![format!("created crates/{dir_name}/")];
    for (relative, contents) in files(name, category) {
        let path: PathBuf = dir.join(&relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| format!("cannot create crates/{dir_name}/{relative}: {e}"))?;
        file.write_all(contents.as_bytes())
            .map_err(|e| format!("cannot write crates/{dir_name}/{relative}: {e}"))?;
        report.push(format!("wrote   crates/{dir_name}/{relative}"));
    }
    let generated = codegen::run_all(root, codegen::Mode::Write)
        .map_err(|e| format!("the crate was created, but codegen failed: {e}"))?;
    report.extend(generated.into_iter().filter(|l| !l.starts_with("fresh")));
    report.push(format!(
        "next: fill in the metadata and emit() in crates/{dir_name}/src/lib.rs, then \
         `cargo test -p {dir_name}` (see docs/writing-an-integration.md)"
    ));
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_validated() {
        for good in ["slack", "aws_lambda", "x2"] {
            validate_name(good).unwrap();
        }
        for bad in ["", "Slack", "2x", "_x", "aws-lambda", "a b", "ü"] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn templates_are_fully_filled_and_never_unfinished() {
        for category in [Category::Communication, Category::Infrastructure] {
            for (path, text) in files("demo_thing", category) {
                assert!(!text.contains("{{"), "{path}: unfilled placeholder");
                assert!(!text.contains(concat!("todo", "!(")), "{path}");
            }
        }
        let lib = &files("demo_thing", Category::Infrastructure)[2].1;
        assert!(lib.contains("ScopeRule::PROJECT_ENVIRONMENTS"));
        assert!(lib.contains("pub struct DemoThingMetadata"));
        assert!(
            lib.contains(".actions(&[ACTION_UPSERT, ACTION_DELETE, ACTION_CLEANUP_ON_REMOVE])")
        );
        assert!(lib.contains(
            "demo_thing: not yet implemented — fill in emit() in crates/keywire-integration-demo-thing/src/lib.rs"
        ));
    }

    #[test]
    fn generated_rust_is_rustfmt_clean() {
        for category in [Category::Communication, Category::Infrastructure] {
            for (path, text) in files("demo_thing", category) {
                if !path.ends_with(".rs") {
                    continue;
                }
                let mut child = std::process::Command::new("rustfmt")
                    .args(["--edition", "2024", "--check"])
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::piped())
                    .spawn()
                    .expect("run rustfmt");
                child
                    .stdin
                    .take()
                    .unwrap()
                    .write_all(text.as_bytes())
                    .unwrap();
                let out = child.wait_with_output().unwrap();
                assert!(
                    out.status.success(),
                    "{category:?} {path} is not rustfmt-clean:\n{}",
                    String::from_utf8_lossy(&out.stdout)
                );
            }
        }
    }

    #[test]
    fn an_existing_crate_is_an_error_and_nothing_is_written() {
        let root = crate::workspace_root();
        let before =
            std::fs::read_to_string(root.join("crates/keywire-integration-webhook/src/lib.rs"))
                .unwrap();
        let err = run(&root, "webhook", Category::Communication).unwrap_err();
        assert!(err.contains("already exists"), "{err}");
        let after =
            std::fs::read_to_string(root.join("crates/keywire-integration-webhook/src/lib.rs"))
                .unwrap();
        assert_eq!(before, after);
        assert!(run(&root, "Bad-Name", Category::Communication).is_err());
    }
}

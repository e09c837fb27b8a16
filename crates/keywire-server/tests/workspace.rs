//! The registry holds exactly the workspace's integration crates.

use std::collections::BTreeSet;
use std::path::Path;

// Link the server library, whose generated `integrations` module names every integration crate.
use keywire_server as _;

#[test]
fn the_registry_holds_exactly_the_integration_crates_of_the_workspace() {
    let crates_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let on_disk: BTreeSet<String> = std::fs::read_dir(&crates_dir)
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().into_string().ok())
        .filter_map(|name| {
            name.strip_prefix("keywire-integration-")
                .map(|n| n.replace('-', "_"))
        })
        .collect();
    let registered: BTreeSet<String> = keywire_core::registry()
        .iter()
        .map(|d| d.type_id.to_owned())
        .collect();
    assert!(on_disk.contains("discord") && on_disk.contains("webhook"));
    assert_eq!(
        registered, on_disk,
        "every crates/keywire-integration-<name> must register type `<name>`, and be linked: run `cargo xtask codegen`"
    );
    for type_id in &registered {
        keywire_core::check_descriptor(type_id).unwrap_or_else(|p| panic!("{type_id}: {p:?}"));
    }
}

#[test]
fn generated_integration_docs_are_fresh() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let all = keywire_core::registry();
    let stale = "run `cargo xtask codegen` and commit";
    let pages = root.join("docs/integrations");
    for d in &all {
        let path = pages.join(format!("{}.md", d.type_id));
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            current == keywire_core::integration_page(d),
            "docs/integrations/{}.md is stale: {stale}",
            d.type_id
        );
    }
    for entry in std::fs::read_dir(&pages).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let type_id = name.strip_suffix(".md").unwrap_or(&name);
        assert!(
            all.iter().any(|d| d.type_id == type_id),
            "docs/integrations/{name} documents no registered type: {stale}"
        );
    }
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let wanted = keywire_core::docs::with_integrations_table(&readme, &all).unwrap();
    assert!(
        readme == wanted,
        "the integration table in README.md is stale: {stale}"
    );
}

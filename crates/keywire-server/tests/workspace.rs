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

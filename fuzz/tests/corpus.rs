//! Replays every committed corpus file through its target, and each registered type's example
//! metadata through the metadata target: what the fuzzers found stays fixed, in plain
//! `cargo test`.

use std::path::{Path, PathBuf};

fn corpus(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target)
}

/// The files of a corpus directory, sorted (none when it does not exist).
fn inputs(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    out.sort();
    out
}

/// Runs `target` over every input, naming the file that fails.
fn replay(dir: &Path, target: impl Fn(&[u8]) + std::panic::RefUnwindSafe) -> usize {
    let all = inputs(dir);
    for (path, bytes) in &all {
        if std::panic::catch_unwind(|| target(bytes)).is_err() {
            panic!("{} fails its target", path.display());
        }
    }
    all.len()
}

#[test]
fn every_metadata_input_passes_for_its_type() {
    let types = keywire_fuzz::integration_types();
    assert!(types.len() >= 9, "the registry is not linked: {types:?}");
    let mut replayed = 0;
    for type_id in &types {
        let descriptor = keywire_core::find(type_id).unwrap();
        let example = descriptor.example_metadata().to_string();
        keywire_fuzz::metadata(type_id, example.as_bytes());
        replayed += replay(&corpus("metadata").join(type_id), |data| {
            keywire_fuzz::metadata(type_id, data)
        });
    }
    // A directory that no type owns belongs to a type that was renamed or removed.
    let stray = inputs(&corpus("metadata"));
    assert!(stray.is_empty(), "files outside a type's folder: {stray:?}");
    for entry in std::fs::read_dir(corpus("metadata")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            types.contains(&name.as_str()),
            "corpus/metadata/{name} belongs to no registered type"
        );
    }
    eprintln!(
        "metadata: {replayed} corpus inputs over {} types",
        types.len()
    );
}

#[test]
fn every_event_payload_input_passes() {
    let n = replay(&corpus("event_payload"), keywire_fuzz::event_payload);
    assert!(n > 0, "the event_payload corpus is empty");
    eprintln!("event_payload: {n} corpus inputs");
}

#[test]
fn every_webhook_envelope_input_passes() {
    let n = replay(&corpus("webhook_envelope"), keywire_fuzz::webhook_envelope);
    assert!(n > 0, "the webhook_envelope corpus is empty");
    eprintln!("webhook_envelope: {n} corpus inputs");
}

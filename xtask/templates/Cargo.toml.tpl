[package]
name = "{{crate}}"
version = "0.0.0"
description = "{{Name}} integration for keywire."
edition.workspace = true
rust-version.workspace = true
license.workspace = true
publish.workspace = true

[dependencies]
keywire-core.workspace = true
serde.workspace = true
serde_json.workspace = true

[dev-dependencies]
keywire-test-support.workspace = true
tokio.workspace = true

[lints]
workspace = true

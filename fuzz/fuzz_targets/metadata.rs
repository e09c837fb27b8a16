//! libFuzzer target: the metadata of one integration type (named by `KEYWIRE_FUZZ_TYPE`,
//! which `cargo xtask fuzz` sets), through the API's create and update path; see
//! [`keywire_fuzz::metadata`].
#![no_main]

use std::sync::OnceLock;

fn type_id() -> &'static str {
    static TYPE: OnceLock<String> = OnceLock::new();
    TYPE.get_or_init(|| {
        std::env::var("KEYWIRE_FUZZ_TYPE")
            .expect("set KEYWIRE_FUZZ_TYPE to an integration type id (cargo xtask fuzz does)")
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| keywire_fuzz::metadata(type_id(), data));

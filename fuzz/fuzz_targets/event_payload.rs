//! libFuzzer target: a stored event (or its payload column) as integrations receive and render
//! it; see [`keywire_fuzz::event_payload`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keywire_fuzz::event_payload(data));

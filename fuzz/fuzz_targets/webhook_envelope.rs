//! libFuzzer target: the webhook envelope of an event, signed and verified; see
//! [`keywire_fuzz::webhook_envelope`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keywire_fuzz::webhook_envelope(data));

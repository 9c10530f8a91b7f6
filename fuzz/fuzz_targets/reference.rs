//! Names, tags and references never panic, and round-trip when accepted.
#![no_main]

use berth_oci::{Reference, RepositoryName};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(reference) = Reference::parse(text) {
        assert_eq!(reference.to_string(), text);
    }
    if let Ok(name) = RepositoryName::parse(text) {
        assert_eq!(name.as_str(), text);
        assert!(!name.namespace().is_empty());
    }
});

//! Digest parsing never panics, and a parsed digest prints back as its input.
#![no_main]

use berth_oci::Digest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(digest) = Digest::parse(text) {
        assert_eq!(digest.as_str(), text);
        assert_eq!(Digest::parse(&digest.to_string()).ok(), Some(digest));
    }
});

//! The /v2 request grammar never panics, and whatever it accepts is consistent.
#![no_main]

use berth_oci::path::{self, Endpoint};
use libfuzzer_sys::fuzz_target;

const METHODS: [&str; 7] = ["GET", "HEAD", "PUT", "POST", "PATCH", "DELETE", "OPTIONS"];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let text = String::from_utf8_lossy(rest);
    let (path, query) = match text.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (&*text, None),
    };
    let method = METHODS[selector as usize % METHODS.len()];
    if let Ok(Endpoint::GetManifest { name, .. } | Endpoint::PutManifest { name, .. }) =
        path::parse(method, path, query)
    {
        assert!(path.contains(name.as_str()));
    }
});

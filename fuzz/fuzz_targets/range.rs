//! Range and Content-Range parsing never panic, and ranges stay inside the object.
#![no_main]

use berth_oci::range::{ByteRange, parse_content_range, parse_range};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let size = u64::from_le_bytes(data[..8].try_into().unwrap_or([0; 8])) % (1 << 40);
    let Ok(header) = std::str::from_utf8(&data[8..]) else { return };
    if let ByteRange::Partial { start, end } = parse_range(header, size) {
        assert!(start <= end && end < size);
    }
    if let Ok((start, end)) = parse_content_range(header) {
        assert!(start <= end);
    }
});

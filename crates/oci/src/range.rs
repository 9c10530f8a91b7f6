//! `Range` on blob reads and `Content-Range` on chunked uploads.

/// What a `Range` request header asks of an object of a known size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// No usable range: serve everything with 200 (RFC 9110 lets servers ignore a range
    /// they do not understand, and multi-range requests are served whole).
    Full,
    /// Serve `start..=end` with 206.
    Partial { start: u64, end: u64 },
    /// 416 with `Content-Range: bytes */size`.
    Unsatisfiable,
}

pub fn parse_range(header: &str, size: u64) -> ByteRange {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return ByteRange::Full;
    };
    if spec.contains(',') {
        return ByteRange::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return ByteRange::Full;
    };
    let (first, last) = (first.trim(), last.trim());
    let number = |s: &str| if s.bytes().all(|b| b.is_ascii_digit()) { s.parse::<u64>().ok() } else { None };
    match (first.is_empty(), last.is_empty()) {
        // bytes=-N: the last N bytes.
        (true, false) => match number(last) {
            Some(0) => ByteRange::Unsatisfiable,
            Some(_) if size == 0 => ByteRange::Unsatisfiable,
            Some(n) => ByteRange::Partial { start: size.saturating_sub(n), end: size - 1 },
            None => ByteRange::Full,
        },
        // bytes=A- and bytes=A-B
        (false, _) => {
            let Some(start) = number(first) else { return ByteRange::Full };
            let end = if last.is_empty() {
                u64::MAX
            } else {
                match number(last) {
                    Some(end) if end >= start => end,
                    _ => return ByteRange::Full,
                }
            };
            if start >= size { ByteRange::Unsatisfiable } else { ByteRange::Partial { start, end: end.min(size - 1) } }
        }
        (true, true) => ByteRange::Full,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid Content-Range {0:?}: expected START-END with START <= END")]
pub struct ContentRangeError(pub String);

/// Parses an upload chunk's `Content-Range` into inclusive `(start, end)` offsets. The spec's
/// form is `START-END`; the HTTP forms `bytes START-END[/TOTAL]` are accepted as well.
pub fn parse_content_range(header: &str) -> Result<(u64, u64), ContentRangeError> {
    let fail = || ContentRangeError(header.chars().take(100).collect());
    let s = header.trim();
    let s = s.strip_prefix("bytes").map(|r| r.trim_start_matches([' ', '='])).unwrap_or(s);
    let s = s.split_once('/').map_or(s, |(range, _total)| range);
    let (a, b) = s.split_once('-').ok_or_else(fail)?;
    let number = |x: &str| {
        let x = x.trim();
        if !x.is_empty() && x.bytes().all(|c| c.is_ascii_digit()) { x.parse::<u64>().ok() } else { None }
    };
    let (start, end) = (number(a).ok_or_else(fail)?, number(b).ok_or_else(fail)?);
    if start > end {
        return Err(fail());
    }
    Ok((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ranges() {
        use ByteRange::*;
        assert_eq!(parse_range("bytes=0-9", 100), Partial { start: 0, end: 9 });
        assert_eq!(parse_range("bytes=90-", 100), Partial { start: 90, end: 99 });
        assert_eq!(parse_range("bytes=90-1000", 100), Partial { start: 90, end: 99 });
        assert_eq!(parse_range("bytes=-10", 100), Partial { start: 90, end: 99 });
        assert_eq!(parse_range("bytes=-1000", 100), Partial { start: 0, end: 99 });
        assert_eq!(parse_range("bytes=100-", 100), Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 100), Unsatisfiable);
        assert_eq!(parse_range("bytes=0-0", 0), Unsatisfiable);
        assert_eq!(parse_range("bytes=9-0", 100), Full);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), Full);
        assert_eq!(parse_range("items=0-1", 100), Full);
        assert_eq!(parse_range("bytes=a-b", 100), Full);
        assert_eq!(parse_range("bytes=+1-2", 100), Full);
    }

    #[test]
    fn content_ranges() {
        assert_eq!(parse_content_range("0-99"), Ok((0, 99)));
        assert_eq!(parse_content_range("bytes 100-199/1000"), Ok((100, 199)));
        assert_eq!(parse_content_range("bytes=5-5"), Ok((5, 5)));
        assert_eq!(parse_content_range("bytes 0-9/*"), Ok((0, 9)));
        for bad in ["", "-", "5-", "-5", "9-0", "a-b", "1 - x", "99999999999999999999-1"] {
            assert!(parse_content_range(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn partial_ranges_lie_inside_the_object(header in ".{0,40}", size in 0u64..1_000_000) {
            if let ByteRange::Partial { start, end } = parse_range(&header, size) {
                prop_assert!(start <= end && end < size);
            }
        }

        #[test]
        fn well_formed_ranges(start in 0u64..10_000, len in 1u64..10_000, size in 0u64..20_000) {
            let end = start + len - 1;
            match parse_range(&format!("bytes={start}-{end}"), size) {
                ByteRange::Partial { start: s, end: e } => {
                    prop_assert_eq!(s, start);
                    prop_assert_eq!(e, end.min(size - 1));
                }
                ByteRange::Unsatisfiable => prop_assert!(start >= size),
                ByteRange::Full => prop_assert!(false, "a well-formed range was ignored"),
            }
        }

        #[test]
        fn content_range_never_panics(header in ".{0,60}") {
            if let Ok((a, b)) = parse_content_range(&header) {
                prop_assert!(a <= b);
            }
        }
    }
}

//! App Registry ("appr", CNR protocol) release versions: parsing releases, picking the `default` release and
//! resolving the `{rel}` path segment of show/pull against a package's releases.
//!
//! Constraint queries follow Python `semantic_version` 2.10 `Spec` (= `SimpleSpec`), which the reference
//! server used, quirks included, so that a query resolves to the same release here as on Quay.
//! Checked against `semantic_version` 2.10 wrapped like the reference server, on ~900k random queries.

use std::cmp::Ordering;

use semver::{BuildMetadata, Prerelease, Version};

/// Errors with messages fit to show to API clients.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    /// A release name that is not strict SemVer 2 (`1.2.3`, `2.0.0-beta.1+build.5`).
    #[error("{release:?} is not a valid release version (expected SemVer such as 1.2.3): {reason}")]
    InvalidRelease { release: String, reason: String },
    /// A `{rel}` query that is neither `default` nor a list of constraints.
    #[error("{query:?} is not a valid version query: {reason}")]
    InvalidQuery { query: String, reason: String },
}

/// Parses a release name as strict SemVer 2; `1`, `1.0`, `v1.0.0` and `latest` are rejected.
pub fn parse_release(s: &str) -> Result<Version, VersionError> {
    Version::parse(s).map_err(|e| VersionError::InvalidRelease { release: s.to_owned(), reason: e.to_string() })
}

/// SemVer precedence. semver's own `Ord` also compares build metadata, which SemVer says must not count.
fn precedence(a: &Version, b: &Version) -> Ordering {
    (a.major, a.minor, a.patch, &a.pre).cmp(&(b.major, b.minor, b.patch, &b.pre))
}

/// Precedence, then the string itself, so that releases differing only in build metadata are chosen the
/// same way whatever order the store lists them in.
fn release_order(a: &(Version, &str), b: &(Version, &str)) -> Ordering {
    precedence(&a.0, &b.0).then_with(|| a.1.cmp(b.1))
}

/// Parsable releases with their versions; the others are skipped, as a query can never select them.
fn parsed<'a>(releases: impl IntoIterator<Item = &'a str>) -> impl Iterator<Item = (Version, &'a str)> {
    releases.into_iter().filter_map(|s| Version::parse(s).ok().map(|v| (v, s)))
}

/// The `default` release: the highest by SemVer precedence, pre-releases included.
pub fn highest<'a>(releases: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    parsed(releases).max_by(release_order).map(|(_, s)| s)
}

/// The highest release that `query` selects, if any.
pub fn resolve<'a>(query: &VersionQuery, releases: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    parsed(releases).filter(|(v, _)| query.matches(v)).max_by(release_order).map(|(_, s)| s)
}

/// Sorts newest first by SemVer precedence (ties: greater string first); unparsable names go last, ascending.
pub fn sort_descending(releases: &mut [String]) {
    // Parse each name once rather than in every comparison.
    let mut keyed: Vec<(Option<Version>, String)> =
        releases.iter_mut().map(|s| (Version::parse(s).ok(), std::mem::take(s))).collect();
    keyed.sort_by(|(va, sa), (vb, sb)| match (va, vb) {
        (Some(a), Some(b)) => precedence(b, a).then_with(|| sb.cmp(sa)),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => sa.cmp(sb),
    });
    for (slot, (_, s)) in releases.iter_mut().zip(keyed) {
        *slot = s;
    }
}

/// A parsed `{rel}` path segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionQuery {
    /// The literal `default`: the highest release, pre-releases included.
    Default,
    /// A comma-separated constraint list such as `>=1.0,<2` or `~1.2`; all constraints must hold.
    Constraints(Constraints),
}

/// The constraints of a query, in `semantic_version` `SimpleSpec` semantics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Constraints {
    clauses: Vec<Clause>,
    /// The reference server offers pre-releases only when the query text contains a `-`. (It spotted them by a
    /// `-` in the release name, so `1.0.0+git-1` too; here only a SemVer pre-release counts as one.)
    prereleases: bool,
}

/// One `Range` of `semantic_version`, or the union of two (`!=1` is `<1.0.0 || >=2.0.0`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Clause {
    One(Range),
    Either(Range, Range),
}

#[rustfmt::skip]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op { Eq, Ne, Gt, Ge, Lt, Le }

#[derive(Debug, Clone, PartialEq, Eq)]
struct Range {
    op: Op,
    target: Version,
    /// Set by a trailing `-` (`<1.2.3-`): pre-releases of the target's own x.y.z count like other versions.
    /// Otherwise `<1.2.3` and `!=1.2.3` reject `1.2.3-rc` ("natural" pre-release policy).
    any_prerelease: bool,
    /// Build metadata must equal the target's (`==1.2.3+b1`; `==1.2.3+` means "no build metadata").
    strict_build: bool,
}

impl Range {
    fn new(op: Op, target: Version) -> Self {
        let strict_build = !target.build.is_empty();
        Self { op, target, any_prerelease: false, strict_build }
    }

    fn matches(&self, v: &Version) -> bool {
        let t = &self.target;
        let ord = precedence(v, t);
        let same = ord == Ordering::Equal && (!self.strict_build || v.build == t.build);
        let natural_excluded = !self.any_prerelease
            && !v.pre.is_empty()
            && t.pre.is_empty()
            && (v.major, v.minor, v.patch) == (t.major, t.minor, t.patch);
        match self.op {
            Op::Eq => same,
            Op::Ne if self.strict_build => !same,
            Op::Ne => !natural_excluded && !same,
            Op::Gt => ord == Ordering::Greater,
            Op::Ge => ord != Ordering::Less,
            Op::Lt => !natural_excluded && ord == Ordering::Less,
            Op::Le => ord != Ordering::Greater,
        }
    }
}

impl Clause {
    fn matches(&self, v: &Version) -> bool {
        match self {
            Clause::One(r) => r.matches(v),
            Clause::Either(a, b) => a.matches(v) || b.matches(v),
        }
    }
}

impl VersionQuery {
    /// Parses a `{rel}` segment. `latest` is not a keyword here (the protocol has none), so it is an error.
    pub fn parse(s: &str) -> Result<Self, VersionError> {
        // Only the exact literal; the reference server compared before touching the text.
        if s == "default" {
            return Ok(Self::Default);
        }
        let invalid = |reason: String| VersionError::InvalidQuery {
            query: s.to_owned(),
            reason: format!("{reason}; expected \"default\" or constraints such as \">=1.0.0,<2.0.0\""),
        };
        // The reference server removed spaces (only spaces) before handing the text to `Spec`.
        let text: String = s.chars().filter(|&c| c != ' ').collect();
        if text.is_empty() {
            return Err(invalid("the query is empty".to_owned()));
        }
        let several = text.contains(',');
        let mut clauses = Vec::new();
        for block in text.split(',') {
            parse_block(block, &mut clauses)
                .map_err(|e| invalid(if several { format!("in {block:?}: {e}") } else { e }))?;
        }
        Ok(Self::Constraints(Constraints { clauses, prereleases: text.contains('-') }))
    }

    /// Whether `v` is selectable by this query (`default` selects every release).
    pub fn matches(&self, v: &Version) -> bool {
        match self {
            Self::Default => true,
            Self::Constraints(c) => (c.prereleases || v.pre.is_empty()) && c.clauses.iter().all(|cl| cl.matches(v)),
        }
    }
}

/// A constraint's operator as written; `~=` is SimpleSpec's "compatible release" operator.
#[rustfmt::skip]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prefix { Eq, Ne, Gt, Ge, Lt, Le, Caret, Tilde, Compatible }

/// Longest first, so `<=` is not read as `<` followed by `=1`; no prefix at all means `==`.
#[rustfmt::skip]
const PREFIXES: [(&str, Prefix); 10] = [
    ("<=", Prefix::Le), (">=", Prefix::Ge), ("==", Prefix::Eq), ("!=", Prefix::Ne), ("~=", Prefix::Compatible),
    ("<", Prefix::Lt), (">", Prefix::Gt), ("=", Prefix::Eq), ("^", Prefix::Caret), ("~", Prefix::Tilde),
];

/// `0`, `[1-9][0-9]*`, or the wildcard `*` (`None`).
fn number(p: &str) -> Result<Option<u64>, String> {
    if p == "*" {
        return Ok(None);
    }
    if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) || (p.len() > 1 && p.starts_with('0')) {
        return Err(format!("{p:?} is not a version number"));
    }
    p.parse().map(Some).map_err(|_| format!("{p} is too large"))
}

const MAJOR: usize = 0;
const MINOR: usize = 1;
const PATCH: usize = 2;

/// `semantic_version`'s next_major/next_minor/next_patch. The "next" of a pre-release of x.0.0 / x.y.0 / x.y.z
/// is that release itself, so e.g. `^2.0.0-rc.1` means `>=2.0.0-rc.1,<2.0.0` (matching nothing) there and here.
fn bump(v: &Version, part: usize) -> Result<Version, String> {
    let mut n = [v.major, v.minor, v.patch];
    if v.pre.is_empty() || n[part + 1..].iter().any(|&x| x != 0) {
        n[part] = n[part].checked_add(1).ok_or_else(|| "version number is too large".to_owned())?;
        n[part + 1..].fill(0);
    }
    Ok(Version::new(n[0], n[1], n[2]))
}

/// Parses one constraint (`SimpleSpec.Parser.parse_block`) and appends its clauses.
fn parse_block(block: &str, out: &mut Vec<Clause>) -> Result<(), String> {
    let (prefix, rest) =
        PREFIXES.iter().find_map(|&(p, op)| block.strip_prefix(p).map(|r| (op, r))).unwrap_or((Prefix::Eq, block));
    let (rest, build) = rest.split_once('+').map_or((rest, None), |(r, b)| (r, Some(b)));
    let (core, prerel) = rest.split_once('-').map_or((rest, None), |(c, p)| (c, Some(p)));

    let parts: Vec<&str> = core.split('.').collect();
    if parts.len() > 3 {
        return Err(format!("{core:?} has more than three components"));
    }
    let mut nums = [None; 3];
    for (slot, p) in nums.iter_mut().zip(&parts) {
        *slot = number(p)?;
    }
    // A missing or `*` component makes the version partial from there on (`1.*.3` is read as `1`).
    let level = nums.iter().take(parts.len()).position(Option::is_none).unwrap_or(parts.len());
    let partial = level < 3;
    if partial && (prerel.is_some_and(|p| !p.is_empty()) || build.is_some_and(|b| !b.is_empty())) {
        return Err("a partial version cannot have pre-release or build parts".to_owned());
    }
    if level == 0 && !matches!(prefix, Prefix::Eq | Prefix::Ge) {
        return Err("the wildcard * only goes with ==, = or >=".to_owned());
    }
    if build.is_some() && !matches!(prefix, Prefix::Eq | Prefix::Ne) {
        return Err("build metadata has no order; only == and != may use it".to_owned());
    }
    let target = if partial {
        let at = |i: usize| if i < level { nums[i].unwrap_or(0) } else { 0 };
        Version::new(at(0), at(1), at(2))
    } else {
        let [major, minor, patch] = nums.map(|n| n.unwrap_or(0));
        let pre = Prerelease::new(prerel.unwrap_or("")).map_err(|e| e.to_string())?;
        let build = BuildMetadata::new(build.unwrap_or("")).map_err(|e| e.to_string())?;
        Version { major, minor, patch, pre, build }
    };
    let empty_pre = prerel == Some("");
    let one = |op, t| Clause::One(Range::new(op, t));
    // Upper bounds are plain `<` ranges, so they keep the natural pre-release policy (as in Python).
    let between = |low: Version, high: Version| [one(Op::Ge, low), one(Op::Lt, high)];
    let outside = |low: Version, high: Version| Clause::Either(Range::new(Op::Lt, low), Range::new(Op::Ge, high));
    // Partial versions after ==, !=, > and <= stand for a whole range: `1.2` is 1.2.0 up to bump(1.2.0, MINOR).
    match (prefix, level) {
        (Prefix::Caret, _) => {
            // Bump the first non-zero of major and minor, else the patch (`^0.0.3` is `>=0.0.3,<0.0.4`).
            let part = [target.major, target.minor].iter().position(|&n| n > 0).unwrap_or(PATCH);
            out.extend(between(target.clone(), bump(&target, part)?));
        }
        (Prefix::Tilde, 1) | (Prefix::Compatible, 1 | 2) => out.extend(between(target.clone(), bump(&target, MAJOR)?)),
        (Prefix::Tilde | Prefix::Compatible, _) => out.extend(between(target.clone(), bump(&target, MINOR)?)),
        (Prefix::Eq, 1 | 2) => out.extend(between(target.clone(), bump(&target, level - 1)?)),
        (Prefix::Eq | Prefix::Ge, 0) | (Prefix::Ge, _) => out.push(one(Op::Ge, target)),
        (Prefix::Eq, _) => {
            let mut r = Range::new(Op::Eq, target);
            r.strict_build |= build == Some("");
            out.push(Clause::One(r));
        }
        (Prefix::Ne, 1 | 2) => out.push(outside(target.clone(), bump(&target, level - 1)?)),
        (Prefix::Ne, _) => {
            let mut r = Range::new(Op::Ne, target);
            // `!=1.2.3-` only relaxes the pre-release policy; otherwise `!=1.2.3+` demands no build metadata.
            r.any_prerelease = empty_pre;
            r.strict_build |= !empty_pre && build == Some("");
            out.push(Clause::One(r));
        }
        (Prefix::Gt, 1 | 2) => out.push(one(Op::Ge, bump(&target, level - 1)?)),
        (Prefix::Gt, _) => out.push(one(Op::Gt, target)),
        (Prefix::Lt, _) => out.push(Clause::One(Range { any_prerelease: empty_pre, ..Range::new(Op::Lt, target) })),
        (Prefix::Le, 1 | 2) => out.push(one(Op::Lt, bump(&target, level - 1)?)),
        (Prefix::Le, _) => out.push(one(Op::Le, target)),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[rustfmt::skip]
    const RELEASES: &[&str] = &[
        "0.0.3", "0.0.4", "0.2.3", "0.2.9", "0.3.0", "1.0.0", "1.0.1", "1.1.0", "1.1.5", "1.2.0", "1.2.3", "1.2.9",
        "1.3.0", "2.0.0-beta.1", "not-a-version", "latest",
    ];

    fn pick(query: &str, releases: &[&'static str]) -> Option<&'static str> {
        let q = VersionQuery::parse(query).unwrap_or_else(|e| panic!("{query}: {e}"));
        resolve(&q, releases.iter().copied())
    }

    #[test]
    fn release_parsing_is_strict_semver() {
        for ok in ["1.2.3", "2.0.0-beta.1", "1.0.0+build.5", "1.0.0-rc.1+sha.0a1"] {
            assert!(parse_release(ok).is_ok(), "{ok}");
        }
        for bad in ["1", "1.0", "latest", "v1.0.0", "", "01.0.0", " 1.0.0", "1.0.0-", "1.0.0-01", "1.0.0.0"] {
            assert!(matches!(parse_release(bad), Err(VersionError::InvalidRelease { .. })), "{bad}");
        }
    }

    #[test]
    fn default_is_highest_including_prereleases() {
        assert_eq!(highest(RELEASES.iter().copied()), Some("2.0.0-beta.1"));
        assert_eq!(pick("default", RELEASES), Some("2.0.0-beta.1"));
        assert_eq!(highest(["1.1.0", "2.0.0-beta.1", "1.0.0"]), Some("2.0.0-beta.1"));
        assert_eq!(highest(["2.0.0-beta.1", "2.0.0"]), Some("2.0.0"));
        // Build metadata does not count for precedence; ties go to the greater string, whatever the order.
        assert_eq!(highest(["1.0.0+b", "1.0.0+a"]), Some("1.0.0+b"));
        assert_eq!(highest(["1.0.0+a", "1.0.0+b", "0.9.0"]), Some("1.0.0+b"));
        assert_eq!(highest(["latest", "1.0"]), None);
        assert_eq!(highest([]), None);
    }

    #[test]
    fn constraint_queries() {
        #[rustfmt::skip]
        let cases = [
            (">=1.0.0", Some("1.3.0")), (">=2.0.0-0", Some("2.0.0-beta.1")), ("2.0.0-beta.1", Some("2.0.0-beta.1")),
            ("==2.0.0-beta.1", Some("2.0.0-beta.1")), ("1.0.0", Some("1.0.0")), ("==1.0.0", Some("1.0.0")),
            ("=1.0.0", Some("1.0.0")), ("1.0.2", None), (">1.0.0,<1.1.0", Some("1.0.1")), (">1.2.9", Some("1.3.0")),
            ("<=1.1.5", Some("1.1.5")), ("<1.1.5", Some("1.1.0")), ("!=1.3.0", Some("1.2.9")),
            ("!=1.3.0,!=1.2.9", Some("1.2.3")), ("~1.1", Some("1.1.5")), ("~1.2.3", Some("1.2.9")),
            ("~1", Some("1.3.0")), ("~0.2", Some("0.2.9")), ("~=1.2.3", Some("1.2.9")), ("~=1.2", Some("1.3.0")),
            ("^1.2.0", Some("1.3.0")), ("^0.2.3", Some("0.2.9")), ("^0.0.3", Some("0.0.3")), ("^0.0.5", None),
            (">=1", Some("1.3.0")), ("<2.0", Some("1.3.0")), ("<1.2", Some("1.1.5")), ("*", Some("1.3.0")),
            (">=*", Some("1.3.0")), (" >= 1.0.0 , < 1.2 ", Some("1.1.5")), (">=1.0.0,<1.0.0", None), (">=3", None),
            // SimpleSpec reads partial versions after >, <=, == and != as whole ranges (`>1.2` is `>=1.3.0`).
            (">1.2", Some("1.3.0")), (">1", None), ("<=1.1", Some("1.1.5")), ("<=0", Some("0.3.0")),
            ("==1.2", Some("1.2.9")), ("1.1", Some("1.1.5")), ("!=1", Some("0.3.0")), ("!=1.3,<2", Some("1.2.9")),
            // `-` opens the door to pre-releases, but `<2.0.0` still rejects 2.0.0's own pre-releases
            // unless written `<2.0.0-`; an empty pre-release tag is otherwise a no-op.
            (">=1.0.0-0,<2.0.0", Some("1.3.0")), (">=1.0.0,<2.0.0-", Some("2.0.0-beta.1")),
            (">=1.0.0-0,!=2.0.0", Some("1.3.0")), (">=1.0.0,!=2.0.0-", Some("2.0.0-beta.1")),
            (">=1.0.0-0,<=2.0.0", Some("2.0.0-beta.1")), ("1.0.0-", Some("1.0.0")),
            // semantic_version's next_major(2.0.0-beta.1) is 2.0.0, so this caret range is empty.
            ("^2.0.0-beta.1", None),
        ];
        for (query, want) in cases {
            assert_eq!(pick(query, RELEASES), want, "{query}");
        }
    }

    #[test]
    fn build_metadata_in_queries() {
        let rels = ["1.0.0", "1.0.0+a", "1.0.0+b"];
        assert_eq!(pick("==1.0.0", &rels), Some("1.0.0+b"));
        assert_eq!(pick("==1.0.0+a", &rels), Some("1.0.0+a"));
        assert_eq!(pick("==1.0.0+", &rels), Some("1.0.0"));
        assert_eq!(pick("!=1.0.0+b", &rels), Some("1.0.0+a"));
        assert_eq!(pick("!=1.0.0", &rels), None);
    }

    #[test]
    fn invalid_queries() {
        #[rustfmt::skip]
        let bad = [
            "latest", "", "   ", "v1.0.0", ">=", "1.0.0,", ",1.0.0", ">=1.0.0-01", ">=1.0+b", ">1.0.0+b", "~*", "^*",
            "1.2.3.4", ">=01", "default,1.0.0", "Default", "=>1.0.0", ">=1.0-rc", "<==1", "1..2", "1.x",
            ">=18446744073709551616", "~18446744073709551615", "1.0.0-a..b", "1.0.0+a+b", "\u{0}",
        ];
        for bad in bad {
            assert!(matches!(VersionQuery::parse(bad), Err(VersionError::InvalidQuery { .. })), "{bad:?}");
        }
        let msg = VersionQuery::parse("latest").expect_err("latest is no keyword").to_string();
        assert!(msg.starts_with("\"latest\" is not a valid version query: "), "{msg}");
        let msg = VersionQuery::parse(">=1,lol").expect_err("lol is no constraint").to_string();
        assert!(msg.contains("in \"lol\""), "{msg}");
    }

    #[test]
    fn default_query_and_matches() {
        assert_eq!(VersionQuery::parse("default"), Ok(VersionQuery::Default));
        let v = Version::parse("0.0.1-x").expect("valid");
        assert!(VersionQuery::Default.matches(&v));
        assert!(!VersionQuery::parse(">=0.0.0").expect("valid").matches(&v));
        assert!(VersionQuery::parse(">=0.0.0-0").expect("valid").matches(&v));
    }

    #[test]
    fn sorts_newest_first_with_unparsable_last() {
        let mut rels =
            ["1.0.0", "zzz", "2.0.0-beta.1", "1.10.0", "1.0.0+b", "latest", "1.2.0", "2.0.0-alpha"].map(String::from);
        sort_descending(&mut rels);
        let want = ["2.0.0-beta.1", "2.0.0-alpha", "1.10.0", "1.2.0", "1.0.0+b", "1.0.0", "latest", "zzz"];
        assert_eq!(rels, want);
    }

    fn release() -> impl Strategy<Value = String> {
        let pre = prop::sample::select(vec!["", "-0", "-alpha", "-beta.1", "-rc.2"]);
        let build = prop::sample::select(vec!["", "", "+b1", "+b2", "+7"]);
        prop_oneof![
            8 => (0u64..3, 0u64..3, 0u64..3, pre, build).prop_map(|(a, b, c, p, m)| format!("{a}.{b}.{c}{p}{m}")),
            1 => prop::sample::select(vec!["latest", "1.0", "v1.0.0", "01.0.0", ""]).prop_map(String::from),
        ]
    }

    fn query_text() -> impl Strategy<Value = String> {
        let op = prop::sample::select(vec!["", "=", "==", "!=", ">", ">=", "<", "<=", "~", "^", "~="]);
        #[rustfmt::skip]
        let ver = prop::sample::select(vec![
            "0", "1", "2", "0.1", "1.1", "1.2", "0.0.1", "1.0.0", "1.1.1", "2.0.0", "1.0.0-0", "2.0.0-beta.1",
            "1.1.1-rc.2", "1.2.0-",
        ]);
        prop::collection::vec((op, ver).prop_map(|(o, v)| format!("{o}{v}")), 1..4).prop_map(|b| b.join(","))
    }

    proptest! {
        #[test]
        fn default_is_max_by_precedence(rels in prop::collection::vec(release(), 0..12)) {
            let got = resolve(&VersionQuery::Default, rels.iter().map(String::as_str));
            prop_assert_eq!(got, highest(rels.iter().map(String::as_str)));
            let valid: Vec<(Version, &str)> =
                rels.iter().filter_map(|s| Version::parse(s).ok().map(|v| (v, s.as_str()))).collect();
            prop_assert_eq!(got.is_none(), valid.is_empty());
            if let Some(s) = got {
                // Nothing outranks the winner: not by precedence, nor by string among equal precedence.
                let v = Version::parse(s)?;
                prop_assert!(valid.iter().all(|(c, cs)| precedence(c, &v).then_with(|| cs.cmp(&s)).is_le()));
            }
        }

        #[test]
        fn resolve_returns_greatest_match(rels in prop::collection::vec(release(), 0..12), text in query_text()) {
            let q = VersionQuery::parse(&text)?;
            let matching: Vec<Version> =
                rels.iter().filter_map(|s| Version::parse(s).ok()).filter(|v| q.matches(v)).collect();
            match resolve(&q, rels.iter().map(String::as_str)) {
                None => prop_assert!(matching.is_empty()),
                Some(s) => {
                    let v = Version::parse(s)?;
                    prop_assert!(q.matches(&v));
                    prop_assert!(matching.iter().all(|m| precedence(m, &v) != Ordering::Greater));
                    if !text.contains('-') {
                        prop_assert!(v.pre.is_empty(), "{} returned pre-release {}", text, s);
                    }
                }
            }
        }

        #[test]
        fn plain_comparisons_agree_with_semver(a in (0u64..4, 0u64..4, 0u64..4), b in (0u64..4, 0u64..4, 0u64..4)) {
            let (va, vb) = (Version::new(a.0, a.1, a.2), Version::new(b.0, b.1, b.2));
            let cases = [("==", va == vb), ("!=", va != vb), (">", va > vb), (">=", va >= vb), ("<", va < vb)];
            for (op, want) in cases.into_iter().chain([("<=", va <= vb)]) {
                let q = VersionQuery::parse(&format!("{op}{vb}"))?;
                prop_assert_eq!(q.matches(&va), want, "{}{} vs {}", op, vb, va);
            }
        }

        #[test]
        fn parse_never_panics(s in "\\PC*", t in "[0-9.,<>=!~^*+a-z -]{0,16}") {
            let _ = VersionQuery::parse(&s);
            let _ = VersionQuery::parse(&t);
            let _ = parse_release(&s);
        }

        #[test]
        fn sort_is_ordered_permutation(rels in prop::collection::vec(release(), 0..16)) {
            let mut sorted = rels.clone();
            sort_descending(&mut sorted);
            for w in sorted.windows(2) {
                match (Version::parse(&w[0]), Version::parse(&w[1])) {
                    (Ok(a), Ok(b)) => prop_assert!(precedence(&a, &b) != Ordering::Less, "{:?}", sorted),
                    (Err(_), Ok(_)) => prop_assert!(false, "unparsable before parsable: {:?}", sorted),
                    _ => {}
                }
            }
            let (mut x, mut y) = (rels, sorted.clone());
            x.sort();
            y.sort();
            prop_assert_eq!(x, y);
        }
    }
}

//! Repository names: `component ("/" component)*`, each component
//! `[a-z0-9]+ ((\.|_|__|-+) [a-z0-9]+)*`, at most 255 characters in all.

use std::fmt;

pub const MAX_NAME_LEN: usize = 255;

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepositoryName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid repository name {name:?}: {reason}")]
pub struct NameError {
    pub name: String,
    pub reason: &'static str,
}

impl RepositoryName {
    pub fn parse(s: &str) -> Result<RepositoryName, NameError> {
        let fail = |reason| Err(NameError { name: s.chars().take(MAX_NAME_LEN + 1).collect(), reason });
        if s.is_empty() {
            return fail("the name is empty");
        }
        if s.len() > MAX_NAME_LEN {
            return fail("the name is longer than 255 characters");
        }
        for component in s.split('/') {
            if !is_component(component) {
                return fail(
                    "each path component must be lowercase letters and digits, separated by '.', '_', '__' or dashes",
                );
            }
        }
        Ok(RepositoryName(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first path component: the user or organization that owns the repository.
    pub fn namespace(&self) -> &str {
        self.0.split('/').next().unwrap_or(&self.0)
    }
}

fn is_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: ".", "_", "__" or one or more "-", followed by an alphanumeric.
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

impl fmt::Display for RepositoryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RepositoryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RepositoryName({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_valid_names() {
        for ok in
            ["a", "team/app", "a/b/c/d/e/f/g/h", "my-app", "my--app", "a.b", "a_b", "a__b", "0abc/x9", "library/ubuntu"]
        {
            assert!(RepositoryName::parse(ok).is_ok(), "{ok}");
        }
        assert_eq!(RepositoryName::parse("team/app/x").expect("valid").namespace(), "team");
    }

    #[test]
    fn rejects_invalid_names() {
        for bad in
            ["", "A", "team/App", "/a", "a/", "a//b", "-a", "a-", "a..b", "a___b", "a._b", "a.-b", "a b", "a:b", "ä"]
        {
            assert!(RepositoryName::parse(bad).is_err(), "{bad:?}");
        }
        assert!(RepositoryName::parse(&"a".repeat(256)).is_err());
        assert!(RepositoryName::parse(&"a".repeat(255)).is_ok());
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in ".{0,300}") {
            let _ = RepositoryName::parse(&s);
        }

        #[test]
        fn generated_names_parse(s in "[a-z0-9]{1,8}((\\.|_|__|-{1,3})[a-z0-9]{1,8}){0,3}(/[a-z0-9]{1,8}((\\.|_|__|-{1,3})[a-z0-9]{1,8}){0,3}){0,4}") {
            prop_assert!(RepositoryName::parse(&s).is_ok());
        }
    }
}

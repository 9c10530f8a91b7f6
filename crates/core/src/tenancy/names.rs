//! The grammar of account names.

use crate::{Error, Result};

/// A user or organization name: one repository-name component (so that `name/repo` is a
/// valid repository), 2 to 64 characters.
pub fn check_namespace(name: &str) -> Result<()> {
    let valid = (2..=64).contains(&name.len()) && berth_oci::RepositoryName::parse(name).is_ok() && !name.contains('/');
    if valid {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "invalid name {name:?}: 2 to 64 lowercase letters and digits, separated by '.', '_', '__' or dashes"
        )))
    }
}

/// A team name: lowercase letters, digits, '_' and '-', starting with a letter or digit.
pub fn check_team(name: &str) -> Result<()> {
    simple(name, "team", |i, b| b.is_ascii_lowercase() || b.is_ascii_digit() || (i > 0 && (b == b'_' || b == b'-')))
}

/// A robot's short name: a lowercase letter, then lowercase letters, digits and '_'.
pub fn check_robot(name: &str) -> Result<()> {
    simple(name, "robot", |i, b| b.is_ascii_lowercase() || (i > 0 && (b.is_ascii_digit() || b == b'_')))
}

/// A token's name: printable, 1 to 64 characters.
pub fn check_label(name: &str) -> Result<()> {
    simple(name, "token", |_, b| b.is_ascii_graphic() || b == b' ')
}

fn simple(name: &str, what: &str, allowed: impl Fn(usize, u8) -> bool) -> Result<()> {
    let valid = (1..=64).contains(&name.len()) && name.bytes().enumerate().all(|(i, b)| allowed(i, b));
    if valid { Ok(()) } else { Err(Error::InvalidInput(format!("invalid {what} name {name:?}"))) }
}

/// Splits a robot's full name `owner+name`.
pub fn split_robot(full: &str) -> Result<(&str, &str)> {
    let (owner, name) = full
        .split_once('+')
        .ok_or_else(|| Error::InvalidInput(format!("{full:?} is not a robot name (owner+name)")))?;
    check_namespace(owner)?;
    check_robot(name)?;
    Ok((owner, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grammar() {
        assert!(check_namespace("acme").is_ok() && check_namespace("a-b.c_d").is_ok());
        for bad in ["a", "Acme", "a/b", "a+b", "-a", &"a".repeat(65)] {
            assert!(check_namespace(bad).is_err(), "{bad}");
        }
        assert!(check_team("owners").is_ok() && check_team("ci-bots_2").is_ok());
        assert!(check_team("-x").is_err() && check_team("X").is_err());
        assert!(check_robot("deployer").is_ok() && check_robot("d_2").is_ok());
        assert!(check_robot("2d").is_err() && check_robot("a-b").is_err());
        assert_eq!(split_robot("acme+deployer").ok(), Some(("acme", "deployer")));
        assert!(split_robot("acme").is_err() && split_robot("acme+").is_err());
    }
}

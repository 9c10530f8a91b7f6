//! Who is asking, and what they may do to a repository.
//!
//! The rules mirror Quay's: a user owns the namespace of their name; an organization's
//! teams carry a role (`member`, `creator`, `admin`); a repository grants `read`, `write` or
//! `admin` to users, teams and robots; public repositories can be pulled by anyone;
//! superusers may do everything.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use crate::Error;

/// The caller, as established by authentication.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Principal {
    Anonymous,
    User {
        id: i64,
        name: String,
        superuser: bool,
    },
    /// A robot account, named `owner+name`.
    Robot {
        id: i64,
        name: String,
    },
    /// Berth itself with every right: the local admin command, or a registry running with
    /// authentication turned off.
    System,
}

impl Principal {
    pub fn is_superuser(&self) -> bool {
        matches!(self, Principal::System | Principal::User { superuser: true, .. })
    }

    /// The name the audit log and tokens use (`""` for anonymous).
    pub fn name(&self) -> &str {
        match self {
            Principal::Anonymous => "",
            Principal::User { name, .. } | Principal::Robot { name, .. } => name,
            Principal::System => "berth",
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Principal::Anonymous => "anonymous",
            Principal::User { .. } => "user",
            Principal::Robot { .. } => "robot",
            Principal::System => "system",
        }
    }

    pub fn user_id(&self) -> Option<i64> {
        match self {
            Principal::User { id, .. } => Some(*id),
            _ => None,
        }
    }

    pub fn robot_id(&self) -> Option<i64> {
        match self {
            Principal::Robot { id, .. } => Some(*id),
            _ => None,
        }
    }
}

/// Who did something, for the audit log.
#[derive(Clone, Debug)]
pub struct Actor {
    pub principal: Principal,
    pub client_ip: Option<IpAddr>,
}

impl Actor {
    pub fn system() -> Actor {
        Actor { principal: Principal::System, client_ip: None }
    }
}

macro_rules! named_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self, Error> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(Error::InvalidInput(format!(
                        concat!("unknown ", stringify!($name), " {:?}; expected one of: {}"),
                        s,
                        [$($text),+].join(", ")
                    ))),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

named_enum!(
    /// A repository permission, weakest first.
    Role { Read = "read", Write = "write", Admin = "admin" }
);
named_enum!(
    /// A team's role in its organization, weakest first.
    TeamRole { Member = "member", Creator = "creator", Admin = "admin" }
);
named_enum!(Visibility { Private = "private", Public = "public" });
named_enum!(
    /// What a repository holds: OCI images and artifacts, or App Registry packages. Each
    /// protocol serves only its own kind.
    RepositoryKind { Image = "image", Application = "application" }
);
named_enum!(NamespaceKind { User = "user", Organization = "organization" });
named_enum!(
    /// What kind of principal a permission is granted to.
    GranteeKind { User = "user", Team = "team", Robot = "robot" }
);

/// The facts about a principal and a repository that an access decision needs, as the
/// metadata store reports them in one query.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccessFacts {
    /// `None` when the repository does not exist.
    pub repository: Option<RepositoryFacts>,
    /// `None` when the namespace does not exist.
    pub namespace: Option<NamespaceFacts>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepositoryFacts {
    pub visibility: Visibility,
    /// The strongest role granted to the principal directly or through its teams.
    pub role: Option<Role>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamespaceFacts {
    pub kind: NamespaceKind,
    /// The namespace is the principal's own (a user's namespace).
    pub owned: bool,
    /// The strongest role of the principal's teams in this organization.
    pub team_role: Option<TeamRole>,
}

/// What a principal may do to one repository.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RepoAccess {
    /// Read manifests and blobs.
    pub pull: bool,
    /// Upload, push manifests, delete tags, manifests and blobs (creates the repository when
    /// it does not exist yet).
    pub push: bool,
    /// Manage permissions and visibility, delete the repository.
    pub admin: bool,
}

impl RepoAccess {
    pub const ALL: RepoAccess = RepoAccess { pull: true, push: true, admin: true };
    pub const NONE: RepoAccess = RepoAccess { pull: false, push: false, admin: false };

    pub fn decide(principal: &Principal, facts: &AccessFacts) -> RepoAccess {
        if principal.is_superuser() {
            return RepoAccess::ALL;
        }
        let authenticated = !matches!(principal, Principal::Anonymous);
        let (owns, team_role) = match &facts.namespace {
            Some(ns) if authenticated => (ns.owned, ns.team_role),
            _ => (false, None),
        };
        let namespace_admin = owns || team_role == Some(TeamRole::Admin);
        match &facts.repository {
            // Creating a repository by pushing to it needs the right to create in the namespace.
            None => {
                let create = authenticated && (owns || team_role >= Some(TeamRole::Creator));
                RepoAccess { pull: create, push: create, admin: create }
            }
            Some(repo) => {
                let role = if authenticated { repo.role } else { None };
                let admin = namespace_admin || role == Some(Role::Admin);
                let push = admin || role == Some(Role::Write);
                let pull = push || role == Some(Role::Read) || repo.visibility == Visibility::Public;
                RepoAccess { pull, push, admin }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> Principal {
        Principal::User { id: 1, name: "alice".into(), superuser: false }
    }

    fn repo(visibility: Visibility, role: Option<Role>) -> Option<RepositoryFacts> {
        Some(RepositoryFacts { visibility, role })
    }

    fn org(team_role: Option<TeamRole>) -> Option<NamespaceFacts> {
        Some(NamespaceFacts { kind: NamespaceKind::Organization, owned: false, team_role })
    }

    #[test]
    fn decisions() {
        let public = AccessFacts { repository: repo(Visibility::Public, None), namespace: org(None) };
        let private = AccessFacts { repository: repo(Visibility::Private, None), namespace: org(None) };
        assert_eq!(RepoAccess::decide(&Principal::Anonymous, &public), RepoAccess { pull: true, ..RepoAccess::NONE });
        assert_eq!(RepoAccess::decide(&Principal::Anonymous, &private), RepoAccess::NONE);
        assert_eq!(RepoAccess::decide(&user(), &private), RepoAccess::NONE);
        for (role, want) in [
            (Role::Read, RepoAccess { pull: true, ..RepoAccess::NONE }),
            (Role::Write, RepoAccess { pull: true, push: true, admin: false }),
            (Role::Admin, RepoAccess::ALL),
        ] {
            let facts = AccessFacts { repository: repo(Visibility::Private, Some(role)), namespace: org(None) };
            assert_eq!(RepoAccess::decide(&user(), &facts), want, "{role}");
        }
        // Organization admins administer every repository; creators and members get nothing implicit.
        let admin = AccessFacts { repository: repo(Visibility::Private, None), namespace: org(Some(TeamRole::Admin)) };
        assert_eq!(RepoAccess::decide(&user(), &admin), RepoAccess::ALL);
        let creator =
            AccessFacts { repository: repo(Visibility::Private, None), namespace: org(Some(TeamRole::Creator)) };
        assert_eq!(RepoAccess::decide(&user(), &creator), RepoAccess::NONE);
        // A user owns their namespace.
        let own = AccessFacts {
            repository: repo(Visibility::Private, None),
            namespace: Some(NamespaceFacts { kind: NamespaceKind::User, owned: true, team_role: None }),
        };
        assert_eq!(RepoAccess::decide(&user(), &own), RepoAccess::ALL);
        assert_eq!(RepoAccess::decide(&Principal::System, &AccessFacts::default()), RepoAccess::ALL);
        let superuser = Principal::User { id: 2, name: "root".into(), superuser: true };
        assert_eq!(RepoAccess::decide(&superuser, &private), RepoAccess::ALL);
    }

    #[test]
    fn creating_repositories() {
        let missing = |team_role| AccessFacts { repository: None, namespace: org(team_role) };
        assert_eq!(RepoAccess::decide(&user(), &missing(Some(TeamRole::Creator))), RepoAccess::ALL);
        assert_eq!(RepoAccess::decide(&user(), &missing(Some(TeamRole::Admin))), RepoAccess::ALL);
        assert_eq!(RepoAccess::decide(&user(), &missing(Some(TeamRole::Member))), RepoAccess::NONE);
        assert_eq!(RepoAccess::decide(&user(), &missing(None)), RepoAccess::NONE);
        assert_eq!(RepoAccess::decide(&Principal::Anonymous, &missing(Some(TeamRole::Admin))), RepoAccess::NONE);
        assert_eq!(RepoAccess::decide(&user(), &AccessFacts::default()), RepoAccess::NONE, "no namespace, no creation");
    }

    #[test]
    fn names_round_trip() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().ok(), Some(*role));
        }
        assert!("owner".parse::<TeamRole>().is_err());
    }
}

-- Tenancy: users and organizations share one namespace of names; teams, robots,
-- per-repository permissions, organization default permissions, API tokens, audit log.

CREATE TABLE namespaces (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    kind       TEXT NOT NULL CHECK (kind IN ('user', 'organization')),
    created_at INTEGER NOT NULL
);

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    namespace_id  INTEGER NOT NULL UNIQUE REFERENCES namespaces (id) ON DELETE CASCADE,
    password_hash TEXT NOT NULL,
    superuser     INTEGER NOT NULL DEFAULT 0,
    email         TEXT,
    created_at    INTEGER NOT NULL
);

CREATE TABLE teams (
    id              INTEGER PRIMARY KEY,
    organization_id INTEGER NOT NULL REFERENCES namespaces (id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    role            TEXT NOT NULL CHECK (role IN ('member', 'creator', 'admin')),
    description     TEXT NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL,
    UNIQUE (organization_id, name)
);

-- A robot belongs to a user or an organization and is called owner+name.
CREATE TABLE robots (
    id          INTEGER PRIMARY KEY,
    owner_id    INTEGER NOT NULL REFERENCES namespaces (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    token_hash  BLOB NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,
    UNIQUE (owner_id, name)
);

CREATE TABLE team_members (
    team_id  INTEGER NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    user_id  INTEGER REFERENCES users (id) ON DELETE CASCADE,
    robot_id INTEGER REFERENCES robots (id) ON DELETE CASCADE,
    CHECK ((user_id IS NULL) <> (robot_id IS NULL))
);
CREATE UNIQUE INDEX team_members_users ON team_members (team_id, user_id) WHERE user_id IS NOT NULL;
CREATE UNIQUE INDEX team_members_robots ON team_members (team_id, robot_id) WHERE robot_id IS NOT NULL;
CREATE INDEX team_members_by_user ON team_members (user_id) WHERE user_id IS NOT NULL;
CREATE INDEX team_members_by_robot ON team_members (robot_id) WHERE robot_id IS NOT NULL;

-- Grants on one repository to exactly one of a user, a team or a robot.
CREATE TABLE permissions (
    repository_id INTEGER NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    user_id       INTEGER REFERENCES users (id) ON DELETE CASCADE,
    team_id       INTEGER REFERENCES teams (id) ON DELETE CASCADE,
    robot_id      INTEGER REFERENCES robots (id) ON DELETE CASCADE,
    role          TEXT NOT NULL CHECK (role IN ('read', 'write', 'admin')),
    CHECK ((user_id IS NOT NULL) + (team_id IS NOT NULL) + (robot_id IS NOT NULL) = 1)
);
CREATE UNIQUE INDEX permissions_users ON permissions (repository_id, user_id) WHERE user_id IS NOT NULL;
CREATE UNIQUE INDEX permissions_teams ON permissions (repository_id, team_id) WHERE team_id IS NOT NULL;
CREATE UNIQUE INDEX permissions_robots ON permissions (repository_id, robot_id) WHERE robot_id IS NOT NULL;
CREATE INDEX permissions_by_user ON permissions (user_id) WHERE user_id IS NOT NULL;
CREATE INDEX permissions_by_team ON permissions (team_id) WHERE team_id IS NOT NULL;
CREATE INDEX permissions_by_robot ON permissions (robot_id) WHERE robot_id IS NOT NULL;

-- What every new repository of an organization grants from the start.
CREATE TABLE default_permissions (
    id              INTEGER PRIMARY KEY,
    organization_id INTEGER NOT NULL REFERENCES namespaces (id) ON DELETE CASCADE,
    user_id         INTEGER REFERENCES users (id) ON DELETE CASCADE,
    team_id         INTEGER REFERENCES teams (id) ON DELETE CASCADE,
    robot_id        INTEGER REFERENCES robots (id) ON DELETE CASCADE,
    role            TEXT NOT NULL CHECK (role IN ('read', 'write', 'admin')),
    CHECK ((user_id IS NOT NULL) + (team_id IS NOT NULL) + (robot_id IS NOT NULL) = 1)
);
CREATE INDEX default_permissions_by_org ON default_permissions (organization_id);

-- Personal tokens for the management API and the CLI (stored as SHA-256).
CREATE TABLE api_tokens (
    id         INTEGER PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    token_hash BLOB NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    UNIQUE (user_id, name)
);

CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY,
    time       INTEGER NOT NULL,
    actor_kind TEXT NOT NULL,
    actor      TEXT NOT NULL DEFAULT '',
    action     TEXT NOT NULL,
    namespace  TEXT,
    repository TEXT,
    client_ip  TEXT,
    details    TEXT
);
CREATE INDEX audit_log_by_time ON audit_log (time, id);
CREATE INDEX audit_log_by_namespace ON audit_log (namespace, time) WHERE namespace IS NOT NULL;
CREATE INDEX audit_log_by_repository ON audit_log (repository, time) WHERE repository IS NOT NULL;
CREATE INDEX audit_log_by_actor ON audit_log (actor, time);

-- Repositories now belong to a namespace and are private unless made public.
ALTER TABLE repositories ADD COLUMN namespace_id INTEGER REFERENCES namespaces (id) ON DELETE CASCADE;
ALTER TABLE repositories ADD COLUMN visibility TEXT NOT NULL DEFAULT 'private' CHECK (visibility IN ('private', 'public'));

-- Repositories pushed before tenancy existed: their first path component becomes an
-- organization (managed by superusers until someone is made its admin).
INSERT INTO namespaces (name, kind, created_at)
SELECT DISTINCT substr(name, 1, instr(name || '/', '/') - 1), 'organization', created_at FROM repositories
WHERE true ON CONFLICT (name) DO NOTHING;
UPDATE repositories SET namespace_id =
    (SELECT n.id FROM namespaces n WHERE n.name = substr(repositories.name, 1, instr(repositories.name || '/', '/') - 1));
CREATE INDEX repositories_by_namespace ON repositories (namespace_id, name);

-- One default permission per grantee and organization, as permissions are per repository.
DELETE FROM default_permissions WHERE id NOT IN (
    SELECT MIN(id) FROM default_permissions GROUP BY organization_id, user_id, team_id, robot_id
);
CREATE UNIQUE INDEX default_permissions_users ON default_permissions (organization_id, user_id) WHERE user_id IS NOT NULL;
CREATE UNIQUE INDEX default_permissions_teams ON default_permissions (organization_id, team_id) WHERE team_id IS NOT NULL;
CREATE UNIQUE INDEX default_permissions_robots ON default_permissions (organization_id, robot_id) WHERE robot_id IS NOT NULL;

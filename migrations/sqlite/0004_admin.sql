-- Administration: indexes for the admin user list (search, filters, keyset pagination by
-- e-mail) and for the audit filters the base schema does not cover.
CREATE INDEX users_deleted ON users (deleted_at);
CREATE INDEX users_disabled ON users (disabled_at);
CREATE INDEX users_created ON users (created_at, id);
CREATE INDEX user_roles_role ON user_roles (role, user_id);
CREATE INDEX audit_log_client ON audit_log (client_id, at);
CREATE INDEX audit_log_outcome ON audit_log (outcome, at);
CREATE INDEX clients_name ON clients (name, id);

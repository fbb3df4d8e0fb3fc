-- Nothing to change on PostgreSQL: its refresh-token rotation is one statement with
-- data-modifying common table expressions (src/store/postgres.rs). SQLite's needs a view and a
-- trigger (migrations/sqlite/0015_refresh_rotation.sql); the version numbers stay in step.
SELECT 1;

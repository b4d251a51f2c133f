-- Run as the owner of Ward's tables (the role that ran `ward migrate`), after migrating,
-- to let the server run as a separate, less privileged role. Replace ward_app with the
-- role in WARD_DATABASE_URL. The app role gets full use of the chat tables but only
-- SELECT and INSERT on the audit tables, so it can neither edit nor delete history (the
-- triggers also block every role, owners included). tests/api/audit_log.rs runs this file.

GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ward_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO ward_app;
REVOKE UPDATE, DELETE, TRUNCATE ON audit_log, audit_nodes, audit_checkpoints FROM ward_app;
-- Pseudonyms are deleted on erasure, never rewritten.
REVOKE UPDATE, TRUNCATE ON audit_pseudonyms FROM ward_app;

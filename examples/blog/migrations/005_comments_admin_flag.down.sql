ALTER TABLE comments DROP COLUMN is_admin;

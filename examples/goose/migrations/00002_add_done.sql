-- +goose Up
-- No Down section: goose cannot roll this one back, and neither can we.
ALTER TABLE notes ADD COLUMN done INTEGER NOT NULL DEFAULT 0;

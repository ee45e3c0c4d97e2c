-- Added on branch `authors`.
ALTER TABLE notes ADD COLUMN author TEXT;

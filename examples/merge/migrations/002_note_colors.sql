-- Added on branch `colors`, merged after `authors`: both took version 002.
ALTER TABLE notes ADD COLUMN color TEXT NOT NULL DEFAULT 'yellow';

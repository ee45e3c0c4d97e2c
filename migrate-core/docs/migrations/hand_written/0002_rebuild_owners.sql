-- SQLite's table rebuild: without foreign keys off, DROP TABLE owners
-- would delete every pet.
PRAGMA foreign_keys = OFF;
BEGIN;
CREATE TABLE owners_new (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT);
INSERT INTO owners_new (id, name) SELECT id, name FROM owners;
DROP TABLE owners;
ALTER TABLE owners_new RENAME TO owners;
PRAGMA user_version = 2;
COMMIT;
PRAGMA foreign_keys = ON;

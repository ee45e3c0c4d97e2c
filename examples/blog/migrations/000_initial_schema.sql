-- The blog's first schema: posts and their tags, with two posts to start from.
CREATE TABLE posts (
    id INTEGER PRIMARY KEY,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    published_at TEXT,
    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE TABLE tags (
    post_id INTEGER NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    tag TEXT NOT NULL
);
INSERT INTO posts (title, body, published_at) VALUES
    ('Hello, World!', 'The first post; more to come.', '2024-01-15 09:00:00'),
    ('Migrations in Rust', 'Schema changes as code, applied at start-up.', '2024-02-02 18:30:00');
INSERT INTO tags (post_id, tag) VALUES (1, 'meta'), (2, 'rust'), (2, 'sqlite');

-- A post carries each tag once.
CREATE UNIQUE INDEX tags_post_tag ON tags (post_id, tag);

DROP INDEX tags_post_tag;

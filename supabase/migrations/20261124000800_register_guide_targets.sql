-- The two targets of the user's guide.
select embed_queue.register_target('sessions', 'title', 'title_embedding');
select embed_queue.register_target('summaries', 'content', 'content_embedding');

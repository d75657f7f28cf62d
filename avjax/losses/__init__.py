"""avjax.losses."""

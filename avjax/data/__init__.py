"""avjax.data."""

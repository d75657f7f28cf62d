"""avjax.utils."""

"""avjax.metrics."""

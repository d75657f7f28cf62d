"""avjax.evaluators."""

"""avjax.models."""

"""avjax.trainers."""

"""avjax: audio-visual event localization and video parsing in JAX."""

__version__ = "0.1.0"

"""Reading video files: PyAV decoding (`decode`), VGGish log-mel (`logmel`)."""

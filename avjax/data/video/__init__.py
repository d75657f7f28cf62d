"""Reading video files: PyAV decoding (`decode`) and VGGish log-mel (`logmel`)."""

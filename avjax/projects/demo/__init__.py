"""The end-to-end demo: generated videos -> features -> HAN -> parsed events."""

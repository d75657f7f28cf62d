"""Paper-specific tools, one package per paper (avjax.projects.<paper>).

The library (data, models, losses, trainers, evaluators) is shared by every
paper; what only one paper's tables or figures need lives here and may import
anything below it, never the reverse (see tests/test_import_graph.py).
"""

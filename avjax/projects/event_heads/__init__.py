"""Event-specific audio-visual fusion layers (Senocak et al., WACV 2023).

Tools: `analyze` writes the paper's Tables 1-4 from the row workdirs of the
`configs/event_heads.py` sweep (`python -m avjax.projects.event_heads.analyze`).
"""

"""VEBA: Video-Enhanced Balanced AudioSet (Li et al., ICASSP 2022).

Tools: `curve` draws Fig. 5 (F-scores and tagging mAP vs the proportion of
clips with video labels) from a sweep (`python -m avjax.projects.veba.curve`);
`spans` lists a trained run's audio-visual syncing spans, where an event is
both heard and seen (`python -m avjax.projects.veba.spans`).
"""

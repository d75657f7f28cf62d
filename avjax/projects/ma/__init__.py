"""MA: modality-aware label refinement for AVVP (Wu & Yang, CVPR 2021).

`pipeline` (`config.trainer="ma_pipeline"`, configs/avvp_ma.py) chains the
stages: train HAN (`trainers.avvp_weak` through the loop), `refine` (find
label exchanges by swapping tracks with disjoint-label partners), retrain on
the refined labels.
"""

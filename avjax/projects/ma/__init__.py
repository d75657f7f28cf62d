"""MA: modality-aware label refinement for AVVP (Wu & Yang, CVPR 2021).

Will hold MA's multi-stage pipeline (train HAN, find label exchanges, retrain
on refined labels) once the trainer-loop refactor of issue 21 moves it here
from avjax/trainers/ma_pipeline.py; no tools yet.
"""

"""Synthetic dataset generators, each written in the TFRecord contract.

`avvp` (LLP-shaped AVVP clips, name "synthetic"/"synthetic_real"), `ave`
(AVE-shaped localization clips, "synthetic_ave"), `events` (single-label
clips whose classes differ by event type, "synthetic_events") and `veba`
(VEBA-shaped long-tailed clips, "synthetic_veba"); `avjax.data.datasets`
dispatches to them by `config.data.name`.
"""

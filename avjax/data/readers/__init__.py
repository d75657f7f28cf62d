"""Readers of published and user dataset layouts, used by `avjax.prepare`.

Each turns a folder in some layout into clips of the TFRecord contract
(`avjax.data.schema`): `llp` (+ `llp_annotations`), `ave`, `veba`,
`single_label` (also the per-clip `.npy` stream layer the folder readers
share), `own_videos`, and `pooled` (wraps any reader, averaging frames per
segment).
"""

"""AVE: audio-visual event localization (Tian et al., ECCV 2018).

Tools: `attention` draws the audio-guided visual attention maps of a trained
run (`python -m avjax.projects.ave.attention`); `probe` is the ridge-regression
probe that picked the synthetic AVE generator's settings
(`python -m avjax.projects.ave.probe`); `seeds` tabulates the three-seed runs
of `configs/ave.py` (`python -m avjax.projects.ave.seeds`).
"""

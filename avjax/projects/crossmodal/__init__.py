"""Cross-modal learning for AVVP (Lamba et al. 2021): AVG graph + adversarial.

`pretrain` (`config.trainer="avg_pretrain"`) pretrains the AVG encoder
through the loop; `pipeline` (`config.trainer="avg_pipeline"`) chains that
pretraining and the AVVP fine-tuning (`trainers.avvp_weak`).

Tools: `avg_thresholds` scores a grid of the AVG graph's similarity
thresholds against dense labels (`python -m avjax.projects.crossmodal.avg_thresholds`);
`disc_curve` tabulates and plots the modality discriminator's accuracy over
training (`python -m avjax.projects.crossmodal.disc_curve`).
"""

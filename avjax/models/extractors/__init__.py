"""Pretrained feature extractors as Flax modules, with weight converters.

  resnet      ResNet-50/101/152 (torchvision layout), 2048-d per frame (LLP)
  r2plus1d    R(2+1)D-18 (torchvision.models.video), 512-d per clip (LLP)
  vgg         VGG-19 up to pool5, 7x7x512 per frame at 224x224 (AVE)
  vggish      VGGish + PCA/8-bit post-processing, 128-d per 0.96 s (audio)
  checkpoints weight files, loading, strict key checks, torch -> flax layout

Each torchvision model module exposes `build(arch)`, `torchvision_keys(arch)`,
`convert_torchvision(state_dict, arch)`, `load(arch, weights_dir)` and its
input `normalize`. No network at run time: weight files are downloaded by
the user (`checkpoints.WEIGHTS` names them).
"""

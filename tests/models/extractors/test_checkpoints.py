"""Weight files, strict key checks and the torch -> Flax layout."""

import os

import numpy as np
import pytest

from avjax.models.extractors import checkpoints
from avjax.models.extractors import r2plus1d
from avjax.models.extractors import resnet
from avjax.models.extractors import vgg

MINI = (1, 1, 1, 1)


def _sd():
  return checkpoints.random_state_dict(resnet.torchvision_keys(MINI), 3)


def test_missing_key_named_with_shape():
  sd = _sd()
  del sd["layer2.0.bn2.running_var"]
  with pytest.raises(checkpoints.WeightsError,
                     match=r"missing key layer2\.0\.bn2\.running_var "
                           r"\(expected shape \(128,\)\)"):
    resnet.convert_torchvision(sd, MINI)


def test_unexpected_keys_listed():
  sd = _sd()
  sd["layer5.0.conv1.weight"] = np.zeros((1,), np.float32)
  sd["extra"] = np.zeros((1,), np.float32)
  with pytest.raises(checkpoints.WeightsError,
                     match=r"2 unexpected key\(s\): extra, layer5\.0\.conv1"):
    resnet.convert_torchvision(sd, MINI)


def test_wrong_shape_named():
  sd = _sd()
  sd["conv1.weight"] = np.zeros((64, 3, 3, 3), np.float32)
  with pytest.raises(checkpoints.WeightsError,
                     match=r"conv1\.weight has shape \(64, 3, 3, 3\), "
                           r"expected \(64, 3, 7, 7\)"):
    resnet.convert_torchvision(sd, MINI)
  sd = _sd()
  sd["fc.weight"] = np.zeros((10, 2048), np.float32)  # optional, but checked
  with pytest.raises(checkpoints.WeightsError, match=r"fc\.weight"):
    resnet.convert_torchvision(sd, MINI)


def test_optional_head_counter_and_module_prefix_accepted():
  sd = {k: v for k, v in _sd().items() if not k.startswith("fc.")}
  sd["bn1.num_batches_tracked"] = np.array(7)
  a = resnet.convert_torchvision(sd, MINI)
  b = resnet.convert_torchvision({"module." + k: v for k, v in _sd().items()},
                                 MINI)
  np.testing.assert_array_equal(a["params"]["conv1"]["kernel"],
                                b["params"]["conv1"]["kernel"])


def test_layout_conversion():
  sd = _sd()
  v = resnet.convert_torchvision(sd, MINI)
  np.testing.assert_array_equal(v["params"]["conv1"]["kernel"],
                                sd["conv1.weight"].transpose(2, 3, 1, 0))
  np.testing.assert_array_equal(v["params"]["layer1_0"]["bn3"]["scale"],
                                sd["layer1.0.bn3.weight"])
  np.testing.assert_array_equal(
      v["batch_stats"]["layer2_0"]["downsample_1"]["var"],
      sd["layer2.0.downsample.1.running_var"])
  assert "fc" not in v["params"]
  sd3 = checkpoints.random_state_dict(r2plus1d.torchvision_keys(), 1)
  v3 = r2plus1d.convert_torchvision(sd3)
  np.testing.assert_array_equal(
      v3["params"]["layer1_0"]["conv1_0_3"]["kernel"],
      sd3["layer1.0.conv1.0.3.weight"].transpose(2, 3, 4, 1, 0))


def test_converted_tree_matches_module_init():
  import jax  # pylint: disable=g-import-not-at-top
  for model, keys, convert, x in (
      (resnet.build(MINI), resnet.torchvision_keys(MINI),
       lambda sd: resnet.convert_torchvision(sd, MINI), (1, 32, 32, 3)),
      (r2plus1d.build(), r2plus1d.torchvision_keys(),
       r2plus1d.convert_torchvision, (1, 2, 16, 16, 3)),
      (vgg.build(), vgg.torchvision_keys(head=False), vgg.convert_torchvision,
       (1, 32, 32, 3))):
    init = jax.eval_shape(model.init, jax.random.key(0), np.zeros(x))
    conv = convert(checkpoints.random_state_dict(keys, 0))
    shapes = lambda t: jax.tree.map(lambda a: tuple(a.shape), t)
    assert shapes(conv) == shapes(init)


def test_npz_file_and_missing_torch(tmp_path):
  sd = _sd()
  path = tmp_path / "resnet.npz"
  np.savez(path, **sd)
  v = resnet.convert_torchvision(str(path), MINI)
  np.testing.assert_array_equal(v["params"]["layer4_0"]["conv3"]["kernel"],
                                sd["layer4.0.conv3.weight"].transpose(
                                    2, 3, 1, 0))
  pth = tmp_path / "w.pth"
  pth.write_bytes(b"not a real file")
  try:
    import torch  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    with pytest.raises(checkpoints.WeightsError,
                       match=r"needs torch.*np\.savez"):
      checkpoints.load_state_dict(str(pth))


def test_missing_weights_names_file_url_and_folder(tmp_path, monkeypatch):
  monkeypatch.delenv(checkpoints.WEIGHTS_DIR_ENV, raising=False)
  for arch, load in (("resnet152", resnet.load),
                     ("r2plus1d_18", r2plus1d.load), ("vgg19", vgg.load)):
    name, url = checkpoints.WEIGHTS[arch]
    with pytest.raises(checkpoints.WeightsError) as e:
      load(arch, str(tmp_path))
    msg = str(e.value)
    assert url in msg and os.path.join(str(tmp_path), name) in msg
  monkeypatch.setenv(checkpoints.WEIGHTS_DIR_ENV, str(tmp_path))
  (tmp_path / "vgg19-dcbb9e9d.npz").write_bytes(b"")
  assert checkpoints.weights_file("vgg19").endswith("vgg19-dcbb9e9d.npz")

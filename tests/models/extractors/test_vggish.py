"""VGGish: converted seeded weights in both public layouts vs a reference.

The fixture tests/fixtures/vggish_golden.npz holds only outputs, computed
once outside the repository by the published architecture in torch
(float64) on the weights below. Seeding rule (`checkpoints.random_state_dict`
on the PyTorch port's keys + "pproc.pca_matrix" [128, 128] and
"pproc.pca_means" [128, 1], seed 0): each key from
np.random.default_rng([0, crc32(key)]), arrays of ndim >= 2 ~ N(0, 2 /
prod(shape[1:])), biases ~ N(0, 0.01); inputs
np.random.default_rng([0, 12345]).normal(-0.25, 0.25, (10, 96, 64)).
Fixture entries: embedding (fc2 before any ReLU), torch_port (ReLU, PCA,
round), tf_release (no ReLU, PCA, truncation), all [10, 128].
"""

import jax
import numpy as np
import pytest

from avjax.data.synthetic import videos
from avjax.data.video import decode
from avjax.data.video import logmel
from avjax.models.extractors import checkpoints
from avjax.models.extractors import vggish
from tests import testing_utils

PCA_SHAPES = {"pproc.pca_matrix": (128, 128), "pproc.pca_means": (128, 1)}


@pytest.fixture(scope="module")
def golden():
  return testing_utils.load_golden("vggish")


@pytest.fixture(scope="module")
def torch_sd():
  return checkpoints.random_state_dict({**vggish.torch_shapes(), **PCA_SHAPES},
                                       seed=0)


@pytest.fixture(scope="module")
def torch_w(torch_sd):
  return vggish.convert_torch(torch_sd)


@pytest.fixture(scope="module")
def tf_w(torch_sd):
  return vggish.convert_tf(*tf_layout(torch_sd))


def inputs():
  return np.random.default_rng([0, 12345]).normal(
      -0.25, 0.25, (10, 96, 64)).astype(np.float32)


def tf_layout(sd):
  """The same weights as TF-slim variables + the PCA npz entries."""
  variables = {}
  for name, _, scope, module in [l for l in vggish.LAYERS if l]:
    w = sd[f"{module}.weight"]
    variables[f"{scope}/weights"] = np.transpose(
        w, (2, 3, 1, 0) if w.ndim == 4 else (1, 0))
    variables[f"{scope}/biases"] = sd[f"{module}.bias"]
  pca = {"pca_eigen_vectors": sd["pproc.pca_matrix"].astype(np.float64),
         "pca_means": sd["pproc.pca_means"].reshape(-1).astype(np.float64)}
  return variables, pca


def test_layer_shapes_and_parameter_count():
  params = jax.eval_shape(vggish.VGGish().init, jax.random.key(0),
                          np.zeros((1, 96, 64), np.float32))["params"]
  count = sum(np.prod(x.shape) for x in jax.tree.leaves(params))
  assert count == 72_141_184  # the published VGGish
  assert params["conv4_2"]["kernel"].shape == (3, 3, 512, 512)
  assert params["fc1_1"]["kernel"].shape == (6 * 4 * 512, 4096)
  assert params["fc2"]["kernel"].shape == (4096, 128)
  assert set(vggish.tf_variable_shapes()) >= {
      "vggish/conv1/weights", "vggish/conv3/conv3_2/biases",
      "vggish/fc1/fc1_1/weights", "vggish/fc2/weights"}


def test_torch_layout_equals_reference(torch_w, golden):
  w = torch_w
  assert (w.relu_embedding, w.rounding) == (True, "round")
  x = inputs()
  raw, errs = [], []
  for a, b in ((0, 1), (1, 3), (3, 10)):  # batch sizes 1, 2, 7
    raw.append(np.asarray(vggish.embed(w, x[a:b], raw=True)))
    errs.append(np.abs(raw[-1] - np.maximum(golden["embedding"][a:b],
                                            0)).max())
  assert max(errs) < 1e-4, errs  # measured ~2e-6
  q = np.asarray(vggish.postprocess(np.concatenate(raw), w.pca_matrix,
                                    w.pca_means, w.rounding))
  diff = np.abs(q - golden["torch_port"])
  assert diff.max() <= 1 and (diff > 0).sum() <= 2  # ties at .5 only
  assert q.min() >= 0 and q.max() <= 255 and np.all(q == np.round(q))


def test_tf_layout_equals_reference(tf_w, golden):
  w = tf_w
  assert (w.relu_embedding, w.rounding) == (False, "floor")
  x = inputs()[:3]
  raw = np.asarray(vggish.embed(w, x, raw=True))
  assert np.abs(raw - golden["embedding"][:3]).max() < 1e-4
  q = np.asarray(vggish.postprocess(raw, w.pca_matrix, w.pca_means,
                                    w.rounding))
  diff = np.abs(q - golden["tf_release"][:3])
  assert diff.max() <= 1 and (diff > 0).sum() <= 2  # at integer boundaries


@pytest.mark.slow  # writes and reads 290 MB
def test_torch_npz_file_and_separate_pca(torch_sd, torch_w, tmp_path):
  net = {k: v for k, v in torch_sd.items() if not k.startswith("pproc")}
  np.savez(tmp_path / "vggish-10086976.npz", **net)
  np.savez(tmp_path / "vggish_pca_params-970ea276.npz",
           pca_eigen_vectors=torch_sd["pproc.pca_matrix"],
           pca_means=torch_sd["pproc.pca_means"].reshape(-1))
  w = vggish.load(directory=str(tmp_path))
  assert w.source.endswith("vggish-10086976.npz")
  ref = torch_w
  for k in ref.params:
    assert np.array_equal(w.params[k]["kernel"], ref.params[k]["kernel"]), k
  np.testing.assert_array_equal(w.pca_means, ref.pca_means)


@pytest.mark.slow  # writes and reads 290 MB, imports TensorFlow
def test_tf_checkpoint_file(torch_sd, tmp_path):
  tf = pytest.importorskip("tensorflow")
  variables, pca = tf_layout(torch_sd)
  prefix = str(tmp_path / "vggish_model.ckpt")
  names = sorted(variables)
  tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names,
                    shape_and_slices=[""] * len(names),
                    tensors=[tf.constant(variables[n]) for n in names])
  np.savez(tmp_path / "vggish_pca_params.npz", **pca)
  w = vggish.load(directory=str(tmp_path))
  assert w.source == prefix and (w.relu_embedding, w.rounding) == (
      False, "floor")
  ref = vggish.convert_tf(variables, pca)
  for k in ref.params:
    assert np.array_equal(w.params[k]["kernel"], ref.params[k]["kernel"]), k
  assert vggish.load(prefix, str(tmp_path / "vggish_pca_params.npz"),
                     relu_embedding=True, rounding="round").rounding == "round"


def test_both_layouts_give_the_same_params(tf_w, torch_w):
  a, b = tf_w, torch_w
  for k in a.params:
    for leaf in ("kernel", "bias"):
      assert np.array_equal(a.params[k][leaf], b.params[k][leaf]), k
  np.testing.assert_allclose(a.pca_matrix, b.pca_matrix)


def test_postprocess_by_hand():
  emb = np.zeros((1, 128), np.float32)
  emb[0, :4] = [-3.0, -0.01, 0.01, 1.999]
  eye = np.eye(128)
  floor = np.asarray(vggish.postprocess(emb, eye, np.zeros(128), "floor"))
  rnd = np.asarray(vggish.postprocess(emb, eye, np.zeros(128), "round"))
  # (x + 2) * 63.75: 0, 126.8625, 128.1375, 254.93625; zeros -> 127.5
  assert floor[0, :5].tolist() == [0, 126, 128, 254, 127]
  assert rnd[0, :5].tolist() == [0, 127, 128, 255, 128]
  means = np.full(128, 0.5)
  assert float(vggish.postprocess(emb, eye, means, "floor")[0, 5]) == 95.0


def test_errors_name_files_and_downloads(torch_sd, tmp_path):
  with pytest.raises(checkpoints.WeightsError) as e:
    vggish.load(directory=str(tmp_path))
  msg = str(e.value)
  for s in ("storage.googleapis.com/audioset/vggish_model.ckpt",
            "vggish_pca_params.npz", "vggish-10086976.pth",
            "--vggish_weights=PATH", str(tmp_path)):
    assert s in msg
  with pytest.raises(checkpoints.WeightsError, match="nope.pth"):
    vggish.load(str(tmp_path / "nope.pth"))
  bad = dict(torch_sd)
  bad["features.0.weight"] = bad["features.0.weight"][:32]
  with pytest.raises(checkpoints.WeightsError, match="features.0.weight"):
    vggish.convert_torch(bad)
  net = {k: v for k, v in torch_sd.items() if not k.startswith("pproc")}
  with pytest.raises(checkpoints.WeightsError, match="PCA.*--vggish_pca"):
    vggish.convert_torch(net)
  variables, pca = tf_layout(torch_sd)
  del variables["vggish/fc1/fc1_2/weights"]
  with pytest.raises(checkpoints.WeightsError, match="fc1/fc1_2/weights"):
    vggish.convert_tf(variables, pca)


def test_refused_pickle_gets_a_conversion_hint(monkeypatch, tmp_path):
  import pickle  # pylint: disable=g-import-not-at-top

  def refuse(source):
    if isinstance(source, str):
      raise pickle.UnpicklingError("Weights only load failed")
    return dict(source)

  monkeypatch.setattr(checkpoints, "load_state_dict", refuse)
  path = str(tmp_path / "vggish_pca_params-970ea276.pth")
  with pytest.raises(checkpoints.WeightsError,
                     match="970ea276.pth.*refused.*weights_only=False"):
    vggish.convert_torch({}, path)


def test_demo_video_to_llp_shaped_audio_features(torch_w, tmp_path):
  # decode -> log-mel examples -> VGGish + PCA: 10 x 128 values 0..255.
  rec = videos.make_video(str(tmp_path), 0, seed=0)
  path = str(tmp_path / (rec["video"] + ".mp4"))
  batches = logmel.stream_examples(decode.iter_audio_16k_mono(path),
                                   examples_per_batch=10)
  feats = np.concatenate([np.asarray(vggish.embed(torch_w, b))
                          for b in batches])
  assert feats.shape == (10, 128)
  assert feats.min() >= 0 and feats.max() <= 255
  assert np.all(feats == np.round(feats))

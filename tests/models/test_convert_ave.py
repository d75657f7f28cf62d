"""Golden test: avjax's reference-form AVE networks with weights converted
from the official code (YapengTian/AVE-ECCV18: models.att_Net and
models_fusion.TBMRF_Net, one DMRN block) give the official outputs.

tests/fixtures/ave_golden.npz holds the official state_dicts (random
weights, hidden_dim=8, hidden_size=16) and their softmax outputs, computed
once with the official code outside the project; the inputs are regenerated
here: np.random.default_rng(0), audio standard_normal((2, 10, 128)), then
visual |standard_normal((2, 10, 7, 7, 512))|."""

from absl.testing import absltest
import jax
import numpy as np
import pytest

from avjax.models import ave_net
from avjax.models import convert_torch
from configs import ave as ave_config
from tests import testing_utils

INFO = {"classes": [f"c{i}" for i in range(29)]}


def inputs():
  rng = np.random.default_rng(0)
  audio = rng.standard_normal((2, 10, 128)).astype(np.float32)
  video = np.abs(rng.standard_normal((2, 10, 7, 7, 512))).astype(np.float32)
  return {"audio": audio, "visual_map": video,
          "segment_mask": np.ones((2, 10), np.float32)}


class ConvertAVETest(absltest.TestCase):

  @pytest.mark.slow  # compiles two BiLSTM networks (~20 s on a busy CPU)
  def test_official_outputs(self):
    golden = testing_utils.load_golden("ave")
    x = inputs()
    for net, fusion in (("att", "concat"), ("dmrn", "dmrn")):
      with self.subTest(net):
        sd = {k[len(net) + 1:]: golden[k] for k in golden
              if k.startswith(net + "/") and not k.endswith("/prob")}
        cfg = ave_config.get_config(f"data=ave,fusion={fusion}").model
        cfg.update(lstm_hidden=8, att_dim=16, fusion_dim=16)
        model = ave_net.build(cfg, INFO)
        params = convert_torch.convert_ave(sd, net)
        want = jax.tree_util.tree_map(
            lambda a: a.shape, model.init(jax.random.PRNGKey(0), x)["params"])
        self.assertEqual(jax.tree_util.tree_map(lambda a: a.shape, params),
                         want)
        prob = model.apply({"params": params}, x)["prob"]
        np.testing.assert_allclose(prob, golden[f"{net}/prob"], atol=1e-5)
        self.assertGreater(float(np.std(golden[f"{net}/prob"])), 1e-3)

  def test_key_errors(self):
    golden = testing_utils.load_golden("ave")
    sd = {k[4:]: golden[k] for k in golden
          if k.startswith("att/") and not k.endswith("/prob")}
    del sd["L1.bias"]
    with self.assertRaisesRegex(ValueError, r"missing key\(s\) \['L1.bias'\]"):
      convert_torch.convert_ave(sd, "att")


if __name__ == "__main__":
  absltest.main()

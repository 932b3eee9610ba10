"""The task layer as a specification: every registered task KIND keeps one contract (build,
loss, predict, metric with its direction, Serve JSON with its schema), and a network users
bring by config (builder + weights file + layers) becomes a task without code."""

from __future__ import annotations

import json

import jsonschema
import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from omnicodec.data.loader import collate
from omnicodec.errors import ConfigError
from omnicodec.tasks.byo import NetworkSpec, build_network
from omnicodec.tasks.kinds import KINDS, get_kind
from omnicodec.tasks.networks import build_task_net

NUM_CLASSES = 8  # at least the scene builder's classes


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    from omnicodec.data.loader import iter_samples
    from omnicodec.data.scenes import build_scenes

    out = tmp_path_factory.mktemp("kind-scenes")
    build_scenes(str(out), train=2, test=4, size=96, maxcount=3, source="portable", progress=False)
    from omnicodec.data.shards import read_card

    assert len(read_card(str(out))["classes"]) <= NUM_CLASSES
    samples = list(iter_samples(str(out / "test-000000.tar")))[:4]
    for s in samples:  # the dense maps a PASCAL-Context conversion adds (parts ids, saliency, normals)
        s.maps["parts"] = (s.seg % 4).to(torch.uint8)
        s.maps["sal"] = ((s.seg > 0) * 255).to(torch.uint8)
        s.maps["normals"] = torch.full((3, *s.seg.shape), 128, dtype=torch.uint8)
    return samples


def _network(kind: str):
    """The kind's own network, or a torchvision network brought by config for kinds without one."""
    net = build_task_net(kind, NUM_CLASSES) if get_kind(kind).build(NUM_CLASSES) is not None else None
    if net is None:
        channels = 3 if kind == "normals" else 1
        net = build_network(NetworkSpec(builder="torchvision:lraspp_mobilenet_v3_large", output="out",
                                        kwargs={"weights": None, "weights_backbone": None, "num_classes": channels}), kind)
    return net.eval()


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_keeps_the_contract(kind, samples):
    k = get_kind(kind)
    assert k.name == kind and k.metric and isinstance(k.higher_is_better, bool)
    net = _network(kind)
    for p in net.parameters():
        p.requires_grad_(False)

    x = torch.stack([s.image for s in samples[:2]]).requires_grad_(True)  # the loss reaches the pixels
    if k.needs:  # kinds without shard labels (normals) are trained by distillation
        loss = net.label_loss(x, collate(samples[:2]))
        assert loss.dim() == 0 and torch.isfinite(loss)
        loss.backward()
        assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(f.shape[0] == 2 for f in net.features(x.detach()))

    labelled, label_free = k.make_metric(NUM_CLASSES, True), k.make_metric(NUM_CLASSES, False)
    with torch.no_grad():
        preds = [net.predict(s.image[None]) for s in samples]
    for s, pred in zip(samples, preds):
        labelled.update(pred, s, pred)
        label_free.update(pred, s, pred)
    assert k.metric in labelled.result() and k.label_free_metric in label_free.result()
    scored = labelled if k.needs else label_free  # kinds without shard labels score label-free only
    draws = scored.bootstrap(k.metric, np.random.default_rng(0).integers(0, len(samples), (5, len(samples))))
    assert draws.shape == (5,) and np.isfinite(draws).all()
    perfect = 1.0 if k.higher_is_better else 0.0
    if kind != "det":  # an untrained detector may have no confident clean detection to match
        assert label_free.result()[k.label_free_metric] == pytest.approx(perfect, abs=1e-3)  # agrees with itself

    for fmt in ("png", "rle"):
        body = json.loads(json.dumps(k.response(preds[0], ["a", "b", "c"], {"top_k": 2, "seg_format": fmt})))
        jsonschema.validate(body, k.response_schema)

    from omnicodec.images import to_pil

    view = to_pil(samples[0].image)
    drawn = k.draw(view, preds[0], ["a", "b", "c"])  # the picture a report shows for this task
    assert drawn.size == view.size and drawn.mode == "RGB" and drawn is not view


def test_a_kind_registered_twice_is_refused():
    from omnicodec.tasks.kinds import register_kind
    from omnicodec.tasks.kinds.classification import Classification

    with pytest.raises(ConfigError, match="registered twice"):
        register_kind("cls")(type("Again", (Classification,), {}))


def test_a_kind_with_its_own_network_is_one_file_plus_one_registry_line(throwaway, samples):
    """The acceptance of the registry: a throwaway kind from one new file (imported: its
    decorator is the registry line) builds its bundled network and keeps the contract."""
    throwaway(KINDS, "tinycls", '''
        import torch.nn.functional as F
        from torch import nn

        from omnicodec.tasks.kinds.base import KINDS
        from omnicodec.tasks.kinds.classification import Classification
        from omnicodec.tasks.networks import TaskNet


        class TinyNet(TaskNet):
            def __init__(self, num_classes):
                super().__init__()
                self.conv, self.head = nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.Linear(8, num_classes)

            def features(self, x):
                return [self.conv(self.normalize(x))]

            def forward(self, x):
                return self.head(self.features(x)[0].mean((2, 3)))

            def label_loss(self, x, batch):
                return F.cross_entropy(self(x), batch["cls"].to(x.device))

            def predict(self, x):
                return self(x).softmax(-1)


        @KINDS.register("tinycls")
        class TinyClassification(Classification):
            description = "classification by a network of one convolution"

            def build(self, num_classes, **kwargs):
                return TinyNet(num_classes)
        ''')
    assert get_kind("tinycls").name == "tinycls" and "tinycls" in KINDS.names()
    assert type(build_task_net("tinycls", NUM_CLASSES)).__name__ == "TinyNet"
    test_every_kind_keeps_the_contract("tinycls", samples)


def test_bring_your_own_segmenter_by_config(tmp_path, samples):
    """A torchvision segmenter built here, its weights saved as safetensors, named by config:
    it predicts, distils named layers and scores label-free against its own clean output."""
    import torchvision.models as tvm

    from omnicodec.eval.tasks import TaskScorer
    from omnicodec.tasks.registry import get_task, register_task, task_from_definition

    module = tvm.get_model("lraspp_mobilenet_v3_large", weights=None, weights_backbone=None, num_classes=5)
    save_file({k: v.contiguous() for k, v in module.state_dict().items()}, str(tmp_path / "seg.safetensors"))
    definition = {"name": "myseg", "kind": "seg", "num_classes": 4, "network": {
        "builder": "torchvision:lraspp_mobilenet_v3_large", "output": "out", "weights": str(tmp_path / "seg.safetensors"),
        "kwargs": {"weights": None, "weights_backbone": None, "num_classes": 5}, "layers": ["backbone.4", "backbone.8"]}}
    register_task(task_from_definition(definition))
    info = get_task("myseg")
    assert not info.labelled and info.metric == "agreement"
    scorer = TaskScorer("myseg")
    assert [f.shape[1] for f in scorer.net.features(samples[0].image[None])] == [40, 80]
    for s in samples:
        scorer.update(s.image[None], s, scorer.predict(s.image[None]))
    assert scorer.result()["agreement"] == 1.0
    torch.testing.assert_close(scorer.net.net.state_dict()["classifier.low_classifier.weight"],
                               module.state_dict()["classifier.low_classifier.weight"])


@pytest.mark.parametrize("change, message", [
    ({"layers": ["backbone.nope"]}, r"network.layers: no module 'backbone.nope' in torchvision:lraspp"),
    ({"weights": "/does/not/exist.safetensors"}, r"network.weights: /does/not/exist.safetensors does not exist"),
    ({"kwargs": {"weights": None, "weights_backbone": None, "num_classes": 3}},
     r"network.weights: key 'classifier\.\w+\.weight' has shape \[5, \d+, 1, 1\] in .* expects \[3, \d+, 1, 1\]"),
    ({"builder": "torchvision:no_such_net"}, r"network.builder: torchvision has no model 'no_such_net'"),
    ({"builder": "json:no_such_function"}, r"network.builder: 'json' has no callable 'no_such_function'"),
])
def test_a_bad_network_definition_is_one_line_naming_the_key(tmp_path, change, message):
    import torchvision.models as tvm

    module = tvm.get_model("lraspp_mobilenet_v3_large", weights=None, weights_backbone=None, num_classes=5)
    save_file({k: v.contiguous() for k, v in module.state_dict().items()}, str(tmp_path / "w.safetensors"))
    spec = {"builder": "torchvision:lraspp_mobilenet_v3_large", "output": "out", "weights": str(tmp_path / "w.safetensors"),
            "kwargs": {"weights": None, "weights_backbone": None, "num_classes": 5}, **change}
    with pytest.raises(ConfigError, match=message) as err:
        build_network(NetworkSpec.from_dict(spec), "seg")
    assert "\n" not in str(err.value)


def test_pickled_weights_are_refused(tmp_path):
    """Weights are tensors only: a pickle that would run code on load is an error, not executed."""
    import pickle

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (tmp_path / "evil.pt").write_bytes(pickle.dumps({"w": Evil()}))
    with pytest.raises(ConfigError, match="is not a safetensors file or a plain state dict"):
        build_network(NetworkSpec(builder="torchvision:resnet18", weights=str(tmp_path / "evil.pt")), "cls")

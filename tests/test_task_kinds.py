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


TINY_KIND = '''
    """A throwaway kind with its own network, and nothing else: the kind's semantics
    (predictions, loss), its pretrain defaults and how its dense map flips live here."""
    from torch import nn

    from omnicodec.tasks.kinds.base import KINDS, PretrainDefaults
    from omnicodec.tasks.kinds.classification import Classification
    from omnicodec.tasks.networks import TaskNet


    class TinyNet(TaskNet):  # raw outputs only: the kind predicts and computes the loss
        def __init__(self, num_classes):
            super().__init__()
            self.conv, self.head = nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.Linear(8, num_classes)

        def features(self, x):
            return [self.conv(self.normalize(x))]

        def forward(self, x):
            return self.head(self.features(x)[0].mean((2, 3)))


    @KINDS.register("tinyk")
    class TinyClassification(Classification):
        description = "classification by a network of one convolution"
        maps = ("tinymap",)
        pretrain_defaults = PretrainDefaults(batch_size=4, crop=64, steps=10)

        def build(self, num_classes, **kwargs):
            return TinyNet(num_classes)

        def flip_map(self, name, m):
            return 255 - m.flip(-1)  # whatever the loader's flip must ask the kind
    '''


def test_a_kind_with_its_own_network_is_one_file_plus_one_registry_line(throwaway, samples):
    """The acceptance of the registry: a throwaway kind from one new file (imported: its
    decorator is the registry line) with its own network. It is a kind everywhere: the
    contract, its network's predictions and loss (from the kind, the network has neither),
    the same semantics for a network brought by config, task definitions in configs, the
    loader's flip of its map and ``pretrain task``'s defaults. A bundled task of it (a zoo
    artifact) is then one line of the task registry: ``pretrain task --task`` takes it."""
    import torch.nn.functional as F

    from omnicodec.data.loader import flip
    from omnicodec.data.samples import Sample
    from omnicodec.jobs.adaptor_job import TaskSpec
    from omnicodec.jobs.task_job import TaskPretrainConfig
    from omnicodec.tasks.kinds import PretrainDefaults
    from omnicodec.tasks.registry import TASKS, TaskInfo, pretrain_defaults, trainable_tasks

    throwaway(KINDS, "tinyk", TINY_KIND)
    assert get_kind("tinyk").name == "tinyk" and "tinyk" in KINDS.names()
    net = build_task_net("tinyk", NUM_CLASSES).eval()
    assert type(net).__name__ == "TinyNet" and net.kind == "tinyk"
    test_every_kind_keeps_the_contract("tinyk", samples)

    x = torch.stack([s.image for s in samples[:2]])
    batch = collate(samples[:2])
    with torch.no_grad():
        torch.testing.assert_close(net.predict(x), net(x).softmax(-1))
        torch.testing.assert_close(net.label_loss(x, batch), F.cross_entropy(net(x), batch["cls"]))
        brought = build_network(NetworkSpec(builder="throwaway_tinyk:TinyNet", kwargs={"num_classes": NUM_CLASSES},
                                            mean=(0, 0, 0), std=(1, 1, 1)), "tinyk")  # TinyNet normalises itself
        brought.net.load_state_dict(net.state_dict())
        torch.testing.assert_close(brought.predict(x), net.predict(x))  # one semantics for every network

    # a config's task definition names the kind
    spec = TaskSpec.from_dict({"name": "mytiny", "kind": "tinyk", "loss": "distill",
                               "network": {"builder": "throwaway_tinyk:TinyNet", "kwargs": {"num_classes": 3}}})
    assert spec.info().task_kind is get_kind("tinyk") and spec.info().metric == "agreement"

    # the loader's horizontal flip asks the kind how its map flips
    m = torch.arange(12, dtype=torch.uint8).view(3, 4)
    sample = Sample(key="k", url="u", image=torch.zeros(3, 3, 4, dtype=torch.uint8), maps={"tinymap": m.clone()})
    assert torch.equal(flip(sample).maps["tinymap"], 255 - m.flip(-1))

    # its bundled task: one line of the task registry; pretrain task takes it with the kind's defaults
    TASKS.add("tinyk", TaskInfo("tinyk", "tinyk", "task-tinyk", "a throwaway bundled task"))
    try:
        assert "tinyk" in trainable_tasks() and pretrain_defaults("tinyk") == PretrainDefaults(4, 64, 10)
        cfg = TaskPretrainConfig.from_dict({"task": "tinyk", "data": {"shards": "scenes/train-000000.tar"}})
        assert cfg.task == "tinyk"
        from omnicodec.cli import build_parser

        usage = build_parser()._subparsers._group_actions[0].choices["pretrain"]
        task_help = usage._subparsers._group_actions[0].choices["task"].format_help()
        assert "tinyk" in task_help  # the --task help lists what the registry trains
    finally:
        TASKS.remove("tinyk")
    with pytest.raises(ConfigError, match="not a task trained here"):
        TaskPretrainConfig.from_dict({"task": "tinyk", "data": {"shards": "scenes/train-000000.tar"}})


def test_pretrain_defaults_are_the_kinds():
    """``omnicodec pretrain task``'s (batch size, crop, steps) per bundled task, from its kind."""
    from omnicodec.tasks.kinds import PretrainDefaults
    from omnicodec.tasks.registry import pretrain_defaults, trainable_tasks

    assert {t: tuple(pretrain_defaults(t)) for t in trainable_tasks()} == {
        "cls": (32, 160, 800), "seg": (16, 160, 2000), "det": (8, None, 2500)}
    assert all(isinstance(get_kind(k).pretrain_defaults, PretrainDefaults) for k in KINDS)


@pytest.mark.parametrize("kind, evaluated", [("sal", "salient"), ("edge", "edge_target")])
def test_training_and_evaluation_read_one_target(kind, evaluated, samples):
    """Saliency (and edges): the target the kind's loss trains every network on, the bundled
    SaliencyNet included, is the target evaluation scores against, on samples with the
    kind's map (which disagrees with the label masks here) and without it."""
    import copy
    import importlib

    import torch.nn.functional as F

    k = get_kind(kind)
    (member,) = k.maps
    evaluate = getattr(importlib.import_module(type(k).__module__), evaluated)
    with_map = copy.deepcopy(samples)
    for s in with_map:  # a map that is NOT what the label masks say
        s.maps[member] = ((s.seg == 0) * 255).to(torch.uint8)
    without = copy.deepcopy(samples)
    for s in without:
        s.maps.pop(member, None)
    for group in (with_map, without):
        batch = collate(group)
        assert (member in batch["maps"]) == (group is with_map)
        target = k.target(batch)
        for i, s in enumerate(group):
            assert torch.equal(target[i], evaluate(s))
        assert not torch.equal(evaluate(with_map[0]), evaluate(without[0]))
    if kind == "sal":  # the bundled saliency network trains on exactly that target
        net = build_task_net("sal", 0).eval()
        x = torch.stack([s.image for s in with_map])
        with torch.no_grad():
            want = F.binary_cross_entropy_with_logits(net(x)[:, 0], torch.stack([evaluate(s) for s in with_map]).float())
            torch.testing.assert_close(net.label_loss(x, collate(with_map)), want)


def test_every_dense_map_flips_one_way_and_back():
    """Each dense map a kind reads flips as that kind says, the same whichever kind reading it
    is asked, and flipping twice restores it; normals negate n_x."""
    from omnicodec.tasks.kinds import flipped_map, map_owner

    maps = {m for k in KINDS for m in get_kind(k).maps}
    assert {"sal", "edge", "parts", "normals"} <= maps
    g = torch.Generator().manual_seed(0)
    for name in sorted(maps):
        m = torch.randint(0, 256, (3, 5, 7), generator=g, dtype=torch.uint8)
        assert torch.equal(flipped_map(name, flipped_map(name, m.clone())), m)
        for k in KINDS:
            if name in get_kind(k).maps:
                assert torch.equal(get_kind(k).flip_map(name, m.clone()), map_owner(name).flip_map(name, m.clone()))
    m = torch.randint(0, 256, (3, 5, 7), generator=g, dtype=torch.uint8)
    flipped = flipped_map("normals", m.clone())
    assert torch.equal(flipped[0], 255 - m[0].flip(-1)) and torch.equal(flipped[1:], m[1:].flip(-1))
    assert torch.equal(flipped_map("nobody-reads-this", m), m.flip(-1))


def test_the_converters_write_maps_the_kinds_read():
    """The PASCAL-Context converter's folders are its dataset's layout; the map names it
    writes are the kinds': each is read by a registered kind."""
    from omnicodec.data.converters.pascal_context import MULTITASK_FOLDERS
    from omnicodec.tasks.kinds import map_owner

    assert all(map_owner(m) is not None for m in MULTITASK_FOLDERS)


def test_a_brought_detector_has_no_label_loss():
    """Detections alone give no loss: a brought detector trains by distillation (one line)."""
    from torch import nn

    from omnicodec.tasks.byo import BroughtNetwork

    net = BroughtNetwork(nn.Conv2d(3, 1, 1), NetworkSpec(builder="torch.nn:Conv2d"), "det")
    with pytest.raises(ConfigError, match="task kind 'det' has no label loss for a network you bring; use loss: distill"):
        net.label_loss(torch.zeros(1, 3, 8, 8), {"boxes": [torch.zeros(0, 4)], "labels": [torch.zeros(0, dtype=torch.long)]})


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

"""Bring your own frozen network: any torch module, named by config, becomes a task network.

    network:
      builder: torchvision:deeplabv3_mobilenet_v3_large   # or timm:NAME, or package.module:function
      kwargs: {num_classes: 21, weights_backbone: null}
      weights: s3://models/seg.safetensors               # file or fsspec URL: safetensors or a state dict
      mean: [0.485, 0.456, 0.406]                         # the network's input convention
      std: [0.229, 0.224, 0.225]
      size: null                                          # resize input to size x size (null: as decoded)
      output: out                                         # key of a dict output (torchvision segmentation)
      layers: [backbone.4, backbone.8]                    # module names distilled by ``loss: distill``

Weights are read with ``safetensors`` or ``torch.load(weights_only=True)``: tensors only,
never an unpickled object. The task's KIND (``cls``, ``seg``, ``det``, ``sal`` ...) turns the
module's output into predictions, label losses, metrics and Serve JSON, so training,
evaluation, sweeps and Serve take the network unchanged.
"""

from __future__ import annotations

import importlib
import io
from typing import Any

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from omnicodec import storage
from omnicodec.config import Config
from omnicodec.errors import ConfigError
from omnicodec.tasks.networks import IMAGENET_MEAN, IMAGENET_STD, TaskNet


class NetworkSpec(Config):
    builder: str = Field(description="torchvision:NAME, timm:NAME or package.module:function")
    kwargs: dict[str, Any] = Field(default_factory=dict)
    weights: str | None = Field(None, description="safetensors or state-dict file/URL (tensors only)")
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    size: int | None = Field(None, ge=8)
    output: str | None = Field(None, description="key of a dict output, e.g. 'out' for torchvision segmentation")
    layers: list[str] = Field(default_factory=list, description="modules distilled by loss: distill (default: the output)")


def resolve_builder(ref: str):
    """``torchvision:NAME`` / ``timm:NAME`` / ``package.module:function`` -> a callable."""
    if ":" not in ref:
        raise ConfigError(f"network.builder '{ref}' must be torchvision:NAME, timm:NAME or package.module:function")
    module_name, attr = ref.split(":", 1)
    if module_name == "torchvision":
        import torchvision.models as tvm

        try:
            return tvm.get_model_builder(attr)
        except ValueError:
            raise ConfigError(f"network.builder: torchvision has no model '{attr}'") from None
    if module_name == "timm":
        try:
            import timm
        except ImportError:
            raise ConfigError("network.builder: timm is not installed (pip install timm)") from None
        return lambda **kw: timm.create_model(attr, pretrained=False, **kw)
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ConfigError(f"network.builder: cannot import '{module_name}' ({e})") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise ConfigError(f"network.builder: '{module_name}' has no callable '{attr}'")
    return fn


def read_state_dict(location: str) -> dict[str, Tensor]:
    """Tensors from a safetensors file or a torch state dict, never arbitrary pickled objects."""
    if not storage.exists(location):
        raise ConfigError(f"network.weights: {location} does not exist")
    data = storage.read_bytes(location)
    if location.endswith(".safetensors"):
        from safetensors.torch import load

        return load(data)
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - name the file and the refusal
        raise ConfigError(f"network.weights: {location} is not a safetensors file or a plain state dict ({e})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ConfigError(f"network.weights: {location} holds no name -> tensor mapping")
    return state


def load_weights_into(module: nn.Module, state: dict[str, Tensor], location: str) -> None:
    """Strict load with a one-line error naming the first bad key."""
    own = module.state_dict()
    for k in state:
        if k not in own:
            raise ConfigError(f"network.weights: {location} has key '{k}' that the network does not have")
    for k, want in own.items():  # the network's order: the first mismatch is deterministic
        if k in state and tuple(want.shape) != tuple(state[k].shape):
            raise ConfigError(f"network.weights: key '{k}' has shape {list(state[k].shape)} in {location} "
                              f"but the network expects {list(want.shape)}")
    missing = [k for k in own if k not in state]
    if missing:
        raise ConfigError(f"network.weights: {location} lacks key '{missing[0]}' ({len(missing)} missing)")
    module.load_state_dict(state, strict=True)


class BroughtNetwork(TaskNet):
    """A user's module behind the TaskNet interface; its kind interprets the output
    (``TaskNet.predict`` / ``label_loss``, as for the bundled networks)."""

    def __init__(self, module: nn.Module, spec: NetworkSpec, kind: str):
        super().__init__()
        from omnicodec.tasks.kinds import get_kind

        get_kind(kind)  # an unknown kind is refused here, listing the known ones
        self.net, self.spec, self.kind = module, spec, kind
        self.mean.copy_(torch.tensor(spec.mean).view(1, 3, 1, 1))
        self.std.copy_(torch.tensor(spec.std).view(1, 3, 1, 1))
        names = dict(module.named_modules())
        for layer in spec.layers:
            if layer not in names:
                near = [n for n in names if n and n.split(".")[0] == layer.split(".")[0]][:6] or list(names)[1:7]
                raise ConfigError(f"network.layers: no module '{layer}' in {spec.builder} (e.g. {', '.join(near)})")

    def _prepare(self, x: Tensor) -> Tensor:
        if self.spec.size is not None and tuple(x.shape[-2:]) != (self.spec.size, self.spec.size):
            x = F.interpolate(x, size=(self.spec.size, self.spec.size), mode="bilinear", align_corners=False)
        return self.normalize(x)

    def forward(self, x: Tensor) -> Any:
        out = self.net(self._prepare(x))
        if self.spec.output is not None:
            if not isinstance(out, dict) or self.spec.output not in out:
                keys = list(out) if isinstance(out, dict) else type(out).__name__
                raise ConfigError(f"network.output: '{self.spec.output}' is not in the network's output ({keys})")
            out = out[self.spec.output]
        if isinstance(out, Tensor) and out.dim() == 4 and self.spec.size is not None and out.shape[-2:] != x.shape[-2:]:
            out = F.interpolate(out, size=x.shape[-2:], mode="bilinear", align_corners=False)  # masks at input size
        return out

    def features(self, x: Tensor) -> list[Tensor]:
        if not self.spec.layers:
            out = self(x)
            return [out] if isinstance(out, Tensor) else [v for v in out.values() if isinstance(v, Tensor)]
        captured: list[Tensor] = []
        modules = dict(self.net.named_modules())
        hooks = [modules[n].register_forward_hook(lambda _m, _i, o: captured.append(o)) for n in self.spec.layers]
        try:
            self.net(self._prepare(x))
        finally:
            for h in hooks:
                h.remove()
        return [c if isinstance(c, Tensor) else next(iter(c.values())) for c in captured]


def check_network(task: str, side: int = 64) -> None:
    """Build task ``task``'s brought network (weights loaded, layers looked up) and run it once
    on a dummy ``side`` x ``side`` image at its configured layers and output, here in the
    driver: a wrong layer or output name, a missing weights file, a shape mismatch or a network
    that cannot take an image is one ConfigError line naming the task and the key, before any
    Ray worker starts."""
    from omnicodec.tasks.registry import get_task, load_task_net

    try:
        net = load_task_net(task)
        x = torch.full((1, 3, side, side), 0.5)
        with torch.no_grad():
            net(x)
            net.features(x)
    except ConfigError as e:
        raise ConfigError(f"task '{task}': {e}") from None
    except Exception as e:  # noqa: BLE001 - whatever the user's module raises, as one line
        builder = (get_task(task).network or {}).get("builder")
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ConfigError(f"task '{task}': network {builder} fails on a 1x3x{side}x{side} image "
                          f"({type(e).__name__}: {first})") from None


def build_network(spec: NetworkSpec, kind: str) -> BroughtNetwork:
    module = resolve_builder(spec.builder)(**spec.kwargs)
    if not isinstance(module, nn.Module):
        raise ConfigError(f"network.builder: {spec.builder} returned {type(module).__name__}, not a torch.nn.Module")
    if spec.weights is not None:
        load_weights_into(module, read_state_dict(spec.weights), spec.weights)
    module.eval()
    return BroughtNetwork(module, spec, kind)

"""Work in a thread stops when its awaiting task is cancelled (``serve/cancel.py``): what a
timed-out Serve request relies on, shown here on a real network without Ray."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
import torch
from torch import nn

from omnicodec.serve.cancel import Cancelled, make_cancellable, stopping_when, to_thread_cancellable


def _net() -> nn.Module:
    torch.manual_seed(0)
    return make_cancellable(nn.Sequential(*[nn.Conv2d(8, 8, 3, padding=1) for _ in range(400)]))


@torch.no_grad()
def test_a_timed_out_await_stops_the_threads_network_within_a_layer():
    net, x = _net(), torch.rand(1, 8, 512, 512)
    t0 = time.perf_counter()
    net[:20](x)
    whole = (time.perf_counter() - t0) * 20  # 400 layers
    ended: list[float] = []

    def work() -> torch.Tensor:
        try:
            return net(x)
        finally:
            ended.append(time.perf_counter())

    async def main() -> None:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(to_thread_cancellable(work), timeout=0.1 * whole)

    t0 = time.perf_counter()
    asyncio.run(main())
    deadline = time.time() + 60
    while not ended and time.time() < deadline:
        time.sleep(0.01)
    stopped = ended[0] - t0
    assert stopped < 0.4 * whole, f"the thread ran {stopped:.2f} s; the whole network takes {whole:.2f} s"


@torch.no_grad()
def test_the_hooks_do_nothing_outside_a_cancellable_block_and_raise_inside_once_called_off():
    net, x = _net(), torch.rand(1, 8, 8, 8)
    assert net(x).shape == x.shape
    with stopping_when(lambda: False):
        assert net(x).shape == x.shape
    called_off = threading.Event()
    called_off.set()
    with stopping_when(called_off.is_set), pytest.raises(Cancelled):
        net(x)
    assert net(x).shape == x.shape  # the flag is the block's, not the network's
    assert len(net[0]._forward_pre_hooks) == 1 and len(make_cancellable(net)[0]._forward_pre_hooks) == 1


def test_a_task_replica_answers_each_request_like_the_library_and_none_where_all_callers_are_gone():
    """``TaskWorker.run_batch`` (a Serve task replica, here without Ray) runs the library's
    batched synthesis: each answer equals the task network on ``OmniCodec.decode_batch``'s
    view of its stream; a shape group whose callers are all gone stops and answers None."""
    from omnicodec import zoo
    from omnicodec.serve.core import TaskWorker

    worker = TaskWorker("cls", str(zoo.WEIGHTS_DIR / "adaptors-demo"))
    torch.manual_seed(0)
    images = [torch.rand(3, h, w) for h, w in [(64, 96), (96, 64), (64, 96)]]
    streams = worker.model.encode_batch(images)
    items = [(y, {"height": s.height, "width": s.width}) for s, y in worker.model.decode_latents(streams)]
    expected = [worker.predict(d["cls"]) for d in worker.model.decode_batch(streams, tasks=["cls"])]
    assert worker.run_batch(items) == expected
    events = [threading.Event() for _ in items]
    events[1].set()  # alone in its shape: its group is called off
    assert worker.run_batch(items, called_off=events) == [expected[0], None, expected[2]]
    events[0].set()  # one caller of a group of two gone: the group still runs
    assert worker.run_batch(items, called_off=events) == [expected[0], None, expected[2]]
    assert expected[1] == worker.predict(worker.model.decode(streams[1], tasks=["cls"])["cls"])

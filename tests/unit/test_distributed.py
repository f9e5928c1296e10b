"""train/distributed.py without torchrun: lr scaling, frame shares, per-rank samplers and restart, the collectives
(broadcast, gradient and metric averages, gather, a lost rank) in two gloo processes, and a rank's request to
stop with its parent."""

import math
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from deeppot.data import BatchSampler, DeepmdSystem
from deeppot.errors import DistributedError
from deeppot.train.distributed import World, timeout_from_env
from helpers import WATER


@pytest.mark.parametrize("mode, size, factor", [("linear", 4, 4.0), ("sqrt", 4, 2.0), ("none", 4, 1.0),
                                                ("linear", 1, 1.0), ("sqrt", 1, 1.0)])
def test_lr_scale_follows_scale_by_worker(mode, size, factor):
    assert World(0, size).lr_scale(mode) == factor


def test_frame_shares_split_every_system_and_give_each_rank_a_frame():
    shares = [World(r, 3).frame_shares([7, 2]) for r in range(3)]
    assert [s[0].tolist() for s in shares] == [[0, 3, 6], [1, 4], [2, 5]]
    assert [s[1].tolist() for s in shares] == [[0], [1], [0]]  # fewer frames than ranks: one frame each
    assert World(0, 1).frame_shares([5])[0].tolist() == list(range(5))


def test_timeout_comes_from_the_environment_and_a_bad_value_is_named(monkeypatch):
    monkeypatch.delenv("DEEPPOT_DIST_TIMEOUT", raising=False)
    assert timeout_from_env() == 1800
    monkeypatch.setenv("DEEPPOT_DIST_TIMEOUT", "45")
    assert timeout_from_env() == 45
    monkeypatch.setenv("DEEPPOT_DIST_TIMEOUT", "ten")
    with pytest.raises(DistributedError, match="DEEPPOT_DIST_TIMEOUT='ten'"):
        timeout_from_env()


@pytest.fixture(scope="module")
def water():
    return [DeepmdSystem.load(WATER / "data_0", ["O", "H"], sort_atoms=True)]


def test_each_rank_draws_its_share_in_its_own_order(water):
    base = BatchSampler(water, [4], [1.0], seed=3)
    rank0, rank1 = (World(r, 2).rank_sampler(base, seed=3) for r in range(2))
    single = World(0, 1).rank_sampler(base, seed=3)
    assert single is base  # one process: the sampler is untouched
    index0 = np.concatenate([rank0.next_batch()["frame_index"] for _ in range(10)]).tolist()  # an epoch: 40
    index1 = np.concatenate([rank1.next_batch()["frame_index"] for _ in range(10)]).tolist()
    assert sorted(index0) == list(range(0, 80, 2)) and sorted(index1) == list(range(1, 80, 2))
    assert index0 != list(range(0, 80, 2))  # shuffled


def test_restart_resumes_each_rank_or_reseeds_for_another_rank_count(water):
    base = BatchSampler(water, [4], [1.0], seed=3)
    ranks = [World(r, 2).rank_sampler(base, seed=3) for r in range(2)]
    for sampler in ranks:
        sampler.next_batch()
    checkpoint = {"step": 1, "sampler": ranks[0].state_dict(), "rank_samplers": [s.state_dict() for s in ranks]}
    resumed = World(1, 2).rank_sampler(base, seed=3, checkpoint=checkpoint)
    assert np.array_equal(resumed.next_batch()["frame_index"], ranks[1].next_batch()["frame_index"])
    one_rank = {"step": 1, "sampler": base.state_dict()}  # written by a single process
    fresh = [World(r, 2).rank_sampler(base, seed=3, checkpoint=one_rank) for r in range(2)]
    again = World(0, 2).rank_sampler(base, seed=3, checkpoint=one_rank)
    first = fresh[0].next_batch()["frame_index"]
    assert np.array_equal(first, again.next_batch()["frame_index"])  # deterministic
    assert not np.array_equal(first, fresh[1].next_batch()["frame_index"])
    assert World(0, 1).rank_sampler(base, seed=3, checkpoint=one_rank).state_dict()["cursors"] == [0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def two_rank_worker(rank: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE="2",
                      LOCAL_RANK=str(rank), DEEPPOT_DIST_TIMEOUT="30")
    world = World.from_environment()
    torch.manual_seed(rank)
    module = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Linear(2, 1)).double()
    module.register_buffer("stat", torch.full((2,), float(rank)))
    world.broadcast_module(module)
    weight, bias, unused_w, unused_b = module.parameters()
    weight.grad = torch.full_like(weight, 1.0 + rank)
    if rank == 1:
        bias.grad = torch.full_like(bias, 4.0)  # rank 0 has none: counts as zero
    world.average_gradients(module.parameters())
    metrics = world.average_metrics({"rmse": 1.0 + 2 * rank, "rmse_e": float("nan") if rank else 3.0,
                                     "rmse_v": float("nan")})
    result = {"state": {k: v.clone() for k, v in module.state_dict().items()}, "weight_grad": weight.grad,
              "bias_grad": bias.grad, "unused_grad": unused_w.grad, "metrics": metrics, "gathered": world.gather(rank)}
    if rank == 1:
        torch.save(result, f"{out}/rank1.pt")
        os._exit(0)  # dies without leaving the group
    time.sleep(0.5)
    start = time.monotonic()
    try:
        world.average_metrics({"rmse": 1.0})
        result["lost"] = None
    except DistributedError as exc:
        result["lost"] = str(exc)
    result["lost_after"] = time.monotonic() - start
    torch.save(result, f"{out}/rank0.pt")


def test_collectives_in_two_gloo_processes(tmp_path):
    mp.spawn(two_rank_worker, args=(free_port(), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in range(2))
    for name in r0["state"]:  # rank 0's weights and buffers everywhere
        assert torch.equal(r0["state"][name], r1["state"][name])
    assert torch.equal(r1["state"]["stat"], torch.zeros(2, dtype=torch.float32))
    for r in (r0, r1):
        assert torch.allclose(r["weight_grad"], torch.full((2, 3), 1.5, dtype=torch.float64))
        assert torch.allclose(r["bias_grad"], torch.full((2,), 2.0, dtype=torch.float64))
        assert r["unused_grad"] is None  # no rank had one: the optimizer skips it
        assert r["metrics"]["rmse"] == pytest.approx(math.sqrt((1.0 + 9.0) / 2))
        assert r["metrics"]["rmse_e"] == pytest.approx(3.0) and math.isnan(r["metrics"]["rmse_v"])
        assert r["gathered"] == [0, 1]
    assert r0["lost"] is not None and "another training process stopped" in r0["lost"]
    assert "--restart" in r0["lost"] and "pair.cc" not in r0["lost"] and r0["lost_after"] < 30


DIE_WITH_PARENT = """
import ctypes, os
from deeppot.errors import DistributedError
from deeppot.runtime import starting_parent
from deeppot.train.distributed import die_with_parent

assert starting_parent() == os.getppid()
child = os.fork()
if child == 0:  # forked after deeppot was imported: its parent is this process, not the one that started it
    os._exit(0 if starting_parent() == os.getppid() else 1)
print(os.waitstatus_to_exitcode(os.waitpid(child, 0)[1]))
die_with_parent(starting_parent())
requested = ctypes.c_int(0)
ctypes.CDLL(None).prctl(2, ctypes.byref(requested), 0, 0, 0)  # PR_GET_PDEATHSIG
print(requested.value)
try:
    die_with_parent(os.getppid() + 1)  # started by another process, which has gone
except DistributedError as exc:
    print(exc)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_rank_asks_for_sigterm_when_its_parent_exits_and_stops_if_it_has_gone():
    run = subprocess.run([sys.executable, "-c", DIE_WITH_PARENT], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    forked_child, requested, message = run.stdout.splitlines()
    assert int(forked_child) == 0
    assert int(requested) == signal.SIGTERM
    assert "has exited, so this one stops too" in message

"""The run's position and its epoch sums (ait.engine.state)."""

import pytest
import torch

from ait.engine.distributed import DistContext
from ait.engine.state import Position
from ait.engine.trainer import StepStats

CPU = torch.device("cpu")


def step(ce: list[float], consistency: float, images: list[int]) -> StepStats:
    return StepStats(torch.tensor(ce), torch.tensor(consistency), torch.zeros(len(ce)), images)


def test_the_epoch_means_weigh_a_short_last_batch_by_the_images_it_holds():
    pos = Position()
    pos.add(step([1.0, 2.0], 0.5, [128, 128]))
    pos.add(step([3.0, 6.0], 1.5, [32, 32]))  # the last batch of an epoch that 128 does not divide
    ce, consistency = pos.train_means(DistContext(), [float(n) for n in pos.seen], CPU)
    assert ce == pytest.approx([(128 * 1 + 32 * 3) / 160, (128 * 2 + 32 * 6) / 160])  # not (1 + 3) / 2
    assert consistency == pytest.approx((128 * 0.5 + 32 * 1.5) / 160)


def test_networks_that_saw_different_counts_are_each_weighed_by_their_own():
    pos = Position()
    pos.add(step([1.0, 1.0], 0.0, [100, 50]))
    pos.add(step([2.0, 4.0], 0.0, [100, 150]))
    ce, _ = pos.train_means(DistContext(), [float(n) for n in pos.seen], CPU)
    assert ce == pytest.approx([1.5, (50 * 1 + 150 * 4) / 200])


def test_an_epoch_resumed_from_a_checkpoint_of_plain_sums_ends_as_it_began_then_weighs_by_images():
    old = Position()
    old.add(step([1.0], 0.0, [128]))
    state = {k: v for k, v in old.to_state().items() if k != "sums_per_image"}
    state["ce_sum"] = torch.tensor([1.0])  # what the older code summed: the step's mean CE
    resumed = Position.from_state(state, CPU)
    resumed.add(step([3.0], 0.0, [32]))
    assert resumed.train_means(DistContext(), [float(n) for n in resumed.seen], CPU)[0] == pytest.approx(
        [2.0]
    )  # its epoch, as it began
    resumed.next_epoch()
    resumed.add(step([1.0], 0.0, [128]))
    resumed.add(step([3.0], 0.0, [32]))
    assert resumed.train_means(DistContext(), [float(n) for n in resumed.seen], CPU)[0] == pytest.approx([1.4])
    assert Position.from_state(Position().to_state(), CPU).sums_per_image  # a new checkpoint says so
    at_epoch_start = {k: v for k, v in Position(epoch=3).to_state().items() if k != "sums_per_image"}
    assert Position.from_state(at_epoch_start, CPU).sums_per_image  # nothing summed yet: weigh from the start


def test_an_epoch_without_a_trained_step_gives_zeros_of_every_network():
    assert Position().train_means(DistContext(), [0.0, 0.0, 0.0], CPU) == ([0.0, 0.0, 0.0], 0.0)

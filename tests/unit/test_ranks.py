"""Ranks.single, the one-process case of the ranks object: what the training loop does alone,
with no collectives (no process group exists), so the loop needs no DDP branches."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from engine.training.ranks import Ranks


def test_one_process_is_rank_0_of_1_and_does_nothing_across_ranks():
    ranks = Ranks.single(torch.device("cpu"))
    assert ranks.main and not ranks.shared and ranks.describe() == "cpu"
    model = torch.nn.Linear(2, 2)
    assert ranks.wrap(model) is model
    batch = torch.arange(6)
    assert ranks.part(batch) is batch
    acc = torch.tensor(1.5, dtype=torch.float64)
    assert ranks.all_sum(acc) is acc
    values = (0.25, 3, torch.tensor([1, 2]))
    assert ranks.sum_all(*values) == values
    ranks.barrier()  # no process group: returns at once
    state = torch.get_rng_state()
    ranks.seed_own_stream(0, 1, 2)
    assert torch.equal(torch.get_rng_state(), state)  # rank 0 keeps the run's stream


def test_one_process_reports_as_asked_and_asks_to_stop_after_the_report():
    asked = []
    ranks = Ranks.single(torch.device("cpu"))
    report, stop = ranks.agree(True, lambda: asked.append(1) or True)
    assert report and not asked  # should_stop is not asked before the report
    assert stop() and asked == [1]


def test_one_process_loss_is_the_batch_mean():
    logits, labels = torch.randn(5, 3), torch.tensor([0, 1, 2, 1, 0])
    loss, loss_sum = Ranks.single(torch.device("cpu")).batch_loss(logits, labels, 5)
    assert torch.equal(loss, F.cross_entropy(logits, labels))
    assert loss_sum.dtype == torch.float64
    assert torch.equal(loss_sum, loss.detach().double() * 5)


def test_a_rank_takes_its_share_of_a_global_batch():
    parts = [Ranks(r, 2, torch.device("cpu")).part(torch.arange(5)) for r in range(2)]
    assert [p.tolist() for p in parts] == [[0, 1], [2, 3, 4]]

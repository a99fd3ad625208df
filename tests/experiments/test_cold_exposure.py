"""benchmarks/bench_cold_exposure.py: untrained items' scores take the trained items' mean and spread per user."""

import torch

from tests.helpers import load_benchmark


def test_standardised_scores_match_the_trained_items_moments_per_user():
    g = torch.Generator().manual_seed(0)
    users, items = torch.randn(5, 8, generator=g), torch.randn(300, 8, generator=g)
    items[:60] = 0.2 * items[:60] - 1.0  # the untrained items: lower, narrower scores
    cold = torch.zeros(300, dtype=torch.bool)
    cold[:60] = True
    raw = users @ items.T
    score = load_benchmark("bench_cold_exposure").standardised(users, items, cold)
    out = torch.cat([score(torch.arange(5), slice(0, 128)), score(torch.arange(5), slice(128, 300))], dim=1)  # in blocks
    assert torch.equal(out[:, ~cold], raw[:, ~cold])  # trained items untouched
    assert torch.allclose(out[:, cold].mean(1), raw[:, ~cold].mean(1), atol=1e-4)
    assert torch.allclose(out[:, cold].std(1), raw[:, ~cold].std(1), atol=1e-4)
    assert not torch.allclose(raw[:, cold].mean(1), raw[:, ~cold].mean(1), atol=1e-1)  # they differed before
    # the order within the untrained items is kept
    assert torch.equal(out[:, cold].argsort(1), raw[:, cold].argsort(1))

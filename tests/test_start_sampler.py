"""Reference state initialization's start frames: uniform, or drawn by recent failures (no simulator)."""

import torch

from imitation.env.start_sampler import StartSampler


def _fail_at(sampler, lo, hi, steps=400, n=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        frame = torch.randint(0, sampler.span, (n,), generator=g)
        sampler.record(frame, (frame >= lo) & (frame < hi))


def test_uniform_sampler_covers_the_span_evenly():
    torch.manual_seed(0)
    s = StartSampler(100, "cpu")
    x = s.sample(100_000)
    assert int(x.min()) == 0 and int(x.max()) == 99
    counts = torch.bincount(x, minlength=100).float()
    assert (counts / counts.mean() - 1).abs().max() < 0.1
    s.record(torch.tensor([5]), torch.tensor([True]))   # not adaptive: nothing is counted
    assert torch.allclose(s.probabilities(), torch.full((50,), 0.02))


def test_adaptive_sampler_practises_before_the_failures():
    torch.manual_seed(0)
    s = StartSampler(100, "cpu", adaptive=True, bins=50, uniform=0.1, decay=0.01, kernel=0.5, kernel_size=3)
    _fail_at(s, 60, 62)                       # every failure in bin 30
    p = s.probabilities()
    assert abs(float(p.sum()) - 1.0) < 1e-6
    # kernel 1, 0.5, 0.25 (normalized by 1.75) spread backwards from bin 30, plus the uniform share
    expect = torch.full((50,), 0.1 / 50)
    expect[30] += 0.9 / 1.75
    expect[29] += 0.9 * 0.5 / 1.75
    expect[28] += 0.9 * 0.25 / 1.75
    assert torch.allclose(p, expect, atol=1e-6)
    x = s.sample(200_000)
    share = float(((x >= 56) & (x < 62)).float().mean())     # bins 28-30
    assert abs(share - float(expect[28:31].sum())) < 0.01
    assert int(x.min()) >= 0 and int(x.max()) <= 99


def test_adaptive_sampler_forgets_mastered_parts():
    s = StartSampler(40, "cpu", adaptive=True, bins=40, uniform=0.0, decay=0.05, kernel_size=1)
    _fail_at(s, 10, 11, steps=200)
    assert float(s.probabilities()[10]) > 0.99
    _fail_at(s, 30, 31, steps=200)
    p = s.probabilities()
    # after 200 steps at decay 0.05 the old failures weigh (0.95 ** 200) of the new ones
    assert float(p[30]) > 0.99 and float(p[10]) < 1e-3


def test_bins_never_exceed_frames():
    s = StartSampler(7, "cpu", adaptive=True, bins=50)
    assert s.bins == 7
    x = s.sample(10_000)
    assert set(torch.unique(x).tolist()) == set(range(7))

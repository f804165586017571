import pytest
import torch

from ait.data import EpochSampler


def _cat(batches):
    return torch.cat(batches) if batches else torch.empty(0, dtype=torch.int64)


def test_epoch_covers_every_index_once():
    s = EpochSampler(103, 10, seed=0)
    batches = s.batches(0)
    assert len(s) == s.num_batches(0) == len(batches) == 11
    assert [len(b) for b in batches] == [10] * 10 + [3]
    assert all(b.dtype == torch.int64 for b in batches)
    assert sorted(_cat(batches).tolist()) == list(range(103))


def test_same_seed_epoch_same_order_regardless_of_history():
    a = EpochSampler(50, 8, seed=3)
    b = EpochSampler(50, 8, seed=3)
    for e in range(4):
        a.batches(e)  # history on a only
    assert torch.equal(_cat(a.batches(5)), _cat(b.batches(5)))
    assert not torch.equal(_cat(a.batches(5)), _cat(a.batches(6)))
    assert not torch.equal(_cat(a.batches(0)), _cat(EpochSampler(50, 8, seed=4).batches(0)))


def test_drop_last():
    s = EpochSampler(103, 10, seed=0, drop_last=True)
    batches = s.batches(2)
    assert len(s) == len(batches) == 10 and all(len(b) == 10 for b in batches)
    assert len(set(_cat(batches).tolist())) == 100
    with pytest.raises(ValueError, match="no batches"):
        EpochSampler(5, 10, seed=0, drop_last=True)


def test_resume_start_equals_tail():
    s = EpochSampler(100, 7, seed=1)
    full = s.batches(3)
    for k in (0, 1, 5, len(full)):
        tail = s.batches(3, start=k)
        assert len(tail) == len(full) - k
        assert all(torch.equal(x, y) for x, y in zip(tail, full[k:]))
    with pytest.raises(ValueError, match="start"):
        s.batches(3, start=len(full) + 1)


def test_shards_split_each_global_batch():
    n, bs, ws = 96, 16, 4  # no padding needed
    single = EpochSampler(n, bs, seed=2).batches(1)
    shards = [EpochSampler(n, bs, seed=2, rank=r, world_size=ws).batches(1) for r in range(ws)]
    for b, batch in enumerate(single):
        parts = [shards[r][b] for r in range(ws)]
        assert all(len(p) == bs // ws for p in parts)
        assert torch.equal(torch.cat(parts), batch)  # contiguous shards in rank order
        assert len(set(torch.cat(parts).tolist())) == bs  # disjoint


def test_uneven_last_batch_padded_by_wrapping():
    n, bs, ws = 10, 4, 4
    samplers = [EpochSampler(n, bs, seed=0, rank=r, world_size=ws) for r in range(ws)]
    shards = [s.batches(0) for s in samplers]
    perm = samplers[0].permutation(0)
    assert all(len(sh) == 3 for sh in shards)
    for b in range(3):
        assert len({len(sh[b]) for sh in shards}) == 1  # equal size on every rank
        parts = [sh[b] for sh in shards]
        assert len(set(torch.cat(parts).tolist())) == sum(len(p) for p in parts)  # disjoint
    # Last batch: 2 real samples, padded to 4 with the first two of the permutation.
    last = torch.cat([sh[2] for sh in shards])
    assert torch.equal(last, torch.cat([perm[8:10], perm[:2]]))
    union = torch.cat([torch.cat(sh) for sh in shards])
    assert set(union.tolist()) == set(range(n))


def test_world_size_larger_than_samples():
    shards = [EpochSampler(3, 8, seed=0, rank=r, world_size=8).batches(0) for r in range(8)]
    assert all(len(sh) == 1 and len(sh[0]) == 1 for sh in shards)
    assert set(torch.cat([sh[0] for sh in shards]).tolist()) == {0, 1, 2}


def test_bad_arguments():
    with pytest.raises(ValueError, match="divisible"):
        EpochSampler(100, 10, seed=0, world_size=4)
    with pytest.raises(ValueError, match="rank"):
        EpochSampler(100, 8, seed=0, rank=4, world_size=4)
    with pytest.raises(ValueError, match="num_samples"):
        EpochSampler(0, 8, seed=0)
    with pytest.raises(ValueError, match="batch_size"):
        EpochSampler(10, 0, seed=0)
    with pytest.raises(ValueError, match="epoch"):
        EpochSampler(10, 2, seed=0).batches(-1)


def test_huge_seed_is_accepted():
    s = EpochSampler(10, 3, seed=2**62)
    assert sorted(_cat(s.batches(1)).tolist()) == list(range(10))

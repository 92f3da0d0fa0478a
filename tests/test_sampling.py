from collections import Counter

import numpy as np
import pytest

from mtl.sampling import TaskStreams, epoch_batches, shard, task_for_step, task_probabilities

SIZES = {"qc": 3000, "qi": 1000}


@pytest.mark.parametrize("strategy, temperature, expected_qc", [
    ("proportional", 1.0, 0.75),
    ("temperature", 2.0, 3000 ** 0.5 / (3000 ** 0.5 + 1000 ** 0.5)),
    ("temperature", 1000.0, 0.5),
])
def test_schedule_follows_the_strategy_probabilities(strategy, temperature, expected_qc):
    assert task_probabilities(SIZES, strategy, temperature)["qc"] == pytest.approx(expected_qc, abs=1e-3)
    counts = Counter(task_for_step(s, SIZES, strategy, temperature, seed=0) for s in range(4000))
    assert counts["qc"] / 4000 == pytest.approx(expected_qc, abs=0.025)


def test_round_robin_alternates():
    assert [task_for_step(s, SIZES, "round_robin", 1.0, 0) for s in range(4)] == ["qc", "qi", "qc", "qi"]


@pytest.mark.parametrize("strategy", ["proportional", "temperature", "round_robin"])
def test_weights_scale_each_task_share_of_the_steps(strategy):
    plain = task_probabilities(SIZES, strategy, 2.0)
    weighted = task_probabilities(SIZES, strategy, 2.0, {"qc": 0.25, "qi": 1.0})
    expected_qc = 0.25 * plain["qc"] / (0.25 * plain["qc"] + plain["qi"])
    assert weighted["qc"] == pytest.approx(expected_qc)
    counts = Counter(task_for_step(s, SIZES, strategy, 2.0, 0, {"qc": 0.25, "qi": 1.0}) for s in range(4000))
    assert counts["qc"] / 4000 == pytest.approx(expected_qc, abs=0.025)


def test_weighted_round_robin_spreads_each_task_over_its_cycle():
    two_to_one = [task_for_step(s, SIZES, "round_robin", 1.0, 0, {"qc": 2.0, "qi": 1.0}) for s in range(6)]
    assert two_to_one == ["qc", "qi", "qc"] * 2
    tenth = [task_for_step(s, SIZES, "round_robin", 1.0, 0, {"qc": 0.1, "qi": 1.0}) for s in range(22)]
    assert tenth.count("qc") == 2 and tenth[:11].count("qc") == 1
    assert [task_for_step(s, SIZES, "round_robin", 1.0, 0, {"qc": 0.0, "qi": 1.0}) for s in range(3)] == ["qi"] * 3


def test_schedule_is_a_pure_function_of_seed_and_step():
    a = [task_for_step(s, SIZES, "temperature", 2.0, seed=3) for s in range(50)]
    b = [task_for_step(s, SIZES, "temperature", 2.0, seed=3) for s in range(50)]
    c = [task_for_step(s, SIZES, "temperature", 2.0, seed=4) for s in range(50)]
    assert a == b and a != c


def test_an_epoch_visits_every_full_batch_once():
    batches = epoch_batches(np.arange(103), 10, seed=0, epoch=0, batching="bucket")
    rows = np.concatenate(batches)
    assert len(batches) == 10 and len(set(rows.tolist())) == 100


def test_bucketing_pads_less_than_random_batches():
    lengths = np.random.default_rng(0).integers(5, 60, 4000)

    def padding(batches):
        return sum(lengths[b].max() * len(b) - lengths[b].sum() for b in batches) / sum(lengths[b].max() * len(b) for b in batches)

    bucketed = padding(epoch_batches(lengths, 16, 0, 0, "bucket"))
    shuffled = padding(epoch_batches(lengths, 16, 0, 0, "random"))
    assert bucketed < 0.05 < shuffled


def test_shared_batches_hold_whole_queries_in_a_new_order_each_epoch():
    queries = np.random.default_rng(0).permutation(np.repeat(np.arange(40), 4))  # 40 queries of 4 pairs, scattered
    lengths = np.full(len(queries), 10)
    epochs = [epoch_batches(lengths, 8, 0, epoch, "shared", queries) for epoch in (0, 1)]
    for batches in epochs:
        assert sorted(np.concatenate(batches).tolist()) == list(range(160))
        assert all(len(set(queries[b].tolist())) == 2 for b in batches)  # 2 whole queries per batch of 8
    assert [b.tolist() for b in epochs[0]] != [b.tolist() for b in epochs[1]]


def test_packed_batches_are_drawn_as_random_ones():
    """Packed rows pad nothing between pairs, so their batches need no length grouping: shuffled, like random."""
    lengths = np.random.default_rng(0).integers(5, 60, 200)
    for epoch in (0, 1):
        packed = epoch_batches(lengths, 16, 3, epoch, "packed")
        assert [b.tolist() for b in packed] == [b.tolist() for b in epoch_batches(lengths, 16, 3, epoch, "random")]


def test_unresolved_batching_is_refused_rather_than_drawn_at_random():
    with pytest.raises(ValueError, match="got 'auto'"):
        epoch_batches(np.arange(20), 4, seed=0, epoch=0, batching="auto")


def test_streams_resume_from_their_state():
    lengths = {"qc": np.arange(50), "qi": np.arange(30)}
    a = TaskStreams(lengths, 8, seed=0, batching="bucket")
    for task in ["qc", "qi", "qc", "qc", "qi", "qc", "qc", "qc", "qc"]:
        a.next(task)
    b = TaskStreams(lengths, 8, seed=0, batching="bucket")
    b.load_state_dict(a.state_dict())
    assert all((a.next(t) == b.next(t)).all() for t in ["qc", "qi", "qi", "qc"])


def test_streams_reshuffle_each_epoch():
    streams = TaskStreams({"qi": np.arange(32)}, 8, seed=0, batching="random")
    first = [streams.next("qi").tolist() for _ in range(4)]
    second = [streams.next("qi").tolist() for _ in range(4)]
    assert sorted(sum(first, [])) == sorted(sum(second, [])) == list(range(32))
    assert first != second


def test_shards_of_all_processes_make_the_global_batch():
    batch = np.arange(32)
    parts = [shard(batch, 4, rank, 2) for rank in range(2)]
    assert all(len(p) == 4 for p in parts)
    assert sorted(np.concatenate(parts[0] + parts[1]).tolist()) == list(range(32))


def test_too_little_data_for_one_batch_is_refused():
    with pytest.raises(ValueError, match="qc: 5 training pairs cannot fill one batch of 8"):
        TaskStreams({"qc": np.arange(5)}, 8, seed=0, batching="bucket")

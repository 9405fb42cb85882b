"""imitation learn's decisions without the simulator: when the training may stop, which checkpoint ships, how many
iterations a budget buys, and which stages a rerun reuses."""

import json

import pytest

from imitation.tools import learn as L


def _rows(rates, every=50, steps_per_it=6144):
    return [{"iteration": 1 + every * i, "env_steps": (1 + every * i) * steps_per_it, "success_rate": r}
            for i, r in enumerate(rates)]


def test_stop_point_needs_a_streak_over_the_span():
    # 50 iterations of 6144 env steps = 307k env steps between evaluations: a 500k span takes three in a row.
    rows = _rows([0.2, 0.96, 0.97, 0.80, 0.95, 0.99, 1.0, 0.97])
    stop = L.stop_point(rows, rate=0.95, span=500_000)
    assert stop is not None and stop["iteration"] == 1 + 50 * 6   # 0.95, 0.99, 1.0: 614k env steps
    assert L.stop_point(rows[:6], rate=0.95, span=500_000) is None   # 0.95, 0.99 span only 307k
    assert L.stop_point(rows, rate=0.995, span=0) is not None       # one evaluation at 1.0 is a streak of 0 span
    assert L.stop_point(rows, rate=1.01, span=0) is None
    assert L.stop_point([], rate=0.95, span=0) is None


def test_stop_point_order_and_missing_rates():
    rows = _rows([0.96, 0.97, 0.98])
    assert L.stop_point(rows[::-1], rate=0.95, span=600_000)["iteration"] == 101  # sorted by iteration first
    rows[1]["success_rate"] = None                                               # not evaluated: breaks the streak
    assert L.stop_point(rows, rate=0.95, span=300_000) is None


def test_best_row_prefers_success_then_the_later_checkpoint():
    rows = _rows([0.5, 0.9, 0.7, 0.9])
    assert L.best_row(rows)["iteration"] == 151
    assert L.best_row(_rows([None, 0.1]))["iteration"] == 51


def test_iterations_for_a_budget():
    cfg = {"ppo": {"num_steps_per_env": 24}}
    assert L.iterations_for(3_000_000, cfg, 256) == 489          # ceil(3e6 / 6144)
    assert L.iterations_for(6144, cfg, 256) == 1
    assert L.iterations_for(1, cfg, 256) == 1


def test_a_stage_is_reused_only_with_the_same_key_and_its_outputs(tmp_path):
    out = tmp_path / "retargeted.h5"
    out.write_bytes(b"x")
    plan = L.Plan(source=tmp_path / "m.yaml", name="m", work=tmp_path, seeds=[1])
    plan.stages = {"retarget": {"key": {"source_sha256": "a", "fps": None}, "output": str(out)}}
    assert L._done(plan, "retarget", {"source_sha256": "a", "fps": None}, out) is not None
    assert L._done(plan, "retarget", {"source_sha256": "b", "fps": None}, out) is None   # the motion changed
    assert L._done(plan, "retarget", {"source_sha256": "a", "fps": 30.0}, out) is None   # an option changed
    out.unlink()
    assert L._done(plan, "retarget", {"source_sha256": "a", "fps": None}, out) is None   # its output is gone
    L._save(plan)
    assert json.loads((tmp_path / L.STAGES).read_text()) == plan.stages


def test_learn_refuses_a_missing_motion_and_a_foreign_destination(tmp_path):
    from retarget.errors import InputError

    with pytest.raises(InputError, match="motion file not found"):
        L.learn(L.Plan(source=tmp_path / "none.yaml", name="x", work=tmp_path / "w", seeds=[1]))
    motion = tmp_path / "m.yaml"
    motion.write_text("format: go2-keyframes/1\n")
    taken = tmp_path / "policies" / "x_s1"
    taken.mkdir(parents=True)
    (taken / "policy.onnx").write_bytes(b"")
    with pytest.raises(InputError, match="x_s1: exists and was not shipped by this learn run"):
        L.learn(L.Plan(source=motion, name="x", work=tmp_path / "w", seeds=[1], ship_to=tmp_path / "policies"))
    assert not (tmp_path / "w").exists()   # refused before any work


def test_bad_input_fails_before_anything_is_written(tmp_path):
    from retarget.errors import InputError

    bad = tmp_path / "bad.yaml"
    bad.write_text("format: go2-keyframes/1\n")
    with pytest.raises(InputError, match=r"bad\.yaml: keyframes: missing"):
        L.learn(L.Plan(source=bad, name="bad", work=tmp_path / "w1", seeds=[1], ship_to=tmp_path / "p"))
    good = L.PROJECT_ROOT / "motions" / "jump.yaml"
    with pytest.raises(InputError, match=r"nope\.yaml: cannot read config"):
        L.learn(L.Plan(source=good, name="jump", work=tmp_path / "w2", seeds=[1], ship_to=tmp_path / "p",
                       config=tmp_path / "nope.yaml"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml"]


def test_a_fine_tune_keeps_the_motions_config_and_the_source_policys_network(tmp_path):
    """--init-from: the fine-tune's config is the motion's (rewards, termination, noise) with what the network it
    starts from observes and how its actions apply; a source without a config beside it is refused in one line."""
    from imitation import config as config_mod
    from imitation import runs
    from retarget.errors import InputError

    library = config_mod.load_config(L.PROJECT_ROOT / "configs" / "imitation_library.yaml")
    policy = tmp_path / "policy"
    policy.mkdir()
    (policy / runs.POLICY).write_bytes(b"weights")
    (policy / runs.CONFIG).write_text(config_mod.dump(library))
    weights, source_cfg = L._init_source(policy)
    assert weights == policy / runs.POLICY
    loop = config_mod.load_config(L.CONFIGS["wrap"])
    tuned = config_mod.load_config(L._fine_tune_config(tmp_path / "w" / "fine_tune.yaml", L.CONFIGS["wrap"], source_cfg))
    assert tuned["env"]["observations"] == library["env"]["observations"] != loop["env"]["observations"]
    assert tuned["ppo"]["actor"]["hidden_dims"] == library["ppo"]["actor"]["hidden_dims"]
    assert tuned["rewards"] == loop["rewards"] and tuned["termination"] == loop["termination"]
    assert tuned["ppo"]["actor"]["distribution_cfg"] == loop["ppo"]["actor"]["distribution_cfg"]
    assert tuned["ppo"]["algorithm"] == loop["ppo"]["algorithm"]

    (policy / runs.CONFIG).unlink()
    with pytest.raises(InputError, match=r"policy\.pt: no config\.yaml beside it"):
        L._init_source(policy)
    with pytest.raises(InputError, match=r"empty: --init-from needs a checkpoint"):
        (tmp_path / "empty").mkdir()
        L._init_source(tmp_path / "empty")

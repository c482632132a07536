"""fairlib.experiments: specs, studies on every backend, the store, and the protocol helpers."""

import math
import sys

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from fairlib.plotting import plot_front  # noqa: E402
from fairlib.experiments import (  # noqa: E402
    ResultStore,
    RunSpec,
    compare,
    execute,
    grid,
    register_dataset,
    run_study,
    select,
    train_run,
    summarize,
)
from fairlib.experiments import backends, registry  # noqa: E402

TRAIN = {"epochs": 2, "lr": 0.05, "device": "cpu"}


def _eight_specs():
    """8 small runs: 4 methods x 2 seeds, one with a hyper-parameter."""
    return grid(datasets=[("synthetic", {"n": 600})], models=[("mlp", {"hidden": [16]})],
                methods=["ERM", "Reweighing", ("GroupDRO", {"eta_q": 0.1}), "FORML"],
                seeds=[0, 1], train=TRAIN)


def _params_and_metrics(frame):
    cols = [c for c in frame.columns if c not in ("seconds",)]
    return frame[cols].sort_values("run_id").reset_index(drop=True)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def serial_records():
    return run_study(_eight_specs(), backend="serial", progress=False)


# -- specs -----------------------------------------------------------------------------------
def test_spec_identity_ignores_key_order_and_spelled_out_defaults():
    a = RunSpec("synthetic", "logistic", "ERM", seed=1, train={"lr": 0.1})
    b = RunSpec("synthetic", "logistic", "ERM", seed=1, train={"lr": 0.1, "epochs": 10, "batch_size": 128})
    assert a == b and hash(a) == hash(b) and a.run_id == b.run_id
    assert a.run_id != a.replace(seed=2).run_id
    assert a.run_id != RunSpec("synthetic", "logistic", "ERM", seed=1, train={"lr": 0.2}).run_id


def test_spec_round_trips_through_its_record():
    spec = RunSpec("synthetic", "mlp", "JTT", seed=4, dataset_params={"n": 500, "split": [0.5, 0.3, 0.2]},
                   model_params={"hidden": [8, 4]}, method_params={"stage1_epochs": 2, "mode": "upweight"},
                   train={"epochs": 3}, tags={"stage": "tune"})
    assert RunSpec.from_record(spec.flat()) == spec


@pytest.mark.parametrize("kwargs, match", [
    ({"seed": -1}, "`seed` to be a non-negative integer"),
    ({"seed": 1.5}, "`seed` to be a non-negative integer"),
    ({"train": {"learning_rate": 0.1}}, "`train` to be settings among"),
    ({"method_params": {"meta_lr": float("nan")}}, "`method_params.meta_lr` to be finite"),
    ({"model_params": {"hidden": object()}}, "`model_params.hidden` to be plain data"),
])
def test_spec_rejects_bad_fields(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        RunSpec("synthetic", "logistic", "ERM", **kwargs)


def test_study_refuses_unknown_names_and_parameters_before_running(tmp_path):
    good = RunSpec("synthetic", "logistic", "ERM", train=TRAIN)
    for bad, match in [(good.replace(dataset="adultt"), "`dataset` to be one of"),
                       (good.replace(model="resnet"), "`model` to be one of"),
                       (good.replace(method="FORM"), "`method` to be one of"),
                       (good.replace(method="GroupDRO", method_params={"eta": 0.1}),
                        "`method_params` to be parameters of GroupDRO")]:
        with pytest.raises(ValueError, match=match):
            run_study([good, bad], backend="serial", store=tmp_path / "s", progress=False)
    assert not (tmp_path / "s").exists()  # nothing ran, nothing written
    with pytest.raises(ValueError, match="`backend` to be one of"):
        run_study([good], backend="threads", progress=False)
    with pytest.raises(ValueError, match="`workers` to be a positive integer"):
        run_study([good], workers=0, progress=False)
    with pytest.raises(TypeError, match=r"`specs\[0\]` to be a RunSpec"):
        run_study([{"dataset": "synthetic"}], backend="serial", progress=False)


# -- records -----------------------------------------------------------------------------------
def test_record_holds_parameters_metrics_and_provenance(serial_records):
    r = serial_records.iloc[0]
    assert r["status"] == "ok" and r["error"] == ""
    for col in ["dataset.n", "model.hidden", "train.lr", "train.epochs", "seed", "device", "fairlib_version",
                "torch_version", "python_version", "seconds", "test_tpr[minority]",
                "meta_selection_rate[majority]", "n_train", "n_meta", "n_test"]:
        assert col in serial_records.columns, col
    for split in ("meta", "test"):
        for m in ("accuracy", "balanced_accuracy", "worst_group_accuracy", "demographic_parity_difference",
                  "equal_opportunity_difference", "equalized_odds_difference"):
            assert 0.0 <= r[f"{split}_{m}"] <= 1.0
    assert r["test_worst_group_accuracy"] == pytest.approx(
        min(r["test_accuracy[majority]"], r["test_accuracy[minority]"]))
    assert r["test_equal_opportunity_difference"] == pytest.approx(
        abs(r["test_tpr[majority]"] - r["test_tpr[minority]"]))


def test_same_spec_same_record_with_dropout():
    spec = RunSpec("synthetic", "mlp", "ERM", seed=3, dataset_params={"n": 400},
                   model_params={"dropout": 0.3}, train=TRAIN)
    a, b = execute(spec), execute(spec)
    a.pop("seconds"), b.pop("seconds")
    assert a == b


def test_jtt_runs_its_first_stage():
    spec = RunSpec("synthetic", "logistic", "JTT", dataset_params={"n": 400},
                   method_params={"stage1_epochs": 1}, train=TRAIN)
    assert execute(spec)["status"] == "ok"


# -- backends ----------------------------------------------------------------------------------
def test_process_backend_gives_the_serial_records(serial_records):
    process = run_study(_eight_specs(), backend="process", workers=2, progress=False)
    assert (process["status"] == "ok").all()
    pd.testing.assert_frame_equal(_params_and_metrics(serial_records), _params_and_metrics(process))


@pytest.mark.ray
def test_ray_backend_gives_the_serial_records(serial_records, local_ray):
    on_ray = run_study(_eight_specs(), backend="ray", progress=False)
    assert (on_ray["status"] == "ok").all()
    pd.testing.assert_frame_equal(_params_and_metrics(serial_records), _params_and_metrics(on_ray))


def test_ray_missing_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ImportError, match=r"fairlib\[ray\]"):
        run_study([RunSpec("synthetic", "logistic", "ERM")], backend="ray", progress=False)


def test_ray_address_only_with_ray():
    with pytest.raises(ValueError, match="`ray_address` to be None unless backend='ray'"):
        list(backends.map_unordered(abs, [1], backend="serial", ray_address="auto"))


# -- store: resume, failures, interruption -----------------------------------------------------
def test_failed_run_is_recorded_and_the_others_finish(tmp_path):
    good = RunSpec("synthetic", "logistic", "ERM", dataset_params={"n": 300}, train=TRAIN)
    bad = good.replace(model="mlp", model_params={"hidden": [0]})  # fails when the run builds its model
    out = run_study([good, bad, good.replace(seed=1)], backend="process", workers=2,
                    store=tmp_path, progress=False)
    assert out["status"].tolist() == ["ok", "failed", "ok"]
    assert "hidden" in out.loc[1, "error"] and "ValueError" in out.loc[1, "error"]
    stored = ResultStore(tmp_path).read()
    assert sorted(stored["status"]) == ["failed", "ok", "ok"]
    assert (tmp_path / "results.parquet").exists()


def test_rerun_skips_finished_runs_and_retries_failed(tmp_path):
    good = RunSpec("synthetic", "logistic", "ERM", dataset_params={"n": 300}, train=TRAIN)
    bad = good.replace(model="mlp", model_params={"hidden": [0]})
    first = run_study([good, bad], backend="serial", store=tmp_path, progress=False)
    files = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "records").glob("*.parquet")}
    second = run_study([good, bad], backend="serial", store=tmp_path, progress=False)
    after = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "records").glob("*.parquet")}
    assert after[f"{good.run_id}.parquet"] == files[f"{good.run_id}.parquet"]  # not rerun
    assert after[f"{bad.run_id}.parquet"] > files[f"{bad.run_id}.parquet"]  # failed: retried
    assert second.loc[0, "test_accuracy"] == first.loc[0, "test_accuracy"]
    assert second.loc[0, "seconds"] == first.loc[0, "seconds"]  # the stored record


_CALLS = {"n": 0}


def _interrupting(*, seed, n=300):
    _CALLS["n"] += 1
    if _CALLS["n"] == 3:
        raise KeyboardInterrupt  # as if the user pressed Ctrl-C during the third run
    return registry.get_dataset("synthetic")(seed=seed, n=n)


def test_interrupted_study_keeps_finished_runs(tmp_path):
    register_dataset("interrupting_test", _interrupting, replace=True)
    specs = [RunSpec("interrupting_test", "logistic", "ERM", seed=s, train=TRAIN) for s in range(4)]
    with pytest.raises(KeyboardInterrupt):
        run_study(specs, backend="serial", store=tmp_path, progress=False)
    kept = ResultStore(tmp_path).read()
    assert sorted(kept["seed"]) == [0, 1] and (kept["status"] == "ok").all()
    out = run_study(specs, backend="serial", store=tmp_path, progress=False)
    assert (out["status"] == "ok").all() and _CALLS["n"] == 5  # only seeds 2 and 3 ran again


def test_factories_from_main_are_refused_for_worker_backends(monkeypatch):
    def tiny(*, seed, n=200):
        return registry.get_dataset("synthetic")(seed=seed, n=n)

    monkeypatch.setattr(tiny, "__module__", "__main__")  # as if defined in a notebook cell
    register_dataset("from_main_test", tiny, replace=True)
    spec = RunSpec("from_main_test", "logistic", "ERM", train=TRAIN)
    with pytest.raises(ValueError, match="`dataset` to be a factory importable by 'process' workers"):
        run_study([spec], backend="process", progress=False)
    assert run_study([spec], backend="serial", progress=False)["status"].tolist() == ["ok"]


def test_process_workers_import_the_module_that_registered_a_data_set(tmp_path, monkeypatch):
    # A chapter registers its data set in its fairlib.studies module; spawned workers start
    # with a fresh registry, so run_study must import that module in them first.
    (tmp_path / "fairlib_registering_test.py").write_text(
        "from fairlib.experiments import registry\n"
        "@registry.register_dataset('registered_in_a_module_test')\n"
        "def tiny(*, seed, n=200):\n"
        "    return registry.get_dataset('synthetic')(seed=seed, n=n)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import fairlib_registering_test  # noqa: F401  (registers in this process only)

    spec = RunSpec("registered_in_a_module_test", "logistic", "ERM", train=TRAIN)
    out = run_study([spec], backend="process", workers=1, progress=False)
    assert out["status"].tolist() == ["ok"], out["error"].tolist()


def test_store_rejects_a_file_and_a_record_without_id(tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(ValueError, match="`store` to be a folder"):
        ResultStore(f)
    with pytest.raises(ValueError, match="`record` to be a mapping with a `run_id`"):
        ResultStore(tmp_path / "s").append({"status": "ok"})


# -- protocol ----------------------------------------------------------------------------------
def _tuning_frame():
    rows = []
    for method, configs in {"ERM": [0.01, 0.1], "FORML": [0.5, 1.0]}.items():
        for k, lr in enumerate(configs):
            for seed in range(3):
                rows.append({"method": method, "seed": seed, "train.lr": lr, "status": "ok",
                             "meta_balanced_accuracy": 0.7 + 0.05 * k + 0.01 * seed,
                             "test_balanced_accuracy": 0.69 + 0.05 * k,
                             "meta_equal_opportunity_difference": 0.2 - 0.15 * k * (method == "FORML"),
                             "test_accuracy": 0.8 + 0.01 * seed})
    return pd.DataFrame(rows)


def test_select_picks_on_meta_with_equal_budget_and_constraint():
    sel = select(_tuning_frame(), budget=2)
    assert sel.table.loc["ERM", "config"] == '{"train.lr": 0.1}'
    assert sel.table.loc["FORML", "n_configs"] == 2 and sel.table.loc["FORML", "n_seeds"] == 3
    assert len(sel.runs) == 6
    with pytest.warns(UserWarning, match="no configuration of 'ERM' meets"):
        sel = select(_tuning_frame(), constraint={"equal_opportunity_difference": 0.1})
    assert sel.table.loc["FORML", "constraint_met"] and not sel.table.loc["ERM", "constraint_met"]
    with pytest.raises(ValueError, match="`record` to be a record with dataset"):
        sel.specs([10, 11])  # these hand-made rows are not records of runs


def test_select_at_matched_accuracy_bounds_from_below():
    # the lower-gap FORML configuration has the lower balanced accuracy (0.70 + seed effect)
    frame = _tuning_frame()
    frame["test_equal_opportunity_difference"] = frame["meta_equal_opportunity_difference"]
    sel = select(frame, metric="equal_opportunity_difference", maximize=False,
                 constraint={"balanced_accuracy": {"min": 0.74}}, budget=2)
    assert sel.table.loc["FORML", "config"] == '{"train.lr": 1.0}' and sel.table["constraint_met"].all()
    with pytest.warns(UserWarning) as caught:  # neither method reaches the floor
        sel = select(frame, metric="equal_opportunity_difference", maximize=False,
                     constraint={"balanced_accuracy": {"min": 0.80}})
    assert sorted(str(w.message).split("'")[1] for w in caught) == ["ERM", "FORML"]
    assert all("meets {'balanced_accuracy': {'min': 0.8}}" in str(w.message) for w in caught)
    assert sel.table.loc["FORML", "config"] == '{"train.lr": 1.0}'  # the closest to the floor
    both = select(frame, constraint={"balanced_accuracy": {"min": 0.70, "max": 0.73}})
    assert both.table.loc["ERM", "config"] == '{"train.lr": 0.01}'
    for bad in ({"min": 1, "max": 0}, {"low": 0.5}, {}, "high", float("nan")):
        with pytest.raises(ValueError, match="`constraint\\['balanced_accuracy'\\]` to be a number"):
            select(frame, constraint={"balanced_accuracy": bad})


def test_select_flags_unequal_budget():
    frame = _tuning_frame()
    frame = frame[~((frame["method"] == "ERM") & (frame["train.lr"] == 0.01))]
    with pytest.warns(UserWarning, match="unequal tuning budget"):
        select(frame)
    with pytest.raises(ValueError, match="2 configuration"):
        select(frame, budget=2)


def test_selection_specs_rerun_the_chosen_configuration(serial_records):
    sel = select(serial_records, metric="accuracy")
    specs = sel.specs([7, 8])
    assert len(specs) == 8 and {s.seed for s in specs} == {7, 8}
    forml = [s for s in specs if s.method == "GroupDRO"][0]
    assert dict(forml.method_params) == {"eta_q": 0.1} and dict(forml.model_params) == {"hidden": (16,)}


def test_compare_pairs_by_seed(serial_records):
    out = compare(serial_records, metrics=["test_accuracy", "test_equal_opportunity_difference"])
    assert set(out.index.get_level_values(0)) == {"Reweighing", "GroupDRO", "FORML"}
    erm = serial_records[serial_records["method"] == "ERM"].set_index("seed")
    fo = serial_records[serial_records["method"] == "FORML"].set_index("seed")
    expected = float((fo["test_accuracy"] - erm["test_accuracy"]).mean())
    assert out.loc[("FORML", "test_accuracy"), "difference"] == pytest.approx(expected)
    with pytest.raises(ValueError, match="`baseline` to be a value of column 'method'"):
        compare(serial_records, baseline="OLS")
    with pytest.raises(ValueError, match=r"one row per \(method, seed\)"):
        compare(pd.concat([serial_records, serial_records]))


def test_pairing_cancels_what_a_seed_does_to_both_methods():
    rng = np.random.default_rng(0)
    shared = rng.normal(0, 0.05, size=10)  # what a seed does to every method
    rows = []
    for s in range(10):
        rows.append({"seed": s, "method": "ERM", "acc": 0.80 + shared[s]})
        rows.append({"seed": s, "method": "X", "acc": 0.81 + shared[s] + rng.normal(0, 0.001)})
    runs = pd.DataFrame(rows)
    d = compare(runs, metrics=["acc"]).loc[("X", "acc")]
    assert d["difference"] == pytest.approx(0.01, abs=0.002)
    assert d["lower"] > 0 and not d["consistent_with_zero"]  # paired: the seed effect cancels
    raw = summarize(runs, ["acc"])
    assert raw.loc["X", ("acc", "lower")] < raw.loc["ERM", ("acc", "upper")]  # unpaired overlap


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=2, max_size=12),
       st.floats(0.5, 0.99))
def test_intervals_stay_in_range_and_contain_the_estimate(pairs, level):
    seeds = range(len(pairs))
    frame = pd.DataFrame([{"method": m, "seed": s, "acc": v[i]} for s, v in zip(seeds, pairs)
                          for i, m in enumerate(["ERM", "X"])])
    row = compare(frame, metrics=["acc"], level=level, n_boot=500).loc[("X", "acc")]
    assert -1 <= row["lower"] <= row["difference"] <= row["upper"] <= 1
    assert row["consistent_with_zero"] == (row["lower"] <= 0 <= row["upper"])
    s = summarize(frame, ["acc"], level=level, n_boot=500)
    for m in ("ERM", "X"):
        assert 0 <= s.loc[m, ("acc", "lower")] <= s.loc[m, ("acc", "mean")] <= s.loc[m, ("acc", "upper")] <= 1


def test_summarize_near_the_bound_and_single_seed():
    frame = pd.DataFrame({"method": ["a"] * 3 + ["b"], "acc": [0.99, 1.0, 1.0, 0.5]})
    s = summarize(frame, ["acc"])
    assert s.loc["a", ("acc", "upper")] <= 1.0 and s.loc["a", ("acc", "lower")] >= 0.99
    assert math.isnan(s.loc["b", ("acc", "lower")]) and s.loc["b", ("acc", "n")] == 1


def test_compare_with_one_pair_warns_and_is_not_called_consistent_with_zero():
    frame = pd.DataFrame({"method": ["ERM", "X"], "seed": [0, 0], "acc": [0.5, 0.6]})
    with pytest.warns(UserWarning, match="1 pair"):
        row = compare(frame, metrics=["acc"]).loc[("X", "acc")]
    assert math.isnan(row["lower"]) and not row["consistent_with_zero"]


def test_failed_runs_are_left_out_with_a_warning():
    frame = pd.DataFrame({"method": ["ERM", "X", "X"], "seed": [0, 0, 1], "acc": [0.5, 0.6, np.nan],
                          "status": ["ok", "ok", "failed"]})
    with pytest.warns(UserWarning, match="1 failed run"):
        summarize(frame, ["acc"])


def test_plot_front_draws_points_and_front(serial_records):
    summary = summarize(serial_records, ["test_accuracy", "test_equal_opportunity_difference"])
    ax = plot_front(summary, highlight=["FORML"])
    assert len(ax.containers) == 4
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "FORML" in labels
    with pytest.raises(ValueError, match="`summary` to be a column"):
        plot_front(summary, fairness="test_gap")
    with pytest.raises(TypeError, match="`summary` to be a DataFrame from summarize"):
        plot_front(serial_records)


def test_plot_front_tells_more_methods_than_colours_apart():
    """Fifteen methods against a ten-colour cycle: no two share both colour and marker."""
    from matplotlib.colors import to_hex

    methods = [f"m{i}" for i in range(15)]
    cols = pd.MultiIndex.from_product([["acc", "gap"], ["mean", "lower", "upper"]])
    summary = pd.DataFrame([[0.8, 0.7, 0.9, 0.1 * i / 15, 0.0, 0.2] for i in range(15)],
                           index=methods, columns=cols)
    ax = plot_front(summary, fairness="gap", accuracy="acc")
    looks = {(to_hex(c.lines[0].get_color()), c.lines[0].get_marker()) for c in ax.containers}
    assert len(looks) == 15


# -- train_run and tune_and_run ---------------------------------------------------------------------
def test_train_run_gives_the_model_behind_the_record():
    from fairlib.experiments import train_run
    from fairlib.train import evaluate

    spec = RunSpec("synthetic", "logistic", "FORML", seed=3, dataset_params={"n": 400},
                   method_params={"meta_lr": 3.0}, train={"epochs": 2, "lr": 0.05, "device": "cpu"})
    record = execute(spec)
    run = train_run(spec, track_test=True)
    report = evaluate(run.model, run.test, device="cpu")
    assert float(report.overall["accuracy"]) == record["test_accuracy"]
    assert run.strategy.weights_.shape[0] == record["n_train"]
    assert "test_accuracy" in run.history.rows[-1]


def _tiny_configs(methods=("ERM", "Reweighing"), lrs=(0.005, 0.2)):
    base = RunSpec("synthetic", "logistic", "ERM", dataset_params={"n": 300},
                   train={"epochs": 1, "device": "cpu"})
    return [base.replace(method=m, train={"epochs": 1, "lr": lr, "device": "cpu"})
            for m in methods for lr in lrs]


def test_tune_and_run_chooses_on_the_meta_split_of_the_tuning_seeds_and_reports_fresh_seeds():
    from fairlib.experiments import tune_and_run

    tuned = tune_and_run(_tiny_configs(), tune_seeds=[100, 101], seeds=[0, 1, 2], backend="serial",
                         metric="accuracy", progress=False)
    assert sorted(tuned.tuning["seed"].unique()) == [100, 101] and len(tuned.tuning) == 8
    assert sorted(tuned.runs["seed"].unique()) == [0, 1, 2] and len(tuned.runs) == 6
    for method, runs in tuned.tuning.groupby("method"):
        means = runs.groupby("train.lr")["meta_accuracy"].mean()
        chosen = tuned.runs[tuned.runs["method"] == method]["train.lr"].unique().tolist()
        assert chosen == [means.idxmax()]
    assert all(c.startswith("lr=") for c in tuned.selection.table["choice"])
    spec = tuned.chosen("Reweighing", 7)
    assert spec.seed == 7 and spec.method == "Reweighing"


def test_tune_and_run_refuses_unequal_budgets_and_shared_seeds_before_running():
    from fairlib.experiments import tune_and_run

    unequal = _tiny_configs()[:3]
    with pytest.raises(ValueError, match="equal tuning budget.*'ERM': 2, 'Reweighing': 1"):
        tune_and_run(unequal, tune_seeds=[100], seeds=[0], backend="serial", progress=False)
    with pytest.raises(ValueError, match="`tune_seeds`.*disjoint.*\\[0\\] in both"):
        tune_and_run(_tiny_configs(), tune_seeds=[0], seeds=[0, 1], backend="serial", progress=False)
    with pytest.raises(ValueError, match="`seeds`"):
        tune_and_run(_tiny_configs(), tune_seeds=[100], seeds=[], backend="serial", progress=False)


def test_compare_keeps_rows_without_a_status_and_names_a_missing_other_method():
    engine = pd.DataFrame({"method": ["ERM"] * 3, "seed": [0, 1, 2], "eo": [0.1, 0.2, 0.3], "status": "ok"})
    by_hand = pd.DataFrame({"method": ["mine"] * 3, "seed": [0, 1, 2], "eo": [0.1, 0.25, 0.3]})
    out = compare(pd.concat([engine, by_hand]), metrics=["eo"], n_boot=200)
    assert out.index.tolist() == [("mine", "eo")] and out.loc[("mine", "eo"), "n"] == 3
    with pytest.raises(ValueError, match="`results`.*'ERM' and at least one other method.*only \\['ERM'\\]"):
        compare(engine, metrics=["eo"])


def test_tune_and_run_tunes_each_data_set_on_its_own_in_one_study():
    from fairlib.experiments import tune_and_run

    configs = _tiny_configs()
    configs += [c.replace(dataset_params={"n": 400}) for c in configs]
    tuned = tune_and_run(configs, tune_seeds=[100], seeds=[0, 1], backend="serial", metric="accuracy",
                         progress=False)
    assert tuned.selection.table.index.names == ["data", "method"]
    assert set(tuned.runs["data"]) == {"synthetic n=300", "synthetic n=400"} and len(tuned.runs) == 8
    for (data, method), row in tuned.selection.table.iterrows():
        runs = tuned.tuning[(tuned.tuning["data"] == data) & (tuned.tuning["method"] == method)]
        assert len(runs) == 2 and row["n_configs"] == 2
        best = runs.loc[runs["meta_accuracy"].idxmax(), "train.lr"]
        assert (tuned.runs[(tuned.runs["data"] == data) & (tuned.runs["method"] == method)]["train.lr"] == best).all()
    assert tuned.chosen("ERM", 5, data="synthetic n=400").dataset_params == (("n", 400),)
    with pytest.raises(ValueError, match="equal tuning budget\\) on synthetic n=400"):
        tune_and_run(configs[:-1], tune_seeds=[100], seeds=[0], backend="serial", progress=False)


@pytest.mark.parametrize("env, address, expected", [
    ("", None, {"num_cpus": 3, "include_dashboard": False, "log_to_driver": False}),
    ("ray://head:10001", None, {"log_to_driver": False}),  # connect to the named cluster
    ("ray://head:10001", "auto", {"address": "auto", "log_to_driver": False}),
])
def test_ray_backend_connects_to_the_address_or_ray_address_else_starts_a_local_ray(monkeypatch, env, address,
                                                                                       expected):
    calls = []

    class Stop(Exception):
        pass

    class FakeRay:
        @staticmethod
        def is_initialized():
            return False

        @staticmethod
        def init(**kwargs):
            calls.append(kwargs)
            raise Stop

    monkeypatch.setenv("RAY_ADDRESS", env)
    monkeypatch.setattr(backends, "import_ray", lambda: FakeRay)
    with pytest.raises(Stop):
        list(backends.map_unordered(abs, [1], backend="ray", workers=3, ray_address=address))
    assert calls == [expected]


def test_a_spec_rebuilt_from_a_table_row_is_exact_even_after_ints_became_floats():
    jtt = RunSpec("adult", "logistic", "JTT", method_params={"up_weight": 5, "stage1_epochs": 1},
                  dataset_params={"n": 12000}, train={"epochs": 5}, tags={"k": 1})
    erm = RunSpec("adult", "logistic", "ERM", train={"epochs": 5, "lr": 0.1})
    table = pd.DataFrame([jtt.flat(), erm.flat()])
    assert table["method.up_weight"].dtype == float  # what a mixed table does to an int column
    rebuilt = RunSpec.from_record(table.iloc[0].to_dict())
    assert rebuilt == jtt and rebuilt.run_id == jtt.run_id
    assert dict(rebuilt.method_params)["up_weight"] == 5 and isinstance(dict(rebuilt.method_params)["up_weight"], int)
    assert RunSpec.from_record(table.iloc[1].to_dict()) == erm


def test_colored_digits_can_score_by_colour_label_cell():
    spec = RunSpec("colored_digits", "mlp", "ERM", seed=0, dataset_params={"eval_cells": True},
                   model_params={"hidden": [8]}, train={"epochs": 1, "device": "cpu"})
    record = execute(spec)
    cells = [k for k in record if k.startswith("test_accuracy[")]
    assert record["status"] == "ok" and len(cells) == 4 and "test_accuracy[red, y=1]" in cells
    assert record["test_worst_group_accuracy"] == min(record[k] for k in cells)


def test_extra_metrics_join_the_record_keep_old_run_ids_and_round_trip(tmp_path):
    from fairlib.experiments import register_metric

    @register_metric("train_positive_share_test", replace=True)
    def share(run):
        return {"train_positive_share": float(run.train.y.double().mean())}

    plain = RunSpec("synthetic", "logistic", "ERM", dataset_params={"n": 300}, train=TRAIN)
    spec = plain.replace(metrics=["train_positive_share_test"])
    assert spec.run_id != plain.run_id and "metrics" not in plain.to_dict()
    assert RunSpec.from_json(spec.to_json()) == spec and RunSpec.from_record(execute(spec)) == spec
    out = run_study([spec], backend="serial", progress=False)
    assert 0 < out["train_positive_share"].iloc[0] < 1
    with pytest.raises(ValueError, match="`metric` to be one of"):
        run_study([plain.replace(metrics=["no_such_metric"])], backend="serial", progress=False)
    with pytest.raises(TypeError, match="`metrics` to be a list of registered metric names"):
        plain.replace(metrics="train_positive_share_test")


def test_boosted_trees_run_through_the_engine_with_static_weights_and_refuse_dynamic_methods():
    pytest.importorskip("lightgbm")
    pytest.importorskip("fairgbm")
    data = {"n": 600}
    specs = [RunSpec("synthetic", model, method, dataset_params=data, model_params={"n_estimators": 20})
             for model, method in (("lightgbm", "ERM"), ("lightgbm", "Reweighing"), ("fairgbm", "ERM"),
                                   ("lightgbm", "GroupDRO"), ("fairgbm", "Reweighing"))]
    out = run_study(specs, backend="serial", progress=False).set_index(["model", "method"])
    ok = out.loc[[("lightgbm", "ERM"), ("lightgbm", "Reweighing"), ("fairgbm", "ERM")]]
    assert (ok["status"] == "ok").all(), ok["error"].tolist()
    assert ok["test_accuracy"].between(0.5, 1).all()
    assert ok.loc[("lightgbm", "ERM"), "test_accuracy"] != ok.loc[("lightgbm", "Reweighing"), "test_accuracy"] or \
        ok.loc[("lightgbm", "ERM"), "test_demographic_parity_difference"] != \
        ok.loc[("lightgbm", "Reweighing"), "test_demographic_parity_difference"]
    assert out.loc[("lightgbm", "GroupDRO"), "status"] == "failed"
    assert "`method` to be ERM" in out.loc[("fairgbm", "Reweighing"), "error"]
    assert execute(specs[1])["test_accuracy"] == ok.loc[("lightgbm", "Reweighing"), "test_accuracy"]  # same bits


def test_a_bad_method_parameter_value_is_refused_before_any_run():
    spec = RunSpec("synthetic", "mlp", "JTT", dataset_params={"n": 300},
                   method_params={"up_weight": "many", "stage1_epochs": 1}, train=TRAIN)
    with pytest.raises(ValueError, match="`method_params` to be parameters of JTT.*up_weight"):
        run_study([spec], backend="serial", progress=False)
    record = execute(spec)  # a single run fails fast, before JTT's first stage trains
    assert record["status"] == "failed" and "`up_weight`" in record["error"] and record["seconds"] < 5


def test_fermi_runs_through_the_engine_as_erm_plus_its_penalty_and_refuses_trees_and_bad_params():
    from fairlib.regularizers import FERMI
    from fairlib.train import fit

    spec = RunSpec("synthetic", "logistic", "FERMI", seed=3, dataset_params={"n": 600},
                   method_params={"target": "dp", "lam": 20.0}, train=TRAIN)
    run = train_run(spec)
    assert run.history.frame["train_penalty"].notna().all()  # the penalty was in the loss
    # the same run by hand: ERM strategy, FERMI regulariser, the spec's settings
    import torch

    train, meta, _ = registry.get_dataset("synthetic")(seed=3, n=600)
    torch.manual_seed(3)
    model = registry.get_model("logistic")(train, seed=3)
    fit(model, train, regularizer=FERMI("dp", lam=20.0), meta=meta, seed=3, progress=False,
        **{**spec.train_settings, "device": torch.device("cpu")})
    for a, b in zip(model.parameters(), run.model.parameters()):
        assert torch.equal(a, b)
    erm = execute(spec.replace(method="ERM", method_params={}))
    fermi = execute(spec)
    assert fermi["test_demographic_parity_difference"] != erm["test_demographic_parity_difference"]
    with pytest.raises(ValueError, match="`method_params` to be parameters of FERMI.*`lam`"):
        run_study([spec.replace(method_params={"lam": -1.0})], backend="serial", progress=False)
    trees = execute(spec.replace(model="lightgbm", train={})) if _has("lightgbm") else None
    if trees is not None:
        assert trees["status"] == "failed" and "trees take no loss penalty" in trees["error"]


def test_register_method_checks_its_regularizer_arguments():
    with pytest.raises(ValueError, match="`regularizer` to be a regulariser factory"):
        registry.register_method("x_doc", registry.get_method("ERM").factory, regularizer_params=("lam",))
    with pytest.raises(TypeError, match="`regularizer_params` to be a list of parameter names"):
        registry.register_method("x_doc", registry.get_method("ERM").factory, regularizer=object,
                                 regularizer_params="lam")


def _has(module):
    import importlib.util

    return importlib.util.find_spec(module) is not None


def test_the_choice_shows_integers_as_integers_when_the_table_made_them_floats():
    base = RunSpec("synthetic", "logistic", "ERM", dataset_params={"n": 300}, train=TRAIN)
    specs = [base.replace(seed=s, train={**TRAIN, "weight_decay": w}) for w in (0.0, 1e-3) for s in (0, 1)]
    specs += [base.replace(method="JTT", seed=s, method_params={"up_weight": u, "stage1_epochs": 1})
              for u in (5, 20) for s in (0, 1)]
    records = run_study(specs, backend="serial", progress=False)
    assert records["method.up_weight"].dtype == float  # NaN for ERM's rows
    choice = select(records, metric="accuracy").table.loc["JTT", "choice"]
    assert choice in ("up_weight=5", "up_weight=20")

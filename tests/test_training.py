"""QAP training on generated jets: masks, FT sparsity, LT rewinding, BN folding, resume."""

import json
import signal
import subprocess
import sys
import time

import pytest
import torch

from qapflow.nn.model import build_model
from qapflow.nn.spec import ModelSpec
from qapflow.train.bn_fold import fold_batch_norm
from qapflow.train.checkpoint import load_checkpoint
from qapflow.train.config import RunConfig
from qapflow.train.masks import PruneMasks
from qapflow.train.run import run_qap
from qapflow.train.schedule import target_sparsities
from qapflow.train.trainer import TrainConfig

FAST = TrainConfig(max_epochs=4, patience=2, batch_size=256)


def config(data, **kw) -> RunConfig:
    kw.setdefault("train", FAST)
    kw.setdefault("fold_epochs", 2)
    kw.setdefault("max_jets", 3000)
    return RunConfig(data=str(data), **kw)


def iteration(run, it, name="checkpoint.pt"):
    return load_checkpoint(run / f"iter_{it:03d}" / name)


def test_schedule_steps_ten_percent_then_finer():
    assert target_sparsities(iterations=3) == [0.1, 0.2, 0.3]
    assert target_sparsities(target=0.8) == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
    assert target_sparsities(target=0.95)[-4:] == [0.9, 0.92, 0.94, 0.95]
    assert target_sparsities(iterations=2, target=0.15) == [0.1, 0.15]


@pytest.fixture(scope="module")
def ft_run(generated_jets_file, tmp_path_factory):
    run = tmp_path_factory.mktemp("ft") / "run"
    run_qap(config(generated_jets_file, model=ModelSpec(bits=6), prune="ft", iterations=3), run,
            progress=False)
    return run


def test_ft_reaches_each_target_within_one_weight(ft_run):
    for it, target in enumerate([0.0, 0.1, 0.2, 0.3]):
        model, masks, _, _ = iteration(ft_run, it)
        assert abs(masks.pruned - target * masks.total) <= 1
        metrics = json.loads((ft_run / f"iter_{it:03d}" / "metrics.json").read_text())
        assert metrics["pruned_fraction"] == masks.pruned / masks.total
        assert metrics["sparsity"]["overall"] >= metrics["pruned_fraction"]  # measured, >= mask


def test_mask_holds_through_training_saving_and_loading(ft_run):
    for name in ("checkpoint.pt", "folded.pt"):
        model, masks, _, _ = iteration(ft_run, 3, name)
        for lin, mask, qw in zip(model.linears, masks.masks, model.quant_weights()):
            assert (lin.weight[~mask] == 0.0).all()
            assert (qw[~mask] == 0.0).all()
    # the file is plain tensors and data
    payload = torch.load(ft_run / "iter_003" / "checkpoint.pt", weights_only=True)
    assert payload["spec"]["bits"] == 6


def test_ft_continues_from_the_previous_weights(ft_run):
    prev, _, _, _ = iteration(ft_run, 1)
    init = torch.load(ft_run / "init.pt", weights_only=True)
    # iteration 1 started from iteration 0's weights, not the initial ones
    assert not torch.equal(prev.linears[0].weight, init["linears.0.weight"])


def test_metrics_and_summary_files(ft_run):
    metrics = json.loads((ft_run / "iter_002" / "metrics.json").read_text())
    for key in ("accuracy", "auc", "bkg_eff_at_sig_eff_0p5", "bops", "sparsity", "neural_efficiency"):
        assert key in metrics
    assert set(metrics["auc"]) == {"g", "q", "w", "z", "t"}
    assert metrics["deploy_checkpoint"] == "folded.pt"
    summary = json.loads((ft_run / "summary.json").read_text())
    assert [r["iteration"] for r in summary["iterations"]] == [0, 1, 2, 3]
    bops = [r["bops"] for r in summary["iterations"]]
    assert bops == sorted(bops, reverse=True)
    history = json.loads((ft_run / "iter_000" / "history.json").read_text())
    assert len(history["train_loss"]) == len(history["val_loss"]) == history["epochs"]


def test_lt_rewinds_survivors_to_their_initial_values(generated_jets_file, tmp_path, monkeypatch):
    import qapflow.train.run as run_module

    seen = []
    real_train = run_module.train

    def spy(model, masks, data, cfg, progress=True, desc=""):
        seen.append(({k: v.clone() for k, v in model.state_dict().items()}, masks.state()))
        return real_train(model, masks, data, cfg, progress, desc)

    monkeypatch.setattr(run_module, "train", spy)
    cfg = config(generated_jets_file, model=ModelSpec(bits=32), prune="lt", iterations=2, fold_bn=False)
    run_qap(cfg, tmp_path / "lt", progress=False)
    init = torch.load(tmp_path / "lt" / "init.pt", weights_only=True)
    assert len(seen) == 3
    for state, masks in seen[1:]:  # every pruning iteration starts from the rewound weights
        for i, mask in enumerate(masks):
            w, w0 = state[f"linears.{i}.weight"], init[f"linears.{i}.weight"]
            assert torch.equal(w[mask], w0[mask])
            assert (w[~mask] == 0).all()
        assert torch.equal(state["norms.0.running_mean"], init["norms.0.running_mean"])


def test_bn_folding_keeps_the_function_in_float():
    torch.manual_seed(1)
    model = build_model(ModelSpec(bits=32))
    with torch.no_grad():  # give BN non-trivial statistics and affine parameters
        for norm in model.norms:
            norm.running_mean.normal_()
            norm.running_var.uniform_(0.5, 2.0)
            norm.weight.normal_()
            norm.bias.normal_()
    masks = PruneMasks.ones_like(model)
    masks = masks.prune_smallest(model, masks.total // 2)
    masks.apply(model)
    model.eval()
    folded = fold_batch_norm(model)
    x = torch.randn(512, 16)
    with torch.no_grad():
        assert torch.allclose(model(x), folded(x), rtol=1e-5, atol=1e-5)
    for lin, mask in zip(folded.linears, masks.masks):
        assert (lin.weight[~mask] == 0).all()
    assert all(isinstance(n, torch.nn.Identity) for n in folded.norms)


def _train_cli(data, out, *extra):
    return [sys.executable, "-m", "qapflow.cli", "train", "--data", str(data), "--out", str(out),
            "--bits", "6", "--prune", "ft", "--iterations", "3", "--max-epochs", "3",
            "--patience", "2", "--batch-size", "256", "--fold-epochs", "1", "--max-jets", "3000",
            "--quiet", *extra]


def test_killed_run_resumes_and_rewrites_nothing(generated_jets_file, tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen(_train_cli(generated_jets_file, out), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and not (out / "iter_001" / "metrics.json").exists():
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = sorted(p.parent.name for p in out.glob("iter_*/metrics.json"))
    assert finished and "iter_003" not in finished
    before = {p: p.stat().st_mtime_ns for name in finished for p in (out / name).iterdir()}

    again = subprocess.run(_train_cli(generated_jets_file, out), capture_output=True, text=True)
    assert again.returncode == 2 and "--resume" in again.stderr

    subprocess.run(_train_cli(generated_jets_file, out, "--resume"), check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert {p: p.stat().st_mtime_ns for p in before} == before
    summary = json.loads((out / "summary.json").read_text())
    assert [r["iteration"] for r in summary["iterations"]] == [0, 1, 2, 3]
    _, masks, _, _ = iteration(out, 3)
    assert abs(masks.pruned - 0.3 * masks.total) <= 1


def test_kfold_reports_mean_and_standard_error(generated_jets_file, tmp_path):
    cfg = config(generated_jets_file, model=ModelSpec(bits=32), folds=2, fold_bn=False,
                 randomize_labels=0.5)
    summary = run_qap(cfg, tmp_path / "kf", progress=False)
    assert summary["folds"] == 2
    row = summary["iterations"][0]
    assert 0 < row["accuracy"] < 1 and row["accuracy_sem"] >= 0
    assert (tmp_path / "kf" / "fold_1" / "iter_000" / "metrics.json").exists()


def test_report_draws_the_papers_views(ft_run, tmp_path):
    from qapflow.report.plots import report_runs

    paths = report_runs([ft_run], tmp_path / "rep", labels=["6bit-ft"])
    names = {p.name for p in paths}
    for stem in ("loss_vs_epoch_6bit-ft", "roc", "metrics_vs_bops", "neural_efficiency_vs_bops"):
        assert f"{stem}.png" in names and f"{stem}.pdf" in names
    rows = (tmp_path / "rep" / "runs.csv").read_text().splitlines()
    assert len(rows) == 1 + 4 and rows[1].startswith("6bit-ft,")


def test_cli_flags_build_a_mixed_precision_narrow_model(generated_jets_file, tmp_path):
    out = tmp_path / "mixed"
    subprocess.run([sys.executable, "-m", "qapflow.cli", "train", "--data", str(generated_jets_file),
                    "--out", str(out), "--bits", "8,6,6,4", "--widths", "32", "16", "16",
                    "--max-epochs", "2", "--max-jets", "2000", "--no-fold-bn", "--quiet"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    model, _, _, _ = iteration(out, 0)
    assert model.spec.layer_bits == [8, 6, 6, 4] and model.spec.widths == [32, 16, 16]
    assert not (out / "iter_000" / "folded.pt").exists()


def test_config_with_an_unknown_key_names_the_file(tmp_path):
    from qapflow.common.errors import QapflowError

    path = tmp_path / "cfg.yaml"
    path.write_text("prune: ft\ntarget_sparsity: 0.5\nlearning_rate: 3\n")
    with pytest.raises(QapflowError, match=r"cfg.yaml: unknown keys \['learning_rate'\]"):
        RunConfig.from_yaml(path)


def test_a_damaged_run_file_is_named_not_a_traceback(generated_jets_file, tmp_path):
    from qapflow.common.errors import DataFormatError

    cfg = RunConfig(data=str(generated_jets_file), model=ModelSpec(bits=6), max_jets=1000,
                    train=TrainConfig(max_epochs=1, patience=1, batch_size=256))
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.json").write_text(json.dumps(cfg.to_dict()))
    (out / "init.pt").write_bytes(b"PK\x03\x04 not a checkpoint")
    with pytest.raises(DataFormatError, match=r"init\.pt: the run's initial weights cannot be read"):
        run_qap(cfg, out, resume=True, progress=False)
    damaged = tmp_path / "checkpoint.pt"
    damaged.write_bytes(b"\x80\x02garbage")
    with pytest.raises(DataFormatError, match=r"checkpoint\.pt: cannot be read as a checkpoint"):
        load_checkpoint(damaged)


def test_plots_label_every_panel_and_name_the_roc_iteration(ft_run, tmp_path, monkeypatch):
    from qapflow.report import plots

    figures = {}
    real_save = plots.save_figure

    def keep(fig, out, name):
        figures[name] = fig
        return real_save(fig, out, name)

    monkeypatch.setattr(plots, "save_figure", keep)
    plots.report_runs([ft_run], tmp_path, labels=["ft"])
    panels = figures["metrics_vs_bops"].axes
    assert panels and all(ax.get_ylabel() and ax.get_legend() is not None for ax in panels)
    assert "iteration 0" in figures["roc"].axes[0].get_title()


def test_joint_schedule_prunes_while_it_quantizes_to_the_exact_target(generated_jets_file, tmp_path):
    cfg = config(generated_jets_file, model=ModelSpec(bits=6), prune="ft", target_sparsity=0.5,
                 schedule="joint", joint_ramp_epochs=3, train=TrainConfig(max_epochs=5, patience=1, batch_size=256))
    run_qap(cfg, tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "iter_001").exists()  # one training
    model, masks, _, _ = iteration(tmp_path / "run", 0)
    assert masks.pruned == round(0.5 * masks.total)
    assert all(float((w[~m] == 0).all()) for w, m in zip(model.quant_weights(), masks.masks))
    history = json.loads((tmp_path / "run" / "iter_000" / "history.json").read_text())
    assert history["best_epoch"] >= 2 and history["epochs"] >= 3  # nothing kept from before the ramp's end


def test_prune_then_quantize_prunes_in_float_and_deploys_quantized(generated_jets_file, tmp_path):
    cfg = config(generated_jets_file, model=ModelSpec(bits=6), prune="ft", iterations=2,
                 schedule="prune-then-quantize", quantize_epochs=2)
    run_qap(cfg, tmp_path / "run", progress=False)
    for it in (1, 2):
        quantized, qmasks, _, _ = iteration(tmp_path / "run", it)
        floating, fmasks, _, _ = iteration(tmp_path / "run", it, "float.pt")
        assert quantized.spec.layer_bits == [6] * 4 and floating.spec.is_float
        assert all(torch.equal(a, b) for a, b in zip(qmasks.masks, fmasks.masks))
        assert qmasks.pruned == round([0.1, 0.2][it - 1] * qmasks.total)
    metrics = json.loads((tmp_path / "run" / "iter_002" / "metrics.json").read_text())
    first = json.loads((tmp_path / "run" / "iter_000" / "metrics.json").read_text())
    assert metrics["bops"] < first["bops"] < 1e6  # 6-bit BOPs, falling with the pruning (float: 4.6 M)
    with pytest.raises(Exception, match="schedule"):
        config(generated_jets_file, model=ModelSpec(bits=32), prune="ft", iterations=1, schedule="joint")

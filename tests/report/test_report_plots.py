"""`ait report` figures: the PNGs exist only when their data do, are valid PNGs, and report.md links them."""

import json
import re

import yaml
from report_testutils import PNG_MAGIC, cell, make_run

from ait.report import build_report
from ait.sweep import run_sweep
from ait_testutils import tiny_config

TRANSFER = {"original": 60.0, "crop": 50.0, "gray": 40.0, "color": 55.0}
VARIATION = {"original,crop": (0.5, 3.0), "original,gray": (0.9, 4.0), "original,color": (0.3, 2.0)}


def linked_images(report_path):
    text = report_path.read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    for link in links:
        assert not link.startswith("/"), link  # relative, so the report folder can move
        data = (report_path.parent / link).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 2000, link
    return text, links


def test_every_figure_when_its_data_exist(tmp_path):
    runs = tmp_path / "runs"
    for seed in (0, 1):
        make_run(runs, "b", seed, 60.0 + seed, strategy="baseline", transfer=TRANSFER, variation=VARIATION, tsne=True)
        make_run(
            runs,
            "a",
            seed,
            62.0 + seed,
            transfer=TRANSFER,
            tsne=True,
            variation={k: (kl / 2, l2 / 2) for k, (kl, l2) in VARIATION.items()},
        )
        for weight in (0.5, 2.0):
            for dataset in ("cifar10", "cifar100"):
                make_run(runs, f"{dataset}_w{weight}", seed, 60.0 + weight, weight=weight, dataset=dataset)
        make_run(runs, "c10", seed, 80.0, dataset="cifar10")
        for layer, metric in (("feature", "kl"), ("feature", "euclidean"), ("logits", "euclidean")):
            make_run(runs, f"{layer}_{metric}", seed, 55.0 + seed, layer=layer, metric=metric)
    report = build_report([runs], tmp_path / "out", log=[].append)
    text, links = linked_images(report)
    names = sorted(link.split("/")[-1] for link in links)
    assert "fig4_lambda.png" in names
    assert sum(n.startswith("fig3_") for n in names) == 1
    assert sum(n.startswith("fig5_") for n in names) == 1 and sum(n.startswith("fig6_") for n in names) == 1
    assert sum(n.startswith("curves_") for n in names) == 10  # one per configuration
    assert sorted(p.name for p in (tmp_path / "out" / "plots").iterdir()) == names

    # The numbers behind the figures are in the report too.
    fig4 = text.split("## Figure 4")[1].split("## ")[0]
    assert f"| cifar10 | 0.5 | {cell([60.5, 60.5])} |" in fig4 and "| cifar100 | 1 |" in fig4
    fig3 = text.split("## Figure 3")[1].split("## ")[0]
    assert "| Layer | kl | euclidean |" in fig3 and f"| feature | {cell([55.0, 56.0])} |" in fig3
    assert f"Baseline (no AiLoss): {cell([60.0, 61.0])}" in fig3
    fig5 = text.split("## Figure 5")[1].split("## ")[0]
    expected = ["original,gray", cell([0.9, 0.9]), cell([0.45, 0.45]), cell([4.0, 4.0]), cell([2.0, 2.0])]
    assert "| " + " | ".join(expected) + " |" in fig5


def test_no_eval_files_no_eval_figures(tmp_path):
    runs = tmp_path / "runs"
    for seed in (0, 1):
        make_run(runs, "b", seed, 60.0, strategy="baseline")
        make_run(runs, "a", seed, 62.0)
    out = tmp_path / "out"
    earlier = next((build_report([runs], out, log=[].append).parent / "plots").glob("curves_*.png"))
    earlier.rename(out / "plots" / "fig5_stale.png")  # a figure of an earlier report: removed
    report = build_report([runs], out, log=[].append)
    text, links = linked_images(report)
    assert all(link.split("/")[-1].startswith("curves_") for link in links) and len(links) == 2
    assert not (out / "plots" / "fig5_stale.png").exists()
    missing = text.split("## Not in this report")[1]
    for figure in ("Figure 3", "Figure 4", "Figure 5", "Figure 6", "Table 5"):
        assert figure in missing


def test_report_on_real_runs_from_a_sweep(tmp_path):
    configs = []
    for strategy in ("baseline", "ait"):
        cfg = tiny_config(tmp_path, strategy)
        cfg["data"]["synthetic_size"] = 64
        cfg["train"].update(epochs=2, checkpoint=False)
        path = tmp_path / f"{strategy}.yaml"
        path.write_text(yaml.safe_dump(cfg))
        configs.append(path)
    result = run_sweep(configs, seeds=[0, 1], log=[].append)
    assert result.ok and len(result.trained) == 4
    report = build_report([tmp_path / "runs"], tmp_path / "out", log=[].append)
    text, links = linked_images(report)
    finals = {}
    for p in result.plan:
        summary = json.loads((p.run_dir / "summary.json").read_text())
        finals.setdefault(p.config.strategy.name, []).append(summary["networks"][0]["final_top1"])
    row = next(line for line in text.splitlines() if line.startswith("| synthetic"))
    assert f"| {cell(finals['baseline'])} | {cell(finals['ait'])} |" in row
    assert "equal epochs (2)" in row and len(links) == 2

"""The experiment scripts of examples/experiments run end to end (in their
--quick form: two ratios, short training) and write a results file that
`darbgen report` reads. The full runs and their figures: docs/results.md."""
import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

try:
    import torch  # noqa: F401
except ImportError:
    message = "torch is not installed: the experiment scripts need it (pip install torch)"
    warnings.warn(message)
    pytest.skip("SKIPPED LOUDLY: " + message, allow_module_level=True)

from darbgen.reporting import headline, load_results  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
METHODS = {"irregular", "block4x4", "block1x4", "bank_balanced", "bmwm", "darb"}


@pytest.mark.slow
@pytest.mark.parametrize("script", ["digits_mlp", "digits_cnn", "char_lstm"])
def test_experiment_script_runs_and_reports(script, tmp_path):
    out = tmp_path / script
    # a generous limit: on two cores shared with a parallel test worker the LSTM's quick run takes minutes
    run = subprocess.run([sys.executable, str(ROOT / "examples" / "experiments" / f"{script}.py"), "--quick",
                          "--out", str(out)], capture_output=True, text=True, timeout=1500)
    assert run.returncode == 0, run.stderr[-3000:]
    results = load_results(out / "results.json")
    runs = results["runs"]
    assert {r["method"] for r in runs} == METHODS
    assert {r["variant"] for r in runs} == {"one-shot", "refit", "fine-tuned"}
    for r in runs:
        assert r["ratio"] == pytest.approx(r["requested_ratio"], rel=0.15)
        assert 1 < r["bits_per_kept"] < 40
    assert headline(results)
    report = (out / "report" / "report.md").read_text()
    assert "Highest ratio within tolerance" in report
    assert json.loads((out / "results.json").read_text())["schema"] == "darbgen-experiment/1"


def test_bundled_language_model_scores_what_its_file_says():
    sys.path.insert(0, str(ROOT / "examples" / "experiments"))
    import char_lstm

    model, meta = char_lstm.load_dense(char_lstm.BUNDLED)
    _, valid, desc = char_lstm.corpus()
    if desc != meta["corpus"]:
        pytest.skip(f"SKIPPED LOUDLY: this Python's stdlib text differs from the one the bundled model was "
                    f"trained on ({meta['corpus']}); the experiment still runs, with slightly different figures")
    assert char_lstm.bits_per_char(model, valid) == pytest.approx(meta["valid_bpc"], abs=1e-4)
    assert meta["valid_bpc"] < 2.2

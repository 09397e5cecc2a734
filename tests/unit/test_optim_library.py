"""``quantsam.optim`` as a library: the README's own-loop example runs as written, and importing the package pulls
none of the pipeline's heavy stack."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]
HEAVY = ("hydra", "omegaconf", "mlflow", "cvxpy", "pandas", "pyarrow", "scipy", "highspy", "matplotlib")


def readme_block() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("**In your own loop:**"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_example_runs_in_a_fresh_interpreter_without_the_heavy_stack():
    code = readme_block() + (
        "\nimport sys\nheavy = [m for m in " + repr(HEAVY) + " if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
        "opt2 = GSAM(model.parameters(), lr=1e-3, weight_decay=1e-2, rho=0.05, alpha=0.1)\n"
        "opt2.load_state_dict(state)\nassert opt2.grad_evals == 20\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "HEAVY []" in out.stdout, out.stdout


def test_every_registered_optimizer_is_importable_by_class_name():
    import quantsam.optim as qo
    from quantsam.optim import list_optimizers, optimizer_class

    for name in list_optimizers():
        cls = optimizer_class(name)
        assert getattr(qo, cls.__name__) is cls, name

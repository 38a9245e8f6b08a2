"""The service template's post-copy task: render the new service's manifests, or say how to.

Copier runs it after writing the files (`_tasks` in copier.yml, on `copier copy` only), in the destination
(the repository root), with the Python that runs Copier: `python render_new_service.py NAME`. That Python may
have no BetCycle (Copier installed with `uv tool` or pipx), so this looks for one, in this order:

1. the repository's own virtualenv, `.venv/bin/python` (what `python3 bootstrap.py` creates);
2. the Python running Copier, when it can import betcycle (Copier from .venv, the nox sessions, the tests);
3. `betcycle` on PATH (`uv tool install --editable .`).

It runs `betcycle --root . render --app NAME` with the first one found and exits with its code: a failed render
is a real problem, and Copier then stops with "Task … returned non-zero exit status" after BetCycle's own
message (the stamped files stay). With no BetCycle it prints the command to run and succeeds: the stamped files
are complete, only the manifests are missing.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path


def find_betcycle(root: Path) -> list[str] | None:
    """The command that runs BetCycle here, or None."""
    venv = root / ".venv" / "bin" / "python"
    if venv.is_file():
        probe = subprocess.run([str(venv), "-c", "import betcycle"], capture_output=True, check=False)
        if probe.returncode == 0:
            return [str(venv), "-m", "betcycle"]
    if importlib.util.find_spec("betcycle") is not None:
        return [sys.executable, "-m", "betcycle"]
    on_path = shutil.which("betcycle")
    return [on_path] if on_path else None


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: render_new_service.py NAME", file=sys.stderr)
        return 2
    (name,) = argv
    root = Path.cwd()
    betcycle = find_betcycle(root)
    if betcycle is None:
        print(
            f"BetCycle is not installed where Copier runs, so {name} is not rendered yet. From the repository "
            f"root, run:\n  betcycle render --app {name}\n(or `.venv/bin/nox -s render -- --app {name}`; "
            "`python3 bootstrap.py` creates .venv)",
            file=sys.stderr,
        )
        return 0
    return subprocess.run([*betcycle, "--root", str(root), "render", "--app", name], check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

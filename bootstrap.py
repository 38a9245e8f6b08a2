#!/usr/bin/env python3
"""Create or refresh `.venv`: nox and uv (to run every task) and an editable betcycle, copier (to use them).

    python3 bootstrap.py            # then: .venv/bin/nox -s render, or `. .venv/bin/activate` and `betcycle …`
    python3 bootstrap.py --force    # reinstall even when .venv looks current

Why a virtualenv: Debian 12 and Ubuntu 24.04 mark their system Python as externally managed (PEP 668), so
`pip install nox` and `pip install --user nox` refuse there. A virtualenv is the one install that works the same
on those, on macOS, on any other Python >= 3.11 and inside another virtualenv. It needs only the standard
library; the versions come from the `bootstrap` dependency group of pyproject.toml, so they are pinned there
with everything else. A second run with nothing changed does nothing (it compares a fingerprint of the pins).

Exit codes: 0 done (or already current), 2 this Python can't do it (the message says what to install).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
MIN_PYTHON = (3, 11)
STAMP = ".betcycle-bootstrap"  # inside the venv: the fingerprint of what was last installed


class BootstrapError(Exception):
    """A problem the user fixes (a missing system package, an unusable folder); printed as one message."""


def bin_dir(env: Path) -> Path:
    return env / ("Scripts" if os.name == "nt" else "bin")


def exe(env: Path, name: str) -> Path:
    return bin_dir(env) / (f"{name}.exe" if os.name == "nt" else name)


def read_pins(pyproject: Path) -> list[str]:
    """The `bootstrap` dependency group of pyproject.toml (requirement strings)."""
    import tomllib

    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise BootstrapError(f"{pyproject}: cannot read the pins: {exc}") from exc
    group = data.get("dependency-groups", {}).get("bootstrap")
    if not isinstance(group, list) or not all(isinstance(r, str) for r in group) or not group:
        raise BootstrapError(f"{pyproject}: [dependency-groups] needs a `bootstrap` list of requirements")
    return list(group)


def fingerprint(pyproject_text: str, extras: list[str]) -> str:
    """Changes when pyproject.toml (pins, package metadata), the extra groups or the Python running this do."""
    h = hashlib.sha256()
    for part in [pyproject_text, "|", *extras, "|", sys.version, sys.executable]:
        h.update(part.encode() + b"\0")
    return h.hexdigest()


def _usable(env: Path) -> bool:
    """A venv whose interpreter runs (a venv copied from another machine or Python version does not)."""
    python = exe(env, "python")
    if not python.exists():
        return False
    probe = subprocess.run([str(python), "-c", "import sys"], capture_output=True, check=False)
    return probe.returncode == 0


def create_venv(env: Path) -> None:
    """A venv with pip, or a message saying which system package is missing."""
    if env.exists() and not env.is_dir():
        raise BootstrapError(f"{env} exists and is not a folder: move it away and run again")
    if env.exists() and not _usable(env):
        print(f"bootstrap: {env.name} is broken (its Python does not run): recreating it", flush=True)
        shutil.rmtree(env)
    if env.exists():
        return
    print(f"bootstrap: creating {env.name} with {sys.executable}", flush=True)
    try:
        venv.EnvBuilder(with_pip=True).create(env)
    except (subprocess.CalledProcessError, OSError) as exc:
        shutil.rmtree(env, ignore_errors=True)
        raise BootstrapError(
            f"{sys.executable} cannot create a virtualenv with pip ({exc}). On Debian/Ubuntu install the "
            f"venv module: `sudo apt-get install python3-venv` (python{sys.version_info[0]}."
            f"{sys.version_info[1]}-venv on some releases), then run `python3 bootstrap.py` again."
        ) from exc


def install(env: Path, pins: list[str], extras: list[str], root: Path = ROOT) -> None:
    """pip brings uv (pinned), uv brings the rest: seconds instead of the half-minute pip would take."""
    python = str(exe(env, "python"))
    uv_pin = [p for p in pins if p.replace(" ", "").lower().startswith("uv==")]
    run = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *uv_pin]
    if uv_pin:
        print(f"bootstrap: installing {uv_pin[0]} with pip", flush=True)
        subprocess.run(run, check=True)
        cmd = [str(exe(env, "uv")), "pip", "install", "--quiet", "--python", python]
    else:
        cmd = run
    print(f"bootstrap: installing {', '.join(p for p in pins if p not in uv_pin)} and betcycle (editable)")
    pyproject = root / "pyproject.toml"
    groups = [arg for g in extras for arg in ("--group", f"{pyproject}:{g}")] if uv_pin else []
    subprocess.run([*cmd, *[p for p in pins if p not in uv_pin], "-e", str(root), *groups], check=True)


def bootstrap(env: Path, *, root: Path = ROOT, force: bool = False, extras: list[str] | None = None) -> bool:
    """Make `env` current; returns False when it already was (nothing done)."""
    if sys.version_info < MIN_PYTHON:
        raise BootstrapError(
            f"Python {'.'.join(map(str, MIN_PYTHON))} or newer is needed; this is {sys.version.split()[0]} "
            f"({sys.executable}). Run bootstrap.py with a newer python3 (e.g. `python3.11 bootstrap.py`)."
        )
    extras = extras if extras is not None else ["templates"]
    pins = read_pins(root / "pyproject.toml")
    wanted = fingerprint((root / "pyproject.toml").read_text(encoding="utf-8"), extras)
    stamp = env / STAMP
    if not force and _usable(env) and stamp.is_file() and stamp.read_text(encoding="utf-8").strip() == wanted:
        return False
    create_venv(env)
    try:
        install(env, pins, extras, root)
    except subprocess.CalledProcessError as exc:
        stamp.unlink(missing_ok=True)
        raise BootstrapError(
            f"installing into {env.name} failed ({' '.join(map(str, exc.cmd[:3]))}… exited {exc.returncode}); "
            "the output above says why. Check the package index is reachable and run again."
        ) from exc
    stamp.write_text(wanted + "\n", encoding="utf-8")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 bootstrap.py", description=__doc__.split("\n")[0])
    parser.add_argument("--force", action="store_true", help="reinstall even when .venv looks current")
    parser.add_argument("--venv", type=Path, default=ROOT / ".venv", help="where (default: .venv here)")
    args = parser.parse_args(argv)
    env = args.venv.resolve()
    try:
        changed = bootstrap(env, force=args.force)
    except BootstrapError as exc:
        print(f"bootstrap: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bootstrap: interrupted; run it again to finish", file=sys.stderr)
        return 130
    where = os.path.relpath(env)
    state = "ready" if changed else "already current"
    activate = bin_dir(Path(where)) / ("activate.bat" if os.name == "nt" else "activate")
    print(
        f"bootstrap: {where} is {state}. Run tasks with `{exe(Path(where), 'nox')} -s render`, or put "
        f"betcycle, nox and copier on PATH with `. {activate}`."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

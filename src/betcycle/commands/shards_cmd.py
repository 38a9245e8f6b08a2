"""`betcycle shards`: how many CI jobs render and validate should fan out over, from the number of apps.

Below the threshold (`--apps-per-shard`, 150 by default) the answer is one shard: a small repository gains
nothing from a matrix whose jobs each spend a minute installing. Above it, one shard per that many apps,
at most `--max`. The JSON form is what a GitHub Actions matrix takes (`fromJSON`), see .github/workflows/ci.yml.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TextIO

from betcycle.errors import UserError

APPS_PER_SHARD = 150
MAX_SHARDS = 8


def count_apps(root: Path) -> int:
    """Apps with an app.yaml (what render deploys), without loading the repository."""
    apps = root / "apps"
    return sum(1 for p in apps.iterdir() if (p / "app.yaml").is_file()) if apps.is_dir() else 0


def plan(apps: int, per_shard: int = APPS_PER_SHARD, most: int = MAX_SHARDS) -> list[str]:
    if per_shard < 1 or most < 1:
        raise UserError("--apps-per-shard and --max must be at least 1")
    count = min(most, max(1, -(-apps // per_shard)))
    return [f"{i}/{count}" for i in range(1, count + 1)]


def run(root: Path, *, per_shard: int, most: int, fmt: str, out: TextIO) -> int:
    apps = count_apps(root)
    shards = plan(apps, per_shard, most)
    if fmt == "json":
        out.write(json.dumps(shards) + "\n")
    else:
        out.write(f"{apps} app(s), {per_shard} per shard (at most {most}): {' '.join(shards)}\n")
    return 0

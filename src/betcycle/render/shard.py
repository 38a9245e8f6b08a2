"""`--shard I/N`: split a repository's work into N shares that together are exactly one whole run.

The units are every environment (its Argo CD objects and environment-level checks) and every (environment,
app) pair, numbered in a fixed order (environments by name, each followed by its apps by name); shard I
takes the units whose number is I-1 modulo N. Render, `render --check` and validate use the same split, so
a CI matrix of N jobs covers each unit once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from betcycle.errors import UserError
from betcycle.model.repo import Repo

Unit = tuple[str, str | None]  # (environment, app); app None: the environment itself


@dataclass(frozen=True)
class Shard:
    index: int  # 1-based
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        m = re.fullmatch(r"\s*([0-9]{1,6})\s*/\s*([0-9]{1,6})\s*", text)
        if not m or not 1 <= int(m[1]) <= int(m[2]):
            raise UserError(
                f"--shard {text!r} is not I/N with 1 <= I <= N",
                hint="e.g. --shard 2/4 takes the second of four shares",
            )
        return cls(int(m[1]), int(m[2]))

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def owns(self, number: int) -> bool:
        return number % self.count == self.index - 1


def units(repo: Repo) -> dict[Unit, int]:
    """Every unit of the repository with its number (independent of --env/--app narrowing)."""
    numbered: dict[Unit, int] = {}
    for env in sorted(repo.envs):
        numbered[(env, None)] = len(numbered)
        for app in sorted(repo.env_apps.get(env, {})):
            numbered[(env, app)] = len(numbered)
    return numbered


class Split:
    """Which units a run takes: all of them without a shard."""

    def __init__(self, repo: Repo, shard: Shard | None) -> None:
        self.shard = shard
        self._units = units(repo) if shard is not None else {}

    def owns(self, env: str | None, app: str | None = None) -> bool:
        if self.shard is None:
            return True
        if env is None:  # repository-level work (Terraform, findings without an environment): the first shard
            return self.shard.index == 1
        number = self._units.get((env, app))
        if number is None:  # an app no longer deployed there: judged with its environment
            number = self._units.get((env, None), 0)
        return self.shard.owns(number)

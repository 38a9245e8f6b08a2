"""BetCycle: a GitOps monorepo toolkit (render, validate, policy, diff)."""

__version__ = "0.1.0"

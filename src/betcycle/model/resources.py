"""The Resource type that flows from render (or from files on disk) into validation."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

Origins = Mapping[str, tuple[str, int, Any]]


class LazyOrigins(Mapping[str, tuple[str, int, Any]]):
    """Values provenance computed on first use: only resources with findings ever need it."""

    def __init__(self, compute: Callable[[], dict[str, tuple[str, int, Any]]]) -> None:
        self._compute: Callable[[], dict[str, tuple[str, int, Any]]] | None = compute
        self._data: dict[str, tuple[str, int, Any]] = {}

    def _get(self) -> dict[str, tuple[str, int, Any]]:
        if self._compute is not None:
            self._data, self._compute = self._compute(), None
        return self._data

    def __getitem__(self, key: str) -> tuple[str, int, Any]:
        return self._get()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())


@dataclass
class Resource:
    """One Kubernetes object plus where it came from."""

    doc: dict[str, Any]
    env: str | None = None
    app: str | None = None
    #: repository-relative file that produced it (a chart template, or the file it was read from)
    source: str | None = None
    line: int | None = None
    #: repository-relative path of the rendered manifest file, when there is one
    output: str | None = None
    #: values provenance for this (env, app): dotted values path -> (file, line, value)
    origins: Origins = field(default_factory=dict, repr=False)

    @property
    def api_version(self) -> str:
        v = self.doc.get("apiVersion")
        return v if isinstance(v, str) else ""

    @property
    def kind(self) -> str:
        v = self.doc.get("kind")
        return v if isinstance(v, str) else ""

    @property
    def metadata(self) -> dict[str, Any]:
        m = self.doc.get("metadata")
        return m if isinstance(m, dict) else {}

    @property
    def name(self) -> str:
        v = self.metadata.get("name")
        return v if isinstance(v, str) else ""

    @property
    def generate_name(self) -> str:
        """metadata.generateName: the API server appends a random suffix to name a new object."""
        v = self.metadata.get("generateName")
        return v if isinstance(v, str) else ""

    @property
    def namespace(self) -> str:
        v = self.metadata.get("namespace")
        return v if isinstance(v, str) else ""

    @property
    def labels(self) -> dict[str, str]:
        v = self.metadata.get("labels")
        return v if isinstance(v, dict) else {}

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0] if "/" in self.api_version else ""

    @property
    def ident(self) -> str:
        """kind/namespace/name (namespace omitted when empty; `prefix-*` for a generateName)."""
        parts = [self.kind or "?"]
        if self.namespace:
            parts.append(self.namespace)
        parts.append(self.name or (f"{self.generate_name}*" if self.generate_name else "?"))
        return "/".join(parts)

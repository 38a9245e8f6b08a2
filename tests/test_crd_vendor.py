"""crds.lock.yaml, the vendored schemas in schemas/crds (fetch, import --vendor, check) and `betcycle schemas`."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import json
import re
import threading
import urllib.error
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from betcycle.commands import schemas as schemas_cmd
from betcycle.errors import UserError, UserErrors
from betcycle.validate import crd, crd_fetch, crd_vendor
from tests.conftest import REPO, VENDORED_SCHEMAS, write_tree
from tests.test_crd import GADGET_YAML, WIDGET_YAML, make_crd

LOCK_FILE = REPO / "crds.lock.yaml"
URL_W = "https://example.com/crds/widget.yaml"
URL_G = "https://example.com/crds/gadget.yaml"
BODIES = {URL_W: WIDGET_YAML.encode(), URL_G: GADGET_YAML.encode()}
WIDGET_FILE = "example.com/widget_v1.json"
GADGET_FILE = "example.com/gadget_v1.json"


class FakeResponse(io.BytesIO):
    pass


def fake_opener(content: dict[str, bytes], calls: list[tuple[str, float]] | None = None) -> Any:
    def opener(url: str, timeout: float) -> FakeResponse:
        if calls is not None:
            calls.append((url, timeout))
        if url not in content:
            raise urllib.error.URLError("Name or service not known")
        return FakeResponse(content[url])

    return opener


def write_lock(path: Path, entries: list[tuple[str, str, bytes | str]], license: str = "Apache-2.0") -> Path:
    lines = ["crds:"]
    for name, url, body in entries:
        sha = body if isinstance(body, str) else hashlib.sha256(body).hexdigest()
        lines += [f"  - name: {name}", f"    url: {url}", f"    sha256: {sha}", f"    license: {license}"]
    path.write_text("\n".join(lines) + "\n")
    return path


def both_lock(tmp_path: Path) -> Path:
    return write_lock(
        tmp_path / "lock.yaml", [("widget", URL_W, BODIES[URL_W]), ("gadget", URL_G, BODIES[URL_G])]
    )


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {
        p.relative_to(folder).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def no_leftovers(base: Path) -> bool:
    return not [p for p in base.iterdir() if p.name.startswith(".crds-")]


# ------------------------------------------------------------------------------------------------ the lock


@pytest.mark.parametrize(
    ("lock_text", "message"),
    [
        ("crds: {}\n", "expected a mapping with a `crds` list"),
        (
            "crds:\n  - url: file:///etc/passwd\n    sha256: " + "f" * 64 + "\n    license: MIT\n",
            "url must be an http(s) URL",
        ),
        (
            "crds:\n  - url: https://x/y.yaml\n    sha256: abc\n    license: MIT\n",
            "sha256 must be 64 hex digits",
        ),
        ("crds:\n  - url: https://x/y.yaml\n    sha: abc\n", "unknown key 'sha'"),
        ("crds:\n  - url: https://x/y.yaml\n    sha256: " + "f" * 64 + "\n", "license must be the upstream"),
        (
            "crds:\n  - url: https://x/y.yaml\n    sha256: " + "f" * 64 + "\n    license: 'see LICENSE'\n",
            "license must be the upstream file's SPDX licence (e.g. Apache-2.0), got 'see LICENSE'",
        ),
        (
            "crds:\n  - {url: 'https://x/a/y.yaml', sha256: '" + "a" * 64 + "', license: MIT}\n"
            "  - {url: 'https://x/b/y.yaml', sha256: '" + "b" * 64 + "', license: MIT}\n",
            "duplicate name 'y.yaml' (also at line 2)",
        ),
        (
            "crds:\n  - {name: a, url: 'https://x/a.yaml', sha256: '" + "a" * 64 + "', license: MIT}\n"
            "  - {name: b, url: 'https://x/b.yaml', sha256: '" + "a" * 64 + "', license: MIT}\n",
            "duplicate sha256",
        ),
    ],
)
def test_bad_lock_file(tmp_path: Path, lock_text: str, message: str) -> None:
    lock = tmp_path / "lock.yaml"
    lock.write_text(lock_text)
    with pytest.raises(UserError) as info:
        crd_fetch.fetch(lock, tmp_path / "schemas", opener=fake_opener({}))
    assert info.value.message.startswith(message)
    assert info.value.path == str(lock)
    assert not (tmp_path / "schemas").exists()


def test_licence_expressions() -> None:
    for ok in ("Apache-2.0", "MIT OR Apache-2.0", "GPL-2.0-only WITH Classpath-exception-2.0"):
        assert crd_vendor._LICENSE_RE.match(ok), ok
    for bad in ("", "Apache 2.0", "MIT or", "MIT\nOR x"):
        assert not crd_vendor._LICENSE_RE.match(bad), bad


# ---------------------------------------------------------------------------------------------- fetch


def test_fetch_writes_the_vendored_folder_with_provenance(tmp_path: Path) -> None:
    lock, base = both_lock(tmp_path), tmp_path / "schemas"
    calls: list[tuple[str, float]] = []
    result = crd_fetch.fetch(lock, base, opener=fake_opener(BODIES, calls))
    assert calls == [(URL_W, 30.0), (URL_G, 30.0)]
    assert [p.entry.name for p in result.pinned] == ["gadget", "widget"]
    assert result.removed == [] and result.missing == []
    folder = base / "crds"
    assert sorted(snapshot(folder)) == [".gitattributes", "README.md", "SHA256SUMS", GADGET_FILE, WIDGET_FILE]
    assert result.changed == sorted(snapshot(folder))

    widget = json.loads((folder / WIDGET_FILE).read_text())
    assert widget[crd_vendor.SOURCE_KEY] == {
        "license": "Apache-2.0",
        "name": "widget",
        "sha256": hashlib.sha256(BODIES[URL_W]).hexdigest(),
        "url": URL_W,
    }
    (converted,) = crd.convert_crd(yaml.safe_load(WIDGET_YAML), "w.yaml")
    assert {k: v for k, v in widget.items() if k != crd_vendor.SOURCE_KEY} == converted.schema
    # the validate side reads it like any schema folder
    assert crd.CrdSchemaStore(base).known() == [
        ("example.com", "v1", "Gadget"),
        ("example.com", "v1", "Widget"),
    ]

    sums = (folder / "SHA256SUMS").read_text().splitlines()
    assert sums == [
        f"{hashlib.sha256((folder / rel).read_bytes()).hexdigest()}  {rel}"
        for rel in (GADGET_FILE, WIDGET_FILE)
    ]
    readme = (folder / "README.md").read_text()
    assert readme.startswith("# Vendored CRD schemas (generated: do not edit)\n")
    assert f"| widget | {URL_W} | - | - | Apache-2.0 | {WIDGET_FILE} |" in readme
    assert "betcycle schemas fetch" in readme and "betcycle schemas check" in readme
    assert crd_vendor.check(base, lock) == []
    assert no_leftovers(base)


def test_a_refresh_that_changes_nothing_touches_nothing(tmp_path: Path) -> None:
    lock, base = both_lock(tmp_path), tmp_path / "schemas"
    crd_fetch.fetch(lock, base, opener=fake_opener(BODIES))
    before = snapshot(base / "crds")
    result = crd_fetch.fetch(lock, base, opener=fake_opener(BODIES))
    assert result.changed == [] and result.removed == []
    assert snapshot(base / "crds") == before  # same bytes, and not even rewritten (same mtimes)


def test_fetch_removes_the_schemas_of_dropped_entries_and_keeps_the_layout_for_github_urls(
    tmp_path: Path,
) -> None:
    base = tmp_path / "schemas"
    crd_fetch.fetch(both_lock(tmp_path), base, opener=fake_opener(BODIES))
    (base / "crds" / "stray.txt").write_text("not generated")
    url = "https://raw.githubusercontent.com/example/widgets/" + "0123456789" * 4 + "/deploy/crds/widget.yaml"
    lock = write_lock(tmp_path / "lock.yaml", [("widget", url, BODIES[URL_W])], license="MIT")
    result = crd_fetch.fetch(lock, base, opener=fake_opener({url: BODIES[URL_W]}))
    assert result.removed == [GADGET_FILE, "stray.txt"]
    assert sorted(snapshot(base / "crds")) == [".gitattributes", "README.md", "SHA256SUMS", WIDGET_FILE]
    readme = (base / "crds" / "README.md").read_text()
    assert (
        f"| widget | example/widgets | deploy/crds/widget.yaml | {'0123456789' * 4} | MIT | {WIDGET_FILE} |"
        in readme
    )
    assert crd_vendor.check(base, lock) == []


def test_checksum_mismatch_leaves_the_vendored_folder_untouched(tmp_path: Path) -> None:
    lock, base = both_lock(tmp_path), tmp_path / "schemas"
    crd_fetch.fetch(lock, base, opener=fake_opener(BODIES))
    before = snapshot(base / "crds")
    tampered = BODIES[URL_G] + b"# changed upstream\n"
    with pytest.raises(UserError) as info:
        crd_fetch.fetch(lock, base, opener=fake_opener({**BODIES, URL_G: tampered}))
    expected, got = hashlib.sha256(BODIES[URL_G]).hexdigest(), hashlib.sha256(tampered).hexdigest()
    assert info.value.message == f"gadget: sha256 mismatch for {URL_G}: expected {expected}, got {got}"
    assert info.value.location() == f"{lock}:6"
    assert snapshot(base / "crds") == before
    assert no_leftovers(base)


def test_network_error_writes_nothing_and_stops_early(tmp_path: Path) -> None:
    calls: list[tuple[str, float]] = []
    with pytest.raises(UserError) as info:
        crd_fetch.fetch(both_lock(tmp_path), tmp_path / "schemas", opener=fake_opener({}, calls))
    assert info.value.message == f"cannot download {URL_W}: Name or service not known"
    assert "schemas import --vendor" in (info.value.hint or "")
    assert len(calls) == 1  # the network is down: the other URLs are not tried
    assert not (tmp_path / "schemas").exists()


def test_a_pinned_file_without_crds_or_two_files_with_one_kind_are_errors(tmp_path: Path) -> None:
    cm = b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"
    lock = write_lock(tmp_path / "lock.yaml", [("cm", URL_G, cm)])
    with pytest.raises(UserError, match="no CustomResourceDefinition in this file"):
        crd_fetch.fetch(lock, tmp_path / "schemas", opener=fake_opener({URL_G: cm}))
    other = WIDGET_YAML.encode() + b"# another copy\n"
    lock = write_lock(tmp_path / "lock.yaml", [("a", URL_W, BODIES[URL_W]), ("b", URL_G, other)])
    with pytest.raises(UserError) as info:
        crd_fetch.fetch(lock, tmp_path / "schemas", opener=fake_opener({URL_W: BODIES[URL_W], URL_G: other}))
    assert info.value.message == "b: example.com/v1 Widget is also defined by a"
    assert not (tmp_path / "schemas").exists()


def test_a_failed_swap_puts_the_old_folder_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lock, base = both_lock(tmp_path), tmp_path / "schemas"
    crd_fetch.fetch(lock, base, opener=fake_opener(BODIES))
    before = snapshot(base / "crds")
    real_rename = Path.rename

    def rename(self: Path, target: Any) -> Path:
        if self.name.startswith(".crds-new-"):  # the new folder can't be moved into place
            raise OSError(28, "No space left on device")
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", rename)
    lock = write_lock(tmp_path / "lock.yaml", [("widget", URL_W, BODIES[URL_W])])
    with pytest.raises(UserError) as info:
        crd_fetch.fetch(lock, base, opener=fake_opener(BODIES))
    assert info.value.message == "cannot write the vendored schemas: No space left on device"
    monkeypatch.undo()
    assert snapshot(base / "crds") == before
    assert no_leftovers(base)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
        pass


@pytest.fixture
def crd_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A local HTTP server on 127.0.0.1 serving widget.yaml and gadget.yaml."""
    monkeypatch.setenv("no_proxy", "*")  # a proxy from the environment must not see loopback requests
    root = tmp_path / "served"
    write_tree(root, {"widget.yaml": WIDGET_YAML, "gadget.yaml": GADGET_YAML})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=root)
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_fetch_over_real_http(tmp_path: Path, crd_server: str) -> None:
    lock = write_lock(tmp_path / "lock.yaml", [("widget", f"{crd_server}/widget.yaml", BODIES[URL_W])])
    result = crd_fetch.fetch(lock, tmp_path / "schemas")
    assert [s.gvk for p in result.pinned for s in p.schemas] == [("example.com", "v1", "Widget")]

    lock = write_lock(tmp_path / "lock.yaml", [("missing", f"{crd_server}/missing.yaml", "f" * 64)])
    with pytest.raises(UserError) as info:
        crd_fetch.fetch(lock, tmp_path / "schemas")
    assert info.value.message == f"cannot download {crd_server}/missing.yaml: HTTP 404 File not found"


# ---------------------------------------------------------------------------------------------- check


@pytest.fixture
def vendored(tmp_path: Path) -> tuple[Path, Path]:
    """(lock, base) with widget and gadget vendored."""
    lock, base = both_lock(tmp_path), tmp_path / "schemas"
    crd_fetch.fetch(lock, base, opener=fake_opener(BODIES))
    return lock, base


def test_check_catches_a_missing_entry(vendored: tuple[Path, Path], tmp_path: Path) -> None:
    lock, base = vendored
    url = "https://example.com/crds/gizmo.yaml"
    gizmo = yaml.safe_dump(make_crd({}, kind="Gizmo")).encode()
    write_lock(
        lock, [("widget", URL_W, BODIES[URL_W]), ("gadget", URL_G, BODIES[URL_G]), ("gizmo", url, gizmo)]
    )
    assert crd_vendor.check(base, lock) == [
        f"gizmo: missing: pinned in {lock} but not vendored in {base / 'crds'}"
    ]
    assert len(crd_vendor.check(tmp_path / "nowhere", lock)) == 3  # no folder at all: every entry is missing


def test_check_catches_extra_files(vendored: tuple[Path, Path]) -> None:
    lock, base = vendored
    folder = base / "crds"
    write_lock(lock, [("widget", URL_W, BODIES[URL_W])])  # gadget is no longer pinned
    (folder / "notes.txt").write_text("mine")
    crd.import_crds(["-"], base, io.StringIO(yaml.safe_dump(make_crd({}, kind="Gizmo"))))  # no provenance
    assert crd_vendor.check(base, lock) == [
        f"{folder / GADGET_FILE}: extra: generated from 'gadget', which the lock no longer pins",
        f"{folder / 'example.com/gizmo_v1.json'}: extra: records no x-betcycle-source (not generated from the lock)",
        f"{folder / 'notes.txt'}: extra: not a file betcycle writes here",
    ]


def test_check_catches_a_stale_schema(vendored: tuple[Path, Path]) -> None:
    lock, base = vendored
    newer = BODIES[URL_G] + b"# a newer release\n"
    write_lock(lock, [("widget", URL_W, BODIES[URL_W]), ("gadget", URL_G, newer)])
    old, new = hashlib.sha256(BODIES[URL_G]).hexdigest(), hashlib.sha256(newer).hexdigest()
    assert crd_vendor.check(base, lock) == [
        f"{base / 'crds' / GADGET_FILE}: stale: generated from gadget with sha256 {old!r}, the lock {new!r}"
    ]
    write_lock(lock, [("widget", URL_W, BODIES[URL_W]), ("gadget", URL_G, BODIES[URL_G])], license="MIT")
    problems = crd_vendor.check(base, lock)
    assert len(problems) == 2 and all(
        "stale: generated from" in p and "license 'Apache-2.0', the lock 'MIT'" in p for p in problems
    )


def test_check_catches_hand_edits(vendored: tuple[Path, Path]) -> None:
    lock, base = vendored
    folder = base / "crds"
    path = folder / WIDGET_FILE
    path.write_text(
        path.read_text().replace('"additionalProperties": false', '"additionalProperties": true', 1)
    )
    readme = folder / "README.md"
    readme.write_text(readme.read_text() + "my notes\n")
    assert crd_vendor.check(base, lock) == [
        f"{path}: edited by hand: its sha256 differs from the one in SHA256SUMS",
    ]
    path.unlink()
    assert crd_vendor.check(base, lock) == [
        f"{path}: missing: listed in SHA256SUMS but not there",
        f"widget: missing: pinned in {lock} but not vendored in {folder}",
    ]
    crd_fetch.fetch(lock, base, opener=fake_opener(BODIES))
    readme.write_text(readme.read_text() + "my notes\n")
    assert crd_vendor.check(base, lock) == [
        f"{readme}: out of date (generated from the lock and the schemas)"
    ]
    (folder / WIDGET_FILE).write_text("{oops")
    assert crd_vendor.check(base, lock)[0].startswith(
        f"{folder / WIDGET_FILE}: corrupt schema file: invalid JSON"
    )


# ------------------------------------------------------------------------------------ import --vendor (offline)


def local_copies(tmp_path: Path) -> Path:
    return write_tree(
        tmp_path / "upstream",
        {"widget.yaml": WIDGET_YAML, "gadget.yaml": GADGET_YAML, "kustomization.yaml": "resources: []\n"},
    )


def test_import_vendor_gives_the_same_folder_as_fetch(tmp_path: Path) -> None:
    lock = both_lock(tmp_path)
    crd_fetch.fetch(lock, tmp_path / "fetched", opener=fake_opener(BODIES))
    notes: list[str] = []
    result = crd_vendor.import_vendored(
        [str(local_copies(tmp_path))], lock, tmp_path / "imported", io.BytesIO(), log=notes.append
    )
    assert [p.entry.name for p in result.pinned] == ["gadget", "widget"] and result.missing == []
    assert notes == [f"{tmp_path / 'upstream' / 'kustomization.yaml'}: no CRDs, skipped"]
    fetched = {k: v[0] for k, v in snapshot(tmp_path / "fetched" / "crds").items()}
    assert {k: v[0] for k, v in snapshot(tmp_path / "imported" / "crds").items()} == fetched


def test_import_vendor_refuses_a_file_the_lock_does_not_pin(tmp_path: Path) -> None:
    lock = write_lock(tmp_path / "lock.yaml", [("widget", URL_W, BODIES[URL_W])])
    src = local_copies(tmp_path)
    with pytest.raises(UserError) as info:
        crd_vendor.import_vendored([str(src)], lock, tmp_path / "schemas", io.BytesIO())
    sha = hashlib.sha256(BODIES[URL_G]).hexdigest()
    assert info.value.path == str(src / "gadget.yaml")
    assert info.value.message == f"not pinned in {lock}: no entry has its sha256 {sha}"
    assert "without --vendor" in (info.value.hint or "")
    assert not (tmp_path / "schemas").exists()  # the pinned widget.yaml was not written either

    cm = (
        write_tree(tmp_path, {"cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"})
        / "cm.yaml"
    )
    with pytest.raises(UserErrors) as many:
        crd_vendor.import_vendored(
            [str(cm), str(tmp_path / "nope.yaml")], lock, tmp_path / "schemas", io.BytesIO()
        )
    assert [e.message for e in many.value.errors] == [
        "no CustomResourceDefinition in this file",
        "file not found",
    ]


def test_import_vendor_one_entry_at_a_time_and_from_stdin(tmp_path: Path) -> None:
    lock, base = both_lock(tmp_path), tmp_path / "schemas"
    src = local_copies(tmp_path)
    first = crd_vendor.import_vendored([str(src / "widget.yaml")], lock, base, io.BytesIO())
    assert [e.name for e in first.missing] == ["gadget"]
    assert crd_vendor.check(base, lock) == [
        f"gadget: missing: pinned in {lock} but not vendored in {base / 'crds'}"
    ]
    second = crd_vendor.import_vendored(["-"], lock, base, io.BytesIO(BODIES[URL_G]))
    assert [p.entry.name for p in second.pinned] == ["gadget", "widget"] and second.missing == []
    assert second.changed == ["README.md", "SHA256SUMS", GADGET_FILE]  # .gitattributes is the same
    assert crd_vendor.check(base, lock) == []


def test_import_vendor_drops_what_the_lock_no_longer_pins(tmp_path: Path) -> None:
    lock, base = both_lock(tmp_path), tmp_path / "schemas"
    crd_fetch.fetch(lock, base, opener=fake_opener(BODIES))
    newer = BODIES[URL_G] + b"# a newer release\n"
    write_lock(lock, [("widget", URL_W, BODIES[URL_W]), ("gadget", URL_G, newer)])
    notes: list[str] = []
    src = local_copies(tmp_path)
    result = crd_vendor.import_vendored(
        [str(src / "widget.yaml")], lock, base, io.BytesIO(), log=notes.append
    )
    assert result.removed == [GADGET_FILE]
    assert [e.name for e in result.missing] == ["gadget"]
    assert len(notes) == 1 and notes[0].startswith(f"dropping {base / 'crds' / GADGET_FILE}: stale:")


# ------------------------------------------------------------------------------------------ the repository


def test_the_repository_lock_pins_commits_with_licences() -> None:
    entries = crd_vendor.read_lock(LOCK_FILE)
    assert entries
    for e in entries:
        m = re.fullmatch(r"https://raw\.githubusercontent\.com/([^/]+/[^/]+)/([0-9a-f]{40})/(.+)", e.url)
        assert m, e.url  # a full commit SHA, never a branch or tag
        assert e.name.endswith(m[3].rsplit("/", 1)[-1]), e.name
        assert e.license == "Apache-2.0", e.name


def test_the_vendored_folder_matches_the_lock() -> None:
    """schemas/crds is exactly what crds.lock.yaml pins: every entry, nothing extra, nothing stale or edited."""
    assert crd_vendor.check(VENDORED_SCHEMAS, LOCK_FILE) == []
    assert crd_vendor.vendored_dir(REPO) == VENDORED_SCHEMAS


# ------------------------------------------------------------------------------------------------ commands


def test_cli_fetch_check_and_import(
    tmp_path: Path, crd_server: str, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "betcycle.yaml").write_text("")
    write_lock(
        root / "crds.lock.yaml",
        [
            ("widget", f"{crd_server}/widget.yaml", BODIES[URL_W]),
            ("gadget", f"{crd_server}/gadget.yaml", BODIES[URL_G]),
        ],
    )
    code, out, err = cli("--root", root, "schemas", "fetch")
    assert code == 0, err
    assert out.splitlines() == [
        f"vendored example.com/v1 Gadget -> schemas/crds/{GADGET_FILE} (gadget)",
        f"vendored example.com/v1 Widget -> schemas/crds/{WIDGET_FILE} (widget)",
        "2 schemas from 2 files pinned in crds.lock.yaml vendored in schemas/crds (5 files written, 0 removed)",
    ]
    code, out, _ = cli("--root", root, "schemas", "fetch")
    assert code == 0 and out.splitlines()[-1].endswith("vendored in schemas/crds (unchanged)")
    code, out, _ = cli("--root", root, "schemas", "check")
    assert (code, out) == (0, "schemas/crds: 2 schemas from 2 files, as pinned in crds.lock.yaml\n")

    (root / "schemas/crds" / WIDGET_FILE).write_text("{}\n")
    code, out, _ = cli("--root", root, "schemas", "check")
    assert code == 1
    assert out.splitlines() == [
        f"schemas/crds/{WIDGET_FILE}: corrupt schema file: not a schema written by betcycle",
        "widget: missing: pinned in crds.lock.yaml but not vendored in schemas/crds",
        f"2 problems in schemas/crds: {crd_vendor.REFRESH_HINT}",
    ]

    # offline, from stdin: the file is checked against the lock before anything is written
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(BODIES[URL_W])))
    code, out, _ = cli("--root", root, "schemas", "import", "--vendor", "-")
    assert code == 0
    assert out.splitlines()[-1] == (
        "2 schemas from 2 files pinned in crds.lock.yaml vendored in schemas/crds (1 file written, 0 removed)"
    )
    assert cli("--root", root, "schemas", "check")[0] == 0

    code, _, err = cli("--root", root, "schemas", "import", "--vendor", "--schema-cache", tmp_path, "-")
    assert code == 2 and "not allowed with argument" in err
    code, _, err = cli("--root", root, "schemas", "import", "--lock", root / "crds.lock.yaml", "-")
    assert code == 2 and err.startswith("error: --lock only applies with --vendor")
    code, _, err = cli("--root", tmp_path / "elsewhere", "schemas", "check")
    assert code == 2 and "crds.lock.yaml: file not found" in err


def test_run_import_into_the_cache_prints_one_line_per_schema(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "widget.yaml").write_text(WIDGET_YAML)
    out = io.StringIO()
    assert (
        schemas_cmd.run_import([str(tmp_path / "widget.yaml")], tmp_path / "cache", out, io.StringIO()) == 0
    )
    path = tmp_path / "cache" / "crds" / "example.com" / "widget_v1.json"
    assert out.getvalue().splitlines() == [
        f"imported example.com/v1 Widget -> {path}",
        f"1 schema imported into {tmp_path / 'cache'}",
    ]
    monkeypatch.setenv("BETCYCLE_SCHEMA_CACHE", str(tmp_path / "env-cache"))
    schemas_cmd.run_import(["-"], None, io.StringIO(), io.StringIO(WIDGET_YAML))
    assert (tmp_path / "env-cache" / "crds" / "example.com" / "widget_v1.json").is_file()


def test_run_fetch_takes_an_opener(tmp_path: Path) -> None:
    write_lock(tmp_path / "crds.lock.yaml", [("widget", URL_W, BODIES[URL_W])])
    out = io.StringIO()
    assert schemas_cmd.run_fetch(tmp_path, None, out, opener=fake_opener(BODIES)) == 0
    assert (tmp_path / "schemas" / "crds" / WIDGET_FILE).is_file()
    assert "not vendored yet" not in out.getvalue()

"""Render can't be steered outside the repository, writes all or nothing, keeps modes, and holds a lock
(issue 8, items 1 and 4)."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from betcycle.model import safepaths
from betcycle.render import transaction
from tests.conftest import git, read_only_even_for_root

DEV = "environments/dev/manifests/hello"
STAGING = "environments/staging/manifests/hello"


def tree(root: Path) -> dict[str, str]:
    """Every file, folder and link under root: path -> content hash, "dir" or "link -> target"."""
    out: dict[str, str] = {}
    for folder, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            p = Path(folder) / name
            rel = p.relative_to(root).as_posix()
            if p.is_symlink():
                out[rel] = f"link -> {os.readlink(p)}"
            elif p.is_dir():
                out[rel] = "dir"
            elif name != ".betcycle.lock":
                out[rel] = hashlib.sha256(p.read_bytes()).hexdigest() + oct(p.stat().st_mode)
    return out


def _retag(example: Path, *envs: str, tag: str = "9.9.9") -> None:
    """Change every selected environment's output: a new image tag."""
    for env in envs:
        (example / f"environments/{env}/apps/hello.yaml").write_text(f'image:\n  tag: "{tag}"\n')


def _template(example: Path, text: str) -> str:
    rel = "charts/service/templates/evil.yaml.j2"
    (example / rel).write_text(text)
    return rel


# ---- output paths are made of checked names ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "name", "message"),
    [
        (
            "../../../../../x",
            "hello",
            "rendered object has kind '../../../../../x', which is not a Kubernetes kind",
        ),
        (
            "ConfigMap",
            "a/../../../../../../y",
            "rendered ConfigMap has metadata.name 'a/../../../../../../y'",
        ),
        (
            "ConfigMap",
            "a/b",
            "rendered ConfigMap has metadata.name 'a/b', which is not a valid Kubernetes name",
        ),
        ("ConfigMap", "..", "rendered ConfigMap has metadata.name '..'"),
        ("ConfigMap", "Upper", "rendered ConfigMap has metadata.name 'Upper'"),
        ("Config/Map", "x", "rendered object has kind 'Config/Map'"),
    ],
)
def test_an_unsafe_kind_or_name_fails_naming_the_template_and_writes_nothing(
    example: Path, cli, tmp_path: Path, kind: str, name: str, message: str
) -> None:
    rel = _template(example, f'apiVersion: v1\nkind: "{kind}"\nmetadata:\n  name: "{name}"\n')
    _retag(example, "dev")
    before = tree(tmp_path)
    code, out, err = cli("--root", example, "render")
    assert code == 2
    assert err.startswith(f"error: {rel}: {message}")
    assert "(rendering dev/hello, object at output line 1)\n  hint: " in err
    assert err.endswith("input error(s); nothing was written\n") and out == ""
    after = tree(tmp_path)
    assert after == before, "nothing written or deleted anywhere around the repository"


def test_an_unsafe_namespace_is_refused(example: Path, cli) -> None:
    rel = _template(
        example, 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  namespace: "../kube-system"\n'
    )
    code, _, err = cli("--root", example, "render", "--env", "dev")
    assert code == 2
    assert err.startswith(
        f"error: {rel}: rendered ConfigMap 'x' has metadata.namespace '../kube-system', which is not a valid "
        "namespace"
    )


def test_object_file_names() -> None:
    assert safepaths.object_file_name("Deployment", "hello") == "deployment-hello.yaml"
    assert safepaths.object_file_name("ServiceMonitor", "a.b-c", "ns-1") == "servicemonitor-a.b-c.yaml"
    for kind, name in [("", "x"), ("Kind", ""), ("Kind", "x."), ("Kind", ".x"), ("K\nind", "x"), (5, "x")]:
        with pytest.raises(safepaths.UnsafeName):
            safepaths.object_file_name(kind, name)
    with pytest.raises(safepaths.UnsafeName, match="gives a file name of 312 characters"):
        safepaths.object_file_name("A" * 63, ".".join(["b" * 60] * 4))


# ---- symbolic links --------------------------------------------------------------------------------------


def _move_out(example: Path, tmp_path: Path, rel: str) -> Path:
    """Move `rel` out of the repository and leave a symlink to it in its place; returns the target."""
    target = tmp_path / "outside" / Path(rel).name
    target.parent.mkdir(exist_ok=True)
    (example / rel).rename(target)
    (example / rel).symlink_to(target)
    return target


@pytest.mark.parametrize(
    ("rel", "message"),
    [
        ("environments/dev/manifests", "is a symbolic link (to {target}); betcycle writes and"),
        (DEV, "is a symbolic link (to {target}); betcycle writes and"),
        (f"{DEV}/deployment-hello.yaml", "is a symbolic link (to {target}); betcycle writes and"),
        # the environment's own files are inputs: read through a link outside the repository, refused as such
        ("environments/dev", "is a symbolic link to {target}, outside the repository; render reads only"),
    ],
)
def test_a_symlink_in_the_manifests_path_is_refused_and_its_target_untouched(
    example: Path, cli, tmp_path: Path, rel: str, message: str
) -> None:
    target = _move_out(example, tmp_path, rel)
    if target.is_dir():  # a stale generated file in the target would be deleted if the link were followed
        stale = next(target.rglob("deployment-hello.yaml")).with_name("configmap-stale.yaml")
        stale.write_text("# Generated by betcycle render - do not edit\napiVersion: v1\n")
    _retag(example, "dev", "staging")
    before = tree(tmp_path)
    for args in (["render"], ["render", "--check"]):
        code, _, err = cli("--root", example, *args)
        assert code == 2, err
        assert err.startswith(f"error: {rel}: " + message.format(target=target))
        assert err.endswith("1 input error(s); nothing was written\n")
        assert tree(tmp_path) == before, "neither the link's target nor another environment was touched"


def test_a_symlink_into_the_repository_inside_manifests_is_refused_too(example: Path, cli) -> None:
    (example / DEV / "extra.yaml").symlink_to(example / "betcycle.yaml")
    code, _, err = cli("--root", example, "render")
    assert code == 2 and err.startswith(f"error: {DEV}/extra.yaml: is a symbolic link")


def test_a_fifo_in_the_manifests_folder_is_refused(example: Path, cli) -> None:
    os.mkfifo(example / DEV / "pipe.yaml")
    code, _, err = cli("--root", example, "render", "--check")
    assert code == 2 and err.startswith(f"error: {DEV}/pipe.yaml: is not a regular file")


@pytest.mark.parametrize(
    "rel",
    [
        "charts/service/templates/service.yaml.j2",  # a rendered template
        "charts/service/templates",  # the templates folder (includes resolve inside it)
        "charts/service/values.yaml",
        "environments/dev/apps/hello.yaml",
    ],
)
def test_an_input_linked_outside_the_repository_is_refused(
    example: Path, cli, tmp_path: Path, rel: str
) -> None:
    target = _move_out(example, tmp_path, rel)
    before = tree(tmp_path)
    code, _, err = cli("--root", example, "render")
    assert code == 2, err
    assert err.startswith(f"error: {rel}: is a symbolic link to {target}, outside the repository")
    assert tree(tmp_path) == before


def test_an_include_linked_outside_the_repository_is_refused(example: Path, cli, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("hunter2\n")
    (example / "charts/service/templates/_secret.j2").symlink_to(secret)
    _template(
        example,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: s}\ndata: {s: '{% include '_secret.j2' %}'}\n",
    )
    code, out, err = cli("--root", example, "render")
    assert code == 2
    assert err.startswith("error: charts/service/templates/_secret.j2: is a symbolic link to")
    assert "hunter2" not in out + err + "".join(p.read_text() for p in example.rglob("*.yaml") if p.is_file())


def test_a_link_that_stays_inside_the_repository_is_fine_for_inputs(example: Path, cli) -> None:
    helper = example / "charts/service/templates/_labels.j2"
    helper.write_text("{{ app.name }}")
    (example / "charts/service/templates/_alias.j2").symlink_to("_labels.j2")
    assert cli("--root", example, "render")[0] == 0


# ---- all or nothing ---------------------------------------------------------------------------------------


def test_a_read_only_environment_stops_the_render_before_any_file_changes(
    example: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    _retag(example, "dev", "staging")
    before = tree(example)
    read_only_even_for_root(monkeypatch, example / STAGING)
    try:
        code, _, err = cli("--root", example, "render")
    finally:
        (example / STAGING).chmod(0o755)
    assert code == 2
    assert err.startswith(f"error: {STAGING}: folder is not writable")
    assert tree(example) == before


def test_a_write_failing_in_the_second_environment_puts_the_first_back(
    example: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    _retag(example, "dev", "staging")
    (example / DEV / "service-hello.yaml").unlink()  # one new file and one folder to undo as well
    (example / DEV / "extra.yaml").write_text("# Generated by betcycle render\napiVersion: v1\n")
    os.chmod(example / DEV / "deployment-hello.yaml", 0o640)
    before = tree(example)
    real = transaction.atomic_write
    state = {"armed": True}

    def writer(path: Path, data: str | bytes, *, mode: int | None = None) -> None:
        if state["armed"] and STAGING in path.as_posix():
            state["armed"] = False
            raise PermissionError(13, "Permission denied", str(path))
        real(path, data, mode=mode)

    monkeypatch.setattr(transaction, "atomic_write", writer)
    code, out, err = cli("--root", example, "render")
    assert code == 2
    assert err.startswith(
        f"error: {STAGING}/deployment-hello.yaml: cannot write: Permission denied; nothing was changed (the "
    )
    assert "files already written were put back)" in err
    assert out == ""
    assert tree(example) == before, "every file (content and mode), the new one and the deleted one, is back"


def test_ctrl_c_in_the_write_phase_puts_every_file_back_and_says_so(
    example: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    _retag(example, "dev", "staging", "prod")
    before = tree(example)
    real = transaction.atomic_write
    count = {"n": 0}

    def writer(path: Path, data: str | bytes, *, mode: int | None = None) -> None:
        count["n"] += 1
        if count["n"] == 4:
            raise KeyboardInterrupt
        real(path, data, mode=mode)

    monkeypatch.setattr(transaction, "atomic_write", writer)
    code, out, err = cli("--root", example, "render")
    assert code == 130
    assert err == "interrupted: nothing was changed (the 3 files already written were put back)\n"
    assert out == ""
    assert tree(example) == before


def test_ctrl_c_before_the_write_phase_says_nothing_was_written(
    example: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    from betcycle.render import engine as render

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(render, "render", interrupted)
    before = tree(example)
    assert cli("--root", example, "render") == (130, "", "interrupted: nothing was written\n")
    assert tree(example) == before


# ---- modes ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("umask", "expected"), [(0o022, 0o644), (0o027, 0o640)])
def test_files_keep_their_mode_and_new_files_get_the_umask_default(
    example: Path, cli, umask: int, expected: int
) -> None:
    _retag(example, "dev")
    kept = example / DEV / "deployment-hello.yaml"
    kept.chmod(0o664)
    new = example / DEV / "service-hello.yaml"
    new.unlink()
    old = os.umask(umask)
    try:
        assert cli("--root", example, "render")[0] == 0
    finally:
        os.umask(old)
    assert "9.9.9" in kept.read_text()
    assert stat.S_IMODE(kept.stat().st_mode) == 0o664
    assert stat.S_IMODE(new.stat().st_mode) == expected
    assert not list(example.rglob(".*.tmp")), "no temporary file is left behind"


# ---- the lock -------------------------------------------------------------------------------------------

_HOLD = """
import sys
from pathlib import Path
from betcycle.render import transaction
with transaction.lock(Path(sys.argv[1]), "betcycle render"):
    print("held", flush=True)
    sys.stdin.read()
"""


def test_a_render_while_another_holds_the_lock_fails_with_one_line_naming_it(
    example: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    _retag(example, "dev")
    before = tree(example)
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(example)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        monkeypatch.setenv("BETCYCLE_LOCK_TIMEOUT", "0.3")
        code, out, err = cli("--root", example, "render")
    finally:
        holder.communicate("")
    assert code == 2 and out == ""
    last = err.splitlines()[-1]
    assert last.startswith(
        f"error: another betcycle run is writing this repository (pid {holder.pid}, betcycle render, since "
    )
    assert last.endswith("); gave up after 0.3 s for .betcycle.lock")
    assert tree(example) == before
    assert cli("--root", example, "render")[0] == 0, "the lock is free once its holder exits"


def test_a_second_render_waits_for_the_first(example: Path, cli) -> None:
    _retag(example, "dev")
    taken, release = threading.Event(), threading.Event()

    def hold() -> None:
        with transaction.lock(example, "betcycle render"):
            taken.set()
            release.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    taken.wait(10)
    threading.Timer(0.3, release.set).start()
    start = time.monotonic()
    code, out, err = cli("--root", example, "render")
    thread.join()
    assert code == 0, err
    assert time.monotonic() - start >= 0.25
    assert err.startswith("waiting for another betcycle run to finish (pid ")
    assert "1 updated" in out.splitlines()[-1] or "updated" in out


def test_two_renders_at_once_both_succeed(example: Path) -> None:
    for tag in ("1.0.0", "2.0.0"):
        _retag(example, "dev", "staging", "prod", tag=tag)
        (example / DEV).joinpath("configmap-old.yaml").write_text("# Generated by betcycle render\n")
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "betcycle", "--root", str(example), "render"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        results = [p.communicate(timeout=60) for p in procs]
        for p, (_, err) in zip(procs, results, strict=True):
            assert p.returncode == 0, err
            assert "No such file" not in err
        assert not (example / DEV / "configmap-old.yaml").exists()


def test_the_lock_lives_in_dot_git_in_a_git_repository(repo_git: Path, cli) -> None:
    _retag(repo_git, "dev")
    assert cli("--root", repo_git, "render")[0] == 0
    assert (repo_git / ".git/betcycle.lock").is_file()
    assert git(repo_git, "status", "--porcelain", "--", ".betcycle.lock") == ""


def test_a_symlinked_lock_file_is_refused(example: Path, cli, tmp_path: Path) -> None:
    (example / ".betcycle.lock").unlink(missing_ok=True)
    (example / ".betcycle.lock").symlink_to(tmp_path / "elsewhere")
    code, _, err = cli("--root", example, "render")
    assert code == 2 and err.startswith("error: .betcycle.lock: the lock file is a symbolic link")
    assert not (tmp_path / "elsewhere").exists()


# ---- paths read from git ----------------------------------------------------------------------------------


def test_a_committed_file_name_with_a_line_break_cannot_steer_git_cat_file(repo_git: Path, cli) -> None:
    """A name like "a\\nHEAD:secret" would make `git cat-file --batch` answer with another object's text."""
    (repo_git / "secret.txt").write_text("hunter2\n")
    evil = repo_git / DEV / "x\nHEAD:secret.txt\n.yaml"
    evil.write_text("# Generated by betcycle render\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    git(repo_git, "add", "-A")
    git(repo_git, "commit", "-q", "-m", "evil")
    (repo_git / "environments/dev/apps/hello.yaml").write_text('image:\n  tag: "9.9.9"\n')
    code, out, err = cli("--root", repo_git, "diff", "--base", "HEAD", "--full")
    assert code == 2
    assert err.startswith(
        "error: 'environments/dev/manifests/hello/x\\nHEAD:secret.txt\\n.yaml': a file name"
    )
    assert "hunter2" not in out + err


def test_diff_reports_a_linked_template_once_and_never_its_target(
    repo_git: Path, cli, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("hunter2\n")
    (repo_git / "charts/service/templates/_x.j2").symlink_to(secret)
    code, out, err = cli("--root", repo_git, "diff", "--base", "HEAD")
    assert code == 2
    assert err.count("is a symbolic link to") == 1, "one error, not one per environment"
    assert err.endswith("1 input error(s)\n") and "hunter2" not in out + err


@pytest.mark.parametrize("kind", ["fifo", "folder", "socket"])
def test_something_else_where_a_rendered_file_goes_is_refused_without_blocking(
    example: Path, cli, kind: str
) -> None:
    """A rendered file's path is opened without following links and without blocking (a FIFO there would
    wait for a writer forever), then refused unless it is a regular file."""
    rel = f"{DEV}/deployment-hello.yaml"
    (example / rel).unlink()
    if kind == "fifo":
        os.mkfifo(example / rel)
    elif kind == "folder":
        (example / rel).mkdir()
    else:
        import socket

        with socket.socket(socket.AF_UNIX) as sock:  # a relative name: a socket's path may be short only
            cwd = os.getcwd()
            os.chdir(example / DEV)
            try:
                sock.bind("deployment-hello.yaml")
            finally:
                os.chdir(cwd)
    for args in (["render", "--check"], ["render"]):
        code, _, err = cli("--root", example, *args)
        assert code == 2, err
        expected = "is a folder where the render writes" if kind == "folder" else "is not a regular file"
        assert err.startswith(f"error: {rel}: {expected}"), err


def test_a_rendered_file_saved_with_crlf_line_ends_reads_as_up_to_date(example: Path, cli) -> None:
    path = example / DEV / "deployment-hello.yaml"
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    code, out, err = cli("--root", example, "render", "--check")
    assert code == 0 and out.startswith("render is up to date"), (out, err)

"""limits.py and sandbox.py: hostile input fails with one exit-2 line naming the file (and line), fast."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import jinja2
import pytest

from betcycle.errors import UserError
from betcycle.model import limits
from betcycle.model.yamlio import HEADER_MARK, load_all, load_all_with_lines, load_with_lines, read_text
from betcycle.render import sandbox

DEV = "environments/dev/apps/hello.yaml"
TEMPLATES = "charts/service/templates"


def _first_error(err: str) -> str:
    return err.splitlines()[0]


def billion_laughs(levels: int = 9) -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        prev, cur = chr(96 + i), chr(97 + i)
        lines.append(f"{cur}: &{cur} [{', '.join([f'*{prev}'] * 9)}]")
    lines.append(f"config: {{x: *{chr(96 + levels)}}}")
    return "\n".join(lines) + "\n"


# -- files ----------------------------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_as_values_file_is_refused_without_blocking(example: Path, cli) -> None:
    (example / DEV).unlink()
    os.mkfifo(example / DEV)  # nobody writes to it: opening it for reading would block forever
    code, _, err = cli("--root", example, "render", "--check")
    assert code == 2
    assert (
        _first_error(err) == f"error: {DEV}: is a FIFO (named pipe), not a regular file; refusing to read it"
    )


def test_a_device_is_refused(tmp_path: Path) -> None:
    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero")
    with pytest.raises(UserError, match="is a device, not a regular file"):
        read_text(Path("/dev/zero"), "/dev/zero")


def test_file_size_limit_from_betcycle_yaml(example: Path, cli) -> None:
    (example / "betcycle.yaml").write_text(
        "repoURL: https://github.com/example-org/platform.git\nlimits:\n  fileBytes: 2000\n"
    )
    (example / DEV).write_text(
        'image:\n  tag: "1.0.0"\nconfig:\n' + "".join(f"  K{i}: v\n" for i in range(400))
    )
    code, _, err = cli("--root", example, "render", "--check")
    assert code == 2
    assert _first_error(err).startswith(f"error: {DEV}: file is ")
    assert "over the 2 kB limit for an input file" in err
    assert "limits.fileBytes" in err


def test_limits_in_betcycle_yaml_are_schema_checked(example: Path, cli) -> None:
    (example / "betcycle.yaml").write_text(
        "repoURL: https://github.com/example-org/platform.git\nlimits:\n  depth: 0\n  fileByte: 3\n"
    )
    code, _, err = cli("--root", example, "render", "--check")
    assert code == 2
    assert "error: betcycle.yaml:3: limits.depth: 0 is less than the minimum of 1" in err
    assert "unknown key 'limits.fileByte'" in err


def test_non_utf8_values_file_names_the_line(example: Path, cli) -> None:
    (example / DEV).write_bytes(b'image:\n  tag: "1.0.0"\nconfig:\n  A: "caf\xe9"\n')
    code, _, err = cli("--root", example, "render", "--check")
    assert code == 2
    assert _first_error(err) == f"error: {DEV}:4: not UTF-8 text (invalid continuation byte: byte 0xe9)"


def test_non_utf8_manifest_and_stdin_name_the_line(tmp_path: Path, cli, monkeypatch) -> None:
    bad = b'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  a: "\xff"\n'
    (tmp_path / "cm.yaml").write_bytes(bad)
    code, _, err = cli("--root", tmp_path, "validate", tmp_path / "cm.yaml")
    assert code == 2 and f"{tmp_path / 'cm.yaml'}:6: not UTF-8 text" in err

    class Stdin:
        buffer = __import__("io").BytesIO(bad)

    monkeypatch.setattr("sys.stdin", Stdin())
    code, _, err = cli("--root", tmp_path, "validate", "-")
    assert code == 2 and _first_error(err).startswith("error: <stdin>:6: not UTF-8 text")


# -- YAML documents -------------------------------------------------------------------------------------


def test_billion_laughs_in_a_values_file_fails_naming_the_file(example: Path, cli) -> None:
    (example / DEV).write_text(billion_laughs())
    code, _, err = cli("--root", example, "render", "--check")
    assert code == 2
    assert _first_error(err).startswith(f"error: {DEV}:")
    assert "alias" in _first_error(err)


def test_alias_expansion_is_capped_even_with_many_aliases_allowed() -> None:
    # the node walk stops at aliasExpansion x text size: it never expands the bomb (10**9 nodes)
    with limits.scope(limits.Limits(aliases=10**9)), pytest.raises(UserError) as e:
        load_with_lines(billion_laughs(), "v.yaml")
    assert e.value.message == "aliases expand this document to over 10× its size (an alias bomb?)"
    assert e.value.path == "v.yaml"


def test_a_few_aliases_and_merge_keys_are_fine() -> None:
    text = "base: &b {cpu: 1, memory: 2}\nweb:\n  <<: *b\n  cpu: 3\nworker: *b\n"
    data, _ = load_with_lines(text, "v.yaml")
    assert data["web"] == {"cpu": 3, "memory": 2} and data["worker"] == {"cpu": 1, "memory": 2}


def test_alias_count_limit(example: Path, cli) -> None:
    (example / "betcycle.yaml").write_text(
        "repoURL: https://github.com/example-org/platform.git\nlimits:\n  aliases: 1\n"
    )
    (example / DEV).write_text('image: &i {tag: "1.0.0"}\nx: *i\ny: *i\n')
    code, _, err = cli("--root", example, "render", "--check")
    assert code == 2
    assert _first_error(err) == f"error: {DEV}:1: more than 1 alias dereferences (*name) in one document"


def test_recursive_alias() -> None:
    with pytest.raises(UserError, match="recursive alias") as e:
        load_all("a: &a [1, *a]\n", "x.yaml")
    assert e.value.line == 1


def test_nesting_300_deep_names_the_line(example: Path, cli) -> None:
    text = "config:\n" + "".join("  " * (i + 1) + "a:\n" for i in range(300)) + "  " * 301 + "b: 1\n"
    (example / DEV).write_text(text)
    code, _, err = cli("--root", example, "render", "--check")
    assert code == 2
    assert _first_error(err) == f"error: {DEV}:101: nested more than 100 levels deep"


@pytest.mark.parametrize("loader", [load_all, load_with_lines, load_all_with_lines])
def test_flow_nesting_that_would_crash_libyaml_is_refused_first(loader: Any) -> None:
    # 100,000 levels: libyaml's C composer recurses and takes the interpreter down (segfault)
    with pytest.raises(UserError) as e:
        loader("a: " + "[" * 100_000 + "]" * 100_000 + "\n", "deep.yaml")
    assert (e.value.path, e.value.line, e.value.message) == (
        "deep.yaml",
        1,
        "nested more than 100 levels deep",
    )


def test_a_deeply_nested_betcycle_yaml_is_an_error_not_a_crash(example: Path, cli) -> None:
    # read first for its limits: that read is bounded like every other
    (example / "betcycle.yaml").write_text("repoURL: " + "[" * 100_000 + "\n")
    code, _, err = cli("--root", example, "render", "--check")
    assert code == 2
    assert _first_error(err) == "error: betcycle.yaml:1: nested more than 100 levels deep"


def test_depth_limit_from_betcycle_yaml(example: Path, cli) -> None:
    (example / "betcycle.yaml").write_text(
        "repoURL: https://github.com/example-org/platform.git\nlimits:\n  depth: 3\n"
    )
    (example / DEV).write_text('image:\n  tag: "1.0.0"\nconfig:\n  a:\n    b: {c: 1}\n')
    code, _, err = cli("--root", example, "render", "--check")
    assert code == 2
    assert _first_error(err) == f"error: {DEV}:5: nested more than 3 levels deep"


@pytest.mark.parametrize(
    ("text", "line", "message", "hint"),
    [
        (
            "image:\n  tag: 2024-01-01\n",
            2,
            "2024-01-01 is read as a date (YAML 1.1), not as text",
            'quote it: "2024-01-01"',
        ),
        (
            'image:\n  tag: "1"\nconfig:\n  8080: x\n',
            4,
            "map key '8080' is read as a number, not a string",
            'quote the key: "8080":',
        ),
        (
            'image:\n  tag: "1"\nconfig:\n  on: x\n',
            4,
            "map key 'on' is read as a boolean, not a string",
            'quote the key: "on":',
        ),
        ("config:\n  ~: x\n", 2, "map key '~' is read as null, not a string", 'quote the key: "~":'),
        ("config:\n  ? [a]\n  : x\n", 2, "a map key must be a string, not a list or map", None),
        ("config:\n  A: !!binary aGVsbG8=\n", 2, "unsupported YAML type !!binary", None),
        ("config: !!set {a, b}\n", 1, "unsupported YAML type !!set", None),
        ("config:\n  A: !custom x\n", 2, "unsupported YAML type !custom", None),
        ("replicas: " + "9" * 5000 + "\n", 1, "number with 5000 digits", "quote it if it is text"),
    ],
)
def test_values_json_cannot_hold_are_exit_2_with_the_line(
    example: Path, cli, text: str, line: int, message: str, hint: str | None
) -> None:
    (example / DEV).write_text(text)
    code, _, err = cli("--root", example, "render", "--check")
    assert code == 2, err
    assert _first_error(err) == f"error: {DEV}:{line}: {message}"
    if hint:
        assert f"  hint: {hint}" in err
    assert "this is a bug" not in err


def test_policy_files_may_keep_unquoted_dates_and_keys_which_they_convert() -> None:
    # waivers are documented with `expires: 2025-09-30`; policy_load turns dates and keys into strings
    data, _ = load_with_lines("expires: 2025-09-30\n8080: x\n", "w.yaml", strict_types=False)
    assert str(data["expires"]) == "2025-09-30" and data[8080] == "x"
    with pytest.raises(UserError, match="unsupported YAML type !!binary"):
        load_with_lines("a: !!binary aGVsbG8=\n", "w.yaml", strict_types=False)
    with pytest.raises(UserError, match="read as a date"):
        load_with_lines("expires: 2025-09-30\n", "w.yaml")


def test_generated_manifest_with_int_key_or_alias_leaves_the_fast_path(tmp_path: Path, cli) -> None:
    head = f"{HEADER_MARK} - do not edit\n"
    (tmp_path / "a.yaml").write_text(
        head + "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  8080: x\n"
    )
    code, _, err = cli("--root", tmp_path, "validate", tmp_path / "a.yaml")
    assert code == 2 and "a.yaml:7: map key '8080' is read as a number" in err
    bomb = (
        head
        + "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n"
        + billion_laughs().replace("config", "data")
    )
    (tmp_path / "a.yaml").write_text(bomb)
    code, _, err = cli("--root", tmp_path, "validate", tmp_path / "a.yaml")
    assert code == 2 and "alias" in _first_error(err)


def test_quoted_values_still_pass(example: Path, cli) -> None:
    (example / DEV).write_text('image:\n  tag: "2024-01-01"\nconfig:\n  "8080": x\n  "on": y\n')
    code, _, err = cli("--root", example, "render")
    assert code == 0, err


# -- templates ------------------------------------------------------------------------------------------


def _render(source: str, **overrides: Any) -> str:
    env = sandbox.BoundedEnvironment(undefined=jinja2.StrictUndefined)
    budget = sandbox.Budget(limits.Limits(**overrides), "dev/hello")
    return budget.render(env.from_string(source), {"items": list(range(10))})


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
            "rendering dev/hello took over 50,000 steps",
        ),
        (
            "{% macro f(n) %}{% if n %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}{% endmacro %}{{ f(40) }}",
            "rendering dev/hello took over 50,000 steps",
        ),
        ('{{ "x" * 10**9 }}', "a value of over 20,000,000 characters"),
        ("{{ [1, 2] * 10**9 }}", "a value of over 20,000,000 characters"),
        ("{{ 10 ** (10 ** 8) }}", "10 ** 100000000 is too big a number to compute"),
        ("{{ 'x'.center(10**9) }}", "center() with a width or count over 20,000,000"),
        ("{{ 'x' | center(1000000000) }}", "filter center() with a width or count over 20,000,000"),
        ("{{ 'x' | indent(1000000000) }}", "filter indent() with a width or count over 20,000,000"),
        ("{{ [1] | slice(1000000000) | list }}", "filter slice() with a width or count over 20,000,000"),
        ('{{ "%1000000000s" % "x" }}', "%() with a width or count over 20,000,000"),
        ('{{ "{:>1000000000}".format("x") }}', "format() with a width or count over 20,000,000"),
        ('{{ "{:>{w}}".format("x", w=10**9) }}', "format() with a width or count over 20,000,000"),
        ('{{ "%s" | format("x") | center(10**9) }}', "filter center() with a width or count over"),
        (
            '{% macro f(n, s) %}{% if n %}{{ f(n-1, s ~ s) }}{% endif %}{% endmacro %}{{ f(60, "xx") }}',
            "a value of over 20,000,000 characters",
        ),
        (
            '{% macro f(n, s) %}{% if n %}{{ f(n-1, s + s) }}{% endif %}{% endmacro %}{{ f(60, "xx") }}',
            "a value of over 20,000,000 characters",
        ),
        (
            '{% macro f(n, s) %}{% if n %}{{ f(n-1, s | replace("x", "xx")) }}{% endif %}{% endmacro %}'
            '{{ f(60, "xx") }}',
            "a value of over 20,000,000 characters",
        ),
        ('{% for i in range(100000) %}{{ "y" * 10000 }}{% endfor %}', "output of over 20,000,000 characters"),
    ],
)
def test_templates_stop_at_the_limits(source: str, message: str) -> None:
    with pytest.raises(sandbox.TemplateLimitError) as e:
        _render(source, templateSteps=50_000)  # the default (1,000,000) is the end-to-end test's
    assert message in str(e.value)


def test_constant_expressions_are_not_folded_past_the_limits() -> None:
    # Jinja folds constant filter calls while compiling, before any render budget exists: the check must
    # refuse there too (folding then gives up), or the compiled code would hold a 1 GB constant
    env = sandbox.BoundedEnvironment()
    source = "{{ 'x' | center(1000000000) }}"
    assert len(env.compile(source, raw=True)) < 5000
    with pytest.raises(sandbox.TemplateLimitError, match="filter center"):
        sandbox.Budget(limits.DEFAULTS, "t").render(env.from_string(source), {})


def test_step_and_time_limits_are_configurable() -> None:
    assert _render("{% for i in items %}{{ i }}{% endfor %}", templateSteps=11) == "0123456789"
    with pytest.raises(sandbox.TemplateLimitError, match="over 10 steps"):
        _render("{% for i in items %}{{ i }}{% endfor %}{{ range(1) | list }}", templateSteps=10)
    with pytest.raises(sandbox.TemplateLimitError, match=r"took over 1e-09 s \(limits.renderSeconds"):
        _render("{% for i in range(1000) %}{% endfor %}", renderSeconds=1e-9)


def test_ordinary_templates_render_as_before() -> None:
    source = (
        "{% for i in items if i is even %}{{ loop.index }}:{{ i }}/{{ loop.length }} {% endfor %}"
        "{{ 'a' ~ 'b' }} {{ 'x' * 3 }} {{ 2 ** 10 }} {{ '%05d' % 42 }} {{ '{:>4}'.format('r') }} "
        "{{ 'k' | center(5) }}|{{ items | map('string') | join(',') }}|{{ [1, 2] + [3] }}"
    )
    assert _render(source) == (
        "1:0/5 2:2/5 3:4/5 4:6/5 5:8/5 ab xxx 1024 00042    r   k  |0,1,2,3,4,5,6,7,8,9|[1, 2, 3]"
    )


def test_a_runaway_chart_template_fails_render_with_its_line(example: Path, cli) -> None:
    (example / TEMPLATES / "evil.yaml.j2").write_text(
        "# a loop nobody meant\n{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}\n"
    )
    code, _, err = cli("--root", example, "render", "--check", "--env", "dev")
    assert code == 2
    assert _first_error(err).startswith(
        f"error: {TEMPLATES}/evil.yaml.j2:2: template error: rendering dev/hello"
    )
    assert "limits.templateSteps in betcycle.yaml" in err


def test_output_limit_from_betcycle_yaml(example: Path, cli) -> None:
    (example / "betcycle.yaml").write_text(
        "repoURL: https://github.com/example-org/platform.git\nlimits:\n  outputBytes: 1000\n"
    )
    code, _, err = cli("--root", example, "render", "--check", "--env", "dev")
    assert code == 2
    assert "output of over 1,000 characters while rendering dev/hello" in err


# -- git history ----------------------------------------------------------------------------------------


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


def test_rollback_names_file_line_and_revision_of_a_broken_version(repo_git: Path, cli) -> None:
    prod = "environments/prod/apps/hello.yaml"
    good = (repo_git / prod).read_text()
    (repo_git / prod).write_text('image:\n  tag: &t "0.9.0"\n  other: &t 2\n')  # ruamel only warns
    _git(repo_git, "commit", "-qam", "reused anchor")
    (repo_git / prod).write_text(good)
    _git(repo_git, "commit", "-qam", "fixed")
    sha = subprocess.run(
        ["git", "log", "-1", "--format=%H", "HEAD~1"],
        cwd=repo_git,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    code, out, err = cli("--root", repo_git, "rollback", "hello", "--env", "prod", "--to", "0.9.0")
    assert code == 2
    assert f"note: {prod}:3 at {sha[:12]} is not valid YAML; skipped (found duplicate anchor 't')\n" in out
    assert "^ (line" not in out + err


def test_read_bytes_reads_a_file_whole_in_one_read_or_more(tmp_path: Path) -> None:
    from betcycle.model import limits as limits_mod

    for size in (0, 1, 4096, 3 * (1 << 20) + 7):
        path = tmp_path / f"f{size}"
        data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
        path.write_bytes(data)
        assert limits_mod.read_bytes(path, path.name) == data
        assert limits_mod.read_bytes(str(path), path.name) == data

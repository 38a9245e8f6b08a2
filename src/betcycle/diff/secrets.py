"""Secret masking for diffs: every place a secret travels in a rendered object is replaced by a keyed digest.

A diff is posted as a public pull-request comment, so nothing in it may let a reader recover a secret. An
unkeyed hash does not qualify (a weak password is guessed back from `sha256(value)` in seconds), so a masked
value is shown as an HMAC-SHA256 under a random key that one `Masker` draws once (`secrets.token_bytes`) and
keeps in memory only: both sides of one diff share the key, so equal values give equal digests and a change
shows as a different digest, but digests from two runs are not comparable and the output holds nothing to
brute-force against.

What is masked (issue 8, "secret masking covers every place a secret travels"):

- Secret `data`/`stringData` (every value), and in objects of other kinds named `*Secret` (ExternalSecret,
  ClusterExternalSecret, PushSecret, SealedSecret…) every `template`'s `data`/`stringData` and the
  `literal` of its `templateFrom` entries;
- ConfigMap `data`/`binaryData` keys, `{name, value}` items (container `env`, Argo CD helm parameters) and
  mapping keys anywhere whose name says secret (`DB_PASSWORD`, `auth.apiKey`, `clientSecret`…);
- the value after a flag such as `--password` in any list of strings (container `args`, `command`);
- inside any string: the password of a URL (`postgres://app:•@db`), `password=`/`token=`/`api_key=`…
  pairs (`--password=x`, `a=b;password=x`, `password: x` in an embedded config file, `"password": "x"`),
  `Bearer`/`Basic` credentials and the body of a PEM private key, only the secret part, so the reviewer
  still sees what around it changed;
- objects nested anywhere (`kind: List` items, an object copied into a field) get the same rules, and a
  string holding a JSON copy of an object (`kubectl.kubernetes.io/last-applied-configuration`, any other
  annotation or value) is parsed, masked inside and written back compactly; a multi-line string holding a
  YAML copy of a Secret-like object is masked whole.

Pure functions over copies: the input documents are never changed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from typing import Any

#: names of env vars, helm parameters and ConfigMap keys whose values are masked (anywhere in the name)
SENSITIVE = re.compile(r"(?i)(pass(word)?|secret|token|api[_-]?key|private[_-]?key|credential)")

_WORDS = (
    r"pass(?:word|wd|phrase)?|pwd|token|secret|api[_-]?key|access[_-]?key|secret[_-]?key|"
    r"private[_-]?key|client[_-]?secret|credentials?"
)
#: a mapping key anywhere in an object whose (last) word says secret: dbPassword, DB_TOKEN, auth.apiKey;
#: not secretName, tokenTTL or imagePullSecrets, which name where a secret is, not the secret
_KEY = re.compile(rf"(?i)(?:{_WORDS})$")
#: a command-line flag whose next argument is a secret: --password, -token, --db-api-key
_FLAG = re.compile(rf"(?i)-{{1,2}}[a-z0-9_.-]*?(?:{_WORDS})")

_TOKEN = "<redacted hmac:{}>"
#: `scheme://user:` of `scheme://user:password@host` (scheme length bounded for speed); the password runs to
#: the last @ of the word, so one with an unencoded / or # is still masked whole (see Masker._urls)
_URL = re.compile(r"(?i)(?<![a-z0-9+.-])[a-z][a-z0-9+.-]{0,31}://[^\s:/?#@]*:")
_SPACE = re.compile(r"\s")
#: `password=x`, `DB_PASSWORD=x`, `--password=x`, `?token=x&`, `password: x` (YAML), `"password": "x"` (JSON)
_PAIR = re.compile(
    rf"(?i)(?<![a-z0-9_.-])(?P<pre>[a-z0-9_.-]*?(?:{_WORDS})(?:\s*=\s*|[\"']?\s*:(?:[ \t]+|(?=[\"']))))"
    r"(?:\"(?P<dq>[^\"\\\n]*(?:\\.[^\"\\\n]*)*)\"|'(?P<sq>[^'\n]*)'|(?P<bare>[^\s;&,\"'}\]]+))"
)
_BEARER = re.compile(r"(?i)(?<![a-z0-9])(?P<pre>(?:bearer|basic)\s+)(?P<secret>[a-z0-9._~+/=-]{4,})")
_PEM = re.compile(
    r"(?P<pre>-----BEGIN (?P<label>[A-Z0-9 ]*)PRIVATE KEY-----)"
    r"(?P<secret>[\s\S]*?(?=-----END (?P=label)PRIVATE KEY-----)|[\s\S]*)"
)
#: a multi-line string that is a YAML copy of a Secret-like object: masked whole
_YAML_SECRET = re.compile(r"(?m)^[ \t]*[\"']?kind[\"']?[ \t]*:[ \t]*[\"']?[A-Za-z]*Secret[\"']?[ \t]*$")

#: nesting past this inside one object is masked whole rather than inspected (a crafted document must not
#: exhaust the stack, and nothing real is nested this deep)
MAX_DEPTH = 64


class Masker:
    """Masks documents for one diff run; every digest it makes uses the same random key, drawn here."""

    def __init__(self, key: bytes | None = None) -> None:
        # the key is never written anywhere: a digest is only meaningful next to others from the same run
        self._key = secrets.token_bytes(32) if key is None else key

    def digest(self, value: Any) -> str:
        """`<redacted hmac:…>`: 12 hex digits of HMAC-SHA256(key, value); maps and lists as canonical JSON."""
        raw = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
        mac = hmac.new(self._key, raw.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()
        return _TOKEN.format(mac[:12])

    def mask(self, doc: dict[str, Any]) -> dict[str, Any]:
        """A copy of `doc` with every secret it carries replaced by digests."""
        out = self._dict(doc, 0, secret_spec=False)
        return out

    def text(self, value: str) -> str:
        """One string with the secrets inside it masked (also used for strings outside any object)."""
        return self._text(value, 0)

    # --- walking ---------------------------------------------------------------------------------------

    def _value(self, node: Any, depth: int, *, secret_spec: bool = False) -> Any:
        if depth > MAX_DEPTH:
            return self.digest(node)
        if isinstance(node, dict):
            return self._dict(node, depth, secret_spec=secret_spec)
        if isinstance(node, list):
            return self._list(node, depth, secret_spec=secret_spec)
        if isinstance(node, str):
            return self._text(node, depth)
        return node

    def _all(self, section: Any) -> Any:
        """Every value of a Secret's data (or the whole section when it is not a mapping)."""
        if isinstance(section, dict):
            return {k: None if v is None else self.digest(v) for k, v in section.items()}
        return None if section is None else self.digest(section)

    def _dict(self, node: dict[Any, Any], depth: int, *, secret_spec: bool) -> dict[Any, Any]:
        kind = node.get("kind")
        kind = kind if isinstance(kind, str) and ("apiVersion" in node or "metadata" in node) else None
        out: dict[Any, Any] = {}
        for k, v in node.items():
            if kind == "Secret" and k in ("data", "stringData"):
                out[k] = self._all(v)
            elif kind == "ConfigMap" and k in ("data", "binaryData") and isinstance(v, dict):
                out[k] = {
                    ck: self.digest(cv)
                    if SENSITIVE.search(str(ck)) and cv is not None
                    else self._value(cv, depth + 2)
                    for ck, cv in v.items()
                }
            elif secret_spec and k == "template" and isinstance(v, dict):
                out[k] = self._secret_template(v, depth + 1)
            elif isinstance(k, str) and _KEY.search(k) and _is_secret_scalar(v):
                out[k] = self.digest(v)
            else:
                inner = secret_spec or (
                    kind is not None and kind != "Secret" and kind.endswith("Secret") and k == "spec"
                )
                out[k] = self._value(v, depth + 1, secret_spec=inner)
        return out

    def _secret_template(self, template: dict[Any, Any], depth: int) -> dict[Any, Any]:
        """An ExternalSecret-style `target.template`: its data is the Secret-to-be, literals are templates of it."""
        out: dict[Any, Any] = {}
        for k, v in template.items():
            if k in ("data", "stringData"):
                out[k] = self._all(v)
            elif k == "templateFrom" and isinstance(v, list):
                out[k] = [
                    {
                        ik: self.digest(iv)
                        if ik == "literal" and iv is not None
                        else self._value(iv, depth + 2)
                        for ik, iv in item.items()
                    }
                    if isinstance(item, dict)
                    else self._value(item, depth + 1)
                    for item in v
                ]
            else:
                out[k] = self._value(v, depth + 1)
        return out

    def _list(self, items: list[Any], depth: int, *, secret_spec: bool) -> list[Any]:
        out: list[Any] = []
        after_flag = False
        for item in items:
            if after_flag and isinstance(item, str | int | float) and not isinstance(item, bool):
                out.append(self.digest(item))  # ["--password", "x"]: the argument after the flag
            elif isinstance(item, dict) and "value" in item and SENSITIVE.search(str(item.get("name", ""))):
                # {name: DB_PASSWORD, value: ...}: container env, Argo CD helm parameters, ...
                masked = self._dict(
                    {k: v for k, v in item.items() if k != "value"}, depth + 1, secret_spec=False
                )
                masked["value"] = None if item["value"] is None else self.digest(item["value"])
                out.append({k: masked[k] for k in item})
            else:
                out.append(self._value(item, depth + 1, secret_spec=secret_spec))
            after_flag = isinstance(item, str) and _FLAG.fullmatch(item) is not None
        return out

    def _text(self, value: str, depth: int) -> str:
        stripped = value.strip()
        if stripped[:1] in ("{", "[") and stripped[-1:] in ("}", "]"):
            embedded = self._json(value, depth)
            if embedded is not None:
                return embedded
        if "\n" in value and _YAML_SECRET.search(value):
            return self.digest(value)  # a YAML copy of a Secret: too easy to miss a key, hide it all
        if "PRIVATE KEY-----" in value:
            value = _PEM.sub(self._sub, value)
        if "://" in value and "@" in value:
            value = self._urls(value)
        value = _PAIR.sub(self._sub_pair, value)
        return _BEARER.sub(self._sub, value)

    def _json(self, value: str, depth: int) -> str | None:
        """A JSON copy of an object or list, masked inside (None when `value` is not JSON)."""
        try:
            parsed = json.loads(value)
        except (ValueError, RecursionError):
            return None
        if not isinstance(parsed, dict | list):
            return None
        masked = self._value(parsed, depth + 1)
        if masked == parsed:
            return value
        return json.dumps(masked, ensure_ascii=False, separators=(",", ":"))

    def _urls(self, value: str) -> str:
        """The password of every `scheme://user:password@host` in `value`, in one pass (no backtracking)."""
        out, pos = [], 0
        while m := _URL.search(value, pos):
            space = _SPACE.search(value, m.end())
            stop = space.start() if space else len(value)
            at = value.rfind("@", m.end(), stop)
            if at <= m.end():  # no password (or an empty one) in this word: go on after it
                out.append(value[pos:stop])
                pos = stop
                continue
            out += [value[pos : m.end()], self.digest(value[m.end() : at])]
            pos = at
        return "".join(out) + value[pos:]

    def _sub(self, m: re.Match[str]) -> str:
        return m["pre"] + self.digest(m["secret"])

    def _sub_pair(self, m: re.Match[str]) -> str:
        if m["dq"] is not None:
            return f'{m["pre"]}"{self.digest(m["dq"])}"'
        if m["sq"] is not None:
            return f"{m['pre']}'{self.digest(m['sq'])}'"
        bare = m["bare"]
        if bare.startswith("<redacted hmac:"):  # already masked (a URL password that is also a pair)
            return m[0]
        return m["pre"] + self.digest(bare)


def _is_secret_scalar(value: Any) -> bool:
    """A value a secret-named key can hold: strings and numbers, not booleans (automountServiceAccountToken)."""
    return isinstance(value, str | int | float) and not isinstance(value, bool)

"""Secrets stay out of configs: refused on the command line, scrubbed from what is logged.

A key for a hosted model lives in an environment variable; the config holds only its NAME
(``model.api_key_env=OPENAI_API_KEY``). Anything else would land in Hydra's ``.hydra/*.yaml``,
the run's ``config.yaml`` artifact and its params.

    check_overrides(argv)   raw command-line overrides, before Hydra writes its output folder
    check_config(conf)      a composed config (the job path, however it was composed)
    scrub(conf, env)        a copy safe to log: no secret values, no value of an api_key_env variable
    scrub_text(text, conf)  the same for one string (an error tag)
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

from dspy_mlflow.errors import ConfigError

# The last part of a key that names a secret ("api_key_env" names a variable, so it is fine;
# "max_tokens" is a count, so only the singular "token" counts).
SECRET_KEY = re.compile(
    r"(^|[._-])(api_?key|access_?key|secret(_?key)?|client_secret|token|access_token|auth_token|"
    r"password|passwd|authorization|auth_header|bearer|credentials?)$", re.I)
# Values shaped like a credential. Conservative, to spare ordinary values (model names, paths,
# run names): a known key prefix or "Bearer " before a random-looking tail; 48+ hex digits; or a
# 32+ character token mixing upper case, lower case and digits the way random keys do.
_PREFIXED = re.compile(r"\b(sk-(?:ant-|proj-|svcacct-|or-v1-|lf-)?|ghp_|gho_|ghu_|ghs_|github_pat_|glpat-|"
                       r"xox[abprs]-|hf_|AIza|Bearer\s+)([A-Za-z0-9._~+/=-]{16,})", re.I)
_HEX = re.compile(r"\b[0-9a-fA-F]{48,}\b")
_TOKEN = re.compile(r"[A-Za-z0-9+=]{32,}")
_URL_PASSWORD = re.compile(r"(://[^/:@\s]+:)[^@/\s]+@")  # postgresql://user:PASSWORD@host/db
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

ADVICE = ("secrets never go into a config (Hydra's outputs and the MLflow run would keep them): "
          "put the key in an environment variable and pass its name, e.g. export OPENAI_API_KEY=...; "
          "model.api_key_env=OPENAI_API_KEY")


def is_secret_key(key: str) -> bool:
    return bool(SECRET_KEY.search(str(key)))


def looks_like_secret(value: object) -> bool:
    if not isinstance(value, str):
        return False
    if any(_random_looking(re.sub(r"[^A-Za-z0-9]", "", m.group(2)), strict=False)
           for m in _PREFIXED.finditer(value)):
        return True
    return bool(_HEX.search(value)) or any(_random_looking(t) for t in _TOKEN.findall(value))


def _random_looking(token: str, strict: bool = True) -> bool:
    """Classes (upper, lower, digit) switch often (and, without a key prefix, no word-like run)."""
    if len(token) < (32 if strict else 16) or (strict and re.search(r"[a-z]{7}", token)):
        return False
    kinds = [c.isupper() + 2 * c.isdigit() for c in token]
    if len(set(kinds)) < (3 if strict else 2):
        return False
    switches = sum(a != b for a, b in zip(kinds, kinds[1:], strict=False)) / (len(token) - 1)
    return switches >= (0.45 if strict else 0.3)


def mask(value: object) -> str:
    """What an error may show of a secret: its first characters and its length."""
    text = str(value)
    return f"{text[:3]}...({len(text)} chars)" if len(text) >= 12 else "***"


def _refuse(key: str, value: object) -> None:
    raise ConfigError(key, mask(value), ADVICE)


def check_overrides(argv: Iterable[str]) -> None:
    """Refuse a ``key=value`` override that sets a secret-named key or carries a key-shaped value."""
    for arg in argv:
        if arg.startswith("-") or "=" not in arg:
            continue  # Hydra's flags (-m, --cfg job) and bare words
        key, _, value = arg.partition("=")
        key = key.lstrip("+~")
        if is_secret_key(key.split("@")[0]) and value.strip() not in ("", "null", "None"):
            _refuse(key, value)
        if looks_like_secret(value):
            _refuse(key, value)


def _flat(node: Any, prefix: str = "") -> Iterable[tuple[str, Any]]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            yield from _flat(value, f"{prefix}{key}.")
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from _flat(value, f"{prefix}{i}.")
    else:
        yield prefix[:-1], node


def check_config(conf: Mapping) -> None:
    """The same refusal for a composed config; and ``*.api_key_env`` must be a variable name."""
    for key, value in _flat(conf):
        last = key.rsplit(".", 1)[-1]
        if last == "api_key_env" and value is not None and not _ENV_NAME.match(str(value)):
            shown = mask(value) if looks_like_secret(value) else value
            raise ConfigError(key, shown, "the NAME of the environment variable that holds the key "
                                          "(e.g. OPENAI_API_KEY), never the key itself")
        if (is_secret_key(last) and value not in (None, "")) or looks_like_secret(value):
            _refuse(key, value)


def secret_values(conf: Mapping, env: Mapping[str, str] | None = None) -> list[str]:
    """The values of the environment variables the config's ``*.api_key_env`` keys name."""
    env = os.environ if env is None else env
    names = {str(v) for k, v in _flat(conf) if k.rsplit(".", 1)[-1] == "api_key_env" and v}
    return sorted({env[n] for n in names if len(env.get(n) or "") >= 6}, key=len, reverse=True)


def _mask_shapes(text: str) -> str:
    def prefixed(m: re.Match) -> str:
        tail = re.sub(r"[^A-Za-z0-9]", "", m.group(2))
        return m.group(1) + "***" if _random_looking(tail, strict=False) else m.group(0)

    text = _URL_PASSWORD.sub(r"\1***@", _HEX.sub("***", _PREFIXED.sub(prefixed, text)))
    return _TOKEN.sub(lambda m: "***" if _random_looking(m.group(0)) else m.group(0), text)


def scrub_text(text: str, conf: Mapping | None = None, env: Mapping[str, str] | None = None) -> str:
    """``text`` (an error message, a tag) with key-shaped parts and the api_key_env values as ``***``."""
    for secret in secret_values(conf or {}, env):
        text = text.replace(secret, "***")
    return _mask_shapes(text)


def scrub(conf: Any, env: Mapping[str, str] | None = None) -> Any:
    """A copy of ``conf`` safe to log (``config.yaml``, params): secret-named keys become ``***``, and
    so do key-shaped values and the value of any variable a ``*.api_key_env`` names, wherever they are."""
    found = secret_values(conf, env) if isinstance(conf, Mapping) else []

    def walk(node: Any) -> Any:
        if isinstance(node, Mapping):
            return {k: "***" if is_secret_key(str(k)) and v not in (None, "") else walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        if isinstance(node, str):
            for secret in found:
                node = node.replace(secret, "***")
            return _mask_shapes(node)
        return node

    return walk(conf)

"""Golden files for the CCS dialect: the exact status and body bytes of a response.

``assert_golden("products_list", response)`` compares ``HTTP <status>\\n<body>\\n`` with
``tests/ccs/golden/products_list.txt``. Run with ``CALLBRIDGE_UPDATE_GOLDEN=1`` to (re)write the
files, then read the diff before committing it: a golden file is a claim about the wire format.

``assert_shape(actual, spec)`` checks a body against the spec's example: the same keys in the same
order and the same JSON types, recursively (a list's items against the example's first item).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx

GOLDEN_DIR = Path(__file__).parent / "golden"
UPDATE = os.environ.get("CALLBRIDGE_UPDATE_GOLDEN") == "1"


def render(response: httpx.Response) -> str:
    return f"HTTP {response.status_code}\n{response.content.decode()}\n"


def assert_golden(name: str, response: httpx.Response) -> None:
    path = GOLDEN_DIR / f"{name}.txt"
    text = render(response)
    if UPDATE:
        path.write_text(text, encoding="utf-8")
        return
    assert path.exists(), f"no golden file {path.name}: run with CALLBRIDGE_UPDATE_GOLDEN=1"
    expected = path.read_text(encoding="utf-8")
    assert text == expected, f"{path.name} differs:\n--- expected\n{expected}--- got\n{text}"


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    if isinstance(value, list):
        return "array"
    return "object"


def assert_shape(actual: Any, spec: Any, where: str = "$") -> None:
    """``actual`` has the spec example's keys (same order), types and nesting."""
    got, want = _kind(actual), _kind(spec)
    assert got == want, f"{where}: {got} where the spec has {want}"
    if isinstance(spec, dict):
        assert list(actual) == list(spec), f"{where}: keys {list(actual)} != spec {list(spec)}"
        for key, value in spec.items():
            assert_shape(actual[key], value, f"{where}.{key}")
    elif isinstance(spec, list) and spec:
        for i, item in enumerate(actual):
            assert_shape(item, spec[0], f"{where}[{i}]")


def spec_json(text: str) -> Any:
    """A body as the spec prints it (typographic quotes straightened)."""
    return json.loads(text.replace("\u201c", '"').replace("\u201d", '"'))

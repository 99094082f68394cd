"""Register a route under the spec's spelling and its trailing-slash twin.

The spec writes some paths with a trailing slash (``/products/``, ``/roles/``, the extension PUT)
and most without; clients copy them as printed. Both spellings answer the same, without a
redirect (a 307 would make some clients drop the body or the Authorization header).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter

F = TypeVar("F", bound=Callable[..., Any])


def route(router: APIRouter, method: str, path: str, **kwargs: Any) -> Callable[[F], F]:
    """``@route(router, "GET", "/products/")`` registers ``/products/`` and ``/products``."""
    twin = path[:-1] if path.endswith("/") else path + "/"

    def register(func: F) -> F:
        router.add_api_route(path, func, methods=[method], **kwargs)
        router.add_api_route(twin, func, methods=[method], include_in_schema=False, **kwargs)
        return func

    return register

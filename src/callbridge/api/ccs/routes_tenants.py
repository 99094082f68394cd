"""CCS 4.1-4.14: products, roles, tenants, ACDs, presence options, extensions, text count,
tenant products, limits and licences, extension update."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()

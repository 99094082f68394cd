"""CCS 4.19-4.27: calls (list, one call, filter) and call actions (suppression, kill, wait_*)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()

"""CCS section 5: the event WebSocket ``/6/v2/sock``."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()

"""CCS 4.15-4.18 and 4.28: agent state (get, update by telco user, self, tenant admin) and
``POST /tenants/<tid>/extensions/<uuid>`` dispatching on ``request`` (``dial``,
``updateAgentState``)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()

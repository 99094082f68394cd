"""A tenant's directory: extensions, presence options and queues (ACDs)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field


class RecordingType(StrEnum):
    NONE = "None"
    MANDATORY = "Mandatory"
    ON_DEMAND = "On Demand"


class Extension(BaseModel):
    id: str
    tenant_id: str
    number: str
    firstname: str = ""
    lastname: str = ""
    is_agent: bool = False
    recording_type: RecordingType = RecordingType.NONE
    monitor: bool = False
    max_chats: int = Field(default=0, ge=0, le=6)
    is_multimedia_enabled: bool = False


class PresenceType(StrEnum):
    READY = "ready"
    AWAY = "away"
    SIGN_OUT = "sign_out"


class PresenceOption(BaseModel):
    id: str
    tenant_id: str
    type: PresenceType
    name: str


class QueueType(StrEnum):
    VOICE_INBOUND = "voice_queues"
    VOICE_OUTBOUND = "voice_outbound_queues"


class Queue(BaseModel):
    id: str
    tenant_id: str
    name: str
    type: QueueType = QueueType.VOICE_INBOUND
    extension: str | None = None
    alternate_extensions: list[str] = Field(default_factory=list)
    caller_id: str | None = None  # outbound queues: the number presented to the callee
    member_extension_ids: list[str] = Field(default_factory=list)

"""One Settings object: every knob of the server, each also an environment variable.

Environment variables are ``CALLBRIDGE_<NAME>`` (``CALLBRIDGE_STORAGE``, ``CALLBRIDGE_SWITCH`` ...).
A malformed value fails loudly at start-up.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CALLBRIDGE_", extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    data_dir: Path = Path("./data")
    #: "sqlite" (a file in data_dir), "sqlite:///path/to/file.db", "memory", or "postgresql://..."
    storage: str = "sqlite"
    bus: Literal["memory"] = "memory"
    switch: Literal["simulated"] = "simulated"
    #: seconds a simulated endpoint takes to answer unless scripted otherwise
    sim_answer_after: float = Field(default=2.0, ge=0)
    #: the SIP digest realm phones authenticate in
    sip_realm: str = "callbridge"
    demo: bool = False
    log_level: str = "info"
    #: events buffered per live subscriber before it is dropped as a slow consumer
    subscriber_queue: int = Field(default=1000, ge=1)

    def storage_url(self) -> str:
        if self.storage == "sqlite":
            return f"sqlite:///{self.data_dir / 'callbridge.db'}"
        return self.storage

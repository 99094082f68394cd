"""One Settings object: every knob of the server, each also an environment variable.

Environment variables are ``CALLBRIDGE_<NAME>`` (``CALLBRIDGE_STORAGE``, ``CALLBRIDGE_SWITCH`` ...).
A malformed value fails loudly at start-up.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CALLBRIDGE_", extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    data_dir: Path = Path("./data")
    #: "sqlite" (a file in data_dir), "sqlite:///path/to/file.db", "memory", or "postgresql://..."
    storage: str = "sqlite"
    bus: Literal["memory"] = "memory"
    #: "simulated" (no network) or "sip" (the SIP B2BUA with the embedded RTP engine, preview)
    switch: Literal["simulated", "sip"] = "simulated"
    #: seconds a simulated endpoint takes to answer unless scripted otherwise
    sim_answer_after: float = Field(default=2.0, ge=0)
    #: the SIP digest realm phones authenticate in
    sip_realm: str = "callbridge"
    #: where the SIP switch listens (UDP and TCP on the same port)
    sip_host: str = "127.0.0.1"
    sip_port: int = Field(default=5060, ge=0, le=65535)
    #: the address peers reach us at, put in Via, Contact and SDP; required when sip_host is a
    #: wildcard (0.0.0.0 or ::), which peers cannot send to
    sip_public_host: str = ""
    #: the embedded media engine's RTP port range (one port per call leg)
    rtp_port_min: int = Field(default=20000, ge=1, le=65535)
    rtp_port_max: int = Field(default=29999, ge=1, le=65535)
    #: where external numbers are sent, ``HOST:PORT`` (empty: no trunk, external calls fail)
    sip_trunk: str = ""
    #: credentials for the trunk's digest challenge (401/407) to our INVITEs; empty: none
    sip_trunk_username: str = ""
    sip_trunk_password: str = ""
    #: which SIP legs a hold re-INVITEs with a=sendonly (a=sendrecv on unhold): "phones" (legs of
    #: registered phones, the default: a held phone shows the call as held), "all" (trunk legs
    #: too) or "off" (the hold happens only in the media). The music plays in every case.
    sip_hold_reinvite: Literal["phones", "all", "off"] = "phones"
    #: accept MD5 digests from phones. On by default because SIPp 3.6.1 and baresip 1.0.0 can
    #: only do MD5; SHA-256 (RFC 8760) is always accepted.
    sip_allow_md5: bool = True
    #: digest algorithms the registrar challenges with (comma-separated; SHA-256 first). Some old
    #: softphones (SIPp 3.6.1, baresip 1.0.0) give up when SHA-256 is offered at all, even next to
    #: MD5: for them use "MD5" (which needs sip_allow_md5). MD5 is not offered while
    #: sip_allow_md5 is off.
    sip_digest_algorithms: str = "SHA-256,MD5"
    demo: bool = False
    log_level: str = "info"
    #: events buffered per live subscriber before it is dropped as a slow consumer
    subscriber_queue: int = Field(default=1000, ge=1)

    @field_validator("sip_trunk")
    @classmethod
    def _check_trunk(cls, value: str) -> str:
        value = value.strip()
        if value:
            parse_host_port(value)
        return value

    @field_validator("sip_digest_algorithms")
    @classmethod
    def _check_algorithms(cls, value: str) -> str:
        names = [a.strip().upper() for a in value.split(",") if a.strip()]
        if not names or any(a not in ("SHA-256", "MD5") for a in names):
            raise ValueError("sip_digest_algorithms: a comma-separated list of SHA-256 and MD5")
        return ",".join(names)

    @model_validator(mode="after")
    def _check_sip(self) -> Settings:
        if self.rtp_port_min > self.rtp_port_max:
            raise ValueError("rtp_port_min must not be above rtp_port_max")
        if self.digest_algorithms() == ("MD5",) and not self.sip_allow_md5:
            raise ValueError("sip_digest_algorithms is MD5 only but sip_allow_md5 is off")
        if self.switch == "sip" and self.sip_host in ("0.0.0.0", "::") and not self.sip_public_host:
            raise ValueError(
                f"sip_host {self.sip_host} is a wildcard address: set sip_public_host to the "
                "address peers reach this server at (it goes into Via, Contact and SDP)"
            )
        if self.sip_public_host in ("0.0.0.0", "::"):
            raise ValueError("sip_public_host must be an address peers can send to")
        return self

    def digest_algorithms(self) -> tuple[str, ...]:
        return tuple(a for a in self.sip_digest_algorithms.split(",") if a)

    def trunk_address(self) -> tuple[str, int] | None:
        """``sip_trunk`` as ``(host, port)``, or None when no trunk is configured."""
        return parse_host_port(self.sip_trunk) if self.sip_trunk else None

    def storage_url(self) -> str:
        if self.storage == "sqlite":
            return f"sqlite:///{self.data_dir / 'callbridge.db'}"
        return self.storage


def parse_host_port(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6) -> ``(host, port)``; ValueError if malformed."""
    host, sep, port = value.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) <= 65535:
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    return host, int(port)

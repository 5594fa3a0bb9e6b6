"""The one Settings object. Values come from arguments, then VERIOT_* environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from veriot.ingest.event_budget import DEFAULT_LIMIT as DEFAULT_SECURITY_EVENT_LIMIT

DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024
DEFAULT_MAX_CLOCK_SKEW_S = 300.0
DEFAULT_CHECKPOINT_INTERVAL_S = 1.0
DEFAULT_ANCHOR_INTERVAL_S = 5.0
DEFAULT_PORT = 8080


class Settings(BaseSettings):
    """Configuration of one veriot service. Immutable once built."""

    model_config = SettingsConfigDict(env_prefix="VERIOT_", frozen=True, extra="forbid")

    data_dir: Path = Path("veriot-data")
    db: str | None = None
    """Store URL: None or sqlite:///path for SQLite in data_dir; postgresql://... for PostgreSQL."""
    host: str = "127.0.0.1"
    port: int = Field(default=DEFAULT_PORT, ge=0, le=65535)
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY_BYTES, gt=0)
    max_clock_skew_s: float = Field(default=DEFAULT_MAX_CLOCK_SKEW_S, ge=0)
    checkpoint_interval_s: float = Field(default=DEFAULT_CHECKPOINT_INTERVAL_S, gt=0)
    anchor_interval_s: float = Field(default=DEFAULT_ANCHOR_INTERVAL_S, gt=0)
    chain: str | None = None
    """None for the embedded chain in data_dir, or an Ethereum JSON-RPC URL."""
    chain_key: Path | None = None
    use_chain: bool = True
    """False runs the log without a chain: no on-chain registry, no anchoring."""
    mqtt: str | None = None
    verify_threads: int = Field(default=0, ge=0)
    """Signature verification threads; 0 means one per CPU core."""
    security_event_limit: int = Field(default=DEFAULT_SECURITY_EVENT_LIMIT, ge=0)
    """Security events of one kind stored per device per minute; the rest are counted in
    /metrics and summed up in one event (see veriot/ingest/event_budget.py). 0 stores
    every one."""
    verify_processes: int = Field(default=0, ge=0)
    """Worker processes that decode and check request bodies, signatures included (see
    veriot/ingest/check_pool.py); 0 checks on the threads above. `veriot serve` starts
    one per CPU core unless told otherwise. Not with the "memory:" store."""

    @property
    def sqlite_path(self) -> Path:
        if self.db and self.db.startswith("sqlite:///"):
            return Path(self.db.removeprefix("sqlite:///"))
        return self.data_dir / "veriot.db"

    @property
    def log_key_path(self) -> Path:
        return self.data_dir / "log.key"

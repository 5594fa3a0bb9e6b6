"""Types of the C extension veriot/core/_canonical.c (see veriot.core.canonical)."""

from collections.abc import Sequence

from veriot.core.types import Reading

def reading_messages(
    head: bytes, device: str, readings: Sequence[Reading], pairs: dict[tuple[str, str], bytes], /
) -> list[bytes] | None: ...

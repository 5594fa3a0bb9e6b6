"""The edge agent: holds device keys, signs, buffers durably, resends in order."""

from veriot.edge.agent import EdgeAgent, EdgeStats
from veriot.edge.buffer import EdgeBuffer, Entry
from veriot.edge.source import parse_line, simulated

__all__ = ["EdgeAgent", "EdgeBuffer", "EdgeStats", "Entry", "parse_line", "simulated"]

"""The LLM's slots: admission (:class:`common.slot_pool.SlotPool`) and their Prometheus gauge."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import GaugeMetricFamily

from common.slot_pool import SlotPool

__all__ = ["SlotMetrics", "SlotPool"]


class SlotMetrics:
    """A Prometheus collector: ``llm_slots{state="busy"|"idle"|"waiting"}``, read at scrape time."""

    def __init__(self, service: str, slot_use: Callable[[], dict[str, int]]) -> None:
        self._service = service
        self._slot_use = slot_use

    def describe(self) -> Iterator[GaugeMetricFamily]:
        """The family's name, without reading the engine (it may still be loading)."""
        yield GaugeMetricFamily("llm_slots", "LLM engine slots busy and idle, and requests waiting for one.")

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """One sample per state."""
        family = GaugeMetricFamily(
            "llm_slots", "LLM engine slots busy and idle, and requests waiting for one.", labels=["service", "state"]
        )
        for state, count in self._slot_use().items():
            family.add_metric([self._service, state], count)
        yield family

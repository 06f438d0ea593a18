"""The catalog's evaluation reports (``{activation}.report_seed{seed}``): a versioned JSON file of a :class:`~activation_compare.reports.Report`."""

from __future__ import annotations

from typing import Any

from activation_compare.reports import Report

from .atomic import AtomicJSONDataset


class ReportDataset(AtomicJSONDataset):
    """Saves a :class:`~activation_compare.reports.Report` as JSON, atomically; loads it back.

    A file of an older format (a report without the settings that produced it)
    is refused on load with one message naming the file and how to regenerate it
    (:class:`~activation_compare.reports.OldReportError`).
    """

    def save(self, data: Report) -> None:
        if not isinstance(data, Report):
            raise TypeError(f"{type(self).__name__} saves a Report, got {type(data).__name__}")
        super().save(data.to_json())

    def load(self) -> Report:
        value: Any = super().load()
        return Report.from_json(value, source=str(self._get_load_path()))

"""``meta.k8s.io/v1`` Table responses, the form ``kubectl get`` asks for.

Rows are built from each kind's ``additionalPrinterColumns``, so ``kubectl get socialposts``
shows phase, schedule and progress instead of just a name and an age.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from socialpub.embedded.jsonpath import JsonPath, JsonPathError, compile_path, format_cell
from socialpub.embedded.registry import NAMESPACE_TYPE, ResourceType

__all__ = ["TableBuilder", "wants_table"]

_AGE = {
    "name": "Age",
    "type": "date",
    "jsonPath": ".metadata.creationTimestamp",
    "description": "CreationTimestamp is the time the object was created.",
}


def wants_table(accept: str) -> bool:
    """Whether the ``Accept`` header asks for a Table (kubectl's ``as=Table;g=meta.k8s.io``)."""
    return "as=Table" in accept.replace(" ", "")


class TableBuilder:
    """Column definitions and row rendering for one kind, compiled once per request."""

    def __init__(self, rt: ResourceType) -> None:
        columns: list[Mapping[str, Any]] = list(rt.printer_columns)
        if rt.group == "" and rt.plural == "events":
            columns = [
                {
                    "name": "Last Seen",
                    "type": "date",
                    "jsonPath": ".lastTimestamp",
                    "description": "When it last happened.",
                },
                {"name": "Type", "type": "string", "jsonPath": ".type", "description": "Normal or Warning."},
                {
                    "name": "Reason",
                    "type": "string",
                    "jsonPath": ".reason",
                    "description": "Why it happened.",
                },
                {
                    "name": "Object",
                    "type": "string",
                    "jsonPath": ".involvedObject.name",
                    "description": "The object it is about.",
                },
                {
                    "name": "Message",
                    "type": "string",
                    "jsonPath": ".message",
                    "description": "What happened.",
                },
            ]
        elif rt is NAMESPACE_TYPE:
            columns = [
                {
                    "name": "Status",
                    "type": "string",
                    "jsonPath": ".status.phase",
                    "description": "The phase of the namespace.",
                },
                _AGE,
            ]
        elif not columns:
            columns = [_AGE]
        self._columns = columns
        self._paths: list[JsonPath | None] = []
        for column in columns:
            try:
                self._paths.append(compile_path(str(column.get("jsonPath", ""))))
            except JsonPathError:
                self._paths.append(None)

    def column_definitions(self) -> list[dict[str, Any]]:
        defs = [
            {
                "name": "Name",
                "type": "string",
                "format": "name",
                "priority": 0,
                "description": "Name must be unique within a namespace.",
            }
        ]
        for column in self._columns:
            defs.append(
                {
                    "name": column.get("name", ""),
                    "type": column.get("type", "string"),
                    "format": column.get("format", ""),
                    "description": column.get("description", ""),
                    "priority": int(column.get("priority", 0)),
                }
            )
        return defs

    def row(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        meta = obj.get("metadata") or {}
        cells: list[Any] = [meta.get("name", "")]
        for column, path in zip(self._columns, self._paths, strict=True):
            value = path.first(obj) if path is not None else None
            cells.append(format_cell(value, str(column.get("type", "string"))))
        return {
            "cells": cells,
            "object": {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": meta,
            },
        }

    def table(
        self,
        objects: Iterable[Mapping[str, Any]],
        *,
        resource_version: str,
        continue_token: str | None = None,
        remaining: int | None = None,
    ) -> dict[str, Any]:
        metadata: dict[str, Any] = {"resourceVersion": resource_version}
        if continue_token:
            metadata["continue"] = continue_token
        if remaining is not None:
            metadata["remainingItemCount"] = remaining
        return {
            "kind": "Table",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": metadata,
            "columnDefinitions": self.column_definitions(),
            "rows": [self.row(obj) for obj in objects],
        }

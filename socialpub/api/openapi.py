"""The OpenAPI document as a committed file: ``api/openapi.json`` is part of the contract.

``make openapi`` (``python -m socialpub.api.openapi api/openapi.json``) writes it; a test
regenerates it and fails if the committed copy is out of date.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from socialpub.api.app import create_app
from socialpub.api.settings import ApiSettings

__all__ = ["export_openapi", "render"]


def export_openapi() -> dict[str, Any]:
    """The document the app serves at ``/openapi.json`` (building the app connects to nothing)."""
    return create_app(ApiSettings()).openapi()


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    text = render(export_openapi())
    if args:
        Path(args[0]).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

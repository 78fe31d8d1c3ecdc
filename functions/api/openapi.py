"""docs/openapi.json, generated from the routes and models (never edited by hand).

    python -m functions.api.openapi            # rewrite docs/openapi.json
    python -m functions.api.openapi --check    # exit 1 if it is out of date (CI, tests)

API Gateway imports this document (infra), clients generate code from it, and the fuzz tests walk
it, so it must describe exactly what the handler does: hence generated, and checked in CI.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

DOCUMENT_PATH = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def openapi_document() -> str:
    """The document as committed: 2-space indented JSON with a final newline."""
    from functions.api.app import app

    schema = json.loads(app.get_openapi_json_schema())
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="fail if the committed file differs")
    parser.add_argument("--path", type=Path, default=DOCUMENT_PATH)
    args = parser.parse_args(argv)
    document = openapi_document()
    current = args.path.read_text(encoding="utf-8") if args.path.exists() else None
    if args.check:
        if current != document:
            print(
                f"{args.path} is out of date; run: python -m functions.api.openapi", file=sys.stderr
            )
            return 1
        return 0
    if current != document:
        args.path.parent.mkdir(parents=True, exist_ok=True)
        args.path.write_text(document, encoding="utf-8")
        print(f"wrote {args.path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

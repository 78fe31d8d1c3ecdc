"""How S3 says "not there" and "your condition failed", read in one place.

Conditional writes (``If-None-Match``/``If-Match``) are how the channel pointers, manifests, job
records and assessments stay consistent without a lock; every store that uses them asks the same
two questions of a ``ClientError``. S3 and the moto server spell the answers differently (error
code or bare HTTP status), so the accepted spellings live here.
"""

from __future__ import annotations

from typing import Final

from botocore.exceptions import ClientError

#: A conditional write lost: the object exists (``If-None-Match``) or changed (``If-Match``).
PRECONDITION_CODES: Final = ("PreconditionFailed", "412", "ConditionalRequestConflict")
#: The object (or key) does not exist.
MISSING_CODES: Final = ("NoSuchKey", "404")


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def is_missing(exc: ClientError) -> bool:
    return error_code(exc) in MISSING_CODES


def is_precondition_failed(exc: ClientError) -> bool:
    return error_code(exc) in PRECONDITION_CODES

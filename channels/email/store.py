"""Content-addressed files for raw messages and attachments: the same bytes are stored once.

A reference is the file's path; the channel writes files, the database only keeps the reference.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path


class ContentStore:
    """Files under `root`, named by the SHA-256 of their content."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def put(self, data: bytes, suffix: str = "") -> str:
        digest = hashlib.sha256(data).hexdigest()
        path = self.root / digest[:2] / f"{digest}{suffix}"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            # Write then rename, so a crash never leaves a half file under the final name.
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".part-")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        return str(path)

    @staticmethod
    def get(ref: str) -> bytes:
        return Path(ref).read_bytes()

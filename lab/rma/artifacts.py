"""Content-addressed artifact files, stored outside the database.

An artifact (console log, frame, clip, pcap, profile) is kept once per content under
``ROOT/ab/cd/<sha256>``; the database keeps its hash, size, media type and that relative path.
Storing the same bytes twice costs nothing; a file is written to a temporary name and renamed, so
a crash never leaves a half file under a hash name.

Example::

    store = ArtifactStore("reports/rma-artifacts")
    art = store.put("reports/run1/console.log")
    print(art.sha256, store.path_of(art.sha256))
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

_CHUNK = 1 << 20


@dataclass(frozen=True)
class StoredArtifact:
    """One stored file: its name in the report (``console.log``), hash, size, type, path under the root."""

    name: str
    sha256: str
    size: int
    media_type: str
    path: str

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "sha256": self.sha256,
            "size": self.size,
            "media_type": self.media_type,
            "path": self.path,
        }


class ArtifactStore:
    """Files under ``root`` named by their sha256."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def relpath(self, sha256: str) -> str:
        return f"{sha256[:2]}/{sha256[2:4]}/{sha256}"

    def path_of(self, sha256: str) -> Path:
        """Where the file with this hash lives."""
        return self.root / self.relpath(sha256)

    def put(self, source: str | os.PathLike[str], name: str | None = None) -> StoredArtifact:
        """Copy ``source`` into the store (once per content) and describe it."""
        src = Path(source)
        if not src.is_file():
            raise FileNotFoundError(f"artifact {src} does not exist or is not a file")
        self.root.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        fd, tmp = tempfile.mkstemp(prefix=".incoming-", dir=self.root)
        size = 0
        try:
            with os.fdopen(fd, "wb") as out, src.open("rb") as inp:
                while chunk := inp.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            sha = digest.hexdigest()
            dest = self.path_of(sha)
            if dest.exists() and dest.stat().st_size == size:
                os.unlink(tmp)
            else:
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp, dest)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        media = mimetypes.guess_type(src.name)[0] or (
            "text/plain" if src.suffix in {".log", ".txt"} else "application/octet-stream"
        )
        return StoredArtifact(name or src.name, sha, size, media, self.relpath(sha))

    def verify(self, sha256: str) -> bool:
        """True when the stored file is present and still hashes to its name."""
        path = self.path_of(sha256)
        if not path.is_file():
            return False
        digest = hashlib.sha256()
        with path.open("rb") as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
        return digest.hexdigest() == sha256

    def copy_out(self, sha256: str, dest: str | os.PathLike[str]) -> Path:
        """Copy a stored file out (for a report or a person)."""
        return Path(shutil.copyfile(self.path_of(sha256), dest))

"""The verdict report as a PDF, printed by headless Chromium (Debian's ``chromium``) from a
self-contained HTML file: stylesheet inlined, images as ``data:`` URIs, no network, no cookie.

Example::

    pdf_bytes = html_to_pdf(html_text)      # PdfUnavailable when no Chromium is installed
"""

from __future__ import annotations

import base64
import shutil
import subprocess
import tempfile
from pathlib import Path

PDF_TIMEOUT_S = 90.0


class PdfUnavailable(RuntimeError):
    """No Chromium to print with, or it failed: the message says what to do."""


def chromium() -> str:
    """The Chromium executable (PdfUnavailable when none is installed)."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise PdfUnavailable("no Chromium installed (Debian: apt-get install chromium): print the report from the browser")


def data_uri(path: Path, media_type: str) -> str:
    """A file as a ``data:`` URI (for images inside the self-contained report)."""
    return f"data:{media_type};base64," + base64.b64encode(path.read_bytes()).decode()


def html_to_pdf(html: str, *, timeout: float = PDF_TIMEOUT_S) -> bytes:
    """Print self-contained HTML to an A4 PDF with headless Chromium."""
    exe = chromium()
    with tempfile.TemporaryDirectory(prefix="stblab-pdf-") as tmp:
        src, out = Path(tmp) / "report.html", Path(tmp) / "report.pdf"
        src.write_text(html, encoding="utf-8")
        cmd = [
            exe,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-pdf-header-footer",
            f"--user-data-dir={Path(tmp) / 'profile'}",
            f"--print-to-pdf={out}",
            src.as_uri(),
        ]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise PdfUnavailable(f"Chromium did not print the report in {timeout:.0f} s") from None
        if not out.is_file() or out.stat().st_size == 0:
            tail = " | ".join((proc.stderr or "").strip().splitlines()[-3:])
            raise PdfUnavailable(f"Chromium printed no PDF (exit {proc.returncode}): {tail}")
        return out.read_bytes()

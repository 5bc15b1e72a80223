"""The signed firmware image format of stblab boxes (real and emulated).

Layout (all integers big-endian)::

    b"STBFW\\x01\\n"            magic, format 1
    u32 manifest length
    manifest                   UTF-8 JSON: format, model, version, build_id,
                               payload_sha256, payload_size, key_id, created
    payload                    payload_size bytes (the root filesystem)
    b"STBSIG" + 64 bytes       Ed25519 signature over everything before it (absent: unsigned)

Example::

    key = generate_key("vendor_ed25519")          # writes vendor_ed25519 and .pub
    data = build_image(model="STB-4K-X1", version="2.1.0", key=key)
    image = parse_image(data)
    image.verify(trusted=[key.public_key()], model="STB-4K-X1")   # raises ImageError if bad
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

MAGIC = b"STBFW\x01\n"
SIG_MAGIC = b"STBSIG"
SIG_LEN = 64
MAX_MANIFEST = 64 * 1024


class ImageError(ValueError):
    """An image was refused. ``reason`` is a stable code, ``str(exc)`` a sentence for people.

    Reasons: ``bad-magic``, ``truncated``, ``bad-manifest``, ``payload-hash``, ``unsigned``,
    ``untrusted-key``, ``bad-signature``, ``wrong-model``.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def key_id(public_key: Ed25519PublicKey) -> str:
    """Short stable identifier of a signing key: the first 16 hex digits of sha256(raw key)."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def generate_key(path: str | os.PathLike[str]) -> Ed25519PrivateKey:
    """Create an Ed25519 signing key: ``path`` (PEM, mode 0600) and ``path.pub`` (OpenSSH)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    pub = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    Path(str(path) + ".pub").write_bytes(pub + b" stblab-firmware\n")
    return key


def load_private_key(path: str | os.PathLike[str]) -> Ed25519PrivateKey:
    """Read an Ed25519 private key (PEM/PKCS8 or OpenSSH format)."""
    data = Path(path).read_bytes()
    key: object
    try:
        if b"OPENSSH PRIVATE KEY" in data:
            key = serialization.load_ssh_private_key(data, password=None)
        else:
            key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ImageError("bad-key", f"{path}: not a readable unencrypted private key ({exc})") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ImageError("bad-key", f"{path}: signing key must be Ed25519")
    return key


def load_public_key(path: str | os.PathLike[str]) -> Ed25519PublicKey:
    """Read an Ed25519 public key (OpenSSH ``ssh-ed25519 AAAA...`` line or PEM)."""
    data = Path(path).read_bytes()
    key: object
    try:
        if data.startswith(b"ssh-ed25519"):
            key = serialization.load_ssh_public_key(data.split(b" ", 2)[0] + b" " + data.split()[1])
        else:
            key = serialization.load_pem_public_key(data)
    except (ValueError, IndexError) as exc:
        raise ImageError("bad-key", f"{path}: not a readable public key ({exc})") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise ImageError("bad-key", f"{path}: public key must be Ed25519")
    return key


@dataclass(frozen=True)
class FirmwareImage:
    """A parsed image. ``signed_part`` is the bytes the signature covers."""

    manifest: dict[str, object]
    payload: bytes
    signature: bytes | None
    signed_part: bytes
    sha256: str

    @property
    def model(self) -> str:
        return str(self.manifest["model"])

    @property
    def version(self) -> str:
        return str(self.manifest["version"])

    @property
    def build_id(self) -> str:
        return str(self.manifest["build_id"])

    def verify(self, trusted: list[Ed25519PublicKey], model: str | None = None) -> None:
        """Check payload hash, signature by one of ``trusted`` and (if given) the model.

        Raises :class:`ImageError` with the reason; returns None when the image may be installed.
        """
        digest = hashlib.sha256(self.payload).hexdigest()
        if digest != self.manifest.get("payload_sha256"):
            raise ImageError("payload-hash", "payload sha256 does not match the manifest")
        if self.signature is None:
            raise ImageError("unsigned", "image is not signed")
        kid = self.manifest.get("key_id")
        by_id = {key_id(k): k for k in trusted}
        key = by_id.get(str(kid))
        if key is None:
            raise ImageError("untrusted-key", f"image is signed with key {kid}, which this box does not trust")
        try:
            key.verify(self.signature, self.signed_part)
        except InvalidSignature as exc:
            raise ImageError("bad-signature", "signature does not verify") from exc
        if model is not None and self.model != model:
            raise ImageError("wrong-model", f"image is for model {self.model}, this box is {model}")


def build_image(
    *,
    model: str,
    version: str,
    key: Ed25519PrivateKey | None,
    payload: bytes | None = None,
    build_id: str | None = None,
) -> bytes:
    """Build an image; ``key=None`` builds an unsigned one (boxes refuse it)."""
    if payload is None:
        # A deterministic stand-in root filesystem: distinct per model and version.
        seed = hashlib.sha256(f"{model}/{version}".encode()).digest()
        payload = b"STBROOTFS\n" + seed * 2048
    manifest = {
        "format": 1,
        "model": model,
        "version": version,
        "build_id": build_id or hashlib.sha256(payload).hexdigest()[:12],
        "payload_sha256": hashlib.sha256(payload).hexdigest(),
        "payload_size": len(payload),
        "key_id": key_id(key.public_key()) if key else None,
        "created": int(time.time()),
    }
    body = json.dumps(manifest, sort_keys=True).encode()
    signed = MAGIC + struct.pack(">I", len(body)) + body + payload
    if key is None:
        return signed
    return signed + SIG_MAGIC + key.sign(signed)


def parse_image(data: bytes) -> FirmwareImage:
    """Parse the bytes of an image; raises :class:`ImageError` on malformed or truncated input."""
    if not data.startswith(MAGIC):
        raise ImageError("bad-magic", "not an stblab firmware image (bad magic)")
    if len(data) < len(MAGIC) + 4:
        raise ImageError("truncated", "image is truncated (no manifest length)")
    (mlen,) = struct.unpack(">I", data[len(MAGIC) : len(MAGIC) + 4])
    if mlen > MAX_MANIFEST:
        raise ImageError("bad-manifest", f"manifest length {mlen} is implausible")
    start = len(MAGIC) + 4
    if len(data) < start + mlen:
        raise ImageError("truncated", "image is truncated inside the manifest")
    try:
        manifest = json.loads(data[start : start + mlen])
    except (ValueError, UnicodeDecodeError) as exc:
        raise ImageError("bad-manifest", f"manifest is not JSON ({exc})") from exc
    required = ("model", "version", "build_id", "payload_sha256", "payload_size")
    if not isinstance(manifest, dict) or any(k not in manifest for k in required):
        raise ImageError("bad-manifest", f"manifest lacks one of {', '.join(required)}")
    size = manifest["payload_size"]
    if not isinstance(size, int) or size < 0:
        raise ImageError("bad-manifest", "payload_size must be a non-negative integer")
    pend = start + mlen + size
    if len(data) < pend:
        raise ImageError("truncated", f"image is truncated: payload needs {size} bytes, has {len(data) - start - mlen}")
    tail = data[pend:]
    signature: bytes | None
    if not tail:
        signature = None
    elif tail.startswith(SIG_MAGIC) and len(tail) == len(SIG_MAGIC) + SIG_LEN:
        signature = tail[len(SIG_MAGIC) :]
    elif tail.startswith(SIG_MAGIC) and len(tail) < len(SIG_MAGIC) + SIG_LEN:
        raise ImageError("truncated", "image is truncated inside the signature")
    else:
        raise ImageError("bad-manifest", f"{len(tail)} unexpected bytes after the payload")
    return FirmwareImage(
        manifest=manifest,
        payload=data[start + mlen : pend],
        signature=signature,
        signed_part=data[:pend],
        sha256=hashlib.sha256(data).hexdigest(),
    )


def read_image(path: str | os.PathLike[str]) -> FirmwareImage:
    """Parse the image file at ``path``."""
    return parse_image(Path(path).read_bytes())

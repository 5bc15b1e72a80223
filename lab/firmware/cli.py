"""``stblab firmware``: build, sign and inspect firmware images.

Example::

    stblab firmware keygen keys/vendor_ed25519
    stblab firmware build --model STB-4K-X1 --version 2.1.0 --key keys/vendor_ed25519 -o fw-2.1.0.img
    stblab firmware info fw-2.1.0.img --json

``app`` is a typer group so more commands (the firmware gate) can be added beside these.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import typer

from lab.firmware.image import ImageError, build_image, generate_key, key_id, load_private_key, read_image
from lab.firmware.version import FirmwareVersion

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Build, sign and inspect firmware images.")


def _fail(message: str, code: int = 1) -> typer.Exit:
    print(f"stblab firmware: {message}", file=sys.stderr)
    return typer.Exit(code)


@app.command()
def build(
    model: str = typer.Option(..., "--model", help="box model the image is for, e.g. STB-4K-X1"),
    version: str = typer.Option(..., "--version", help="firmware version, e.g. 2.1.0"),
    output: Path = typer.Option(..., "-o", "--output", help="image file to write"),
    key: Path | None = typer.Option(None, "--key", help="Ed25519 signing key (PEM or OpenSSH private key)"),
    build_id: str | None = typer.Option(None, "--build-id", help="build identifier (default: from the payload)"),
    payload: Path | None = typer.Option(None, "--payload", help="root filesystem file (default: a stand-in)"),
    unsigned: bool = typer.Option(False, "--unsigned", help="build without a signature (boxes refuse it)"),
) -> None:
    """Build a signed image (or an unsigned one with --unsigned)."""
    try:
        FirmwareVersion(version)
    except ValueError as exc:
        raise _fail(f"--version: {exc}", 2) from exc
    if not model.strip():
        raise _fail("--model must not be empty", 2)
    if unsigned and key is not None:
        raise _fail("--unsigned and --key exclude each other", 2)
    if not unsigned and key is None:
        raise _fail("--key is required (or --unsigned for an image boxes will refuse)", 2)
    try:
        private = load_private_key(key) if key is not None else None
    except OSError as exc:
        raise _fail(f"--key {key}: {exc.strerror or exc}", 2) from exc
    except ImageError as exc:
        raise _fail(str(exc), 2) from exc
    try:
        data_payload = payload.read_bytes() if payload is not None else None
    except OSError as exc:
        raise _fail(f"--payload {payload}: {exc.strerror or exc}", 2) from exc
    data = build_image(model=model, version=version, key=private, payload=data_payload, build_id=build_id)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, output)
    image = read_image(output)
    signer = f"signed by key {key_id(private.public_key())}" if private is not None else "UNSIGNED"
    print(f"{output}: {model} {version} build {image.build_id}, {len(data)} bytes, {signer}")


@app.command()
def keygen(
    path: Path = typer.Argument(..., help="private key file to create (the public key goes to PATH.pub)"),
    force: bool = typer.Option(False, "--force", help="overwrite an existing key"),
) -> None:
    """Create an Ed25519 signing key pair (PATH mode 0600, PATH.pub)."""
    if path.exists() and not force:
        raise _fail(f"{path} exists; refusing to overwrite a signing key (use --force)", 2)
    key = generate_key(path)
    print(f"{path}: Ed25519 signing key {key_id(key.public_key())}; public key {path}.pub")


@app.command()
def info(
    image: Path = typer.Argument(..., help="firmware image file"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Show an image's manifest, size, sha256 and whether it is signed and intact."""
    try:
        parsed = read_image(image)
    except OSError as exc:
        raise _fail(f"{image}: {exc.strerror or exc}") from exc
    except ImageError as exc:
        raise _fail(f"{image}: {exc} ({exc.reason})") from exc
    import hashlib

    intact = hashlib.sha256(parsed.payload).hexdigest() == parsed.manifest.get("payload_sha256")
    doc = {
        "file": str(image),
        "model": parsed.model,
        "version": parsed.version,
        "build_id": parsed.build_id,
        "key_id": parsed.manifest.get("key_id"),
        "signed": parsed.signature is not None,
        "payload_intact": intact,
        "payload_size": len(parsed.payload),
        "sha256": parsed.sha256,
        "manifest": parsed.manifest,
    }
    if as_json:
        print(json.dumps(doc, sort_keys=True))
        return
    for k in ("model", "version", "build_id", "key_id", "signed", "payload_intact", "payload_size", "sha256"):
        print(f"{k:<15}{doc[k]}")


__all__ = ["app"]


def _register_more() -> None:
    from lab.firmware.gate_cli import register

    register(app)


_register_more()

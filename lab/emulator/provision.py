"""First-start provisioning of an emulated rig's keys.

* the lab's SSH client key (``ssh.key``, Ed25519, OpenSSH format, mode 0600, plus ``.pub``),
  authorised on the box;
* the vendor signing key pair for each missing ``emulate.trusted_keys`` entry (private key at the
  path without ``.pub``, via :func:`lab.firmware.generate_key`);
* the device's persistent SSH host key in its state folder;
* the host key line in ``ssh.known_hosts``, only when that host:port has no entry yet. An existing
  entry is never overwritten: a changed host key must be detected by the client.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from lab.firmware import generate_key, load_public_key


def _locked(path: Path):  # noqa: ANN202 - small context helper
    path.parent.mkdir(parents=True, exist_ok=True)
    fh = open(str(path) + ".lock", "a+")  # noqa: SIM115 - closed by caller
    fcntl.flock(fh, fcntl.LOCK_EX)
    return fh


def ensure_client_key(path: Path) -> str:
    """Create the lab SSH key pair at ``path`` if missing; returns the public key line (``ssh-ed25519 AAAA``)."""
    lock = _locked(path)
    try:
        if not path.exists():
            key = Ed25519PrivateKey.generate()
            pem = key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
            )
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(pem)
            pub = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
            Path(str(path) + ".pub").write_bytes(pub + b" stblab-lab\n")
        pub_path = Path(str(path) + ".pub")
        if pub_path.exists():
            return " ".join(pub_path.read_text().split()[:2])
        loaded = serialization.load_ssh_private_key(path.read_bytes(), password=None)
        line = loaded.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        return line.decode()
    finally:
        lock.close()


def ensure_vendor_keys(paths: list[Path]) -> list[Ed25519PublicKey]:
    """Make the vendor signing key pair behind each missing trusted ``.pub``; returns the public keys."""
    keys = []
    for pub in paths:
        pub = Path(pub)
        lock = _locked(pub)
        try:
            if not pub.exists():
                private = pub.with_suffix("") if pub.suffix == ".pub" else Path(str(pub) + ".key")
                key = generate_key(private)
                if not pub.exists():  # generate_key wrote private + ".pub"
                    pub.write_bytes(Path(str(private) + ".pub").read_bytes())
                keys.append(key.public_key())
            else:
                keys.append(load_public_key(pub))
        finally:
            lock.close()
    return keys


def ensure_host_key(path: Path) -> paramiko.Ed25519Key:
    """The device's persistent Ed25519 host key (made on first start, mode 0600)."""
    if not path.exists():
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
    return paramiko.Ed25519Key(filename=str(path))


def known_hosts_name(host: str, port: int) -> str:
    """How OpenSSH names host:port in known_hosts (``[host]:port`` unless port 22)."""
    return host if port == 22 else f"[{host}]:{port}"


def ensure_known_host(known_hosts: Path, host: str, port: int, key: paramiko.PKey) -> bool:
    """Add ``host:port``'s key to ``known_hosts`` unless the host already has an entry.

    Returns True when a line was added. Never replaces an existing entry.
    """
    name = known_hosts_name(host, port)
    lock = _locked(known_hosts)
    try:
        if known_hosts.exists():
            for line in known_hosts.read_text(encoding="utf-8", errors="replace").splitlines():
                fields = line.split()
                if fields and not line.startswith("#") and name in fields[0].split(","):
                    return False
        with open(known_hosts, "a", encoding="utf-8") as fh:
            fh.write(f"{name} {key.get_name()} {key.get_base64()}\n")
        return True
    finally:
        lock.close()


__all__ = ["ensure_client_key", "ensure_host_key", "ensure_known_host", "ensure_vendor_keys", "known_hosts_name"]

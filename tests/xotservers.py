"""BIND 9.18 as an XoT primary (RFC 9103), with certificates the test makes.

    pki = Pki.make(tmp_path / "pki")          # a CA and a server cert for 127.0.0.1, ns1.xot.test
    primary = XotBind.start_tls(tmp_path / "bind", {"example.com": zone_text()}, pki=pki)
    primary.tls_port                          # TLS listener; primary.port stays plain DNS

The plain port is kept so that readiness polling and nsupdate work as for
:class:`servers.Bind`; the TLS listener is ``listen-on port P tls NAME``.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from servers import LOOPBACK, Bind, ZoneSource, _named_conf, _quote, _Setup, free_port, need_binary

SERVER_NAME = "ns1.xot.test"


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


@dataclass(frozen=True, slots=True)
class Pki:
    """A CA (``ca``), a server certificate and key signed by it, and an unrelated CA."""

    ca: Path
    cert: Path
    key: Path
    other_ca: Path
    pin: str  # base64 SHA-256 of the server key's SubjectPublicKeyInfo

    @classmethod
    def make(cls, directory: Path, names: tuple[str, ...] = (SERVER_NAME,)) -> Pki:
        directory.mkdir(parents=True, exist_ok=True)
        now = datetime.datetime.now(datetime.UTC)

        def ca_cert(common: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
            key = ec.generate_private_key(ec.SECP256R1())
            cert = (
                x509.CertificateBuilder()
                .subject_name(_name(common))
                .issuer_name(_name(common))
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(hours=1))
                .not_valid_after(now + datetime.timedelta(days=2))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .add_extension(
                    x509.KeyUsage(
                        digital_signature=True,
                        content_commitment=False,
                        key_encipherment=False,
                        data_encipherment=False,
                        key_agreement=False,
                        key_cert_sign=True,
                        crl_sign=True,
                        encipher_only=False,
                        decipher_only=False,
                    ),
                    critical=True,
                )
                .sign(key, hashes.SHA256())
            )
            return cert, key

        ca, ca_key = ca_cert("secdns test CA")
        other, _ = ca_cert("secdns other CA")
        server_key = ec.generate_private_key(ec.SECP256R1())
        sans: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
        sans.append(x509.IPAddress(ipaddress.ip_address(LOOPBACK)))
        server = (
            x509.CertificateBuilder()
            .subject_name(_name(names[0]))
            .issuer_name(ca.subject)
            .public_key(server_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )
        paths = {n: directory / f"{n}.pem" for n in ("ca", "cert", "key", "other_ca")}
        paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        paths["other_ca"].write_bytes(other.public_bytes(serialization.Encoding.PEM))
        paths["cert"].write_bytes(server.public_bytes(serialization.Encoding.PEM))
        _write_key(paths["key"], server_key)
        spki = server_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        pin = base64.b64encode(hashlib.sha256(spki).digest()).decode()
        return cls(**paths, pin=pin)


class XotBind(Bind):
    """named with a TLS listener (``tls_port``) next to its plain DNS port."""

    tls_port: int = 0

    @classmethod
    def start_tls(
        cls,
        tmp_dir: Path,
        zones: Mapping[str, ZoneSource],
        *,
        pki: Pki,
        tsig: Mapping[str, tuple[str, str]] | None = None,
        allow_transfer_key: str | None = None,
        **options: Any,
    ) -> Self:
        named = need_binary(cls.program)
        setup = _Setup.prepare(
            tmp_dir, zones, tsig=tsig, allow_transfer_key=allow_transfer_key, **options
        )
        chosen: dict[str, int] = {}

        def configure(port: int) -> list[str]:
            chosen["tls"] = tls_port = free_port()
            conf = _named_conf(setup, port, True, True)
            tls_block = (
                f"tls xot {{ cert-file {_quote(pki.cert)}; key-file {_quote(pki.key)}; }};\n"
            )
            plain = f"    listen-on port {port} {{ {LOOPBACK}; }};\n"
            assert plain in conf
            conf = tls_block + conf.replace(
                plain, plain + f"    listen-on port {tls_port} tls xot {{ {LOOPBACK}; }};\n"
            )
            path = setup.workdir / "named.conf"
            path.write_text(conf)
            return [named, "-g", "-4", "-n", "2", "-c", str(path)]

        server = cls._launch(setup, configure)
        server.tls_port = chosen["tls"]
        return server

    @property
    def tls_addr(self) -> str:
        return f"{self.host}:{self.tls_port}"

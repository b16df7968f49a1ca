"""Certificates and kubeconfigs for the local control plane (see control_plane.py).

A real kube-apiserver only talks TLS and authenticates its clients, so the fixture is
its own small certificate authority: one CA signs the apiserver's serving certificate
and a client certificate per component, whose subject is the identity RBAC sees
(CN = user, O = groups). Everything is made fresh for every start, in the start's temp
dir, with the `cryptography` package: no openssl, no cfssl, nothing shared between runs.

TLS keys are ECDSA P-256 (a millisecond each, where RSA 2048 takes ~100 ms); the
ServiceAccount token signing key is RSA 2048, the key type every Kubernetes version and
every token consumer accepts.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

type PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

# Names the apiserver answers to: loopback, the first IP of --service-cluster-ip-range
# (the `kubernetes` Service) and the in-cluster DNS names of that Service.
APISERVER_IPS = ("127.0.0.1", "10.0.0.1")
APISERVER_DNS_NAMES = (
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)
VALIDITY = datetime.timedelta(days=2)


@dataclass(frozen=True)
class KeyPair:
    """A certificate and its private key, as PEM files."""

    cert: Path
    key: Path


def _ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(key: PrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _name(common_name: str, organizations: tuple[str, ...] = ()) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organizations]
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


class CertificateAuthority:
    """A self-signed CA kept in memory (key) and on disk (cert), issuing leaf certificates."""

    def __init__(self, directory: Path, common_name: str = "apex-control-plane-ca") -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self._key = _ec_key()
        now = datetime.datetime.now(datetime.UTC)
        name = _name(common_name)
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(cert_sign=True), critical=True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()), critical=False
            )
            .sign(self._key, hashes.SHA256())
        )
        self.cert_path = self.dir / "ca.crt"
        self.cert_path.write_bytes(self.pem)
        _write_key(self._key, self.dir / "ca.key")

    @property
    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def issue(
        self,
        name: str,
        common_name: str,
        organizations: tuple[str, ...] = (),
        dns_names: tuple[str, ...] = (),
        ips: tuple[str, ...] = (),
    ) -> KeyPair:
        """A leaf certificate: a serving one when it has SANs, else a client one."""
        key = _ec_key()
        now = datetime.datetime.now(datetime.UTC)
        server = bool(dns_names or ips)
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name, organizations))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(cert_sign=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if server:
            names: list[x509.GeneralName] = [x509.DNSName(dns) for dns in dns_names]
            names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        pair = KeyPair(cert=self.dir / f"{name}.crt", key=self.dir / f"{name}.key")
        pair.cert.write_bytes(
            builder.sign(self._key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
        )
        _write_key(key, pair.key)
        return pair

    def serving_pair(self) -> KeyPair:
        """The apiserver's serving certificate (SANs: APISERVER_IPS and APISERVER_DNS_NAMES)."""
        return self.issue(
            "apiserver", "kube-apiserver", dns_names=APISERVER_DNS_NAMES, ips=APISERVER_IPS
        )


def _key_usage(cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=not cert_sign,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def service_account_key_pair(directory: Path) -> KeyPair:
    """The RSA key that signs ServiceAccount tokens (private) and verifies them (public)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pair = KeyPair(cert=directory / "sa.pub", key=directory / "sa.key")
    _write_key(key, pair.key)
    pair.cert.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return pair


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def write_kubeconfig(
    path: Path, server: str, ca: Path, user: str, client: KeyPair | None = None, token: str = ""
) -> Path:
    """A self-contained kubeconfig (certificates inlined): client cert or bearer token."""
    credentials: dict[str, Any] = {"token": token}
    if client is not None:
        credentials = {
            "client-certificate-data": _b64(client.cert),
            "client-key-data": _b64(client.key),
        }
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "control-plane",
                "cluster": {"server": server, "certificate-authority-data": _b64(ca)},
            }
        ],
        "users": [{"name": user, "user": credentials}],
        "contexts": [{"name": user, "context": {"cluster": "control-plane", "user": user}}],
        "current-context": user,
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
    return path

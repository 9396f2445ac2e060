"""The mesh's certificate authority: short-lived SPIFFE certificates for every service.

The control plane is the CA (a key made at start, kept in memory) or is given one (`MeshCA.load`,
the same files on every replica, so every replica's certificates are trusted everywhere). Each
service's sidecars get one certificate whose URI SAN is `spiffe://<trust domain>/svc/<service>`,
valid for `lifetime` (one hour by default) and replaced over SDS when half of it has passed:
Envoy swaps it without a restart or a dropped connection.
"""

from __future__ import annotations

import datetime
import threading
from pathlib import Path
from typing import NamedTuple

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from nomadmesh.contract import DEFAULT_TRUST_DOMAIN, spiffe_id
from nomadmesh.errors import XdsError

DEFAULT_LIFETIME = datetime.timedelta(hours=1)
# Clocks of the hosts in a mesh differ a little: certificates are valid from slightly before now.
_BACKDATE = datetime.timedelta(minutes=5)


class Identity(NamedTuple):
    """A service's certificate (PEM), its private key (PEM) and when it is to be renewed."""

    service: str
    certificate: bytes
    private_key: bytes
    renew_at: datetime.datetime


class MeshCA:
    """Issues and renews each service's SPIFFE certificate; thread-safe."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, certificate: x509.Certificate, *,
                 trust_domain: str = DEFAULT_TRUST_DOMAIN,
                 lifetime: datetime.timedelta = DEFAULT_LIFETIME) -> None:
        if lifetime <= datetime.timedelta(seconds=2):
            raise XdsError(f"certificate lifetime {lifetime} is too short (more than 2s)")
        self.trust_domain = trust_domain
        self.lifetime = lifetime
        self._key = key
        self._certificate = certificate
        self.bundle = certificate.public_bytes(serialization.Encoding.PEM)
        self._lock = threading.Lock()
        self._issued: dict[str, Identity] = {}

    @classmethod
    def generate(cls, *, trust_domain: str = DEFAULT_TRUST_DOMAIN,
                 lifetime: datetime.timedelta = DEFAULT_LIFETIME) -> MeshCA:
        """A new CA whose key never leaves this process (valid ten years)."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"nomadmesh CA {trust_domain}")])
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE).not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256())
        )
        return cls(key, certificate, trust_domain=trust_domain, lifetime=lifetime)

    @classmethod
    def load(cls, cert_file: str | Path, key_file: str | Path, *,
             trust_domain: str = DEFAULT_TRUST_DOMAIN,
             lifetime: datetime.timedelta = DEFAULT_LIFETIME) -> MeshCA:
        """A CA from PEM files (an EC or RSA key); XdsError naming the file if unusable."""
        try:
            certificate = x509.load_pem_x509_certificate(Path(cert_file).read_bytes())
        except OSError as exc:
            raise XdsError(f"cannot read CA certificate {cert_file}: {exc.strerror}") from None
        except ValueError:
            raise XdsError(f"CA certificate {cert_file} is not a PEM certificate") from None
        try:
            key = serialization.load_pem_private_key(Path(key_file).read_bytes(), password=None)
        except OSError as exc:
            raise XdsError(f"cannot read CA key {key_file}: {exc.strerror}") from None
        except (ValueError, TypeError):
            raise XdsError(f"CA key {key_file} is not an unencrypted PEM private key") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise XdsError(f"CA key {key_file} must be an EC key")
        return cls(key, certificate, trust_domain=trust_domain, lifetime=lifetime)

    def identity(self, service: str, now: datetime.datetime | None = None) -> Identity:
        """The service's current certificate, issued anew when its renewal time has come."""
        now = now or datetime.datetime.now(datetime.timezone.utc)
        with self._lock:
            current = self._issued.get(service)
            if current is None or now >= current.renew_at:
                current = self._issued[service] = self._issue(service, now)
            return current

    def next_renewal(self) -> datetime.datetime | None:
        """When the first issued certificate is due for renewal."""
        with self._lock:
            return min((i.renew_at for i in self._issued.values()), default=None)

    def forget(self, service: str) -> None:
        """Drop a service's certificate (the service left the mesh)."""
        with self._lock:
            self._issued.pop(service, None)

    def _issue(self, service: str, now: datetime.datetime) -> Identity:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, service[:64])])
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name).issuer_name(self._certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE).not_valid_after(now + self.lifetime)
            .add_extension(x509.SubjectAlternativeName(
                [x509.UniformResourceIdentifier(spiffe_id(service, self.trust_domain))]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH,
                                                  x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .sign(self._key, hashes.SHA256())
        )
        return Identity(
            service,
            certificate.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()),
            now + self.lifetime / 2,
        )

"""TLS: server contexts (TLS 1.2 or later only) and certificates for a LAN without a CA.

`make_self_signed` makes a local CA that can vouch only for the given names (X.509 name
constraints) and whose private key is never written anywhere, plus the hub's leaf
certificate (CA:FALSE, the given SANs, serverAuth). Operators trust `hub-ca.pem` and nothing
else: a certificate for any other name cannot be made with it (no key), and would not verify
if it could (name constraints); the leaf's own key cannot sign certificates (CA:FALSE).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_FILE, CERT_FILE, KEY_FILE = "hub-ca.pem", "hub-cert.pem", "hub-key.pem"
# Permitted subtrees for a name family the operator did not list: addresses no server has,
# so with them present every name of that family is outside the constraints.
_NOTHING_DNS = "invalid"  # RFC 2606: reserved, never resolves
_NOTHING_V4 = ipaddress.ip_network("0.0.0.0/32")
_NOTHING_V6 = ipaddress.ip_network("::/128")


class TlsError(Exception):
    """A host name or address cannot go into a certificate."""


@dataclass(frozen=True)
class TlsFiles:
    """What `make_self_signed` wrote: trust `ca` on each client; serve `cert` and `key`."""

    ca: Path  # the local CA certificate: the only thing operators trust
    cert: Path  # the hub's leaf, followed by the CA certificate (the chain the server sends)
    key: Path  # the leaf's private key (0600)


def server_context(cert: str | Path, key: str | Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(cert), str(key))
    return ctx


def client_context(ca: str | Path) -> ssl.SSLContext:
    """A client context (TLS 1.2 or later) that trusts only the CA certificate `ca` (PEM):
    a town hub's uplink to a city hub with a private CA. OSError/ssl.SSLError if unreadable."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def _names(hosts: list[str]) -> tuple[list[str], list[ipaddress.IPv4Address | ipaddress.IPv6Address]]:
    if not hosts:
        raise TlsError("give at least one host name or IP address")
    dns: list[str] = []
    ips: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    for h in hosts:
        try:
            ips.append(ipaddress.ip_address(h))
        except ValueError:
            name = h.strip().lower().rstrip(".")
            if not name or "*" in name or any(not p for p in name.split(".")):
                raise TlsError(f"{h!r} is not a host name (no wildcards)") from None
            dns.append(name)
    return dns, ips


def build_ca(hosts: list[str], now: dt.datetime, days: int) -> tuple[x509.Certificate,
                                                                     ec.EllipticCurvePrivateKey]:
    """A CA certificate constrained to exactly `hosts` (DNS names: and their subdomains, which
    X.509 cannot exclude), path length 0. The caller decides what becomes of the key."""
    dns, ips = _names(hosts)
    key = ec.generate_private_key(ec.SECP256R1())
    permitted: list[x509.GeneralName] = [x509.DNSName(n) for n in dns or [_NOTHING_DNS]]
    v4 = [ipaddress.ip_network(ip) for ip in ips if ip.version == 4] or [_NOTHING_V4]
    v6 = [ipaddress.ip_network(ip) for ip in ips if ip.version == 6] or [_NOTHING_V6]
    permitted += [x509.IPAddress(net) for net in [*v4, *v6]]
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"CommandHub local CA ({hosts[0]})"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "CommandHub")])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, key_cert_sign=True, crl_sign=True,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.NameConstraints(permitted_subtrees=permitted, excluded_subtrees=None),
                       critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def build_leaf(ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, hosts: list[str],
               now: dt.datetime, days: int) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A server certificate for `hosts` issued by `ca`: CA:FALSE, SANs, serverAuth."""
    dns, ips = _names(hosts)
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dns]
    sans += [x509.IPAddress(ip) for ip in ips]
    cert = (
        x509.CertificateBuilder()
        # not a host name (OpenSSL checks a host-name-like CN against the CA's DNS constraints
        # when the leaf has no DNS SAN): the SANs carry the names
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"CommandHub hub ({hosts[0]})")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, key_cert_sign=False, crl_sign=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


def make_self_signed(hosts: list[str], out: Path, days: int = 825) -> TlsFiles:
    """Write hub-ca.pem, hub-cert.pem (leaf + CA) and hub-key.pem (0600) for `hosts`.

    The CA's private key exists only in memory while the leaf is signed: nothing else can
    ever be issued under the CA operators trust (a new `self-signed` makes a new CA).
    """
    now = dt.datetime.now(dt.UTC)
    ca, ca_key = build_ca(hosts, now, days)
    leaf, key = build_leaf(ca, ca_key, hosts, now, days)
    del ca_key
    out.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(out / CA_FILE, out / CERT_FILE, out / KEY_FILE)
    pem = serialization.Encoding.PEM
    files.ca.write_bytes(ca.public_bytes(pem))
    files.cert.write_bytes(leaf.public_bytes(pem) + ca.public_bytes(pem))
    fd = os.open(files.key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    os.chmod(files.key, 0o600)  # also when it already existed with other permissions
    return files


def fingerprint(cert_path: Path) -> str:
    """SHA-256 fingerprint of the first certificate in a PEM file."""
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    return "SHA256 " + cert.fingerprint(hashes.SHA256()).hex(":").upper()


def constraints_text(ca_path: Path) -> str:
    """The names a CA certificate may vouch for, as operators should read them."""
    cert = x509.load_pem_x509_certificate(ca_path.read_bytes())
    nc = cert.extensions.get_extension_for_class(x509.NameConstraints).value
    names = []
    for g in nc.permitted_subtrees or []:
        v = g.value
        if v in (_NOTHING_DNS, _NOTHING_V4, _NOTHING_V6):
            continue
        names.append(str(v.network_address) if isinstance(g, x509.IPAddress) else str(v))
    return ", ".join(names)

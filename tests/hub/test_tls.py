"""`tls self-signed`: what operators are told to trust vouches for the hub's names and nothing else
(checked with the openssl CLI, cryptography's verifier and real TLS handshakes)."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from hub.tls import build_ca, build_leaf, make_self_signed

HOSTS = ["127.0.0.1", "localhost", "hub.lan"]


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def openssl_verify(tmp: Path, ca: Path, leaf: x509.Certificate, *extra: str,
                   untrusted: x509.Certificate | None = None) -> subprocess.CompletedProcess[str]:
    leaf_file = tmp / "leaf-under-test.pem"
    leaf_file.write_bytes(pem(leaf))
    args = ["openssl", "verify", "-CAfile", str(ca), "-purpose", "sslserver", *extra]
    if untrusted is not None:
        (tmp / "untrusted.pem").write_bytes(pem(untrusted))
        args += ["-untrusted", str(tmp / "untrusted.pem")]
    return subprocess.run([*args, str(leaf_file)], capture_output=True, text=True, check=False)


def cryptography_verify(ca: x509.Certificate, leaf: x509.Certificate, name: x509.GeneralName,
                        chain: list[x509.Certificate] | None = None) -> None:
    verifier = PolicyBuilder().store(Store([ca])).time(dt.datetime.now(dt.UTC)) \
        .build_server_verifier(name)
    verifier.verify(leaf, chain or [])


def test_cli_writes_a_constrained_ca_and_a_leaf_and_no_ca_key(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "hub", "tls", "self-signed", "--host", *HOSTS,
                        "--out", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hub-ca.pem", "hub-cert.pem",
                                                          "hub-key.pem"]
    assert (tmp_path / "hub-key.pem").stat().st_mode & 0o777 == 0o600
    assert "Trust exactly hub-ca.pem" in r.stdout and "Do not trust hub-cert.pem" in r.stdout
    ca = x509.load_pem_x509_certificate((tmp_path / "hub-ca.pem").read_bytes())
    assert ca.fingerprint(hashes.SHA256()).hex(":").upper() in r.stdout
    leaf = x509.load_pem_x509_certificates((tmp_path / "hub-cert.pem").read_bytes())[0]
    bc = leaf.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert bc.ca is False
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(map(str, sans.get_values_for_type(x509.DNSName))) == ["hub.lan", "localhost"]
    assert [str(i) for i in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert ca.extensions.get_extension_for_class(x509.NameConstraints).critical
    ca_file = tmp_path / "hub-ca.pem"
    for check in (("-verify_hostname", "localhost"), ("-verify_hostname", "hub.lan"),
                  ("-verify_ip", "127.0.0.1")):
        v = openssl_verify(tmp_path, ca_file, leaf, *check)
        assert v.returncode == 0 and ": OK" in v.stdout, (check, v.stdout, v.stderr)
    v = openssl_verify(tmp_path, ca_file, leaf, "-verify_hostname", "evil.example")
    assert v.returncode != 0
    cryptography_verify(ca, leaf, x509.DNSName("hub.lan"))


@pytest.mark.parametrize("names", [["evil.example"], ["10.9.9.9"], ["www.bank.example", "::1"],
                                   ["hub.lan.evil.example"]])
def test_a_leaf_for_other_names_does_not_verify_even_signed_with_the_ca_key(
        tmp_path: Path, names: list[str]) -> None:
    """The CLI never keeps the CA key; should it leak anyway, name constraints still refuse."""
    ca, ca_key = build_ca(HOSTS, now(), 30)
    (tmp_path / "ca.pem").write_bytes(pem(ca))
    honest, _ = build_leaf(ca, ca_key, HOSTS, now(), 30)
    assert openssl_verify(tmp_path, tmp_path / "ca.pem", honest).returncode == 0
    forged, _ = build_leaf(ca, ca_key, names, now(), 30)
    v = openssl_verify(tmp_path, tmp_path / "ca.pem", forged)
    assert v.returncode != 0 and "subtree violation" in (v.stdout + v.stderr), v.stdout + v.stderr
    first = names[0]
    name: x509.GeneralName
    try:
        name = x509.IPAddress(ipaddress.ip_address(first))
    except ValueError:
        name = x509.DNSName(first)
    with pytest.raises(VerificationError):
        cryptography_verify(ca, forged, name)


def test_an_ip_only_ca_refuses_dns_names_and_a_dns_only_ca_refuses_ips(tmp_path: Path) -> None:
    for hosts, forged_names in ((["192.168.1.10"], ["evil.example"]),
                                (["hub.lan"], ["10.0.0.1"]), (["hub.lan"], ["::1"])):
        ca, ca_key = build_ca(hosts, now(), 30)
        (tmp_path / "ca.pem").write_bytes(pem(ca))
        forged, _ = build_leaf(ca, ca_key, forged_names, now(), 30)
        v = openssl_verify(tmp_path, tmp_path / "ca.pem", forged)
        assert v.returncode != 0, (hosts, forged_names, v.stdout)


def test_the_leaf_key_cannot_issue_certificates(tmp_path: Path) -> None:
    files = make_self_signed(HOSTS, tmp_path)
    leaf = x509.load_pem_x509_certificates(files.cert.read_bytes())[0]
    leaf_key = serialization.load_pem_private_key(files.key.read_bytes(), password=None)
    assert isinstance(leaf_key, ec.EllipticCurvePrivateKey)
    other = ec.generate_private_key(ec.SECP256R1())
    forged = (x509.CertificateBuilder()
              .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
              .issuer_name(leaf.subject).public_key(other.public_key())
              .serial_number(x509.random_serial_number())
              .not_valid_before(now() - dt.timedelta(minutes=1))
              .not_valid_after(now() + dt.timedelta(days=1))
              .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), False)
              .sign(leaf_key, hashes.SHA256()))
    v = openssl_verify(tmp_path, files.ca, forged, untrusted=leaf)
    assert v.returncode != 0, v.stdout
    with pytest.raises(VerificationError):
        cryptography_verify(x509.load_pem_x509_certificate(files.ca.read_bytes()), forged,
                            x509.DNSName("localhost"), [leaf])


async def handshake(tmp: Path, cert_chain: bytes, key: bytes, ca: Path, server_hostname: str) -> None:
    """A real TLS server with `cert_chain`; a client trusting only `ca` connects."""
    (tmp / "srv-cert.pem").write_bytes(cert_chain)
    (tmp / "srv-key.pem").write_bytes(key)
    sctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    sctx.load_cert_chain(str(tmp / "srv-cert.pem"), str(tmp / "srv-key.pem"))

    async def on_client(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.close()

    server = await asyncio.start_server(on_client, "127.0.0.1", 0, ssl=sctx)
    port = server.sockets[0].getsockname()[1]
    try:
        cctx = ssl.create_default_context(cafile=str(ca))
        _, w = await asyncio.open_connection("127.0.0.1", port, ssl=cctx,
                                             server_hostname=server_hostname)
        w.close()
    finally:
        server.close()
        await server.wait_closed()


async def test_real_handshakes(tmp_path: Path) -> None:
    files = make_self_signed(HOSTS, tmp_path)
    await handshake(tmp_path, files.cert.read_bytes(), files.key.read_bytes(), files.ca, "hub.lan")
    ca, ca_key = build_ca(HOSTS, now(), 30)
    (tmp_path / "ca2.pem").write_bytes(pem(ca))
    forged, fkey = build_leaf(ca, ca_key, ["evil.example"], now(), 30)
    key_pem = fkey.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())
    with pytest.raises(ssl.SSLCertVerificationError):  # name matches; the constraints refuse
        await handshake(tmp_path, pem(forged), key_pem, tmp_path / "ca2.pem", "evil.example")


@pytest.mark.parametrize("hosts", [["127.0.0.1"], ["hub.lan"]])
def test_a_certificate_for_one_address_or_one_name_verifies(tmp_path: Path, hosts: list[str]) -> None:
    # an IP-only certificate once failed OpenSSL's name constraints ("permitted subtree
    # violation"): its host-name-like CN was checked against the CA's DNS constraint
    files = make_self_signed(hosts, tmp_path)
    leaf = x509.load_pem_x509_certificate(files.cert.read_bytes())
    r = openssl_verify(tmp_path, files.ca, leaf)
    assert r.returncode == 0, r.stdout + r.stderr

"""A private OpenSearch node with the security plugin: TLS on HTTP and transport, basic auth, a test CA.

The plugin zip comes from Maven Central (`SECURITY_PLUGIN`, pinned SHA-1: Central publishes none for it) and is
added to a copy of the session node's assembled home; certificates and the user's bcrypt hash are made here.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import shutil
import ssl
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from ksearch.opensearch_node import Artifact, LocalOpenSearch

SECURITY_VERSION = "2.19.1"  # the OpenSearch release the pinned plugin is built for (whatever the default is)
SECURITY_PLUGIN = Artifact("org.opensearch.plugin", "opensearch-security", f"{SECURITY_VERSION}.0", "zip",
                           "bbea3f51ff7e94da093589f2c30ad9868e92959b")
TEST_USER = "ksearch"


def _key():
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _name(cn: str):
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ksearch"), x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _pem_key(key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def make_certificates(folder: Path) -> dict[str, str]:
    """Write root-ca.pem, node.pem/node-key.pem and admin.pem/admin-key.pem; return the node and admin DNs."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import ExtendedKeyUsageOID

    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)
    ca_key = _key()
    ca = (x509.CertificateBuilder().subject_name(_name("ksearch test CA")).issuer_name(_name("ksearch test CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now).not_valid_after(now + dt.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    (folder / "root-ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    dns = {}
    for role in ("node", "admin"):
        key = _key()
        builder = (x509.CertificateBuilder().subject_name(_name(role)).issuer_name(ca.subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now).not_valid_after(now + dt.timedelta(days=2))
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.KeyUsage(True, False, True, False, False, False, False, False, False), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                                  critical=False))
        if role == "node":
            builder = builder.add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        (folder / f"{role}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (folder / f"{role}-key.pem").write_bytes(_pem_key(key))
        dns[role] = cert.subject.rfc4514_string()
    return dns


def bcrypt_hash(password: str) -> str:
    """The bcrypt hash the security plugin's internal_users.yml wants."""
    import bcrypt

    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=10)).decode().replace("$2b$", "$2y$", 1)


class SecureOpenSearch(LocalOpenSearch):
    """`LocalOpenSearch` with the security plugin, TLS (test CA) and one internal user with all_access."""

    def __init__(self, cache_dir: Path, password: str) -> None:
        super().__init__(cache_dir=cache_dir, quiet=True, version=SECURITY_VERSION)
        self.password = password
        self.certs = self.cache_dir / "certs"
        self.dns = make_certificates(self.certs)

    @property
    def ca_file(self) -> Path:
        """The test CA's certificate (what clients verify the node with)."""
        return self.certs / "root-ca.pem"

    def install(self) -> None:
        """Copy the session node's assembled home and add the security plugin to the copy."""
        shared = LocalOpenSearch(quiet=True, version=SECURITY_VERSION)
        source = shared.ensure_installed()
        plugin_zip = shared.download(SECURITY_PLUGIN)
        if self.home.exists():
            return
        shutil.copytree(source, self.home, symlinks=True)
        with zipfile.ZipFile(plugin_zip) as z:
            z.extractall(self.home / "plugins" / "opensearch-security")
        for tool in (self.home / "plugins" / "opensearch-security" / "tools").glob("*.sh"):
            tool.chmod(0o755)

    def _write_config(self, conf: Path, http_port: int, transport_port: int) -> None:
        super()._write_config(conf, http_port, transport_port)
        for name in ("root-ca.pem", "node.pem", "node-key.pem"):
            shutil.copy2(self.certs / name, conf / name)
        security = conf / "opensearch-security"
        if security.exists():
            shutil.rmtree(security)
        shutil.copytree(self.home / "plugins" / "opensearch-security" / "config", security)
        (security / "internal_users.yml").write_text(
            '_meta:\n  type: "internalusers"\n  config_version: 2\n'
            f'{TEST_USER}:\n  hash: "{bcrypt_hash(self.password)}"\n  reserved: false\n  backend_roles: ["admin"]\n')
        with open(conf / "opensearch.yml", "a", encoding="utf-8") as yml:
            yml.write("\n".join([
                "plugins.security.ssl.transport.pemcert_filepath: node.pem",
                "plugins.security.ssl.transport.pemkey_filepath: node-key.pem",
                "plugins.security.ssl.transport.pemtrustedcas_filepath: root-ca.pem",
                "plugins.security.ssl.transport.enforce_hostname_verification: false",
                "plugins.security.ssl.http.enabled: true",
                "plugins.security.ssl.http.pemcert_filepath: node.pem",
                "plugins.security.ssl.http.pemkey_filepath: node-key.pem",
                "plugins.security.ssl.http.pemtrustedcas_filepath: root-ca.pem",
                "plugins.security.allow_default_init_securityindex: true",
                f"plugins.security.authcz.admin_dn: [{json.dumps(self.dns['admin'])}]",
                f"plugins.security.nodes_dn: [{json.dumps(self.dns['node'])}]",
                "plugins.security.audit.type: noop",
                'plugins.security.restapi.roles_enabled: ["all_access"]',
                "",
            ]))

    def _request(self, url: str, timeout: float):
        context = ssl.create_default_context(cafile=str(self.ca_file))
        token = base64.b64encode(f"{TEST_USER}:{self.password}".encode()).decode()
        request = urllib.request.Request(url.replace("http://", "https://", 1), headers={"Authorization": f"Basic {token}"})
        return urllib.request.urlopen(request, timeout=timeout, context=context)

    def _answers(self, url: str, timeout: float = 2.0) -> bool:
        try:
            with self._request(url + "/", timeout) as resp:
                return resp.status == 200
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def _health(self, url: str) -> str | None:
        try:
            with self._request(url + "/_cluster/health?wait_for_status=yellow&timeout=1s", 5) as r:
                return json.loads(r.read()).get("status")
        except urllib.error.HTTPError as e:
            try:
                return json.loads(e.read()).get("status")
            except ValueError:
                return None
        except (urllib.error.URLError, OSError, ValueError):
            return None

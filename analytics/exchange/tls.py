"""A self-signed TLS certificate for the local exchange, made at start.

cryptofeed only opens ``wss://`` addresses, so the local exchange speaks TLS. The
certificate names ``127.0.0.1``, ``::1`` and ``localhost``; clients trust it through the
:class:`ssl.SSLContext` from :meth:`Certificate.client_context`, never through the system
store.
"""

import datetime
import ipaddress
import os
import ssl
import tempfile

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


class Certificate:
    """A fresh self-signed certificate and its private key (EC P-256, valid one day).

    Examples
    --------
    >>> cert = Certificate()
    >>> server_ctx = cert.server_context()
    >>> client_ctx = cert.client_context()   # pass as websockets' ``ssl=``
    """

    def __init__(self, hostnames=("localhost",), addresses=("127.0.0.1", "::1")):
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Tickscope local exchange")])
        now = datetime.datetime.now(datetime.timezone.utc)
        alt_names = [x509.DNSName(h) for h in hostnames]
        alt_names += [x509.IPAddress(ipaddress.ip_address(a)) for a in addresses]
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        self.cert_pem: str = cert.public_bytes(serialization.Encoding.PEM).decode()
        self._key_pem: bytes = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def server_context(self) -> ssl.SSLContext:
        """An SSL context for the server side, holding the certificate and key."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        # load_cert_chain only reads files: write them to a private folder just long enough.
        with tempfile.TemporaryDirectory() as folder:
            cert_path = os.path.join(folder, "cert.pem")
            key_path = os.path.join(folder, "key.pem")
            with open(cert_path, "w") as fp:
                fp.write(self.cert_pem)
            with open(os.open(key_path, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as fp:
                fp.write(self._key_pem)
            context.load_cert_chain(cert_path, key_path)
        return context

    def client_context(self) -> ssl.SSLContext:
        """An SSL context for clients that trusts this certificate (and only it)."""
        return ssl.create_default_context(cadata=self.cert_pem)

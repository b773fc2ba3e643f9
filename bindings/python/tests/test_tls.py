"""https from outside the Rust workspace: this module is its own Cargo workspace that depends on
entitle-client by path, so it gets exactly the TLS an application gets (rustls, no OpenSSL).
The real server sits behind a TLS terminator whose certificate comes from a private test CA."""

import socket
import ssl
import subprocess
import threading
from urllib.parse import urlparse

import pytest

import entitle


def make_pki(directory):
    """A private CA and a `localhost` certificate it signed (the openssl command line, test only)."""

    def openssl(*args):
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)

    curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *curve, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=Entitle Test CA", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign")
    openssl("req", *curve, "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=localhost")
    (directory / "leaf.ext").write_text(
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n"
        "keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n"
    )
    openssl("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "leaf.pem", "-days", "2", "-extfile", "leaf.ext")
    return directory / "ca.pem", directory / "leaf.pem", directory / "leaf.key"


class TlsProxy:
    """Terminates TLS on a free port and forwards each connection to the plain-HTTP server."""

    def __init__(self, cert, key, upstream_port):
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.upstream_port = upstream_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection):
        try:
            tls = self.context.wrap_socket(connection, server_side=True)
        except (ssl.SSLError, OSError):
            connection.close()  # the client refused our certificate
            return
        upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        threading.Thread(target=self._pump, args=(upstream, tls), daemon=True).start()
        self._pump(tls, upstream)

    @staticmethod
    def _pump(source, target):
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, target):
                try:
                    s.close()
                except OSError:
                    pass

    def close(self):
        self.listener.close()


@pytest.fixture
def tls_url(server, tmp_path):
    ca, cert, key = make_pki(tmp_path)
    proxy = TlsProxy(cert, key, urlparse(server.base).port)
    yield f"https://localhost:{proxy.port}", ca.read_text()
    proxy.close()


def test_https_with_a_private_ca_and_an_unknown_one_refused(server, tls_url, tmp_path):
    url, ca_pem = tls_url

    def client(name, **options):
        return entitle.Client(url, server.tenant, server.product, server.jwks, "py-tls-seat",
                              tmp_path / f"{name}.json", **options)

    with pytest.raises(entitle.NetworkError):
        client("untrusting", timeout_seconds=5).activate(server.code)

    trusting = client("trusting", root_ca_pem=ca_pem)
    lease = trusting.activate(server.code, seat_name="over TLS")
    assert lease["seat"]["id"] == "py-tls-seat"
    assert trusting.refresh()["sub"] == lease["sub"]
    trusting.deactivate()
    assert not trusting.is_activated

    with pytest.raises(entitle.ConfigError):
        client("bad", root_ca_pem="not a certificate")

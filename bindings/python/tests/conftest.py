"""The real server for the tests: the `entitle` binary with a temporary SQLite database and the
demo catalogue (PhotoForge, entitlement PF-PRO-Y with 6 seats), on a free port."""

import os
import re
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


@dataclass
class Server:
    base: str
    tenant: str
    product: str
    code: str
    jwks: str

    def post_request_file(self, path: str, request: str) -> dict:
        import json

        body = json.dumps({"request": request}).encode()
        req = urllib.request.Request(
            self.base + path, data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        with urllib.request.urlopen(req, timeout=10) as answer:
            return json.load(answer)


def _binary() -> str:
    if os.environ.get("ENTITLE_BIN"):
        return os.environ["ENTITLE_BIN"]
    target = os.environ.get("CARGO_TARGET_DIR", str(REPO / "target"))
    return str(Path(target) / "debug" / "entitle")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    binary = _binary()
    assert Path(binary).exists(), f"build the server first (cargo build -p entitle-server): {binary}"
    data = tmp_path_factory.mktemp("server")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENTITLE_")}
    env.update(ENTITLE_DATA_DIR=str(data), ENTITLE_LISTEN=f"127.0.0.1:{port}", ENTITLE_PUBLIC_URL=base)
    seeded = subprocess.run([binary, "demo"], env=env, capture_output=True, text=True, check=True).stdout
    tenant = re.search(r"tenant id:\s+(\S+)", seeded).group(1)
    product = re.search(r"PhotoForge \((\S+)\)", seeded).group(1)
    code = re.search(r"activation code (\S+)", seeded).group(1)
    log = open(data / "server.log", "wb")
    process = subprocess.Popen([binary, "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(150):
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        with urllib.request.urlopen(f"{base}/licensing/v1/tenants/{tenant}/jwks.json", timeout=5) as answer:
            jwks = answer.read().decode()
        yield Server(base=base, tenant=tenant, product=product, code=code, jwks=jwks)
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


@pytest.fixture
def make_client(server, tmp_path):
    import entitle

    def make(seat: str, **options):
        return entitle.Client(
            server.base, server.tenant, server.product, server.jwks, seat, tmp_path / f"{seat}.json", **options
        )

    return make

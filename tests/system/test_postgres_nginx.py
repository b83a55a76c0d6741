"""Two instances on one PostgreSQL database behind a real nginx (Debian's package), as the
guide to several instances (docs/guides/instances.md) deploys them.

nginx is started by the test on a loopback port with a configuration written into a temporary
directory (``daemon off``, its pid, logs and temporary files there) and stopped at the end. It
reaches the instances from 127.0.0.2 (``proxy_bind``), the one address they trust
(``TRUSTED_PROXIES``); clients come from 127.0.0.3 and 127.0.0.4. So the test can tell
nginx's ``X-Forwarded-For`` (believed) from a client's own (never believed), and see that the
throttle counts the real client's address across both instances.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from support import PASSWORD, ServerProcess
from support.postgres import REQUIRE, instance, rows

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

NGINX_ADDRESS = "127.0.0.2"
ALICE = "127.0.0.3"
BOB = "127.0.0.4"
BLACKLISTED = {"detail": "Token is blacklisted", "code": "token_not_valid"}
NO_ACCOUNT = {"detail": "No active account found with the given credentials"}

# Run as root, nginx's workers become nobody: they need nothing in the (private) temporary
# directory, since the master opens the logs and these small bodies never reach a temp file.
NGINX_CONF = """\
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log {tmp}/access.log;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    upstream jwtlite {{
        server 127.0.0.1:{first};
        server 127.0.0.1:{second};
        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://jwtlite;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_bind {nginx_address};
            add_header X-Upstream $upstream_addr always;
        }}
    }}
}}
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Reply:
    status: int
    headers: Mapping[str, str]
    body: Any


def post(
    port: int, path: str, body: Any, *, source: str, headers: Mapping[str, str] | None = None
) -> Reply:
    """POST ``body`` as JSON to 127.0.0.1:``port`` from the local address ``source``."""
    connection = http.client.HTTPConnection(
        "127.0.0.1", port, timeout=15, source_address=(source, 0)
    )
    try:
        connection.request(
            "POST",
            path,
            body=json.dumps(body),
            headers={"Content-Type": "application/json", **(headers or {})},
        )
        answer = connection.getresponse()
        payload = answer.read()
        names = {name.lower(): value for name, value in answer.getheaders()}
        return Reply(answer.status, names, json.loads(payload) if payload else None)
    finally:
        connection.close()


def port_of(server: ServerProcess) -> int:
    return int(server.url.rsplit(":", 1)[1])


@dataclass
class Cluster:
    instances: list[ServerProcess]
    port: int  # nginx's


@pytest.fixture
def nginx_binary() -> str:
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None
    )
    if found is None:
        reason = "nginx is not installed (apt-get install nginx)"
        if os.environ.get(REQUIRE) == "1":
            pytest.fail(f"{REQUIRE}=1 but {reason}")
        pytest.skip(reason)
    return found


@pytest.fixture
def cluster(nginx_binary: str, postgres_url: str, tmp_path: Path) -> Iterator[Cluster]:
    env = {
        "JWTLITE_TRUSTED_PROXIES": NGINX_ADDRESS,
        "JWTLITE_ROTATE_REFRESH_TOKENS": "true",
        "JWTLITE_LOGIN_MAX_FAILURES": "100",
        "JWTLITE_LOGIN_MAX_FAILURES_PER_ADDRESS": "3",
    }
    instances = [instance(postgres_url, tmp_path, threads=4, **env) for _ in range(2)]
    conf_dir = tmp_path / "nginx"
    conf_dir.mkdir()
    port = free_port()
    conf = conf_dir / "nginx.conf"
    conf.write_text(
        NGINX_CONF.format(
            tmp=conf_dir,
            first=port_of(instances[0]),
            second=port_of(instances[1]),
            port=port,
            nginx_address=NGINX_ADDRESS,
        )
    )
    nginx = subprocess.Popen(
        [
            nginx_binary,
            "-p",
            str(conf_dir),
            "-c",
            str(conf),
            "-e",
            str(conf_dir / "error.log"),
            "-g",
            "daemon off;",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(port, nginx, conf_dir)
        yield Cluster(instances, port)
    finally:
        nginx.send_signal(signal.SIGQUIT)  # graceful: workers finish, then the master exits
        try:
            nginx.wait(10)
        except subprocess.TimeoutExpired:
            nginx.kill()
            nginx.wait(10)
        if nginx.stderr is not None:
            nginx.stderr.close()
        for server in instances:
            server.stop()
            assert "Traceback" not in server.stderr()


def _wait_for(port: int, nginx: subprocess.Popen[str], conf_dir: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if nginx.poll() is not None:
            log = (conf_dir / "error.log").read_text() if (conf_dir / "error.log").exists() else ""
            raise RuntimeError(f"nginx exited: {nginx.stderr.read() if nginx.stderr else ''} {log}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nginx did not start listening")


def test_the_whole_client_flow_through_nginx_over_both_instances(cluster: Cluster) -> None:
    port, upstreams = cluster.port, []

    def call(path: str, body: Any, **headers: str) -> Reply:
        reply = post(port, path, body, source=ALICE, headers=headers)
        upstreams.append(reply.headers["x-upstream"])
        return reply

    credentials = {"username": "alice", "password": PASSWORD}
    assert call("/accounts/register/", credentials).status == 201
    pair = call("/accounts/token/", credentials).body
    assert call("/accounts/token/verify/", {"token": pair["access"]}).status == 200
    for _ in range(2):  # me is a GET: through nginx too
        connection = http.client.HTTPConnection("127.0.0.1", port, source_address=(ALICE, 0))
        connection.request(
            "GET", "/accounts/me/", headers={"Authorization": f"Bearer {pair['access']}"}
        )
        answer = connection.getresponse()
        assert (answer.status, json.loads(answer.read())["username"]) == (200, "alice")
        upstreams.append(answer.getheader("X-Upstream") or "")
        connection.close()
    rotated = call("/accounts/token/refresh/", {"refresh": pair["refresh"]})
    assert rotated.status == 200
    new = rotated.body["refresh"]
    assert call("/accounts/token/verify/", {"token": new}).status == 200
    assert call("/accounts/token/blacklist/", {"refresh": new}).status == 200
    for _ in range(2):  # refused on whichever instance answers
        refused = call("/accounts/token/refresh/", {"refresh": new})
        assert (refused.status, refused.body) == (401, BLACKLISTED)
    assert {f"127.0.0.1:{port_of(s)}" for s in cluster.instances} == set(upstreams)


def test_forwarded_for_is_believed_only_from_nginx_and_the_throttle_counts_the_client(
    cluster: Cluster, postgres_url: str
) -> None:
    port = cluster.port
    direct = port_of(cluster.instances[0])
    wrong = {"username": "nobody", "password": "wrong-password-1"}

    # Through nginx, alice claims a new address each time: nginx appends her real one, and
    # that is the one counted (on both instances: 3 attempts, then 429).
    seen = [
        post(
            port,
            "/accounts/token/",
            wrong,
            source=ALICE,
            headers={"X-Forwarded-For": f"10.9.0.{i}"},
        )
        for i in range(5)
    ]
    assert [reply.status for reply in seen] == [401, 401, 401, 429, 429]
    assert seen[0].body == NO_ACCOUNT
    assert int(seen[3].headers["retry-after"]) >= 1

    # Bob is another client: his own bucket. Straight to an instance his X-Forwarded-For is
    # not believed (he is no proxy), so those attempts count as his address too.
    assert post(port, "/accounts/token/", wrong, source=BOB).status == 401
    spoofed = {"X-Forwarded-For": "10.9.9.9"}
    for _ in range(2):
        assert post(direct, "/accounts/token/", wrong, source=BOB, headers=spoofed).status == 401
    assert post(port, "/accounts/token/", wrong, source=BOB).status == 429

    addresses = rows(postgres_url, "SELECT DISTINCT address FROM attempts ORDER BY address")
    assert addresses == [(ALICE,), (BOB,)]

"""The demo site as shipped: config/default.conf serving www/, and every link on it answered.

config/ and www/ are copied to a temporary folder (so the logs land there) and the fixed
ports 8080/8081 are swapped for free ones; nothing else of the shipped files changes. The
crawl starts at the home page and follows every local link, on both ports: a link answers
2xx/3xx unless its `data-expect` attribute names the error it demonstrates.
"""

from __future__ import annotations

import email.utils
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from collections import deque
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from support import REPO, free_port, wait_until

from webserv import tls_demo

SHIPPED_PORTS = (8080, 8081, 8443)
SITE_HOST = "localhost"  # the Host a browser sends for http://localhost:8080/


class Demo:
    def __init__(self, tmp: Path, ports: dict[int, int], proc: subprocess.Popen[bytes]) -> None:
        self.tmp = tmp
        self.ports = ports  # shipped port -> the free port it was rewritten to
        self.proc = proc
        self.client = httpx.Client(follow_redirects=False, timeout=10.0)

    @property
    def port(self) -> int:
        return self.ports[8080]

    @property
    def vhost_port(self) -> int:
        return self.ports[8081]

    def get(
        self, path: str, host: str = SITE_HOST, port: int | None = None, **kw
    ) -> httpx.Response:
        port = port or self.port
        return self.client.get(f"http://127.0.0.1:{port}{path}", headers={"Host": host}, **kw)

    def log(self, name: str) -> str:
        path = self.tmp / "logs" / name
        return path.read_text(errors="replace") if path.exists() else ""


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("demo")
    shutil.copytree(REPO / "config", tmp / "config")
    shutil.copytree(REPO / "www", tmp / "www")
    tls_demo.ensure(tmp / "var" / "tls")  # what `make run` makes on first run
    ports = {shipped: free_port() for shipped in SHIPPED_PORTS}
    conf_dir = tmp / "config"
    rewritten = dict.fromkeys(ports, 0)
    for conf in [conf_dir / "default.conf", *sorted((conf_dir / "vhosts").glob("*.conf"))]:
        text = conf.read_text()
        for shipped, free in ports.items():
            pattern = rf"(\blisten\s+(?:\S+:)?){shipped}\b"
            text, count = re.subn(pattern, rf"\g<1>{free}", text)
            rewritten[shipped] += count
        conf.write_text(text)
    assert all(rewritten.values()), f"no listen directive for a shipped port: {rewritten}"
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
    output = open(tmp / "stderr.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "webserv", str(conf_dir / "default.conf")],
        cwd=tmp,
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until(lambda: proc.poll() is not None or all(map(_accepts, ports.values())), 15)
        assert proc.poll() is None, (tmp / "stderr.log").read_text(errors="replace")
        demo = Demo(tmp, ports, proc)
        yield demo
        demo.client.close()
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        output.close()


# --- the crawl -----------------------------------------------------------------------------


class PageLinks(HTMLParser):
    """Every URL a page refers to (links, stylesheets, images, scripts) and its ids."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str | None]] = []  # (url, data-expect)
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
        for name in ("href", "src"):
            if a.get(name) and tag in ("a", "link", "img", "script", "iframe", "source"):
                self.links.append((a[name], a.get("data-expect")))


def _target(demo: Demo, base: tuple[int, str], url: str) -> tuple[int, str, str]:
    """(port, Host, path) of a URL found on a page served from base = (port, Host).

    `url` is an absolute path or an absolute URL; URLs name the shipped ports (8080, 8081).
    """
    port, host = base
    parts = urlsplit(url)
    if parts.netloc:
        assert parts.scheme == "http", f"non-http link {url!r}"
        name = parts.hostname or ""
        assert name in ("127.0.0.1", "localhost") or name.endswith(".localhost"), (
            f"link to another machine: {url!r} (the site must not depend on the network)"
        )
        named = parts.port or 80
        assert named in demo.ports or named in demo.ports.values(), f"unserved port: {url!r}"
        port, host = demo.ports.get(named, named), name
    return port, host, (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def crawl(demo: Demo) -> dict[tuple[int, str, str], tuple[httpx.Response, set[str]]]:
    """Breadth-first over every local link from the home page, following redirects too.

    Returns each (port, Host, path) reached with its response and the statuses the links to
    it expect (`data-expect`; empty: any 2xx/3xx).
    """
    start = (demo.port, SITE_HOST, "/")
    answers: dict[tuple[int, str, str], httpx.Response] = {}
    expect: dict[tuple[int, str, str], set[str]] = {start: set()}
    queue = deque([start])
    while queue:
        key = queue.popleft()
        if key in answers:
            continue
        port, host, path = key
        response = answers[key] = demo.get(path, host=host, port=port)
        found: list[tuple[str, str | None]] = []
        if response.is_redirect:
            found.append((response.headers["location"], None))
        elif response.headers.get("content-type", "").startswith("text/html"):
            page = PageLinks()
            page.feed(response.text)
            for url, _ in page.links:
                if url.startswith("#"):
                    assert url[1:] in page.ids, f"{path} links to {url}, which is not on the page"
            found = [(url, expected) for url, expected in page.links if not url.startswith("#")]
        for url, expected in found:
            if urlsplit(url).scheme not in ("", "http", "https"):
                continue  # data:, javascript:, mailto: name no page of the site
            absolute = url if urlsplit(url).netloc else urljoin(path, url.split("#")[0])
            new = _target(demo, (port, host), absolute)
            expect.setdefault(new, set())
            if expected:
                expect[new].add(expected)
            queue.append(new)
    return {key: (response, expect[key]) for key, response in answers.items()}


def test_every_link_answers_as_intended(demo):
    answers = crawl(demo)
    wrong = []
    for (port, host, path), (response, expected) in sorted(answers.items()):
        status = response.status_code
        ok = str(status) in expected if expected else 200 <= status < 400
        if not ok:
            want = "/".join(sorted(expected)) or "2xx/3xx"
            wrong.append(f"{host}:{port}{path} -> {status}, expected {want}")
    assert not wrong, "\n".join(wrong)
    paths = {(port, path) for port, _, path in answers}
    # the crawl really reached every kind of demo, through the site's own links
    for must in [
        "/files/ripples.png",
        "/bench/1k.txt",
        "/favicon.ico",
        "/style.css",
        "/browse/Tom%20%26%20Jerry.txt",
        "/browse/caf%C3%A9%20%E2%98%95%20menu.txt",
        "/browse/%231%20hash.txt",
        "/browse/100%25%20pure.txt",
        "/browse/sub%20folder/deeper/bottom.txt",
        "/conf/default.conf",
        "/conf/vhosts/beta.conf",
        "/methods/",
        "/match/static/notes.txt",
    ]:
        assert (demo.port, must) in paths, f"no link leads to {must}"
    hosts = {host for port, host, _ in answers if port == demo.vhost_port}
    assert {"alpha.localhost", "beta.localhost", "127.0.0.1"} <= hosts


# --- what each demo shows ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/", "text/html"),
        ("/style.css", "text/css"),
        ("/files/hello.txt", "text/plain"),
        ("/files/data.json", "application/json"),
        ("/files/notes.md", "text/markdown"),
        ("/files/logo.svg", "image/svg+xml"),
        ("/files/ripples.png", "image/png"),
        ("/favicon.ico", "image/x-icon"),
        ("/site.webmanifest", "application/manifest+json"),
        ("/conf/default.conf", "text/plain"),
        ("/conf/mime.types", "text/plain"),
        ("/hello", "text/plain"),
        ("/health", "application/json"),
    ],
)
def test_content_types(demo, path, content_type):
    response = demo.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == content_type


@pytest.mark.parametrize("path", ["/files/logo.svg", "/files/ripples.png", "/favicon.ico"])
def test_images_are_cached_assets(demo, path):
    """The demo's image location: `expires 7d;` and `add_header Cache-Control public;`."""
    response = demo.get(path)
    assert response.status_code == 200
    assert response.headers.get_list("cache-control") == ["max-age=604800", "public"]
    expires = email.utils.parsedate_to_datetime(response.headers["expires"])
    date = email.utils.parsedate_to_datetime(response.headers["date"])
    assert (expires - date).total_seconds() == 604800


def test_pages_are_not_cached_assets(demo):
    response = demo.get("/style.css")
    assert "cache-control" not in response.headers and "expires" not in response.headers


def test_benchmark_file_is_one_kibibyte(demo):
    response = demo.get("/bench/1k.txt")
    assert response.status_code == 200
    assert len(response.content) == 1024 == int(response.headers["content-length"])


def test_png_and_ico_are_real_images(demo):
    png = demo.get("/files/ripples.png").content
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and png.endswith(b"IEND\xaeB`\x82")
    ico = demo.get("/favicon.ico").content
    assert ico[:4] == b"\x00\x00\x01\x00" and b"\x89PNG" in ico


def test_error_pages_and_redirects(demo):
    missing = demo.get("/no/such/page")
    assert missing.status_code == 404 and "Nothing here" in missing.text
    oops = demo.get("/oops")
    assert oops.status_code == 500 and "/errors/50x.html" in oops.text
    listing_off = demo.get("/files/")
    assert listing_off.status_code == 403
    moved = demo.get("/old-home.html")
    assert moved.status_code == 301 and urlsplit(moved.headers["location"]).path == "/"
    found = demo.get("/logo")
    assert found.status_code == 302 and found.headers["location"].endswith("/files/logo.svg")
    assert demo.get("/browse").status_code == 301


def test_methods_location(demo):
    url = f"http://127.0.0.1:{demo.port}/methods/"
    assert demo.client.head(url).status_code == 200
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        response = demo.client.request(method, url, content=b"greeting=hello")
        assert response.status_code == 405, method
        assert response.headers["allow"] == "GET, HEAD"
    assert demo.client.request("BREW", url).status_code == 501


@pytest.mark.parametrize(
    ("path", "location"),
    [
        ("/match", "location = /match"),
        ("/match/", "location /match"),
        ("/matchbox", "location /match"),
        ("/match/longer/page", "location /match/longer/"),
        ("/match/notes.txt", r"location ~ ^/match/.+\.txt$"),
        ("/match/longer/notes.txt", r"location ~ ^/match/.+\.txt$"),
        ("/match/static/notes.txt", "location ^~ /match/static/"),
    ],
)
def test_location_playground(demo, path, location):
    response = demo.get(path)
    assert response.status_code == 200
    assert response.text.splitlines()[0] == location


@pytest.mark.parametrize(
    ("host", "server"),
    [
        ("alpha.localhost", "alpha"),
        ("ALPHA.localhost:8081", "alpha"),
        ("beta.localhost", "beta"),
        ("api.beta.localhost", "beta"),
        ("www.beta.example", "beta"),
        ("beta-7.localhost", "beta"),
        ("beta-x.localhost", "alpha"),
        ("other.example", "alpha"),
        ("127.0.0.1", "alpha"),
    ],
)
def test_virtual_hosts_by_host_header(demo, host, server):
    response = demo.get("/whoami", host=host, port=demo.vhost_port)
    assert response.status_code == 200
    assert response.text.startswith(f"server {server} ")
    home = demo.get("/", host=host, port=demo.vhost_port)
    assert f"This is {server}" in home.text


def test_virtual_hosts_error_pages(demo):
    alpha = demo.get("/missing", host="alpha.localhost", port=demo.vhost_port)
    assert alpha.status_code == 404 and "<center><h1>404 Not Found</h1></center>" in alpha.text
    beta = demo.get("/missing", host="beta.localhost", port=demo.vhost_port)
    assert beta.status_code == 404 and "beta's own" in beta.text


def test_logs_split_as_configured(demo):
    demo.get("/files/logo.svg?from=images-test")
    demo.get("/hello?from=access-test")
    demo.get("/whoami?from=vhosts-test", host="api.beta.localhost", port=demo.vhost_port)
    wait_until(lambda: "from=images-test" in demo.log("images.log"))
    wait_until(lambda: "from=access-test" in demo.log("access.log"))
    wait_until(lambda: "from=vhosts-test" in demo.log("vhosts.log"))
    assert "from=images-test" not in demo.log("access.log")
    line = next(x for x in demo.log("vhosts.log").splitlines() if "from=vhosts-test" in x)
    assert '"api.beta.localhost" -> beta.localhost' in line
    assert (demo.tmp / "logs" / "webserv.pid").read_text().strip() == str(demo.proc.pid)


# --- in a browser --------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_home_page_in_a_browser(demo, browser, scheme):
    problems: list[str] = []
    for width in (1280, 390):
        problems.clear()
        page = browser.new_page(viewport={"width": width, "height": 900}, color_scheme=scheme)
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("requestfailed", lambda r: problems.append(f"failed: {r.url}"))
        page.on(
            "response",
            lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None,
        )
        page.goto(f"http://127.0.0.1:{demo.port}/", wait_until="load")
        assert problems == []
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        assert page.evaluate("matchMedia('(prefers-color-scheme: dark)').matches") == (
            scheme == "dark"
        )
        images = page.eval_on_selector_all("img", "els => els.map(e => e.naturalWidth)")
        assert images and all(images)
        page.close()
    page = browser.new_page()
    page.goto(f"http://127.0.0.1:{demo.port}/methods/")
    page.click('#methods button:text-is("DELETE")')
    page.wait_for_function("document.querySelector('#result').textContent.includes('405')")
    assert "Allow: GET, HEAD" in page.text_content("#result")
    page.close()

"""Uploads from a real browser: the demo's upload page (www/upload/) in chromium.

A plain `<form method="post" enctype="multipart/form-data">` with a file input: two files
are set on the input and the form is submitted, as a person would. The stored files are
compared byte for byte and the answer page is read; then the page's listing (parsed from
the autoindex of /uploads/) deletes one file with its button. Screenshots go to
test-artifacts/upload-*.png. Nothing here asserts how long anything took.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support import REPO, RunningServer, wait_until

ARTIFACTS = REPO / "test-artifacts"

# the location the demo's default.conf is meant to get for this page
CONF = """
error_log {tmp}/error.log info;
http {{
    include @MIME_TYPES@;  # the stylesheet must come as text/css, or chromium ignores it
    access_log off;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location /uploads/ {{
            allow_methods GET HEAD POST PUT DELETE;
            alias {tmp}/uploads/;
            upload_store {tmp}/uploads;
            autoindex on;
            client_max_body_size 100m;
        }}
    }}
}}
""".replace("@MIME_TYPES@", str(REPO / "config" / "mime.types"))

TEXT_NAME = "Grüße & notes.txt"
TEXT = "Two lines,\nwith ümlauts and a ☕.\n".encode()
BINARY_NAME = "all-bytes.bin"
BINARY = bytes(range(256)) * 400 + b"\r\n--not-a-boundary--\r\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    files = {
        "upload/index.html": (REPO / "www" / "upload" / "index.html").read_bytes(),
        "style.css": (REPO / "www" / "style.css").read_bytes(),
        "favicon.ico": (REPO / "www" / "favicon.ico").read_bytes(),
        "index.html": "home\n",
    }
    srv = RunningServer(tmp_path_factory.mktemp("upload-browser"), CONF, files).start()
    srv.uploads = srv.tmp / "uploads"
    yield srv
    srv.stop()


def _stored(directory: Path) -> dict[str, bytes]:
    return {name: (directory / name).read_bytes() for name in sorted(os.listdir(directory))}


def test_form_upload_then_delete_in_a_browser(server, browser):
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": 1000, "height": 900})
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"uncaught: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"failed: {r.url}"))
    try:
        page.goto(server.url("/upload/"))
        page.wait_for_selector("#files tbody td:text('Nothing uploaded yet.')")
        # styled by the demo's stylesheet (a wrong Content-Type would have it ignored)
        assert page.evaluate("getComputedStyle(document.querySelector('main')).maxWidth") != "none"

        page.set_input_files(
            "#upload input[type=file]",
            [
                {"name": TEXT_NAME, "mimeType": "text/plain", "buffer": TEXT},
                {"name": BINARY_NAME, "mimeType": "application/octet-stream", "buffer": BINARY},
            ],
        )
        with page.expect_navigation() as navigation:
            page.click("#upload button[type=submit]")
        response = navigation.value
        assert response.status == 201
        assert response.headers["location"] == "/uploads/Gr%C3%BC%C3%9Fe%20%26%20notes.txt"
        assert page.text_content("h1") == "2 file(s) stored"
        assert [a.text_content() for a in page.query_selector_all("li a")] == [
            TEXT_NAME,
            BINARY_NAME,
        ]
        page.screenshot(path=str(ARTIFACTS / "upload-result.png"), full_page=True)

        # byte for byte, under the names the browser sent, and nothing else (no temp file)
        assert _stored(server.uploads) == {TEXT_NAME: TEXT, BINARY_NAME: BINARY}

        # the result page links to the stored file (fetched: a browser would download it)
        href = page.get_attribute(f"li a:text-is('{BINARY_NAME}')", "href")
        fetched = page.request.get(server.url(href))
        assert (fetched.status, fetched.body()) == (200, BINARY)

        # the upload page lists both; its button deletes one
        page.goto(server.url("/upload/"))
        page.wait_for_selector(f"#files a:text-is('{TEXT_NAME}')")
        rows = page.query_selector_all("#files tbody tr")
        assert [r.query_selector("a").text_content() for r in rows] == [TEXT_NAME, BINARY_NAME]
        assert rows[1].query_selector_all("td")[1].text_content() == str(len(BINARY))
        page.screenshot(path=str(ARTIFACTS / "upload-listing.png"), full_page=True)
        page.click(f"#files tr:has(a:text-is('{TEXT_NAME}')) button")
        page.wait_for_function("document.querySelector('#result').textContent.includes('204')")
        page.wait_for_function("document.querySelectorAll('#files tbody a').length === 1")
        wait_until(lambda: _stored(server.uploads) == {BINARY_NAME: BINARY})
        page.screenshot(path=str(ARTIFACTS / "upload-deleted.png"), full_page=True)

        # the same name again is stored beside the first, never over it
        page.set_input_files(
            "#upload input[type=file]",
            [{"name": BINARY_NAME, "mimeType": "application/octet-stream", "buffer": b"second"}],
        )
        with page.expect_navigation() as navigation:
            page.click("#upload button[type=submit]")
        assert navigation.value.headers["location"] == "/uploads/all-bytes-1.bin"
        assert _stored(server.uploads) == {BINARY_NAME: BINARY, "all-bytes-1.bin": b"second"}
        assert problems == []
    finally:
        context.close()

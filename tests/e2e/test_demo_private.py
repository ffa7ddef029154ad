"""The demo's password-protected page: the user and password the home page gives open it,
nothing else does, and the user file it reads is not downloadable through /conf/."""

from __future__ import annotations

import re

from test_demo_site import demo  # noqa: F401  (the module's fixture: the shipped config)


def test_the_credentials_on_the_home_page_open_the_private_page(demo):  # noqa: F811
    home = demo.get("/").text
    card = home[home.index('id="access"') :]
    user, password = re.search(
        r"user <code>(\w+)</code>,\s+password <code>(\w+)</code>", card
    ).groups()
    refused = demo.get("/private/")
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == 'Basic realm="webserv demo"'
    opened = demo.get("/private/", auth=(user, password))
    assert opened.status_code == 200 and "You are in." in opened.text
    assert demo.get("/private/", auth=(user, password + "x")).status_code == 401
    assert demo.get("/private/", auth=("nobody", password)).status_code == 401


def test_the_user_file_is_not_served(demo):  # noqa: F811
    assert demo.get("/conf/.htpasswd").status_code == 403
    assert ".htpasswd" not in demo.get("/conf/").text  # autoindex hides dot files

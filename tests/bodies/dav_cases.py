"""The WebDAV requests that test_dav_nginx.py sends to nginx and to webserv alike: one
sequence over one starting tree, each step's status and key headers compared."""

from __future__ import annotations

# the tree both servers start from (under their root); a name ending in "/" is a directory
TREE = {
    "file": "0123456789",
    "other": "OTHER",
    "file2": "F2",
    "put/": None,
    "dir/": None,
    "dir/a": "A",
    "dir/sub/": None,
    "dir/sub/b": "B",
    "empty/": None,
    "min/": None,
    "min/a/": None,
    "min/a/f": "x",
    "min/a/b/": None,
    "min/a/b/deep": "x",
    "fdir/": None,
}

SERVER = """
        root {root};
        location / {{ dav_methods PUT DELETE MKCOL COPY MOVE; }}
        location /full/ {{ dav_methods PUT; create_full_put_path on; }}
        location /min/ {{ dav_methods DELETE; min_delete_depth 3; }}
        location /ro/ {{ }}
        location /put/ {{ dav_methods PUT; }}
"""

# (method, target, extra header lines, body)
STEPS: list[tuple[str, str, dict[str, str], bytes]] = [
    ("PUT", "/new", {}, b"abc"),
    ("PUT", "/new", {}, b"abcd"),
    ("PUT", "/new/", {}, b"x"),
    ("PUT", "/dir", {}, b"x"),
    ("PUT", "/r", {"Content-Range": "bytes 0-1/4"}, b"xy"),
    ("PUT", "/full/a/b/c", {}, b"deep"),
    ("PUT", "/full/a/b/c", {}, b"deeper"),
    ("PUT", "/sp%20ace", {}, b"s"),
    ("PUT", "/ro/x", {}, b"x"),
    ("DELETE", "/ro/x", {}, b""),
    ("MKCOL", "/ro/x/", {}, b""),
    ("COPY", "/ro/x", {"Destination": "/y"}, b""),
    ("DELETE", "/put/x", {}, b""),
    ("MKCOL", "/put/d/", {}, b""),
    ("MKCOL", "/col/", {}, b""),
    ("MKCOL", "/col/", {}, b""),
    ("MKCOL", "/col2", {}, b""),
    ("MKCOL", "/no/such/", {}, b""),
    ("MKCOL", "/file/", {}, b""),
    ("MKCOL", "/col3/", {"Content-Length": "0"}, b""),
    ("DELETE", "/missing", {}, b""),
    ("DELETE", "/dir", {}, b""),
    ("DELETE", "/file/", {}, b""),
    ("DELETE", "/file", {"Depth": "1"}, b""),
    ("DELETE", "/file", {"Depth": "x"}, b""),
    ("DELETE", "/empty/", {"Depth": "0"}, b""),
    ("DELETE", "/empty/", {"Depth": "infinity"}, b""),
    ("DELETE", "/min/a/f", {}, b""),
    ("DELETE", "/min/a/b/deep", {}, b""),
    ("DELETE", "/min/a/b/", {}, b""),
    ("COPY", "/file", {}, b""),
    ("COPY", "/file", {"Destination": "relative"}, b""),
    ("COPY", "/file", {"Destination": "http://elsewhere/x"}, b""),
    ("COPY", "/file", {"Destination": "https://localhost/x"}, b""),
    ("COPY", "/file", {"Destination": "http://localhost"}, b""),
    ("COPY", "/file", {"Destination": "/a/../x"}, b""),
    ("COPY", "/file", {"Destination": "/a/%2e%2e/x"}, b""),
    ("COPY", "/file", {"Destination": "/c1"}, b""),
    ("COPY", "/file", {"Destination": "/c1"}, b""),
    ("COPY", "/file", {"Destination": "/c1", "Overwrite": "F"}, b""),
    ("COPY", "/file", {"Destination": "/c1", "Overwrite": "x"}, b""),
    ("COPY", "/file", {"Destination": "/c2", "Depth": "0"}, b""),
    ("COPY", "/file", {"Destination": "/c3", "Depth": "1"}, b""),
    ("COPY", "/file", {"Destination": "/c4/"}, b""),
    ("COPY", "/file", {"Destination": "/fdir"}, b""),
    ("COPY", "/missing", {"Destination": "/x"}, b""),
    ("COPY", "/missing", {"Destination": "/no/such/x"}, b""),
    ("MOVE", "/missing/", {"Destination": "/x/"}, b""),
    ("COPY", "/file/", {"Destination": "/x/"}, b""),
    ("COPY", "/dir", {"Destination": "/x"}, b""),
    ("COPY", "/dir/", {"Destination": "/dcopy/"}, b""),
    ("COPY", "/dir/", {"Destination": "/dcopy/"}, b""),
    ("COPY", "/dir/", {"Destination": "/dcopy/", "Overwrite": "F"}, b""),
    ("COPY", "/dir/", {"Destination": "/file2/"}, b""),
    ("GET", "/file2/sub/b", {}, b""),
    ("COPY", "/file", {"Destination": "http://localhost:1/c5"}, b""),
    ("MOVE", "/c1", {"Destination": "/m1"}, b""),
    ("MOVE", "/c1", {"Destination": "/m1"}, b""),
    ("MOVE", "/m1", {"Destination": "/m2", "Depth": "0"}, b""),
    ("MOVE", "/m1", {"Destination": "/m2", "Depth": "infinity"}, b""),
    ("MOVE", "/m2", {"Destination": "/other", "Overwrite": "F"}, b""),
    ("MOVE", "/m2", {"Destination": "/other"}, b""),
    ("MOVE", "/dcopy/", {"Destination": "/dmoved/"}, b""),
    ("MOVE", "/dmoved/", {"Destination": "/dir/"}, b""),
    ("MOVE", "/dir/", {"Destination": "/dir2/"}, b""),
    ("GET", "/dir2/sub/b", {}, b""),
    ("GET", "/other", {}, b""),
    ("DELETE", "/dir2/", {}, b""),
    ("GET", "/dir2/a", {}, b""),
    ("GET", "/file", {}, b""),
    ("GET", "/full/a/b/c", {}, b""),
]

#!/usr/bin/env python3
"""Test script: the environment exactly as the server passed it (/proc/self/environ, read
before Python adds LC_CTYPE of its own), the working directory and argv, as JSON."""

import json
import os
import sys

with open("/proc/self/environ", "rb") as f:
    raw = f.read()
env = {}
for item in raw.split(b"\0"):
    if item:
        name, _, value = item.partition(b"=")
        env[name.decode("latin-1")] = value.decode("latin-1")
out = {"env": env, "cwd": os.getcwd(), "argv": sys.argv}
sys.stdout.write("Content-Type: application/json\r\n\r\n" + json.dumps(out))

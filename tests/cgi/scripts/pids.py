#!/usr/bin/env python3
"""Test script: a process the tests can watch. Query: mode=sleep|stream|wait, tag=T, fork=1.

Writes "PID [CHILD_PID]" to pids-T in its working directory (the script's folder), or for
mode=wait to waiting-T/PID, before anything else; with fork=1 it first forks a child that sleeps forever (same process group).
  sleep   prints nothing and sleeps forever (cgi_timeout → 504)
  stream  prints a header section and "line 1", then waits for the file go-T to exist,
          then prints "line 2" and exits (or sleeps forever if never told to go)
  wait    waits for go-T, then answers "done" (the tests hold many of these at once)
"""

import os
import sys
import time
from urllib.parse import parse_qs

query = {k: v[0] for k, v in parse_qs(os.environ.get("QUERY_STRING", "")).items()}
tag = query.get("tag", "x")
pids = [os.getpid()]
if query.get("fork") == "1":
    child = os.fork()
    if child == 0:
        os.close(1)  # the grandchild must not hold the response open
        while True:
            time.sleep(3600)
    pids.append(child)
mode = query.get("mode", "sleep")
# written whole, then renamed: a test never reads half a file
target = f"waiting-{tag}/{os.getpid()}" if mode == "wait" else f"pids-{tag}"
os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
with open(f"{target}.tmp", "w") as f:
    f.write(" ".join(map(str, pids)))
os.rename(f"{target}.tmp", target)


def wait_for_go() -> None:
    while not os.path.exists(f"go-{tag}"):
        time.sleep(0.02)


if mode == "sleep":
    while True:
        time.sleep(3600)
elif mode == "stream":
    sys.stdout.write("Content-Type: text/plain\n\nline 1\n")
    sys.stdout.flush()
    wait_for_go()
    sys.stdout.write("line 2\n")
elif mode == "wait":
    wait_for_go()
    sys.stdout.write(f"Content-Type: text/plain\n\ndone {os.getpid()}\n")

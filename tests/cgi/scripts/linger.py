#!/usr/bin/env python3
"""Test script: answers and exits at once, but leaves a child behind that holds stdout
open and sleeps forever (writing its pid to linger-pid in the working directory)."""

import os
import sys
import time

sys.stdout.write("Content-Type: text/plain\n\nanswered\n")
sys.stdout.flush()
child = os.fork()
if child == 0:
    while True:
        time.sleep(3600)
with open("linger-pid.tmp", "w") as f:
    f.write(str(child))
os.rename("linger-pid.tmp", "linger-pid")

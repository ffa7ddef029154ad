#!/usr/bin/env python3
"""Test script: copies stdin to stdout as it comes, so both directions stream at once."""

import os
import sys

sys.stdout.write("Content-Type: application/octet-stream\n\n")
sys.stdout.flush()
while True:
    data = os.read(0, 65536)
    if not data:
        break
    os.write(1, data)

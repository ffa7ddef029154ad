#!/usr/bin/env python3
"""Test script: prints its percent-decoded query string, byte for byte, and nothing else."""

import os
import sys
from urllib.parse import unquote_to_bytes

sys.stdout.buffer.write(unquote_to_bytes(os.environ.get("QUERY_STRING", "")))

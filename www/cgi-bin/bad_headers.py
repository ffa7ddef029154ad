#!/usr/bin/env python3
"""CGI demo: a header section that is not one (no "Name: value"): 502 Bad Gateway."""

import sys

sys.stdout.write("this line is not a header\nContent-Type: text/plain\n\nbody\n")

#!/usr/bin/env python3
"""CGI demo: sleeps forever without a word; cgi_timeout ends it with 504 Gateway Timeout."""

import time

while True:
    time.sleep(3600)

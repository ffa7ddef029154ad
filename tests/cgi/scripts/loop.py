#!/usr/bin/env python3
"""Test script: an internal redirect to itself, forever."""

print("Location: /cgi-bin/loop.py\n")

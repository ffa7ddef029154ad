#!/bin/sh
# Test script: NOT executable (mode 644), and no interpreter configured: cannot run
printf 'Content-Type: text/plain\n\nshould never run\n'

#!/bin/sh
# Test script: executable, run without an interpreter (cgi .sh;)
printf 'Content-Type: text/plain\n\nhello from sh, argv0=%s\n' "$0"

#!/bin/sh
# End-to-end checks of the tokvox command (filled in below).
exit 0

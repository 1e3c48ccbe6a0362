#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""The QEMU monitor (HMP) of a `make shell` VM, on its unix socket:

    python3 tools/testing/monitor.py <run directory>/monitor.sock [COMMAND...]

With commands, runs each and prints its output; without, reads commands
from the terminal until end of input (no socat needed)."""

import socket
import sys

PROMPT = b"(qemu) "


def until_prompt(sock):
    data = b""
    while not data.endswith(PROMPT):
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data[:-len(PROMPT)] if data.endswith(PROMPT) else data


def run(sock, command):
    sock.sendall(command.encode() + b"\n")
    out = until_prompt(sock).decode(errors="replace")
    # HMP echoes the command line first.
    first, _, rest = out.partition("\n")
    sys.stdout.write(rest if command.strip() in first else out)
    sys.stdout.flush()


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(sys.argv[1])
    until_prompt(sock)
    if len(sys.argv) > 2:
        for command in sys.argv[2:]:
            run(sock, command)
        return 0
    while True:
        try:
            command = input("(qemu) ")
        except EOFError:
            print()
            return 0
        if command.strip():
            run(sock, command)


if __name__ == "__main__":
    sys.exit(main())

"""The demo's command-line options, shared by ``dqa demo`` and ``python -m apps`` (light: no model imports)."""
from __future__ import annotations

import argparse

DEFAULT_HOST, DEFAULT_PORT, DEFAULT_MAX_MB = "127.0.0.1", 7860, 200


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The demo's options, shared by ``dqa demo`` and ``python -m apps``."""
    parser.add_argument("--host", default=DEFAULT_HOST,
                        help="address to listen on (default %(default)s: this machine only; 0.0.0.0 for the network)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (default %(default)s)")
    parser.add_argument("--share", action="store_true",
                        help="also publish a temporary public link through Gradio's share servers (needs internet)")
    parser.add_argument("--max-upload-mb", type=float, default=DEFAULT_MAX_MB,
                        help="largest upload accepted, in MB (default %(default)s)")
    return parser

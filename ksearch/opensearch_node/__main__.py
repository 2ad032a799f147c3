"""`python -m ksearch.opensearch_node [start|stop|status|install]`: handy for manual runs (`ksearch opensearch` is the CLI)."""

import sys

from ksearch.opensearch_node import ensure_installed, start, status, stop

cmd = sys.argv[1] if len(sys.argv) > 1 else "status"
print({"start": start, "stop": stop, "status": status, "install": ensure_installed}[cmd]())

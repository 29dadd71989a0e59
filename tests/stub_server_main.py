"""``python -m tests.stub_server_main [server.py args]``: the real ``server.main`` (lock, port
check, signals, shutdown) over the torch-free stub nodes, for tests that need a real process."""
import sys

import server
from tests.stub_nodes import STUB_NODES, StubEnv


def stub_nodes(config):
    return STUB_NODES, StubEnv(config.output_dir)


if __name__ == "__main__":
    server.load_nodes = stub_nodes  # what main() calls when given no `nodes`
    server.main(sys.argv[1:])

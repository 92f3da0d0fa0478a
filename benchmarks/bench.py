"""Training / inference throughput of mtl against a reference-style pipeline (the paper's); see mtl/bench.py.

    flock /tmp/mtl-heavy.lock python benchmarks/bench.py                 # embedded Gemma-3 270M, sample data
    python benchmarks/bench.py --steps-per-task 20 model.backbone=/path/to/model data.qc_train=...

Same arguments as `mtl bench`; writes benchmarks/results/<name>.md and .json and prints the tables.
"""

import shlex
import sys

from mtl.cli import main

if __name__ == "__main__":
    argv = sys.argv[1:]
    sys.exit(main(["bench", "--invoked-as", shlex.join(["python", "benchmarks/bench.py", *argv]), *argv]))

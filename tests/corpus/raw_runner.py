"""A runner that returns exactly the bytes in $CORPUS_RESULT (a file): the bad-result corpus."""

from __future__ import annotations

import os
import shutil
import sys

if __name__ == "__main__":
    if os.environ.get("CORPUS_STDOUT"):
        with open(os.environ["CORPUS_RESULT"], "rb") as fh:
            sys.stdout.buffer.write(fh.read())
    else:
        shutil.copyfile(os.environ["CORPUS_RESULT"], os.environ["GITDAG_RESULT"])
    sys.exit(0)

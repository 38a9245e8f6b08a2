"""Copier's command line, with an answer it refuses reported as one line instead of a traceback.

`python templates/scripts/copier_cli.py copy|update … ` takes the same arguments as `copier`. Copier 9.19.1
checks the answers given with --data, and the defaults it takes with --defaults, outside its prompt
(`Worker._ask` calls `Question.validate_answer`), and the ValueError it raises for a refused one escapes its
CLI, which only handles its own UserMessageError: the user gets a 40-line traceback that ends in the line that
matters ("Validation error for question 'name': …"). There is no way around that from the template: a validator
can only return the message, and Copier turns whatever it raises into the same ValueError.

This runs Copier's CLI as `python -m copier` does and prints that ValueError's message alone (exit 2). With
BETCYCLE_COPIER_REFUSED set to a file path, it writes the message there instead and exits 0, so that a nox
session can abort with the message as its own (noxfile.py's `_copier`). Anything else goes through untouched.
"""

from __future__ import annotations

import os
import runpy
import sys
from pathlib import Path


def main() -> int:
    sys.argv[0] = "copier"
    try:
        runpy.run_module("copier", run_name="__main__", alter_sys=True)
    except ValueError as error:  # a refused --data answer, or a missing one under --defaults
        message = str(error).strip() or type(error).__name__
        if target := os.environ.get("BETCYCLE_COPIER_REFUSED"):
            Path(target).write_text(message + "\n", encoding="utf-8")
            return 0
        print(message, file=sys.stderr)
        return 2
    return 0  # not reached: Copier's CLI exits itself


if __name__ == "__main__":
    sys.exit(main())

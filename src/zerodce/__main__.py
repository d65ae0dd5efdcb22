"""``python -m zerodce`` (and ``torchrun -m zerodce``) runs the command-line interface."""

from __future__ import annotations

import gc

from .cli import main

code = main()
# The command's work is done and written. Left alone, the interpreter's final garbage collection
# walks every object torch created on import, about 0.3 s of each run on 2 cores (docs/startup.md);
# frozen objects are skipped by it and freed with the process. atexit handlers still run.
gc.freeze()
raise SystemExit(code)

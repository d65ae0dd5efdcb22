"""The bad-input corpus (tests/support/corpus.py), importable as ``corpus`` from the tests."""

from support.corpus import *  # noqa: F403
from support.corpus import EXPECTED_OK, bomb_png, make_corpus  # noqa: F401

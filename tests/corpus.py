"""The bad-input corpus lives in the package (zerodce._corpus) so that scripts/load_test.py can use it."""

from zerodce._corpus import *  # noqa: F403
from zerodce._corpus import EXPECTED_OK, bomb_png, make_corpus  # noqa: F401

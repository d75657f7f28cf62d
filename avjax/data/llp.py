"""Alias of `avjax.data.readers.llp` (moved there by issue 21).

Kept only because avjax/parity.py and avjax/parity_ma.py import
`avjax.data.llp` and must stay untouched while the parity benchmark runs;
remove this file when they import `avjax.data.readers.llp`.
"""

import sys

from avjax.data.readers import llp as _impl

sys.modules[__name__] = _impl

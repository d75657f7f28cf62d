"""Errors a user can act on: bad input, configuration or environment.

Every command runs behind `avjax.utils.cli`, which prints such an error as
one `avjax.<command>: error: <message>` line (no traceback) and exits with
`EXIT_USER_ERROR`. Raise a `UserError` (or a subclass) with a message that
names the file, line, field or flag at fault and says how to fix it.
"""

EXIT_USER_ERROR = 2
# A batch command (parse, extract) that did some of its inputs and named the
# others; not 1, which is what an uncaught exception exits with.
EXIT_SOME_FAILED = 3


class UserError(Exception):
  """An error the user fixes by changing input, configuration or setup."""


class AnnotationError(UserError, ValueError):
  """A bad annotation row (e.g. an unknown or empty class list).

  `avjax.prepare` skips the row's clip and reports it (reason
  `bad_annotation`), or stops on it with --strict.
  """


class DiskFullError(UserError, OSError):
  """Not enough space on the disk to write an output (checked up front)."""


def failed_checks(cfg, checks, prefix: str = "config.") -> list:
  """Messages of the failed checks of a config block.

  Args:
    cfg: the ConfigDict the keys are relative to.
    checks: (ok, dotted key, expectation) triples.
    prefix: how `cfg` is named in messages (e.g. "config.model.").

  Returns:
    "<prefix><key>=<value>: expected <expectation>" for every check whose
    `ok` is false.
  """
  def value(key):
    node = cfg
    for part in key.split("."):
      node = node[part]
    return node
  return [f"{prefix}{k}={value(k)!r}: expected {want}"
          for ok, k, want in checks if not ok]


def raise_invalid(messages, what: str = "config") -> None:
  """Raises one ValueError listing every message (nothing if empty)."""
  if messages:
    raise ValueError(f"invalid {what}:\n  " + "\n  ".join(messages))

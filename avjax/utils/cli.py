"""The error boundary of every avjax command.

  if __name__ == "__main__":
    cli.run(main)                  # absl commands, instead of app.run(main)
    sys.exit(cli.call(main))       # argparse commands (avjax.prepare)

An error the user can act on is printed as

  avjax.<command>: error: <message naming the file/field/flag and the fix>

(continuation lines indented), without a traceback, and the command exits with
`errors.EXIT_USER_ERROR` (2). These are:

* `avjax.errors.UserError` and its subclasses (data errors such as a corrupt
  TFRecord shard, --strict refusals, checkpoint mismatches, a full disk);
* ValueError / OSError / KeyError raised by a `raise` statement in avjax's
  own code or in configs/ (readers and config checks raise them with
  messages that name the file and field);
* OSErrors of the environment from any code: a missing path, a file where a
  folder is expected (or the reverse), no permission, no space left, a
  read-only file system;
* errors in the command line: bad flag values, a config file that cannot be
  loaded or whose `get_config` refuses its argument, and an unknown
  `--config.<key>` (named, with the nearest valid keys).

Anything else is a bug and keeps its traceback. `--debug` (or AVJAX_DEBUG=1)
shows the traceback of every error. Before a command exits on a user error it
runs the `before_error_exit` callbacks (e.g. finishing checkpoint writes in
flight, so that nothing already saved is lost).
"""

import difflib
import errno
import linecache
import os
import re
import sys
from typing import Callable, List, Optional, Sequence

from absl import app
from absl import flags

from avjax import errors

DEBUG_ENV = "AVJAX_DEBUG"
if "debug" not in flags.FLAGS:
  flags.DEFINE_bool("debug", False, "Show the full traceback of input and "
                    f"configuration errors (also: {DEBUG_ENV}=1).")

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROJECT_DIRS = (_PACKAGE_DIR + os.sep,
                os.path.join(os.path.dirname(_PACKAGE_DIR), "configs") + os.sep)
ENVIRONMENT_ERRNOS = {errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.EACCES,
                      errno.EPERM, errno.EEXIST, errno.ENOSPC, errno.EDQUOT,
                      errno.EROFS, errno.ENAMETOOLONG, errno.ELOOP}
_OS_FIXES = {
    errno.ENOENT: "check the path",
    errno.ENOTDIR: "a part of that path is a file, where a folder is expected",
    errno.EISDIR: "that is a folder, where a file is expected",
    errno.EACCES: "check its permissions (ls -ld): the command must read it, "
                  "and write it if it is an output",
    errno.EPERM: "check its permissions (ls -ld): the command must read it, "
                 "and write it if it is an output",
    errno.EEXIST: "it already exists (as a file?): choose another path",
    errno.EROFS: "the file system is read-only: choose another path",
}
_DISK_FULL = ("No space left on device", "Disk quota exceeded")


_BEFORE_EXIT: List[Callable[[], None]] = []


def before_error_exit(fn: Callable[[], None]) -> None:
  """Registers fn() to run before a command exits on a user error."""
  if fn not in _BEFORE_EXIT:
    _BEFORE_EXIT.append(fn)


def _finish() -> None:
  for fn in _BEFORE_EXIT:
    try:
      fn()
    except Exception:  # pylint: disable=broad-except
      pass


def debug_requested(argv: Sequence[str] = ()) -> bool:
  """--debug on the command line (parsed or not) or AVJAX_DEBUG=1."""
  if os.environ.get(DEBUG_ENV, "").lower() in ("1", "true", "yes"):
    return True
  if flags.FLAGS.is_parsed() and flags.FLAGS["debug"].value:
    return True
  return any(a in ("--debug", "--debug=true", "--debug=True", "--debug=1")
             for a in argv)


def _causes(e: BaseException):
  seen = set()
  while e is not None and id(e) not in seen:
    seen.add(id(e))
    yield e
    e = e.__cause__ or e.__context__


def _disk_full(e: BaseException) -> bool:
  for c in _causes(e):
    if isinstance(c, OSError) and c.errno in (errno.ENOSPC, errno.EDQUOT):
      return True
    if any(s in str(c) for s in _DISK_FULL):
      return True
  return False


def raised_by_project(e: BaseException) -> bool:
  """Whether `e` comes from a `raise` statement in avjax or configs/."""
  tb = e.__traceback__
  if tb is None:
    return False
  while tb.tb_next is not None:
    tb = tb.tb_next
  path = os.path.abspath(tb.tb_frame.f_code.co_filename)
  if not path.startswith(PROJECT_DIRS):
    return False
  return linecache.getline(path, tb.tb_lineno).lstrip().startswith("raise")


def is_user_error(e: BaseException) -> bool:
  """Whether `e` is an input/configuration/environment error (module doc)."""
  if isinstance(e, app.UsageError) or not isinstance(e, Exception):
    return False
  if isinstance(e, errors.UserError) or _disk_full(e):
    return True
  if isinstance(e, OSError) and e.errno in ENVIRONMENT_ERRNOS:
    return True
  return isinstance(e, (ValueError, OSError, KeyError)) and raised_by_project(
      e)


def message(e: BaseException) -> str:
  """The text printed for a user error."""
  if isinstance(e, KeyError) and len(e.args) == 1:
    text = str(e.args[0])
  elif isinstance(e, OSError) and e.errno is not None and e.strerror:
    where = f"{e.filename}: " if e.filename is not None else ""
    text = f"{where}{e.strerror}"
    if e.errno in _OS_FIXES:
      text += f"; {_OS_FIXES[e.errno]}"
  else:
    text = str(e) or type(e).__name__
  if _disk_full(e) and not isinstance(e, errors.DiskFullError):
    first = text.splitlines()[0] if text else ""
    text = (f"the disk is full: {first[:300]}\nFree some space (or write to "
            "another disk) and run the same command again: training resumes "
            "from its last complete checkpoint and prepare rewrites only "
            "incomplete shards.")
  return text


def format_error(prog: str, text: str) -> str:
  lines = text.strip().splitlines() or [""]
  return "".join([f"{prog}: error: {lines[0]}\n"] +
                 [f"  {l}\n" if l and not l.startswith(" ") else f"{l}\n"
                  for l in lines[1:]])


def report(prog: str, text: str) -> None:
  sys.stdout.flush()
  sys.stderr.write(format_error(prog, text))
  sys.stderr.flush()


def prog_name() -> str:
  """'avjax.main' for `python -m avjax.main`, else the script's name."""
  spec = getattr(sys.modules.get("__main__"), "__spec__", None)
  if spec is not None and spec.name and spec.name != "__main__":
    return spec.name
  return os.path.splitext(os.path.basename(sys.argv[0] or "avjax"))[0]


def call(fn: Callable[[List[str]], Optional[int]],
         argv: Optional[Sequence[str]] = None,
         prog: Optional[str] = None) -> int:
  """fn(argv) behind the boundary; returns its exit code (2: user error)."""
  argv = list(sys.argv[1:] if argv is None else argv)
  try:
    return fn(argv) or 0
  except Exception as e:  # pylint: disable=broad-except
    if debug_requested(argv) or not is_user_error(e):
      raise
    report(prog or prog_name(), message(e))
    _finish()
    return errors.EXIT_USER_ERROR


# ----------------------------------------------------------- absl commands


def run(main: Callable, argv: Optional[Sequence[str]] = None) -> None:
  """`app.run(main)` with the boundary around flag parsing and main."""
  prog = prog_name()

  def parse(args):
    return _parse_flags(prog, args)

  def guarded(args):
    try:
      return main(args)
    except app.UsageError:
      raise
    except Exception as e:  # pylint: disable=broad-except
      if debug_requested() or not is_user_error(e):
        raise
      report(prog, message(e))
      _finish()
      sys.exit(errors.EXIT_USER_ERROR)

  app.run(guarded, argv=argv, flags_parser=parse)


def _parse_flags(prog: str, argv: List[str]) -> List[str]:
  fv = flags.FLAGS
  try:
    args = fv(argv)
  except flags.Error as e:
    if debug_requested(argv):
      raise
    report(prog, flag_error_message(e))
    sys.exit(errors.EXIT_USER_ERROR)
  except (AttributeError, KeyError) as e:
    text = unknown_config_key(fv, argv)
    if text is None or debug_requested(argv):
      raise
    report(prog, text)
    sys.exit(errors.EXIT_USER_ERROR)
  text = config_load_error(fv)
  if text and not debug_requested(argv):
    report(prog, text)
    sys.exit(errors.EXIT_USER_ERROR)
  return args


def flag_error_message(e: Exception) -> str:
  """absl's flag error, with a config file's traceback cut to its error."""
  text = str(e)
  marker = ": Error whilst parsing config file:"
  if marker in text:
    head = text.split(marker, 1)[0]
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    last = re.sub(r"^(ValueError|TypeError): ", "", lines[-1])
    return f"{head[len('flag '):] if head.startswith('flag ') else head}: " + (
        last)
  return re.sub(r"(?m)^flag --", "--", text) + " (--helpshort lists the flags)"


def _config_flags(fv):
  from ml_collections.config_flags import config_flags  # pylint: disable=g-import-not-at-top
  return [name for name in list(fv) if config_flags.is_config_flag(fv[name])]


def _flag_value_in(argv: Sequence[str], name: str) -> Optional[str]:
  value = None
  for i, a in enumerate(argv):
    if a.startswith(f"--{name}="):
      value = a.split("=", 1)[1]
    elif a == f"--{name}" and i + 1 < len(argv):
      value = argv[i + 1]
  return value


def config_load_error(fv) -> Optional[str]:
  """A config flag whose file could not be loaded (ml_collections defers it)."""
  for name in _config_flags(fv):
    value = fv[name].value
    if type(value).__name__ != "_ErrorConfig":
      continue
    spec = fv[name].config_filename
    err = str(getattr(value, "_error", ""))
    path = spec.split(":", 1)[0]
    if "No such file or directory" in err:
      return (f"--{name}={spec}: config file {path!r} not found (relative to "
              f"{os.getcwd()}); e.g. --{name}=configs/avvp_han.py")
    return f"--{name}={spec}: cannot load the config file: {err}"
  return None


def _flat_keys(node, prefix: str = "") -> List[str]:
  out = []
  for k in (node.keys() if hasattr(node, "keys") else ()):
    out.append(prefix + k)
    out += _flat_keys(node[k], prefix + k + ".")
  return out


def unknown_key(config, path: str) -> Optional[str]:
  """Why `config` has no field `path` ('a.b.c'), with the nearest keys."""
  parts = path.split(".")
  node = config
  for i, part in enumerate(parts):
    where = ".".join(["config"] + parts[:i])
    if not hasattr(node, "keys"):
      return (f"{where} is a value ({type(node).__name__}), not a group of "
              "fields")
    keys = list(node.keys())
    if part in keys:
      node = node[part]
      continue
    flat = _flat_keys(config)
    near = [".".join(parts[:i] + [k]) for k in difflib.get_close_matches(
        part, keys, n=3, cutoff=0.6)]
    near += [k for k in flat if k.split(".")[-1] == part]
    near += difflib.get_close_matches(path, flat, n=3, cutoff=0.75)
    near = list(dict.fromkeys(near))[:5]
    text = f"no field {where}.{part}"
    if near:
      return text + "; nearest: " + ", ".join(f"config.{k}" for k in near)
    return text + f"; the fields of {where}: {', '.join(sorted(keys))}"
  return None


def unknown_config_key(fv, argv: Sequence[str]) -> Optional[str]:
  """The first --<config>.<key> override naming no field, explained."""
  try:
    for name in _config_flags(fv):
      spec = _flag_value_in(argv[1:], name)
      overrides = [a[len(name) + 3:].split("=", 1)[0] for a in argv[1:]
                   if a.startswith(f"--{name}.")]
      if not spec or not overrides:
        continue
      config = fv[name].parser.parse(spec)
      for path in overrides:
        if "[" in path:
          continue
        why = unknown_key(config, path)
        if why:
          arg = next(a for a in argv[1:] if a.startswith(f"--{name}.{path}"))
          return f"{arg}: {spec} has {why}"
  except Exception:  # pylint: disable=broad-except
    return None
  return None

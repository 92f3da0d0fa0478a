"""File paths and formats every command shares: the checks of input and output paths made before any work, atomic
output (write to a temporary name beside the target, fsync, then rename: a crash leaves either the old file or the
complete new one, never a half-written file that looks complete), and JSON read strictly.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import re
import shutil
import stat
import tempfile
from pathlib import Path

from mtl.errors import ConfigError, DataError


def input_problem(path: str | Path, kind: str = "file") -> str | None:
    """Why `path` cannot be read as a `kind` ("file" or "folder"), or None. A FIFO or device is refused: reading one
    could wait forever."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return f"{kind} not found"
    except OSError as err:
        if err.errno == errno.ELOOP:
            return "cannot read: a symbolic link loop"
        return f"cannot read: {err.strerror or err}"
    except ValueError as err:  # a NUL byte in the name
        return f"cannot read: {err}"
    if kind == "file" and stat.S_ISDIR(mode):
        return "is a folder, not a file"
    if kind == "folder" and not stat.S_ISDIR(mode):
        return "is not a folder"
    if kind == "folder" and not os.access(path, os.R_OK | os.X_OK):
        return "cannot read: no permission to list it"
    if kind == "file" and not stat.S_ISREG(mode):
        return "is not a regular file"
    return None


def check_input_file(path: str | Path) -> Path:
    """The input file every command reads, checked before it is opened: a DataError naming it otherwise."""
    problem = input_problem(path)
    if problem:
        raise DataError(path, None, None, problem)
    return Path(path)


def read_input_bytes(path: str | Path) -> bytes:
    """The bytes of an input file, after `check_input_file`; a read error is a DataError naming the file."""
    try:
        return check_input_file(path).read_bytes()
    except OSError as err:
        raise DataError(path, None, None, f"cannot read: {err.strerror or err}") from None


def _resolve(path: Path, flag: str) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError, ValueError) as err:  # RuntimeError: a symlink loop (Python < 3.13)
        raise ConfigError(f"{flag} {path}: cannot resolve the path: {err}") from None


def check_output_path(path: str | Path, flag: str = "--output", inputs=()) -> Path:
    """Refuse an output file that cannot be written before any work is done: a folder, one of the inputs, a path
    that does not resolve (a symlink loop), or a place whose nearest existing folder is a file or not writable.
    Missing folders are fine: `atomic_open` makes them."""
    path = Path(path)
    resolved = _resolve(path, flag)
    if path.is_dir():
        raise ConfigError(f"{flag} {path} is a folder; give the output file's name")
    for source in map(Path, inputs):
        with contextlib.suppress(OSError, RuntimeError, ValueError):  # an input that cannot resolve is refused later
            if resolved == source.resolve() or (path.exists() and source.exists() and os.path.samefile(path, source)):
                raise ConfigError(f"{flag} {path} is the input file; write to a new file")
    _check_writable_parent(path, resolved.parent, flag)
    return path


def check_output_dir(path: str | Path, flag: str = "--out") -> Path:
    """Refuse an output folder that cannot be written before any work is done: a file, a path that does not
    resolve, or a place whose nearest existing folder is a file or not writable. Missing folders are fine."""
    path = Path(path)
    resolved = _resolve(path, flag)
    if resolved.exists() and not resolved.is_dir():
        raise ConfigError(f"{flag} {path} is a file; give a folder")
    _check_writable_parent(path, resolved, flag)
    return path


def _check_writable_parent(path: Path, folder: Path, flag: str) -> None:
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise ConfigError(f"{flag} {path}: {folder} is a file, so no folder can be made there")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"{flag} {path}: no permission to write in {folder}")


class DuplicateKey(ValueError):
    """A JSON object names the same key twice (json keeps the last one without a word)."""

    def __init__(self, key: str):
        super().__init__(f"key {key!r} appears twice in one object")
        self.key = key


class LoneSurrogate(ValueError):
    """A JSON string holds half of a UTF-16 surrogate pair (`"\\ud800"`): valid JSON, but no text, so it cannot be
    written as UTF-8."""

    def __init__(self, key: str | None, value: str):
        super().__init__(f"holds a lone UTF-16 surrogate ({value!r}): not text, so it cannot be written as UTF-8")
        self.key = key


class TooDeep(ValueError):
    """JSON nested deeper than MAX_DEPTH: json reads up to about 1000 levels, but writing it back recurses too."""


MAX_DEPTH = 100
"""Deepest nesting of objects and arrays read; a record is a flat object, model and run files a few levels deep."""

_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def loads_json(text: str, finite: bool = False):
    """`json.loads` refusing what it would otherwise take, or take silently: a key repeated in an object
    (DuplicateKey), a lone surrogate in a string (LoneSurrogate), nesting deeper than MAX_DEPTH (TooDeep), and with
    `finite` NaN, Infinity and numbers beyond a float's range (NotFinite: not JSON, and written back as null); other
    errors as json.loads raises them. The project's own files may hold NaN (an AUC with one class), so only data
    files ask for `finite`."""
    extra = {"parse_constant": _not_finite, "parse_float": _finite_float} if finite else {}
    value = json.loads(text, object_pairs_hook=_unique_keys, **extra)
    if text.count("[") + text.count("{") > MAX_DEPTH:  # else it cannot be that deep
        _check_depth(value)
    if _SURROGATE_ESCAPE.search(text):  # only a \\uD800-\\uDFFF escape can put a surrogate in a decoded string
        _check_surrogates(value, None)
    return value


class NotFinite(ValueError):
    """NaN, Infinity or a number too large for a float: Python's json reads them, JSON has no such numbers."""


def _not_finite(name: str):
    raise NotFinite(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise NotFinite(f"{text[:40]} is beyond a float's range")
    return value


def _check_depth(value) -> None:
    stack = [(value, 1)]
    while stack:  # a loop rather than recursion: the point is a depth Python's recursion cannot take
        value, depth = stack.pop()
        if isinstance(value, (dict, list)):
            if depth > MAX_DEPTH:
                raise TooDeep(f"nested more than {MAX_DEPTH} levels deep")
            stack.extend((child, depth + 1) for child in (value.values() if isinstance(value, dict) else value))


def _unique_keys(pairs) -> dict:
    out = {}
    for key, value in pairs:
        if key in out:
            raise DuplicateKey(key)
        out[key] = value
    return out


def _check_surrogates(value, key) -> None:
    if isinstance(value, str):
        found = _SURROGATE.search(value)
        if found:
            raise LoneSurrogate(key, found.group())
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_surrogates(k, key if key is not None else k)
            _check_surrogates(v, key if key is not None else k)
    elif isinstance(value, list):
        for v in value:
            _check_surrogates(v, key)


def json_problem(err: Exception) -> tuple[int | None, str | None, str]:
    """(line, key, problem) of an error `loads_json` raised, for a DataError."""
    if isinstance(err, json.JSONDecodeError):
        return err.lineno, None, f"not valid JSON: {err.msg} (column {err.colno})"
    if isinstance(err, DuplicateKey):
        return None, err.key, "appears twice in one object; JSON would keep only the last value"
    if isinstance(err, LoneSurrogate):
        return None, err.key, str(err)
    if isinstance(err, TooDeep):
        return None, None, f"not valid JSON here: {err}"
    if isinstance(err, NotFinite):
        return None, None, f"not valid JSON: {err}"
    if isinstance(err, RecursionError):
        return None, None, "not valid JSON: nested too deeply"
    return None, None, f"not valid JSON: {err}"[:300]  # e.g. an integer longer than Python's 4300-digit limit


def read_json(path: str | Path) -> dict:
    """A whole-file JSON object; any reason it cannot be read is a DataError naming the file (and the line where
    JSON says)."""
    data = read_input_bytes(path)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise DataError(path, line, None, f"not valid UTF-8 ({err.reason} at byte {err.start})") from None
    try:
        value = loads_json(text)
    except (ValueError, RecursionError) as err:
        line, key, problem = json_problem(err)
        raise DataError(path, line, key, problem) from None
    if not isinstance(value, dict):
        raise DataError(path, None, None, f"expected a JSON object, got {_JSON_NAMES[type(value)]}")
    return value


def check_schema(value, schema, path: str | Path, prefix: str = ""):
    """`value` (parsed JSON) checked against `schema` (a dataclass or TypedDict: its annotations say each field's
    type, its defaults or `total` which fields may be missing) with pydantic in strict mode (no "0.5" for 0.5, no
    true for 1); returns the validated value (a dataclass instance for a dataclass). The first problem is a
    DataError naming the file and the field's path."""
    from pydantic import TypeAdapter, ValidationError

    try:
        return TypeAdapter(schema).validate_json(json.dumps(value), strict=True)
    except ValidationError as err:
        first = err.errors()[0]
        field = prefix + ".".join(str(part) for part in first["loc"])
        problem = "missing" if first["type"] == "missing" else f"{first['msg'].lower()}, got {first.get('input')!r}"
        raise DataError(path, None, field or None, problem[:300]) from None


_JSON_NAMES = {list: "array", str: "string", int: "number", float: "number", bool: "boolean", type(None): "null"}


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", encoding: str | None = "utf-8"):
    """Open a temporary file beside `path`; on clean exit it replaces `path`, on error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs should get the usual permissions
    try:
        with open(tmp, mode, encoding=None if "b" in mode else encoding, newline="" if "b" not in mode else None) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_open(path) as f:
        f.write(text)


@contextlib.contextmanager
def atomic_dir(path: str | Path):
    """Yield a temporary folder beside `path`; on clean exit it becomes `path` (replacing an old one)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_umask())
    try:
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise

"""The one error -> message rule of the app, used by the page's handlers and by the ``gr.api`` endpoints alike.

* A **user error** -- something the user can fix: a file that is not an image, a checkpoint that does not fit its
  card, a parameter out of range, an expired API session -- is a ``ValueError`` (``ImageLoadError`` and
  ``CheckpointError`` are ones), a ``KeyError`` or a ``TypeError``.  Its own first line is shown.
* Anything else (``RuntimeError``, ``MemoryError``, ``OSError``, a bug) is an **internal error**: the server logs
  the traceback and the user reads one generic line.  The server goes on serving.

Either way the line never names a server path: each path the caller knows (an upload's temp file) is replaced by
the name the user gave it, and any other absolute path left in the text is cut to its last component.
No Gradio here: the page wraps the line in a status message, the API in ``gr.Error``.
"""

from __future__ import annotations

import functools
import inspect
import logging
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, KeyError, TypeError)
"""Exception types whose message is meant for the user (the project raises these with a reason)."""

INTERNAL = "internal error ({name}); the server logged it and keeps running"

_ABS_PATH = re.compile(r"(?<![\w.:/])(?:[A-Za-z]:)?(?:[/\\][^\s/\\'\"`,;:()\[\]{}<>]+){2,}")


def _scrub_paths(text: str, names: Mapping[str, str]) -> str:
    for server_path, shown in sorted(names.items(), key=lambda kv: -len(kv[0])):  # longest first
        if server_path:
            text = text.replace(server_path, shown)
    return _ABS_PATH.sub(lambda m: re.split(r"[/\\]", m.group(0))[-1], text)


def user_message(err: BaseException, names: Mapping[str, str | Path] | None = None) -> str:
    """One line describing ``err`` for a user of the page or the API.

    ``names``: server path -> what the user calls that file (its original basename); every occurrence of a key
    is replaced by its value.  Internal errors are logged here (with traceback) and summarised generically.
    """
    if isinstance(err, USER_ERRORS) and err.args and str(err.args[0]).strip():
        text = str(err.args[0]).strip().splitlines()[0]
        return _scrub_paths(text, {str(k): str(v) for k, v in (names or {}).items()})
    if isinstance(err, USER_ERRORS):
        return f"{type(err).__name__} without a message"
    log.error("internal error", exc_info=(type(err), err, err.__traceback__))
    return INTERNAL.format(name=type(err).__name__)


def guarded(on_error: Callable[[BaseException, tuple, dict], Any]) -> Callable[[Callable], Callable]:
    """The one error boundary of the page and the API: a decorator whose function (or generator) answers
    ``on_error(err, args, kwargs)`` for any ``Exception`` it raises -- a status line for the page
    (``app.page.page_errors``), a ``gr.Error`` raised for the API (``app.api.as_gr_error``).  ``on_error`` may raise;
    an error it re-raises as is (e.g. a ``gr.Error`` already made for the user) passes through."""

    def decorate(fn: Callable) -> Callable:
        if inspect.isgeneratorfunction(fn):

            @functools.wraps(fn)
            def gen(*args: Any, **kwargs: Any) -> Iterator[Any]:
                try:
                    yield from fn(*args, **kwargs)
                except Exception as err:  # noqa: BLE001 -- one line for the user; internal ones are logged
                    yield on_error(err, args, kwargs)

            return gen

        @functools.wraps(fn)
        def inner(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except Exception as err:  # noqa: BLE001 -- one line for the user; internal ones are logged
                return on_error(err, args, kwargs)

        return inner

    return decorate

"""The ``blurcam`` typer app: every command registered here, explicitly, and the entry point.

Command modules (``files``, ``batch``, ``live``, ``web``, ``measure``) define
plain functions and import only :mod:`.common` and :mod:`.options`; this
module is the one place that knows them all, so nothing registers itself by
being imported.
"""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer

from ..errors import BlurcamError
from . import batch, files, live, measure, web
from .common import err_console
from .signals import StopSignals, shield, stop_signals

try:  # typer >= 0.20 vendors click as typer._click
    from typer._click import exceptions as _cx
except ImportError:  # pragma: no cover - older typer on real click
    from click import exceptions as _cx  # type: ignore[no-redef]

__all__ = ["app", "main"]

app = typer.Typer(
    name="blurcam",
    help="Blur or replace the background behind people in images, videos and live video.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
for command in (files.blur, files.mask, batch.batch, live.cam, web.serve):
    app.command()(command)
app.command("eval")(measure.eval_)
app.command()(measure.bench)


@app.callback()
def _root(
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="More logs.")] = 0,
) -> None:
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


def _run(args: list[str]) -> int:
    """Run one command; its ``KeyboardInterrupt`` reaches the caller (typer's own entry
    point would turn it into a bare 130, losing which signal it was)."""
    command = typer.main.get_command(app)
    with command.make_context("blurcam", args) as ctx:
        rv = command.invoke(ctx)
    return int(rv) if isinstance(rv, int) else 0


def _caused_by_interrupt(e: BaseException) -> bool:
    """Whether ``e`` came out of a ``KeyboardInterrupt`` (Ctrl-C or SIGTERM): a signal
    that lands while a native module initialises surfaces as ``ImportError:
    initialization failed``, which the library may turn into a ModelError."""
    seen: set[int] = set()
    cur: BaseException | None = e
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, KeyboardInterrupt):
            return True
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return False


def _interrupted(stop: StopSignals) -> int:
    shield()
    err_console.print(f"interrupted ({stop.name})", highlight=False)
    return stop.exit_code


def main(argv: list[str] | None = None, *, exiting: bool = False) -> int:
    """Entry point: a :class:`BlurcamError` is one line on stderr and its exit code.

    Ctrl-C and SIGTERM take one path (:mod:`.signals`): the command cleans up
    as for ``KeyboardInterrupt`` and the exit code is 128 + the signal number
    (130, 143), also when the interrupt surfaced as another error.
    ``exiting`` is for the ``blurcam`` program itself: a stop signal after
    the command has returned is then ignored.
    """
    args = sys.argv[1:] if argv is None else list(argv)
    with stop_signals(exiting=exiting) as stop:
        try:
            return _run(args)
        except (KeyboardInterrupt, typer.Abort):
            return _interrupted(stop)
        except BlurcamError as e:
            if _caused_by_interrupt(e):
                return _interrupted(stop)
            shield()
            err_console.print(f"[red]error:[/red] {e}", highlight=False, soft_wrap=True)
            return e.exit_code
        except typer.Exit as e:
            return int(e.exit_code or 0)
        except _cx.ClickException as e:
            e.show(file=sys.stderr)
            return e.exit_code
        except Exception as e:
            if _caused_by_interrupt(e):
                return _interrupted(stop)
            raise  # a bug: it keeps its traceback

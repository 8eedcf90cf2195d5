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


def main(argv: list[str] | None = None) -> int:
    """Entry point: a :class:`BlurcamError` is one line on stderr and its exit code."""
    try:
        rv = app(args=argv, standalone_mode=False)
    except BlurcamError as e:
        err_console.print(f"[red]error:[/red] {e}", highlight=False, soft_wrap=True)
        return e.exit_code
    except typer.Exit as e:
        return int(e.exit_code or 0)
    except typer.Abort:
        err_console.print("interrupted")
        return 130
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130
    except _cx.ClickException as e:
        e.show(file=sys.stderr)
        return e.exit_code
    return int(rv or 0) if isinstance(rv, int) else 0

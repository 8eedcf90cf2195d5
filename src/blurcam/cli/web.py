"""``blurcam serve``: the WebRTC page (needs the ``web`` extra)."""

from __future__ import annotations

from typing import Annotated

import typer

from ..errors import SettingsError
from ..jobs import check_files
from ..settings import Settings
from .common import err_console
from .options import with_settings


@with_settings("effect", "model", "guards")
def serve(
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on; keep localhost unless you must.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", min=0, max=65535, help="TCP port.")] = 8080,
    max_clients: Annotated[
        int, typer.Option("--max-clients", min=1, max=64, help="Concurrent browsers served.")
    ] = 4,
    *,
    settings: Settings,
) -> None:
    """Serve a page that blurs your camera live over WebRTC (the options set where it starts)."""
    from ..web import server

    check_files(settings)
    if not server.is_loopback(host):
        err_console.print(
            f"[yellow]warning:[/yellow] listening on {host}: anyone who can reach this "
            "machine can open the page and use its CPU. Use --host 127.0.0.1 unless you "
            "need this.",
            highlight=False,
        )

    def ready(url: str) -> None:
        err_console.print(f"serving on {url} (Ctrl-C to stop)", highlight=False)

    try:
        server.run(host, port, max_clients=max_clients, settings=settings, on_ready=ready)
    except OSError as e:
        raise SettingsError(f"cannot listen on {host}:{port}: {e.strerror or e}") from e

"""payor: bulk uploader of accounting exports into PayorCRM, business-suite and onlyoffice.

From Python: `payor_cli.dry_run(source, kind, mapping=..., **options)` and
`payor_cli.upload(...)` take a path or a pandas DataFrame and return a `Run` (see api.py).
"""

__version__ = "0.1.0"

from .api import Run, dry_run, upload  # after __version__, which cli.py imports

__all__ = ["Run", "__version__", "dry_run", "upload"]

"""payor: bulk uploader of accounting exports into PayorCRM."""

__version__ = "0.1.0"

"""`payor init`: a commented mapping suggested from a file's layout, column labels and values.

One module per job: `layout` (sheet, header row, encoding, delimiter), `sample` (the rows
below the header), `labels` (the vocabularies of vocabulary.toml), `dates` and `amounts`
(value formats), `plan` (field -> column), `furniture` (skip rules), `value_formats`,
`keys` (repeated keys, invoice lines), `render` (the TOML) and `suggest` (all of it in turn).
"""

from payor_cli.infer.layout import header_row_found, header_row_hint
from payor_cli.infer.presets import list_presets, load_preset
from payor_cli.infer.suggest import Suggestion, suggest_mapping

__all__ = [
    "Suggestion",
    "header_row_found",
    "header_row_hint",
    "list_presets",
    "load_preset",
    "suggest_mapping",
]

"""sernoise: how noise changes speech emotion recognition, for people and for models.

All domain logic of the workflow lives in this package; the Snakemake rule scripts in
``workflow/scripts/`` only read their inputs, call into it and write their outputs.
"""

__version__ = "0.1.0"

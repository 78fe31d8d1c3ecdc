"""Subcommands of the ``edgescribe`` CLI (see ``edgescribe.cli``)."""

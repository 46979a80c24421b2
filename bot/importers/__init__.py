"""Bringing existing data in: customer and purchase CSV files, mail archives."""

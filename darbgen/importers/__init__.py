"""Importers: thin translations from a saved model into darbgen's layer graph."""

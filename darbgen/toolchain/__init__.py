"""Compilers and emulators: the only part of darbgen that runs them."""

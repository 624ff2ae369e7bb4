"""Readers and writers of the files speechmine consumes and produces."""

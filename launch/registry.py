"""`Registry`: named entries for one launcher choice (a data source, a network family).

Registration order is the order of the flag's choices and of its ``--help``.
"""

__all__ = ["Registry"]


class Registry:
    """A name -> entry table; ``what`` and ``flag`` name the entries in errors.

    Entries need a ``name`` attribute. ``entries`` is the underlying dict.
    """

    def __init__(self, what, flag):
        self.what = what
        self.flag = flag
        self.entries = {}

    def register(self, entry):
        """Add ``entry`` (its name must be new); returns it."""
        if entry.name in self.entries:
            raise ValueError(f"{self.what} {entry.name!r} is registered already")
        self.entries[entry.name] = entry
        return entry

    def names(self):
        """The registered names, in registration order."""
        return tuple(self.entries)

    def get(self, name):
        """The entry called ``name``; ValueError listing the valid names otherwise."""
        try:
            return self.entries[name]
        except KeyError:
            raise ValueError(f"Unknown --{self.flag}={name!r}; valid choices: "
                             f"{', '.join(self.entries)}.") from None

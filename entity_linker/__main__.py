"""``python -m entity_linker``: the ``entity-linker`` command line."""

from .cli import main

if __name__ == "__main__":
    main()

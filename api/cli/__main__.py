"""``python -m api.cli``: the ``tongge`` command without the console script."""

from api.cli import main

main()
